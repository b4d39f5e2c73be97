//! The New study form's check that a folder of artificial images holds one size. Real cases are brought down to
//! the folder's median size; artificial images of another size may still stand out by their sharpness, so the
//! designer should hear of it before creating the study, as `thorax study new` prints it. The headers are read off
//! the UI thread, since the folder may be on a slow share.

use std::path::{Path, PathBuf};

use crossbeam_channel::Receiver;

use crate::study::FolderArtificialSource;
use crate::study::resolution_match::{SIDE_SURVEY_SAMPLE, survey_sides};

/// The survey of the folder now chosen: its warning once read, or the read under way.
#[derive(Default)]
pub struct ArtificialSizeSurvey {
    /// The folder `warning` (or the read under way) is for.
    folder: Option<PathBuf>,
    warning: Option<String>,
    pending: Option<Receiver<Option<String>>>,
}

impl ArtificialSizeSurvey {
    /// Starts a survey when `folder` differs from the last one, and takes a finished result. Call every frame.
    pub fn update(&mut self, ctx: &egui::Context, folder: Option<&Path>) {
        if self.folder.as_deref() != folder {
            self.folder = folder.map(Path::to_path_buf);
            self.warning = None;
            // A survey of the previous folder may still run; its answer is dropped with its receiver.
            self.pending = folder.and_then(|folder| start_survey(ctx, folder.to_path_buf()));
        }
        if let Some(pending) = &self.pending
            && let Ok(warning) = pending.try_recv()
        {
            self.warning = warning;
            self.pending = None;
        }
    }

    /// The warning for the folder now chosen, when its images differ in size.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
}

fn start_survey(ctx: &egui::Context, folder: PathBuf) -> Option<Receiver<Option<String>>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new().name("thorax-artificial-sizes".to_owned()).spawn(move || {
        // The seed only orders the cases; any does for reading headers. An unreadable folder gives no warning here:
        // Create study names the problem.
        let warning = FolderArtificialSource::open(&folder, 0)
            .ok()
            .and_then(|source| survey_sides(source.files(), SIDE_SURVEY_SAMPLE))
            .and_then(|survey| survey.mixed_size_warning());
        tx.send(warning).ok();
        ctx.request_repaint();
    });
    // Without a thread the form simply shows no warning; `thorax study new` still prints it.
    spawned.ok().map(|_| rx)
}
