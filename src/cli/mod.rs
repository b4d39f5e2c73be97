//! The headless command line: one file per command family.

pub mod audit;
pub mod bench;
pub mod card;
pub mod classify;
pub mod convert_progan;
pub mod convert_torch;
pub mod correlate;
pub mod dataset_layout_args;
pub mod dicom;
pub mod generate;
pub mod gui;
pub mod info;
pub mod metrics;
pub mod npy_input;
pub mod output_paths;
pub mod resample_count;
pub mod study;
pub mod train;
pub mod train_classifier;
pub mod train_cyclegan;
pub mod train_federated;
pub mod train_run;
pub mod translate;
pub mod traverse;
