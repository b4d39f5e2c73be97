//! Window/level: which value range maps to black..white. The shader in `shaders/radiograph.wgsl` applies the
//! same formula as [`Window::display_fraction`]; a test pins them together.

use serde::{Deserialize, Serialize};

/// A display window in the image's own units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub center: f32,
    pub width: f32,
}

/// Smallest width allowed, so a window never divides by zero.
pub const MIN_WINDOW_WIDTH: f32 = 1e-3;

impl Window {
    /// The window spanning `[lo, hi]`.
    pub fn spanning(lo: f32, hi: f32) -> Self {
        Self { center: 0.5 * (lo + hi), width: (hi - lo).max(MIN_WINDOW_WIDTH) }
    }

    /// Where `value` falls from black (0) to white (1).
    pub fn display_fraction(&self, value: f32, inverted: bool) -> f32 {
        let width = self.width.max(MIN_WINDOW_WIDTH);
        let t = ((value - self.center) / width + 0.5).clamp(0.0, 1.0);
        if inverted { 1.0 - t } else { t }
    }

    /// This window expressed as fractions of a nominal range, to link viewports of different bit depths.
    pub fn to_relative(&self, range: (f32, f32)) -> RelativeWindow {
        let span = (range.1 - range.0).max(MIN_WINDOW_WIDTH);
        RelativeWindow { center: (self.center - range.0) / span, width: self.width / span }
    }
}

/// A window as fractions of an image's nominal range (0 = range start, 1 = range end).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RelativeWindow {
    pub center: f32,
    pub width: f32,
}

impl RelativeWindow {
    /// Back to image units for an image with nominal range `range`.
    pub fn to_absolute(&self, range: (f32, f32)) -> Window {
        let span = range.1 - range.0;
        Window { center: range.0 + self.center * span, width: (self.width * span).max(MIN_WINDOW_WIDTH) }
    }
}

/// A named window preset, stored relative to the nominal range so it applies to 8- and 16-bit images alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowPreset {
    pub name: String,
    pub window: RelativeWindow,
}

/// The whole nominal range.
pub const FULL_RANGE: RelativeWindow = RelativeWindow { center: 0.5, width: 1.0 };

/// Presets a chest radiologist reaches for first, as fractions of the value range (projection radiographs have no
/// absolute unit; CT in HU gets [`ct_presets_hu`] instead).
pub fn default_presets() -> Vec<WindowPreset> {
    let preset = |name: &str, center: f32, width: f32| WindowPreset {
        name: name.to_owned(),
        window: RelativeWindow { center, width },
    };
    vec![
        WindowPreset { name: "Full range".to_owned(), window: FULL_RANGE },
        preset("Lung", 0.40, 0.55),
        preset("Mediastinum", 0.65, 0.35),
        preset("Bone", 0.75, 0.30),
    ]
}

/// The standard CT windows in Hounsfield units (Radiopaedia, "Windowing (CT)"), offered instead of the range
/// fractions of [`default_presets`] when an image's values are HU.
pub fn ct_presets_hu() -> [(&'static str, Window); 3] {
    [
        ("Lung", Window { center: -600.0, width: 1500.0 }),
        ("Mediastinum", Window { center: 50.0, width: 350.0 }),
        ("Bone", Window { center: 400.0, width: 1800.0 }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maps_edges_to_black_and_white() {
        let w = Window { center: 100.0, width: 50.0 };
        assert_eq!(w.display_fraction(75.0, false), 0.0);
        assert_eq!(w.display_fraction(125.0, false), 1.0);
        assert!((w.display_fraction(100.0, false) - 0.5).abs() < 1e-6);
        assert_eq!(w.display_fraction(0.0, true), 1.0);
    }

    #[test]
    fn relative_round_trip_between_depths() {
        let w8 = Window { center: 127.5, width: 255.0 };
        let rel = w8.to_relative((0.0, 255.0));
        let w16 = rel.to_absolute((0.0, 65535.0));
        assert!((w16.center - 32767.5).abs() < 0.01);
        assert!((w16.width - 65535.0).abs() < 0.01);
    }

    #[test]
    fn zero_width_never_divides_by_zero() {
        let w = Window { center: 10.0, width: 0.0 };
        assert!(w.display_fraction(10.0, false).is_finite());
    }
}
