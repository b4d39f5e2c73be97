//! `thorax dicom ...`: inspect DICOM files, de-identify them, and export artificial images as DICOM
//! Secondary Capture or windowed PNG.

use crate::atomic_file::{IfExists, write_file};
use crate::cli::output_paths::{check_extension, check_not_replacing, check_outputs_apart};
use crate::imaging::dicom::{
    DeidentifiedFile, DeidentifyOptions, DicomError, GrayImage, GraySamples, Provenance, TagRow, UidMap, Window,
    deidentify_file_with, list_tags, open_dicom, read_dicom_image, read_png_with_provenance, render_display_u8,
    write_secondary_capture_with,
};
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// DICOM subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DicomCommand {
    /// Image facts: size, bits, photometric interpretation, transfer syntax, modality, window, pixel range.
    Info {
        /// A DICOM file (with or without file meta header).
        file: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// List every attribute, marking those the PS3.15 Basic Profile treats as identifying.
    Tags {
        /// A DICOM file (with or without file meta header).
        file: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// De-identify files (PS3.15 Annex E Basic Profile); UIDs map consistently across all inputs. The profile
    /// cleans attributes, not pixels: a file whose Burned In Annotation is YES is refused unless
    /// --allow-burned-in-annotation is given.
    Deidentify {
        /// DICOM files, or folders whose files are all taken (not recursively: subfolders are skipped with a note).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder (created if missing), not an input folder nor inside one; files are named by their new SOP
        /// Instance UID.
        #[arg(long)]
        out: PathBuf,
        /// Also write files whose Burned In Annotation (0028,0301) is YES. Their pixels show text (often the
        /// patient's name or ID) that this command does not remove: you take responsibility for the pixels, e.g.
        /// after checking or masking them. Without it such files are refused (the others are still written, and
        /// the command exits non-zero).
        #[arg(long)]
        allow_burned_in_annotation: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Export an artificial PNG as DICOM Secondary Capture with its provenance.
    ExportSc {
        /// An 8- or 16-bit grayscale PNG (a gray palette counts); provenance is read from its text chunks when not
        /// given, and given values must agree with the chunks.
        png: PathBuf,
        /// The DICOM file to write.
        #[arg(long)]
        out: PathBuf,
        /// SHA-256 of the generator weights.
        #[arg(long)]
        model_sha256: Option<String>,
        /// Latent seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Conditioning labels, e.g. "Cardiomegaly=1,Effusion=0".
        #[arg(long)]
        labels: Option<String>,
        /// Replace --out if it already exists; without it such a run is refused before anything is written.
        #[arg(long)]
        overwrite: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Render the first frame to an 8-bit PNG with the stored (or given) window, MONOCHROME1 inverted.
    Render {
        /// A DICOM file (with or without file meta header).
        file: PathBuf,
        /// The PNG file to write (.png).
        #[arg(long)]
        out: PathBuf,
        /// Window center (with --window-width) instead of the file's VOI, in the file's rescaled units (e.g. HU).
        #[arg(long, requires = "window_width")]
        window_center: Option<f64>,
        /// Window width (with --window-center), in the same units.
        #[arg(long, requires = "window_center")]
        window_width: Option<f64>,
        /// Replace --out if it already exists; without it such a run is refused before anything is written.
        #[arg(long)]
        overwrite: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `thorax dicom` subcommand.
pub fn run(command: DicomCommand) -> anyhow::Result<()> {
    match command {
        DicomCommand::Info { file, json } => {
            let image = read_dicom_image(&file).with_context(|| format!("reading DICOM image {}", file.display()))?;
            let summary = &image.summary;
            if json {
                print_json(summary)
            } else {
                println!("file                {}", summary.file);
                println!(
                    "size                {} x {} (columns x rows), {} frame(s)",
                    summary.columns, summary.rows, summary.number_of_frames
                );
                println!(
                    "bits                allocated {}, stored {}, high bit {}, {}",
                    summary.bits_allocated,
                    summary.bits_stored,
                    summary.high_bit,
                    if summary.pixel_representation_signed { "signed" } else { "unsigned" }
                );
                println!("photometric         {}", summary.photometric_interpretation);
                println!("transfer syntax     {} ({})", summary.transfer_syntax_name, summary.transfer_syntax_uid);
                println!("file meta header    {}", if summary.has_file_meta { "yes" } else { "no" });
                println!("modality            {}", summary.modality.as_deref().unwrap_or("-"));
                println!("modality LUT        {:?}", summary.modality_lut);
                match summary.pixel_spacing {
                    Some(spacing) => println!(
                        "pixel spacing       {} x {} mm (row x column, {})",
                        spacing.row_mm,
                        spacing.column_mm,
                        match spacing.source {
                            crate::imaging::dicom::SpacingSource::PixelSpacing => "Pixel Spacing".to_owned(),
                            crate::imaging::dicom::SpacingSource::ImagerPixelSpacing =>
                                "Imager Pixel Spacing, at the detector".to_owned(),
                            crate::imaging::dicom::SpacingSource::MagnificationCorrected { factor } =>
                                format!("Imager Pixel Spacing / Estimated Radiographic Magnification Factor {factor}"),
                        }
                    ),
                    None => println!("pixel spacing       - (distances in pixels)"),
                }
                println!(
                    "window              center {} width {} ({:?}, {:?})",
                    summary.window.center, summary.window.width, summary.window_source, summary.voi_lut_function
                );
                if !summary.stored_windows.is_empty() {
                    let windows: Vec<String> = summary
                        .stored_windows
                        .iter()
                        .map(|stored| {
                            let explanation =
                                stored.explanation.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                            format!("center {} width {}{explanation}", stored.window.center, stored.window.width)
                        })
                        .collect();
                    println!("stored windows      {}", windows.join("; "));
                }
                for note in &summary.display_notes {
                    println!("display note        {note}");
                }
                let s = summary.pixel_stats;
                // The values are f32 (see `DicomImage::pixels`); printed as such, not with f64's extra digits.
                println!("pixels (modality)   min {} max {} mean {:.3}", s.min as f32, s.max as f32, s.mean);
                let s = summary.stored_value_stats;
                println!("stored values       min {} max {} mean {:.3}", s.min, s.max, s.mean);
                Ok(())
            }
        }
        DicomCommand::Tags { file, json } => {
            let dicom = open_dicom(&file).with_context(|| format!("opening {}", file.display()))?;
            let rows = list_tags(&dicom);
            if json {
                print_json(&rows)
            } else {
                for row in &rows {
                    print_tag_row(row);
                }
                Ok(())
            }
        }
        DicomCommand::Deidentify { inputs, out, allow_burned_in_annotation, json } => {
            deidentify(&inputs, &out, DeidentifyOptions { allow_burned_in_annotation }, json)
        }
        DicomCommand::ExportSc { png, out, model_sha256, seed, labels, overwrite, json } => {
            check_outputs_apart(&[("--out", &out)], &[("the PNG exported", &png)])?;
            check_not_replacing(&[("--out", &out)], overwrite)?;
            let (image, stored) =
                read_png_with_provenance(&png).with_context(|| format!("reading PNG {}", png.display()))?;
            if stored.is_none() {
                // Nothing in the file shows that it is artificial: a real radiograph given here by mistake would be
                // filed as "not a real patient" with the patient's own pixels.
                eprintln!(
                    "warning: {} carries no thorax provenance chunks, so nothing in it shows that it is artificial; \
                     it is exported as synthetic on the word of --model-sha256, --seed and --labels. Export only \
                     images you generated (`thorax generate` writes the chunks)",
                    png.display()
                );
            }
            let provenance = merge_provenance(stored, model_sha256, seed, labels)
                .with_context(|| format!("provenance for {}", png.display()))?;
            let info = write_secondary_capture_with(&out, &image, &provenance, IfExists::replace_if(overwrite))
                .with_context(|| format!("writing Secondary Capture {}", out.display()))?;
            if json {
                print_json(&info)
            } else {
                println!(
                    "wrote {} ({}x{}, {} bits, SOP Instance UID {})",
                    info.path.display(),
                    info.columns,
                    info.rows,
                    info.bits_stored,
                    info.sop_instance_uid
                );
                Ok(())
            }
        }
        DicomCommand::Render { file, out, window_center, window_width, overwrite, json } => {
            check_extension("--out", &out, &["png"])?;
            check_outputs_apart(&[("--out", &out)], &[("the DICOM file rendered", &file)])?;
            check_not_replacing(&[("--out", &out)], overwrite)?;
            let image = read_dicom_image(&file).with_context(|| format!("reading DICOM image {}", file.display()))?;
            let window = match (window_center, window_width) {
                (Some(center), _) if !center.is_finite() => {
                    bail!("--window-center must be a finite number, got {center}")
                }
                (Some(center), Some(width)) if width > 0.0 && width.is_finite() => Some(Window { center, width }),
                (Some(_), Some(width)) => bail!("--window-width must be a positive finite number, got {width}"),
                _ => None,
            };
            for note in &image.summary.display_notes {
                eprintln!("note: {}: {note}", file.display());
            }
            let gray = GrayImage::new(image.width, image.height, GraySamples::U8(render_display_u8(&image, window)))?;
            write_plain_png(&out, &gray, IfExists::replace_if(overwrite))
                .with_context(|| format!("writing {}", out.display()))?;
            let (used, source) = match window {
                Some(window) => (window, "command line".to_owned()),
                None => {
                    let (window, source) = image.display_window();
                    (window, format!("{source:?}"))
                }
            };
            if json {
                print_json(&serde_json::json!({
                    "file": file, "out": out, "window": used, "window_source": source,
                    "inverted": image.photometric.invert_for_display(),
                }))
            } else {
                println!("wrote {} (window center {} width {}, {source})", out.display(), used.center, used.width);
                Ok(())
            }
        }
    }
}

#[derive(Serialize)]
struct DeidentifyFailure {
    input: String,
    error: String,
}

#[derive(Serialize)]
struct DeidentifyReport {
    out_dir: PathBuf,
    files: Vec<DeidentifiedFile>,
    failures: Vec<DeidentifyFailure>,
    /// Files inside a given folder that are not DICOM (named files that are not DICOM are failures).
    skipped_not_dicom: Vec<String>,
    /// Folders inside a given folder: not read (folders are taken one level deep).
    skipped_subfolders: Vec<String>,
    distinct_uids_replaced: usize,
}

fn deidentify(inputs: &[PathBuf], out: &Path, options: DeidentifyOptions, json: bool) -> anyhow::Result<()> {
    check_out_apart_from_inputs(inputs, out)?;
    let ExpandedInputs { files, subfolders } = expand_inputs(inputs)?;
    if !json {
        for folder in &subfolders {
            eprintln!(
                "note: skipped subfolder {} (folders are read one level deep, not recursively)",
                folder.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    let mut uids = UidMap::new();
    let mut report = DeidentifyReport {
        out_dir: out.to_path_buf(),
        files: Vec::new(),
        failures: Vec::new(),
        skipped_not_dicom: Vec::new(),
        skipped_subfolders: subfolders.iter().map(|folder| folder.display().to_string()).collect(),
        distinct_uids_replaced: 0,
    };
    for (input, from_folder) in &files {
        match deidentify_file_with(input, out, &mut uids, options) {
            Ok(done) => report.files.push(done),
            Err(DicomError::NotDicom { .. }) if *from_folder => {
                report.skipped_not_dicom.push(input.display().to_string());
            }
            Err(error) => {
                report.failures.push(DeidentifyFailure { input: input.display().to_string(), error: error.to_string() })
            }
        }
    }
    report.distinct_uids_replaced = uids.len();
    if json {
        print_json(&report)?;
    } else {
        for done in &report.files {
            println!(
                "{} -> {} ({} removed, {} emptied, {} dummies, {} UIDs, {} private)",
                done.input,
                done.output.display(),
                done.counts.removed,
                done.counts.emptied,
                done.counts.replaced_with_dummy,
                done.counts.uids_replaced,
                done.counts.private_removed
            );
            for warning in &done.warnings {
                println!("  warning: {warning}");
            }
        }
        for skipped in &report.skipped_not_dicom {
            println!("skipped (not DICOM): {skipped}");
        }
        for failure in &report.failures {
            eprintln!("failed: {}", failure.error);
        }
    }
    if !report.failures.is_empty() {
        bail!("{} of {} input files could not be de-identified", report.failures.len(), files.len());
    }
    Ok(())
}

/// Refuses an output folder that is an input folder or inside one: outputs would sit beside (or below) the
/// originals, and the next run over that folder would take both. Also refuses an input file directly in the
/// output folder, which mixes originals and outputs the same way.
fn check_out_apart_from_inputs(inputs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let out_resolved = resolved_folder(out);
    for input in inputs {
        if input.is_dir() {
            let Ok(folder) = input.canonicalize() else { continue };
            if out_resolved.starts_with(&folder) {
                bail!(
                    "--out {} is {} the input folder {}: de-identified files would be mixed with the originals \
                     (and taken as inputs by the next run); choose an output folder outside it",
                    out.display(),
                    if out_resolved == folder { "the same folder as" } else { "inside" },
                    input.display()
                );
            }
        } else if let Some(parent) = input.canonicalize().ok().and_then(|path| path.parent().map(Path::to_path_buf))
            && parent == out_resolved
        {
            bail!(
                "the input file {} is in the output folder --out {}: de-identified files would be mixed with the \
                 originals; choose another output folder",
                input.display(),
                out.display()
            );
        }
    }
    Ok(())
}

/// `path` made absolute with links resolved, also when it does not exist yet: its nearest existing ancestor
/// resolved, joined with the rest.
fn resolved_folder(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(found) = existing.canonicalize() {
            return missing.iter().rev().fold(found, |path, part| path.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// The input files of a run and the subfolders it does not read.
struct ExpandedInputs {
    /// Each file with whether it came from a folder.
    files: Vec<(PathBuf, bool)>,
    /// Subfolders of given folders: not read (folders are taken one level deep), so the caller says so.
    subfolders: Vec<PathBuf>,
}

/// Files as given, plus the regular files directly inside any folder given (sorted), and those folders' subfolders.
fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<ExpandedInputs> {
    let mut files = Vec::new();
    let mut subfolders = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect();
            inside.sort();
            for path in inside {
                // A hidden temporary file of a killed earlier run is no input.
                if path.file_name().is_some_and(crate::atomic_file::is_partial_file_name) {
                    continue;
                }
                if path.is_file() {
                    files.push((path, true));
                } else if path.is_dir() {
                    subfolders.push(path);
                }
            }
        } else {
            files.push((input.clone(), false));
        }
    }
    if files.is_empty() {
        let note = if subfolders.is_empty() { "" } else { " (subfolders are not read)" };
        bail!("no input files found{note}");
    }
    Ok(ExpandedInputs { files, subfolders })
}

/// Missing command-line values come from the PNG's own provenance chunks. A value that contradicts what the PNG
/// records is refused: provenance says how the image was made, and the PNG's chunks were written when it was.
fn merge_provenance(
    stored: Option<Provenance>,
    model_sha256: Option<String>,
    seed: Option<u64>,
    labels: Option<String>,
) -> anyhow::Result<Provenance> {
    if let Some(recorded) = &stored {
        let conflicts = [
            (
                "--model-sha256",
                "model_sha256",
                model_sha256.as_deref().map(str::to_ascii_lowercase),
                Some(recorded.model_sha256.to_ascii_lowercase()),
            ),
            ("--seed", "seed", seed.map(|s| s.to_string()), Some(recorded.seed.to_string())),
        ];
        // Labels compare by value: "Effusion=1" says what "Cardiomegaly=0,...,Effusion=1,..." says.
        if let Some(given) = &labels
            && nonzero_labels(given) != nonzero_labels(&recorded.labels)
        {
            bail!(
                "--labels {given:?} contradicts the PNG's thorax.labels chunk ({:?}): provenance must say how the \
                 image was made; leave --labels out to use the recorded value",
                recorded.labels
            );
        }
        for (flag, chunk, given, recorded) in conflicts {
            if let (Some(given), Some(recorded)) = (given, recorded)
                && given != recorded
            {
                bail!(
                    "{flag} {given} contradicts the PNG's thorax.{chunk} chunk ({recorded}): provenance must say \
                     how the image was made; leave {flag} out to use the recorded value"
                );
            }
        }
    }
    let model_sha256 = model_sha256
        .or_else(|| stored.as_ref().map(|p| p.model_sha256.clone()))
        .context("--model-sha256 is required (the PNG has no thorax.model_sha256 chunk)")?;
    let seed = seed
        .or_else(|| stored.as_ref().map(|p| p.seed))
        .context("--seed is required (the PNG has no thorax.seed chunk)")?;
    if let Some(text) = &labels {
        check_labels_text(text)?;
    }
    let labels = labels
        .or_else(|| stored.as_ref().map(|p| p.labels.clone()))
        .context("--labels is required (the PNG has no thorax.labels chunk)")?;
    // The PNG's latent row describes its own seed only.
    let latent = stored.filter(|p| p.seed == seed).map(|p| p.latent).unwrap_or_default();
    Ok(Provenance::new(&model_sha256, seed, &labels)?.with_latent(&latent)?)
}

/// The labels of a `Name=value,...` text with a value other than 0, by name (text that does not parse as such is
/// kept whole, so that it compares only with itself).
fn nonzero_labels(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut labels = std::collections::BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        match item.split_once('=').map(|(name, value)| (name.trim(), value.trim().parse::<f64>())) {
            Some((name, Ok(value))) if value != 0.0 => {
                labels.insert(name.to_owned(), value.to_string());
            }
            Some((_, Ok(_))) => {}
            _ => {
                labels.insert(item.to_owned(), String::new());
            }
        }
    }
    labels
}

/// `--labels` must read as `thorax generate` writes them, `Name=value,...` with finite values and each name once
/// (or be empty for all zeros), so the SC file's provenance can be replayed.
fn check_labels_text(text: &str) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let Some((name, value)) = item.rsplit_once('=') else {
            bail!("--labels item `{item}` is not Name=value (e.g. \"Cardiomegaly=1,Effusion=0\")");
        };
        let name = name.trim();
        if name.is_empty() {
            bail!("--labels item `{item}` has no label name");
        }
        if !value.trim().parse::<f32>().is_ok_and(f32::is_finite) {
            bail!("--labels: value `{}` of `{name}` is not a finite number", value.trim());
        }
        if !names.insert(name) {
            bail!("--labels: `{name}` is given twice");
        }
    }
    Ok(())
}

fn write_plain_png(path: &Path, image: &GrayImage, if_exists: IfExists) -> anyhow::Result<()> {
    let GraySamples::U8(bytes) = &image.samples else {
        bail!("rendered image is not 8-bit");
    };
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(bytes)?;
    writer.finish()?;
    write_file(path, if_exists, &encoded)?;
    Ok(())
}

fn print_tag_row(row: &TagRow) {
    let indent = "  ".repeat(row.depth as usize);
    let mark = if row.is_identifying { "!" } else { " " };
    println!("{mark} {indent}{} {} {:<36} {}", row.tag, row.vr, row.keyword, row.value);
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_must_read_as_generate_writes_them() {
        assert!(check_labels_text("").is_ok());
        assert!(check_labels_text("Cardiomegaly=1, Pleural Thickening=0.5").is_ok());
        for (bad, why) in [
            ("hello world", "is not Name=value"),
            ("=1", "no label name"),
            ("Mass=lots", "not a finite number"),
            ("Mass=NaN", "not a finite number"),
            ("Mass=1,Mass=0", "given twice"),
        ] {
            let message = check_labels_text(bad).unwrap_err().to_string();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }
}
