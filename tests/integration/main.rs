//! All integration tests in one binary: each linked test binary carries the whole library and its
//! dependencies, so one binary instead of thirty keeps a cold CI build small (disk and link time).

mod sample_folders;
mod study_common;

mod audit_cli;
mod card_cli;
mod correlate_placeholder;
mod cyclegan_parity;
mod cyclegan_placeholder;
mod dataset_layouts;
mod densenet_bad_input;
mod densenet_parity;
mod densenet_placeholder;
mod densenet_preprocess;
mod dicom_deidentify;
mod dicom_export;
mod dicom_load_radiograph;
mod dicom_read;
mod engine_style_transfer;
mod engine_worker;
mod fast_conv_parity;
mod heatmap_cli;
mod heatmap_golden;
mod imaging_decode;
mod inception_parity;
mod metrics_golden;
mod progan_cli;
mod progan_parity;
mod progan_refusals;
mod study_bad_input;
mod study_blinding;
mod study_cli;
mod study_durability;
mod study_session;
mod study_sources;
mod study_stats;
mod train_classifier;
mod train_cyclegan;
mod train_federated;
mod train_gan;
mod train_gan_grow;
mod ui_audit;
mod ui_metrics;
mod ui_study;
mod ui_style_transfer;
mod ui_workbench;
