//! The egui application: the workbench window, its panels, and the radiograph viewer widget.

pub mod artificial_size_survey;
pub mod audit_window;
pub mod background_write;
pub mod classifier_panel;
pub mod dicom_tag_panel;
pub mod file_browser;
pub mod generated_export;
pub mod generator_panel;
pub mod heatmap_exporter;
pub mod histogram;
pub mod measurement;
pub mod mesh_raster;
pub mod metrics_jobs;
pub mod metrics_panel;
pub mod metrics_plots;
pub mod metrics_record;
pub mod model_shelf;
pub mod path_dialog;
pub mod plot_png;
pub mod radiograph_renderer;
pub mod radiograph_viewer;
pub mod reading_mode;
pub mod sample_browser;
pub mod settings;
pub mod station_lock;
pub mod study_designer;
pub mod study_panel;
pub mod study_results;
pub mod style_transfer_panel;
pub mod traversal_export;
pub mod view_png;
pub mod view_shading;
pub mod view_state;
pub mod viewport_pane;
pub mod workbench_app;

pub use workbench_app::{AppOptions, StudyAtStart, WorkbenchApp};
