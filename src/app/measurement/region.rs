//! A region of interest: an axis-aligned ellipse, with the mean, standard deviation, minimum and maximum of the image
//! values inside it, its pixel count and its area.
//!
//! A pixel is inside when its centre lies inside the ellipse or on its boundary. The standard deviation is the
//! population one (divided by n, not n - 1): it describes these pixels, not a sample drawn from a larger set.
//! Non-finite values (possible in a float image) are left out of every statistic and of the count.

use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};

use crate::imaging::GrayImage;
use crate::imaging::dicom::PixelSpacing;

/// Regions whose bounding box holds at most this many pixels are measured on the UI thread: 0.5-1 ms in release
/// (the timing test below), inside a frame. A 3000 x 3000 px film's inscribed ellipse took 28-32 ms: off the UI thread.
pub const INLINE_STATS_MAX_PX: usize = 250_000;

/// An axis-aligned ellipse in image pixel coordinates (column, row; continuous).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ellipse {
    pub center_px: [f32; 2],
    /// Half the width and half the height.
    pub radii_px: [f32; 2],
}

impl Ellipse {
    /// The ellipse inscribed in the box with opposite corners `a` and `b` (where a drag began and ended).
    pub fn from_corners(a: [f32; 2], b: [f32; 2]) -> Self {
        Self {
            center_px: [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0],
            radii_px: [(b[0] - a[0]).abs() / 2.0, (b[1] - a[1]).abs() / 2.0],
        }
    }

    /// Whether pixel (`column`, `row`) is inside: its centre (column + 0.5, row + 0.5) is in the ellipse or on it.
    pub fn contains_pixel(&self, column: usize, row: usize) -> bool {
        let [rx, ry] = self.radii_px.map(f64::from);
        if rx <= 0.0 || ry <= 0.0 {
            return false;
        }
        let dx = (column as f64 + 0.5 - f64::from(self.center_px[0])) / rx;
        let dy = (row as f64 + 0.5 - f64::from(self.center_px[1])) / ry;
        dx * dx + dy * dy <= 1.0
    }

    /// The columns of `row` inside the ellipse and the image (`width_px` wide), if any.
    fn row_columns(&self, row: usize, width_px: usize) -> Option<RangeInclusive<usize>> {
        let [rx, ry] = self.radii_px.map(f64::from);
        if rx <= 0.0 || ry <= 0.0 || width_px == 0 {
            return None;
        }
        let dy = (row as f64 + 0.5 - f64::from(self.center_px[1])) / ry;
        if dy.abs() > 1.0 {
            return None;
        }
        let half = rx * (1.0 - dy * dy).sqrt();
        let cx = f64::from(self.center_px[0]);
        let last_column = (width_px - 1) as f64;
        // An estimate from the square root, then settled against `contains_pixel`, so the boundary rule is one rule.
        let mut first = (cx - half - 0.5).ceil().clamp(0.0, last_column) as usize;
        let mut last = (cx + half - 0.5).floor().clamp(0.0, last_column) as usize;
        if first > 0 && self.contains_pixel(first - 1, row) {
            first -= 1;
        }
        while first <= last && !self.contains_pixel(first, row) {
            first += 1;
        }
        if last + 1 < width_px && self.contains_pixel(last + 1, row) {
            last += 1;
        }
        while last >= first && !self.contains_pixel(last, row) {
            if last == 0 {
                return None;
            }
            last -= 1;
        }
        (first <= last).then_some(first..=last)
    }

    /// The rows the ellipse can touch inside an image `height_px` tall.
    fn rows(&self, height_px: usize) -> RangeInclusive<usize> {
        let [cy, ry] = [self.center_px[1], self.radii_px[1]].map(f64::from);
        let last_row = height_px.saturating_sub(1) as f64;
        let first = (cy - ry - 0.5).floor().clamp(0.0, last_row) as usize;
        let last = (cy + ry - 0.5).ceil().clamp(0.0, last_row) as usize;
        first..=last
    }

    /// Pixels in the ellipse's bounding box inside an image of that size: the work its statistics take.
    pub fn bounding_box_px(&self, width_px: usize, height_px: usize) -> usize {
        let columns = (f64::from(self.radii_px[0]) * 2.0 + 2.0).clamp(0.0, width_px as f64) as usize;
        let rows = self.rows(height_px).count();
        columns.saturating_mul(rows)
    }

    /// The ellipse's own area (pi a b), px².
    pub fn area_px2(&self) -> f64 {
        std::f64::consts::PI * f64::from(self.radii_px[0]) * f64::from(self.radii_px[1])
    }

    /// The ellipse's area in mm²: a pixel is `column_mm` wide and `row_mm` tall.
    pub fn area_mm2(&self, spacing: &PixelSpacing) -> f64 {
        self.area_px2() * spacing.column_mm * spacing.row_mm
    }
}

/// Statistics of the image values inside a region, in the image's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionStats {
    pub mean: f64,
    /// Population standard deviation.
    pub sd: f64,
    pub min: f32,
    pub max: f32,
    /// Pixels inside with a finite value.
    pub count_px: usize,
}

/// Mean, SD, min and max of `image`'s finite values inside `ellipse`; `None` when there are none (the ellipse is
/// outside the image, or empty). Two passes: the mean first, then the squared deviations from it, which keeps the SD
/// exact where a sum of squares would cancel (values near 3000 varying by 1).
pub fn region_stats(image: &GrayImage, ellipse: &Ellipse) -> Option<RegionStats> {
    let (width_px, height_px) = (image.width_px(), image.height_px());
    let pixels = image.pixels();
    let spans: Vec<&[f32]> = ellipse
        .rows(height_px)
        .filter_map(|row| {
            let columns = ellipse.row_columns(row, width_px)?;
            pixels.get(row * width_px + columns.start()..=row * width_px + columns.end())
        })
        .collect();
    let (mut sum, mut count_px, mut min, mut max) = (0.0f64, 0usize, f32::INFINITY, f32::NEG_INFINITY);
    for &value in spans.iter().flat_map(|span| span.iter()).filter(|v| v.is_finite()) {
        sum += f64::from(value);
        count_px += 1;
        min = min.min(value);
        max = max.max(value);
    }
    if count_px == 0 {
        return None;
    }
    let mean = sum / count_px as f64;
    let squares: f64 = spans
        .iter()
        .flat_map(|span| span.iter())
        .filter(|v| v.is_finite())
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum();
    Some(RegionStats { mean, sd: (squares / count_px as f64).sqrt(), min, max, count_px })
}

/// Statistics measured once per region and image: `None` inside while a thread is still measuring.
type StatsCell = Arc<OnceLock<Option<RegionStats>>>;

/// A region drawn on a view, with its statistics for the image they were measured on.
#[derive(Clone, Debug)]
pub struct Region {
    pub ellipse: Ellipse,
    stats: StatsCell,
    /// The image the statistics are of ([`GrayImage::id`]).
    image_id: u64,
}

impl Region {
    /// Measures `ellipse` on `image`: here when small, else on a thread that repaints `ctx` when done.
    pub fn new(ellipse: Ellipse, image: &GrayImage, ctx: &egui::Context) -> Self {
        Self { ellipse, stats: measure(ellipse, image, ctx), image_id: image.id() }
    }

    /// `ellipse` while one of its handles is dragged: measured at once when that is quick, else left "measuring" until
    /// the drop measures it ([`Region::new`]), rather than a thread started every frame of the drag.
    pub fn resized(ellipse: Ellipse, image: &GrayImage, ctx: &egui::Context) -> Self {
        if ellipse.bounding_box_px(image.width_px(), image.height_px()) <= INLINE_STATS_MAX_PX {
            Self::new(ellipse, image, ctx)
        } else {
            Self { ellipse, stats: StatsCell::default(), image_id: image.id() }
        }
    }

    /// The statistics, or `None` while they are being measured.
    pub fn stats(&self) -> Option<Option<RegionStats>> {
        self.stats.get().copied()
    }

    /// Measures again when the view's image has changed under the region (a live generator update keeps the size
    /// and the regions).
    pub fn follow_image(&mut self, image: &GrayImage, ctx: &egui::Context) {
        if self.image_id != image.id() {
            *self = Self::new(self.ellipse, image, ctx);
        }
    }
}

fn measure(ellipse: Ellipse, image: &GrayImage, ctx: &egui::Context) -> StatsCell {
    let cell = StatsCell::default();
    if ellipse.bounding_box_px(image.width_px(), image.height_px()) <= INLINE_STATS_MAX_PX {
        let _ = cell.set(region_stats(image, &ellipse));
        return cell;
    }
    let (image_for_thread, cell_for_thread, ctx_for_thread) = (image.clone(), cell.clone(), ctx.clone());
    let spawned = std::thread::Builder::new().name("region stats".to_owned()).spawn(move || {
        let _ = cell_for_thread.set(region_stats(&image_for_thread, &ellipse));
        ctx_for_thread.request_repaint();
    });
    if spawned.is_err() {
        // No thread to be had: a slow frame is better than a region that never reads.
        let _ = cell.set(region_stats(image, &ellipse));
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::BitDepth;
    use crate::imaging::dicom::SpacingSource;

    /// An image whose value at (column, row) is `f(column, row)`.
    fn image_from(width_px: usize, height_px: usize, f: impl Fn(usize, usize) -> f32) -> GrayImage {
        let pixels = (0..height_px).flat_map(|row| (0..width_px).map(move |column| (column, row)));
        GrayImage::new(width_px, height_px, BitDepth::F32, pixels.map(|(c, r)| f(c, r)).collect()).unwrap()
    }

    /// The statistics straight from the definition: every pixel of the image tested against the ellipse.
    fn direct_stats(image: &GrayImage, ellipse: &Ellipse) -> (Vec<f64>, f64, f64) {
        let mut inside = Vec::new();
        for row in 0..image.height_px() {
            for column in 0..image.width_px() {
                let value = image.value_at(column, row).unwrap();
                if ellipse.contains_pixel(column, row) && value.is_finite() {
                    inside.push(f64::from(value));
                }
            }
        }
        let n = inside.len() as f64;
        let mean = inside.iter().sum::<f64>() / n;
        let sd = (inside.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        (inside, mean, sd)
    }

    #[test]
    fn pixel_centres_on_the_boundary_are_inside() {
        // A circle of radius 2 px centred on pixel (5, 5)'s centre: 13 pixels, those 2 px straight out included,
        // the diagonal (7, 6) at 2.24 px not.
        let circle = Ellipse::from_corners([3.5, 3.5], [7.5, 7.5]);
        assert_eq!(circle.center_px, [5.5, 5.5]);
        assert!(circle.contains_pixel(7, 5) && circle.contains_pixel(3, 5) && circle.contains_pixel(5, 3));
        assert!(!circle.contains_pixel(7, 6) && !circle.contains_pixel(6, 7) && !circle.contains_pixel(2, 5));
        // Values 10 * column + row, known by hand: rows 3 to 7 hold 1, 3, 5, 3 and 1 pixels.
        let image = image_from(12, 10, |column, row| (10 * column + row) as f32);
        let stats = region_stats(&image, &circle).unwrap();
        assert_eq!(stats.count_px, 13);
        // Symmetric about (5, 5): the mean is the centre's value, 55.
        assert!((stats.mean - 55.0).abs() < 1e-12, "{stats:?}");
        assert_eq!((stats.min, stats.max), (35.0, 75.0));
        // Deviations from 55: columns give 10 * (-2..2) and rows -2..2; sum of squares over the 13 pixels
        // = 100 * (4 + 4 + 3 * (1 + 1)) + (4 + 4 + 3 * (1 + 1)) = 1414; SD = sqrt(1414 / 13).
        assert!((stats.sd - (1414.0f64 / 13.0).sqrt()).abs() < 1e-12, "{stats:?}");
    }

    #[test]
    fn statistics_match_a_direct_computation_on_an_uneven_image() {
        let image = image_from(37, 23, |c, r| ((c * 7919 + r * 104_729) % 1000) as f32 - 300.0);
        for (a, b) in [([2.3, 1.7], [30.9, 20.2]), ([-5.0, -4.0], [10.2, 9.9]), ([20.0, 5.0], [45.0, 30.0])] {
            let ellipse = Ellipse::from_corners(a, b);
            let stats = region_stats(&image, &ellipse).unwrap();
            let (inside, mean, sd) = direct_stats(&image, &ellipse);
            assert_eq!(stats.count_px, inside.len(), "{a:?} {b:?}");
            assert!((stats.mean - mean).abs() < 1e-9 && (stats.sd - sd).abs() < 1e-9, "{stats:?} vs {mean} {sd}");
            let lo = inside.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = inside.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((f64::from(stats.min), f64::from(stats.max)), (lo, hi));
        }
    }

    #[test]
    fn outside_empty_and_non_finite() {
        let image = image_from(8, 8, |c, _| if c == 4 { f32::NAN } else { c as f32 });
        assert_eq!(region_stats(&image, &Ellipse::from_corners([20.0, 20.0], [30.0, 30.0])), None);
        assert_eq!(region_stats(&image, &Ellipse::from_corners([3.0, 3.0], [3.0, 6.0])), None, "no width");
        // Column 4 is NaN: left out of the values and the count.
        let column_4 = Ellipse::from_corners([4.0, 0.0], [5.0, 8.0]);
        assert_eq!(region_stats(&image, &column_4), None);
        let stats = region_stats(&image, &Ellipse::from_corners([0.0, 0.0], [8.0, 8.0])).unwrap();
        assert_eq!(stats.max, 7.0);
        assert!(stats.mean.is_finite());
    }

    #[test]
    fn area_in_mm2_takes_both_spacings() {
        // 20 x 10 px box: pi * 10 * 5 px²; columns 0.1 mm, rows 0.2 mm: pi * 1 mm * 1 mm.
        let ellipse = Ellipse::from_corners([30.0, 40.0], [10.0, 30.0]);
        assert!((ellipse.area_px2() - 50.0 * std::f64::consts::PI).abs() < 1e-9);
        let spacing = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::PixelSpacing };
        assert!((ellipse.area_mm2(&spacing) - std::f64::consts::PI).abs() < 1e-9);
    }

    #[test]
    fn a_large_region_is_measured_off_the_ui_thread() {
        let image = image_from(1000, 1000, |c, r| (c + r) as f32);
        let ctx = egui::Context::default();
        let large = Region::new(Ellipse::from_corners([0.0, 0.0], [1000.0, 1000.0]), &image, &ctx);
        let start = std::time::Instant::now();
        while large.stats().is_none() {
            assert!(start.elapsed().as_secs() < 30, "never measured");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let stats = large.stats().flatten().unwrap();
        assert!((stats.mean - 999.0).abs() < 1e-6, "{stats:?}");
        let small = Region::new(Ellipse::from_corners([0.0, 0.0], [100.0, 100.0]), &image, &ctx);
        assert!(small.stats().is_some(), "small regions read at once");
    }

    /// The timing behind [`INLINE_STATS_MAX_PX`]: `cargo test --release --lib region_stats_timing -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn region_stats_timing() {
        for side_px in [500usize, 3000] {
            let image = image_from(side_px, side_px, |c, r| ((c * 31 + r * 17) % 4096) as f32);
            let side = side_px as f32;
            let ellipse = Ellipse::from_corners([0.0, 0.0], [side, side]);
            let start = std::time::Instant::now();
            let runs = 10;
            for _ in 0..runs {
                std::hint::black_box(region_stats(&image, std::hint::black_box(&ellipse)));
            }
            let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
            println!("{side_px}x{side_px} px image, inscribed ellipse: {ms:.2} ms");
        }
    }
}
