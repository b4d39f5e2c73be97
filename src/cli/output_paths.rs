//! Guards on where a command writes: an output never lands on one of the command's inputs, two outputs of one
//! run never share a file, and no output replaces an existing file unless the user passed `--overwrite`. Each
//! happened by a slip of the shell (`--answers study.db`, `--out same.dcm`, a rerun into last week's folder) and
//! destroyed a file without a word.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::atomic_file::name_taken;

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

/// Whether two paths name one file: the same resolved path, or, on Unix, the same device and inode (a hard link).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b) || same_inode(a, b)
}

#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &Path, _: &Path) -> bool {
    false
}

/// Extensions of the images commands read from folders.
const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "tif", "tiff", "dcm"];

/// Whether `path` is an image file name inside the existing folder `folder` (at any depth): written there, it would
/// replace one of the folder's images or join them. Other files (a model beside the images) are harmless.
fn image_inside_folder(path: &Path, folder: &Path) -> bool {
    let is_image = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    is_image && folder.is_dir() && folder.canonicalize().is_ok_and(|folder| resolved(path).starts_with(folder))
}

/// Refuses a run whose outputs (`(flag, path)`) include one of its `inputs` (`(what, path)`) or are image files
/// inside an input that is a folder (a folder of training images would lose an image or gain one), or name one file
/// twice.
pub(crate) fn check_outputs_apart(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    for (index, &(flag, output)) in outputs.iter().enumerate() {
        if let Some((what, _)) = inputs.iter().find(|(_, input)| same_file(output, input)) {
            bail!(
                "{flag} {} is {what}: writing there would destroy it; choose another output name or folder",
                output.display()
            );
        }
        if let Some((what, folder)) = inputs.iter().find(|(_, input)| image_inside_folder(output, input)) {
            bail!(
                "{flag} {} lies in {what} {}: an image written there would replace one of its images or join them; \
                 choose a file outside that folder",
                output.display(),
                folder.display()
            );
        }
        if let Some((other, _)) = outputs[..index].iter().find(|(_, earlier)| same_file(output, earlier)) {
            bail!("{other} and {flag} both name {}: one would overwrite the other", output.display());
        }
    }
    Ok(())
}

/// The flag that lets a command replace files that already exist; one name across commands.
pub(crate) const OVERWRITE_FLAG: &str = "--overwrite";

/// Refuses a run that would replace existing files (`(flag, path)`), unless `overwrite` (`--overwrite`) allows it.
/// Called with every name a run will write before any work, so that a refused run writes nothing; the error names
/// the file (or the first few of a batch) and how to proceed.
pub(crate) fn check_not_replacing(outputs: &[(&str, &Path)], overwrite: bool) -> anyhow::Result<()> {
    if overwrite {
        return Ok(());
    }
    let existing: Vec<&(&str, &Path)> = outputs.iter().filter(|(_, path)| name_taken(path)).collect();
    match existing.as_slice() {
        [] => Ok(()),
        [(flag, path)] => bail!(
            "{flag} {} already exists: pass {OVERWRITE_FLAG} to replace it, or choose another name",
            path.display()
        ),
        [(flag, _), ..] => {
            const SHOWN: usize = 3;
            let mut names: Vec<String> =
                existing.iter().take(SHOWN).map(|(_, path)| path.display().to_string()).collect();
            if existing.len() > SHOWN {
                names.push(format!("and {} more", existing.len() - SHOWN));
            }
            bail!(
                "{} files this run would write ({flag}) already exist: {}; pass {OVERWRITE_FLAG} to replace them, or \
                 choose another name or folder",
                existing.len(),
                names.join(", ")
            )
        }
    }
}

/// Refuses an output file name whose extension says another format than the one written (`expected`, lower case,
/// without the dot), so that `--out scan.dcm` does not quietly become a PNG under a DICOM name.
pub(crate) fn check_extension(flag: &str, path: &Path, expected: &[&str]) -> anyhow::Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension {
        Some(extension) if expected.contains(&extension.as_str()) => Ok(()),
        _ => {
            let format = match expected[0] {
                "safetensors" => "a safetensors model".to_owned(),
                other => other.to_ascii_uppercase(),
            };
            bail!(
                "{flag} {}: this command writes {format}; give the file the .{} extension",
                path.display(),
                expected[0]
            )
        }
    }
}

/// `path` is not a folder, and its folder exists and takes a new file (tried with a probe file removed at once), so
/// that a typo in a folder name fails before the work instead of after it.
pub(crate) fn check_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{flag} {}: is a folder, expected a file name", path.display());
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!("{flag} {}: the folder {} does not exist", path.display(), folder.display());
    }
    let probe = folder.join(format!(".thorax-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("{flag} {}: cannot write into {}", path.display(), folder.display()))?;
    // Best effort: the probe is empty and its name says what it is.
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks a model file a command writes (`flag` `path`): a `.safetensors` name in a writable folder, not one of the
/// command's `inputs`.
pub(crate) fn check_model_output(flag: &str, path: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    check_outputs_apart(&[(flag, path)], inputs)?;
    check_extension(flag, path, &["safetensors"])?;
    check_writable(flag, path)
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
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&input, &hard).unwrap();
        assert!(same_file(&hard, &input), "a hard link is the same file");
    }

    #[test]
    fn an_image_output_inside_an_input_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(images.join("sub")).unwrap();
        std::fs::write(images.join("a.png"), b"x").unwrap();
        let inputs = [("the training images", images.as_path())];
        for inside in [images.join("a.png"), images.join("new.PNG"), images.join("sub/./x.dcm")] {
            let error = check_outputs_apart(&[("--out", &inside)], &inputs).unwrap_err().to_string();
            assert!(error.contains("lies in the training images"), "{error}");
        }
        // A model or a log beside the images neither replaces nor joins them.
        check_outputs_apart(&[("--out", &images.join("model.safetensors"))], &inputs).unwrap();
        check_outputs_apart(&[("--out", &dir.path().join("model.safetensors"))], &inputs).unwrap();
        check_outputs_apart(&[("--out", &dir.path().join("images2.safetensors"))], &inputs).unwrap();
    }

    #[test]
    fn a_model_output_needs_its_extension_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("c.pth");
        std::fs::write(&source, b"x").unwrap();
        let inputs = [("the checkpoint converted", source.as_path())];
        check_model_output("the output", &dir.path().join("m.safetensors"), &inputs).unwrap();
        let error = check_model_output("the output", &source, &inputs).unwrap_err().to_string();
        assert!(error.contains("is the checkpoint converted"), "{error}");
        let error = check_model_output("the output", &dir.path().join("m.png"), &inputs).unwrap_err().to_string();
        assert!(error.contains("writes a safetensors model") && error.contains(".safetensors extension"), "{error}");
        let same = dir.path().join("c.safetensors");
        std::fs::hard_link(&source, &same).unwrap();
        let error = check_model_output("the output", &same, &inputs).unwrap_err().to_string();
        assert!(error.contains("is the checkpoint converted"), "{error}");
        let error = check_model_output("the output", &dir.path().join("missing/m.safetensors"), &inputs)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
    }

    #[test]
    fn the_extension_must_match_the_format_written() {
        check_extension("--out", Path::new("a/b.PNG"), &["png"]).unwrap();
        let error = check_extension("--out", Path::new("scan.dcm"), &["png"]).unwrap_err().to_string();
        assert!(error.contains("writes PNG") && error.contains(".png"), "{error}");
        assert!(check_extension("--out", Path::new("noext"), &["png"]).is_err());
    }

    #[test]
    fn existing_outputs_are_refused_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a.png"), dir.path().join("b.png"), dir.path().join("c.png"));
        check_not_replacing(&[("--out", &a), ("--out", &b)], false).unwrap();
        std::fs::write(&a, b"x").unwrap();
        let error = check_not_replacing(&[("--out", &a), ("--out", &b)], false).unwrap_err().to_string();
        assert!(error.contains("a.png already exists") && error.contains("--overwrite"), "{error}");
        std::fs::write(&b, b"x").unwrap();
        let outputs = [("--out", a.as_path()), ("--out", b.as_path()), ("--out", c.as_path())];
        let error = check_not_replacing(&outputs, false).unwrap_err().to_string();
        assert!(error.starts_with("2 files") && error.contains("a.png") && error.contains("b.png"), "{error}");
        check_not_replacing(&outputs, true).unwrap();
    }
}
