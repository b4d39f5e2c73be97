//! `thorax metrics ...`: MS-SSIM of images, Frechet distance and KID of feature matrices, ROC/AUC with bootstrap.
//!
//! Every subcommand takes `--json` and then prints exactly one JSON document on stdout.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::cli::resample_count::parse_resample_count;
use crate::convert::npy::read_npy;
use crate::imaging::gray_channels::equal_channels_to_gray;
use crate::metrics::bootstrap::{bootstrap_auc, thorax_gan_protocol};
use crate::metrics::delong::delong;
use crate::metrics::fd_bootstrap::{FdBootstrap, frechet_distance_bootstrap};
use crate::metrics::features::FeatureMatrix;
use crate::metrics::fid::frechet_distance;
use crate::metrics::kid::{KidOptions, kernel_inception_distance, spread_caution};
use crate::metrics::msssim::{GrayImage, MsSsimMode, ms_ssim};
use crate::metrics::roc::roc_auc;
use crate::models::embedding::{Embedder, ImageEmbedding, image_files_in};
use crate::models::inception::{PUBLISHED_SHA256_PREFIX, PUBLISHED_WEIGHTS_FILE, PUBLISHED_WEIGHTS_URL};
use crate::models::inception_embedding::InceptionEmbedder;

/// A feature extractor for folder inputs: image paths in, one feature vector per image out.
pub type FeatureExtractor<'a> = &'a dyn Fn(&[PathBuf]) -> anyhow::Result<Vec<Vec<f32>>>;

/// The extractor with what a result must record about it.
#[derive(Clone, Copy)]
pub struct FeatureSource<'a> {
    pub extract: FeatureExtractor<'a>,
    /// What the distance is called with these features ("FD-DenseNet").
    pub metric_label: &'a str,
    pub model_name: &'a str,
    pub model_sha256: &'a str,
}

/// Feature extractors `thorax metrics fid` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureKind {
    /// The classifier's globally pooled norm5 features (1024-d for DenseNet-121, fewer for a narrower classifier such
    /// as the embedded one), reported as "FD-DenseNet".
    Densenet,
    /// pytorch-fid's FID Inception-v3 pool3 features (2048-d), reported as "FID"; needs `--inception-weights`.
    Inception,
}

/// `thorax metrics` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// MS-SSIM of two images, or of two folders of images paired by file name.
    Msssim {
        /// First image or folder.
        a: PathBuf,
        /// Second image or folder.
        b: PathBuf,
        /// Reproduce another implementation instead of pytorch-msssim's `ms_ssim`.
        #[arg(long, value_enum)]
        compat: Option<MsSsimCompat>,
        /// Data range L (default: 255 for 8-bit images, 65535 for 16-bit, and for DICOM 2^BitsStored - 1 from the
        /// header, times |Rescale Slope| when there is one). DICOM is compared as stored (after the modality rescale,
        /// never stretched to the image's own range); MONOCHROME1 is mirrored within that range, so bone is bright
        /// as in MONOCHROME2. Images whose default ranges differ are refused unless this is given. Ignored by
        /// `--compat thorax-gan`.
        #[arg(long)]
        data_range: Option<f64>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Frechet distance of two feature matrices [N, D] stored as .npy.
    Fd {
        /// First feature matrix (.npy, float32/float64 [N, D]).
        a: PathBuf,
        /// Second feature matrix.
        b: PathBuf,
        /// Bootstrap resamples of a 95% CI, value +- 1.96 bootstrap SE (both sets resampled; 0 = none).
        #[arg(long, default_value_t = 0, value_parser = parse_resample_count)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Frechet distance of two image folders through a feature extractor (FD-DenseNet by default).
    Fid {
        /// Folder of real images (PNG, JPEG, TIFF, DICOM).
        #[arg(long)]
        real: PathBuf,
        /// Folder of generated images.
        #[arg(long)]
        fake: PathBuf,
        /// Feature extractor: `inception` is the standard FID network (with `--inception-weights`).
        #[arg(long, value_enum, default_value_t = FeatureKind::Densenet)]
        features: FeatureKind,
        /// FID Inception-v3 weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth or its conversion by
        /// `thorax convert inception`.
        #[arg(long)]
        inception_weights: Option<PathBuf>,
        /// Bootstrap resamples of a 95% CI, value +- 1.96 bootstrap SE (both sets resampled; 0 = none).
        #[arg(long, default_value_t = 0, value_parser = parse_resample_count)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Kernel Inception Distance of two feature matrices, or of two image folders through a feature extractor.
    Kid {
        /// Real feature matrix (.npy [N, D]).
        #[arg(long, conflicts_with = "real")]
        real_npy: Option<PathBuf>,
        /// Generated feature matrix (.npy [N, D]).
        #[arg(long, conflicts_with = "fake")]
        fake_npy: Option<PathBuf>,
        /// Folder of real images (needs a feature extractor).
        #[arg(long)]
        real: Option<PathBuf>,
        /// Folder of generated images (needs a feature extractor).
        #[arg(long)]
        fake: Option<PathBuf>,
        /// Number of subsets.
        #[arg(long, default_value_t = 100)]
        subsets: usize,
        /// Rows per subset (clamped to the smaller set).
        #[arg(long, default_value_t = 1000)]
        subset_size: usize,
        /// Seed of the subset draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Feature extractor for folder inputs: `inception` is the standard KID network (with
        /// `--inception-weights`).
        #[arg(long, value_enum, default_value_t = FeatureKind::Densenet)]
        features: FeatureKind,
        /// FID Inception-v3 weights (.pth or converted safetensors), for `--features inception`.
        #[arg(long)]
        inception_weights: Option<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// ROC AUC per label with DeLong and bootstrap confidence intervals.
    Roc {
        /// CSV of scores: header row, an id column first, one column per label (`Label` or `prob_Label`).
        #[arg(long)]
        scores: PathBuf,
        /// CSV of 0/1 truth: header row, an id column first, one column per label.
        #[arg(long)]
        truth: PathBuf,
        /// Bootstrap resamples (0 = none; `--protocol thorax-gan` defaults to 10,000).
        #[arg(long, value_parser = parse_resample_count)]
        bootstrap: Option<usize>,
        /// Seed of the resampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Bootstrap protocol.
        #[arg(long, value_enum, default_value_t = RocProtocol::Percentile)]
        protocol: RocProtocol,
        /// Cases per resample for `thorax-gan` (default: all cases; the study used 10,000).
        #[arg(long)]
        sample_size: Option<usize>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// MS-SSIM compatibility modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MsSsimCompat {
    /// Thorax_GAN `SSIM/ms_ssim.py`, with its last-scale product bug and automatic range.
    ThoraxGan,
}

/// ROC bootstrap protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RocProtocol {
    /// Percentile 95% CI of the AUC.
    Percentile,
    /// Thorax_GAN `Analysis/bootstrapping.py`: mean +- SD of AUC and threshold statistics at a corner cutoff.
    ThoraxGan,
}

impl MetricsCommand {
    /// Whether the command embeds image folders (and so needs the classifier).
    pub fn reads_image_folders(&self) -> bool {
        matches!(self, Self::Fid { .. } | Self::Kid { real: Some(_), .. })
    }

    /// The feature extractor and Inception weights a folder command asks for.
    fn feature_choice(&self) -> (FeatureKind, Option<&Path>) {
        match self {
            Self::Fid { features, inception_weights, .. } | Self::Kid { features, inception_weights, .. } => {
                (*features, inception_weights.as_deref())
            }
            _ => (FeatureKind::Densenet, None),
        }
    }
}

/// Runs a metrics subcommand without a feature extractor (folder inputs are refused).
pub fn run(cmd: MetricsCommand) -> anyhow::Result<()> {
    run_with_features(cmd, None)
}

/// Runs a metrics subcommand, embedding folder inputs with the classifier at `classifier` (or the embedded
/// default `default_classifier_bytes`) on `device`.
pub fn run_on_device(
    cmd: MetricsCommand,
    classifier: Option<&Path>,
    device: &candle_core::Device,
    default_classifier_bytes: Option<&[u8]>,
) -> anyhow::Result<()> {
    if !cmd.reads_image_folders() {
        return run_with_features(cmd, None);
    }
    let (kind, inception_weights) = cmd.feature_choice();
    match (kind, inception_weights.map(Path::to_path_buf)) {
        (FeatureKind::Inception, weights) => return run_with_inception(cmd, weights.as_deref(), device),
        (FeatureKind::Densenet, Some(_)) => bail!("`--inception-weights` needs `--features inception`"),
        (FeatureKind::Densenet, None) => {}
    }
    let embedder = Embedder::load(classifier, default_classifier_bytes, device)
        .context("loading the classifier that embeds images")?;
    run_with_embedding(cmd, &embedder, "FD-DenseNet", &embedder.model_name, &embedder.model_sha256)
}

/// Runs a folder command with `embedder` as its feature extractor; `metric_label` names the distance.
fn run_with_embedding(
    cmd: MetricsCommand,
    embedder: &dyn ImageEmbedding,
    metric_label: &str,
    model_name: &str,
    model_sha256: &str,
) -> anyhow::Result<()> {
    let extract = |files: &[PathBuf]| -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(embedder.embed_files(files, embedder.default_batch(), &mut |_, _| true)?)
    };
    run_with_features(cmd, Some(FeatureSource { extract: &extract, metric_label, model_name, model_sha256 }))
}

/// Runs a folder command with pytorch-fid's FID Inception-v3 (`--features inception`) on `device`.
fn run_with_inception(cmd: MetricsCommand, weights: Option<&Path>, device: &candle_core::Device) -> anyhow::Result<()> {
    let Some(weights) = weights else {
        bail!(
            "`--features inception` needs `--inception-weights FILE`: pytorch-fid's {PUBLISHED_WEIGHTS_FILE} \
             (download it from {PUBLISHED_WEIGHTS_URL}; pytorch-fid caches it under ~/.cache/torch/hub/checkpoints/) \
             or its conversion by `thorax convert inception`"
        );
    };
    let embedder = InceptionEmbedder::load(weights, device)
        .with_context(|| format!("loading the FID Inception-v3 weights {}", weights.display()))?;
    if !embedder.is_published_weights() {
        eprintln!(
            "warning: {} does not come from pytorch-fid's {PUBLISHED_WEIGHTS_FILE} (the source checkpoint's SHA-256 \
             does not start with {PUBLISHED_SHA256_PREFIX}); these FID values are not comparable with published ones",
            weights.display()
        );
    }
    run_with_embedding(cmd, &embedder, "FID", &embedder.model_name, &embedder.model_sha256)
}

/// Runs a metrics subcommand; `features` serves folder inputs.
pub fn run_with_features(cmd: MetricsCommand, features: Option<FeatureSource<'_>>) -> anyhow::Result<()> {
    match cmd {
        MetricsCommand::Fid { real, fake, json, bootstrap, seed, .. } => {
            let Some(source) = features else {
                bail!("`metrics fid` needs the classifier's feature extractor; none was given");
            };
            let real_features = features_from_folder(&real, source.extract)?;
            let fake_features = features_from_folder(&fake, source.extract)?;
            let fd = frechet_distance(&real_features, &fake_features).context("computing the Frechet distance")?;
            let ci = fd_interval(&real_features, &fake_features, bootstrap, seed)?;
            if json {
                let mut value = serde_json::to_value(&fd)?;
                if let Value::Object(map) = &mut value {
                    map.insert("bootstrap".into(), serde_json::to_value(&ci)?);
                    map.insert("metric".into(), json!(source.metric_label));
                    map.insert("model".into(), json!(source.model_name));
                    map.insert("model_sha256".into(), json!(source.model_sha256));
                    map.insert("real".into(), json!(real.display().to_string()));
                    map.insert("fake".into(), json!(fake.display().to_string()));
                    map.insert("sample_size_caution".into(), json!(fd.sample_size_caution()));
                }
                println!("{value}");
            } else {
                println!(
                    "{} = {}  (mean term {}, covariance term {}; N = {} real vs {} fake, D = {}; model {} {})",
                    source.metric_label,
                    six_places(fd.value),
                    six_places(fd.mean_term),
                    six_places(fd.covariance_term),
                    fd.count_a,
                    fd.count_b,
                    fd.dim,
                    source.model_name,
                    source.model_sha256.get(..12).unwrap_or(source.model_sha256)
                );
                print_fd_interval(ci.as_ref());
                print_sample_size_caution(&fd);
            }
            Ok(())
        }
        MetricsCommand::Msssim { a, b, compat, data_range, json } => run_msssim(&a, &b, compat, data_range, json),
        MetricsCommand::Fd { a, b, json, bootstrap, seed } => {
            let fa = load_features(&a)?;
            let fb = load_features(&b)?;
            let fd = frechet_distance(&fa, &fb).with_context(|| {
                format!(
                    "Frechet distance of {} ({} rows) and {} ({} rows)",
                    a.display(),
                    fa.rows(),
                    b.display(),
                    fb.rows()
                )
            })?;
            let ci = fd_interval(&fa, &fb, bootstrap, seed)?;
            if json {
                let mut value = serde_json::to_value(&fd)?;
                if let (Value::Object(map), Some(ci)) = (&mut value, &ci) {
                    map.insert("bootstrap".into(), serde_json::to_value(ci)?);
                }
                println!("{value}");
            } else {
                println!(
                    "FD = {}  (mean term {}, covariance term {}; N = {} vs {}, D = {})",
                    six_places(fd.value),
                    six_places(fd.mean_term),
                    six_places(fd.covariance_term),
                    fd.count_a,
                    fd.count_b,
                    fd.dim
                );
                print_fd_interval(ci.as_ref());
                print_sample_size_caution(&fd);
            }
            Ok(())
        }
        MetricsCommand::Kid { real_npy, fake_npy, real, fake, subsets, subset_size, seed, json, .. } => {
            let mut folder_source = None;
            let (real_features, fake_features) = match (real_npy, fake_npy, real, fake) {
                (Some(r), Some(f), None, None) => (load_features(&r)?, load_features(&f)?),
                (None, None, Some(r), Some(f)) => {
                    let Some(source @ FeatureSource { extract, .. }) = features else {
                        bail!(
                            "`--real`/`--fake` folders need the classifier's feature extractor, which this build does not \
                             provide; extract features to .npy and use `--real-npy`/`--fake-npy`"
                        );
                    };
                    folder_source = Some(source);
                    (features_from_folder(&r, extract)?, features_from_folder(&f, extract)?)
                }
                _ => bail!("give either `--real-npy A.npy --fake-npy B.npy` or `--real DIR --fake DIR`"),
            };
            let options = KidOptions { subsets, subset_size, seed };
            let kid = kernel_inception_distance(&real_features, &fake_features, options).context("computing KID")?;
            if json {
                let mut value = serde_json::to_value(&kid)?;
                if let Value::Object(map) = &mut value {
                    map.remove("per_subset");
                    map.insert("subsets".into(), json!(subsets));
                    map.insert("count_real".into(), json!(real_features.rows()));
                    map.insert("count_fake".into(), json!(fake_features.rows()));
                    let caution = spread_caution(kid.subset_size, real_features.rows(), fake_features.rows());
                    map.insert("spread_caution".into(), json!(caution));
                    if let Some(source) = folder_source {
                        map.insert("model".into(), json!(source.model_name));
                        map.insert("model_sha256".into(), json!(source.model_sha256));
                    }
                }
                println!("{value}");
            } else {
                println!(
                    "KID = {:.6} +- {:.6}  ({} subsets of {}, seed {}; N = {} vs {})",
                    kid.mean,
                    kid.std,
                    subsets,
                    kid.subset_size,
                    seed,
                    real_features.rows(),
                    fake_features.rows()
                );
                // Stderr, like the FD caution: scripts reading stdout see the same line as before.
                if let Some(caution) = spread_caution(kid.subset_size, real_features.rows(), fake_features.rows()) {
                    eprintln!("caution: {caution}");
                }
            }
            Ok(())
        }
        MetricsCommand::Roc { scores, truth, bootstrap, seed, protocol, sample_size, json } => {
            run_roc(&scores, &truth, bootstrap, seed, protocol, sample_size, json)
        }
    }
}

/// The bootstrap interval of the distance, when `resamples` > 0.
fn fd_interval(
    a: &FeatureMatrix,
    b: &FeatureMatrix,
    resamples: usize,
    seed: u64,
) -> anyhow::Result<Option<FdBootstrap>> {
    if resamples == 0 {
        return Ok(None);
    }
    let ci = frechet_distance_bootstrap(a, b, resamples, 0.95, seed, &mut |_| true)
        .context("bootstrapping the Frechet distance")?;
    Ok(Some(ci))
}

fn print_fd_interval(ci: Option<&FdBootstrap>) {
    if let Some(ci) = ci {
        println!(
            "  95% CI {:.6} - {:.6}  (value +- 1.96 bootstrap SE {:.6}; {} resamples of N = {} and {}, seed {}; \
             resampled values were {:+.6} higher on average)",
            ci.lower, ci.upper, ci.standard_error, ci.resamples, ci.count_a, ci.count_b, ci.seed, ci.resample_bias
        );
    }
}

/// Prints the few-images caution to stderr, where it does not disturb a script reading the value line.
fn print_sample_size_caution(fd: &crate::metrics::fid::FrechetDistance) {
    if let Some(caution) = fd.sample_size_caution() {
        eprintln!("  caution: {caution}");
    }
}

/// Extracts features of every image in `folder` (sorted by name) through `extract`.
pub fn features_from_folder(folder: &Path, extract: FeatureExtractor<'_>) -> anyhow::Result<FeatureMatrix> {
    let files = image_files_in(folder).with_context(|| format!("reading folder {}", folder.display()))?;
    if files.is_empty() {
        bail!("no images (png, jpg, jpeg, tif, tiff, dcm) in {}", folder.display());
    }
    let rows = extract(&files).with_context(|| format!("extracting features of {}", folder.display()))?;
    FeatureMatrix::from_rows(&rows).with_context(|| format!("features of {}", folder.display()))
}

/// `value` to six decimals, with a rounding residue below zero shown as 0.000000, not -0.000000.
fn six_places(value: f64) -> String {
    crate::metrics::decimals::fixed_decimals(value, 6)
}

/// A feature matrix `.npy`; float64 values keep float64 (FD and KID compute in f64, and a float32 copy of features
/// with a large offset moved FD by 7.5e-3 relative), float32 and integer values take float32.
fn load_features(path: &Path) -> anyhow::Result<FeatureMatrix> {
    let array = read_npy(path)?;
    let [rows, cols] = array.shape[..] else {
        bail!("{}: expected a 2-D feature matrix [N, D], found shape {:?}", path.display(), array.shape);
    };
    FeatureMatrix::new_f64(array.values, rows, cols).with_context(|| format!("feature matrix {}", path.display()))
}

/// Image files (png, jpg, jpeg, tif, tiff) directly in `folder`, sorted by name.
pub fn image_files(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading folder {}", folder.display()))? {
        let path = entry?.path();
        let is_image = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "tif" | "tiff" | "dcm")
        });
        if path.is_file() && is_image {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A decoded gray image and its natural data range (2^bits - 1).
pub fn load_gray(path: &Path) -> anyhow::Result<(GrayImage, f64)> {
    load_gray_scaled(path).map(|(image, scale)| (image, scale.data_range))
}

/// The natural data range of an image file and what it comes from, to name in a refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayScale {
    pub data_range: f64,
    /// "8-bit", "16-bit", "DICOM Bits Stored 12", ...
    pub depth: String,
}

impl GrayScale {
    fn bits(bits: u32) -> Self {
        Self { data_range: f64::from((1u32 << bits) - 1), depth: format!("{bits}-bit") }
    }
}

/// [`load_gray`] with what its data range comes from. DICOM values are those after the modality rescale, with the
/// range 2^BitsStored - 1 (times |slope|): the stored scale, the same for every image of a detector, so an image and
/// a brighter copy of it differ (their own min..max made them identical) and two 12-bit images are comparable.
pub fn load_gray_scaled(path: &Path) -> anyhow::Result<(GrayImage, GrayScale)> {
    let is_dicom = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("dcm"));
    if is_dicom {
        let bytes = std::fs::read(path).with_context(|| format!("reading DICOM file {}", path.display()))?;
        let decoded = crate::imaging::decode_dicom_values(&bytes, &path.display().to_string())?;
        let (lo, hi, scale) = dicom_value_range(&decoded);
        let mut pixels = decoded.pixels;
        if decoded.photometric == crate::imaging::dicom::Photometric::Monochrome1 {
            // Mirrored within the fixed range of the stored values (not the image's own), so two MONOCHROME1 files,
            // or one against a MONOCHROME2 file, stay on one scale.
            for value in &mut pixels {
                *value = (lo + hi - f64::from(*value)) as f32;
            }
        }
        let gray = GrayImage::new(decoded.width as usize, decoded.height as usize, pixels)
            .with_context(|| format!("pixels of {}", path.display()))?;
        return Ok((gray, scale));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading image {}", path.display()))?;
    if let Some(reason) = crate::imaging::png_palette::damaged_palette(&bytes) {
        bail!("decoding image {}: {reason}", path.display());
    }
    let decoded = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(anyhow::Error::from)
        .and_then(|reader| Ok(reader.decode()?))
        .with_context(|| format!("decoding image {}", path.display()))?;
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    match decoded {
        image::DynamicImage::ImageLuma8(img) => Ok((GrayImage::from_u8(w, h, img.as_raw())?, GrayScale::bits(8))),
        image::DynamicImage::ImageLuma16(img) => Ok((GrayImage::from_u16(w, h, img.as_raw())?, GrayScale::bits(16))),
        // A gray palette (decoded as RGB) or equal RGB channels is a gray image in colour clothing.
        image::DynamicImage::ImageRgb8(_)
        | image::DynamicImage::ImageRgba8(_)
        | image::DynamicImage::ImageLumaA8(_) => {
            let channels = usize::from(decoded.color().channel_count());
            let gray = equal_channels_to_gray(decoded.as_bytes(), channels, w, u8::MAX)
                .with_context(|| format!("{} is not a gray image", path.display()))?;
            Ok((GrayImage::from_u8(w, h, &gray)?, GrayScale::bits(8)))
        }
        image::DynamicImage::ImageRgb16(_)
        | image::DynamicImage::ImageRgba16(_)
        | image::DynamicImage::ImageLumaA16(_) => {
            let channels = usize::from(decoded.color().channel_count());
            let samples = decoded.as_flat_samples_u16().map(|s| s.samples).unwrap_or_default();
            let gray = equal_channels_to_gray(samples, channels, w, u16::MAX)
                .with_context(|| format!("{} is not a gray image", path.display()))?;
            Ok((GrayImage::from_u16(w, h, &gray)?, GrayScale::bits(16)))
        }
        other => {
            bail!("{} is {:?}, not 8- or 16-bit grayscale; convert it to gray first", path.display(), other.color())
        }
    }
}

/// The lowest and highest value the stored bits can take after the modality LUT, and the data range they span.
fn dicom_value_range(image: &crate::imaging::dicom::DicomImage) -> (f64, f64, GrayScale) {
    use crate::imaging::dicom::ModalityLut;
    let (lo, hi) = image.summary.modality_value_range();
    let depth = match image.summary.modality_lut {
        ModalityLut::Rescale { slope: 1.0, .. } => format!("DICOM Bits Stored {}", image.bits_stored),
        ModalityLut::Rescale { slope, .. } => {
            format!("DICOM Bits Stored {} with Rescale Slope {slope}", image.bits_stored)
        }
        // A Modality LUT Sequence outputs values of its entry width, whatever was stored.
        ModalityLut::LutSequence { bits_per_entry, .. } => {
            format!("DICOM Modality LUT of {bits_per_entry}-bit entries")
        }
    };
    (lo, hi, GrayScale { data_range: (hi - lo).max(f64::MIN_POSITIVE), depth })
}

/// Images of two folders paired by file name, and how many of each had no partner.
struct NamePairs {
    pairs: Vec<(PathBuf, PathBuf)>,
    only_in_a: usize,
    only_in_b: usize,
}

fn pair_by_file_name(a: &Path, b: &Path) -> anyhow::Result<NamePairs> {
    let in_b: HashMap<_, _> =
        image_files(b)?.into_iter().filter_map(|p| p.file_name().map(|n| (n.to_owned(), p.clone()))).collect();
    let files_a = image_files(a)?;
    let pairs: Vec<_> = files_a
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| in_b.get(n)).map(|q| (p.clone(), q.clone())))
        .collect();
    Ok(NamePairs { only_in_a: files_a.len() - pairs.len(), only_in_b: in_b.len() - pairs.len(), pairs })
}

fn run_msssim(
    a: &Path,
    b: &Path,
    compat: Option<MsSsimCompat>,
    data_range: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    let pairs: Vec<(PathBuf, PathBuf)> = if a.is_dir() && b.is_dir() {
        let paired = pair_by_file_name(a, b)?;
        if paired.pairs.is_empty() {
            bail!("no file names in common between {} and {}", a.display(), b.display());
        }
        // The mean is over the pairs only; say what it leaves out.
        for (side, folder, count) in [("first", a, paired.only_in_a), ("second", b, paired.only_in_b)] {
            if count > 0 {
                eprintln!(
                    "note: {count} image(s) of the {side} folder {} have no file of the same name in the other and \
                     are left out",
                    folder.display()
                );
            }
        }
        paired.pairs
    } else if a.is_file() && b.is_file() {
        vec![(a.to_path_buf(), b.to_path_buf())]
    } else {
        bail!("give two image files or two folders ({} and {})", a.display(), b.display());
    };
    let mut results = Vec::with_capacity(pairs.len());
    for (pa, pb) in &pairs {
        let (ia, scale_a) = load_gray_scaled(pa)?;
        let (ib, scale_b) = load_gray_scaled(pb)?;
        if (ia.width_px(), ia.height_px()) != (ib.width_px(), ib.height_px()) {
            bail!(
                "image sizes differ: {} is {}x{}, {} is {}x{}",
                pa.display(),
                ia.width_px(),
                ia.height_px(),
                pb.display(),
                ib.width_px(),
                ib.height_px()
            );
        }
        if compat.is_none() && data_range.is_none() && scale_a.data_range != scale_b.data_range {
            // MS-SSIM compares raw values: an 8-bit image against a 16-bit copy of itself would score about 0.1.
            bail!(
                "{} is {} (data range {}) and {} is {} (data range {}): different bit depths; save both at one \
                 bit depth, or pass --data-range for values that are on one scale",
                pa.display(),
                scale_a.depth,
                scale_a.data_range,
                pb.display(),
                scale_b.depth,
                scale_b.data_range
            );
        }
        let mode = match compat {
            Some(MsSsimCompat::ThoraxGan) => MsSsimMode::ThoraxGanCompat,
            None => {
                MsSsimMode::Standard { data_range: data_range.unwrap_or(scale_a.data_range.max(scale_b.data_range)) }
            }
        };
        let value =
            ms_ssim(&ia, &ib, mode).with_context(|| format!("MS-SSIM of {} and {}", pa.display(), pb.display()))?;
        results.push((pa, pb, value));
    }
    let mean = results.iter().map(|(_, _, r)| r.value).sum::<f64>() / results.len() as f64;
    let mode_name = if compat.is_some() { "thorax-gan" } else { "standard" };
    if json {
        let pairs_json: Vec<Value> = results
            .iter()
            .map(|(pa, pb, r)| {
                json!({
                    "a": pa.display().to_string(),
                    "b": pb.display().to_string(),
                    "ms_ssim": r.value,
                    "ssim_per_scale": r.ssim_per_scale,
                    "cs_per_scale": r.cs_per_scale,
                    "data_range_per_scale": r.data_range_per_scale,
                })
            })
            .collect();
        println!("{}", json!({"mode": mode_name, "pairs": pairs_json, "count": results.len(), "mean": mean}));
    } else {
        for (pa, pb, r) in &results {
            println!("{:.6}  {}  {}", r.value, pa.display(), pb.display());
        }
        if results.len() > 1 {
            println!("mean MS-SSIM ({mode_name}) = {mean:.6} over {} pairs", results.len());
        }
    }
    Ok(())
}

/// A CSV table: header names and rows keyed by the first (id) column.
struct Table {
    columns: Vec<String>,
    rows: BTreeMap<String, Vec<String>>,
}

fn read_csv(path: &Path) -> anyhow::Result<Table> {
    let bytes = std::fs::read(path).with_context(|| format!("reading CSV {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{} line {line}: not UTF-8 text (saved in another encoding, e.g. Latin-1?); save the CSV as UTF-8",
            path.display()
        )
    })?;
    let split =
        |line: &str| -> Vec<String> { line.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect() };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().with_context(|| format!("{} is empty", path.display()))?;
    let columns = split(header);
    if columns.len() < 2 {
        bail!("{}: needs an id column and at least one label column", path.display());
    }
    let mut rows = BTreeMap::new();
    for (number, line) in lines.enumerate() {
        let fields = split(line);
        if fields.len() != columns.len() {
            bail!("{} line {}: {} fields, header has {}", path.display(), number + 2, fields.len(), columns.len());
        }
        let id = fields[0].clone();
        if rows.insert(id.clone(), fields).is_some() {
            bail!("{}: id {id:?} appears twice", path.display());
        }
    }
    Ok(Table { columns, rows })
}

/// One truth label's cases for ROC analysis: 0/1 truth and the score of every case (ids in sorted order).
#[derive(Debug, Clone, PartialEq)]
pub struct RocLabelInput {
    pub label: String,
    pub truth: Vec<bool>,
    pub scores: Vec<f64>,
}

/// What [`read_roc_inputs`] paired, and what it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct RocInputs {
    pub labels: Vec<RocLabelInput>,
    /// Ids of the scores CSV that the truth CSV does not list. Scoring more images than the truth covers is a normal
    /// subset analysis, but the cases left out must be reported, not dropped unseen.
    pub scores_without_truth: Vec<String>,
}

impl RocInputs {
    /// One line saying which scores were left out, when any were.
    pub fn left_out_note(&self, scores_path: &Path, truth_path: &Path) -> Option<String> {
        let first = self.scores_without_truth.first()?;
        Some(format!(
            "{} ids of {} have no truth in {} and are left out (first: {first:?})",
            self.scores_without_truth.len(),
            scores_path.display(),
            truth_path.display()
        ))
    }
}

/// Reads a scores CSV and a truth CSV (the inputs of `thorax metrics roc`) and pairs them per truth label.
pub fn read_roc_inputs(scores_path: &Path, truth_path: &Path) -> anyhow::Result<RocInputs> {
    let scores = read_csv(scores_path)?;
    let truth = read_csv(truth_path)?;
    let missing: Vec<&String> = truth.rows.keys().filter(|id| !scores.rows.contains_key(*id)).collect();
    if let Some(first) = missing.first() {
        bail!(
            "{} ids of {} have no scores in {} (first: {first:?})",
            missing.len(),
            truth_path.display(),
            scores_path.display()
        );
    }
    let scores_without_truth = scores.rows.keys().filter(|id| !truth.rows.contains_key(*id)).cloned().collect();
    let mut labels = Vec::new();
    for (truth_col, label) in truth.columns.iter().enumerate().skip(1) {
        let score_col = scores
            .columns
            .iter()
            .position(|c| c == label || c.strip_prefix("prob_") == Some(label.as_str()))
            .filter(|&c| c > 0)
            .with_context(|| {
                format!("label {label:?} of {} has no column in {}", truth_path.display(), scores_path.display())
            })?;
        let mut y = Vec::with_capacity(truth.rows.len());
        let mut s = Vec::with_capacity(truth.rows.len());
        for (id, row) in &truth.rows {
            let t = match row[truth_col].as_str() {
                "1" | "1.0" | "true" | "True" => true,
                "0" | "0.0" | "false" | "False" => false,
                other => bail!("{}: id {id:?}, label {label:?}: truth {other:?} is not 0 or 1", truth_path.display()),
            };
            let score_text = scores.rows.get(id).map(|r| r[score_col].as_str()).unwrap_or_default();
            let score: f64 = score_text.parse().with_context(|| {
                format!("{}: id {id:?}, label {label:?}: score {score_text:?}", scores_path.display())
            })?;
            if !score.is_finite() {
                bail!(
                    "{}: id {id:?}, label {label:?}: score {score_text:?} is not a finite number",
                    scores_path.display()
                );
            }
            y.push(t);
            s.push(score);
        }
        labels.push(RocLabelInput { label: label.clone(), truth: y, scores: s });
    }
    Ok(RocInputs { labels, scores_without_truth })
}

fn run_roc(
    scores_path: &Path,
    truth_path: &Path,
    bootstrap: Option<usize>,
    seed: u64,
    protocol: RocProtocol,
    sample_size: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let inputs = read_roc_inputs(scores_path, truth_path)?;
    if let Some(note) = inputs.left_out_note(scores_path, truth_path) {
        eprintln!("note: {note}");
    }
    let labels: Vec<Value> = inputs
        .labels
        .iter()
        .map(|input| roc_label(&input.label, &input.truth, &input.scores, bootstrap, seed, protocol, sample_size))
        .collect();
    if json {
        println!("{}", json!({"labels": labels, "seed": seed, "protocol": protocol_name(protocol)}));
    } else {
        for entry in &labels {
            println!("{}", roc_text_line(entry));
        }
    }
    Ok(())
}

/// The name the CLI takes for `protocol` (`percentile`, `thorax-gan`), which the JSON repeats.
fn protocol_name(protocol: RocProtocol) -> String {
    use clap::ValueEnum as _;
    protocol.to_possible_value().map_or_else(|| format!("{protocol:?}"), |v| v.get_name().to_owned())
}

/// Resamples skipped for holding one class, as a note after an interval ("" when none were).
fn skipped_note(result: &Value) -> String {
    match (result["skipped_one_class"].as_u64(), result["resamples"].as_u64()) {
        (Some(skipped), Some(resamples)) if skipped > 0 => {
            format!(" ({skipped} of {resamples} resamples skipped: one class)")
        }
        _ => String::new(),
    }
}

/// One label's text line of `metrics roc`.
fn roc_text_line(entry: &Value) -> String {
    let name = entry["label"].as_str().unwrap_or_default();
    match entry["auc"].as_f64() {
        Some(auc) => {
            let mut line = format!("{name:<22} AUC {auc:.4}  n={}", entry["n"]);
            if let (Some(lo), Some(hi)) = (entry["delong"]["ci_low"].as_f64(), entry["delong"]["ci_high"].as_f64()) {
                line += &format!("  DeLong 95% [{lo:.4}, {hi:.4}]");
            } else if let Some(reason) = entry["delong_unavailable"].as_str() {
                line += &format!("  DeLong: {reason}");
            }
            if let (Some(lo), Some(hi)) =
                (entry["bootstrap"]["ci_low"].as_f64(), entry["bootstrap"]["ci_high"].as_f64())
            {
                line += &format!("  bootstrap 95% [{lo:.4}, {hi:.4}]{}", skipped_note(&entry["bootstrap"]));
            }
            // A resampling that could not be done says why instead of printing NaNs.
            for (key, what) in [("bootstrap", "bootstrap"), ("thorax_gan", "thorax-gan protocol")] {
                if let Some(error) = entry[key]["error"].as_str() {
                    line += &format!("  {what}: {error}");
                }
            }
            if let Some(p) = entry.get("thorax_gan").filter(|p| !p.is_null() && p.get("error").is_none()) {
                line += &format!(
                    "  mean {:.4} +- {:.4}, cutoff {:.4}, sens {:.3}, spec {:.3}",
                    p["auc"]["mean"].as_f64().unwrap_or(f64::NAN),
                    p["auc"]["std"].as_f64().unwrap_or(f64::NAN),
                    p["cutoff"].as_f64().unwrap_or(f64::NAN),
                    p["sensitivity"]["mean"].as_f64().unwrap_or(f64::NAN),
                    p["specificity"]["mean"].as_f64().unwrap_or(f64::NAN)
                );
                line += &skipped_note(p);
            }
            line
        }
        None => format!("{name:<22} {}", entry["error"].as_str().unwrap_or("undefined")),
    }
}

/// One label's JSON entry; a label whose statistics are undefined (e.g. one class) carries an `error` instead.
fn roc_label(
    label: &str,
    truth: &[bool],
    scores: &[f64],
    bootstrap: Option<usize>,
    seed: u64,
    protocol: RocProtocol,
    sample_size: Option<usize>,
) -> Value {
    let positives = truth.iter().filter(|&&t| t).count();
    let mut entry =
        json!({"label": label, "n": truth.len(), "positives": positives, "negatives": truth.len() - positives});
    let auc = match roc_auc(truth, scores) {
        Ok(auc) => auc,
        Err(e) => {
            entry["auc"] = Value::Null;
            entry["error"] = json!(e.to_string());
            return entry;
        }
    };
    entry["auc"] = json!(auc);
    // Null with the reason beside it, so a reader of the JSON knows why there is no interval.
    entry["delong"] = match delong(truth, scores, 0.95) {
        Ok(d) => json!(d),
        Err(e) => {
            entry["delong_unavailable"] = json!(e.to_string());
            Value::Null
        }
    };
    match protocol {
        RocProtocol::Percentile => {
            let resamples = bootstrap.unwrap_or(0);
            entry["bootstrap"] = if resamples > 0 {
                bootstrap_auc(truth, scores, resamples, 0.95, seed)
                    .map_or_else(|e| json!({"error": e.to_string()}), |b| json!(b))
            } else {
                Value::Null
            };
        }
        RocProtocol::ThoraxGan => {
            let resamples = bootstrap.unwrap_or(10_000);
            entry["thorax_gan"] = thorax_gan_protocol(truth, scores, resamples, sample_size, seed)
                .map_or_else(|e| json!({"error": e.to_string()}), |p| json!(p));
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn one_positive_says_why_delong_is_missing_and_counts_skipped_resamples() {
        let truth = [true, false, false, false, false, false];
        let scores = [0.9, 0.1, 0.4, 0.3, 0.95, 0.2];
        let entry = roc_label("Mass", &truth, &scores, Some(200), 3, RocProtocol::Percentile, None);
        assert!(entry["delong"].is_null());
        let reason = entry["delong_unavailable"].as_str().unwrap();
        assert!(reason.contains("DeLong") && reason.contains("has 1"), "{reason}");
        let skipped = entry["bootstrap"]["skipped_one_class"].as_u64().unwrap();
        assert!(skipped > 0, "{entry}");
        let line = roc_text_line(&entry);
        assert!(line.contains(&format!("DeLong: {reason}")), "{line}");
        assert!(line.contains(&format!("({skipped} of 200 resamples skipped: one class)")), "{line}");
        // Both classes twice over: an interval and no reason.
        let two = roc_label(
            "Mass",
            &[true, true, false, false],
            &[0.9, 0.3, 0.4, 0.1],
            None,
            0,
            RocProtocol::Percentile,
            None,
        );
        assert!(two["delong"]["ci_low"].is_number() && two.get("delong_unavailable").is_none(), "{two}");
    }

    #[test]
    fn the_json_protocol_is_spelled_as_the_cli_takes_it() {
        assert_eq!(protocol_name(RocProtocol::Percentile), "percentile");
        assert_eq!(protocol_name(RocProtocol::ThoraxGan), "thorax-gan");
    }

    #[test]
    fn six_places_shows_no_negative_zero() {
        assert_eq!(six_places(-1e-9), "0.000000");
        assert_eq!(six_places(-2e-6), "-0.000002");
        assert_eq!(six_places(12.3456789), "12.345679");
    }

    #[test]
    fn a_csv_in_another_encoding_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.csv");
        std::fs::write(&path, b"id,Mass\na,0.5\nb\xe9,0.2\n").unwrap();
        let error = read_csv(&path).err().unwrap().to_string();
        assert!(error.contains("line 3: not UTF-8"), "{error}");
    }

    #[test]
    fn folders_pair_by_file_name_and_count_what_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for (folder, names) in [(&a, ["1.png", "2.png", "3.png"]), (&b, ["2.png", "3.png", "4.png"])] {
            std::fs::create_dir(folder).unwrap();
            for name in names {
                write(folder, name, "x");
            }
        }
        write(&a, "notes.txt", "not an image");
        let paired = pair_by_file_name(&a, &b).unwrap();
        assert_eq!(paired.pairs, vec![(a.join("2.png"), b.join("2.png")), (a.join("3.png"), b.join("3.png"))]);
        assert_eq!((paired.only_in_a, paired.only_in_b), (1, 1));
    }

    #[test]
    fn roc_inputs_report_scores_left_out_and_refuse_non_finite_scores() {
        let dir = tempfile::tempdir().unwrap();
        let truth = write(dir.path(), "truth.csv", "id,Effusion\na,1\nb,0\nc,1\n");
        let scores = write(dir.path(), "scores.csv", "id,prob_Effusion\na,0.9\nb,0.2\nc,0.7\nd,0.5\n");
        let inputs = read_roc_inputs(&scores, &truth).unwrap();
        assert_eq!(inputs.labels[0].scores, vec![0.9, 0.2, 0.7]);
        assert_eq!(inputs.scores_without_truth, vec!["d".to_owned()]);
        let note = inputs.left_out_note(&scores, &truth).unwrap();
        assert!(note.starts_with("1 ids of") && note.contains("\"d\""), "{note}");

        let nan = write(dir.path(), "nan.csv", "id,prob_Effusion\na,0.9\nb,NaN\nc,0.7\n");
        let error = format!("{:#}", read_roc_inputs(&nan, &truth).unwrap_err());
        assert!(error.contains("id \"b\"") && error.contains("not a finite number"), "{error}");
    }

    #[test]
    fn gray_in_rgb_clothing_is_read_as_gray_and_colour_is_refused_with_its_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let gray_rgb = dir.path().join("gray-rgb.png");
        image::RgbImage::from_raw(2, 1, vec![5, 5, 5, 250, 250, 250]).unwrap().save(&gray_rgb).unwrap();
        let (image, range) = load_gray(&gray_rgb).unwrap();
        assert_eq!(range, 255.0);
        assert_eq!(image, GrayImage::from_u8(2, 1, &[5, 250]).unwrap());

        let colour = dir.path().join("colour.png");
        image::RgbImage::from_raw(2, 1, vec![5, 5, 5, 250, 0, 250]).unwrap().save(&colour).unwrap();
        let error = format!("{:#}", load_gray(&colour).unwrap_err());
        assert!(error.contains("colour.png") && error.contains("pixel (1, 0)"), "{error}");

        let see_through = dir.path().join("alpha16.png");
        image::ImageBuffer::<image::Rgba<u16>, _>::from_raw(1, 1, vec![9u16, 9, 9, 100])
            .unwrap()
            .save(&see_through)
            .unwrap();
        let error = format!("{:#}", load_gray(&see_through).unwrap_err());
        assert!(error.contains("transparent"), "{error}");
    }
}
