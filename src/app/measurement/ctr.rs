//! The cardiothoracic ratio (CTR): the maximal horizontal cardiac diameter over the maximal internal thoracic
//! diameter. Only each line's horizontal extent counts, as on a film read by hand: a drag that slants a little still
//! measures the width across the chest. The ratio needs no unit (the column spacing cancels), so it reads on a PNG
//! too; the widths are given in mm where the file gives the pixel size.

use crate::imaging::dicom::PixelSpacing;

/// A horizontal diameter in image pixel coordinates: from column `left_px` to `right_px` at row `y_px`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diameter {
    pub left_px: f32,
    pub right_px: f32,
    pub y_px: f32,
}

impl Diameter {
    /// The horizontal extent of a drag from `from_px` to `to_px`, at the drag's mean height.
    pub fn from_drag(from_px: [f32; 2], to_px: [f32; 2]) -> Self {
        Self {
            left_px: from_px[0].min(to_px[0]),
            right_px: from_px[0].max(to_px[0]),
            y_px: (from_px[1] + to_px[1]) / 2.0,
        }
    }

    /// The line as drawn: (left end, right end).
    pub fn ends_px(&self) -> ([f32; 2], [f32; 2]) {
        ([self.left_px, self.y_px], [self.right_px, self.y_px])
    }

    pub fn width_px(&self) -> f64 {
        f64::from(self.right_px - self.left_px)
    }

    /// The width in mm: a horizontal line spans columns, so only the column spacing counts.
    pub fn width_mm(&self, spacing: &PixelSpacing) -> f64 {
        self.width_px() * spacing.column_mm
    }

    /// "123.4 mm" with the file's pixel size, else "612.0 px".
    fn width_text(&self, spacing: Option<&PixelSpacing>) -> String {
        match spacing {
            Some(spacing) => format!("{:.1} mm", self.width_mm(spacing)),
            None => format!("{:.1} px", self.width_px()),
        }
    }
}

/// A cardiothoracic ratio: the cardiac diameter (first drag) and the thoracic one (second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CardiothoracicRatio {
    pub cardiac: Diameter,
    pub thoracic: Diameter,
}

impl CardiothoracicRatio {
    /// Cardiac over thoracic width; `None` when the thoracic line has no horizontal extent.
    pub fn ratio(&self) -> Option<f64> {
        let thoracic_px = self.thoracic.width_px();
        (thoracic_px > 0.0).then(|| self.cardiac.width_px() / thoracic_px)
    }

    /// The ratio as shown, "CTR 0.48"; a ratio over 1 says the lines look swapped or misplaced rather than passing
    /// as a very large heart.
    pub fn ratio_text(&self) -> String {
        match self.ratio() {
            Some(ratio) if ratio > 1.0 => format!("CTR {ratio:.2} (thorax narrower than heart?)"),
            Some(ratio) => format!("CTR {ratio:.2}"),
            None => "CTR - (the thoracic line has no width)".to_owned(),
        }
    }

    /// Both widths, "heart 120.0 mm / thorax 250.0 mm at the detector".
    pub fn widths_text(&self, spacing: Option<&PixelSpacing>) -> String {
        let widths =
            format!("heart {} / thorax {}", self.cardiac.width_text(spacing), self.thoracic.width_text(spacing));
        match spacing.map(|s| s.source.qualifier()) {
            Some(qualifier) if !qualifier.is_empty() => format!("{widths} {qualifier}"),
            _ => widths,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::SpacingSource;

    #[test]
    fn only_the_horizontal_extent_and_the_column_spacing_count() {
        // Drags that slant (and one drawn right to left): 120 px and 250 px across.
        let ctr = CardiothoracicRatio {
            cardiac: Diameter::from_drag([100.0, 200.0], [220.0, 260.0]),
            thoracic: Diameter::from_drag([300.0, 300.0], [50.0, 250.0]),
        };
        assert_eq!(ctr.cardiac, Diameter { left_px: 100.0, right_px: 220.0, y_px: 230.0 });
        assert_eq!(ctr.thoracic.ends_px(), ([50.0, 275.0], [300.0, 275.0]));
        assert!((ctr.ratio().unwrap() - 0.48).abs() < 1e-12);
        assert_eq!(ctr.ratio_text(), "CTR 0.48");
        assert_eq!(ctr.widths_text(None), "heart 120.0 px / thorax 250.0 px");
        // Columns 0.1 mm, rows 0.2 mm: the widths are 12 mm and 25 mm whatever the rows' spacing and the slant.
        let anisotropic = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::ImagerPixelSpacing };
        assert!((ctr.cardiac.width_mm(&anisotropic) - 12.0).abs() < 1e-9);
        assert_eq!(ctr.widths_text(Some(&anisotropic)), "heart 12.0 mm / thorax 25.0 mm at the detector");
        let square = PixelSpacing { row_mm: 0.168, column_mm: 0.168, source: SpacingSource::PixelSpacing };
        assert_eq!(ctr.widths_text(Some(&square)), "heart 20.2 mm / thorax 42.0 mm");
    }

    #[test]
    fn a_thorax_narrower_than_the_heart_is_flagged_and_a_vertical_one_has_no_ratio() {
        let swapped = CardiothoracicRatio {
            cardiac: Diameter::from_drag([50.0, 300.0], [300.0, 300.0]),
            thoracic: Diameter::from_drag([100.0, 200.0], [300.0, 200.0]),
        };
        assert!((swapped.ratio().unwrap() - 1.25).abs() < 1e-12);
        assert_eq!(swapped.ratio_text(), "CTR 1.25 (thorax narrower than heart?)");
        let equal = CardiothoracicRatio { thoracic: swapped.cardiac, ..swapped };
        assert_eq!(equal.ratio_text(), "CTR 1.00", "equal widths are odd but not narrower");
        let vertical = CardiothoracicRatio { thoracic: Diameter::from_drag([80.0, 10.0], [80.0, 300.0]), ..swapped };
        assert_eq!(vertical.ratio(), None);
        assert_eq!(vertical.ratio_text(), "CTR - (the thoracic line has no width)");
    }
}
