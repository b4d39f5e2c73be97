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

/// Frames play at 8 per second, forward then back.
const TRAVERSAL_FPS: f32 = 8.0;

/// The label's values: `frames` evenly spaced from `from` to `to`, both included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraversalSweep {
    pub from: f32,
    pub to: f32,
    pub frames: usize,
}

impl Default for TraversalSweep {
    /// Absent to present, the labels the generator was trained on, in 16 frames.
    fn default() -> Self {
        Self { from: 0.0, to: 1.0, frames: 16 }
    }
}

impl TraversalSweep {
    /// The range the menu offers: past 0 and 1 the generator extrapolates beyond its training labels.
    pub const VALUE_RANGE: std::ops::RangeInclusive<f32> = -1.0..=2.0;

    /// The sweep brought into what the menu offers (2 to `MAX_FRAMES` frames, values in [`Self::VALUE_RANGE`]).
    pub fn clamped(self) -> Self {
        let value =
            |v: f32| if v.is_finite() { v.clamp(*Self::VALUE_RANGE.start(), *Self::VALUE_RANGE.end()) } else { 0.0 };
        Self {
            from: value(self.from),
            to: value(self.to),
            frames: self.frames.clamp(2, crate::models::label_traversal::MAX_FRAMES),
        }
    }

    /// The menu's From, To and Frames fields.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let extrapolates = "Values outside 0 to 1 extrapolate beyond the labels the generator was trained on";
        ui.horizontal(|ui| {
            ui.label("From");
            ui.add(egui::DragValue::new(&mut self.from).range(Self::VALUE_RANGE).speed(0.01).fixed_decimals(2))
                .on_hover_text(extrapolates);
            ui.label("to");
            ui.add(egui::DragValue::new(&mut self.to).range(Self::VALUE_RANGE).speed(0.01).fixed_decimals(2))
                .on_hover_text(extrapolates);
            ui.label("in");
            ui.add(egui::DragValue::new(&mut self.frames).range(2..=crate::models::label_traversal::MAX_FRAMES))
                .on_hover_text("Frames from the first value to the last, both included; played forward then back");
            ui.label("frames");
        });
    }
}

/// What to animate: the generator as the panel has it.
#[derive(Clone, Debug)]
pub struct TraversalJob {
    pub model: ModelChoice,
    pub seed: u32,
    /// Every slider's value; the swept label's is replaced frame by frame.
    pub labels: Vec<f32>,
    pub label_index: usize,
    pub sweep: TraversalSweep,
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
        let TraversalSweep { from, to, frames } = self.sweep.clamped();
        let values = sweep_values(from, to, frames);
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
            "Saved the {} traversal (seed {}, {frames} frames from {from} to {to}) to {}",
            self.label_name(),
            self.seed,
            path.display()
        ))
    }
}

/// The save dialog, then the frames made and written on a helper thread; reports once per export.
pub struct TraversalExport {
    device: DeviceChoice,
    /// The menu's range and frame count, kept between exports.
    pub sweep: TraversalSweep,
    /// The generator's settings when the button was pressed, waiting for the file.
    pending: Option<TraversalJob>,
    dialogs: PathDialogs<()>,
    write: BackgroundWrite,
}

impl TraversalExport {
    /// Runs its generator on `device`.
    pub fn new(device: DeviceChoice) -> Self {
        Self {
            device,
            sweep: TraversalSweep::default(),
            pending: None,
            dialogs: PathDialogs::default(),
            write: BackgroundWrite::default(),
        }
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
