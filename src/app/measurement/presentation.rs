//! A view's measurements as the annotations of a Grayscale Softcopy Presentation State, and back.
//!
//! Each measurement is one Graphic Annotation Sequence item: its graphics (a distance: a POLYLINE of 2 points; an
//! angle: a POLYLINE of 3 points, the vertex in the middle; a region: an ELLIPSE given by the ends of its major axis,
//! then of its minor axis, as PS3.3 C.10.5.1.2 defines it; a CTR: the cardiac then the thoracic line; a Cobb angle:
//! its two endplate lines) and one text object, the label the view shows, which begins with the tool's name
//! ("Distance 42.1 mm", "CTR 0.48, heart ..."), anchored at the point the view draws the label beside. That first word
//! is how our own files give back the tool; any viewer shows it as the measurement's label.
//!
//! A foreign file's graphics are read one by one: a POLYLINE of 2 points is a distance, of 3 points an angle (vertex
//! in the middle), an axis-aligned ELLIPSE a region; anything else is skipped and counted.
//!
//! Coordinates need no conversion: this program's image pixel coordinates are continuous with 0 at the top left
//! corner of the top left pixel (a pixel's centre is at +0.5), exactly what GSPS PIXEL units are
//! ([`to_gsps_px`] says so and the tests pin it).

use crate::app::measurement::drawing::{area_text, region_label};
use crate::app::measurement::{
    Angle, CardiothoracicRatio, Cobb, Diameter, Distance, Ellipse, MAX_MEASUREMENTS, MeasureTool, Measurement, Region,
};
use crate::imaging::dicom::{Annotation, GraphicObject, GraphicType, PixelSpacing, TextObject};

/// An image point (column, row; 0 at the top left corner of the top left pixel) in GSPS PIXEL units: the same
/// numbers, since PIXEL units put 0.0\0.0 at that corner and the top left pixel's centre at 0.5\0.5.
pub fn to_gsps_px(point: [f32; 2]) -> [f32; 2] {
    point
}

/// A GSPS PIXEL point in this program's image pixel coordinates (see [`to_gsps_px`]).
pub fn from_gsps_px(point: [f32; 2]) -> [f32; 2] {
    point
}

/// What the labels are measured with: the file's pixel size and the unit of its values.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabelUnits<'a> {
    pub spacing: Option<&'a PixelSpacing>,
    pub value_unit: Option<&'a str>,
}

fn polyline(points: &[[f32; 2]]) -> GraphicObject {
    GraphicObject {
        graphic_type: GraphicType::Polyline,
        points: points.iter().copied().map(to_gsps_px).collect(),
        display_units: false,
    }
}

/// The ELLIPSE of an axis-aligned ellipse: the major axis' ends, then the minor axis' (the horizontal one first when
/// they are equal). Each end is computed in f64 and rounded once, so reading it back gives the ellipse to f32
/// precision.
fn ellipse_graphic(ellipse: &Ellipse) -> GraphicObject {
    let [cx, cy] = ellipse.center_px.map(f64::from);
    let [rx, ry] = ellipse.radii_px.map(f64::from);
    let point = |x: f64, y: f64| to_gsps_px([x as f32, y as f32]);
    let horizontal = [point(cx - rx, cy), point(cx + rx, cy)];
    let vertical = [point(cx, cy - ry), point(cx, cy + ry)];
    let (major, minor) = if rx >= ry { (horizontal, vertical) } else { (vertical, horizontal) };
    GraphicObject { graphic_type: GraphicType::Ellipse, points: [major, minor].concat(), display_units: false }
}

/// `measurement` as one annotation: its graphics and its label anchored where the view draws it.
pub fn annotation_of(measurement: &Measurement, units: LabelUnits<'_>) -> Annotation {
    let (graphics, text, anchor) = match measurement {
        Measurement::Distance(distance) => (
            vec![polyline(&[distance.from_px, distance.to_px])],
            format!("Distance {}", distance.label(units.spacing)),
            distance.to_px,
        ),
        Measurement::Angle(angle) => (
            vec![polyline(&[angle.first_px, angle.vertex_px, angle.second_px])],
            format!("Angle {}", angle.label(units.spacing)),
            angle.vertex_px,
        ),
        Measurement::Region(region) => {
            let ellipse = region.ellipse;
            let area = area_text(&ellipse, units.spacing);
            let (_, spoken) = region_label(region.stats(), units.value_unit, &area);
            let [cx, cy] = ellipse.center_px;
            (vec![ellipse_graphic(&ellipse)], spoken, [cx + ellipse.radii_px[0], cy])
        }
        Measurement::CardiothoracicRatio(ctr) => {
            let ((a, b), (c, d)) = (ctr.cardiac.ends_px(), ctr.thoracic.ends_px());
            let text = format!("{}, {}", ctr.ratio_text(), ctr.widths_text(units.spacing));
            (vec![polyline(&[a, b]), polyline(&[c, d])], text, d)
        }
        Measurement::Cobb(cobb) => {
            (vec![polyline(&cobb.first), polyline(&cobb.second)], cobb.label(units.spacing), cobb.second[1])
        }
    };
    Annotation { graphics, texts: vec![TextObject { text, anchor_px: Some(to_gsps_px(anchor)) }], images: Vec::new() }
}

/// The measurements read from a presentation state's annotations, and what was left out.
#[derive(Debug, Default)]
pub struct Decoded {
    pub measurements: Vec<Measurement>,
    /// Why each skipped graphic (or text-only annotation) was skipped, one entry each ("POINT", "POLYLINE of 5
    /// points", ...).
    pub skipped: Vec<String>,
}

impl Decoded {
    /// "3 skipped: 2 x POINT, 1 x text only", or "" when nothing was.
    pub fn skipped_text(&self) -> String {
        if self.skipped.is_empty() {
            return String::new();
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for reason in &self.skipped {
            match counts.iter_mut().find(|(r, _)| r == reason) {
                Some((_, count)) => *count += 1,
                None => counts.push((reason, 1)),
            }
        }
        let parts: Vec<String> = counts.iter().map(|(reason, count)| format!("{count} x {reason}")).collect();
        format!("{} skipped: {}", self.skipped.len(), parts.join(", "))
    }
}

/// The tool an annotation's label names by its first word, if any.
fn tagged_tool(annotation: &Annotation) -> Option<MeasureTool> {
    let first_word = |text: &str| text.split([' ', ':', ',']).next().map(str::to_owned);
    let words: Vec<String> = annotation.texts.iter().filter_map(|t| first_word(&t.text)).collect();
    MeasureTool::ALL.into_iter().find(|tool| words.iter().any(|w| w == tool.name()))
}

/// The (x, y) ends of a 2-point PIXEL polyline.
fn line(graphic: &GraphicObject) -> Option<[[f32; 2]; 2]> {
    match (&graphic.graphic_type, graphic.display_units, &graphic.points[..]) {
        (GraphicType::Polyline, false, [a, b]) => Some([from_gsps_px(*a), from_gsps_px(*b)]),
        _ => None,
    }
}

/// A horizontal diameter from a line the workbench wrote (or any line: its horizontal extent at its mean row).
fn diameter(ends: [[f32; 2]; 2]) -> Diameter {
    Diameter::from_drag(ends[0], ends[1])
}

/// An annotation tagged with `tool` whose graphics are what that tool writes, as that measurement.
fn own_measurement(
    tool: MeasureTool,
    graphics: &[GraphicObject],
    measure: &mut impl FnMut(Ellipse) -> Region,
) -> Option<Measurement> {
    match (tool, graphics) {
        (MeasureTool::Distance, [one]) => {
            line(one).map(|[from_px, to_px]| Measurement::Distance(Distance { from_px, to_px }))
        }
        (MeasureTool::Angle | MeasureTool::Region, [one]) => foreign_measurement(one, measure).ok(),
        (MeasureTool::CardiothoracicRatio, [cardiac, thoracic]) => {
            let (cardiac, thoracic) = (line(cardiac)?, line(thoracic)?);
            Some(Measurement::CardiothoracicRatio(CardiothoracicRatio {
                cardiac: diameter(cardiac),
                thoracic: diameter(thoracic),
            }))
        }
        (MeasureTool::Cobb, [first, second]) => {
            Some(Measurement::Cobb(Cobb { first: line(first)?, second: line(second)? }))
        }
        _ => None,
    }
    .filter(|measurement| measurement_tool(measurement) == tool)
}

fn measurement_tool(measurement: &Measurement) -> MeasureTool {
    match measurement {
        Measurement::Distance(_) => MeasureTool::Distance,
        Measurement::Angle(_) => MeasureTool::Angle,
        Measurement::Region(_) => MeasureTool::Region,
        Measurement::CardiothoracicRatio(_) => MeasureTool::CardiothoracicRatio,
        Measurement::Cobb(_) => MeasureTool::Cobb,
    }
}

/// The axis-aligned ellipse of an ELLIPSE's four points (major axis ends, minor axis ends); `None` when it is rotated
/// or its axes do not cross at their middles.
fn axis_aligned_ellipse(points: &[[f32; 2]]) -> Option<Ellipse> {
    let [a, b, c, d] = points else {
        return None;
    };
    let p = |q: &[f32; 2]| from_gsps_px(*q).map(f64::from);
    let (a, b, c, d) = (p(a), p(b), p(c), p(d));
    let center = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let minor_center = [(c[0] + d[0]) / 2.0, (c[1] + d[1]) / 2.0];
    let (major_dx, major_dy) = ((b[0] - a[0]).abs(), (b[1] - a[1]).abs());
    let (minor_dx, minor_dy) = ((d[0] - c[0]).abs(), (d[1] - c[1]).abs());
    let tolerance = 1e-3 * (major_dx + major_dy).max(1.0);
    let same_center =
        (center[0] - minor_center[0]).abs() <= tolerance && (center[1] - minor_center[1]).abs() <= tolerance;
    let (rx, ry) = if major_dy <= major_dx {
        // The major axis is horizontal: its rise and the minor axis' run must be nil.
        (major_dy <= tolerance && minor_dx <= tolerance).then_some((major_dx / 2.0, minor_dy / 2.0))?
    } else {
        (major_dx <= tolerance && minor_dy <= tolerance).then_some((minor_dx / 2.0, major_dy / 2.0))?
    };
    same_center.then(|| Ellipse { center_px: [center[0] as f32, center[1] as f32], radii_px: [rx as f32, ry as f32] })
}

/// One graphic of any file as a measurement, or why it is skipped.
fn foreign_measurement(
    graphic: &GraphicObject,
    measure: &mut impl FnMut(Ellipse) -> Region,
) -> Result<Measurement, String> {
    if graphic.display_units {
        return Err(format!("{} in DISPLAY units", graphic.graphic_type.as_str()));
    }
    let points: Vec<[f32; 2]> = graphic.points.iter().copied().map(from_gsps_px).collect();
    match (&graphic.graphic_type, &points[..]) {
        (GraphicType::Polyline, [from_px, to_px]) => {
            Ok(Measurement::Distance(Distance { from_px: *from_px, to_px: *to_px }))
        }
        (GraphicType::Polyline, [first_px, vertex_px, second_px]) => {
            Ok(Measurement::Angle(Angle { vertex_px: *vertex_px, first_px: *first_px, second_px: *second_px }))
        }
        (GraphicType::Polyline, _) => Err(format!("POLYLINE of {} points", points.len())),
        (GraphicType::Ellipse, _) => match axis_aligned_ellipse(&points) {
            Some(ellipse) => Ok(Measurement::Region(measure(ellipse))),
            None if points.len() != 4 => Err(format!("ELLIPSE of {} points", points.len())),
            None => Err("rotated ELLIPSE".to_owned()),
        },
        (other, _) => Err(other.as_str().to_owned()),
    }
}

/// The measurements of `annotations` that apply to the image `sop_instance_uid`, at most [`MAX_MEASUREMENTS`] (the
/// first ones). `measure` makes a region of an ellipse (measuring it on the view's image).
pub fn measurements_of(
    annotations: &[Annotation],
    sop_instance_uid: &str,
    mut measure: impl FnMut(Ellipse) -> Region,
) -> Decoded {
    let mut decoded = Decoded::default();
    for annotation in annotations {
        if !annotation.images.is_empty() && !annotation.images.iter().any(|uid| uid == sop_instance_uid) {
            // Another image's annotation in a presentation state of several images: not this view's, not skipped.
            continue;
        }
        if annotation.graphics.is_empty() {
            if !annotation.texts.is_empty() {
                decoded.skipped.push("text only".to_owned());
            }
            continue;
        }
        if let Some(own) =
            tagged_tool(annotation).and_then(|tool| own_measurement(tool, &annotation.graphics, &mut measure))
        {
            decoded.measurements.push(own);
            continue;
        }
        for graphic in &annotation.graphics {
            match foreign_measurement(graphic, &mut measure) {
                Ok(measurement) => decoded.measurements.push(measurement),
                Err(reason) => decoded.skipped.push(reason),
            }
        }
    }
    if decoded.measurements.len() > MAX_MEASUREMENTS {
        let over = decoded.measurements.split_off(MAX_MEASUREMENTS);
        decoded.skipped.extend(over.iter().map(|_| format!("over the {MAX_MEASUREMENTS} a view keeps")));
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::SpacingSource;
    use crate::imaging::{BitDepth, GrayImage};

    fn measure() -> impl FnMut(Ellipse) -> Region {
        let (image, ctx) = (GrayImage::new(8, 8, BitDepth::U8, vec![5.0; 64]).unwrap(), egui::Context::default());
        move |ellipse| Region::new(ellipse, &image, &ctx)
    }

    fn graphic(graphic_type: GraphicType, points: &[[f32; 2]]) -> GraphicObject {
        GraphicObject { graphic_type, points: points.to_vec(), display_units: false }
    }

    #[test]
    fn image_pixel_coordinates_are_gsps_pixel_units() {
        // PS3.3 C.10.5.1.2: PIXEL units put 0.0\0.0 at the top left corner of the top left pixel and its centre at
        // 0.5\0.5; here pixel (0, 0) is inside when its centre (0.5, 0.5) is.
        assert_eq!(to_gsps_px([0.0, 0.0]), [0.0, 0.0]);
        assert_eq!(to_gsps_px([0.5, 0.5]), [0.5, 0.5], "the top left pixel's centre");
        assert_eq!(to_gsps_px([1024.0, 768.0]), [1024.0, 768.0], "the bottom right corner is Columns\\Rows");
        assert_eq!(from_gsps_px([12.25, 3.5]), [12.25, 3.5]);
        // The centre of the top left pixel is inside a region drawn around it, in either coordinates.
        let around = Ellipse { center_px: from_gsps_px([0.5, 0.5]), radii_px: [0.1, 0.1] };
        assert!(around.contains_pixel(0, 0));
        assert!(!around.contains_pixel(1, 0));
    }

    #[test]
    fn each_tool_becomes_its_graphics_with_its_label_and_comes_back_the_same() {
        let spacing = PixelSpacing { row_mm: 0.168, column_mm: 0.168, source: SpacingSource::PixelSpacing };
        let units = LabelUnits { spacing: Some(&spacing), value_unit: None };
        let mut make_region = measure();
        let region = make_region(Ellipse { center_px: [3.3, 4.1], radii_px: [1.7, 2.9] });
        let items = [
            Measurement::Distance(Distance { from_px: [10.25, 20.5], to_px: [40.0, 60.75] }),
            Measurement::Angle(Angle { vertex_px: [5.0, 5.0], first_px: [25.0, 5.0], second_px: [5.0, 45.0] }),
            Measurement::Region(region),
            Measurement::CardiothoracicRatio(CardiothoracicRatio {
                cardiac: Diameter { left_px: 100.0, right_px: 220.0, y_px: 230.5 },
                thoracic: Diameter { left_px: 50.0, right_px: 300.0, y_px: 275.0 },
            }),
            Measurement::Cobb(Cobb { first: [[10.0, 10.0], [110.0, 12.0]], second: [[100.0, 200.0], [0.0, 300.0]] }),
        ];
        let annotations: Vec<Annotation> = items.iter().map(|m| annotation_of(m, units)).collect();
        let types: Vec<Vec<(&str, usize)>> = annotations
            .iter()
            .map(|a| a.graphics.iter().map(|g| (g.graphic_type.as_str(), g.points.len())).collect())
            .collect();
        assert_eq!(
            types,
            [
                vec![("POLYLINE", 2)],
                vec![("POLYLINE", 3)],
                vec![("ELLIPSE", 4)],
                vec![("POLYLINE", 2), ("POLYLINE", 2)],
                vec![("POLYLINE", 2), ("POLYLINE", 2)],
            ]
        );
        assert_eq!(annotations[0].graphics[0].points, [[10.25, 20.5], [40.0, 60.75]]);
        assert_eq!(annotations[1].graphics[0].points[1], [5.0, 5.0], "the vertex in the middle");
        // The region is taller than wide: its major axis is vertical and comes first.
        let ellipse = &annotations[2].graphics[0].points;
        assert!((ellipse[0][0] - 3.3).abs() < 1e-6 && (ellipse[0][1] - (4.1 - 2.9)).abs() < 1e-6, "{ellipse:?}");
        assert!((ellipse[2][0] - (3.3 - 1.7)).abs() < 1e-6 && (ellipse[2][1] - 4.1).abs() < 1e-6, "{ellipse:?}");
        let texts: Vec<&str> = annotations.iter().map(|a| a.texts[0].text.as_str()).collect();
        assert_eq!(texts[0], "Distance 8.4 mm");
        assert_eq!(texts[1], "Angle 90.0°");
        assert!(texts[2].starts_with("Region mean 5.000"), "{}", texts[2]);
        assert_eq!(texts[3], "CTR 0.48, heart 20.2 mm / thorax 42.0 mm");
        assert_eq!(texts[4], "Cobb 46.1°");
        assert_eq!(annotations[0].texts[0].anchor_px, Some([40.0, 60.75]), "the label is beside the end");

        let decoded = measurements_of(&annotations, "1.2.3", measure());
        assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
        assert_eq!(decoded.measurements.len(), items.len());
        for (original, read) in items.iter().zip(&decoded.measurements) {
            match (original, read) {
                (Measurement::Region(a), Measurement::Region(b)) => {
                    for (x, y) in [(a.ellipse.center_px, b.ellipse.center_px), (a.ellipse.radii_px, b.ellipse.radii_px)]
                    {
                        assert!((x[0] - y[0]).abs() <= 1e-6 && (x[1] - y[1]).abs() <= 1e-6, "{x:?} {y:?}");
                    }
                    assert_eq!(b.stats().flatten().map(|s| s.mean), Some(5.0), "measured on the image");
                }
                _ => assert_eq!(format!("{original:?}"), format!("{read:?}")),
            }
        }
    }

    #[test]
    fn a_label_that_names_another_shape_falls_back_to_the_graphics() {
        // "Cobb" over one 2-point line: not a Cobb angle, but still a line.
        let annotation = Annotation {
            graphics: vec![graphic(GraphicType::Polyline, &[[0.0, 0.0], [3.0, 4.0]])],
            texts: vec![TextObject { text: "Cobb 12°".to_owned(), anchor_px: None }],
            images: Vec::new(),
        };
        let decoded = measurements_of(&[annotation], "1", measure());
        assert!(matches!(decoded.measurements[..], [Measurement::Distance(d)] if d.length_px() == 5.0));
    }

    #[test]
    fn foreign_graphics_map_by_shape_and_the_rest_is_counted() {
        let one_item = Annotation {
            graphics: vec![
                graphic(GraphicType::Polyline, &[[1.0, 1.0], [4.0, 5.0]]),
                graphic(GraphicType::Polyline, &[[0.0, 10.0], [0.0, 0.0], [10.0, 0.0]]),
                graphic(GraphicType::Ellipse, &[[2.0, 4.0], [6.0, 4.0], [4.0, 3.0], [4.0, 5.0]]),
                graphic(GraphicType::Point, &[[1.0, 1.0]]),
                graphic(GraphicType::Polyline, &[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]),
                graphic(GraphicType::Circle, &[[4.0, 4.0], [5.0, 4.0]]),
                graphic(GraphicType::Interpolated, &[[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]]),
                // Rotated by 45 degrees.
                graphic(GraphicType::Ellipse, &[[0.0, 0.0], [4.0, 4.0], [3.0, 1.0], [1.0, 3.0]]),
                GraphicObject { display_units: true, ..graphic(GraphicType::Polyline, &[[0.1, 0.1], [0.2, 0.2]]) },
            ],
            texts: vec![TextObject { text: "Lesion".to_owned(), anchor_px: Some([1.0, 1.0]) }],
            images: Vec::new(),
        };
        let text_only =
            Annotation { texts: vec![TextObject { text: "R".to_owned(), anchor_px: None }], ..Annotation::default() };
        let other_image = Annotation { images: vec!["9.9".to_owned()], ..one_item.clone() };
        let decoded = measurements_of(&[one_item, text_only, other_image], "1.2", measure());
        let [Measurement::Distance(d), Measurement::Angle(a), Measurement::Region(r)] = &decoded.measurements[..]
        else {
            panic!("{:?}", decoded.measurements)
        };
        assert_eq!(d.length_px(), 5.0);
        assert_eq!((a.vertex_px, a.degrees(None).map(f64::round)), ([0.0, 0.0], Some(90.0)));
        assert_eq!((r.ellipse.center_px, r.ellipse.radii_px), ([4.0, 4.0], [2.0, 1.0]));
        assert_eq!(
            decoded.skipped_text(),
            "7 skipped: 1 x POINT, 1 x POLYLINE of 4 points, 1 x CIRCLE, 1 x INTERPOLATED, 1 x rotated ELLIPSE, \
             1 x POLYLINE in DISPLAY units, 1 x text only"
        );
    }

    #[test]
    fn more_than_a_view_keeps_are_counted_as_skipped() {
        let line = Annotation {
            graphics: vec![graphic(GraphicType::Polyline, &[[0.0, 0.0], [1.0, 1.0]])],
            ..Annotation::default()
        };
        let decoded = measurements_of(&vec![line; MAX_MEASUREMENTS + 2], "1", measure());
        assert_eq!(decoded.measurements.len(), MAX_MEASUREMENTS);
        assert_eq!(decoded.skipped.len(), 2);
    }
}
