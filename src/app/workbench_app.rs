//! The workbench window: menu, side panel, two linked viewports, status bar.

use std::collections::HashMap;

use crate::app::audit_window::AuditWindow;
use crate::app::classifier_panel::ClassifierPanel;
use crate::app::dicom_tag_panel::DicomTagPanel;
use crate::app::generated_export::GeneratedRecord;
use crate::app::generator_panel::GeneratorPanel;
use crate::app::heatmap_exporter::{HeatmapExporter, HeatmapToWrite};
use crate::app::measurement::export::{MeasurementExporter, ViewMeasurements, measurements_csv};
use crate::app::measurement::{MeasureGesture, MeasureTool};
use crate::app::metrics_panel::{MetricsModels, MetricsPanel};
use crate::app::model_shelf::{ModelChoice, ModelShelf, ShelfAction};
use crate::app::path_dialog::{
    DialogBackend, DialogKind, PathDialogs, desktop_dialogs_available, remember_folder, remembered_folder,
    set_dialog_backend,
};
use crate::app::presentation_state_files::{
    GspsSnapshot, PresentationStateEvent, PresentationStateFiles, apply_presentation_state, why_no_presentation_state,
};
use crate::app::radiograph_renderer::{self, Colormap};
use crate::app::radiograph_viewer::{HoveredPixel, ViewerOutput};
use crate::app::sample_browser::SampleBrowser;
use crate::app::settings::{SETTINGS_KEY, Settings};
use crate::app::study_designer::{GeneratorChoice, StudyDesigner};
use crate::app::study_panel::StudyPanel;
use crate::app::style_transfer_panel::StyleTransferPanel;
use crate::app::traversal_export::TraversalExport;
use crate::app::view_png::{SavedExtent, ViewFigure, ViewPngExport, ViewSnapshot};
use crate::app::viewport_pane::ViewportPane;
use crate::engine::device::{DeviceChoice, open_device};
use crate::engine::job_runner::{JobRunner, ModelRunner};
use crate::engine::request::PreparedImage;
use crate::engine::{ImageSource, JobKey, Output, Request, Response, Slot, Stamp, WorkerActivity, WorkerHandle};
use crate::imaging::Window;
use crate::imaging::chest_domain::not_a_chest_radiograph;
use crate::imaging::samples::embedded_samples;
use crate::imaging::window::{FULL_RANGE, ct_presets_hu};
use crate::models::card::ModelKind;
use crate::models::heatmap::GrayMap;
use crate::models::heatmap_export::OverlayStyle;

/// How the workbench starts.
pub struct AppOptions {
    pub device: DeviceChoice,
    /// Replaces the production runner (tests inject slow or failing runners).
    pub runner: Option<Box<dyn FnOnce() -> Box<dyn JobRunner>>>,
    /// Loads the first sample into the Real viewport at start.
    pub load_first_sample: bool,
    /// Generates the first artificial image and classifies both views at start.
    pub run_models: bool,
    /// A study to open at start (`thorax gui --study`); when it opens, the first sample and generation wait until
    /// it is closed, since the station hides the workbench.
    pub open_study: Option<StudyAtStart>,
}

/// The workbench's first work, deferred while a study opened at start hides it.
#[derive(Clone, Copy, Debug)]
struct WorkbenchStart {
    load_first_sample: bool,
}

/// A study the workbench opens at start, on its station home, with the reader to select.
#[derive(Clone, Debug)]
pub struct StudyAtStart {
    pub path: std::path::PathBuf,
    pub reader: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self { device: DeviceChoice::Auto, runner: None, load_first_sample: true, run_models: true, open_study: None }
    }
}

impl<R: JobRunner + ?Sized> JobRunner for Box<R> {
    fn device_label(&self) -> String {
        (**self).device_label()
    }

    fn run(&mut self, request: Request) -> Result<Output, crate::engine::EngineError> {
        (**self).run(request)
    }
}

/// How the status bar starts the error of a model file that could not be opened.
const MODEL_FILE_ERROR: &str = "Open model: ";

/// What an "Open ..." dialog of the main window is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenTarget {
    Image(Slot),
    Model(ModelKind),
    /// File ▸ Save artificial image (a save dialog, not an open one).
    SaveGenerated,
}

/// A message for the status bar; errors stay until replaced.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusMessage {
    Info(String),
    Error(String),
}

pub struct WorkbenchApp {
    pub settings: Settings,
    pub real: ViewportPane,
    pub artificial: ViewportPane,
    pub samples: SampleBrowser,
    pub generator: GeneratorPanel,
    pub classifier: ClassifierPanel,
    /// The classifiers to pick from (embedded and opened files).
    pub classifiers: ModelShelf,
    /// CycleGAN style transfer of the real image, shown in `styled`.
    pub style: StyleTransferPanel,
    /// The third viewport, shown while style transfer is applied.
    pub styled: ViewportPane,
    run_models: bool,
    /// The first sample and generation, waiting for a study opened at start to be closed.
    start_after_study: Option<WorkbenchStart>,
    /// The viewport the user last touched; keyboard commands apply to it.
    pub active: Slot,
    /// What Shift + drag draws on a view (display toolbar).
    pub measure_tool: MeasureTool,
    pub message: Option<StatusMessage>,
    worker: WorkerHandle,
    /// Newest stamp submitted per key; older responses are stale and dropped.
    newest_stamps: HashMap<JobKey, Stamp>,
    hovered: Option<(Slot, HoveredPixel)>,
    /// The pixel under the pointer in the third viewport (a dropped file there goes to the real view).
    hovered_styled: Option<HoveredPixel>,
    /// "Open ..." dialogs for images and models, and the save dialog of the generated image.
    dialogs: PathDialogs<OpenTarget>,
    /// The generator's latest image with its provenance, for File ▸ Save artificial image.
    pub generated: Option<GeneratedRecord>,
    /// Outcomes of writes done off the UI thread, for the status bar.
    notices_tx: crossbeam_channel::Sender<StatusMessage>,
    notices_rx: crossbeam_channel::Receiver<StatusMessage>,
    /// Count of frames drawn, for tests that check the UI keeps answering.
    pub frame_count: u64,
    /// The Study panel, its full-screen blinded reading and its Results view.
    pub study: StudyPanel,
    /// The "New study" window.
    pub study_designer: StudyDesigner,
    /// The memorisation audit window.
    pub audit: AuditWindow,
    /// "Export heatmaps...": folder dialog and writing off the UI thread.
    pub heatmap_exporter: HeatmapExporter,
    /// "Export measurements...": save dialog and writing off the UI thread.
    pub measurement_exporter: MeasurementExporter,
    /// File ▸ Save view as PNG: save dialog, drawing and writing off the UI thread.
    pub view_png: ViewPngExport,
    /// Measure ▸ Save as / Open presentation state (GSPS): dialogs, writing and reading off the UI thread.
    pub presentation_states: PresentationStateFiles,
    /// Generator ▸ Export GIF: a label traversal made and written on a helper thread.
    pub traversal: TraversalExport,
    /// The DICOM attributes of the real image, when it came from a DICOM file.
    pub dicom_tags: DicomTagPanel,
    /// The Metrics window: background metric jobs and their results.
    pub metrics: MetricsPanel,
}

impl WorkbenchApp {
    /// Builds the app inside eframe (or kittest), installing the shader pipeline and starting the worker.
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> anyhow::Result<Self> {
        let settings: Settings =
            cc.storage.and_then(|storage| eframe::get_value(storage, SETTINGS_KEY)).unwrap_or_default();
        cc.egui_ctx.set_theme(egui::Theme::Dark);
        let gpu_rendering = radiograph_renderer::install(cc.wgpu_render_state.as_ref());
        let runner: Box<dyn JobRunner> = match options.runner {
            Some(make) => make(),
            None => Box::new(ModelRunner::new(open_device(options.device)?)),
        };
        let ctx = cc.egui_ctx.clone();
        let worker = WorkerHandle::spawn(runner, std::sync::Arc::new(move || ctx.request_repaint()))?;
        let (notices_tx, notices_rx) = crossbeam_channel::unbounded();
        let mut app = Self {
            settings,
            real: ViewportPane::new("Real", "Pick a sample on the left, or File > Open..."),
            artificial: ViewportPane::new(
                "Artificial",
                "No generator output yet\nFile > Open artificial image... shows a generated file here",
            )
            .with_badge("ARTIFICIAL"),
            samples: SampleBrowser::new(embedded_samples(), &cc.egui_ctx),
            generator: GeneratorPanel::default(),
            classifier: ClassifierPanel::default(),
            classifiers: ModelShelf::embedded(ModelKind::Densenet121Classifier),
            style: StyleTransferPanel::default(),
            styled: ViewportPane::new("Style-transferred", STYLED_PLACEHOLDER)
                .with_badge("ARTIFICIAL (style transfer)"),
            run_models: options.run_models,
            start_after_study: None,
            active: Slot::Real,
            measure_tool: MeasureTool::default(),
            message: None,
            worker,
            newest_stamps: HashMap::new(),
            hovered: None,
            hovered_styled: None,
            dialogs: PathDialogs::default(),
            generated: None,
            notices_tx,
            notices_rx,
            frame_count: 0,
            study: StudyPanel::default(),
            study_designer: StudyDesigner::default(),
            audit: AuditWindow::default(),
            heatmap_exporter: HeatmapExporter::default(),
            measurement_exporter: MeasurementExporter::default(),
            presentation_states: PresentationStateFiles::default(),
            view_png: ViewPngExport::default(),
            traversal: TraversalExport::new(options.device),
            dicom_tags: DicomTagPanel::default(),
            metrics: MetricsPanel::new(options.device),
        };
        set_dialog_backend(app.settings.file_dialogs);
        if let Some(folder) = app.settings.last_folder.clone() {
            remember_folder(&cc.egui_ctx, folder);
        }
        // The saved colour map is what the toolbar shows; the views must draw with it too.
        for pane in [&mut app.real, &mut app.artificial, &mut app.styled] {
            pane.view.colormap = app.settings.colormap;
        }
        if !gpu_rendering {
            app.message = Some(StatusMessage::Error(
                "No wgpu renderer: radiographs cannot be drawn (start with the wgpu backend)".to_owned(),
            ));
        }
        let start = WorkbenchStart { load_first_sample: options.load_first_sample };
        if options.open_study.is_some_and(|study| app.open_study_at_start(&study)) {
            // The station hides the workbench: its first sample and generation wait until the study is closed.
            app.start_after_study = Some(start);
        } else {
            app.start(start);
        }
        Ok(app)
    }

    /// What the workbench shows first: the first sample in the Real view, and a generated image.
    fn start(&mut self, start: WorkbenchStart) {
        if start.load_first_sample && !self.samples.samples().is_empty() {
            // Samples come labelled first: the first is an NIH image with a finding.
            self.load_sample(0);
        }
        if self.run_models {
            self.generate();
        }
    }

    /// Opens `start`'s study and selects its reader; returns whether the study opened. Failures are shown where the
    /// station's home would be, naming the file or the reader.
    fn open_study_at_start(&mut self, start: &StudyAtStart) -> bool {
        if self.study.open_path(&start.path).is_err() {
            return false;
        }
        if let Some(reader) = &start.reader
            && let Err(e) = self.study.select_reader(reader)
        {
            self.study.error = Some(format!("--reader: {e}"));
        }
        true
    }

    /// Queues a request and remembers its stamp as the newest of its key.
    pub fn submit(&mut self, request: Request) -> Stamp {
        let key = request.key();
        let stamp = self.worker.submit(request);
        self.newest_stamps.insert(key, stamp);
        stamp
    }

    /// Asks the worker for an image with the generator panel's current settings.
    pub fn generate(&mut self) {
        if let Some(request) = self.generator.request() {
            self.artificial.loading = Some("generator".to_owned());
            self.submit(request);
        }
    }

    /// Asks the worker to classify what `slot` shows.
    fn classify(&mut self, slot: Slot) {
        if !self.run_models {
            return;
        }
        let (Some(model), Some(prepared)) = (self.classifiers.current(), &self.pane(slot).image) else {
            return;
        };
        let request = Request::Classify { slot, model: model.source.clone(), image: prepared.image.clone() };
        self.submit(request);
    }

    /// Asks the worker for heatmaps of both views (when the overlay is on).
    fn request_heatmaps(&mut self) {
        for slot in [Slot::Real, Slot::Artificial] {
            self.request_heatmap(slot);
        }
    }

    fn request_heatmap(&mut self, slot: Slot) {
        if !self.classifier.heatmap.enabled || !self.run_models {
            self.pane_mut(slot).overlay = None;
            return;
        }
        let (Some(model), Some(prepared)) = (self.classifiers.current(), &self.pane(slot).image) else {
            return;
        };
        let request = Request::Heatmap {
            slot,
            model: model.source.clone(),
            image: prepared.image.clone(),
            label: self.classifier.heatmap.target.clone(),
            method: self.classifier.heatmap.method,
        };
        self.submit(request);
    }

    /// Writes the generator's latest image to `path` on a helper thread; the outcome goes to the status bar.
    pub fn save_generated(&mut self, ctx: &egui::Context, path: std::path::PathBuf) {
        let Some(record) = self.generated.clone() else {
            return;
        };
        let (tx, ctx) = (self.notices_tx.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name("thorax-save-generated".to_owned()).spawn(move || {
            let notice = match record.save(&path) {
                Ok(()) => StatusMessage::Info(format!("Saved {} (seed {})", path.display(), record.provenance.seed)),
                Err(e) => StatusMessage::Error(format!("Cannot save {}: {e}", path.display())),
            };
            tx.send(notice).ok();
            ctx.request_repaint();
        });
        if let Err(e) = spawned {
            self.message = Some(StatusMessage::Error(format!("cannot start saving: {e}")));
        }
    }

    /// One entry per view: the view as shown (zoom, window, overlay, measurements, badge) as a PNG; and one per
    /// view for its whole image at full resolution.
    fn save_view_menu_ui(&mut self, ui: &mut egui::Ui) {
        let (mut chosen, mut chosen_figure) = (None, None);
        let extents = [
            (
                SavedExtent::AsShown,
                "view...",
                "As the screen shows it, at its pixel size: zoom, pan, window, invert, colour map, heatmap, \
                 measurements and the ARTIFICIAL badge",
            ),
            (
                SavedExtent::WholeImage,
                "image, full resolution...",
                "The whole image, one PNG pixel per image pixel, with the view's window, invert, colour map, \
                 heatmap, measurements and badge; labels keep their size against the image as in the fitted view",
            ),
        ];
        for (index, (extent, entry, hint)) in extents.into_iter().enumerate() {
            if index > 0 {
                ui.separator();
            }
            for pane in [&self.real, &self.artificial, &self.styled] {
                let button = egui::Button::new(format!("{} {entry}", pane.title));
                if ui
                    .add_enabled(pane.image.is_some(), button)
                    .on_hover_text(hint)
                    .on_disabled_hover_text("The view shows no image")
                    .clicked()
                {
                    chosen = ViewSnapshot::of(pane, ui.ctx()).map(|snapshot| snapshot.with_extent(extent));
                }
            }
        }
        ui.separator();
        let shown: Vec<&ViewportPane> =
            [&self.real, &self.artificial, &self.styled].into_iter().filter(|pane| pane.image.is_some()).collect();
        if ui
            .add_enabled(shown.len() >= 2, egui::Button::new("Views side by side..."))
            .on_hover_text(
                "Every view showing an image, left to right as on screen, each as the screen shows it, in one PNG: \
                 a real film beside its artificial counterpart for a figure",
            )
            .on_disabled_hover_text("Fewer than two views show an image")
            .clicked()
        {
            let panels = shown.iter().filter_map(|pane| ViewSnapshot::of(pane, ui.ctx())).collect();
            chosen_figure = ViewFigure::side_by_side(panels);
        }
        if let Some(figure) = chosen.map(ViewFigure::single).or(chosen_figure) {
            self.view_png.start(ui.ctx(), figure);
            ui.close();
        }
    }

    /// The tool choice, Clear and Export CSV as the toolbar has them; saving a view's measurements as a DICOM
    /// presentation state (one entry per view, enabled for a DICOM image) and opening one onto the view whose image
    /// it references.
    fn measure_menu_ui(&mut self, ui: &mut egui::Ui) {
        // The toolbar's tool choice and actions, for those who look for them here.
        let mut tool = self.measure_tool;
        for option in MeasureTool::ALL {
            ui.radio_value(&mut tool, option, option.name()).on_hover_text(option.hint());
        }
        if tool != self.measure_tool {
            self.cancel_measure_gestures();
            self.measure_tool = tool;
            ui.close();
        }
        ui.separator();
        if self.measurement_actions_ui(ui, "Clear all measurements", "Export measurements as CSV...") {
            ui.close();
        }
        ui.separator();
        let mut chosen = None;
        ui.menu_button("Save as presentation state (GSPS)", |ui| {
            for slot in [Slot::Real, Slot::Artificial] {
                let pane = self.pane(slot);
                let why_not = why_no_presentation_state(pane);
                if ui
                    .add_enabled(why_not.is_none(), egui::Button::new(format!("{} view...", pane.title)))
                    .on_hover_text(
                        "The view's measurements, window and inversion as a DICOM Grayscale Softcopy Presentation \
                         State of its image, which PACS viewers show over the image",
                    )
                    .on_disabled_hover_text(why_not.unwrap_or_default())
                    .clicked()
                {
                    chosen = Some(slot);
                }
            }
        });
        if let Some(slot) = chosen {
            match GspsSnapshot::of(self.pane(slot)) {
                Ok(snapshot) => self.presentation_states.start_save(ui.ctx(), snapshot),
                Err(e) => self.message = Some(StatusMessage::Error(format!("Presentation state not saved: {e}"))),
            }
            ui.close();
        }
        if ui
            .button("Open presentation state...")
            .on_hover_text(
                "A DICOM presentation state (GSPS) applied to the view whose image it references: its lines, angles \
                 and ellipses become measurements, its window and inversion the view's",
            )
            .clicked()
        {
            self.presentation_states.start_open(ui.ctx());
            ui.close();
        }
    }

    /// Saves `slot`'s measurements as a presentation state at `path`, as if the menu and dialog had (scripting and
    /// tests).
    pub fn save_presentation_state_to(&mut self, ctx: &egui::Context, slot: Slot, path: std::path::PathBuf) {
        match GspsSnapshot::of(self.pane(slot)) {
            Ok(snapshot) => self.presentation_states.save_to(ctx, snapshot, path),
            Err(e) => self.message = Some(StatusMessage::Error(format!("Presentation state not saved: {e}"))),
        }
    }

    /// Opens the presentation state at `path` onto the view showing its image, as if the dialog had given it.
    pub fn open_presentation_state(&mut self, ctx: &egui::Context, path: std::path::PathBuf) {
        self.presentation_states.open(ctx, path);
    }

    /// A presentation state read: applied to the view whose image it references, else refused naming both images.
    fn apply_read_presentation_state(
        &mut self,
        ctx: &egui::Context,
        path: &std::path::Path,
        read: &crate::imaging::dicom::ReadPresentationState,
    ) {
        let shown = |pane: &ViewportPane| {
            let details = pane.image.as_ref().and_then(|p| p.dicom.as_ref());
            details.and_then(|d| d.identity.as_ref()).map(|identity| identity.sop_instance_uid.clone())
        };
        let target = [Slot::Real, Slot::Artificial]
            .into_iter()
            .find(|&slot| shown(self.pane(slot)).is_some_and(|uid| read.references(&uid)));
        let outcome = match target {
            Some(slot) => {
                self.cancel_measure_gestures();
                apply_presentation_state(self.pane_mut(slot), path, read, ctx)
            }
            None => {
                let views: Vec<String> = [&self.real, &self.artificial]
                    .iter()
                    .map(|pane| match shown(pane) {
                        Some(uid) => format!("the {} view shows image {uid}", pane.title),
                        None => format!("the {} view shows no DICOM image", pane.title),
                    })
                    .collect();
                Err(format!(
                    "Presentation state {} not applied: it is for image {}, but {}",
                    path.display(),
                    read.referenced_images.join(", "),
                    views.join(" and ")
                ))
            }
        };
        self.message = Some(match outcome {
            Ok(done) => StatusMessage::Info(done),
            Err(failed) => StatusMessage::Error(failed),
        });
    }

    /// The sweep's range and frame count, then one entry per label of the generator: that label swept with the
    /// panel's seed and other sliders.
    fn traversal_menu_ui(&mut self, ui: &mut egui::Ui) {
        let labels = self.generator.current().map_or_else(Vec::new, |model| model.card.labels.clone());
        if labels.is_empty() {
            ui.label("No generator");
            return;
        }
        self.traversal.sweep.ui(ui);
        ui.label(
            egui::RichText::new(format!("forward and back, seed {} and the other sliders as set", self.generator.seed))
                .weak(),
        );
        let mut chosen = None;
        for (index, name) in labels.iter().enumerate() {
            if ui.button(format!("{}...", name.replace('_', " "))).clicked() {
                chosen = Some(index);
            }
        }
        let sweep = self.traversal.sweep.clamped();
        if let Some(job) = chosen.and_then(|index| self.generator.traversal_job(index, sweep)) {
            self.traversal.start(ui.ctx(), job);
            ui.close();
        }
    }

    /// Saves `slot`'s view (`extent` of it) to `path` as if File ▸ Save view as PNG had been given it (scripting
    /// and tests).
    pub fn save_view_png_to(&mut self, ctx: &egui::Context, slot: Slot, extent: SavedExtent, path: std::path::PathBuf) {
        match ViewSnapshot::of(self.pane(slot), ctx).map(|snapshot| snapshot.with_extent(extent)) {
            Some(snapshot) => self.view_png.save_to(ViewFigure::single(snapshot), path),
            None => self.message = Some(StatusMessage::Error("View not saved: the view shows no image".to_owned())),
        }
        ctx.request_repaint();
    }

    /// The File menu's choice between the desktop's file dialogs and the built-in chooser.
    fn file_dialog_choice_ui(&mut self, ui: &mut egui::Ui) {
        let desktop = desktop_dialogs_available();
        let mut builtin = !desktop || self.settings.file_dialogs == DialogBackend::BuiltIn;
        let response = ui
            .add_enabled(desktop, egui::Checkbox::new(&mut builtin, "Built-in file chooser"))
            .on_hover_text("The workbench's own chooser, with a typed path, instead of the desktop's dialog")
            .on_disabled_hover_text(
                "This desktop has no file dialog (no xdg portal and no zenity): the built-in chooser is used",
            );
        if response.changed() {
            self.settings.file_dialogs = if builtin { DialogBackend::BuiltIn } else { DialogBackend::Auto };
            set_dialog_backend(self.settings.file_dialogs);
        }
    }

    /// A model picked from a list settles a failed "Open model...": its error no longer describes the state.
    fn clear_model_file_error(&mut self) {
        if matches!(&self.message, Some(StatusMessage::Error(e)) if e.starts_with(MODEL_FILE_ERROR)) {
            self.message = None;
        }
    }

    /// Shows the "Open ..." dialog for `target`, starting in the last folder used.
    fn ask_path(&mut self, ctx: &egui::Context, target: OpenTarget) {
        let (title, kind) = match target {
            OpenTarget::Image(slot) => (
                if slot == Slot::Artificial { "Open artificial image" } else { "Open real image" },
                DialogKind::PickFile {
                    filter_name: "Images",
                    extensions: &["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom"],
                },
            ),
            OpenTarget::Model(_) => (
                "Open model (.safetensors with a thorax model card)",
                DialogKind::PickFile { filter_name: "Model weights", extensions: &["safetensors"] },
            ),
            OpenTarget::SaveGenerated => (
                "Save artificial image",
                DialogKind::SaveFile {
                    file_name: self
                        .generated
                        .as_ref()
                        .map_or_else(|| "artificial.png".to_owned(), |g| g.file_name.clone()),
                    filter_name: "PNG",
                    extensions: &["png"],
                    new_only: false,
                },
            ),
        };
        // No folder of its own: the dialog starts where the last pick of any dialog was (seeded from the settings).
        if let Err(e) = self.dialogs.request(ctx, target, title, kind, None) {
            self.message = Some(StatusMessage::Error(e));
        }
    }

    /// Asks the worker to read a model file of `kind`; on success it is added to that kind's picker and selected.
    pub fn open_model_file(&mut self, kind: ModelKind, path: std::path::PathBuf) {
        self.message = Some(StatusMessage::Info(format!("Reading model {}", path.display())));
        self.submit(Request::LoadModel { kind, path });
    }

    /// Asks the worker to translate the real image (when style transfer is applied), or clears the third viewport.
    pub fn translate(&mut self) {
        let request = self.real.image.as_ref().and_then(|prepared| self.style.request(&prepared.image));
        match request {
            Some(request) => {
                self.styled.loading = Some("translation".to_owned());
                self.submit(request);
            }
            None => {
                // Off, or no generator maps the direction (the panel says so): nothing stale stays on screen.
                self.style.result = None;
                self.styled.image = None;
                self.styled.loading = None;
            }
        }
    }

    /// Shows the translation or its |difference| in the third viewport, in step with the others when linked.
    fn show_style_result(&mut self, keep_view: bool) {
        let Some(shown) = self.style.shown().cloned() else {
            return;
        };
        if keep_view {
            self.styled.replace_image(shown);
        } else {
            // Another quantity: a fresh window for it, the same place in the image.
            let (transform, inverted) = (self.styled.view.transform, self.styled.view.inverted);
            self.styled.show_image(shown);
            self.styled.view.transform = transform;
            self.styled.view.inverted = inverted;
        }
        if self.settings.link_viewports {
            self.sync_views_from(Slot::Real);
        }
    }

    /// Applies the current opacity, threshold and colour map to the overlays shown.
    fn restyle_overlays(&mut self) {
        let settings = self.classifier.heatmap.clone();
        for pane in [&mut self.real, &mut self.artificial] {
            if let Some(overlay) = &mut pane.overlay {
                overlay.opacity = settings.opacity;
                overlay.threshold = settings.threshold;
                overlay.colormap = settings.colormap;
            }
        }
    }

    /// Loads embedded sample `index` into the Real viewport.
    pub fn load_sample(&mut self, index: usize) {
        let Some(sample) = self.samples.samples().get(index) else {
            return;
        };
        let source = ImageSource::Bytes { name: sample.file_name.clone(), bytes: sample.bytes.into() };
        self.samples.selected = Some(index);
        self.load(Slot::Real, source);
    }

    /// Asks the worker to decode and prepare an image for a viewport.
    pub fn load(&mut self, slot: Slot, source: ImageSource) {
        self.pane_mut(slot).loading = Some(source.display_name());
        self.submit(Request::PrepareImage { slot, source });
    }

    pub fn pane(&self, slot: Slot) -> &ViewportPane {
        match slot {
            Slot::Real => &self.real,
            Slot::Artificial => &self.artificial,
        }
    }

    pub fn pane_mut(&mut self, slot: Slot) -> &mut ViewportPane {
        match slot {
            Slot::Real => &mut self.real,
            Slot::Artificial => &mut self.artificial,
        }
    }

    pub fn worker_status(&self) -> crate::engine::WorkerStatus {
        self.worker.status()
    }

    fn handle_response(&mut self, response: Response) {
        let newest = self.newest_stamps.get(&response.key).copied().unwrap_or_default();
        if response.stamp < newest {
            // A newer request of the same kind is pending; showing this would flash stale content.
            return;
        }
        match (response.key, response.result) {
            (JobKey::PrepareImage(slot), Ok(Output::PreparedImage(prepared))) => {
                self.message = Some(StatusMessage::Info(format!(
                    "{} prepared in {:.0} ms (input tensor {:?})",
                    prepared.name, response.timings.run_ms, prepared.tensor_dims
                )));
                self.pane_mut(slot).show_image(*prepared);
                // A new image opens at its own window (the file's stored one, else its initial one), not at the one
                // left from the previous image or a preset; linking carries zoom and pan, and linked panes follow the
                // next window adjustment.
                let own_window = self.pane_mut(slot).view.window;
                if self.settings.link_viewports {
                    self.sync_views_from(slot.other());
                }
                self.pane_mut(slot).view.window = own_window;
                self.classify(slot);
                self.request_heatmap(slot);
                if slot == Slot::Real {
                    self.translate();
                }
            }
            (JobKey::Translate, Ok(Output::Translated(translated))) => {
                let current = self.real.image.as_ref().map(|p| p.image.id());
                if self.style.enabled && current == Some(translated.image_id) {
                    self.style.last_run_ms = Some(response.timings.run_ms);
                    self.style.result = Some(*translated);
                    self.show_style_result(true);
                }
            }
            (JobKey::LoadModel(kind), Ok(Output::ModelLoaded(loaded))) => {
                let choice = ModelChoice::from(*loaded);
                self.message =
                    Some(StatusMessage::Info(format!("Opened {} from {}", choice.card.name, choice.source.name())));
                match kind {
                    ModelKind::ProganGenerator => {
                        self.generator.add_model(choice);
                        self.generate();
                    }
                    ModelKind::Densenet121Classifier => {
                        self.classifiers.add(choice);
                        self.reclassify();
                    }
                    ModelKind::CycleganGenerator => {
                        self.style.add_model(choice);
                        self.translate();
                    }
                    ModelKind::InceptionV3 => {}
                }
            }
            (JobKey::Generate, Ok(Output::Generated(generated))) => {
                self.generator.last_run_ms = Some(response.timings.run_ms);
                self.generated =
                    self.generator.current().filter(|m| m.source.name() == generated.model_name).and_then(|m| {
                        let image = generated.prepared.image.clone();
                        GeneratedRecord::new(image, &m.card, &m.sha256, generated.seed, &generated.labels)
                            .map_err(|e| log::warn!("no provenance for the generated image: {e}"))
                            .ok()
                    });
                // A slider move keeps the reader's zoom and window; only a new size resets the view.
                self.artificial.replace_image(generated.prepared);
                self.classify(Slot::Artificial);
                self.request_heatmap(Slot::Artificial);
            }
            (JobKey::Classify(slot), Ok(Output::Classified(classification))) => {
                let current = self.pane(slot).image.as_ref().map(|p| p.image.id());
                if current == Some(classification.image_id) {
                    self.classifier.results.insert(slot, *classification);
                }
            }
            (JobKey::Heatmap(slot), Ok(Output::Heatmap(heatmap))) => {
                let settings = self.classifier.heatmap.clone();
                let shown = self.pane(slot).image.as_ref().map(|p| p.image.id());
                if settings.enabled && shown == Some(heatmap.image_id) {
                    match &heatmap.note {
                        Some(note) => self.classifier.heatmap_notes.insert(slot, note.clone()),
                        None => self.classifier.heatmap_notes.remove(&slot),
                    };
                    self.pane_mut(slot).overlay = Some(crate::app::radiograph_renderer::Overlay {
                        heatmap: heatmap.map,
                        opacity: settings.opacity,
                        threshold: settings.threshold,
                        colormap: settings.colormap,
                    });
                }
            }
            (key, Err(error)) => {
                // The viewport keeps what it showed before: a bad file or model loses nothing.
                if let JobKey::PrepareImage(slot) = key {
                    self.pane_mut(slot).loading = None;
                }
                if key == JobKey::Generate {
                    self.artificial.loading = None;
                }
                if key == JobKey::Translate {
                    self.styled.loading = None;
                }
                // A model file that failed to open leaves the previous model selected.
                let context = if matches!(key, JobKey::LoadModel(_)) { MODEL_FILE_ERROR } else { "" };
                self.message = Some(StatusMessage::Error(format!("{context}{error}")));
            }
            (key, Ok(_)) => {
                log::warn!("unexpected output for {key:?}");
            }
        }
    }

    /// The heatmaps the viewports show now, ready to write.
    pub fn heatmaps_to_export(&self) -> Vec<HeatmapToWrite> {
        let method = self.classifier.heatmap.method.to_string();
        let label = self.classifier.heatmap.target.clone();
        [&self.real, &self.artificial]
            .into_iter()
            .filter_map(|pane| {
                let (prepared, overlay) = (pane.image.as_ref()?, pane.overlay.as_ref()?);
                let (w, h) = (prepared.image.width_px(), prepared.image.height_px());
                // The image as the view shows it: its window and invert (the overlay's look follows below).
                let (window, inverted) = (pane.view.window, pane.view.inverted);
                let values = prepared.image.pixels().iter().map(|&v| window.display_fraction(v, inverted)).collect();
                let gray = GrayMap { width_px: w, height_px: h, values };
                let heatmap = &overlay.heatmap;
                let map = GrayMap {
                    width_px: heatmap.width_px(),
                    height_px: heatmap.height_px(),
                    values: heatmap.pixels().to_vec(),
                };
                let base = HeatmapToWrite::base_name(&format!("{}_{}", pane.title, prepared.name), &label, &method);
                let style = OverlayStyle {
                    opacity: self.classifier.heatmap.opacity,
                    threshold: self.classifier.heatmap.threshold,
                };
                Some(HeatmapToWrite { base, gray, map, style })
            })
            .collect()
    }

    /// Every view's kept measurements as CSV, and how many there are.
    pub fn measurements_csv(&self) -> Result<(Vec<u8>, usize), String> {
        let views: Vec<ViewMeasurements<'_>> = [&self.real, &self.artificial, &self.styled]
            .into_iter()
            .filter_map(|pane| {
                let prepared = pane.image.as_ref()?;
                Some(ViewMeasurements {
                    view: pane.title,
                    image_name: &prepared.name,
                    spacing: prepared.dicom.as_ref().and_then(|d| d.summary.pixel_spacing.as_ref()),
                    value_unit: prepared.value_unit(),
                    items: pane.measurements.items(),
                })
            })
            .collect();
        measurements_csv(&views)
    }

    /// Writes every view's measurements to `path` as if the save dialog had given it (scripting and tests).
    pub fn export_measurements_to(&mut self, ctx: &egui::Context, path: std::path::PathBuf) {
        self.measurement_exporter.export_to(path);
        ctx.request_repaint();
    }

    /// Builds the measurements table for a chosen file once no region is still being measured (a region's thread
    /// repaints when done), so the file holds every measurement shown, with its statistics.
    fn export_measurements_when_measured(&mut self, ctx: &egui::Context) {
        let measuring =
            [&self.real, &self.artificial, &self.styled].iter().any(|pane| pane.measurements.is_measuring());
        if self.measurement_exporter.waiting_for_table() && !measuring {
            let csv = self.measurements_csv();
            self.measurement_exporter.write_table(ctx, csv);
        }
    }

    /// Copies zoom, pan, window/level (relative to each image's range), invert and colour map from `source`.
    fn sync_views_from(&mut self, source: Slot) {
        let (from, to) = match source {
            Slot::Real => (&self.real, &mut self.artificial),
            Slot::Artificial => (&self.artificial, &mut self.real),
        };
        copy_view(from, to, true);
        // A |difference| is another quantity: its window is its own.
        copy_view(from, &mut self.styled, !self.style.show_difference);
    }

    /// The third viewport as the source of a linked change.
    fn sync_views_from_styled(&mut self) {
        let with_window = !self.style.show_difference;
        copy_view(&self.styled, &mut self.real, with_window);
        copy_view(&self.styled, &mut self.artificial, with_window);
    }

    fn after_styled_viewer(&mut self, output: ViewerOutput) {
        self.keep_one_selection(2, &output);
        self.hovered_styled = output.hovered_pixel;
        if self.settings.link_viewports && (output.transform_changed || output.window_changed) {
            self.sync_views_from_styled();
        }
    }

    /// New classifier: both views are classified (and mapped) again.
    fn reclassify(&mut self) {
        self.classifier.results.clear();
        self.classifier.heatmap_notes.clear();
        self.classify(Slot::Real);
        self.classify(Slot::Artificial);
        self.request_heatmaps();
    }

    fn after_viewer(&mut self, slot: Slot, output: ViewerOutput) {
        self.keep_one_selection(if slot == Slot::Real { 0 } else { 1 }, &output);
        if output.interacted || output.window_changed {
            self.active = slot;
        }
        if let Some(pixel) = output.hovered_pixel {
            self.hovered = Some((slot, pixel));
        }
        if self.settings.link_viewports && (output.transform_changed || output.window_changed) {
            self.sync_views_from(slot);
        }
    }

    /// Keyboard: `I` inverts the active viewport (both when linked); Esc drops a measuring gesture in progress (an
    /// angle's first arm, a CTR's cardiac line, a handle being moved) or, with none, deselects; Delete or Backspace
    /// removes the selected measurement.
    fn handle_keys(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        if ctx.input(|i| i.key_pressed(egui::Key::I)) {
            self.toggle_invert();
        }
        if ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            let panes = [&self.real, &self.artificial, &self.styled];
            if panes.iter().any(|pane| pane.measurements.has_gesture()) {
                self.cancel_measure_gestures();
            } else {
                self.deselect_measurements_except(None);
            }
        }
        if ctx.input(|i| i.key_pressed(egui::Key::Delete) || i.key_pressed(egui::Key::Backspace)) {
            for pane in [&mut self.real, &mut self.artificial, &mut self.styled] {
                pane.measurements.delete_selected();
            }
        }
        self.nudge_selected_measurement(ctx);
    }

    /// The arrow keys move the selected measurement by one image pixel (ten with Shift), for placing calipers finer
    /// than a hand can; not while a widget (a slider) has the keyboard, which takes the arrows itself.
    fn nudge_selected_measurement(&mut self, ctx: &egui::Context) {
        let panes = [&self.real, &self.artificial, &self.styled];
        if ctx.memory(|m| m.focused().is_some()) || panes.iter().all(|pane| pane.measurements.selected().is_none()) {
            return;
        }
        let mut by_px = [0.0f32; 2];
        for (key, step) in [
            (egui::Key::ArrowLeft, [-1.0, 0.0]),
            (egui::Key::ArrowRight, [1.0, 0.0]),
            (egui::Key::ArrowUp, [0.0, -1.0]),
            (egui::Key::ArrowDown, [0.0, 1.0]),
        ] {
            // Shift first: a press with Shift also matches the plain pattern (egui ignores extra Shift there).
            for (modifiers, scale) in [(egui::Modifiers::SHIFT, 10.0), (egui::Modifiers::NONE, 1.0)] {
                let presses = ctx.input_mut(|i| i.count_and_consume_key(modifiers, key)) as f32;
                by_px[0] += step[0] * scale * presses;
                by_px[1] += step[1] * scale * presses;
            }
        }
        if by_px == [0.0, 0.0] {
            return;
        }
        for pane in [&mut self.real, &mut self.artificial, &mut self.styled] {
            if let Some(prepared) = &pane.image {
                pane.measurements.nudge_selected(by_px, &prepared.image, ctx);
            }
        }
    }

    /// Deselects every view's measurement but `keep`'s (0 real, 1 artificial, 2 style-transferred): one selection in
    /// the window, so Delete removes one measurement.
    fn deselect_measurements_except(&mut self, keep: Option<usize>) {
        for (index, pane) in [&mut self.real, &mut self.artificial, &mut self.styled].into_iter().enumerate() {
            if keep != Some(index) {
                pane.measurements.select(None);
            }
        }
    }

    /// After a view's gesture: a selection made there (a click, a handle taken) ends any other view's.
    fn keep_one_selection(&mut self, index: usize, output: &ViewerOutput) {
        if matches!(
            output.measure,
            Some(
                MeasureGesture::Select { item: Some(_) }
                    | MeasureGesture::SelectHandle { .. }
                    | MeasureGesture::MoveHandle { .. }
            )
        ) {
            self.deselect_measurements_except(Some(index));
        }
    }

    fn cancel_measure_gestures(&mut self) {
        for pane in [&mut self.real, &mut self.artificial, &mut self.styled] {
            pane.measurements.cancel_gesture();
        }
    }

    /// The measurement tool choice, Clear and Export CSV..., in the display toolbar.
    fn measure_toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.label("Measure").on_hover_text(
            "Shift + drag on a view draws with the chosen tool; Shift + click clears that view's measurements; Esc \
             drops a gesture in progress. Drag a measurement's handle to move it; click a measurement to select it, \
             Delete removes it",
        );
        let mut tool = self.measure_tool;
        for option in MeasureTool::ALL {
            ui.selectable_value(&mut tool, option, option.name()).on_hover_text(option.hint());
        }
        if tool != self.measure_tool {
            // A waiting first drag (an angle's arm, a CTR's cardiac line) belongs to its tool.
            self.cancel_measure_gestures();
            self.measure_tool = tool;
        }
        self.measurement_actions_ui(ui, "Clear", "Export CSV...");
    }

    /// Clear (every view's measurements) and Export CSV, in the toolbar and the Measure menu under their own
    /// `clear_text` and `export_text`. Returns whether either was chosen.
    fn measurement_actions_ui(&mut self, ui: &mut egui::Ui, clear_text: &str, export_text: &str) -> bool {
        let any = [&self.real, &self.artificial, &self.styled].iter().any(|pane| !pane.measurements.is_empty());
        let mut chosen = false;
        if ui
            .add_enabled(any, egui::Button::new(clear_text))
            .on_hover_text("Clears every view's measurements; Shift + click a view clears that view's")
            .clicked()
        {
            for pane in [&mut self.real, &mut self.artificial, &mut self.styled] {
                pane.measurements.clear();
            }
            chosen = true;
        }
        let any_kept =
            [&self.real, &self.artificial, &self.styled].iter().any(|pane| !pane.measurements.items().is_empty());
        if ui
            .add_enabled(any_kept, egui::Button::new(export_text))
            .on_hover_text("Every view's measurements as one CSV: value, geometry in image pixels, region statistics")
            .clicked()
        {
            // The table is built once the file is chosen, from what the views hold then.
            self.measurement_exporter.start(ui.ctx());
            chosen = true;
        }
        chosen
    }

    pub fn toggle_invert(&mut self) {
        let active = self.active;
        let pane = self.pane_mut(active);
        pane.view.inverted = !pane.view.inverted;
        if self.settings.link_viewports {
            self.sync_views_from(active);
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let slot = self.hovered.map_or(Slot::Real, |(slot, _)| slot);
            // Reading happens on the worker: the path is all the UI thread touches.
            self.load(slot, ImageSource::File(file.path().to_path_buf()));
        }
    }

    fn menu_ui(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open real image...").clicked() {
                    self.ask_path(ui.ctx(), OpenTarget::Image(Slot::Real));
                    ui.close();
                }
                if ui.button("Open artificial image...").clicked() {
                    self.ask_path(ui.ctx(), OpenTarget::Image(Slot::Artificial));
                    ui.close();
                }
                let shown_id = self.artificial.image.as_ref().map(|p| p.image.id());
                let can_save = self.generated.as_ref().is_some_and(|g| Some(g.image.id()) == shown_id);
                if ui
                    .add_enabled(can_save, egui::Button::new("Save artificial image..."))
                    .on_hover_text("The generator's image as PNG, with its model, seed, latent and labels in the file")
                    .on_disabled_hover_text("The artificial view does not show the generator's output")
                    .clicked()
                {
                    self.ask_path(ui.ctx(), OpenTarget::SaveGenerated);
                    ui.close();
                }
                ui.menu_button("Save view as PNG", |ui| self.save_view_menu_ui(ui));
                // Its range fields take clicks; only a label's entry (or a click outside) closes it.
                let keep_open = egui::containers::menu::MenuConfig::new()
                    .close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
                egui::containers::menu::SubMenuButton::new("Export label traversal as GIF")
                    .config(keep_open)
                    .ui(ui, |ui| self.traversal_menu_ui(ui));
                ui.separator();
                self.file_dialog_choice_ui(ui);
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.settings.link_viewports, "Link viewports");
                ui.checkbox(&mut self.settings.show_histograms, "Histograms");
                if ui.button("Fit all views (double-click)").clicked() {
                    self.real.view.fit();
                    self.artificial.view.fit();
                    self.styled.view.fit();
                    ui.close();
                }
                if ui.button("Invert active (I)").clicked() {
                    self.toggle_invert();
                    ui.close();
                }
                let real_is_dicom = self.real.image.as_ref().is_some_and(|p| p.dicom.is_some());
                if ui.add_enabled(real_is_dicom, egui::Button::new("DICOM tags of the real image...")).clicked() {
                    self.dicom_tags.open = true;
                    ui.close();
                }
                ui.separator();
                if ui.button("Metrics...").clicked() {
                    self.metrics.window_open = true;
                    ui.close();
                }
            });
            ui.menu_button("Measure", |ui| self.measure_menu_ui(ui));
            ui.menu_button("Study", |ui| {
                if ui.button("New study...").clicked() {
                    self.study_designer.open = true;
                    ui.close();
                }
                if ui.button("Open study...").clicked() {
                    self.study.open_dialog(ui.ctx());
                    ui.close();
                }
            });
            ui.menu_button("Audit", |ui| {
                if ui.button("Memorisation audit...").clicked() {
                    self.audit.open = true;
                    ui.close();
                }
            });
            ui.menu_button("Help", |ui| {
                ui.label(format!("Thorax Workbench {}", env!("CARGO_PKG_VERSION")));
                ui.label("Wheel: zoom | drag: pan | right-drag: window (horizontal = width, vertical = level)");
                ui.label("Double-click: fit | I: invert");
                ui.label("Samples: NIH ChestX-ray14 (NIH Clinical Center) and MHH COVID-19 (CC BY 3.0).");
            });
        });
    }

    fn side_panel_ui(&mut self, ui: &mut egui::Ui) {
        egui::ScrollArea::vertical().id_salt("side_scroll").max_height(ui.available_height() * 0.62).show(ui, |ui| {
            ui.heading("Generator");
            let action = self.generator.ui(ui);
            if action.regenerate {
                self.clear_model_file_error();
                self.generate();
            }
            if action.open_model {
                self.ask_path(ui.ctx(), OpenTarget::Model(ModelKind::ProganGenerator));
            }
        });
        ui.separator();
        ui.heading("Samples");
        if let Some(index) = self.samples.ui(ui) {
            self.load_sample(index);
        }
    }

    /// The right panel: the classifier's probabilities for both views.
    fn classifier_panel_ui(&mut self, ui: &mut egui::Ui) {
        self.style_transfer_ui(ui);
        ui.separator();
        ui.heading("Classifier");
        match self.classifiers.ui(ui, "classifier_model") {
            ShelfAction::Selected => {
                self.clear_model_file_error();
                self.reclassify();
            }
            ShelfAction::OpenRequested => {
                self.ask_path(ui.ctx(), OpenTarget::Model(ModelKind::Densenet121Classifier));
            }
            ShelfAction::Nothing => {}
        }
        let untrained = self.classifiers.current().is_some_and(|m| m.card.untrained);
        if self.classifiers.current().is_none() {
            ui.label(egui::RichText::new("No classifier: Open model... a DenseNet .safetensors file").weak());
        }
        if let Some(note) = self.classifiers.current().and_then(|m| m.card.training_limits_note()) {
            ui.label(egui::RichText::new(note).small());
        }
        for (slot, pane) in [(Slot::Real, &self.real), (Slot::Artificial, &self.artificial)] {
            let doubt = pane.image.as_ref().and_then(|p| p.dicom.as_deref()).and_then(not_a_chest_radiograph);
            if let Some(doubt) = doubt {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "{slot:?} image: {doubt}. The classifier knows only chest radiographs: its output and \
                             heatmaps mean nothing here."
                    ),
                );
            }
        }
        ui.add_space(4.0);
        let labels = self.classifiers.current().map(|m| m.card.labels.clone()).unwrap_or_default();
        egui::ScrollArea::vertical().id_salt("classifier_scroll").show(ui, |ui| {
            self.classifier.ui(ui, untrained);
            ui.add_space(8.0);
            ui.separator();
            let change = self.classifier.heatmap_ui(ui, &labels);
            if change.recompute {
                self.classifier.heatmap_notes.clear();
                self.request_heatmaps();
            } else if change.restyle {
                self.restyle_overlays();
            }
            // Only a cheap check per frame: the maps are copied out when the button is pressed.
            let any_shown = self.real.overlay.is_some() || self.artificial.overlay.is_some();
            if ui
                .add_enabled(any_shown, egui::Button::new("Export heatmaps..."))
                .on_hover_text("Overlay PNG, 16-bit map PNG and .npy of each view's heatmap, at the image size")
                .clicked()
            {
                let shown = self.heatmaps_to_export();
                self.heatmap_exporter.start(ui.ctx(), shown);
            }
        });
    }

    /// The style transfer section: CycleGAN model, direction, apply, |difference|.
    fn style_transfer_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Style transfer");
        let action = self.style.ui(ui);
        if action.open_model {
            self.ask_path(ui.ctx(), OpenTarget::Model(ModelKind::CycleganGenerator));
        }
        if action.retranslate {
            self.clear_model_file_error();
            self.translate();
        }
        if action.display_changed {
            self.show_style_result(false);
        }
    }

    /// The display toolbar above the viewports: linking, invert, fit, colour map, window presets.
    fn display_toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let link_before = self.settings.link_viewports;
            ui.checkbox(&mut self.settings.link_viewports, "Link viewports")
                .on_hover_text("Zoom, pan, window/level and invert move together in both views");
            if self.settings.link_viewports && !link_before {
                self.sync_views_from(self.active);
            }
            // Zoom and pan stay linked, but a window in HU has no counterpart on a unitless radiograph.
            if self.settings.link_viewports
                && let (Some(real), Some(artificial)) = (&self.real.image, &self.artificial.image)
                && linked_window(self.real.view.window, real, artificial).is_none()
            {
                ui.weak("(window/level not linked: different value units)").on_hover_text(
                    "One view's values are in a physical unit (HU) and the other's are unitless detector values: a \
                     window in one means nothing in the other",
                );
            }
            let active = self.active;
            let mut inverted = self.pane(active).view.inverted;
            if ui.checkbox(&mut inverted, "Invert (I)").changed() {
                self.toggle_invert();
            }
            if ui.button("Fit").on_hover_text("Also: double-click a view").clicked() {
                self.real.view.fit();
                self.artificial.view.fit();
                self.styled.view.fit();
            }
            ui.separator();
            let colormap_label = ui.label("Colour map");
            let mut colormap = self.settings.colormap;
            egui::ComboBox::from_id_salt("colormap")
                .selected_text(colormap.name())
                .show_ui(ui, |ui| {
                    for option in Colormap::ALL {
                        ui.selectable_value(&mut colormap, option, option.name());
                    }
                })
                .response
                .labelled_by(colormap_label.id);
            if colormap != self.settings.colormap {
                self.settings.colormap = colormap;
                self.real.view.colormap = colormap;
                self.artificial.view.colormap = colormap;
                self.styled.view.colormap = colormap;
            }
            ui.separator();
            ui.label("Window");
            let in_hu = self.pane(active).image.as_ref().is_some_and(|p| p.value_unit() == Some("HU"));
            let presets = self.settings.window_presets.clone();
            for preset in presets.iter().filter(|p| !in_hu || p.window == FULL_RANGE) {
                let hint = format!(
                    "The active view: C {:.0} % / W {:.0} % of the image's value range (a projection radiograph has no \
                     absolute unit)",
                    preset.window.center * 100.0,
                    preset.window.width * 100.0
                );
                if ui.button(&preset.name).on_hover_text(hint).clicked() {
                    self.apply_preset(&preset.window);
                }
            }
            if in_hu {
                for (name, window) in ct_presets_hu() {
                    let hint = format!("The active view: C {} / W {} HU", window.center, window.width);
                    if ui.button(name).on_hover_text(hint).clicked() {
                        self.apply_window(window);
                    }
                }
            }
            self.file_windows_ui(ui);
            ui.separator();
            self.measure_toolbar_ui(ui);
            if self.real.image.as_ref().is_some_and(|p| p.dicom.is_some()) {
                ui.separator();
                if ui.button("DICOM tags").on_hover_text("Attributes of the real image's file").clicked() {
                    self.dicom_tags.open = !self.dicom_tags.open;
                }
            }
        });
    }

    /// The windows the active view's file stores (DICOM Window Center/Width, each value), by their explanation: the
    /// views the acquisition station meant, and the way back to the first one after dragging the window.
    fn file_windows_ui(&mut self, ui: &mut egui::Ui) {
        let pane = self.pane(self.active);
        let Some(details) = pane.image.as_ref().and_then(|prepared| prepared.dicom.clone()) else { return };
        let unit = pane.image.as_ref().and_then(|prepared| prepared.value_unit()).unwrap_or("");
        let windows = details.file_windows();
        if windows.is_empty() {
            return;
        }
        ui.separator();
        let label = if windows.len() == 1 { "File window" } else { "File windows" };
        ui.label(label).on_hover_text("Windows stored in the active view's DICOM file (Window Center/Width)");
        for (index, file_window) in windows.iter().enumerate() {
            let window = file_window.window;
            let mut hint = format!(
                "The file's window {} of {}: C {} / W {} {unit}",
                index + 1,
                windows.len(),
                window.center,
                window.width
            );
            if details.mirrored_from_monochrome1 {
                hint.push_str(" (its centre mirrored with the MONOCHROME1 values)");
            }
            if ui.button(&file_window.name).on_hover_text(hint).clicked() {
                self.apply_window(window);
            }
        }
    }

    fn apply_preset(&mut self, window: &crate::imaging::window::RelativeWindow) {
        let active = self.active;
        if let Some(prepared) = &self.pane(active).image {
            self.apply_window(window.to_absolute(prepared.image.display_range()));
        }
    }

    /// Sets the active view's window (in its image's units), and the linked views'.
    fn apply_window(&mut self, window: Window) {
        let active = self.active;
        let pane = self.pane_mut(active);
        if pane.image.is_some() {
            pane.view.window = window;
        }
        if self.settings.link_viewports {
            self.sync_views_from(active);
        }
    }

    /// What runs on threads other than the inference worker, in words ("audit", "2 metric jobs", ...).
    pub fn background_tasks(&self) -> Vec<String> {
        let counted = |count: usize, one: &str, many: &str| match count {
            0 => None,
            1 => Some(one.to_owned()),
            n => Some(format!("{n} {many}")),
        };
        [
            self.audit.is_running().then(|| "privacy audit".to_owned()),
            counted(self.metrics.running_jobs(), "metric job", "metric jobs"),
            counted(self.metrics.png_saves_in_flight(), "plot PNG save", "plot PNG saves"),
            self.study_designer.creating.then(|| "study creation".to_owned()),
            self.heatmap_exporter.is_writing().then(|| "heatmap export".to_owned()),
            self.measurement_exporter.is_writing().then(|| "measurement export".to_owned()),
            self.presentation_states.is_busy().then(|| "presentation state".to_owned()),
            self.view_png.is_busy().then(|| "saving a view".to_owned()),
            self.traversal.is_busy().then(|| "traversal GIF".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn status_bar_ui(&mut self, ui: &mut egui::Ui) {
        let status = self.worker.status();
        ui.horizontal(|ui| {
            ui.label(format!("Device: {}", status.device_label));
            ui.separator();
            // A fixed-width slot, so the items after it do not jump sideways as the worker's text changes.
            let slot = egui::vec2(WORKER_STATUS_WIDTH_PX, ui.spacing().interact_size.y);
            ui.allocate_ui_with_layout(slot, egui::Layout::left_to_right(egui::Align::Center), |ui| {
                ui.set_min_width(WORKER_STATUS_WIDTH_PX);
                match status.activity {
                    WorkerActivity::Idle => {
                        ui.label("Worker: idle");
                    }
                    WorkerActivity::Running { key, started } => {
                        ui.spinner();
                        ui.add(
                            egui::Label::new(format!(
                                "Worker: running {key:?} {:.1} s",
                                started.elapsed().as_secs_f32()
                            ))
                            .truncate(),
                        );
                        ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
                    }
                    WorkerActivity::Stopped => {
                        ui.colored_label(ui.visuals().error_fg_color, "Worker: stopped");
                    }
                }
            });
            // Work outside the inference worker (audit, metrics, study creation, exports) runs on threads of its
            // own; "Worker: idle" alone would hide it.
            let background = self.background_tasks();
            if !background.is_empty() {
                ui.separator();
                ui.spinner();
                ui.label(format!("Also running: {}", background.join(", ")));
                ui.ctx().request_repaint_after(std::time::Duration::from_millis(250));
            }
            ui.separator();
            match status.last_run_ms {
                Some(ms) => ui.label(format!("Last job: {ms:.1} ms")),
                None => ui.label("Last job: -"),
            };
            ui.separator();
            match (self.hovered, self.hovered_styled) {
                (Some((slot, pixel)), _) => {
                    let unit = self.pane(slot).image.as_ref().and_then(|p| p.value_unit());
                    let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
                    ui.label(format!("{slot:?} ({}, {}) = {}{unit}", pixel.x_px, pixel.y_px, format_value(pixel.value)))
                }
                (None, Some(pixel)) => ui.label(format!(
                    "{} ({}, {}) = {}",
                    self.styled.title,
                    pixel.x_px,
                    pixel.y_px,
                    format_value(pixel.value)
                )),
                (None, None) => ui.label("Pixel: -"),
            };
            if let Some(message) = &self.message {
                ui.separator();
                // A long message (a DICOM error names file, attribute and reason) is cut at the window's edge with
                // an ellipsis, and shown whole on hover.
                let (text, rich) = match message {
                    StatusMessage::Info(text) => (text, egui::RichText::new(text).weak()),
                    StatusMessage::Error(text) => (text, egui::RichText::new(text).color(ui.visuals().error_fg_color)),
                };
                ui.add(egui::Label::new(rich).truncate()).on_hover_text(text);
            }
        });
    }

    fn central_ui(&mut self, ui: &mut egui::Ui) {
        let show_histograms = self.settings.show_histograms;
        self.hovered = None;
        self.hovered_styled = None;
        let active = self.active;
        self.display_toolbar_ui(ui);
        let tool = self.measure_tool;
        ui.add_space(4.0);
        if self.style.enabled {
            ui.columns(3, |columns| {
                if let [left, middle, right] = columns {
                    let real = self.real.ui(left, show_histograms, active == Slot::Real, tool);
                    let artificial = self.artificial.ui(middle, show_histograms, active == Slot::Artificial, tool);
                    let styled = self.styled.ui(right, show_histograms, false, tool);
                    self.after_viewer(Slot::Real, real);
                    self.after_viewer(Slot::Artificial, artificial);
                    self.after_styled_viewer(styled);
                }
            });
            return;
        }
        ui.columns(2, |columns| {
            if let [left, right] = columns {
                let real = self.real.ui(left, show_histograms, active == Slot::Real, tool);
                let artificial = self.artificial.ui(right, show_histograms, active == Slot::Artificial, tool);
                self.after_viewer(Slot::Real, real);
                self.after_viewer(Slot::Artificial, artificial);
            }
        });
    }

    /// One frame of the whole workbench.
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        self.frame_count += 1;
        if self.study.frame_ui(ui) {
            // Blinded reading: nothing but the reading screen.
            return;
        }
        if self.study.study.is_none()
            && let Some(start) = self.start_after_study.take()
        {
            self.start(start);
        }
        let ctx = ui.ctx().clone();
        for response in self.worker.poll() {
            self.handle_response(response);
        }
        // The folder of the last pick in any dialog (image, study, audit, ...) is the one saved for the next run.
        if let Some(folder) = remembered_folder(&ctx) {
            self.settings.last_folder = Some(folder);
        }
        if let Some((target, path)) = self.dialogs.poll(&ctx) {
            match target {
                OpenTarget::Image(slot) => self.load(slot, ImageSource::File(path)),
                OpenTarget::Model(kind) => self.open_model_file(kind, path),
                OpenTarget::SaveGenerated => self.save_generated(&ctx, path),
            }
        }
        while let Ok(notice) = self.notices_rx.try_recv() {
            self.message = Some(notice);
        }
        self.handle_dropped_files(&ctx);
        self.handle_keys(&ctx);

        egui::Panel::top("menu").show(ui, |ui| self.menu_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar_ui(ui));
        // In a narrow window the side panels give way (to a quarter of the width each at most), so the viewers keep
        // at least half of it.
        let side_max = (ctx.content_rect().width() * 0.25).max(180.0);
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(320.0)
            .max_size(side_max)
            .show(ui, |ui| self.side_panel_ui(ui));
        egui::Panel::right("classifier")
            .resizable(true)
            .default_size(250.0)
            .max_size(side_max)
            .show(ui, |ui| self.classifier_panel_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| self.central_ui(ui));
        if let Some(prepared) = &self.real.image
            && let Some(details) = &prepared.dicom
        {
            self.dicom_tags.window_ui(&ctx, &prepared.name, details, prepared.stored_window);
        }
        if let Some((path, summary)) = self.study_designer.poll() {
            // Not the real/artificial split: the message stays in view of the readers who come next.
            let created = format!(
                "Created {}: {} cases, {} practice",
                path.display(),
                summary.main_cases,
                summary.practice_cases
            );
            self.message = Some(StatusMessage::Info(created.clone()));
            // The error, if any, is shown in the Study panel.
            if self.study.open_path(&path).is_ok() {
                self.study.notice = Some(created);
            }
        }
        let generator = self.generator.current().map(|model| GeneratorChoice {
            source: model.source.clone(),
            name: model.card.name.clone(),
            slider_labels: self.generator.labels.clone(),
            side_px: u32::try_from(model.card.resolution).unwrap_or(u32::MAX),
            untrained: model.card.untrained,
        });
        self.study_designer.window_ui(&ctx, generator);
        let classifier = self.classifiers.current().map(|model| model.source.clone());
        self.audit.window_ui(&ctx, classifier);
        match self.heatmap_exporter.poll(&ctx) {
            Some(Ok(done)) => self.message = Some(StatusMessage::Info(done)),
            Some(Err(failed)) => self.message = Some(StatusMessage::Error(failed)),
            None => {}
        }
        match self.traversal.poll(&ctx) {
            Some(Ok(done)) => self.message = Some(StatusMessage::Info(done)),
            Some(Err(failed)) => self.message = Some(StatusMessage::Error(failed)),
            None => {}
        }
        match self.view_png.poll(&ctx) {
            Some(Ok(done)) => self.message = Some(StatusMessage::Info(done)),
            Some(Err(failed)) => self.message = Some(StatusMessage::Error(failed)),
            None => {}
        }
        let measurement_export = self.measurement_exporter.poll(&ctx);
        self.export_measurements_when_measured(&ctx);
        match measurement_export {
            Some(Ok(done)) => self.message = Some(StatusMessage::Info(done)),
            Some(Err(failed)) => self.message = Some(StatusMessage::Error(failed)),
            None => {}
        }
        match self.presentation_states.poll(&ctx) {
            Some(PresentationStateEvent::Written(Ok(done))) => self.message = Some(StatusMessage::Info(done)),
            Some(PresentationStateEvent::Written(Err(failed))) => self.message = Some(StatusMessage::Error(failed)),
            Some(PresentationStateEvent::Read(path, Ok(read))) => {
                self.apply_read_presentation_state(&ctx, &path, &read)
            }
            Some(PresentationStateEvent::Read(_, Err(failed))) => {
                self.message = Some(StatusMessage::Error(format!("Presentation state not opened: {failed}")));
            }
            None => {}
        }
        let models = MetricsModels { classifier: self.classifiers.current(), generator: self.generator.current() };
        self.metrics.frame_ui(&ctx, models);
    }
}

/// What the third viewport says before its first translation.
/// Width of the status bar's worker slot: "Worker: running Heatmap 12.3 s" with its spinner.
const WORKER_STATUS_WIDTH_PX: f32 = 260.0;

const STYLED_PLACEHOLDER: &str = "No translation yet\nStyle transfer > Apply to real image";

/// Copies zoom, pan, invert, colour map and (when `with_window`) window/level relative to each image's range.
fn copy_view(from: &ViewportPane, to: &mut ViewportPane, with_window: bool) {
    let (Some(from_image), Some(to_image)) = (&from.image, &to.image) else {
        return;
    };
    to.view.transform = from.view.transform;
    if with_window && let Some(window) = linked_window(from.view.window, from_image, to_image) {
        to.view.window = window;
    }
    to.view.inverted = from.view.inverted;
    to.view.colormap = from.view.colormap;
}

/// The window a linked view takes from `from_image`'s, or `None` where the two have no common scale.
///
/// Values in a physical unit (HU) carry over as they are: a lung window is the same on any CT. Unitless values
/// (a radiograph's detector values, an 8-bit PNG) carry over as fractions of each image's range. Between the two
/// there is nothing in common: an HU window made a range fraction washed out a generated radiograph beside a CT.
pub fn linked_window(window: Window, from_image: &PreparedImage, to_image: &PreparedImage) -> Option<Window> {
    match (from_image.value_unit(), to_image.value_unit()) {
        (Some(from_unit), Some(to_unit)) if from_unit == to_unit => Some(window),
        (None, None) => {
            Some(window.to_relative(from_image.image.display_range()).to_absolute(to_image.image.display_range()))
        }
        _ => None,
    }
}

fn format_value(value: f32) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.3}") }
}

impl eframe::App for WorkbenchApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
    /// Quitting while a reader reads stores the answer in flight and pauses the clock before the study closes.
    fn on_exit(&mut self) {
        self.study.close_study();
    }
}
