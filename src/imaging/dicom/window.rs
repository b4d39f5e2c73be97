//! The VOI transform (PS3.3 C.11.2.1.2): window functions and rendering to 8-bit display grey levels.

use super::lut::LookupTable;
use super::{DicomImage, Window};
use serde::Serialize;

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiLutFunction {
    /// C.11.2.1.2.1 (the default).
    #[default]
    Linear,
    /// C.11.2.1.3.2.
    LinearExact,
    /// C.11.2.1.3.1.
    Sigmoid,
}

impl VoiLutFunction {
    /// Parses the attribute value; unknown names give `None`.
    pub fn from_dicom(name: &str) -> Option<VoiLutFunction> {
        // Code strings are upper case; a writer that used lower case still means the defined term.
        match name.trim().to_ascii_uppercase().as_str() {
            "LINEAR" => Some(VoiLutFunction::Linear),
            "LINEAR_EXACT" => Some(VoiLutFunction::LinearExact),
            "SIGMOID" => Some(VoiLutFunction::Sigmoid),
            _ => None,
        }
    }
}

/// A non-linear VOI LUT from the VOI LUT Sequence (0028,3010).
pub type VoiLut = LookupTable;

/// Maps a modality value to display intensity in `[0, 1]` with `window` and `function`.
pub fn apply_voi(value: f64, window: Window, function: VoiLutFunction) -> f64 {
    let Window { center, width } = window;
    match function {
        VoiLutFunction::Linear => {
            // C.11.2.1.2.1: width below 1 is not allowed; treat it as a threshold at 1.
            let width = width.max(1.0);
            let low = center - 0.5 - (width - 1.0) / 2.0;
            let high = center - 0.5 + (width - 1.0) / 2.0;
            if value <= low {
                0.0
            } else if value > high || width <= 1.0 {
                1.0
            } else {
                ((value - (center - 0.5)) / (width - 1.0) + 0.5).clamp(0.0, 1.0)
            }
        }
        VoiLutFunction::LinearExact => {
            let width = width.max(f64::MIN_POSITIVE);
            if value <= center - width / 2.0 {
                0.0
            } else if value > center + width / 2.0 {
                1.0
            } else {
                ((value - center) / width + 0.5).clamp(0.0, 1.0)
            }
        }
        VoiLutFunction::Sigmoid => {
            let width = width.max(f64::MIN_POSITIVE);
            1.0 / (1.0 + (-4.0 * (value - center) / width).exp())
        }
    }
}

/// Renders `image` to row-major 8-bit display grey levels, MONOCHROME1 inverted.
///
/// With `window = None` the file's own VOI is used (VOI LUT Sequence if present, else the stored window,
/// else one spanning the pixel range); an explicit window (a user's window/level) overrides it.
pub fn render_display_u8(image: &DicomImage, window: Option<Window>) -> Vec<u8> {
    let invert = image.photometric.invert_for_display();
    let to_byte = |intensity: f64| {
        let intensity = if invert { 1.0 - intensity } else { intensity };
        // intensity is clamped to [0, 1], so the rounded value fits in u8.
        (intensity.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    match (window, &image.voi_lut) {
        (None, Some(lut)) if !lut.is_empty() => {
            let scale = lut.max_entry();
            image.pixels.iter().map(|&v| to_byte(f64::from(lut.lookup(f64::from(v))) / scale)).collect()
        }
        _ => {
            let window = window.unwrap_or_else(|| image.display_window().0);
            image.pixels.iter().map(|&v| to_byte(apply_voi(f64::from(v), window, image.voi_lut_function))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(center: f64, width: f64) -> Window {
        Window { center, width }
    }

    #[test]
    fn linear_matches_the_standard_formula() {
        // PS3.3 C.11.2.1.2.1 with center 2048, width 4096: x <= 0 -> 0, x > 4095 -> 1.
        let window = w(2048.0, 4096.0);
        assert_eq!(apply_voi(0.0, window, VoiLutFunction::Linear), 0.0);
        assert_eq!(apply_voi(4096.0, window, VoiLutFunction::Linear), 1.0);
        let mid = apply_voi(2047.5, window, VoiLutFunction::Linear);
        assert!((mid - 0.5).abs() < 1e-12, "{mid}");
        // ((1000 - 2047.5) / 4095 + 0.5)
        let expected = (1000.0 - 2047.5) / 4095.0 + 0.5;
        assert!((apply_voi(1000.0, window, VoiLutFunction::Linear) - expected).abs() < 1e-12);
    }

    #[test]
    fn linear_exact_and_sigmoid() {
        let window = w(100.0, 50.0);
        assert_eq!(apply_voi(75.0, window, VoiLutFunction::LinearExact), 0.0);
        assert!((apply_voi(100.0, window, VoiLutFunction::LinearExact) - 0.5).abs() < 1e-12);
        assert_eq!(apply_voi(125.1, window, VoiLutFunction::LinearExact), 1.0);
        assert!((apply_voi(100.0, window, VoiLutFunction::Sigmoid) - 0.5).abs() < 1e-12);
        let expected = 1.0 / (1.0 + (-4.0f64 * 10.0 / 50.0).exp());
        assert!((apply_voi(110.0, window, VoiLutFunction::Sigmoid) - expected).abs() < 1e-12);
    }

    #[test]
    fn parses_function_names() {
        assert_eq!(VoiLutFunction::from_dicom("SIGMOID "), Some(VoiLutFunction::Sigmoid));
        assert_eq!(VoiLutFunction::from_dicom("LINEAR_EXACT"), Some(VoiLutFunction::LinearExact));
        assert_eq!(VoiLutFunction::from_dicom("CUBIC"), None);
    }
}
