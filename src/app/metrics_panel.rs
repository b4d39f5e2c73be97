//! The Metrics panel: runs FD-DenseNet + KID, MS-SSIM histograms, ROC/AUC and the pathology correlation as
//! background jobs (progress bar and cancel each), keeps finished runs in a table with their settings, shows the
//! selected run's plot, and exports the table (CSV, JSON) and the plot (PNG).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::app::metrics_jobs::{
    CorrelationJobSettings, FdKidSettings, JobModel, MsSsimSettings, RocSettings, UI_CORRELATION_PER_LABEL, run_fd_kid,
    run_msssim_histograms, run_pathology_correlation, run_roc,
};
use crate::app::metrics_plots::record_plot_ui;
use crate::app::metrics_record::{
    MetricDetail, MetricKind, MetricRecord, export_file_name, records_to_csv, records_to_json, write_export,
};
use crate::app::model_shelf::ModelChoice;
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::app::plot_png::save_plot_png;
use crate::engine::background_job::{BackgroundJob, JobOutcome};
use crate::engine::device::DeviceChoice;
use crate::metrics::decimals::fixed_decimals;
use crate::metrics::kid::KidOptions;

/// The models in use in the workbench, for jobs that need them.
#[derive(Clone, Copy, Default)]
pub struct MetricsModels<'a> {
    pub classifier: Option<&'a ModelChoice>,
    pub generator: Option<&'a ModelChoice>,
}

/// Inputs of the FD-DenseNet + KID form.
#[derive(Clone, Debug)]
pub struct FdKidForm {
    pub real: Option<PathBuf>,
    pub artificial: Option<PathBuf>,
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    pub seed: u64,
}

impl Default for FdKidForm {
    fn default() -> Self {
        let kid = KidOptions::default();
        Self {
            real: None,
            artificial: None,
            kid_subsets: kid.subsets,
            kid_subset_size: kid.subset_size,
            seed: kid.seed,
        }
    }
}

/// Inputs of the MS-SSIM histogram form.
#[derive(Clone, Debug)]
pub struct MsSsimForm {
    pub real: Option<PathBuf>,
    pub artificial: Option<PathBuf>,
    pub pairs: usize,
    pub seed: u64,
    pub thorax_gan_compat: bool,
}

impl Default for MsSsimForm {
    fn default() -> Self {
        Self { real: None, artificial: None, pairs: 500, seed: 0, thorax_gan_compat: true }
    }
}

/// Inputs of the ROC form.
#[derive(Clone, Debug)]
pub struct RocForm {
    pub scores: Option<PathBuf>,
    pub truth: Option<PathBuf>,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for RocForm {
    fn default() -> Self {
        Self { scores: None, truth: None, resamples: 2000, seed: 0 }
    }
}

/// Inputs of the pathology correlation form.
#[derive(Clone, Debug)]
pub struct CorrelationForm {
    pub per_label: usize,
    pub seed: u32,
    pub batch: usize,
}

impl Default for CorrelationForm {
    fn default() -> Self {
        Self { per_label: UI_CORRELATION_PER_LABEL, seed: 0, batch: 16 }
    }
}

/// Which field or export a dialog answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialogTarget {
    FdReal,
    FdArtificial,
    MsSsimReal,
    MsSsimArtificial,
    RocScores,
    RocTruth,
    ExportCsv,
    ExportJson,
    PlotPng,
}

/// A job in flight.
struct RunningJob {
    kind: MetricKind,
    job: BackgroundJob<MetricRecord>,
}

/// A line under the controls.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelMessage {
    Info(String),
    Error(String),
}

/// State of the Metrics window.
pub struct MetricsPanel {
    pub window_open: bool,
    /// The form shown.
    pub kind: MetricKind,
    pub fd_kid: FdKidForm,
    pub msssim: MsSsimForm,
    pub roc: RocForm,
    pub correlation: CorrelationForm,
    /// Finished runs, oldest first.
    pub records: Vec<MetricRecord>,
    /// Id of the run whose plot is shown.
    pub selected: Option<u64>,
    pub message: Option<PanelMessage>,
    jobs: Vec<RunningJob>,
    next_id: u64,
    device: DeviceChoice,
    dialogs: PathDialogs<DialogTarget>,
    last_folder: Option<PathBuf>,
    /// Outcomes of file writes on helper threads.
    notices_tx: Sender<Result<String, String>>,
    notices_rx: Receiver<Result<String, String>>,
    png_tx: Sender<Result<PathBuf, String>>,
    png_rx: Receiver<Result<PathBuf, String>>,
    /// Where to save the selected plot as PNG, at the next frame.
    png_request: Option<PathBuf>,
    /// Plot PNGs being rendered and written on their threads.
    png_saves_in_flight: usize,
    /// Wakes the UI when a helper thread finished (set on the first frame).
    repaint: Option<egui::Context>,
}

impl MetricsPanel {
    /// A closed panel whose jobs open `device`.
    pub fn new(device: DeviceChoice) -> Self {
        let (notices_tx, notices_rx) = crossbeam_channel::unbounded();
        let (png_tx, png_rx) = crossbeam_channel::unbounded();
        Self {
            window_open: false,
            kind: MetricKind::FdKid,
            fd_kid: FdKidForm::default(),
            msssim: MsSsimForm::default(),
            roc: RocForm::default(),
            correlation: CorrelationForm::default(),
            records: Vec::new(),
            selected: None,
            message: None,
            jobs: Vec::new(),
            next_id: 1,
            device,
            dialogs: PathDialogs::default(),
            last_folder: None,
            notices_tx,
            notices_rx,
            png_tx,
            png_rx,
            png_request: None,
            png_saves_in_flight: 0,
            repaint: None,
        }
    }

    /// Jobs still running.
    pub fn running_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Plot PNGs still being rendered or written.
    pub fn png_saves_in_flight(&self) -> usize {
        self.png_saves_in_flight
    }

    /// Cancels every running job (they report Cancelled).
    pub fn cancel_all(&self) {
        for running in &self.jobs {
            running.job.cancel();
        }
    }

    /// Starts the job of the form `kind`. Err says what input is missing or why the thread did not start.
    pub fn start(&mut self, ctx: &egui::Context, kind: MetricKind, models: MetricsModels<'_>) -> Result<(), String> {
        let wake_ctx = ctx.clone();
        let wake: crate::engine::background_job::Wake = Arc::new(move || wake_ctx.request_repaint());
        let name = format!("thorax-metrics-{}", self.next_id);
        let device = self.device;
        let job = match kind {
            MetricKind::FdKid => {
                let form = &self.fd_kid;
                let (Some(real), Some(artificial)) = (form.real.clone(), form.artificial.clone()) else {
                    return Err("pick a real and an artificial image folder first".to_owned());
                };
                let classifier = models.classifier.ok_or("no classifier is available in this build")?;
                let settings = FdKidSettings {
                    real,
                    artificial,
                    classifier: JobModel::from(classifier),
                    kid: KidOptions { subsets: form.kid_subsets, subset_size: form.kid_subset_size, seed: form.seed },
                    batch: 8,
                    device,
                };
                BackgroundJob::spawn(&name, wake, move |c| run_fd_kid(&settings, c))
            }
            MetricKind::MsSsimHistogram => {
                let form = &self.msssim;
                let (Some(real), Some(artificial)) = (form.real.clone(), form.artificial.clone()) else {
                    return Err("pick a real and an artificial image folder first".to_owned());
                };
                let settings = MsSsimSettings {
                    real,
                    artificial,
                    pairs: form.pairs,
                    seed: form.seed,
                    thorax_gan_compat: form.thorax_gan_compat,
                };
                BackgroundJob::spawn(&name, wake, move |c| run_msssim_histograms(&settings, c))
            }
            MetricKind::Roc => {
                let form = &self.roc;
                let (Some(scores), Some(truth)) = (form.scores.clone(), form.truth.clone()) else {
                    return Err("pick a scores CSV and a truth CSV first".to_owned());
                };
                let settings = RocSettings { scores, truth, resamples: form.resamples, seed: form.seed };
                BackgroundJob::spawn(&name, wake, move |c| run_roc(&settings, c))
            }
            MetricKind::Correlation => {
                let form = &self.correlation;
                let generator = models.generator.ok_or("no generator is available in this build")?;
                let classifier = models.classifier.ok_or("no classifier is available in this build")?;
                let settings = CorrelationJobSettings {
                    generator: JobModel::from(generator),
                    classifier: JobModel::from(classifier),
                    per_label: form.per_label,
                    seed: form.seed,
                    batch: form.batch,
                    device,
                };
                BackgroundJob::spawn(&name, wake, move |c| run_pathology_correlation(&settings, c))
            }
        }
        .map_err(|e| format!("cannot start the job thread: {e}"))?;
        self.jobs.push(RunningJob { kind, job });
        self.message = Some(PanelMessage::Info(format!("{} started", kind.name())));
        Ok(())
    }

    /// Saves the selected result's whole plot as PNG at `path` (drawn off screen), without a dialog.
    pub fn save_plot_png_to(&mut self, path: PathBuf) {
        self.png_request = Some(path);
    }

    /// One frame: collects job outcomes and dialog answers, draws the window when open.
    pub fn frame_ui(&mut self, ctx: &egui::Context, models: MetricsModels<'_>) {
        if self.repaint.is_none() {
            self.repaint = Some(ctx.clone());
        }
        self.poll(ctx);
        if !self.window_open {
            return;
        }
        let mut open = true;
        egui::Window::new("Metrics")
            .open(&mut open)
            .default_size([900.0, 680.0])
            .default_pos([200.0, 60.0])
            .show(ctx, |ui| self.panel_ui(ui, models));
        if !open {
            self.window_open = false;
        }
        if let Some(path) = self.png_request.take() {
            match self.records.iter().find(|r| Some(r.id) == self.selected) {
                Some(record) => {
                    save_plot_png(record.clone(), path, self.png_tx.clone(), ctx.clone());
                    self.png_saves_in_flight += 1;
                }
                None => self.message = Some(PanelMessage::Error("no result is selected to save".to_owned())),
            }
        }
    }

    fn poll(&mut self, ctx: &egui::Context) {
        let mut finished = Vec::new();
        for (index, running) in self.jobs.iter_mut().enumerate() {
            if let Some(outcome) = running.job.poll() {
                finished.push((index, running.kind, outcome));
            }
        }
        for (index, kind, outcome) in finished.into_iter().rev() {
            self.jobs.remove(index);
            match outcome {
                JobOutcome::Finished(mut record) => {
                    record.id = self.next_id;
                    self.next_id += 1;
                    self.selected = Some(record.id);
                    self.message = Some(PanelMessage::Info(format!(
                        "{} #{} finished in {:.0} ms",
                        kind.name(),
                        record.id,
                        record.elapsed_ms
                    )));
                    self.records.push(record);
                }
                JobOutcome::Cancelled => {
                    self.message = Some(PanelMessage::Info(format!("{} cancelled; no result kept", kind.name())));
                }
                JobOutcome::Failed(reason) => {
                    self.message = Some(PanelMessage::Error(format!("{} failed: {reason}", kind.name())));
                }
            }
        }
        if !self.jobs.is_empty() {
            // Progress bars move without input events.
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        while let Some((target, path)) = self.dialogs.poll(ctx) {
            self.on_path(target, path);
        }
        while let Ok(notice) = self.notices_rx.try_recv() {
            self.message = Some(match notice {
                Ok(text) => PanelMessage::Info(text),
                Err(text) => PanelMessage::Error(text),
            });
        }
        while let Ok(saved) = self.png_rx.try_recv() {
            self.png_saves_in_flight = self.png_saves_in_flight.saturating_sub(1);
            self.message = Some(match saved {
                Ok(path) => PanelMessage::Info(format!("plot saved to {}", path.display())),
                Err(reason) => PanelMessage::Error(format!("plot not saved: {reason}")),
            });
        }
    }

    fn on_path(&mut self, target: DialogTarget, path: PathBuf) {
        let folder = if path.is_dir() { Some(path.clone()) } else { path.parent().map(PathBuf::from) };
        self.last_folder = folder;
        match target {
            // A folder picked for one metric also fills the other's empty field: switching the metric keeps it.
            DialogTarget::FdReal => pick_shared(&mut self.fd_kid.real, &mut self.msssim.real, path),
            DialogTarget::MsSsimReal => pick_shared(&mut self.msssim.real, &mut self.fd_kid.real, path),
            DialogTarget::FdArtificial => pick_shared(&mut self.fd_kid.artificial, &mut self.msssim.artificial, path),
            DialogTarget::MsSsimArtificial => {
                pick_shared(&mut self.msssim.artificial, &mut self.fd_kid.artificial, path);
            }
            DialogTarget::RocScores => self.roc.scores = Some(path),
            DialogTarget::RocTruth => self.roc.truth = Some(path),
            DialogTarget::ExportCsv => self.export_csv_to(path),
            DialogTarget::ExportJson => self.export_json_to(path),
            DialogTarget::PlotPng => self.png_request = Some(path),
        }
    }

    /// Writes the results table as CSV to `path` (on a helper thread; the outcome shows as the panel's message).
    pub fn export_csv_to(&mut self, path: PathBuf) {
        self.export_to(path, records_to_csv(&self.records).map_err(|e| e.to_string()));
    }

    /// Writes the results, plot data included, as JSON to `path` (like [`Self::export_csv_to`]).
    pub fn export_json_to(&mut self, path: PathBuf) {
        self.export_to(path, records_to_json(&self.records).map_err(|e| e.to_string()));
    }

    /// Writes the export text on a helper thread; the outcome comes back as a notice.
    fn export_to(&mut self, path: PathBuf, text: Result<String, String>) {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                self.message = Some(PanelMessage::Error(e));
                return;
            }
        };
        let tx = self.notices_tx.clone();
        let ctx = self.repaint.clone();
        let spawned = std::thread::Builder::new().name("thorax-metrics-export".to_owned()).spawn(move || {
            let notice = write_export(&path, text.as_bytes())
                .map(|()| format!("results exported to {}", path.display()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()));
            tx.send(notice).ok();
            if let Some(ctx) = ctx {
                ctx.request_repaint();
            }
        });
        if let Err(e) = spawned {
            self.message = Some(PanelMessage::Error(format!("cannot start the export: {e}")));
        }
    }

    fn ask(&mut self, ctx: &egui::Context, target: DialogTarget, title: &str, kind: DialogKind) {
        if let Err(e) = self.dialogs.request(ctx, target, title, kind, self.last_folder.clone()) {
            self.message = Some(PanelMessage::Error(e));
        }
    }

    fn panel_ui(&mut self, ui: &mut egui::Ui, models: MetricsModels<'_>) {
        ui.horizontal(|ui| {
            let label = ui.label("Metric");
            egui::ComboBox::from_id_salt("metrics_kind")
                .selected_text(self.kind.name())
                .show_ui(ui, |ui| {
                    for kind in MetricKind::ALL {
                        ui.selectable_value(&mut self.kind, kind, kind.name());
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.add_space(4.0);
        self.form_ui(ui, models);
        ui.add_space(4.0);
        self.jobs_ui(ui);
        if let Some(message) = &self.message {
            match message {
                PanelMessage::Info(text) => ui.label(egui::RichText::new(text).weak()),
                PanelMessage::Error(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
        ui.separator();
        self.results_ui(ui);
    }

    fn path_row(
        &mut self,
        ui: &mut egui::Ui,
        name: &str,
        path: Option<&PathBuf>,
        target: DialogTarget,
        kind: DialogKind,
    ) {
        ui.horizontal(|ui| {
            let label = ui.label(name);
            if ui.button("Pick...").labelled_by(label.id).clicked() {
                let title = format!("Pick {}", name.trim_end_matches(':').to_lowercase());
                self.ask(ui.ctx(), target, &title, kind);
            }
            let text = path.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
            ui.label(egui::RichText::new(text).monospace());
        });
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, models: MetricsModels<'_>) {
        let csv = DialogKind::PickFile { filter_name: "CSV", extensions: &["csv"] };
        match self.kind {
            MetricKind::FdKid => {
                let (real, artificial) = (self.fd_kid.real.clone(), self.fd_kid.artificial.clone());
                self.path_row(ui, "Real folder:", real.as_ref(), DialogTarget::FdReal, DialogKind::PickFolder);
                self.path_row(
                    ui,
                    "Artificial folder:",
                    artificial.as_ref(),
                    DialogTarget::FdArtificial,
                    DialogKind::PickFolder,
                );
                ui.horizontal(|ui| {
                    number(ui, "KID subsets", &mut self.fd_kid.kid_subsets, 1..=10_000);
                    number(ui, "Subset size", &mut self.fd_kid.kid_subset_size, 2..=100_000);
                    number(ui, "Seed", &mut self.fd_kid.seed, 0..=u64::from(u32::MAX));
                });
                let classifier = models.classifier.map_or("none".to_owned(), |m| m.card.name.clone());
                ui.label(
                    egui::RichText::new(format!("Features: pooled DenseNet-121 of classifier {classifier}")).weak(),
                );
            }
            MetricKind::MsSsimHistogram => {
                let (real, artificial) = (self.msssim.real.clone(), self.msssim.artificial.clone());
                self.path_row(ui, "Real folder:", real.as_ref(), DialogTarget::MsSsimReal, DialogKind::PickFolder);
                self.path_row(
                    ui,
                    "Artificial folder:",
                    artificial.as_ref(),
                    DialogTarget::MsSsimArtificial,
                    DialogKind::PickFolder,
                );
                ui.horizontal(|ui| {
                    number(ui, "Pairs per label", &mut self.msssim.pairs, 1..=1_000_000);
                    number(ui, "Seed", &mut self.msssim.seed, 0..=u64::from(u32::MAX));
                    ui.checkbox(&mut self.msssim.thorax_gan_compat, "Thorax_GAN MS-SSIM");
                });
                ui.label(
                    egui::RichText::new(
                        "Subfolders are pathology labels (one histogram each); a flat folder is 'all'.",
                    )
                    .weak(),
                );
            }
            MetricKind::Roc => {
                let (scores, truth) = (self.roc.scores.clone(), self.roc.truth.clone());
                self.path_row(ui, "Scores CSV:", scores.as_ref(), DialogTarget::RocScores, csv.clone());
                self.path_row(ui, "Truth CSV:", truth.as_ref(), DialogTarget::RocTruth, csv);
                ui.horizontal(|ui| {
                    number(ui, "Bootstrap resamples", &mut self.roc.resamples, 0..=100_000);
                    number(ui, "Seed", &mut self.roc.seed, 0..=u64::from(u32::MAX));
                });
                ui.label(
                    egui::RichText::new("CSV: id column, then one column per label, as `thorax metrics roc`.").weak(),
                );
            }
            MetricKind::Correlation => {
                ui.horizontal(|ui| {
                    number(ui, "Images per label", &mut self.correlation.per_label, 2..=100_000);
                    number(ui, "Seed", &mut self.correlation.seed, 0..=u32::MAX);
                    number(ui, "Batch", &mut self.correlation.batch, 1..=256);
                });
                let generator = models.generator.map_or("none".to_owned(), |m| m.card.name.clone());
                let classifier = models.classifier.map_or("none".to_owned(), |m| m.card.name.clone());
                ui.label(
                    egui::RichText::new(format!(
                        "Generator {generator}, classifier {classifier}. The CLI default is 5000 images per label."
                    ))
                    .weak(),
                );
            }
        }
        let run_text = format!("Run {}", self.kind.name());
        if ui.button(run_text).clicked()
            && let Err(e) = self.start(ui.ctx(), self.kind, models)
        {
            self.message = Some(PanelMessage::Error(e));
        }
    }

    fn jobs_ui(&mut self, ui: &mut egui::Ui) {
        for running in &self.jobs {
            let progress = running.job.progress();
            // Button and bar first: the stage text changes from another thread and must not move them.
            ui.horizontal(|ui| {
                let cancelling = running.job.is_cancel_requested();
                if ui.add_enabled(!cancelling, egui::Button::new("Cancel")).clicked() {
                    running.job.cancel();
                }
                ui.add(
                    egui::ProgressBar::new(progress.fraction())
                        .desired_width(260.0)
                        .text(format!("{} / {}", progress.done, progress.total)),
                );
                let state = if cancelling { "cancelling..." } else { progress.stage.as_str() };
                ui.label(format!("{}: {state}", running.kind.name()));
            });
        }
    }

    fn results_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("Results").strong());
            let has_records = !self.records.is_empty();
            if ui.add_enabled(has_records, egui::Button::new("Export CSV...")).clicked() {
                let kind = DialogKind::SaveFile {
                    file_name: export_file_name("csv"),
                    filter_name: "CSV",
                    extensions: &["csv"],
                    new_only: false,
                };
                self.ask(ui.ctx(), DialogTarget::ExportCsv, "Export results as CSV", kind);
            }
            if ui.add_enabled(has_records, egui::Button::new("Export JSON...")).clicked() {
                let kind = DialogKind::SaveFile {
                    file_name: export_file_name("json"),
                    filter_name: "JSON",
                    extensions: &["json"],
                    new_only: false,
                };
                self.ask(ui.ctx(), DialogTarget::ExportJson, "Export results as JSON", kind);
            }
            if ui.add_enabled(self.selected.is_some(), egui::Button::new("Save plot PNG...")).clicked() {
                let name = format!("thorax-metrics-{}.png", self.selected.unwrap_or_default());
                let kind =
                    DialogKind::SaveFile { file_name: name, filter_name: "PNG", extensions: &["png"], new_only: false };
                self.ask(ui.ctx(), DialogTarget::PlotPng, "Save plot as PNG", kind);
            }
            if ui.add_enabled(self.selected.is_some(), egui::Button::new("Remove")).clicked() {
                self.records.retain(|r| Some(r.id) != self.selected);
                self.selected = self.records.last().map(|r| r.id);
            }
        });
        if self.records.is_empty() {
            ui.label(egui::RichText::new("No results yet.").weak());
            return;
        }
        // Both directions: a wide row must not widen the window.
        egui::ScrollArea::both().id_salt("metrics_table").max_height(150.0).show(ui, |ui| {
            egui::Grid::new("metrics_results").striped(true).spacing([12.0, 4.0]).show(ui, |ui| {
                for header in ["#", "Metric", "Result", "N", "Seed", "Models", "Time"] {
                    ui.label(egui::RichText::new(header).strong());
                }
                ui.end_row();
                for record in &self.records {
                    let selected = self.selected == Some(record.id);
                    if ui.selectable_label(selected, format!("#{}", record.id)).clicked() {
                        self.selected = Some(record.id);
                    }
                    ui.label(record.metric.name());
                    ui.label(summary(record));
                    ui.label(count_text(record));
                    ui.label(record.setting("seed").unwrap_or("-"));
                    ui.label(models_text(record)).on_hover_text(models_hover(record));
                    ui.label(format!("{:.0} ms", record.elapsed_ms));
                    ui.end_row();
                }
            });
        });
        ui.separator();
        if let Some(record) = self.records.iter().find(|r| Some(r.id) == self.selected) {
            egui::ScrollArea::both()
                .id_salt("metrics_plot")
                .auto_shrink([false, false])
                .show(ui, |ui| record_plot_ui(ui, record));
        }
    }
}

impl Drop for MetricsPanel {
    /// Jobs stop at their next checkpoint when the workbench closes.
    fn drop(&mut self) {
        self.cancel_all();
    }
}

/// A labelled number field.
fn number<T: egui::emath::Numeric>(ui: &mut egui::Ui, name: &str, value: &mut T, range: std::ops::RangeInclusive<T>) {
    let label = ui.label(name);
    ui.add(egui::DragValue::new(value).range(range)).labelled_by(label.id);
}

/// The one-line result in the table.
pub fn summary(record: &MetricRecord) -> String {
    match &record.detail {
        MetricDetail::FdKid { fd, kid } => {
            format!("FD {}, KID {:.5} +- {:.5}", fixed_decimals(fd.value, 3), kid.mean, kid.std)
        }
        MetricDetail::MsSsimHistogram { labels, .. } => {
            let mean_of = |side: fn(&crate::app::metrics_record::MsSsimLabel) -> Option<f64>| {
                let values: Vec<f64> = labels.iter().filter_map(side).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            let real = mean_of(|l| l.real.as_ref().map(|h| h.mean));
            let artificial = mean_of(|l| l.artificial.as_ref().map(|h| h.mean));
            let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
            format!("mean MS-SSIM real {}, artificial {} (labels: {})", fmt(real), fmt(artificial), labels.len())
        }
        MetricDetail::Roc { labels } => {
            let aucs: Vec<f64> = labels.iter().filter_map(|l| l.auc).collect();
            if aucs.is_empty() {
                "no label with both classes".to_owned()
            } else {
                let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
                format!("mean AUC {mean:.3} over {} labels", aucs.len())
            }
        }
        MetricDetail::Correlation { matrix } => {
            let diagonal: Vec<f64> =
                record.values.iter().filter(|v| v.name.starts_with("r ")).map(|v| v.value).collect();
            let mean = diagonal.iter().sum::<f64>() / diagonal.len().max(1) as f64;
            format!(
                "{}x{} matrix, mean same-label r {mean:.3}",
                matrix.control_labels.len(),
                matrix.output_labels.len()
            )
        }
    }
}

fn count_text(record: &MetricRecord) -> String {
    match (record.setting("n_real"), record.setting("n_artificial"), record.setting("n"), record.setting("per_label")) {
        (Some(real), Some(artificial), _, _) => format!("{real} / {artificial}"),
        (_, _, Some(n), _) => n.to_owned(),
        (_, _, _, Some(per_label)) => format!("{per_label} per label"),
        _ => "-".to_owned(),
    }
}

/// The models by role with the first 12 hex digits of their SHA-256 (names and full hashes are in the hover text).
fn models_text(record: &MetricRecord) -> String {
    let parts: Vec<String> = ["generator", "classifier"]
        .iter()
        .filter_map(|role| {
            let hash = record.setting(&format!("{role}_sha256"))?;
            Some(format!("{role} {}", hash.get(..12).unwrap_or(hash)))
        })
        .collect();
    if parts.is_empty() { "-".to_owned() } else { parts.join(", ") }
}

fn models_hover(record: &MetricRecord) -> String {
    let lines: Vec<String> = record.settings.iter().map(|s| format!("{}: {}", s.name, s.value)).collect();
    lines.join("\n")
}

/// Sets `picked` to `path`, and `other` too when it is empty.
fn pick_shared(picked: &mut Option<PathBuf>, other: &mut Option<PathBuf>, path: PathBuf) {
    other.get_or_insert_with(|| path.clone());
    *picked = Some(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_picked_for_one_metric_fills_the_others_empty_field_only() {
        let mut panel = MetricsPanel::new(DeviceChoice::Cpu);
        let (first, second) = (std::env::temp_dir(), std::env::temp_dir().join("other"));
        panel.on_path(DialogTarget::FdReal, first.clone());
        assert_eq!(panel.msssim.real.as_ref(), Some(&first), "switching to MS-SSIM keeps the real folder");
        panel.on_path(DialogTarget::MsSsimReal, second.clone());
        assert_eq!(panel.fd_kid.real.as_ref(), Some(&first), "a field already set is left alone");
        assert_eq!(panel.msssim.real.as_ref(), Some(&second));
        panel.on_path(DialogTarget::MsSsimArtificial, second.clone());
        assert_eq!(panel.fd_kid.artificial.as_ref(), Some(&second));
    }
}
