//! What the UI asks the worker for, and what comes back.

use std::path::PathBuf;
use std::sync::Arc;

use crate::imaging::{GrayImage, ImageStats};

/// Monotonic request number; a response older than the newest request of its key is stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(pub u64);

/// Which viewport a job is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Real,
    Artificial,
}

impl Slot {
    /// The other viewport.
    pub fn other(self) -> Self {
        match self {
            Self::Real => Self::Artificial,
            Self::Artificial => Self::Real,
        }
    }
}

/// The coalescing key: only the newest request per key is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKey {
    PrepareImage(Slot),
    Generate,
    Classify(Slot),
    Heatmap(Slot),
    /// Style transfer of the real image into the third viewport.
    Translate,
    /// Reading a model file the user opened, per kind.
    LoadModel(crate::models::card::ModelKind),
}

/// Where a model's weights come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModelSource {
    /// Compiled into the binary (`assets/models/`).
    Embedded {
        file_name: &'static str,
        bytes: &'static [u8],
    },
    File(PathBuf),
}

impl ModelSource {
    /// The cache key and display name.
    pub fn name(&self) -> String {
        match self {
            Self::Embedded { file_name, .. } => (*file_name).to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    File(PathBuf),
    /// Bytes already in memory (embedded samples, drag-and-drop); `name` labels the image and its errors.
    Bytes {
        name: String,
        bytes: Arc<[u8]>,
    },
}

impl ImageSource {
    /// A short name for the UI.
    pub fn display_name(&self) -> String {
        match self {
            Self::File(path) => {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
            Self::Bytes { name, .. } => name.clone(),
        }
    }
}

/// A typed request to the worker.
#[derive(Clone, Debug)]
pub enum Request {
    /// Decode, compute statistics, and preprocess into a model input tensor on the device.
    PrepareImage { slot: Slot, source: ImageSource },
    /// One image from a conditional generator: labels in the card's order, latent from a seed.
    Generate { model: ModelSource, labels: Vec<f32>, seed: u32 },
    /// The classifier's probabilities for an image shown in a viewport.
    Classify { slot: Slot, model: ModelSource, image: GrayImage },
    /// A class-activation heatmap of one classifier label for an image shown in a viewport.
    Heatmap {
        slot: Slot,
        model: ModelSource,
        image: GrayImage,
        label: String,
        method: crate::models::heatmap::HeatmapMethod,
    },
    /// The image translated to the other domain by a CycleGAN generator that maps `direction`, and its |difference|.
    Translate {
        model: ModelSource,
        direction: crate::models::cyclegan::Direction,
        scale: crate::models::style_transfer::NetworkScale,
        image: GrayImage,
    },
    /// Reads a model file, checks it holds a `kind` network, and keeps it loaded for later jobs.
    LoadModel { kind: crate::models::card::ModelKind, path: PathBuf },
}

impl Request {
    pub fn key(&self) -> JobKey {
        match self {
            Self::PrepareImage { slot, .. } => JobKey::PrepareImage(*slot),
            Self::Generate { .. } => JobKey::Generate,
            Self::Classify { slot, .. } => JobKey::Classify(*slot),
            Self::Heatmap { slot, .. } => JobKey::Heatmap(*slot),
            Self::Translate { .. } => JobKey::Translate,
            Self::LoadModel { kind, .. } => JobKey::LoadModel(*kind),
        }
    }
}

/// A generated image with what made it, for display and provenance.
#[derive(Clone, Debug)]
pub struct GeneratedImage {
    pub prepared: PreparedImage,
    pub model_name: String,
    pub seed: u32,
    pub labels: Vec<f32>,
}

/// Classifier probabilities in the card's label order.
#[derive(Clone, Debug)]
pub struct Classification {
    pub model_name: String,
    pub labels: Vec<String>,
    pub probabilities: Vec<f32>,
    /// The image these belong to, so stale results are recognised.
    pub image_id: u64,
}

/// A decoded image ready for display and for the networks.
#[derive(Clone, Debug)]
pub struct PreparedImage {
    pub name: String,
    pub image: GrayImage,
    pub stats: Arc<ImageStats>,
    /// Shape of the preprocessed network input tensor the worker keeps for this slot.
    pub tensor_dims: Vec<usize>,
    /// Mean of that tensor, a cheap check that preprocessing ran on real data.
    pub tensor_mean: f32,
    /// The window the file asks for on first display (DICOM), in the image's units.
    pub stored_window: Option<crate::imaging::Window>,
    /// DICOM attributes for the tag panel; `None` for other formats and generated images.
    pub dicom: Option<Arc<crate::imaging::DicomDetails>>,
}

impl PreparedImage {
    /// The unit of the pixel values, where they have one ("HU" for CT); projection radiographs have none.
    pub fn value_unit(&self) -> Option<&'static str> {
        self.dicom.as_ref().filter(|d| d.summary.values_in_hounsfield_units()).map(|_| "HU")
    }
}

/// A heatmap at the image's size, values in [0, 1].
#[derive(Clone, Debug)]
pub struct HeatmapOverlay {
    pub map: GrayImage,
    pub label: String,
    pub probability: f32,
    /// Why the map is blank, when it is.
    pub note: Option<String>,
    /// The image the map belongs to.
    pub image_id: u64,
}

/// A style-transferred image and its |difference| from the input, both at the input's size.
#[derive(Clone, Debug)]
pub struct TranslatedImage {
    pub translated: PreparedImage,
    /// |translated - input| in 8-bit units.
    pub difference: PreparedImage,
    pub model_name: String,
    pub direction: crate::models::cyclegan::Direction,
    /// The input image, so stale results are recognised.
    pub image_id: u64,
}

/// A model file that was read and checked.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub source: ModelSource,
    pub card: crate::models::card::ModelCard,
    pub sha256: String,
}

/// What a job produced.
#[derive(Clone, Debug)]
pub enum Output {
    PreparedImage(Box<PreparedImage>),
    Generated(Box<GeneratedImage>),
    Classified(Box<Classification>),
    Heatmap(Box<HeatmapOverlay>),
    Translated(Box<TranslatedImage>),
    ModelLoaded(Box<LoadedModel>),
}

/// How long a job took, split into waiting and running.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    pub queued_ms: f64,
    pub run_ms: f64,
}

/// A job's result with its stamp and timings.
#[derive(Debug)]
pub struct Response {
    pub key: JobKey,
    pub stamp: Stamp,
    pub timings: Timings,
    pub result: Result<Output, crate::engine::EngineError>,
}
