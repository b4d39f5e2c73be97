//! A distance: one segment, its length in mm where the DICOM file gives the pixel size (Pixel Spacing, else Imager
//! Pixel Spacing, brought to the object by the Estimated Radiographic Magnification Factor where given, else said to
//! be at the detector), in image pixels otherwise (PNG, or a file without spacing).

use crate::imaging::dicom::PixelSpacing;

/// A measured segment in image pixel coordinates (column, row; continuous, 0 at the image's top-left corner).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distance {
    pub from_px: [f32; 2],
    pub to_px: [f32; 2],
}

impl Distance {
    /// Length in image pixels.
    pub fn length_px(&self) -> f64 {
        let dx = f64::from(self.to_px[0] - self.from_px[0]);
        let dy = f64::from(self.to_px[1] - self.from_px[1]);
        dx.hypot(dy)
    }

    /// The length as shown beside the line: mm with the file's pixel size, else px.
    pub fn label(&self, spacing: Option<&PixelSpacing>) -> String {
        match spacing {
            Some(spacing) => {
                let mm = spacing.length_mm(self.from_px.map(f64::from), self.to_px.map(f64::from));
                match spacing.source.qualifier() {
                    qualifier if qualifier.is_empty() => format!("{mm:.1} mm"),
                    qualifier => format!("{mm:.1} mm {qualifier}"),
                }
            }
            None => format!("{:.1} px", self.length_px()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::SpacingSource;

    #[test]
    fn lengths_take_each_axis_spacing_and_say_where_they_are_measured() {
        // 30 columns and 40 rows.
        let segment = Distance { from_px: [10.0, 20.0], to_px: [40.0, 60.0] };
        assert_eq!(segment.label(None), "50.0 px");
        let square = PixelSpacing { row_mm: 0.168, column_mm: 0.168, source: SpacingSource::PixelSpacing };
        assert_eq!(segment.label(Some(&square)), "8.4 mm");
        // Rows 0.2 mm apart, columns 0.1 mm: hypot(3, 8) = 8.544 mm.
        let anisotropic = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::ImagerPixelSpacing };
        assert_eq!(segment.label(Some(&anisotropic)), "8.5 mm at the detector");
        assert!((anisotropic.length_mm([10.0, 20.0], [40.0, 60.0]) - 73f64.sqrt()).abs() < 1e-12);
        let corrected = PixelSpacing {
            row_mm: 0.16,
            column_mm: 0.16,
            source: SpacingSource::MagnificationCorrected { factor: 1.25 },
        };
        assert_eq!(segment.label(Some(&corrected)), "8.0 mm corrected for magnification x1.25");
    }
}
