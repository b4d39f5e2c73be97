//! The Audit window: the memorisation audit of [`crate::audit`] on three folders, run on a background thread with
//! progress and cancel; the nearest-similarity distributions, the closest pairs side by side, and an export of the
//! generated images the user keeps (flagged ones excluded unless the user includes them).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::audit::{AuditInputs, AuditResult, export_generated, run_audit};
use crate::engine::ModelSource;
use crate::imaging::load_image;
use crate::imaging::resize::fit_within;
use crate::metrics::memorisation::DEFAULT_THRESHOLD_PERCENTILE;
use crate::models::embedding::Embedder;

/// Longest side of the pair thumbnails.
const THUMBNAIL_SIDE_PX: usize = 96;

/// A finished audit with thumbnails of its closest pairs (generated, training).
pub struct AuditOutcome {
    pub result: AuditResult,
    thumbnails: Vec<(egui::ColorImage, egui::ColorImage)>,
}

/// Progress shared with the audit thread: stage, done, total.
type SharedProgress = Arc<Mutex<(String, usize, usize)>>;

struct RunningAudit {
    cancel: Arc<AtomicBool>,
    progress: SharedProgress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FolderField {
    Generated,
    Training,
    Heldout,
    Export,
}

/// State of the Audit window.
pub struct AuditWindow {
    pub open: bool,
    pub generated: Option<PathBuf>,
    pub training: Option<PathBuf>,
    pub heldout: Option<PathBuf>,
    pub percentile: f64,
    pub top_k: usize,
    running: Option<RunningAudit>,
    pub outcome: Option<AuditOutcome>,
    pub error: Option<String>,
    /// Generated files left out of the export (the flagged ones at first).
    pub excluded: Vec<PathBuf>,
    pub export_message: Option<String>,
    textures: Vec<(egui::TextureHandle, egui::TextureHandle)>,
    done_tx: Sender<Result<AuditOutcome, String>>,
    done_rx: Receiver<Result<AuditOutcome, String>>,
    dialogs: PathDialogs<FolderField>,
}

impl Default for AuditWindow {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Self {
            open: false,
            generated: None,
            training: None,
            heldout: None,
            percentile: DEFAULT_THRESHOLD_PERCENTILE,
            top_k: 8,
            running: None,
            outcome: None,
            error: None,
            excluded: Vec::new(),
            export_message: None,
            textures: Vec::new(),
            done_tx,
            done_rx,
            dialogs: PathDialogs::default(),
        }
    }
}

fn thumbnail(path: &std::path::Path) -> Result<egui::ColorImage, String> {
    let image = load_image(path).map_err(|e| e.to_string())?;
    let small = fit_within(&image, THUMBNAIL_SIDE_PX).map_err(|e| e.to_string())?;
    let gray: Vec<u8> = small.to_unit_range().iter().map(|v| (v * 255.0).round() as u8).collect();
    Ok(egui::ColorImage::from_gray([small.width_px(), small.height_px()], &gray))
}

/// Runs the audit (blocking: call it off the UI thread).
fn audit_job(
    classifier: &ModelSource,
    inputs: &AuditInputs,
    cancel: &AtomicBool,
    progress: &SharedProgress,
) -> Result<AuditOutcome, String> {
    let device = candle_core::Device::Cpu;
    let embedder = match classifier {
        ModelSource::Embedded { bytes, .. } => Embedder::load(None, Some(bytes), &device),
        ModelSource::File(path) => Embedder::load(Some(path), None, &device),
    }
    .map_err(|e| format!("loading the classifier {}: {e}", classifier.name()))?;
    let result = run_audit(&embedder, inputs, &mut |stage, done, total| {
        if let Ok(mut shared) = progress.lock() {
            *shared = (stage.to_owned(), done, total);
        }
        !cancel.load(Ordering::Relaxed)
    })
    .map_err(|e| e.to_string())?;
    let thumbnails = result
        .closest_pairs
        .iter()
        .map(|pair| Ok((thumbnail(&pair.generated)?, thumbnail(&pair.nearest_training)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(AuditOutcome { result, thumbnails })
}

impl AuditWindow {
    /// Whether an audit is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the audit on a background thread with `classifier` (the one in use).
    pub fn start(&mut self, ctx: &egui::Context, classifier: ModelSource) {
        if self.running.is_some() {
            return;
        }
        let (Some(generated), Some(training), Some(heldout)) =
            (self.generated.clone(), self.training.clone(), self.heldout.clone())
        else {
            self.error = Some("pick the generated, training and held-out folders".to_owned());
            return;
        };
        let inputs = AuditInputs { generated, training, heldout, percentile: self.percentile, top_k: self.top_k };
        let cancel = Arc::new(AtomicBool::new(false));
        let progress: SharedProgress = Arc::new(Mutex::new(("starting".to_owned(), 0, 0)));
        let (job_cancel, job_progress, tx, ctx) = (cancel.clone(), progress.clone(), self.done_tx.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name("thorax-audit".to_owned()).spawn(move || {
            let outcome = audit_job(&classifier, &inputs, &job_cancel, &job_progress);
            tx.send(outcome).ok();
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => {
                self.running = Some(RunningAudit { cancel, progress });
                self.error = None;
                self.export_message = None;
            }
            Err(e) => self.error = Some(format!("cannot start the audit: {e}")),
        }
    }

    /// Asks the running audit to stop; it reports "cancelled".
    pub fn cancel(&self) {
        if let Some(running) = &self.running {
            running.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes a finished audit and picked folders (showing the built-in chooser when that is open); call once per
    /// frame.
    pub fn poll(&mut self, ctx: &egui::Context) {
        if let Some((field, path)) = self.dialogs.poll(ctx) {
            match field {
                FolderField::Generated => self.generated = Some(path),
                FolderField::Training => self.training = Some(path),
                FolderField::Heldout => self.heldout = Some(path),
                FolderField::Export => self.export(&path),
            }
        }
        if let Ok(outcome) = self.done_rx.try_recv() {
            self.running = None;
            match outcome {
                Ok(outcome) => {
                    self.excluded = outcome.result.flagged.iter().map(|p| p.generated.clone()).collect();
                    self.textures.clear();
                    self.outcome = Some(outcome);
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Copies the generated images not excluded into `dir`.
    pub fn export(&mut self, dir: &std::path::Path) {
        let Some(outcome) = &self.outcome else {
            return;
        };
        self.export_message = Some(match export_generated(&outcome.result.generated_files, &self.excluded, dir) {
            Ok(count) => format!("Copied {count} generated images to {}", dir.display()),
            Err(e) => format!("Export failed: {e}"),
        });
    }

    fn pick(&mut self, ctx: &egui::Context, field: FolderField) {
        let title = match field {
            FolderField::Export => "Copy the kept generated images to",
            _ => "Pick a folder of images",
        };
        if let Err(e) = self.dialogs.request(ctx, field, title, DialogKind::PickFolder, None) {
            self.error = Some(e);
        }
    }

    /// The window; `classifier` is the classifier in use (its features embed the images).
    pub fn window_ui(&mut self, ctx: &egui::Context, classifier: Option<ModelSource>) {
        self.poll(ctx);
        if !self.open {
            return;
        }
        if self.running.is_some() {
            // Progress comes from another thread.
            ctx.request_repaint_after(std::time::Duration::from_millis(200));
        }
        let mut open = true;
        egui::Window::new("Memorisation audit")
            .open(&mut open)
            .default_size([620.0, 760.0])
            .default_pos([300.0, 60.0])
            .show(ctx, |ui| {
                egui::ScrollArea::vertical().id_salt("audit_scroll").show(ui, |ui| self.contents_ui(ui, classifier))
            });
        self.open = open;
    }

    fn folder_row(&mut self, ui: &mut egui::Ui, label: &str, field: FolderField) {
        let value = match field {
            FolderField::Generated => &self.generated,
            FolderField::Training => &self.training,
            FolderField::Heldout => &self.heldout,
            FolderField::Export => &None,
        };
        let text = value.as_ref().map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
        ui.horizontal(|ui| {
            if ui.button(label).clicked() {
                self.pick(ui.ctx(), field);
            }
            ui.add(egui::Label::new(egui::RichText::new(text).weak()).truncate());
        });
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui, classifier: Option<ModelSource>) {
        ui.label(
            egui::RichText::new(
                "Are generated images closer to training images than unseen real images are? Each image is embedded \
                 with the classifier's pooled features; its nearest training image is found by cosine similarity.",
            )
            .weak(),
        );
        self.folder_row(ui, "Generated...", FolderField::Generated);
        self.folder_row(ui, "Training...", FolderField::Training);
        self.folder_row(ui, "Held-out real...", FolderField::Heldout);
        ui.horizontal(|ui| {
            let percentile = ui.label("Threshold: held-out percentile");
            ui.add(egui::DragValue::new(&mut self.percentile).range(50.0..=100.0).speed(0.1))
                .labelled_by(percentile.id);
            let top = ui.label("Closest pairs");
            ui.add(egui::DragValue::new(&mut self.top_k).range(1..=50)).labelled_by(top.id);
        });
        ui.horizontal(|ui| {
            let can_run = self.running.is_none() && classifier.is_some();
            if ui.add_enabled(can_run, egui::Button::new("Run audit")).clicked()
                && let Some(source) = classifier.clone()
            {
                self.start(ui.ctx(), source);
            }
            if let Some(running) = &self.running {
                let (stage, done, total) = running.progress.lock().map(|p| p.clone()).unwrap_or_default();
                let fraction = if total > 0 { done as f32 / total as f32 } else { 0.0 };
                ui.add(egui::ProgressBar::new(fraction).desired_width(200.0).text(format!("{stage}: {done}/{total}")));
                if ui.button("Cancel").clicked() {
                    self.cancel();
                }
            }
        });
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if self.outcome.is_some() {
            ui.separator();
            self.result_ui(ui);
        }
    }

    fn result_ui(&mut self, ui: &mut egui::Ui) {
        let Some(outcome) = &self.outcome else {
            return;
        };
        let result = &outcome.result;
        if result.untrained_model {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "UNTRAINED classifier: the embedding is a random projection; exact copies are still caught",
            );
        }
        ui.label(format!(
            "{} generated, {} training, {} held-out images; threshold (held-out P{}) {:.4}",
            result.count_generated,
            result.count_training,
            result.count_heldout,
            result.threshold_percentile,
            result.threshold_cosine_similarity
        ));
        ui.label(
            egui::RichText::new(format!(
                "Flagged: {} of {} generated images ({:.1} %)",
                result.count_flagged,
                result.count_generated,
                result.fraction_flagged * 100.0
            ))
            .strong(),
        );
        for caution in &result.cautions {
            ui.colored_label(ui.visuals().warn_fg_color, format!("Caution: {caution}"));
        }
        similarity_plot_ui(ui, result);
        if self.textures.len() != outcome.thumbnails.len() {
            self.textures = outcome
                .thumbnails
                .iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    let options = egui::TextureOptions::LINEAR;
                    (
                        ui.ctx().load_texture(format!("audit-generated-{i}"), a.clone(), options),
                        ui.ctx().load_texture(format!("audit-training-{i}"), b.clone(), options),
                    )
                })
                .collect();
        }
        ui.label(egui::RichText::new("Closest pairs: generated | nearest training image").strong());
        let mut toggled: Option<PathBuf> = None;
        for (pair, (generated, training)) in result.closest_pairs.iter().zip(&self.textures) {
            ui.horizontal(|ui| {
                ui.add(egui::Image::new(generated).max_height(THUMBNAIL_SIDE_PX as f32));
                ui.add(egui::Image::new(training).max_height(THUMBNAIL_SIDE_PX as f32));
                ui.vertical(|ui| {
                    ui.set_min_width(300.0);
                    let name = |p: &std::path::Path| {
                        p.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    };
                    let mirrored = if pair.nearest_training_mirrored { " (mirrored)" } else { "" };
                    ui.label(format!("{}  <->  {}{mirrored}", name(&pair.generated), name(&pair.nearest_training)));
                    ui.label(format!(
                        "cosine {:.4}   pixel MS-SSIM {}",
                        pair.cosine_similarity,
                        pair.pixel_ms_ssim.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"))
                    ));
                    if pair.flagged {
                        ui.colored_label(ui.visuals().error_fg_color, "FLAGGED: closer than the held-out threshold");
                    }
                    let mut keep = !self.excluded.contains(&pair.generated);
                    if ui.checkbox(&mut keep, "Keep in export").changed() {
                        toggled = Some(pair.generated.clone());
                    }
                });
            });
            ui.separator();
        }
        if let Some(path) = toggled {
            match self.excluded.iter().position(|p| *p == path) {
                Some(index) => {
                    self.excluded.remove(index);
                }
                None => self.excluded.push(path),
            }
        }
        ui.horizontal(|ui| {
            if ui.button("Export kept images...").clicked() {
                self.pick(ui.ctx(), FolderField::Export);
            }
            ui.label(egui::RichText::new(format!("{} excluded", self.excluded.len())).weak());
        });
        if let Some(message) = &self.export_message {
            ui.label(message);
        }
    }
}

/// Histograms of nearest-training similarity, held-out vs generated, with the threshold.
fn similarity_plot_ui(ui: &mut egui::Ui, result: &AuditResult) {
    use egui_plot::{Bar, BarChart, Legend, Plot, VLine};
    let all: Vec<f64> = result.heldout_similarities.iter().chain(&result.generated_similarities).copied().collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return;
    }
    const BINS: usize = 30;
    let width = ((hi - lo) / BINS as f64).max(1e-6);
    let histogram = |values: &[f64]| -> Vec<Bar> {
        let mut counts = [0usize; BINS];
        for &v in values {
            let bin = (((v - lo) / width) as usize).min(BINS - 1);
            counts[bin] += 1;
        }
        let n = values.len().max(1) as f64;
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar::new(lo + (i as f64 + 0.5) * width, c as f64 / n).width(width))
            .collect()
    };
    let heldout = histogram(&result.heldout_similarities);
    let generated = histogram(&result.generated_similarities);
    let tallest = heldout.iter().chain(&generated).map(|bar| bar.value).fold(0.0, f64::max);
    Plot::new("audit_similarity")
        .height(160.0)
        .legend(Legend::default())
        .include_y(tallest * crate::app::metrics_plots::LEGEND_HEADROOM)
        .x_axis_label("nearest-training cosine similarity")
        .y_axis_label("fraction")
        .allow_drag(false)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("held-out real", heldout).color(egui::Color32::from_rgb(90, 150, 230)));
            plot.bar_chart(BarChart::new("generated", generated).color(egui::Color32::from_rgb(240, 150, 60)));
            plot.vline(VLine::new("threshold", result.threshold_cosine_similarity).color(egui::Color32::RED));
        });
}
