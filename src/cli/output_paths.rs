//! Guards on where a command writes: an output never lands on one of the command's inputs, and two outputs of one
//! run never share a file. Both happened by a slip of the shell (`--answers study.db`, `--out same.dcm`) and
//! destroyed the input without a word.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// `path` as the file it names: resolved when it exists, else its resolved folder joined with its file name, so that
/// `./a.csv`, `a.csv` and a link to it compare equal.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(full) = path.canonicalize() {
        return full;
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (folder.canonicalize(), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => path.to_path_buf(),
    }
}

/// Whether two paths name one file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b)
}

/// Refuses a run whose outputs (`(flag, path)`) include one of its `inputs` (`(what, path)`), or name one file twice.
pub(crate) fn check_outputs_apart(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    for (index, &(flag, output)) in outputs.iter().enumerate() {
        if let Some((what, _)) = inputs.iter().find(|(_, input)| same_file(output, input)) {
            bail!("{flag} {} is {what}: writing there would destroy it; choose another output file", output.display());
        }
        if let Some((other, _)) = outputs[..index].iter().find(|(_, earlier)| same_file(output, earlier)) {
            bail!("{other} and {flag} both name {}: one would overwrite the other", output.display());
        }
    }
    Ok(())
}

/// Refuses an output file name whose extension says another format than the one written (`expected`, lower case,
/// without the dot), so that `--out scan.dcm` does not quietly become a PNG under a DICOM name.
pub(crate) fn check_extension(flag: &str, path: &Path, expected: &[&str]) -> anyhow::Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension {
        Some(extension) if expected.contains(&extension.as_str()) => Ok(()),
        _ => bail!(
            "{flag} {}: this command writes {}; give the file the .{} extension",
            path.display(),
            expected[0].to_ascii_uppercase(),
            expected[0]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_on_an_input_or_on_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("study.db");
        std::fs::write(&study, b"x").unwrap();
        let spelled_otherwise = dir.path().join(".").join("study.db");
        let error = check_outputs_apart(&[("--answers", &spelled_otherwise)], &[("the study database", &study)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--answers") && error.contains("is the study database"), "{error}");

        let csv = dir.path().join("out.csv");
        let error = check_outputs_apart(&[("--answers", &csv), ("--imrmc", &csv)], &[]).unwrap_err().to_string();
        assert!(error.contains("--answers and --imrmc both name"), "{error}");

        let other = dir.path().join("other.imrmc");
        check_outputs_apart(&[("--answers", &csv), ("--imrmc", &other)], &[("the study database", &study)]).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_the_input_is_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("labels.csv");
        std::fs::write(&input, b"x").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        assert!(same_file(&link, &input));
        assert!(!same_file(&dir.path().join("new.csv"), &input));
    }

    #[test]
    fn the_extension_must_match_the_format_written() {
        check_extension("--out", Path::new("a/b.PNG"), &["png"]).unwrap();
        let error = check_extension("--out", Path::new("scan.dcm"), &["png"]).unwrap_err().to_string();
        assert!(error.contains("writes PNG") && error.contains(".png"), "{error}");
        assert!(check_extension("--out", Path::new("noext"), &["png"]).is_err());
    }
}
