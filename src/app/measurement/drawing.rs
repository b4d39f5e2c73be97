//! Draws a view's measurements over the image: yellow with a dark edge, legible over bone and background alike,
//! each with its value as a label that screen readers and tests can read ("Distance 8.4 mm", "Angle 45.0°",
//! "Region mean ...", "CTR 0.48 ...", "Cobb 23.4°"). Labels stay inside the view: one that would be cut off at an edge
//! moves in. The selected measurement has a cyan halo and its handles marked; the handle under the pointer a ring.

use egui::{Align2, Color32, Pos2, Rect, Stroke, Vec2, vec2};

use crate::app::measurement::region::RegionStats;
use crate::app::measurement::{
    Angle, CardiothoracicRatio, Cobb, Diameter, Distance, Ellipse, MeasureTool, Measurement, Measurements, Region,
};
use crate::app::radiograph_viewer::ViewGeometry;
use crate::imaging::dicom::PixelSpacing;

const COLOUR: Color32 = Color32::from_rgb(255, 220, 40);
const EDGE: Color32 = Color32::BLACK;
/// The selection: cyan stands apart from the yellow lines and from any grey.
const SELECTED: Color32 = Color32::from_rgb(60, 220, 255);

/// Where and on what the measurements are drawn, and how their values read.
pub struct Canvas<'a> {
    pub ui: &'a egui::Ui,
    pub painter: &'a egui::Painter,
    pub geometry: ViewGeometry,
    /// Unique to the view: labels' ids derive from it.
    pub id: egui::Id,
    pub spacing: Option<&'a PixelSpacing>,
    /// The image values' unit ("HU"), if any.
    pub value_unit: Option<&'a str>,
}

impl Canvas<'_> {
    /// The kept measurements, then the gesture in progress (drawn, not labelled for screen readers).
    pub fn measurements_ui(&self, measurements: &Measurements, tool: MeasureTool) {
        for (index, measurement) in measurements.items().iter().enumerate() {
            let id = self.id.with(index);
            let selected = measurements.selected() == Some(index);
            if selected {
                self.halo(measurement);
            }
            match measurement {
                Measurement::Distance(distance) => self.distance_ui(Some(id), distance),
                Measurement::Angle(angle) => self.angle_ui(Some(id), angle),
                Measurement::Region(region) => self.region_ui(Some(id), region),
                Measurement::CardiothoracicRatio(ctr) => self.ctr_ui(Some(id), ctr),
                Measurement::Cobb(cobb) => self.cobb_ui(Some(id), cobb),
            }
            if selected {
                let active = measurements.selected_handle().map(|handle| handle.handle);
                for (handle_index, handle) in measurement.handles_px().into_iter().enumerate() {
                    // The handle the arrow keys move is drawn larger.
                    let (side, edge) = if active == Some(handle_index) { (11.0, 2.0) } else { (7.0, 1.0) };
                    let square = Rect::from_center_size(self.point(handle), vec2(side, side));
                    self.painter.rect(square, 0.0, SELECTED, Stroke::new(edge, EDGE), egui::StrokeKind::Middle);
                }
            }
        }
        if let Some(at_px) = measurements.hovered().and_then(|h| measurements.handle_px(h)) {
            // The handle a plain drag would take.
            let at = self.point(at_px);
            self.painter.circle_stroke(at, 7.0, Stroke::new(3.0, EDGE));
            self.painter.circle_stroke(at, 7.0, Stroke::new(1.5, SELECTED));
        }
        if let Some((vertex_px, first_px)) = measurements.pending_arm() {
            let [vertex, first] = [vertex_px, first_px].map(|p| self.point(p));
            self.segment(vertex, first);
            if let Some((_, to_px)) = measurements.draft() {
                self.angle_ui(None, &Angle { vertex_px, first_px, second_px: to_px });
            }
            return;
        }
        if let Some((a, b)) = measurements.pending_endplate() {
            self.endplate(a, b);
            if let Some((from_px, to_px)) = measurements.draft() {
                self.cobb_ui(None, &Cobb { first: [a, b], second: [from_px, to_px] });
            }
            return;
        }
        if let Some(cardiac) = measurements.pending_cardiac() {
            self.diameter(&cardiac);
            if let Some((from_px, to_px)) = measurements.draft() {
                self.ctr_ui(None, &CardiothoracicRatio { cardiac, thoracic: Diameter::from_drag(from_px, to_px) });
            }
            return;
        }
        let Some((from_px, to_px)) = measurements.draft() else {
            return;
        };
        match tool {
            MeasureTool::Distance => self.distance_ui(None, &Distance { from_px, to_px }),
            MeasureTool::Angle => self.segment(self.point(from_px), self.point(to_px)),
            MeasureTool::Region => {
                self.ellipse(from_px, to_px);
            }
            MeasureTool::CardiothoracicRatio => self.diameter(&Diameter::from_drag(from_px, to_px)),
            MeasureTool::Cobb => self.endplate(from_px, to_px),
        }
    }

    /// A wide cyan stroke under the selected measurement's lines.
    fn halo(&self, measurement: &Measurement) {
        for line in measurement.outline_px() {
            let points: Vec<Pos2> = line.into_iter().map(|p| self.point(p)).collect();
            self.painter.add(egui::Shape::line(points, Stroke::new(6.0, SELECTED)));
        }
    }

    /// A Cobb endplate line, with a short perpendicular at its middle: the perpendiculars are how the angle is drawn
    /// on film, and show which way the lines lean.
    fn endplate(&self, a_px: [f32; 2], b_px: [f32; 2]) {
        let [a, b] = [a_px, b_px].map(|p| self.point(p));
        self.segment(a, b);
        let along = b - a;
        if along.length() > 1.0 {
            let middle = a + along / 2.0;
            let normal = along.normalized().rot90() * 20.0;
            for (stroke, width) in [(EDGE, 3.0), (COLOUR, 1.0)] {
                self.painter.line_segment([middle - normal, middle + normal], Stroke::new(width, stroke));
            }
        }
    }
    fn point(&self, [x, y]: [f32; 2]) -> Pos2 {
        self.geometry.point_from_image_px(vec2(x, y))
    }

    fn segment(&self, from: Pos2, to: Pos2) {
        self.painter.line_segment([from, to], Stroke::new(3.0, EDGE));
        self.painter.line_segment([from, to], Stroke::new(1.5, COLOUR));
        for end in [from, to] {
            self.painter.circle(end, 3.0, COLOUR, Stroke::new(1.0, EDGE));
        }
    }

    /// A CTR diameter: a horizontal line with short upright ticks at its ends, which mark the extent measured.
    fn diameter(&self, diameter: &Diameter) {
        let (left, right) = diameter.ends_px();
        let [left, right] = [left, right].map(|p| self.point(p));
        for (stroke, width) in [(EDGE, 3.0), (COLOUR, 1.5)] {
            self.painter.line_segment([left, right], Stroke::new(width, stroke));
            for end in [left, right] {
                self.painter.line_segment([end - vec2(0.0, 6.0), end + vec2(0.0, 6.0)], Stroke::new(width, stroke));
            }
        }
    }

    /// The ellipse inscribed in the box with corners `a_px` and `b_px`; returns its screen bounding box.
    fn ellipse(&self, a_px: [f32; 2], b_px: [f32; 2]) -> egui::Rect {
        let rect = egui::Rect::from_two_pos(self.point(a_px), self.point(b_px));
        let radius = rect.size() / 2.0;
        self.painter.add(egui::Shape::ellipse_stroke(rect.center(), radius, Stroke::new(3.0, EDGE)));
        self.painter.add(egui::Shape::ellipse_stroke(rect.center(), radius, Stroke::new(1.5, COLOUR)));
        rect
    }

    /// Shadowed text in the rect `place` gives for the text's size, moved inside the view where it would be cut off;
    /// with an `id`, also a label widget that says `spoken`.
    fn label(
        &self,
        id: Option<egui::Id>,
        place: impl FnOnce(Vec2) -> Rect,
        text: &str,
        spoken: impl FnOnce() -> String,
    ) {
        let galley = self.painter.layout_no_wrap(text.to_owned(), egui::FontId::proportional(13.0), COLOUR);
        let text_rect = keep_inside(place(galley.size()), self.painter.clip_rect());
        self.painter.galley_with_override_text_color(text_rect.min + vec2(1.0, 1.0), galley.clone(), EDGE);
        self.painter.galley(text_rect.min, galley, COLOUR);
        if let Some(id) = id {
            let response = self.ui.interact(text_rect, id, egui::Sense::hover());
            let spoken = spoken();
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &spoken));
        }
    }

    fn distance_ui(&self, id: Option<egui::Id>, distance: &Distance) {
        let [from, to] = [distance.from_px, distance.to_px].map(|p| self.point(p));
        self.segment(from, to);
        let text = distance.label(self.spacing);
        let bounds = self.painter.clip_rect();
        self.label(id, |size| beside(to, LABEL_GAP, size, bounds), &text, || format!("Distance {text}"));
    }

    fn angle_ui(&self, id: Option<egui::Id>, angle: &Angle) {
        let [vertex, first, second] = [angle.vertex_px, angle.first_px, angle.second_px].map(|p| self.point(p));
        self.segment(vertex, first);
        self.segment(vertex, second);
        let (u, v) = (first - vertex, second - vertex);
        let radius = (0.4 * u.length().min(v.length())).min(24.0);
        // An arc between the arms on screen marks which angle is meant (the value is the one in the patient).
        if radius > 4.0 {
            let (start, end) = (u.y.atan2(u.x), v.y.atan2(v.x));
            let mut sweep = end - start;
            if sweep > std::f32::consts::PI {
                sweep -= std::f32::consts::TAU;
            } else if sweep < -std::f32::consts::PI {
                sweep += std::f32::consts::TAU;
            }
            let points: Vec<Pos2> = (0..=16)
                .map(|k| start + sweep * k as f32 / 16.0)
                .map(|a| vertex + radius * vec2(a.cos(), a.sin()))
                .collect();
            self.painter.add(egui::Shape::line(points, Stroke::new(1.5, COLOUR)));
        }
        // The label sits outside the angle, opposite the bisector, clear of both arms.
        let bisector = u.normalized() + v.normalized();
        let away = if bisector.length() > 1e-3 { -bisector.normalized() } else { u.normalized().rot90() };
        let anchor = vertex + away * 16.0;
        let text = angle.label(self.spacing);
        self.label(id, |size| Align2::CENTER_CENTER.anchor_size(anchor, size), &text, || format!("Angle {text}"));
    }

    fn region_ui(&self, id: Option<egui::Id>, region: &Region) {
        let ellipse = region.ellipse;
        let [cx, cy] = ellipse.center_px;
        let [rx, ry] = ellipse.radii_px;
        let rect = self.ellipse([cx - rx, cy - ry], [cx + rx, cy + ry]);
        let (text, spoken) = region_label(region.stats(), self.value_unit, &area_text(&ellipse, self.spacing));
        // Beside the ellipse on the right, or on its left where the view's edge would cut the label off.
        let right = self.painter.clip_rect().right();
        let place = |size: Vec2| {
            if rect.right() + 6.0 + size.x > right {
                Align2::RIGHT_TOP.anchor_size(rect.left_top() - vec2(6.0, 0.0), size)
            } else {
                Align2::LEFT_TOP.anchor_size(rect.right_top() + vec2(6.0, 0.0), size)
            }
        };
        self.label(id, place, &text, || spoken);
    }

    /// Both diameters, and the ratio with the widths beside the thoracic line's right end.
    fn ctr_ui(&self, id: Option<egui::Id>, ctr: &CardiothoracicRatio) {
        self.diameter(&ctr.cardiac);
        self.diameter(&ctr.thoracic);
        let (ratio, widths) = (ctr.ratio_text(), ctr.widths_text(self.spacing));
        let text = format!("{ratio}\n{widths}");
        let end = self.point(ctr.thoracic.ends_px().1);
        let bounds = self.painter.clip_rect();
        self.label(id, |size| beside(end, LABEL_GAP, size, bounds), &text, || format!("{ratio}, {widths}"));
    }

    /// Both endplate lines, and the angle beside the second line's end.
    fn cobb_ui(&self, id: Option<egui::Id>, cobb: &Cobb) {
        self.endplate(cobb.first[0], cobb.first[1]);
        self.endplate(cobb.second[0], cobb.second[1]);
        let text = cobb.label(self.spacing);
        let end = self.point(cobb.second[1]);
        let bounds = self.painter.clip_rect();
        self.label(id, |size| beside(end, LABEL_GAP, size, bounds), &text, || text.clone());
    }
}

/// How far a label sits from the point it belongs to, across and up.
const LABEL_GAP: Vec2 = vec2(8.0, 8.0);

/// A label of `size` beside `point`: above and to the right, `gap` away; to the left where the right edge of `bounds`
/// would cut it off, below where the top would.
fn beside(point: Pos2, gap: Vec2, size: Vec2, bounds: Rect) -> Rect {
    let x = if point.x + gap.x + size.x > bounds.right() { point.x - gap.x - size.x } else { point.x + gap.x };
    let y = if point.y - gap.y - size.y < bounds.top() { point.y + gap.y } else { point.y - gap.y - size.y };
    Rect::from_min_size(Pos2::new(x, y), size)
}

/// `rect` moved the least that puts it inside `bounds`; its top-left corner stays in view when it is the larger.
fn keep_inside(rect: Rect, bounds: Rect) -> Rect {
    let shift = |low: f32, high: f32, min: f32, max: f32| {
        if low < min {
            min - low
        } else if high > max {
            (max - high).max(min - low)
        } else {
            0.0
        }
    };
    let dx = shift(rect.left(), rect.right(), bounds.left(), bounds.right());
    let dy = shift(rect.top(), rect.bottom(), bounds.top(), bounds.bottom());
    rect.translate(vec2(dx, dy))
}

/// A region's area as its label gives it: mm² with the file's pixel size, else px².
pub(crate) fn area_text(ellipse: &Ellipse, spacing: Option<&PixelSpacing>) -> String {
    match spacing {
        Some(spacing) => match spacing.source.qualifier() {
            qualifier if qualifier.is_empty() => format!("{:.1} mm²", ellipse.area_mm2(spacing)),
            qualifier => format!("{:.1} mm² {qualifier}", ellipse.area_mm2(spacing)),
        },
        None => format!("{:.0} px²", ellipse.area_px2()),
    }
}

/// The region's label as drawn (three lines) and as spoken (one).
pub(crate) fn region_label(stats: Option<Option<RegionStats>>, unit: Option<&str>, area: &str) -> (String, String) {
    let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
    match stats {
        None => ("measuring…".to_owned(), "Region: measuring".to_owned()),
        Some(None) => ("no pixels inside the image".to_owned(), "Region: no pixels inside the image".to_owned()),
        Some(Some(s)) => {
            let (mean, sd) = (format_statistic(s.mean), format_statistic(s.sd));
            let (min, max) = (format_sample(s.min), format_sample(s.max));
            let n = s.count_px;
            (
                format!("mean {mean}{unit}  SD {sd}{unit}\nmin {min}  max {max}{unit}\n{n} px  {area}"),
                format!(
                    "Region mean {mean}{unit}, SD {sd}{unit} (population), min {min}{unit}, max {max}{unit}, {n} px, \
                     {area}"
                ),
            )
        }
    }
}

/// Means and SDs: one decimal from 10 up (detector values, HU), three below (unit-range data).
fn format_statistic(value: f64) -> String {
    if value.abs() >= 10.0 { format!("{value:.1}") } else { format!("{value:.3}") }
}

/// Pixel values as the hovered-pixel readout gives them: whole numbers whole, others to three decimals.
fn format_sample(value: f32) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.3}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_move_inside_the_view() {
        let view = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(400.0, 300.0));
        let size = vec2(80.0, 16.0);
        // Room above and to the right: there.
        assert_eq!(beside(Pos2::new(100.0, 100.0), LABEL_GAP, size, view).min, Pos2::new(108.0, 76.0));
        // Near the right edge: on the left of the point; near the top: below it.
        assert_eq!(beside(Pos2::new(390.0, 100.0), LABEL_GAP, size, view).min, Pos2::new(302.0, 76.0));
        assert_eq!(beside(Pos2::new(100.0, 10.0), LABEL_GAP, size, view).min, Pos2::new(108.0, 18.0));
        // A point outside the view (an end panned away) still gets a label in it.
        let placed = keep_inside(beside(Pos2::new(900.0, -50.0), LABEL_GAP, size, view), view);
        assert!(view.contains_rect(placed), "{placed:?}");
        assert_eq!(placed.size(), size);
        let centred = keep_inside(Align2::CENTER_CENTER.anchor_size(Pos2::new(395.0, 298.0), size), view);
        assert_eq!(centred.max, view.max);
        assert_eq!(keep_inside(Rect::from_min_size(Pos2::new(5.0, 5.0), size), view).min, Pos2::new(5.0, 5.0));
        // Wider than the view: its start stays in view.
        let wide = keep_inside(Rect::from_min_size(Pos2::new(-20.0, 10.0), vec2(500.0, 16.0)), view);
        assert_eq!(wide.min, Pos2::new(0.0, 10.0));
        let wide = keep_inside(Rect::from_min_size(Pos2::new(-20.0 + 50.0, 10.0), vec2(500.0, 16.0)), view);
        assert_eq!(wide.min, Pos2::new(0.0, 10.0));
    }

    #[test]
    fn region_labels_give_the_unit_and_say_which_sd() {
        let stats = RegionStats { mean: -812.26, sd: 40.04, min: -1000.0, max: -600.0, count_px: 1257 };
        let (text, spoken) = region_label(Some(Some(stats)), Some("HU"), "123.4 mm²");
        assert_eq!(text, "mean -812.3 HU  SD 40.0 HU\nmin -1000  max -600 HU\n1257 px  123.4 mm²");
        assert_eq!(
            spoken,
            "Region mean -812.3 HU, SD 40.0 HU (population), min -1000 HU, max -600 HU, 1257 px, 123.4 mm²"
        );
        let unit_range = RegionStats { mean: 0.5, sd: 0.125, min: 0.25, max: 1.0, count_px: 3 };
        let (text, _) = region_label(Some(Some(unit_range)), None, "3 px²");
        assert_eq!(text, "mean 0.500  SD 0.125\nmin 0.250  max 1\n3 px  3 px²");
        assert_eq!(region_label(None, None, "").1, "Region: measuring");
    }
}
