//! How one viewport looks at its image: zoom, pan, window/level, invert, colour map.

use serde::{Deserialize, Serialize};

use crate::app::radiograph_renderer::Colormap;
use crate::imaging::window::RelativeWindow;
use crate::imaging::{GrayImage, ImageStats, Window};

/// Zoom limits relative to "fit to viewport".
pub const MIN_ZOOM: f32 = 0.1;
pub const MAX_ZOOM: f32 = 64.0;

/// Resolution-independent view parameters, so two viewports of different images can be linked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewTransform {
    /// 1.0 = the whole image fits the viewport.
    pub zoom: f32,
    /// The image point at the viewport centre, as a fraction of the image size (0.5, 0.5 = image centre).
    pub center_uv: [f32; 2],
}

impl Default for ViewTransform {
    fn default() -> Self {
        Self { zoom: 1.0, center_uv: [0.5, 0.5] }
    }
}

/// Everything a viewport shows besides the pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    pub transform: ViewTransform,
    pub window: Window,
    pub inverted: bool,
    pub colormap: Colormap,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            transform: ViewTransform::default(),
            window: Window::spanning(0.0, 255.0),
            inverted: false,
            colormap: Colormap::Gray,
        }
    }
}

impl ViewState {
    /// The first view of a new image: fitted, full nominal range for 8-bit data, a robust percentile window for
    /// deeper data (16-bit radiographs rarely use their whole range).
    pub fn initial(image: &GrayImage, stats: &ImageStats) -> Self {
        let window = match image.depth() {
            crate::imaging::BitDepth::U8 => Window::spanning(0.0, 255.0),
            _ => Window::spanning(stats.p005, stats.p995),
        };
        Self { window, ..Self::default() }
    }

    /// The window as fractions of the image's display range ([`GrayImage::display_range`]).
    pub fn relative_window(&self, image: &GrayImage) -> RelativeWindow {
        self.window.to_relative(image.display_range())
    }

    pub fn fit(&mut self) {
        self.transform = ViewTransform::default();
    }
}
