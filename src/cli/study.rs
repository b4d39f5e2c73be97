//! `thorax study new|status|analyze|export`: create a blinded reading study, follow it, analyse and export it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::cli::output_paths::{check_not_replacing, check_outputs_apart, check_writable, same_file};
use crate::models::card::ModelKind;
use crate::models::registry::default_model_bytes;
use crate::study::analysis::{
    AnalysisOptions, AnalysisReport, Performance, Reading, analyze, format_p_value, restart_note,
};
use crate::study::export::{read_answers_csv, readings_from_store, write_answers_csv, write_study_imrmc};
use crate::study::generator_source::{GeneratorSource, check_replayable_labels};
use crate::study::harmonise::{CycleGanHarmoniser, RealImageTransform, TransformChain};
use crate::study::imrmc::{read_imrmc, readings_from_imrmc};
use crate::study::resolution_match::{ResolutionMatch, SIDE_SURVEY_SAMPLE, survey_sides};
use crate::study::snapshot::open_for_reading;
use crate::study::{
    ArtificialSource, CaseMix, ConfidenceScale, DisplayBitDepth, DisplaySpec, FolderArtificialSource,
    OptionalQuestions, ReaderProgress, RealImageFolder, StudyDesign, StudyStore, StudySummary, create_study_harmonised,
    design::MAX_BORDER_CROP_PERCENT, randomise::derive_seed, session::reader_progress,
};

/// Blinded real-vs-artificial reading studies.
#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Create a study database from a folder of real images and a folder of artificial images or the generator.
    New(Box<NewArgs>),
    /// Show the design and every reader's progress.
    Status(StatusArgs),
    /// Analyse a study, an answers CSV or an iMRMC file: AUC with bootstrap CI, accuracy, binomial p,
    /// sensitivity, specificity, time per case, and agreement (Cohen, weighted, Fleiss kappa).
    Analyze(AnalyzeArgs),
    /// Export a study's answers as CSV and/or iMRMC input.
    Export(ExportArgs),
    /// Write a reader copy: the study without the truth, sources and labels of its main cases, for a reading
    /// station where readers could open the file itself. Read it in the workbench, then `study merge` its answers.
    ReaderCopy(ReaderCopyArgs),
    /// Add the answers of a reader copy to the study it was made from (checked: same design, images and orders;
    /// an answer that contradicts the study's own refuses the whole merge).
    Merge(MergeArgs),
}

/// Arguments of `thorax study reader-copy`.
#[derive(Debug, Args)]
pub struct ReaderCopyArgs {
    /// The study database (the master, with the truth).
    pub study: PathBuf,
    /// The reader copy to write (a new file).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax study merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The study database the copy was made from.
    pub study: PathBuf,
    /// The reader copy whose answers to add.
    pub copy: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Confidence scale of `study new`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ConfidenceArg {
    /// 1 (guessing) to 5 (certain).
    FiveLevel,
    /// A 0-100 slider.
    Slider,
}

/// Display bit depth of `study new`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BitDepthArg {
    /// Every case quantised to 8 bits.
    #[value(name = "8")]
    Eight,
    /// Every case kept at 16 bits.
    #[value(name = "16")]
    Sixteen,
}

/// Arguments of `thorax study new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Folder of real radiographs (png, jpeg, tiff).
    #[arg(long)]
    pub real: PathBuf,
    /// CSV of the real images (column `file` plus label columns); the pool is then exactly its rows. Only pathology
    /// columns (the NIH and CheXpert labels, `findings`) are stored in the study; others, such as patient data, are not.
    #[arg(long)]
    pub real_labels: Option<PathBuf>,
    /// Folder of artificial radiographs.
    #[arg(long, required_unless_present = "generator", conflicts_with = "generator")]
    pub artificial: Option<PathBuf>,
    /// Make the artificial cases with a conditional generator: a .safetensors file, or the embedded default when
    /// given without a value. Labels are replayed from the real cases' labels CSV (as the original study did)
    /// unless --generator-labels chooses them.
    #[arg(long, num_args = 0..=1)]
    pub generator: Option<Option<PathBuf>>,
    /// Labels for every generated case, "Name=value,..." in the generator's label names (default: replay).
    #[arg(long, requires = "generator")]
    pub generator_labels: Option<String>,
    /// Seed of the first generated case (case k uses seed + k); default derived from --seed.
    #[arg(long, requires = "generator")]
    pub generator_seed: Option<u32>,
    /// Harmonise every real case with a CycleGAN generator before display (e.g. NIH -> CheXpert style): a
    /// .safetensors file, or the embedded default when given without a value.
    #[arg(long, num_args = 0..=1)]
    pub harmonise_real: Option<Option<PathBuf>>,
    /// The size the harmonising CycleGAN sees each real image at: `training` (its card's training side; the style
    /// it learned, but a small generator's output is softer than the artificial cases) or `native` (the image's
    /// own pixels; keeps its resolution).
    #[arg(long, value_enum, default_value = "training", requires = "harmonise_real")]
    pub harmonise_scale: crate::cli::translate::ScaleArg,
    /// Keep every real case at its own resolution. By default, real cases larger than the artificial images are
    /// brought down to their resolution before display (the generator's output side, or the median longer side of
    /// the artificial folder's images), as the workbench's New study does: upscaled to the display size, sharper real
    /// films are told from softer artificial ones by sharpness alone. Matching runs after --harmonise-real.
    #[arg(long)]
    pub keep_resolution: bool,
    /// Bring real cases down to the artificial images' resolution: the default, kept for scripts that say so.
    #[arg(long, hide = true, conflicts_with = "keep_resolution")]
    pub match_resolution: bool,
    /// Device the generator and the CycleGAN run on: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::device::DeviceChoice,
    /// Reader ids, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub readers: Vec<String>,
    /// Number of cases that count (practice excluded).
    #[arg(long)]
    pub cases: usize,
    /// Practice cases shown first, with feedback, excluded from statistics.
    #[arg(long, default_value_t = 0)]
    pub practice: usize,
    /// Fraction of artificial cases.
    #[arg(long, default_value_t = 0.5)]
    pub artificial_fraction: f64,
    /// Seed of case selection, case ids and reader orders (logged in the study). The same seed and images make
    /// the same study, answer key included: for a study whose readers could reach its reader copy, use a large
    /// random number (reader copies withhold it, but a small one can be found by trying).
    #[arg(long)]
    pub seed: u64,
    /// The study database to create (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Confidence scale.
    #[arg(long, value_enum, default_value = "five-level")]
    pub confidence: ConfidenceArg,
    /// Let readers go back and change earlier answers.
    #[arg(long)]
    pub allow_back: bool,
    /// Do not reveal the truth after practice cases.
    #[arg(long)]
    pub no_practice_feedback: bool,
    /// Ask for a free-text comment per case.
    #[arg(long)]
    pub free_text: bool,
    /// Ask for a click on "what gave it away".
    #[arg(long)]
    pub giveaway_click: bool,
    /// Side of the square display image in pixels (match the generator's resolution to avoid resampling tells).
    #[arg(long, default_value_t = 512)]
    pub display_size: u32,
    /// Bit depth of every displayed case.
    #[arg(long, value_enum, default_value = "8")]
    pub bit_depth: BitDepthArg,
    /// Cut this percent of the width off the left and the right, and of the height off the top and the bottom, of
    /// every case (real and artificial alike) before display, 0 to 25. Real films carry burned-in text near their
    /// edges (side markers, labels, dates) that artificial ones lack, a tell by the border alone. A study that uses
    /// a crop cannot be opened by builds from before this option.
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = parse_border_crop_percent)]
    pub border_crop_percent: u32,
    /// iMRMC modality id of this reading.
    #[arg(long, default_value = "blinded")]
    pub modality: String,
    /// Title of the study.
    #[arg(long, default_value = "Real or artificial?")]
    pub title: String,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax study status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The study database.
    pub study: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax study analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The study database (or use --imrmc / --answers).
    pub study: Option<PathBuf>,
    /// An iMRMC input file (truth rows have readerID `truth`; higher scores = more surely artificial).
    #[arg(long, conflicts_with_all = ["study", "answers"])]
    pub imrmc: Option<PathBuf>,
    /// An answers CSV as written by `thorax study export --answers`.
    #[arg(long, conflicts_with_all = ["study", "imrmc"])]
    pub answers: Option<PathBuf>,
    /// Ratings >= K are "artificial" calls (overrides the calls of a study or CSV, and the threshold an --imrmc file
    /// exported by Thorax states; needed for an --imrmc file from another tool).
    #[arg(long, value_parser = parse_finite)]
    pub call_threshold: Option<f64>,
    /// Bootstrap resamples of each AUC confidence interval (0 = none).
    #[arg(long, default_value_t = 2000, value_parser = crate::cli::resample_count::parse_resample_count)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `thorax study export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The study database.
    pub study: PathBuf,
    /// Write every answer (all revisions, practice flagged) to this CSV.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Write the iMRMC input file (latest main-case ratings plus truth rows).
    #[arg(long)]
    pub imrmc: Option<PathBuf>,
    /// Replace --answers or --imrmc if they already exist; without it such a run is refused before anything is
    /// written.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `thorax study` subcommand.
pub fn run(command: StudyCommand) -> Result<()> {
    match command {
        StudyCommand::New(args) => run_new(&args),
        StudyCommand::Status(args) => run_status(&args),
        StudyCommand::Analyze(args) => run_analyze(&args),
        StudyCommand::Export(args) => run_export(&args),
        StudyCommand::ReaderCopy(args) => run_reader_copy(&args),
        StudyCommand::Merge(args) => run_merge(&args),
    }
}

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value).context("serialising the JSON output")?);
    Ok(())
}

#[derive(Serialize)]
struct NewOutput<'a> {
    study: &'a Path,
    title: &'a str,
    #[serde(flatten)]
    summary: &'a StudySummary,
}

fn run_new(args: &NewArgs) -> Result<()> {
    let display = DisplaySpec {
        size_px: args.display_size,
        bit_depth: match args.bit_depth {
            BitDepthArg::Eight => DisplayBitDepth::Eight,
            BitDepthArg::Sixteen => DisplayBitDepth::Sixteen,
        },
        border_crop_percent: args.border_crop_percent,
    };
    let design = StudyDesign {
        // Only a study with a crop gets the newer version: older builds still open every other study.
        format_version: display.format_version(),
        title: args.title.clone(),
        readers: args.readers.iter().map(|r| r.trim().to_owned()).collect(),
        confidence_scale: match args.confidence {
            ConfidenceArg::FiveLevel => ConfidenceScale::FiveLevel,
            ConfidenceArg::Slider => ConfidenceScale::Slider100,
        },
        allow_back: args.allow_back,
        practice_feedback: !args.no_practice_feedback,
        questions: OptionalQuestions { free_text: args.free_text, giveaway_click: args.giveaway_click },
        display,
        modality: args.modality.clone(),
        seed: args.seed,
    };
    let replay_real_labels = args.generator.is_some() && args.generator_labels.is_none();
    if replay_real_labels && args.real_labels.is_none() {
        bail!(
            "--generator replays the real cases' labels: give --real-labels CSV, or choose labels with --generator-labels"
        );
    }
    let mix = CaseMix {
        main_cases: args.cases,
        practice_cases: args.practice,
        artificial_fraction: args.artificial_fraction,
        replay_real_labels,
    };
    let real = RealImageFolder::open(&args.real, args.real_labels.as_deref())
        .with_context(|| format!("reading the real images in {}", args.real.display()))?;
    let (mut artificial, artificial_side_px): (Box<dyn ArtificialSource>, Option<u32>) =
        match (&args.artificial, &args.generator) {
            (Some(folder), None) => {
                if same_file(folder, &args.real) {
                    bail!(
                        "--artificial {} is the --real folder: its real images would be shown as artificial cases",
                        folder.display()
                    );
                }
                let source = FolderArtificialSource::open(folder, derive_seed(args.seed, "artificial-folder"))
                    .with_context(|| format!("listing the artificial images in {}", folder.display()))?;
                let survey = survey_sides(source.files(), SIDE_SURVEY_SAMPLE);
                if let Some(warning) = survey.and_then(|survey| survey.mixed_size_warning()) {
                    eprintln!("warning: {warning}");
                }
                (Box::new(source), survey.map(|survey| survey.median_px))
            }
            (None, Some(model)) => {
                let source = generator_source(args, model.as_deref())?;
                if let (true, Some(csv)) = (replay_real_labels, &args.real_labels) {
                    check_replayable_labels(source.card_labels(), real.entries(), csv)?;
                }
                let side_px = source.side_px();
                (Box::new(source), Some(side_px))
            }
            _ => bail!("give either --artificial DIR or --generator [G]"),
        };
    let mut transforms: Vec<Box<dyn RealImageTransform>> = Vec::new();
    if let Some(model) = &args.harmonise_real {
        transforms.push(Box::new(harmoniser(args, model.as_deref())?));
    }
    if !args.keep_resolution {
        let side_px = artificial_side_px.context(
            "matching the real cases' resolution: no artificial image could be read for its size (--keep-resolution \
             skips the matching)",
        )?;
        transforms.push(Box::new(ResolutionMatch { side_px }));
    }
    let mut chain = (!transforms.is_empty()).then(|| TransformChain(transforms));
    let harmonise = chain.as_mut().map(|c| c as &mut dyn RealImageTransform);
    let (_store, summary) = create_study_harmonised(&args.out, &design, &mix, &real, artificial.as_mut(), harmonise)
        .with_context(|| format!("creating the study {}", args.out.display()))?;
    if args.json {
        return print_json(&NewOutput { study: &args.out, title: &design.title, summary: &summary });
    }
    println!(
        "created {}: {} cases ({} real, {} artificial), {} practice, seed {}",
        args.out.display(),
        summary.main_cases,
        summary.real_cases,
        summary.artificial_cases,
        summary.practice_cases,
        summary.seed
    );
    println!("  display: {}", design.display.describe());
    for reader in &summary.readers {
        println!("  reader {}: order seed {}", reader.reader, reader.seed);
    }
    Ok(())
}

/// `--border-crop-percent`: a whole percent per side, 0 (off) to 25 (the middle half of the film is left).
fn parse_border_crop_percent(text: &str) -> Result<u32, String> {
    let range = format!("0 (no crop) to {MAX_BORDER_CROP_PERCENT}");
    match text.trim().parse::<u32>() {
        Ok(percent) if percent <= MAX_BORDER_CROP_PERCENT => Ok(percent),
        Ok(_) => Err(format!("the border crop per side must be a whole percent from {range}")),
        Err(_) => Err(format!("not a whole percent; give {range}")),
    }
}

/// The CycleGAN of `study new --harmonise-real`.
fn harmoniser(args: &NewArgs, model: Option<&Path>) -> Result<CycleGanHarmoniser> {
    let device = crate::engine::device::open_device(args.device)?.device;
    let (bytes, name) = match model {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading --harmonise-real {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            default_model_bytes(ModelKind::CycleganGenerator)
                .context("no --harmonise-real file given and this build embeds no default CycleGAN")?
                .to_vec(),
            "embedded default CycleGAN".to_owned(),
        ),
    };
    Ok(CycleGanHarmoniser::from_model_bytes(&bytes, &name, &device, args.harmonise_scale.into())?)
}

/// The generator source of `study new --generator`.
fn generator_source(args: &NewArgs, model: Option<&Path>) -> Result<GeneratorSource> {
    let device = crate::engine::device::open_device(args.device)?.device;
    let (bytes, name) = match model {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading --generator {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            default_model_bytes(ModelKind::ProganGenerator)
                .context("no --generator file given and this build embeds no default generator")?
                .to_vec(),
            "embedded default generator".to_owned(),
        ),
    };
    let base_seed = args.generator_seed.unwrap_or(derive_seed(args.seed, "generator") as u32);
    let chosen = match &args.generator_labels {
        Some(text) => {
            let card = crate::models::registry::read_card(&bytes)
                .map_err(|e| anyhow::anyhow!("reading the model card of {name}: {e}"))?;
            Some(crate::cli::generate::parse_labels(text, &card, "--generator-labels")?)
        }
        None => None,
    };
    Ok(GeneratorSource::from_model_bytes(&bytes, &name, &device, base_seed, chosen)?)
}

#[derive(Serialize)]
struct ReaderStatus {
    reader: String,
    seed: u64,
    #[serde(flatten)]
    progress: ReaderProgress,
}

#[derive(Serialize)]
struct StatusOutput {
    study: PathBuf,
    design: StudyDesign,
    metadata: std::collections::BTreeMap<String, String>,
    main_cases: usize,
    practice_cases: usize,
    readers: Vec<ReaderStatus>,
    /// Whether a reading session held the study, so that this is a snapshot of what it had committed.
    in_use_snapshot: bool,
    /// A reader copy: no truth inside; its answers go to the master with `study merge`.
    reader_copy: bool,
}

fn run_status(args: &StatusArgs) -> Result<()> {
    // The store alone: status reads and writes nothing a reading session would. While a session holds the study,
    // status reads a snapshot of what it has committed.
    let opened =
        open_for_reading(&args.study).with_context(|| format!("opening the study {}", args.study.display()))?;
    let store = opened.store();
    let (main_cases, practice_cases) = store.case_counts()?;
    let mut readers = Vec::new();
    for reader in store.readers()? {
        readers.push(ReaderStatus {
            progress: reader_progress(store, &reader.reader_id)?,
            reader: reader.reader_id,
            seed: reader.seed,
        });
    }
    let output = StatusOutput {
        study: args.study.clone(),
        design: store.design()?,
        metadata: store.metadata()?.into_iter().collect(),
        main_cases,
        practice_cases,
        readers,
        in_use_snapshot: opened.is_snapshot(),
        reader_copy: store.is_reader_copy()?,
    };
    if args.json {
        return print_json(&output);
    }
    println!(
        "{}: \"{}\", {} cases, {} practice, seed {}",
        output.study.display(),
        output.design.title,
        output.main_cases,
        output.practice_cases,
        output.design.seed
    );
    println!("  display: {}", output.design.display.describe());
    if output.in_use_snapshot {
        println!("  (a reading session holds the study: these are the answers it had committed a moment ago)");
    }
    if output.reader_copy {
        println!(
            "  (a reader copy: it holds no truth; `thorax study merge MASTER COPY` adds its answers to the master)"
        );
    }
    for reader in &output.readers {
        let p = &reader.progress;
        println!(
            "  {}: {}/{} cases, {}/{} practice{}",
            reader.reader,
            p.main_answered,
            p.main_count,
            p.practice_answered,
            p.practice_count,
            if p.finished { ", finished" } else { "" }
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct AnalyzeOutput {
    input: PathBuf,
    input_kind: &'static str,
    call_threshold: Option<f64>,
    #[serde(flatten)]
    report: AnalysisReport,
}

fn run_analyze(args: &AnalyzeArgs) -> Result<()> {
    let options = AnalysisOptions { bootstrap_resamples: args.bootstrap, seed: args.seed, level: 0.95 };
    let (input, input_kind, mut readings, categories, default_threshold): (_, _, Vec<Reading>, Option<Vec<f64>>, _) =
        if let Some(path) = &args.imrmc {
            let data = read_imrmc(path).with_context(|| format!("reading the iMRMC file {}", path.display()))?;
            fn stated<T>(path: &Path, what: Result<T, String>) -> Result<T> {
                what.map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))
            }
            // A file Thorax exported states its threshold and rating scale in the header; one from another tool
            // needs --call-threshold, and its weighted kappa counts the ratings it holds.
            let stated_threshold = stated(path, data.stated_call_threshold())?;
            let Some(threshold) = args.call_threshold.or(stated_threshold) else {
                bail!(
                    "{} states no call threshold in its header: give --call-threshold K (ratings >= K are \
                     \"artificial\" calls)",
                    path.display()
                );
            };
            let categories = stated(path, data.stated_rating_categories())?;
            let readings = readings_from_imrmc(&data, threshold)
                .with_context(|| format!("checking the iMRMC file {}", path.display()))?;
            (path.clone(), "imrmc", readings, categories, Some(threshold))
        } else if let Some(path) = &args.answers {
            let file = read_answers_csv(path).with_context(|| format!("reading the answers CSV {}", path.display()))?;
            (path.clone(), "answers_csv", file.readings, file.rating_categories, None)
        } else if let Some(path) = &args.study {
            // A study in use by a reading session is analysed from a snapshot of its committed answers.
            let opened = open_for_reading(path).with_context(|| {
                // A CSV or iMRMC file given in the study's place: say which flag takes it.
                let hint = if starts_like_sqlite(path) {
                    ""
                } else {
                    " (an answers CSV goes with --answers, an iMRMC file with --imrmc)"
                };
                format!("opening the study {}{hint}", path.display())
            })?;
            let store = opened.store();
            let design = store.design()?;
            let readings = readings_from_store(store)?;
            if opened.is_snapshot() {
                eprintln!("note: a reading session holds {}: analysing the answers it had committed", path.display());
            }
            let scale = design.confidence_scale;
            let categories = scale.rating_categories().into_iter().map(|r| r as f64).collect();
            (path.clone(), "study", readings, Some(categories), Some(scale.call_threshold() as f64))
        } else {
            bail!("give a study database, --imrmc FILE or --answers CSV");
        };
    if let Some(threshold) = args.call_threshold {
        if let Some(scale) = categories.as_deref() {
            check_threshold_splits_scale(threshold, scale).with_context(|| format!("--call-threshold {threshold}"))?;
        }
        for reading in &mut readings {
            reading.call_artificial = reading.rating >= threshold;
        }
    }
    let call_threshold = args.call_threshold.or(default_threshold);
    let artificial_calls = readings.iter().filter(|r| r.call_artificial).count();
    if let Some(threshold) = call_threshold
        && !readings.is_empty()
        && (artificial_calls == 0 || artificial_calls == readings.len())
    {
        let all = if artificial_calls == 0 { "real" } else { "artificial" };
        eprintln!(
            "note: with the call threshold {threshold}, every one of the {} readings is called \"{all}\": check the \
             threshold against the ratings",
            readings.len()
        );
    }
    let report = analyze(&readings, categories.as_deref(), &options)
        .with_context(|| format!("analysing {}", input.display()))?;
    let output = AnalyzeOutput { input, input_kind, call_threshold, report };
    if args.json {
        return print_json(&output);
    }
    print_report(&output);
    Ok(())
}

/// A threshold at or below the scale's lowest rating makes every reading an "artificial" call, one above its highest
/// every reading a "real" call: either is a typing mistake when the rating scale is known.
fn check_threshold_splits_scale(threshold: f64, scale: &[f64]) -> Result<()> {
    let lowest = scale.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = scale.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if scale.len() < 2 || (threshold > lowest && threshold <= highest) {
        return Ok(());
    }
    let all = if threshold <= lowest { "artificial" } else { "real" };
    let valid: Vec<String> = scale.iter().filter(|&&r| r > lowest).map(|r| r.to_string()).collect();
    bail!(
        "with the rating scale {lowest}..={highest}, every possible rating would be called \"{all}\"; give a \
         threshold above the lowest rating and at most the highest ({})",
        valid.join(", ")
    )
}

/// Whether the file begins with SQLite's header (only its first 16 bytes are read).
fn starts_like_sqlite(path: &Path) -> bool {
    use std::io::Read as _;
    let mut header = [0_u8; 16];
    std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header)).is_ok()
        && &header == b"SQLite format 3\0"
}

/// A finite number for `--call-threshold` (NaN would make no reading a call, silently).
fn parse_finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err("must be a finite number".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

/// A time in ms: whole values as they are, a median between two readings (x.5) with its decimal, where `{:.0}`
/// rounded half to even (5864.5 showed as 5864).
fn milliseconds_text(ms: f64) -> String {
    if ms.fract() == 0.0 { format!("{ms:.0}") } else { format!("{ms:.1}") }
}

fn performance_line(name: &str, p: &Performance) -> String {
    let ci = p.auc_ci.map_or_else(|| "n/a".to_owned(), |ci| format!("[{:.3}, {:.3}]", ci.lower, ci.upper));
    format!(
        "{name:<16} n={:<4} AUC {} {ci}  acc {} (p={})  sens {}  spec {}  median time {}",
        p.readings,
        fmt(p.auc),
        fmt(p.accuracy),
        p.binomial_p.map_or_else(|| "n/a".to_owned(), format_p_value),
        fmt(p.sensitivity),
        fmt(p.specificity),
        // iMRMC files carry no reading times.
        p.time_per_case.map_or_else(|| "n/a".to_owned(), |t| format!("{} ms", milliseconds_text(t.median_ms))),
    )
}

fn print_report(output: &AnalyzeOutput) {
    match output.call_threshold {
        Some(threshold) => println!(
            "{} ({}; ratings >= {threshold} are \"artificial\" calls)",
            output.input.display(),
            output.input_kind
        ),
        None => println!("{} ({})", output.input.display(), output.input_kind),
    }
    for modality in &output.report.modalities {
        println!("modality {}", modality.modality);
        for reader in &modality.readers {
            println!("  {}", performance_line(&reader.reader, &reader.performance));
        }
        println!("  {}", performance_line("pooled", &modality.pooled));
        if let Some(note) = restart_note(&modality.pooled) {
            println!("  {note}");
        }
        for pair in &modality.pairwise_agreement {
            println!(
                "  kappa {}-{}: calls {}, linear {}, quadratic {} (n={})",
                pair.reader_a,
                pair.reader_b,
                fmt(pair.cohen_kappa),
                fmt(pair.weighted_kappa_linear),
                fmt(pair.weighted_kappa_quadratic),
                pair.cases
            );
        }
        if let Some(fleiss) = &modality.fleiss {
            println!("  Fleiss kappa {} (n={})", fmt(fleiss.kappa), fleiss.cases);
        }
    }
}

#[derive(Serialize)]
struct ExportOutput {
    study: PathBuf,
    answers_csv: Option<PathBuf>,
    answer_rows: Option<usize>,
    imrmc: Option<PathBuf>,
    imrmc_score_rows: Option<usize>,
    /// A reading session held the study: the answers are those it had committed.
    in_use_snapshot: bool,
}

fn run_export(args: &ExportArgs) -> Result<()> {
    if args.answers.is_none() && args.imrmc.is_none() {
        bail!("nothing to export: give --answers OUT.csv and/or --imrmc OUT.imrmc");
    }
    let outputs: Vec<(&str, &Path)> = [("--answers", &args.answers), ("--imrmc", &args.imrmc)]
        .into_iter()
        .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
        .collect();
    check_outputs_apart(&outputs, &[("the study database", &args.study)])?;
    for &(flag, path) in &outputs {
        check_writable(flag, path)?;
    }
    check_not_replacing(&outputs, args.overwrite)?;
    // A study in use by a reading session is exported from a snapshot of its committed answers, as status and
    // analyze read it: a reading station left open must not stop the researcher.
    let opened =
        open_for_reading(&args.study).with_context(|| format!("opening the study {}", args.study.display()))?;
    let store = opened.store();
    if opened.is_snapshot() {
        eprintln!("note: a reading session holds {}: exporting the answers it had committed", args.study.display());
    }
    let answer_rows = match &args.answers {
        Some(path) => Some(
            write_answers_csv(store, path).with_context(|| format!("writing the answers CSV {}", path.display()))?,
        ),
        None => None,
    };
    let imrmc_score_rows = match &args.imrmc {
        Some(path) => {
            Some(write_study_imrmc(store, path).with_context(|| format!("writing the iMRMC file {}", path.display()))?)
        }
        None => None,
    };
    let output = ExportOutput {
        study: args.study.clone(),
        answers_csv: args.answers.clone(),
        answer_rows,
        imrmc: args.imrmc.clone(),
        imrmc_score_rows,
        in_use_snapshot: opened.is_snapshot(),
    };
    if args.json {
        return print_json(&output);
    }
    if let (Some(path), Some(rows)) = (&output.answers_csv, output.answer_rows) {
        println!("wrote {rows} answers to {}", path.display());
    }
    if let (Some(path), Some(rows)) = (&output.imrmc, output.imrmc_score_rows) {
        println!("wrote {rows} scores (plus truth rows) to {}", path.display());
    }
    Ok(())
}

/// Writes the reader copy; the master is read from a snapshot if a reading station holds it.
fn run_reader_copy(args: &ReaderCopyArgs) -> Result<()> {
    check_outputs_apart(&[("--out", &args.out)], &[("the study database", &args.study)])?;
    let opened =
        open_for_reading(&args.study).with_context(|| format!("opening the study {}", args.study.display()))?;
    let summary = opened
        .store()
        .write_reader_copy(&args.out)
        .with_context(|| format!("writing the reader copy {}", args.out.display()))?;
    if args.json {
        return print_json(&summary);
    }
    println!(
        "wrote {}: {} main cases with their truth, sources and labels withheld, {} answers carried over",
        args.out.display(),
        summary.main_cases_withheld,
        summary.answers_carried
    );
    println!(
        "read it in the workbench (Study > Open study...), then: thorax study merge {} {}",
        args.study.display(),
        args.out.display()
    );
    let seed = opened.store().design()?.seed;
    if seed < SMALL_SEED {
        eprintln!(
            "note: the study seed {seed} is small. The copy withholds it, but someone with the workbench and the \
             same images could find it by trying seeds against the readers' orders in the copy, and with it the \
             answer key; for a study read on copies, create it with a large random --seed"
        );
    }
    Ok(())
}

/// "1 answer", "2 answers".
fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Seeds below this can be found by trying them all (2^32 rebuilds of a study are out of reach).
const SMALL_SEED: u64 = 1 << 32;

/// Adds a reader copy's answers to its master study.
fn run_merge(args: &MergeArgs) -> Result<()> {
    if same_file(&args.copy, &args.study) {
        bail!("{} is the study itself, not a reader copy of it", args.copy.display());
    }
    let mut master =
        StudyStore::open(&args.study).with_context(|| format!("opening the study {}", args.study.display()))?;
    let summary = crate::study::reader_copy::merge_reader_copy(&mut master, &args.copy)
        .with_context(|| format!("merging {} into {}", args.copy.display(), args.study.display()))?;
    if args.json {
        return print_json(&summary);
    }
    println!(
        "merged {}: {} added, {} already in the study, {} added, {} carried",
        args.copy.display(),
        counted(summary.answers_added, "answer", "answers"),
        summary.answers_already_present,
        counted(summary.events_added, "reading event", "reading events"),
        counted(summary.clocks_carried, "reading time of an unanswered case", "reading times of unanswered cases"),
    );
    let mut log = args.copy.as_os_str().to_owned();
    log.push("-wal");
    if summary.answers_added == 0 && summary.answers_already_present == 0 && !Path::new(&log).exists() {
        eprintln!(
            "note: the copy added no answer. A station that still held the copy when the file was copied keeps its \
             newest answers in {}, which is not there: close the study at the station, then copy the file again",
            Path::new(&log).display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_median_between_two_readings_keeps_its_half() {
        assert_eq!(milliseconds_text(5864.5), "5864.5");
        assert_eq!(milliseconds_text(5865.5), "5865.5");
        assert_eq!(milliseconds_text(5864.0), "5864");
    }
}
