//! Measurements on a viewport, kept per view until cleared or until another image is shown. Shift + drag draws
//! with the tool chosen in the display toolbar: a distance, an angle (two drags: the first arm from the vertex, then
//! the second arm from the same vertex), an elliptical region or a cardiothoracic ratio (two drags: the cardiac
//! diameter, then the thoracic one) or a Cobb angle (two drags along vertebral endplates). Shift + click clears the
//! view's measurements; Esc drops a gesture in progress. A kept measurement can be edited: a plain drag that starts on
//! one of its handles moves that handle (see [`handles`]), a plain click selects it and Delete removes the selected
//! one. All are kept in image pixel coordinates, so they stay on the anatomy under zoom and pan.

pub mod angle;
pub mod cobb;
pub mod ctr;
pub mod distance;
pub mod drawing;
pub mod export;
pub mod handles;
pub mod presentation;
pub mod region;

pub use angle::Angle;
pub use cobb::Cobb;
pub use ctr::{CardiothoracicRatio, Diameter};
pub use distance::Distance;
pub use handles::HandleId;
pub use region::{Ellipse, Region, RegionStats};

use crate::imaging::GrayImage;

/// Measurements a view keeps; past this the oldest gives way to the newest.
pub const MAX_MEASUREMENTS: usize = 32;

/// What Shift + drag draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MeasureTool {
    #[default]
    Distance,
    Angle,
    Region,
    CardiothoracicRatio,
    Cobb,
}

impl MeasureTool {
    pub const ALL: [Self; 5] = [Self::Distance, Self::Angle, Self::Region, Self::CardiothoracicRatio, Self::Cobb];

    pub fn name(self) -> &'static str {
        match self {
            Self::Distance => "Distance",
            Self::Angle => "Angle",
            Self::Region => "Region",
            Self::CardiothoracicRatio => "CTR",
            Self::Cobb => "Cobb",
        }
    }

    /// How the tool is used, for its tooltip.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Distance => "Shift + drag: a length, in mm where the file gives the pixel size",
            Self::Angle => {
                "Shift + drag the first arm from the vertex, then Shift + drag again: the second arm from the same \
                 vertex (Esc drops the first arm)"
            }
            Self::Region => {
                "Shift + drag an ellipse (corner to corner): mean, SD, min and max of the values inside, pixel count \
                 and area"
            }
            Self::CardiothoracicRatio => {
                "Cardiothoracic ratio: Shift + drag across the heart at its widest, then Shift + drag across the chest \
                 at its widest inside the ribs (only the horizontal extent counts; Esc drops the first line). Above \
                 0.50 on a PA film is the usual threshold for cardiomegaly; an AP film magnifies the heart, so its \
                 ratio reads higher"
            }
            Self::Cobb => {
                "Cobb angle: Shift + drag along the upper endplate of the curve's top vertebra, then Shift + drag \
                 along the lower endplate of its bottom vertebra; the angle between the lines, 0 to 90 degrees (Esc \
                 drops the first line)"
            }
        }
    }
}

/// One measurement on a view.
#[derive(Clone, Debug)]
pub enum Measurement {
    Distance(Distance),
    Angle(Angle),
    Region(Region),
    CardiothoracicRatio(CardiothoracicRatio),
    Cobb(Cobb),
}

/// What the pointer did to the view's measurements this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MeasureGesture {
    /// A Shift + drag in progress, from where it began to the pointer (image pixels).
    Drag { from_px: [f32; 2], to_px: [f32; 2] },
    /// The Shift + drag ended, at `at_px` (image pixels) where the pointer was known: what it drew is kept.
    Release { at_px: Option<[f32; 2]> },
    /// Esc during the drag: it draws nothing.
    Cancel,
    /// Shift + click: clear the view's measurements.
    Clear,
    /// A plain drag that began on `handle` is at `to_px` (image pixels): the handle follows.
    MoveHandle { handle: HandleId, to_px: [f32; 2] },
    /// That drag ended, at `at_px` where the pointer was known: the measurement stays there (a region is measured).
    DropHandle { handle: HandleId, at_px: Option<[f32; 2]> },
    /// A plain click: on a measurement (`Some`, its index) selects it, elsewhere (`None`) deselects.
    Select { item: Option<usize> },
    /// A plain click on a handle: selects it and its measurement (the arrow keys then move the handle alone).
    SelectHandle { handle: HandleId },
}

/// The measurements of one view and the gesture in progress.
#[derive(Clone, Debug, Default)]
pub struct Measurements {
    items: Vec<Measurement>,
    /// The Shift + drag in progress: (where it began, the pointer).
    draft: Option<([f32; 2], [f32; 2])>,
    /// An angle's first arm (vertex, end), waiting for the second.
    pending_arm: Option<([f32; 2], [f32; 2])>,
    /// A cardiothoracic ratio's cardiac diameter, waiting for the thoracic one.
    pending_cardiac: Option<Diameter>,
    /// A Cobb angle's first endplate line (one end, the other), waiting for the second.
    pending_endplate: Option<([f32; 2], [f32; 2])>,
    /// The selected measurement (index into `items`): drawn highlighted, removed by Delete.
    selected: Option<usize>,
    /// One handle of the selected measurement (index into its handles), clicked or last dragged: the arrow keys move
    /// it alone.
    selected_handle: Option<usize>,
    /// The handle under the pointer this frame, drawn highlighted.
    hovered: Option<HandleId>,
    /// The handle being dragged and its measurement as it was before, for Esc to put back.
    moving: Option<(HandleId, Measurement)>,
}

impl Measurements {
    /// The kept measurements, oldest first.
    pub fn items(&self) -> &[Measurement] {
        &self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && !self.has_gesture()
    }

    /// Whether a drag, a waiting first drag or a handle's move is in progress: what Esc drops before it deselects.
    pub fn has_gesture(&self) -> bool {
        self.draft.is_some()
            || self.pending_arm.is_some()
            || self.pending_cardiac.is_some()
            || self.pending_endplate.is_some()
            || self.moving.is_some()
    }

    /// Whether a region's statistics are still being measured on a thread.
    pub fn is_measuring(&self) -> bool {
        self.items.iter().any(|item| matches!(item, Measurement::Region(region) if region.stats().is_none()))
    }

    /// The drag in progress, (from, to) in image pixels.
    pub fn draft(&self) -> Option<([f32; 2], [f32; 2])> {
        self.draft
    }

    /// An angle's first arm, (vertex, end), while the second is awaited.
    pub fn pending_arm(&self) -> Option<([f32; 2], [f32; 2])> {
        self.pending_arm
    }

    /// A cardiothoracic ratio's cardiac diameter while the thoracic one is awaited.
    pub fn pending_cardiac(&self) -> Option<Diameter> {
        self.pending_cardiac
    }

    /// A Cobb angle's first line, (one end, the other), while the second is awaited.
    pub fn pending_endplate(&self) -> Option<([f32; 2], [f32; 2])> {
        self.pending_endplate
    }

    /// The selected measurement's index.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// The selected measurement's handle that the arrow keys move, when one was clicked or dragged.
    pub fn selected_handle(&self) -> Option<HandleId> {
        let (item, handle) = (self.selected?, self.selected_handle?);
        Some(HandleId { item, handle })
    }

    /// Selects `handle` and its measurement: the arrow keys move that handle alone.
    pub fn select_handle(&mut self, handle: HandleId) {
        if self.handle_px(handle).is_some() {
            self.selected = Some(handle.item);
            self.selected_handle = Some(handle.handle);
        }
    }

    /// The handle under the pointer.
    pub fn hovered(&self) -> Option<HandleId> {
        self.hovered
    }

    /// Marks the handle under the pointer (the viewer finds it each frame).
    pub fn set_hovered(&mut self, handle: Option<HandleId>) {
        self.hovered = handle;
    }

    /// Where handle `handle` is, in image pixels.
    pub fn handle_px(&self, handle: HandleId) -> Option<[f32; 2]> {
        self.items.get(handle.item)?.handles_px().get(handle.handle).copied()
    }

    /// Selects measurement `item` (`None`, or an index past the end, deselects).
    pub fn select(&mut self, item: Option<usize>) {
        self.selected = item.filter(|&i| i < self.items.len());
        self.selected_handle = None;
    }

    /// Removes the selected measurement, and only it; returns whether there was one. Not while a handle is being
    /// dragged: the drag names its measurement by index, which the removal would hand to another one.
    pub fn delete_selected(&mut self) -> bool {
        if self.moving.is_some() {
            return false;
        }
        self.selected_handle = None;
        let Some(index) = self.selected.take().filter(|&i| i < self.items.len()) else {
            return false;
        };
        self.items.remove(index);
        // The indices after it moved down: a handle marked there no longer names the same point.
        self.hovered = None;
        true
    }

    /// Moves the selected measurement by `by_px` (the arrow keys), or only its selected handle when one is;
    /// returns whether anything moved. Not while a handle is being dragged. A region is measured again at its new
    /// place.
    pub fn nudge_selected(&mut self, by_px: [f32; 2], image: &GrayImage, ctx: &egui::Context) -> bool {
        if self.moving.is_some() {
            return false;
        }
        let handle_px = self.selected_handle().and_then(|handle| self.handle_px(handle));
        let Some(item) = self.selected.and_then(|index| self.items.get_mut(index)) else {
            return false;
        };
        let measure = |ellipse| Region::new(ellipse, image, ctx);
        *item = match (self.selected_handle, handle_px) {
            (Some(handle), Some([x, y])) => item.with_handle_at(handle, [x + by_px[0], y + by_px[1]], measure),
            _ => item.shifted(by_px, measure),
        };
        true
    }

    /// Applies the viewer's gesture with `tool`; `image` is what regions are measured on.
    pub fn apply(&mut self, gesture: MeasureGesture, tool: MeasureTool, image: &GrayImage, ctx: &egui::Context) {
        match gesture {
            MeasureGesture::Drag { from_px, to_px } => self.draft = Some((from_px, to_px)),
            MeasureGesture::Release { at_px } => {
                if let Some((from_px, dragged_to_px)) = self.draft.take() {
                    // Where the button came up: a last move and the release can arrive in one frame.
                    let to_px = at_px.unwrap_or(dragged_to_px);
                    self.finish(tool, from_px, to_px, image, ctx);
                }
            }
            MeasureGesture::Cancel => self.cancel_gesture(),
            MeasureGesture::Clear => self.clear(),
            MeasureGesture::MoveHandle { handle, to_px } => self.move_handle(handle, to_px, image, ctx, false),
            MeasureGesture::DropHandle { handle, at_px } => {
                // Without a last position the handle stays where the last move left it.
                if let Some(to_px) = at_px.or_else(|| self.handle_px(handle)) {
                    self.move_handle(handle, to_px, image, ctx, true);
                }
                self.moving = None;
            }
            MeasureGesture::Select { item } => self.select(item),
            MeasureGesture::SelectHandle { handle } => self.select_handle(handle),
        }
    }

    /// Puts `handle` at `to_px`. Each move starts from the measurement as it was when the drag began, so a region
    /// dragged past its opposite side turns over cleanly. A region is measured as it moves when that is quick, else
    /// when `dropped` (off the UI thread when large).
    fn move_handle(
        &mut self,
        handle: HandleId,
        to_px: [f32; 2],
        image: &GrayImage,
        ctx: &egui::Context,
        dropped: bool,
    ) {
        let original = match &self.moving {
            Some((moving, original)) if *moving == handle => original.clone(),
            // Another handle's move: one drag moves one handle.
            Some(_) => return,
            None => {
                let Some(item) = self.items.get(handle.item) else {
                    return;
                };
                self.moving = Some((handle, item.clone()));
                // What is being edited is what Delete would remove, and its handle what the arrows then move.
                self.selected = Some(handle.item);
                self.selected_handle = Some(handle.handle);
                item.clone()
            }
        };
        let moved = original.with_handle_at(handle.handle, to_px, |ellipse| {
            if dropped { Region::new(ellipse, image, ctx) } else { Region::resized(ellipse, image, ctx) }
        });
        if let Some(item) = self.items.get_mut(handle.item) {
            *item = moved;
        }
    }

    fn finish(
        &mut self,
        tool: MeasureTool,
        from_px: [f32; 2],
        to_px: [f32; 2],
        image: &GrayImage,
        ctx: &egui::Context,
    ) {
        if from_px == to_px {
            return;
        }
        match tool {
            MeasureTool::Distance => self.push(Measurement::Distance(Distance { from_px, to_px })),
            MeasureTool::Angle => match self.pending_arm.take() {
                // The second arm shares the first arm's vertex, wherever its drag began.
                Some((vertex_px, first_px)) => {
                    self.push(Measurement::Angle(Angle { vertex_px, first_px, second_px: to_px }));
                }
                None => self.pending_arm = Some((from_px, to_px)),
            },
            MeasureTool::Region => {
                let ellipse = Ellipse::from_corners(from_px, to_px);
                self.push(Measurement::Region(Region::new(ellipse, image, ctx)));
            }
            MeasureTool::CardiothoracicRatio => {
                let diameter = Diameter::from_drag(from_px, to_px);
                match self.pending_cardiac.take() {
                    Some(cardiac) => {
                        self.push(Measurement::CardiothoracicRatio(CardiothoracicRatio {
                            cardiac,
                            thoracic: diameter,
                        }));
                    }
                    None => self.pending_cardiac = Some(diameter),
                }
            }
            MeasureTool::Cobb => match self.pending_endplate.take() {
                Some((a, b)) => self.push(Measurement::Cobb(Cobb { first: [a, b], second: [from_px, to_px] })),
                None => self.pending_endplate = Some((from_px, to_px)),
            },
        }
    }

    fn push(&mut self, measurement: Measurement) {
        if self.items.len() >= MAX_MEASUREMENTS {
            self.items.remove(0);
            // The rest moved down one; the selected one may have been the oldest.
            self.selected = self.selected.and_then(|i| i.checked_sub(1));
            self.hovered = None;
        }
        self.items.push(measurement);
    }

    /// Drops the drag in progress and a waiting first drag: an angle's arm, a CTR's cardiac line, a Cobb angle's
    /// first line (Esc, or another tool chosen); a handle being moved goes back where it was.
    pub fn cancel_gesture(&mut self) {
        self.draft = None;
        self.pending_arm = None;
        self.pending_cardiac = None;
        self.pending_endplate = None;
        if let Some((handle, original)) = self.moving.take()
            && let Some(item) = self.items.get_mut(handle.item)
        {
            *item = original;
        }
    }

    /// Replaces every measurement with `items` (a presentation state opened on the view), the oldest giving way past
    /// [`MAX_MEASUREMENTS`]; a gesture in progress and the selection go with the old ones.
    pub fn replace_all(&mut self, items: Vec<Measurement>) {
        self.clear();
        for item in items {
            self.push(item);
        }
    }

    /// Removes every measurement and the gesture in progress.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Regions measure the image shown: when it changed under them (same size, e.g. a live generator update), they
    /// are measured again.
    pub fn follow_image(&mut self, image: &GrayImage, ctx: &egui::Context) {
        for item in &mut self.items {
            if let Measurement::Region(region) = item {
                region.follow_image(image, ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::BitDepth;

    fn drag(measurements: &mut Measurements, tool: MeasureTool, from_px: [f32; 2], to_px: [f32; 2]) {
        let (image, ctx) = (GrayImage::new(4, 4, BitDepth::U8, vec![7.0; 16]).unwrap(), egui::Context::default());
        measurements.apply(MeasureGesture::Drag { from_px, to_px }, tool, &image, &ctx);
        measurements.apply(MeasureGesture::Release { at_px: None }, tool, &image, &ctx);
    }

    #[test]
    fn drags_add_measurements_up_to_the_cap_and_an_angle_takes_two() {
        let mut measurements = Measurements::default();
        drag(&mut measurements, MeasureTool::Distance, [0.0, 0.0], [1.0, 1.0]);
        drag(&mut measurements, MeasureTool::Distance, [1.0, 0.0], [2.0, 2.0]);
        assert_eq!(measurements.items().len(), 2);
        drag(&mut measurements, MeasureTool::Angle, [1.0, 1.0], [3.0, 1.0]);
        assert_eq!(measurements.items().len(), 2, "one arm is no angle yet");
        assert_eq!(measurements.pending_arm(), Some(([1.0, 1.0], [3.0, 1.0])));
        drag(&mut measurements, MeasureTool::Angle, [1.2, 0.9], [1.0, 3.0]);
        match &measurements.items()[2] {
            Measurement::Angle(angle) => {
                assert_eq!(angle.vertex_px, [1.0, 1.0], "the vertex is the first arm's");
                assert!((angle.degrees(None).unwrap() - 90.0).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        drag(&mut measurements, MeasureTool::Region, [0.0, 0.0], [4.0, 4.0]);
        match &measurements.items()[3] {
            Measurement::Region(region) => assert_eq!(region.stats().flatten().map(|s| s.mean), Some(7.0)),
            other => panic!("{other:?}"),
        }
        for i in 0..40 {
            drag(&mut measurements, MeasureTool::Distance, [0.0, 0.0], [i as f32 + 1.0, 0.0]);
        }
        assert_eq!(measurements.items().len(), MAX_MEASUREMENTS);
        match measurements.items().last() {
            Some(Measurement::Distance(d)) => assert_eq!(d.to_px, [40.0, 0.0], "the newest is kept"),
            other => panic!("{other:?}"),
        }
        measurements.apply(
            MeasureGesture::Clear,
            MeasureTool::Distance,
            &GrayImage::new(1, 1, BitDepth::U8, vec![0.0]).unwrap(),
            &egui::Context::default(),
        );
        assert!(measurements.is_empty());
    }

    #[test]
    fn esc_drops_the_first_arm_and_a_cancelled_drag_draws_nothing() {
        let mut measurements = Measurements::default();
        drag(&mut measurements, MeasureTool::Angle, [1.0, 1.0], [3.0, 1.0]);
        measurements.cancel_gesture();
        assert_eq!(measurements.pending_arm(), None);
        drag(&mut measurements, MeasureTool::Angle, [2.0, 2.0], [3.0, 3.0]);
        assert_eq!(measurements.pending_arm(), Some(([2.0, 2.0], [3.0, 3.0])), "a fresh first arm");
        let (image, ctx) = (GrayImage::new(1, 1, BitDepth::U8, vec![0.0]).unwrap(), egui::Context::default());
        let tool = MeasureTool::Distance;
        measurements.apply(MeasureGesture::Drag { from_px: [0.0, 0.0], to_px: [1.0, 0.0] }, tool, &image, &ctx);
        measurements.apply(MeasureGesture::Cancel, tool, &image, &ctx);
        measurements.apply(MeasureGesture::Release { at_px: None }, tool, &image, &ctx);
        assert!(measurements.is_empty());
    }

    #[test]
    fn a_ctr_takes_two_drags_and_counts_only_their_widths_in_columns() {
        let tool = MeasureTool::CardiothoracicRatio;
        let mut measurements = Measurements::default();
        // The heart, 120 px across (slanting 60 px down), then the chest, 250 px across drawn right to left.
        drag(&mut measurements, tool, [100.0, 200.0], [220.0, 260.0]);
        assert!(measurements.items().is_empty(), "one line is no ratio yet");
        assert_eq!(measurements.pending_cardiac(), Some(Diameter { left_px: 100.0, right_px: 220.0, y_px: 230.0 }));
        drag(&mut measurements, tool, [300.0, 300.0], [50.0, 250.0]);
        assert_eq!(measurements.pending_cardiac(), None);
        let [Measurement::CardiothoracicRatio(ctr)] = measurements.items() else {
            panic!("{:?}", measurements.items())
        };
        assert!((ctr.ratio().unwrap() - 0.48).abs() < 1e-12);
        // Rows twice as far apart as columns: the slant would count in a length, not in a width.
        let spacing = crate::imaging::dicom::PixelSpacing {
            row_mm: 0.2,
            column_mm: 0.1,
            source: crate::imaging::dicom::SpacingSource::PixelSpacing,
        };
        assert_eq!(ctr.ratio_text(), "CTR 0.48");
        assert_eq!(ctr.widths_text(Some(&spacing)), "heart 12.0 mm / thorax 25.0 mm");
    }

    #[test]
    fn a_cobb_angle_takes_two_drags_and_esc_drops_the_first_line() {
        let tool = MeasureTool::Cobb;
        let mut measurements = Measurements::default();
        drag(&mut measurements, tool, [10.0, 10.0], [110.0, 10.0]);
        assert_eq!(measurements.pending_endplate(), Some(([10.0, 10.0], [110.0, 10.0])));
        measurements.cancel_gesture();
        assert!(measurements.is_empty(), "Esc drops the first line");
        // Horizontal, then 45 degrees down to the left: lines, not arms, so 45.
        drag(&mut measurements, tool, [10.0, 10.0], [110.0, 10.0]);
        assert!(measurements.items().is_empty(), "one line is no angle yet");
        drag(&mut measurements, tool, [100.0, 200.0], [0.0, 300.0]);
        let [Measurement::Cobb(cobb)] = measurements.items() else { panic!("{:?}", measurements.items()) };
        assert_eq!(cobb.first, [[10.0, 10.0], [110.0, 10.0]]);
        assert!((cobb.degrees(None).unwrap() - 45.0).abs() < 1e-9);
        assert_eq!(measurements.pending_endplate(), None);
    }

    #[test]
    fn delete_removes_the_selected_measurement_only() {
        let mut measurements = Measurements::default();
        for x in [10.0, 20.0, 30.0] {
            drag(&mut measurements, MeasureTool::Distance, [x, 0.0], [x, 50.0]);
        }
        assert!(!measurements.delete_selected(), "nothing selected: nothing goes");
        assert_eq!(measurements.items().len(), 3);
        measurements.select(Some(1));
        assert_eq!(measurements.selected(), Some(1));
        assert!(measurements.delete_selected());
        let ends: Vec<f32> = measurements.items().iter().map(|m| m.handles_px()[0][0]).collect();
        assert_eq!(ends, [10.0, 30.0], "the other two stay");
        assert_eq!(measurements.selected(), None);
        assert!(!measurements.delete_selected(), "Delete again removes nothing more");
        measurements.select(Some(7));
        assert_eq!(measurements.selected(), None, "no such measurement");
        // At the cap the oldest gives way: the selection follows its measurement down one place.
        measurements.select(Some(1));
        for i in 0..MAX_MEASUREMENTS - 1 {
            drag(&mut measurements, MeasureTool::Distance, [0.0, 0.0], [i as f32 + 1.0, 1.0]);
        }
        assert_eq!(measurements.selected(), Some(0));
        assert_eq!(measurements.items()[0].handles_px()[0], [30.0, 0.0]);
        drag(&mut measurements, MeasureTool::Distance, [0.0, 0.0], [1.0, 2.0]);
        assert_eq!(measurements.selected(), None, "the selected one gave way");
    }

    #[test]
    fn a_dragged_handle_follows_the_pointer_and_esc_puts_it_back() {
        let (image, ctx) = (GrayImage::new(4, 4, BitDepth::U8, vec![7.0; 16]).unwrap(), egui::Context::default());
        let tool = MeasureTool::Distance;
        let mut measurements = Measurements::default();
        drag(&mut measurements, tool, [0.0, 0.0], [30.0, 0.0]);
        let handle = HandleId { item: 0, handle: 1 };
        assert_eq!(handles::handle_at(measurements.items(), [29.0, 1.0], 6.0), Some(handle));
        for to_px in [[30.0, 20.0], [30.0, 40.0]] {
            measurements.apply(MeasureGesture::MoveHandle { handle, to_px }, tool, &image, &ctx);
        }
        let length = |m: &Measurements| match &m.items()[0] {
            Measurement::Distance(d) => d.length_px(),
            other => panic!("{other:?}"),
        };
        assert_eq!(length(&measurements), 50.0, "live while dragging");
        assert_eq!(measurements.selected(), Some(0), "what is edited is selected");
        assert!(measurements.has_gesture());
        assert!(!measurements.delete_selected(), "Delete waits for the drop");
        measurements.cancel_gesture();
        assert_eq!(length(&measurements), 30.0, "Esc puts it back");
        measurements.apply(MeasureGesture::MoveHandle { handle, to_px: [0.0, 10.0] }, tool, &image, &ctx);
        measurements.apply(MeasureGesture::DropHandle { handle, at_px: Some([0.0, 20.0]) }, tool, &image, &ctx);
        assert_eq!(length(&measurements), 20.0, "dropped where the button came up");
        assert!(!measurements.has_gesture());
        // A handle of a measurement that is gone (cleared mid-drag) moves nothing.
        measurements.clear();
        measurements.apply(MeasureGesture::MoveHandle { handle, to_px: [5.0, 5.0] }, tool, &image, &ctx);
        assert!(measurements.is_empty());
    }

    #[test]
    fn arrow_nudges_move_a_selected_handle_alone() {
        let (image, ctx) = (GrayImage::new(8, 8, BitDepth::U8, vec![0.0; 64]).unwrap(), egui::Context::default());
        let mut measurements = Measurements::default();
        let tool = MeasureTool::Distance;
        drag(&mut measurements, tool, [1.0, 1.0], [4.0, 5.0]);
        let ends = |m: &Measurements| match &m.items()[0] {
            Measurement::Distance(distance) => (distance.from_px, distance.to_px),
            other => panic!("{other:?}"),
        };
        // A click on the far end: the arrows move it, the near end stays.
        let far = HandleId { item: 0, handle: 1 };
        measurements.apply(MeasureGesture::SelectHandle { handle: far }, tool, &image, &ctx);
        assert_eq!((measurements.selected(), measurements.selected_handle()), (Some(0), Some(far)));
        assert!(measurements.nudge_selected([2.0, -1.0], &image, &ctx));
        assert_eq!(ends(&measurements), ([1.0, 1.0], [6.0, 4.0]));
        // A click on the line selects the whole again.
        measurements.apply(MeasureGesture::Select { item: Some(0) }, tool, &image, &ctx);
        assert_eq!(measurements.selected_handle(), None);
        assert!(measurements.nudge_selected([1.0, 0.0], &image, &ctx));
        assert_eq!(ends(&measurements), ([2.0, 1.0], [7.0, 4.0]));
        // A handle dragged and dropped is the one the arrows then fine-tune.
        let near = HandleId { item: 0, handle: 0 };
        measurements.apply(MeasureGesture::MoveHandle { handle: near, to_px: [3.0, 3.0] }, tool, &image, &ctx);
        measurements.apply(MeasureGesture::DropHandle { handle: near, at_px: None }, tool, &image, &ctx);
        assert_eq!(measurements.selected_handle(), Some(near));
        assert!(measurements.nudge_selected([0.0, 1.0], &image, &ctx));
        assert_eq!(ends(&measurements), ([3.0, 4.0], [7.0, 4.0]));
        // A handle that does not exist selects nothing; deselecting drops the handle too.
        measurements.select_handle(HandleId { item: 0, handle: 9 });
        assert_eq!(measurements.selected_handle(), Some(near));
        measurements.select(None);
        assert_eq!(measurements.selected_handle(), None);
    }

    #[test]
    fn arrow_nudges_move_only_the_selected_measurement_as_a_whole() {
        let (image, ctx) = (
            GrayImage::new(8, 8, BitDepth::U8, (0..64).map(|v| v as f32).collect()).unwrap(),
            egui::Context::default(),
        );
        let mut measurements = Measurements::default();
        drag(&mut measurements, MeasureTool::Distance, [1.0, 1.0], [4.0, 5.0]);
        drag(&mut measurements, MeasureTool::Region, [0.0, 0.0], [2.0, 2.0]);
        assert!(!measurements.nudge_selected([1.0, 0.0], &image, &ctx), "nothing selected, nothing moves");
        measurements.select(Some(0));
        assert!(measurements.nudge_selected([1.0, -1.0], &image, &ctx));
        let Measurement::Distance(distance) = &measurements.items()[0] else { panic!() };
        assert_eq!((distance.from_px, distance.to_px), ([2.0, 0.0], [5.0, 4.0]));
        assert_eq!(distance.length_px(), 5.0, "moved, not stretched");
        // A region measures what is under it at its new place: drawn on the helper's image of 7s, the 2 x 2 box moved
        // one column right on this image covers the values 1, 2, 9 and 10.
        measurements.select(Some(1));
        let mean = |m: &Measurements| match &m.items()[1] {
            Measurement::Region(region) => region.stats().flatten().map(|s| s.mean),
            other => panic!("{other:?}"),
        };
        assert_eq!(mean(&measurements), Some(7.0));
        assert!(measurements.nudge_selected([1.0, 0.0], &image, &ctx));
        assert_eq!(mean(&measurements), Some(5.5));
    }

    #[test]
    fn esc_drops_the_ctr_cardiac_line() {
        let tool = MeasureTool::CardiothoracicRatio;
        let mut measurements = Measurements::default();
        drag(&mut measurements, tool, [100.0, 200.0], [220.0, 200.0]);
        assert!(!measurements.is_empty(), "a waiting line is something to clear");
        measurements.cancel_gesture();
        assert_eq!(measurements.pending_cardiac(), None);
        assert!(measurements.is_empty());
        // The next drag starts a new ratio: it is the cardiac line, not the thoracic one.
        drag(&mut measurements, tool, [0.0, 10.0], [400.0, 10.0]);
        assert!(measurements.items().is_empty());
        drag(&mut measurements, tool, [100.0, 10.0], [200.0, 10.0]);
        let [Measurement::CardiothoracicRatio(ctr)] = measurements.items() else {
            panic!("{:?}", measurements.items())
        };
        assert_eq!(ctr.ratio_text(), "CTR 4.00 (thorax narrower than heart?)");
    }
}
