//! `thorax gui`: the workbench's own options, for a reading station that starts on its study.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::app::StudyAtStart;

#[derive(Args, Debug, Default)]
pub struct GuiArgs {
    /// Open this study at start, on its station home (a reading station's shortcut or autostart). The workbench's
    /// generator and labelled samples stay hidden until the study is closed.
    #[arg(long, value_name = "STUDY")]
    pub study: Option<PathBuf>,
    /// Select this reader on the station home (one of the study's readers).
    #[arg(long, value_name = "NAME", requires = "study")]
    pub reader: Option<String>,
}

impl GuiArgs {
    /// The study to open at start. A path that is no file is refused here, before a window opens; whether it is a
    /// study, and the reader one of its readers, the station home says (the window is where the user looks).
    pub fn study_at_start(&self) -> anyhow::Result<Option<StudyAtStart>> {
        let Some(path) = &self.study else { return Ok(None) };
        if !path.is_file() {
            let reason = if path.exists() { "it is not a file" } else { "there is no such file" };
            bail!("--study {}: {reason}", path.display());
        }
        Ok(Some(StudyAtStart { path: path.clone(), reader: self.reader.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_that_is_no_file_is_refused_before_the_window_opens() {
        let dir = tempfile::tempdir().unwrap();
        let missing = GuiArgs { study: Some(dir.path().join("none.study")), reader: None };
        let error = missing.study_at_start().unwrap_err().to_string();
        assert!(error.contains("none.study") && error.contains("there is no such file"), "{error}");
        let folder = GuiArgs { study: Some(dir.path().to_path_buf()), reader: None };
        assert!(folder.study_at_start().unwrap_err().to_string().contains("it is not a file"));
        assert!(GuiArgs::default().study_at_start().unwrap().is_none());
        let file = dir.path().join("a.study");
        std::fs::write(&file, b"").unwrap();
        let args = GuiArgs { study: Some(file.clone()), reader: Some("R1".to_owned()) };
        let start = args.study_at_start().unwrap().unwrap();
        assert_eq!((start.path, start.reader.as_deref()), (file, Some("R1")));
    }
}
