//! Handles and hit-testing: the points of a kept measurement that a plain drag moves, and the lines a click selects
//! it by. All in image pixels; the viewer turns its screen tolerance into image pixels for the zoom shown.
//!
//! Handles: a distance's two ends; an angle's vertex and two arm ends; a region's four axis ends (left, right, top,
//! bottom: on the outline, where a PACS puts them; each moves its side of the bounding box, the opposite side stays);
//! a CTR's four line ends (an end moves its line's extent and, the line being horizontal, its height); a Cobb angle's
//! four line ends.

use crate::app::measurement::{CardiothoracicRatio, Cobb, Diameter, Ellipse, Measurement, Region};

/// How near (screen points) the pointer must come to a handle or a line to take it.
pub const HIT_TOLERANCE_PT: f32 = 6.0;

/// Points on a region's outline for hit-testing and the selection halo: fine enough that the polygon stays within a
/// fraction of a point of the ellipse at any zoom a radiologist uses.
const ELLIPSE_SEGMENTS: usize = 64;

/// One handle of one kept measurement: indices into the view's measurements and into [`Measurement::handles_px`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleId {
    pub item: usize,
    pub handle: usize,
}

impl Measurement {
    /// The points a plain drag moves, in image pixels.
    pub fn handles_px(&self) -> Vec<[f32; 2]> {
        match self {
            Self::Distance(distance) => vec![distance.from_px, distance.to_px],
            Self::Angle(angle) => vec![angle.vertex_px, angle.first_px, angle.second_px],
            Self::Region(region) => {
                let ([cx, cy], [rx, ry]) = (region.ellipse.center_px, region.ellipse.radii_px);
                vec![[cx - rx, cy], [cx + rx, cy], [cx, cy - ry], [cx, cy + ry]]
            }
            Self::CardiothoracicRatio(ctr) => {
                let ((a, b), (c, d)) = (ctr.cardiac.ends_px(), ctr.thoracic.ends_px());
                vec![a, b, c, d]
            }
            Self::Cobb(cobb) => vec![cobb.first[0], cobb.first[1], cobb.second[0], cobb.second[1]],
        }
    }

    /// The lines the measurement is drawn with, as polylines in image pixels: what a click selects it by.
    pub fn outline_px(&self) -> Vec<Vec<[f32; 2]>> {
        match self {
            Self::Distance(distance) => vec![vec![distance.from_px, distance.to_px]],
            Self::Angle(angle) => vec![vec![angle.first_px, angle.vertex_px, angle.second_px]],
            Self::Region(region) => {
                let ([cx, cy], [rx, ry]) = (region.ellipse.center_px, region.ellipse.radii_px);
                let ring = (0..=ELLIPSE_SEGMENTS).map(|k| {
                    let a = std::f32::consts::TAU * k as f32 / ELLIPSE_SEGMENTS as f32;
                    [cx + rx * a.cos(), cy + ry * a.sin()]
                });
                vec![ring.collect()]
            }
            Self::CardiothoracicRatio(ctr) => {
                [ctr.cardiac, ctr.thoracic].iter().map(|d| d.ends_px()).map(|(a, b)| vec![a, b]).collect()
            }
            Self::Cobb(cobb) => vec![cobb.first.to_vec(), cobb.second.to_vec()],
        }
    }

    /// This measurement moved by `by_px` as a whole (the arrow keys' nudge); a region's moved ellipse is measured by
    /// `measure`.
    pub fn shifted(&self, by_px: [f32; 2], measure: impl FnOnce(Ellipse) -> Region) -> Self {
        let shift = |p: &mut [f32; 2]| {
            p[0] += by_px[0];
            p[1] += by_px[1];
        };
        let mut moved = self.clone();
        match &mut moved {
            Self::Distance(distance) => [&mut distance.from_px, &mut distance.to_px].into_iter().for_each(shift),
            Self::Angle(angle) => {
                [&mut angle.vertex_px, &mut angle.first_px, &mut angle.second_px].into_iter().for_each(shift);
            }
            Self::Region(region) => {
                let mut ellipse = region.ellipse;
                shift(&mut ellipse.center_px);
                *region = measure(ellipse);
            }
            Self::CardiothoracicRatio(CardiothoracicRatio { cardiac, thoracic }) => {
                for line in [cardiac, thoracic] {
                    line.left_px += by_px[0];
                    line.right_px += by_px[0];
                    line.y_px += by_px[1];
                }
            }
            Self::Cobb(Cobb { first, second }) => first.iter_mut().chain(second.iter_mut()).for_each(shift),
        }
        moved
    }

    /// This measurement with handle `handle` moved to `to_px` (an unknown handle changes nothing); a region's new
    /// ellipse is measured by `measure`, which decides whether now or later.
    pub fn with_handle_at(&self, handle: usize, to_px: [f32; 2], measure: impl FnOnce(Ellipse) -> Region) -> Self {
        let mut moved = self.clone();
        match &mut moved {
            Self::Distance(distance) => match handle {
                0 => distance.from_px = to_px,
                1 => distance.to_px = to_px,
                _ => {}
            },
            Self::Angle(angle) => match handle {
                0 => angle.vertex_px = to_px,
                1 => angle.first_px = to_px,
                2 => angle.second_px = to_px,
                _ => {}
            },
            Self::Region(region) => {
                let ([cx, cy], [rx, ry]) = (region.ellipse.center_px, region.ellipse.radii_px);
                let [mut left, mut top, mut right, mut bottom] = [cx - rx, cy - ry, cx + rx, cy + ry];
                match handle {
                    0 => left = to_px[0],
                    1 => right = to_px[0],
                    2 => top = to_px[1],
                    3 => bottom = to_px[1],
                    _ => return moved,
                }
                // Past the opposite side the ellipse turns over; `from_corners` keeps its radii positive.
                *region = measure(Ellipse::from_corners([left, top], [right, bottom]));
            }
            Self::CardiothoracicRatio(CardiothoracicRatio { cardiac, thoracic }) => {
                let (line, end) = match handle {
                    0 | 1 => (cardiac, handle),
                    2 | 3 => (thoracic, handle - 2),
                    _ => return moved,
                };
                // The other end keeps its column; the line stays horizontal at the moved end's row.
                let other_x = if end == 0 { line.right_px } else { line.left_px };
                *line = Diameter::from_drag(to_px, [other_x, to_px[1]]);
            }
            Self::Cobb(Cobb { first, second }) => {
                if let Some(point) = [first, second].into_iter().flatten().nth(handle) {
                    *point = to_px;
                }
            }
        }
        moved
    }
}

/// Squared distance from `p` to the segment `a`-`b` (image pixels).
fn distance_sq_to_segment(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (ab, ap) = ([b[0] - a[0], b[1] - a[1]], [p[0] - a[0], p[1] - a[1]]);
    let length_sq = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if length_sq > 0.0 { ((ap[0] * ab[0] + ap[1] * ab[1]) / length_sq).clamp(0.0, 1.0) } else { 0.0 };
    let (dx, dy) = (ap[0] - t * ab[0], ap[1] - t * ab[1]);
    dx * dx + dy * dy
}

fn distance_sq(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// The handle nearest `point_px` within `tolerance_px`, if any; between equally near ones the newest measurement's,
/// which is drawn on top.
pub fn handle_at(items: &[Measurement], point_px: [f32; 2], tolerance_px: f32) -> Option<HandleId> {
    let mut best: Option<(f32, HandleId)> = None;
    for (item, measurement) in items.iter().enumerate().rev() {
        for (handle, at) in measurement.handles_px().into_iter().enumerate() {
            let d = distance_sq(point_px, at);
            if d <= tolerance_px * tolerance_px && best.is_none_or(|(nearest, _)| d < nearest) {
                best = Some((d, HandleId { item, handle }));
            }
        }
    }
    best.map(|(_, id)| id)
}

/// The measurement a click at `point_px` takes: a handle's within `tolerance_px`, else the one whose line or outline
/// passes nearest within it (the newest between equals).
pub fn item_at(items: &[Measurement], point_px: [f32; 2], tolerance_px: f32) -> Option<usize> {
    if let Some(handle) = handle_at(items, point_px, tolerance_px) {
        return Some(handle.item);
    }
    let mut best: Option<(f32, usize)> = None;
    for (item, measurement) in items.iter().enumerate().rev() {
        for line in measurement.outline_px() {
            for pair in line.windows(2) {
                let d = distance_sq_to_segment(point_px, pair[0], pair[1]);
                if d <= tolerance_px * tolerance_px && best.is_none_or(|(nearest, _)| d < nearest) {
                    best = Some((d, item));
                }
            }
        }
    }
    best.map(|(_, item)| item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::measurement::{Angle, Distance};
    use crate::imaging::{BitDepth, GrayImage};

    fn distance(from_px: [f32; 2], to_px: [f32; 2]) -> Measurement {
        Measurement::Distance(Distance { from_px, to_px })
    }

    #[test]
    fn the_nearest_handle_within_the_tolerance_and_none_outside() {
        let items = [distance([10.0, 10.0], [50.0, 10.0]), distance([52.0, 10.0], [52.0, 80.0])];
        // The first's end (50, 10) and the second's start (52, 10) are both within 6 px: the nearer wins.
        assert_eq!(handle_at(&items, [49.0, 10.0], 6.0), Some(HandleId { item: 0, handle: 1 }));
        assert_eq!(handle_at(&items, [51.9, 10.5], 6.0), Some(HandleId { item: 1, handle: 0 }));
        assert_eq!(handle_at(&items, [52.0, 74.5], 6.0), Some(HandleId { item: 1, handle: 1 }));
        // 6.5 px away: outside a 6 px tolerance, inside a 7 px one (a lower zoom gives more image pixels).
        assert_eq!(handle_at(&items, [10.0, 16.5], 6.0), None);
        assert_eq!(handle_at(&items, [10.0, 16.5], 7.0), Some(HandleId { item: 0, handle: 0 }));
        // Mid-line is no handle, but a click there takes the line.
        assert_eq!(handle_at(&items, [30.0, 12.0], 6.0), None);
        assert_eq!(item_at(&items, [30.0, 12.0], 6.0), Some(0));
        assert_eq!(item_at(&items, [55.0, 40.0], 6.0), Some(1));
        assert_eq!(item_at(&items, [30.0, 40.0], 6.0), None);
        assert_eq!(handle_at(&[], [0.0, 0.0], 6.0), None);
    }

    #[test]
    fn a_region_is_taken_by_its_outline_and_its_axis_ends_resize_it() {
        let (image, ctx) = (GrayImage::new(4, 4, BitDepth::U8, vec![1.0; 16]).unwrap(), egui::Context::default());
        let region = Measurement::Region(Region::new(Ellipse::from_corners([10.0, 20.0], [50.0, 40.0]), &image, &ctx));
        assert_eq!(region.handles_px(), vec![[10.0, 30.0], [50.0, 30.0], [30.0, 20.0], [30.0, 40.0]]);
        let items = [region];
        assert_eq!(item_at(&items, [30.0, 21.0], 2.0), Some(0), "on the outline");
        assert_eq!(item_at(&items, [30.0, 30.0], 2.0), None, "inside, away from the outline");
        // The right end dragged to column 70: the left side stays at 10.
        let Measurement::Region(wider) = items[0].with_handle_at(1, [70.0, 99.0], |e| Region::new(e, &image, &ctx))
        else {
            panic!()
        };
        assert_eq!((wider.ellipse.center_px, wider.ellipse.radii_px), ([40.0, 30.0], [30.0, 10.0]));
        // The top end dragged below the bottom: turned over, still 10 px from the bottom side.
        let Measurement::Region(over) = items[0].with_handle_at(2, [0.0, 50.0], |e| Region::new(e, &image, &ctx))
        else {
            panic!()
        };
        assert_eq!((over.ellipse.center_px, over.ellipse.radii_px), ([30.0, 45.0], [20.0, 5.0]));
    }

    #[test]
    fn moving_a_distance_end_changes_its_length_and_an_angle_vertex_its_degrees() {
        let keep = |_| unreachable!("no region here");
        let moved = distance([0.0, 0.0], [30.0, 0.0]).with_handle_at(1, [30.0, 40.0], keep);
        let Measurement::Distance(d) = moved else { panic!("{moved:?}") };
        assert_eq!(d.length_px(), 50.0);
        assert_eq!(d.label(None), "50.0 px");
        // Arms along +x and +y from the origin: 90 degrees. The vertex moved to (-10, -10): arms (20, 10), (10, 20).
        let angle = Measurement::Angle(Angle { vertex_px: [0.0, 0.0], first_px: [10.0, 0.0], second_px: [0.0, 10.0] });
        let Measurement::Angle(moved) = angle.with_handle_at(0, [-10.0, -10.0], keep) else { panic!() };
        assert_eq!(moved.vertex_px, [-10.0, -10.0]);
        assert_eq!((moved.first_px, moved.second_px), ([10.0, 0.0], [0.0, 10.0]), "the arm ends stay");
        // cross = 20 * 20 - 10 * 10 = 300, dot = 20 * 10 + 10 * 20 = 400: atan2(300, 400) = 36.8699 degrees.
        assert!((moved.degrees(None).unwrap() - 36.869_897_645_844).abs() < 1e-9);
        let Measurement::Angle(arm) = angle.with_handle_at(2, [-10.0, 0.0], keep) else { panic!() };
        assert!((arm.degrees(None).unwrap() - 180.0).abs() < 1e-9);
    }

    #[test]
    fn ctr_and_cobb_ends_move_their_own_line() {
        let keep = |_| unreachable!("no region here");
        let ctr = Measurement::CardiothoracicRatio(CardiothoracicRatio {
            cardiac: Diameter { left_px: 100.0, right_px: 220.0, y_px: 230.0 },
            thoracic: Diameter { left_px: 50.0, right_px: 300.0, y_px: 275.0 },
        });
        assert_eq!(ctr.handles_px(), vec![[100.0, 230.0], [220.0, 230.0], [50.0, 275.0], [300.0, 275.0]]);
        // The thoracic line's right end to (350, 280): wider, at the new row; the cardiac line untouched.
        let Measurement::CardiothoracicRatio(moved) = ctr.with_handle_at(3, [350.0, 280.0], keep) else { panic!() };
        assert_eq!(moved.thoracic, Diameter { left_px: 50.0, right_px: 350.0, y_px: 280.0 });
        assert_eq!(moved.cardiac, Diameter { left_px: 100.0, right_px: 220.0, y_px: 230.0 });
        assert!((moved.ratio().unwrap() - 0.4).abs() < 1e-12);
        let cobb = Measurement::Cobb(Cobb { first: [[0.0, 0.0], [100.0, 0.0]], second: [[0.0, 50.0], [100.0, 50.0]] });
        let Measurement::Cobb(moved) = cobb.with_handle_at(3, [100.0, 150.0], keep) else { panic!() };
        assert_eq!(moved.second, [[0.0, 50.0], [100.0, 150.0]]);
        assert!((moved.degrees(None).unwrap() - 45.0).abs() < 1e-9);
        assert_eq!(cobb.with_handle_at(4, [9.0, 9.0], keep).handles_px(), cobb.handles_px(), "no fifth handle");
    }
}
