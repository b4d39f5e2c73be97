//! A Cobb angle: the angle between two lines drawn along vertebral endplates (the upper endplate of the top vertebra
//! of a curve and the lower endplate of its bottom one), 0 to 90 degrees. The lines have no direction, so the angle
//! is the acute one between them, whichever way each was drawn.

use crate::imaging::dicom::PixelSpacing;

/// Two lines, each (one end, the other end) in image pixel coordinates (column, row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cobb {
    pub first: [[f32; 2]; 2],
    pub second: [[f32; 2]; 2],
}

impl Cobb {
    /// The acute angle between the lines in degrees, `None` when a line has no length.
    ///
    /// Measured in the patient's plane, as [`super::Angle`] is: each axis is scaled by its spacing first, which
    /// changes nothing with square pixels (or none known).
    pub fn degrees(&self, spacing: Option<&PixelSpacing>) -> Option<f64> {
        let (column_mm, row_mm) = spacing.map_or((1.0, 1.0), |s| (s.column_mm, s.row_mm));
        let direction = |[a, b]: [[f32; 2]; 2]| [f64::from(b[0] - a[0]) * column_mm, f64::from(b[1] - a[1]) * row_mm];
        let (u, v) = (direction(self.first), direction(self.second));
        if u == [0.0, 0.0] || v == [0.0, 0.0] {
            return None;
        }
        let dot = u[0] * v[0] + u[1] * v[1];
        let cross = u[0] * v[1] - u[1] * v[0];
        // |dot| folds an obtuse angle onto its acute supplement: undirected lines; atan2 stays accurate near 0 and 90.
        Some(cross.abs().atan2(dot.abs()).to_degrees())
    }

    /// The value as shown, e.g. "Cobb 23.4°".
    pub fn label(&self, spacing: Option<&PixelSpacing>) -> String {
        match self.degrees(spacing) {
            Some(degrees) => format!("Cobb {degrees:.1}°"),
            None => "Cobb -° (a line has no length)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::dicom::SpacingSource;

    /// A line 100 px long from `start` at `degrees` (counter-clockwise on screen, rows growing downwards).
    fn line_at(start: [f32; 2], degrees: f64) -> [[f32; 2]; 2] {
        let (sin, cos) = degrees.to_radians().sin_cos();
        [start, [start[0] + (100.0 * cos) as f32, start[1] - (100.0 * sin) as f32]]
    }

    #[test]
    fn the_acute_angle_between_undirected_lines() {
        let cobb = Cobb { first: line_at([10.0, 10.0], 0.0), second: line_at([50.0, 300.0], 30.0) };
        assert!((cobb.degrees(None).unwrap() - 30.0).abs() < 1e-4, "{cobb:?}");
        assert_eq!(cobb.label(None), "Cobb 30.0°");
        // 10 and 170 degrees: 160 between the directions, 20 between the lines.
        let cobb = Cobb { first: line_at([0.0, 0.0], 10.0), second: line_at([0.0, 200.0], 170.0) };
        assert!((cobb.degrees(None).unwrap() - 20.0).abs() < 1e-4, "{cobb:?}");
        // Either line drawn the other way round reads the same.
        let [a, b] = cobb.first;
        let reversed = Cobb { first: [b, a], ..cobb };
        assert!((reversed.degrees(None).unwrap() - 20.0).abs() < 1e-4);
        let parallel = Cobb { first: line_at([0.0, 0.0], 15.0), second: line_at([0.0, 50.0], 195.0) };
        assert!(parallel.degrees(None).unwrap() < 1e-4);
        let perpendicular = Cobb { first: line_at([0.0, 0.0], 0.0), second: line_at([0.0, 50.0], 90.0) };
        assert!((perpendicular.degrees(None).unwrap() - 90.0).abs() < 1e-4);
        let empty = Cobb { first: [[3.0, 3.0], [3.0, 3.0]], ..cobb };
        assert_eq!(empty.degrees(None), None);
        assert_eq!(empty.label(None), "Cobb -° (a line has no length)");
    }

    #[test]
    fn anisotropic_pixels_give_the_angle_in_the_patient() {
        // 45 degrees up and 45 down on screen: 90 degrees in pixels.
        let cobb = Cobb { first: [[0.0, 0.0], [10.0, -10.0]], second: [[0.0, 0.0], [10.0, 10.0]] };
        assert!((cobb.degrees(None).unwrap() - 90.0).abs() < 1e-9);
        // Columns 0.1 mm, rows 0.2 mm: (1, -2) mm and (1, 2) mm, each atan(2) = 63.435 degrees off the horizontal,
        // 126.870 apart: 53.130 degrees between the lines (atan2(4, 3): cross 4, dot -3).
        let spacing = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::PixelSpacing };
        assert!((cobb.degrees(Some(&spacing)).unwrap() - 53.130_102_354_156).abs() < 1e-9);
        assert_eq!(cobb.label(Some(&spacing)), "Cobb 53.1°");
    }
}
