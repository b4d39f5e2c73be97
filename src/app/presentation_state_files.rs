//! Measure ▸ Save as presentation state (GSPS) and Open presentation state: a view's measurements, window and
//! polarity kept as a DICOM Grayscale Softcopy Presentation State of the view's image, as PACS viewers keep them, and
//! such a file (ours or a viewer's) applied to the view that shows its image. Files are chosen with the path dialogs;
//! writing and reading run on helper threads.
//!
//! The window: the view's is in the units of its image, which for a MONOCHROME1 file are mirrored within the stored
//! value range (see `dicom_radiograph`); the GSPS's is in the units after the image's modality LUT, unmirrored. So for
//! such a file the centre is mirrored back, and the Presentation LUT Shape is INVERSE when the view is not inverted
//! (the file's own polarity, PS3.3 C.11.6.1.2). The workbench's window maps centre +- width / 2 to black..white, where
//! DICOM's LINEAR function uses centre - 0.5 and width - 1: the half-value difference is not corrected.

use std::path::{Path, PathBuf};

use crossbeam_channel::Receiver;

use crate::app::background_write::{BackgroundWrite, WriteOutcome};
use crate::app::measurement::Region;
use crate::app::measurement::presentation::{LabelUnits, annotation_of, measurements_of};
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::app::viewport_pane::ViewportPane;
use crate::atomic_file::IfExists;
use crate::imaging::dicom::{
    self, ImageIdentity, PresentationState, ReadPresentationState, read_presentation_state, write_presentation_state,
};
use crate::imaging::{DicomDetails, Window};

/// A view's measurements and display, captured when "Save as presentation state" was chosen.
pub struct GspsSnapshot {
    identity: ImageIdentity,
    state: PresentationState,
    /// "Real", "Artificial".
    view: &'static str,
    file_name: String,
}

/// Why a view cannot be saved as a presentation state, for the menu's hover text; `None` when it can.
pub fn why_no_presentation_state(pane: &ViewportPane) -> Option<&'static str> {
    let Some(prepared) = &pane.image else {
        return Some("The view shows no image");
    };
    match &prepared.dicom {
        None => Some(
            "The view's image is not from a DICOM file (a generated image, a PNG, JPEG or TIFF): a presentation \
             state references a DICOM image by its UIDs",
        ),
        Some(details) if details.identity.is_none() => Some(
            "The DICOM file has no SOP Instance, Study or Series Instance UID for a presentation state to reference",
        ),
        Some(_) => None,
    }
}

/// The stored value range's mirror, where the view shows a MONOCHROME1 file mirrored.
fn mirror(details: &DicomDetails) -> Option<impl Fn(f64) -> f64> {
    let (lo, hi) = details.summary.modality_value_range();
    details.mirrored_from_monochrome1.then_some(move |value: f64| lo + hi - value)
}

/// The view's window in the units after the file's modality LUT, as a GSPS gives it.
fn file_window(window: Window, details: &DicomDetails) -> dicom::Window {
    let center = f64::from(window.center);
    dicom::Window { center: mirror(details).map_or(center, |m| m(center)), width: f64::from(window.width) }
}

/// A GSPS window in the view's units.
fn view_window(window: dicom::Window, details: &DicomDetails) -> Window {
    let center = mirror(details).map_or(window.center, |m| m(window.center));
    Window { center: center as f32, width: window.width as f32 }
}

impl GspsSnapshot {
    /// `pane`'s measurements, window and polarity; an error saying why when the view has no DICOM image.
    pub fn of(pane: &ViewportPane) -> Result<Self, String> {
        let reason = why_no_presentation_state(pane);
        let (Some(prepared), None) = (&pane.image, reason) else {
            return Err(reason.unwrap_or("The view shows no image").to_owned());
        };
        let Some((details, Some(identity))) = prepared.dicom.as_ref().map(|d| (d, d.identity.clone())) else {
            return Err("The view's image has no DICOM identity".to_owned());
        };
        let spacing = details.summary.pixel_spacing;
        let units = LabelUnits { spacing: spacing.as_ref(), value_unit: prepared.value_unit() };
        let annotations = pane.measurements.items().iter().map(|item| annotation_of(item, units)).collect();
        let count = pane.measurements.items().len();
        let state = PresentationState {
            label: "MEASUREMENTS".to_owned(),
            description: format!("{count} measurement{} on {}", if count == 1 { "" } else { "s" }, prepared.name),
            creator: String::new(),
            window: Some(file_window(pane.view.window, details)),
            // The file's own polarity is IDENTITY for MONOCHROME2 and INVERSE for MONOCHROME1.
            inverse: pane.view.inverted != details.mirrored_from_monochrome1,
            annotations,
        };
        let stem = Path::new(&prepared.name).file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy());
        let safe = |text: &str| crate::models::heatmap_export::safe_file_part(text);
        let file_name = format!("{}_{}_gsps.dcm", safe(&stem), safe(&pane.title.to_lowercase()));
        Ok(Self { identity, state, view: pane.title, file_name })
    }

    fn write(&self, path: &Path) -> WriteOutcome {
        let count = self.state.annotations.len();
        write_presentation_state(path, &self.identity, &self.state, IfExists::Replace)
            .map(|_| {
                format!(
                    "Saved {count} measurement{} of the {} view as a presentation state (GSPS) to {}",
                    if count == 1 { "" } else { "s" },
                    self.view,
                    path.display()
                )
            })
            .map_err(|e| format!("Presentation state not saved: {e}"))
    }
}

/// Applies `read` (from `path`) to `pane`, whose image it references: its measurements replace the view's, its window
/// and polarity become the view's. Returns what was done, for the status line.
pub fn apply_presentation_state(
    pane: &mut ViewportPane,
    path: &Path,
    read: &ReadPresentationState,
    ctx: &egui::Context,
) -> Result<String, String> {
    let Some(prepared) = pane.image.clone() else {
        return Err(format!("Presentation state {} not applied: the view shows no image", path.display()));
    };
    let Some((details, Some(identity))) = prepared.dicom.as_ref().map(|d| (d, d.identity.as_ref())) else {
        return Err(format!("Presentation state {} not applied: the view's image is not DICOM", path.display()));
    };
    let uid = identity.sop_instance_uid.as_str();
    let decoded = measurements_of(&read.state.annotations, uid, |ellipse| Region::new(ellipse, &prepared.image, ctx));
    let count = decoded.measurements.len();
    let skipped = decoded.skipped_text();
    pane.measurements.replace_all(decoded.measurements);
    let mut done = vec![format!("{count} measurement{} on the {} view", if count == 1 { "" } else { "s" }, pane.title)];
    if let Some(window) = read.state.window {
        pane.view.window = view_window(window, details);
        done.push(format!("window C {} / W {}", pane.view.window.center, pane.view.window.width));
    }
    pane.view.inverted = read.state.inverse != details.mirrored_from_monochrome1;
    done.push(if pane.view.inverted { "inverted".to_owned() } else { "not inverted".to_owned() });
    if !skipped.is_empty() {
        done.push(skipped);
    }
    done.extend(read.notes.iter().cloned());
    Ok(format!("Opened presentation state {}: {}", path.display(), done.join("; ")))
}

/// Which dialog answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Save,
    Open,
}

/// What a finished save or read reports.
pub enum PresentationStateEvent {
    Written(WriteOutcome),
    /// The file read, or why it could not be (the message names the file).
    Read(PathBuf, Result<ReadPresentationState, String>),
}

/// The dialogs and helper threads of saving and opening presentation states.
#[derive(Default)]
pub struct PresentationStateFiles {
    /// The view captured when "Save as presentation state" was chosen, waiting for its file.
    pending: Option<GspsSnapshot>,
    dialogs: PathDialogs<Purpose>,
    write: BackgroundWrite,
    reading: Option<(PathBuf, Receiver<Result<ReadPresentationState, String>>)>,
}

impl PresentationStateFiles {
    /// Asks where to save `snapshot` (the save dialog asks before replacing a file).
    pub fn start_save(&mut self, ctx: &egui::Context, snapshot: GspsSnapshot) {
        let kind = DialogKind::SaveFile {
            file_name: snapshot.file_name.clone(),
            filter_name: "DICOM",
            extensions: &["dcm"],
            new_only: false,
        };
        match self.dialogs.request(ctx, Purpose::Save, "Save as presentation state (GSPS)", kind, None) {
            Ok(()) => self.pending = Some(snapshot),
            Err(e) => self.write.report(Err(format!("Presentation state not saved: {e}"))),
        }
    }

    /// Writes `snapshot` to `path` as if the save dialog had given it (scripting and tests): replacing a file there.
    pub fn save_to(&mut self, ctx: &egui::Context, snapshot: GspsSnapshot, path: PathBuf) {
        self.write.spawn(ctx, "thorax-gsps-write", "saving the presentation state", move || snapshot.write(&path));
    }

    /// Asks which presentation state to open.
    pub fn start_open(&mut self, ctx: &egui::Context) {
        let kind = DialogKind::PickFile { filter_name: "DICOM", extensions: &["dcm", "dicom", "pr"] };
        if let Err(e) = self.dialogs.request(ctx, Purpose::Open, "Open presentation state", kind, None) {
            self.write.report(Err(format!("Presentation state not opened: {e}")));
        }
    }

    /// Reads `path` on a helper thread; [`Self::poll`] returns it.
    pub fn open(&mut self, ctx: &egui::Context, path: PathBuf) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (for_thread, ctx) = (path.clone(), ctx.clone());
        let spawned = std::thread::Builder::new().name("thorax-gsps-read".to_owned()).spawn(move || {
            tx.send(read_presentation_state(&for_thread).map_err(|e| e.to_string())).ok();
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.reading = Some((path, rx)),
            Err(e) => self.write.report(Err(format!("cannot start reading {}: {e}", path.display()))),
        }
    }

    /// Whether a save or a read is under way.
    pub fn is_busy(&self) -> bool {
        self.write.is_writing() || self.reading.is_some()
    }

    /// A picked file starts its save or read; a finished one is returned once. Call once per frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<PresentationStateEvent> {
        match self.dialogs.poll(ctx) {
            Some((Purpose::Save, path)) => {
                if let Some(snapshot) = self.pending.take() {
                    self.save_to(ctx, snapshot, path);
                }
            }
            Some((Purpose::Open, path)) => self.open(ctx, path),
            None if !self.dialogs.is_open() => self.pending = None,
            None => {}
        }
        if let Some((path, rx)) = &self.reading {
            match rx.try_recv() {
                Ok(read) => {
                    let path = path.clone();
                    self.reading = None;
                    return Some(PresentationStateEvent::Read(path, read));
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    let path = path.clone();
                    self.reading = None;
                    let failed = format!("{}: reading stopped unexpectedly", path.display());
                    return Some(PresentationStateEvent::Read(path, Err(failed)));
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
        }
        self.write.take_outcome().map(PresentationStateEvent::Written)
    }
}
