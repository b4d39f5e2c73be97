//! File ▸ Export label traversal as GIF: the chosen label swept from 0 to 1 with the seed and the other sliders as they are,
//! as the looping GIF `thorax traverse` writes (the same frames, the same provenance comment). The generator is
//! loaded and run on a helper thread of its own, so the worker keeps serving the sliders meanwhile.

use std::path::{Path, PathBuf};

use crate::app::background_write::{BackgroundWrite, WriteOutcome};
use crate::app::model_shelf::ModelChoice;
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::engine::device::{DeviceChoice, open_device};
use crate::engine::request::ModelSource;
use crate::models::card::ModelKind;
use crate::models::label_traversal::{
    Sweep, encode_gif, frame_delay_cs, play_order, provenance_comment, render_frames, sweep_values,
};
use crate::models::progan::ProganGenerator;
use crate::models::weights::Weights;

/// Frames from 0 to 1; they play at 8 per second, forward then back.
pub const TRAVERSAL_FRAMES: usize = 16;
const TRAVERSAL_FPS: f32 = 8.0;

/// What to animate: the generator as the panel has it.
#[derive(Clone, Debug)]
pub struct TraversalJob {
    pub model: ModelChoice,
    pub seed: u32,
    /// Every slider's value; the swept label's is replaced frame by frame.
    pub labels: Vec<f32>,
    pub label_index: usize,
}

impl TraversalJob {
    fn label_name(&self) -> &str {
        self.model.card.labels.get(self.label_index).map_or("label", String::as_str)
    }

    /// `<label>_seed<S>_traversal.gif`.
    fn file_name(&self) -> String {
        let label = crate::models::heatmap_export::safe_file_part(self.label_name());
        format!("{label}_seed{}_traversal.gif", self.seed)
    }

    /// Loads the generator, makes the frames and writes the GIF to `path`; what the status line says.
    fn run(&self, device: DeviceChoice, path: &Path) -> Result<String, String> {
        let device = open_device(device).map_err(|e| format!("opening the compute device: {e}"))?.device;
        let name = self.model.source.name();
        let kind = ModelKind::ProganGenerator;
        let weights = match &self.model.source {
            ModelSource::Embedded { bytes, .. } => Weights::from_bytes(bytes, Path::new(&name), kind, &device),
            ModelSource::File(file) => Weights::load(file, kind, &device),
        }
        .map_err(|e| format!("loading {name}: {e}"))?;
        let generator = ProganGenerator::from_weights(weights).map_err(|e| format!("building {name}: {e}"))?;
        let values = sweep_values(0.0, 1.0, TRAVERSAL_FRAMES);
        let (pixels, width, height) =
            render_frames(&generator, self.seed, &self.labels, self.label_index, &values, &device)
                .map_err(|e| format!("{e:#}"))?;
        let sweep = Sweep {
            label_index: self.label_index,
            base_labels: &self.labels,
            values: &values,
            seed: self.seed,
            bounce: true,
        };
        let latent_size = generator.architecture().latent_size;
        let comment = provenance_comment(&self.model.card, &sweep, &name, &self.model.sha256, latent_size);
        let order = play_order(values.len(), true);
        let encoded = encode_gif(&pixels, width, height, &order, frame_delay_cs(TRAVERSAL_FPS), &comment)
            .map_err(|e| format!("encoding {}: {e:#}", path.display()))?;
        crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, &encoded)
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "Saved the {} traversal (seed {}, {TRAVERSAL_FRAMES} frames from 0 to 1) to {}",
            self.label_name(),
            self.seed,
            path.display()
        ))
    }
}

/// The save dialog, then the frames made and written on a helper thread; reports once per export.
pub struct TraversalExport {
    device: DeviceChoice,
    /// The generator's settings when the button was pressed, waiting for the file.
    pending: Option<TraversalJob>,
    dialogs: PathDialogs<()>,
    write: BackgroundWrite,
}

impl TraversalExport {
    /// Runs its generator on `device`.
    pub fn new(device: DeviceChoice) -> Self {
        Self { device, pending: None, dialogs: PathDialogs::default(), write: BackgroundWrite::default() }
    }

    /// Asks where to save `job`'s GIF (the save dialog asks before replacing a file).
    pub fn start(&mut self, ctx: &egui::Context, job: TraversalJob) {
        let kind = DialogKind::SaveFile {
            file_name: job.file_name(),
            filter_name: "GIF",
            extensions: &["gif"],
            new_only: false,
        };
        match self.dialogs.request(ctx, (), "Export traversal GIF", kind, None) {
            Ok(()) => self.pending = Some(job),
            Err(e) => self.write.report(Err(format!("Traversal: {e}"))),
        }
    }

    /// Exports `job` to `path` as if the save dialog had given it (scripting and tests): replacing a file there.
    pub fn export_to(&mut self, ctx: &egui::Context, job: TraversalJob, path: PathBuf) {
        self.pending = Some(job);
        self.run(ctx, path);
    }

    fn run(&mut self, ctx: &egui::Context, path: PathBuf) {
        let Some(job) = self.pending.take() else {
            return;
        };
        let device = self.device;
        self.write.spawn(ctx, "thorax-traversal", "the traversal export", move || {
            job.run(device, &path).map_err(|e| format!("Traversal not saved: {e}"))
        });
    }

    /// Whether a GIF is being made.
    pub fn is_busy(&self) -> bool {
        self.write.is_writing()
    }

    /// A picked file starts the work; a finished export returns its message once. Call once per frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<WriteOutcome> {
        if let Some(((), path)) = self.dialogs.poll(ctx) {
            self.run(ctx, path);
        } else if !self.dialogs.is_open() {
            // Cancelled.
            self.pending = None;
        }
        self.write.take_outcome()
    }
}
