//! An angle between two arms that share a vertex, in degrees (0 to 180).

use crate::imaging::dicom::PixelSpacing;

/// Two arms from `vertex_px` to `first_px` and to `second_px`, in image pixel coordinates (column, row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Angle {
    pub vertex_px: [f32; 2],
    pub first_px: [f32; 2],
    pub second_px: [f32; 2],
}

impl Angle {
    /// The angle between the arms in degrees, `None` when an arm has no length.
    ///
    /// Measured in the patient's plane: with rows and columns spaced differently, the same pixel angle is another
    /// angle in mm, so each axis is scaled by its spacing first. With square pixels (or none known) the scaling
    /// changes nothing and the angle is the one on screen.
    pub fn degrees(&self, spacing: Option<&PixelSpacing>) -> Option<f64> {
        let (column_mm, row_mm) = spacing.map_or((1.0, 1.0), |s| (s.column_mm, s.row_mm));
        let arm = |end: [f32; 2]| {
            [f64::from(end[0] - self.vertex_px[0]) * column_mm, f64::from(end[1] - self.vertex_px[1]) * row_mm]
        };
        let (a, b) = (arm(self.first_px), arm(self.second_px));
        if a == [0.0, 0.0] || b == [0.0, 0.0] {
            return None;
        }
        let dot = a[0] * b[0] + a[1] * b[1];
        let cross = a[0] * b[1] - a[1] * b[0];
        // atan2 of |cross| and dot stays accurate near 0 and 180 degrees, where acos of the cosine does not.
        Some(cross.abs().atan2(dot).to_degrees())
    }

    /// The angle as shown at the vertex, e.g. "63.4°".
    pub fn label(&self, spacing: Option<&PixelSpacing>) -> String {
        match self.degrees(spacing) {
            Some(degrees) => format!("{degrees:.1}°"),
            None => "-°".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::SpacingSource;

    #[test]
    fn anisotropic_pixels_give_the_angle_in_the_patient_not_on_screen() {
        // Arms 10 px right, and 10 px right and 10 px down: 45 degrees in pixels.
        let angle = Angle { vertex_px: [20.0, 30.0], first_px: [30.0, 30.0], second_px: [30.0, 40.0] };
        assert!((angle.degrees(None).unwrap() - 45.0).abs() < 1e-9);
        let square = PixelSpacing { row_mm: 0.168, column_mm: 0.168, source: SpacingSource::PixelSpacing };
        assert!((angle.degrees(Some(&square)).unwrap() - 45.0).abs() < 1e-9);
        // Columns 0.1 mm, rows 0.2 mm: the arms are (1, 0) mm and (1, 2) mm, atan(2) = 63.43494882 degrees.
        let anisotropic = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::ImagerPixelSpacing };
        assert!((angle.degrees(Some(&anisotropic)).unwrap() - 63.434_948_822_922).abs() < 1e-9);
        assert_eq!(angle.label(Some(&anisotropic)), "63.4°");
    }

    #[test]
    fn straight_reflex_and_degenerate_arms() {
        let straight = Angle { vertex_px: [0.0, 0.0], first_px: [5.0, 0.0], second_px: [-3.0, 0.0] };
        assert!((straight.degrees(None).unwrap() - 180.0).abs() < 1e-9);
        // The smaller angle between the arms, whichever way round they were drawn.
        let a = Angle { vertex_px: [0.0, 0.0], first_px: [1.0, 0.0], second_px: [0.0, -1.0] };
        let b = Angle { first_px: a.second_px, second_px: a.first_px, ..a };
        assert_eq!(a.degrees(None), b.degrees(None));
        assert!((a.degrees(None).unwrap() - 90.0).abs() < 1e-9);
        let empty = Angle { vertex_px: [2.0, 2.0], first_px: [2.0, 2.0], second_px: [5.0, 1.0] };
        assert_eq!(empty.degrees(None), None);
        assert_eq!(empty.label(None), "-°");
    }
}
