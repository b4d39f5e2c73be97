//! Settings that persist between runs (eframe storage).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::app::path_dialog::DialogBackend;
use crate::app::radiograph_renderer::Colormap;
use crate::imaging::window::{WindowPreset, default_presets};

/// The eframe storage key.
pub const SETTINGS_KEY: &str = "thorax.settings";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the last file dialog ended, to start the next one there.
    pub last_folder: Option<PathBuf>,
    /// Zoom, pan and window/level of the two viewports move together.
    pub link_viewports: bool,
    pub window_presets: Vec<WindowPreset>,
    pub colormap: Colormap,
    pub show_histograms: bool,
    /// The desktop's file dialogs or the workbench's own chooser.
    pub file_dialogs: DialogBackend,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            last_folder: None,
            link_viewports: true,
            window_presets: default_presets(),
            colormap: Colormap::Gray,
            show_histograms: true,
            file_dialogs: DialogBackend::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_and_old_files_get_defaults() {
        let settings = Settings {
            last_folder: Some(PathBuf::from("/data/cxr")),
            link_viewports: false,
            colormap: Colormap::Inferno,
            file_dialogs: DialogBackend::BuiltIn,
            ..Settings::default()
        };
        let text = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), settings);
        // A file written by an older version with fewer fields still loads.
        let old: Settings = serde_json::from_str(r#"{"link_viewports": false}"#).unwrap();
        assert!(!old.link_viewports);
        assert_eq!(old.window_presets, default_presets());
    }
}
