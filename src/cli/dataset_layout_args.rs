//! The flags both training commands share for reading a labels CSV: `--layout`, `--uncertain`, `--frontal-only`.

use crate::train::dataset_layout::{DatasetLayout, LayoutOptions, UncertainPolicy};

/// How `--labels` is read.
#[derive(Clone, Debug, clap::Args)]
pub struct DatasetLayoutArgs {
    /// Labels-CSV layout: ours, nih (Data_Entry_2017.csv) or chexpert (train.csv / valid.csv) [default: detected
    /// from the columns].
    #[arg(long)]
    pub layout: Option<DatasetLayout>,
    /// CheXpert's uncertain (-1) labels: zeros (negative), ones (positive) or ignore (left out of the loss).
    #[arg(long, default_value = "ignore")]
    pub uncertain: UncertainPolicy,
    /// CheXpert: keep only frontal views; `--frontal-only false` keeps the laterals too [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub frontal_only: Option<bool>,
}

impl DatasetLayoutArgs {
    /// The reader options these flags ask for.
    pub fn options(&self) -> LayoutOptions {
        LayoutOptions { layout: self.layout, uncertain: self.uncertain, frontal_only: self.frontal_only }
    }
}
