//! `thorax bench [generator|classifier|cyclegan|inception|msssim|all]`: inference timings of the networks at their real sizes
//! (random weights, since speed does not depend on them) or of a given weights file, for the side-by-side with
//! PyTorch in `tools/bench_pytorch.py` and BENCHMARKS.md.
//!
//! Each workload runs once to warm up (allocations, page faults, lazy initialisation), then `--iters` timed runs;
//! the median and the minimum are reported with images per second at the median.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use candle_core::{DType, Device, Tensor};
use serde_json::{Value, json};

use crate::metrics::msssim::{GrayImage, MsSsimMode, ms_ssim};
use crate::models::card::{ModelCard, ModelKind, Provenance};
use crate::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use crate::models::densenet::{DenseNet121, DenseNetConfig, INPUT_SIZE_PX, SeededRng};
use crate::models::fast_conv;
use crate::models::inception::{FID_INPUT_SIZE_PX, FidInceptionV3, formula_weights};
use crate::models::labels::NIH_CLASSIFIER_LABELS;
use crate::models::op_profile;
use crate::models::progan::{ProganArchitecture, ProganGenerator, latents_from_seed, progan_card};
use crate::train::step_profile::PhaseTime;

/// Side of the MS-SSIM benchmark images, in pixels (the generator's output size).
const MSSSIM_SIDE_PX: usize = 256;
/// Side of the CycleGAN benchmark input, in pixels.
const CYCLEGAN_SIDE_PX: usize = 256;

/// Which workload to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// The ProGAN generator (default: 256 px, 512 latents, 14 labels, fmap_max 512, ~23 M parameters).
    Generator,
    /// DenseNet-121 classifier on 3x224x224 input (default: full width, 14 labels).
    Classifier,
    /// CycleGAN resnet_9blocks generator, ngf 64, one channel, 256x256 input.
    Cyclegan,
    /// pytorch-fid's FID Inception-v3 to pool3 on 3x299x299 input (formula weights unless `--weights`).
    Inception,
    /// MS-SSIM of two 256x256 gray images (always on the CPU).
    Msssim,
    /// All of the above.
    All,
}

/// Which convolution implementation the networks use on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvPath {
    /// `models::fast_conv` (im2col + gemm, Winograd F(2x2, 3x3) for large 3x3 layers, fused epilogues).
    Fast,
    /// `models::fast_conv` with Winograd off (im2col + gemm for every layer).
    FastIm2col,
    /// candle's own conv2d (the path before `fast_conv`).
    Candle,
}

/// `thorax bench` arguments (the device comes from the command's `--device`).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to time.
    #[arg(value_enum, default_value_t = Workload::All)]
    pub workload: Workload,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed runs after the warm-up.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Convolution implementation on the CPU.
    #[arg(long, value_enum, default_value_t = ConvPath::Fast)]
    pub conv: ConvPath,
    /// Time this weights file (safetensors with a model card) instead of the full-size random architecture; its
    /// kind picks the workload (e.g. the embedded placeholders in assets/models/).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// On a GPU, also run each network on the CPU (float32, same weights and input) and report the largest
    /// difference of the outputs.
    #[arg(long)]
    pub parity: bool,
    /// After the timed runs, profile `--iters` more passes by kind of operation (convolution, BatchNorm + ReLU,
    /// concatenation, ...), waiting for the device after each; the shares show where the time goes.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Timings of one workload.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub workload: &'static str,
    /// What ran: architecture or weights file.
    pub model: String,
    pub batch: usize,
    pub iters: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub images_per_s: f64,
    /// With `--parity` on a GPU: how far its output is from the CPU's.
    pub parity: Option<ParityError>,
    /// With `--profile`: time per pass by kind of operation.
    pub profile: Option<Vec<PhaseTime>>,
}

/// How far a device's output is from the CPU reference.
#[derive(Clone, Copy, Debug)]
pub struct ParityError {
    /// Largest |device - cpu| over all output values.
    pub max_abs: f64,
    /// `max_abs` over the largest |cpu| value (the tolerance: 1e-3 for TF32, 1e-2 for bf16).
    pub relative: f64,
}

impl BenchResult {
    fn to_json(&self) -> Value {
        json!({
            "workload": self.workload,
            "model": self.model,
            "batch": self.batch,
            "iters": self.iters,
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "images_per_s": self.images_per_s,
            "parity_max_abs": self.parity.map(|p| p.max_abs),
            "parity_relative": self.parity.map(|p| p.relative),
            "profile": self.profile,
        })
    }
}

/// Runs `thorax bench` on `device`.
pub fn run(args: &BenchArgs, device: &Device) -> anyhow::Result<()> {
    if args.batch == 0 || args.iters == 0 {
        bail!("--batch and --iters must be at least 1 (got {} and {})", args.batch, args.iters);
    }
    fast_conv::set_fast_path_enabled(args.conv != ConvPath::Candle);
    fast_conv::set_winograd_enabled(args.conv == ConvPath::Fast);
    let workloads: Vec<Workload> = match (&args.weights, args.workload) {
        (Some(path), asked) => {
            let (workload, kind) = workload_of_weights(path)?;
            if asked != Workload::All && asked != workload {
                bail!(
                    "--weights {} holds a {}, which the {} workload cannot time; leave the workload out (the file's \
                     kind picks it) or give a {} file",
                    path.display(),
                    kind.description(),
                    workload_name(asked),
                    workload_name(asked)
                );
            }
            vec![workload]
        }
        (None, Workload::All) => {
            vec![Workload::Generator, Workload::Classifier, Workload::Cyclegan, Workload::Inception, Workload::Msssim]
        }
        (None, one) => vec![one],
    };
    let mut results = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let result = match workload {
            Workload::Generator => bench_generator(args, device),
            Workload::Classifier => bench_classifier(args, device),
            Workload::Cyclegan => bench_cyclegan(args, device),
            Workload::Inception => bench_inception(args, device),
            Workload::Msssim => bench_msssim(args),
            Workload::All => bail!("`all` is not a single workload"),
        }
        .with_context(|| format!("benchmarking {workload:?}"))?;
        if !args.json {
            println!(
                "{:<11} {:<44} batch {:>3}: median {:>9.2} ms, min {:>9.2} ms, {:>8.2} images/s",
                result.workload, result.model, result.batch, result.median_ms, result.min_ms, result.images_per_s
            );
            if let Some(parity) = result.parity {
                println!(
                    "{:<11} parity against the CPU: max |diff| {:.3e}, relative {:.3e}",
                    "", parity.max_abs, parity.relative
                );
            }
            if let Some(profile) = &result.profile {
                print!("{}", profile_table(profile));
            }
        }
        results.push(result);
    }
    let threads = candle_core::utils::get_num_threads();
    let device_name = device_name(device);
    if args.json {
        let conv = match args.conv {
            ConvPath::Fast => "fast",
            ConvPath::FastIm2col => "fast-im2col",
            ConvPath::Candle => "candle",
        };
        let document = json!({
            "device": device_name,
            "tf32": tf32_enabled(device),
            "threads": threads,
            "conv": conv,
            "results": results.iter().map(BenchResult::to_json).collect::<Vec<_>>(),
        });
        println!("{document}");
    } else {
        let precision = if tf32_enabled(device) { ", TF32 matmuls" } else { "" };
        println!("device {device_name}{precision}, {threads} thread(s), conv path {:?}", args.conv);
    }
    Ok(())
}

/// Whether float32 matrix products on `device` may use TF32 (`thorax --tf32`; CUDA only).
fn tf32_enabled(device: &Device) -> bool {
    device.is_cuda() && candle_core::cuda::gemm_reduced_precision_f32()
}

fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".to_owned(),
        other => format!("{:?}", other.location()),
    }
}

/// The workload's name as typed on the command line.
fn workload_name(workload: Workload) -> String {
    clap::ValueEnum::to_possible_value(&workload).map_or_else(|| format!("{workload:?}"), |v| v.get_name().to_owned())
}

/// The workload a weights file's card describes, and the card's model kind.
fn workload_of_weights(path: &std::path::Path) -> anyhow::Result<(Workload, ModelKind)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let card = ModelCard::from_metadata(&metadata.metadata().clone().unwrap_or_default())
        .with_context(|| format!("reading the model card of {}", path.display()))?;
    let workload = match card.kind {
        ModelKind::ProganGenerator => Workload::Generator,
        ModelKind::Densenet121Classifier => Workload::Classifier,
        ModelKind::CycleganGenerator => Workload::Cyclegan,
        ModelKind::InceptionV3 => Workload::Inception,
    };
    Ok((workload, card.kind))
}

/// Times `forward` (which waits for the device) once for warm-up and `--iters` times; with `--profile`, then
/// profiles one more pass plus `--iters` counted ones.
fn time_runs(
    workload: &'static str,
    model: String,
    args: &BenchArgs,
    device: &Device,
    mut forward: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<BenchResult> {
    let (batch, iters) = (args.batch, args.iters);
    forward().context("warm-up run")?;
    let mut times_ms = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        forward()?;
        times_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times_ms.sort_by(f64::total_cmp);
    let median_ms = match times_ms.len() {
        0 => bail!("no timed runs"),
        n if n % 2 == 1 => times_ms[n / 2],
        n => 0.5 * (times_ms[n / 2 - 1] + times_ms[n / 2]),
    };
    let min_ms = times_ms.first().copied().unwrap_or(median_ms);
    Ok(BenchResult {
        workload,
        model,
        batch,
        iters,
        median_ms,
        min_ms,
        images_per_s: batch as f64 * 1e3 / median_ms,
        parity: None,
        profile: if args.profile { Some(profile_runs(device, iters, &mut forward)?) } else { None },
    })
}

/// Runs `forward` `iters + 1` times with this thread's [`op_profile`] on; the first pass is not counted.
fn profile_runs(
    device: &Device,
    iters: usize,
    forward: &mut impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<PhaseTime>> {
    op_profile::start(device);
    let passes = (0..=iters).try_for_each(|_| {
        op_profile::begin_pass()?;
        forward()?;
        op_profile::mark("rest (read-back, untagged ops)")?;
        op_profile::end_pass();
        anyhow::Ok(())
    });
    // Stopped on every path: a profile left on would slow this thread's later passes.
    let profile = op_profile::finish();
    passes.context("profiled run")?;
    Ok(profile.map(|p| p.report()).unwrap_or_default())
}

/// A profile as an aligned table, kinds by decreasing time.
fn profile_table(profile: &[PhaseTime]) -> String {
    let mut rows = profile.to_vec();
    rows.sort_by(|a, b| b.ms_per_step.total_cmp(&a.ms_per_step));
    let total: f64 = rows.iter().map(|r| r.ms_per_step).sum();
    let mut out = format!("{:<11} profile per pass, device synchronised after each kind of operation:\n", "");
    for row in rows {
        out.push_str(&format!(
            "{:<11}   {:<48} {:>9.3} ms {:>5.1}%\n",
            "",
            row.phase,
            row.ms_per_step,
            100.0 * row.share
        ));
    }
    out.push_str(&format!("{:<11}   {:<48} {:>9.3} ms\n", "", "total (slower than timed: synchronised)", total));
    out
}

/// Compares a device output with the CPU's (both brought to the host as float32).
fn parity_error(on_device: &Tensor, on_cpu: &Tensor) -> anyhow::Result<ParityError> {
    let device_values = on_device.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let cpu_values = on_cpu.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if device_values.len() != cpu_values.len() {
        bail!("the device output has {} values, the CPU's {}", device_values.len(), cpu_values.len());
    }
    let max_abs = device_values.iter().zip(&cpu_values).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
    let scale = cpu_values.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    Ok(ParityError { max_abs, relative: if scale > 0.0 { max_abs / scale } else { max_abs } })
}

/// With `--parity` on a GPU, runs `forward` on the GPU and the CPU and compares the outputs.
fn parity_if_asked(
    args: &BenchArgs,
    device: &Device,
    forward: impl Fn(&Device) -> anyhow::Result<Tensor>,
) -> anyhow::Result<Option<ParityError>> {
    if !args.parity || device.is_cpu() {
        return Ok(None);
    }
    let on_device = forward(device).context("parity run on the device")?;
    let on_cpu = forward(&Device::Cpu).context("parity run on the CPU")?;
    Ok(Some(parity_error(&on_device, &on_cpu)?))
}

/// Forces the computation to finish (CUDA runs asynchronously) by reading one value back.
fn finish(output: &Tensor) -> anyhow::Result<()> {
    output.flatten_all()?.narrow(0, 0, 1)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(())
}

fn bench_generator(args: &BenchArgs, device: &Device) -> anyhow::Result<BenchResult> {
    let make = |device: &Device| -> anyhow::Result<(ProganGenerator, String)> {
        Ok(match &args.weights {
            Some(path) => (ProganGenerator::load(path, device)?, path.display().to_string()),
            None => {
                let architecture = ProganArchitecture {
                    resolution_px: 256,
                    latent_size: 512,
                    label_size: NIH_CLASSIFIER_LABELS.len(),
                    channels: 1,
                    fmap_base: 8192.0,
                    fmap_decay: 1.0,
                    fmap_max: 512,
                };
                let labels = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
                let card = progan_card("bench", labels, &architecture, true, Provenance::default());
                let (generator, _) = ProganGenerator::random(card, device, 1)?;
                (generator, "ProGAN G_paper 256 px, fmap_max 512 (random)".to_owned())
            }
        })
    };
    // Inputs are made once per device, outside the timed runs.
    let inputs = |generator: &ProganGenerator, device: &Device| -> anyhow::Result<(Tensor, Tensor)> {
        let architecture = generator.architecture();
        let latents = latents_from_seed(1000, args.batch, architecture.latent_size);
        let latents = Tensor::from_vec(latents, (args.batch, architecture.latent_size), device)?;
        let labels = Tensor::zeros((args.batch, architecture.label_size), DType::F32, device)?;
        Ok((latents, labels))
    };
    let (generator, model) = make(device)?;
    let (latents, labels) = inputs(&generator, device)?;
    let mut result = time_runs("generator", model, args, device, || finish(&generator.forward(&latents, &labels)?))?;
    result.parity = parity_if_asked(args, device, |d| {
        let (generator, _) = make(d)?;
        let (latents, labels) = inputs(&generator, d)?;
        Ok(generator.forward(&latents, &labels)?)
    })?;
    Ok(result)
}

fn bench_classifier(args: &BenchArgs, device: &Device) -> anyhow::Result<BenchResult> {
    let make = |device: &Device| -> anyhow::Result<(DenseNet121, String)> {
        Ok(match &args.weights {
            Some(path) => (DenseNet121::load(path, device)?, path.display().to_string()),
            None => {
                let labels = NIH_CLASSIFIER_LABELS.iter().map(|l| (*l).to_owned()).collect();
                let card = DenseNetConfig::densenet121(NIH_CLASSIFIER_LABELS.len()).card(
                    "bench",
                    labels,
                    Provenance::default(),
                );
                (DenseNet121::random(&card, device, 1)?, "DenseNet-121 3x224x224, 14 labels (random)".to_owned())
            }
        })
    };
    let input = |net: &DenseNet121, device: &Device| -> anyhow::Result<Tensor> {
        let side = if net.card().resolution == 0 { INPUT_SIZE_PX } else { net.card().resolution };
        random_tensor(&[args.batch, 3, side, side], 7, device)
    };
    let run = |net: &DenseNet121, device: &Device| -> anyhow::Result<Tensor> { Ok(net.forward(&input(net, device)?)?) };
    let (net, model) = make(device)?;
    let x = input(&net, device)?;
    let mut result = time_runs("classifier", model, args, device, || finish(&net.forward(&x)?))?;
    result.parity = parity_if_asked(args, device, |d| run(&make(d)?.0, d))?;
    Ok(result)
}

fn bench_cyclegan(args: &BenchArgs, device: &Device) -> anyhow::Result<BenchResult> {
    let make = |device: &Device| -> anyhow::Result<(CycleGanGenerator, String)> {
        Ok(match &args.weights {
            Some(path) => (CycleGanGenerator::load(path, device)?, path.display().to_string()),
            None => {
                let config = CycleGanConfig {
                    ngf: 64,
                    n_blocks: 9,
                    input_nc: 1,
                    output_nc: 1,
                    use_dropout: false,
                    direction: Direction::AToB,
                };
                let card = config.card("bench", ["A", "B"], Provenance::default());
                (
                    CycleGanGenerator::random(&card, device, 1)?,
                    "CycleGAN resnet_9blocks ngf 64, 1 channel (random)".to_owned(),
                )
            }
        })
    };
    let input = |net: &CycleGanGenerator, device: &Device| -> anyhow::Result<Tensor> {
        let channels = net.config().input_nc;
        random_tensor(&[args.batch, channels, CYCLEGAN_SIDE_PX, CYCLEGAN_SIDE_PX], 9, device)
    };
    let run =
        |net: &CycleGanGenerator, device: &Device| -> anyhow::Result<Tensor> { Ok(net.forward(&input(net, device)?)?) };
    let (net, model) = make(device)?;
    let x = input(&net, device)?;
    let mut result = time_runs("cyclegan", model, args, device, || finish(&net.forward(&x)?))?;
    result.parity = parity_if_asked(args, device, |d| run(&make(d)?.0, d))?;
    Ok(result)
}

fn bench_inception(args: &BenchArgs, device: &Device) -> anyhow::Result<BenchResult> {
    let make = |device: &Device| -> anyhow::Result<(FidInceptionV3, String)> {
        Ok(match &args.weights {
            Some(path) => (FidInceptionV3::load(path, device)?, path.display().to_string()),
            None => (
                FidInceptionV3::from_weights(formula_weights(device)?)?,
                "FID Inception-v3 3x299x299 to pool3 (formula weights)".to_owned(),
            ),
        })
    };
    let input = |device: &Device| random_tensor(&[args.batch, 3, FID_INPUT_SIZE_PX, FID_INPUT_SIZE_PX], 11, device);
    let run = |net: &FidInceptionV3, device: &Device| -> anyhow::Result<Tensor> { Ok(net.pool3(&input(device)?)?) };
    let (net, model) = make(device)?;
    let x = input(device)?;
    let mut result = time_runs("inception", model, args, device, || finish(&net.pool3(&x)?))?;
    result.parity = parity_if_asked(args, device, |d| run(&make(d)?.0, d))?;
    Ok(result)
}

fn bench_msssim(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let side = MSSSIM_SIDE_PX;
    // Two related smooth images with noise, so every scale has structure to compare.
    let mut rng = SeededRng::new(5);
    let pixel = |x: usize, y: usize, noise: f64| {
        let base = 127.5 + 60.0 * ((x as f64) / 17.0).sin() * ((y as f64) / 23.0).cos();
        (base + noise).clamp(0.0, 255.0) as f32
    };
    let mut a = Vec::with_capacity(side * side);
    let mut b = Vec::with_capacity(side * side);
    for y in 0..side {
        for x in 0..side {
            a.push(pixel(x, y, 10.0 * rng.normal()));
            b.push(pixel(x, y, 10.0 * rng.normal()));
        }
    }
    let a = GrayImage::new(side, side, a)?;
    let b = GrayImage::new(side, side, b)?;
    let mode = MsSsimMode::Standard { data_range: 255.0 };
    let model = format!("MS-SSIM {side}x{side} gray, pytorch-msssim settings");
    // The batch counts image pairs.
    time_runs("msssim", model, args, &Device::Cpu, || {
        for _ in 0..args.batch {
            ms_ssim(&a, &b, mode)?;
        }
        Ok(())
    })
}

/// Uniform values in [-1, 1) from a fixed seed.
fn random_tensor(shape: &[usize], seed: u64, device: &Device) -> anyhow::Result<Tensor> {
    let mut rng = SeededRng::new(seed);
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn weights_of_another_kind_than_the_workload_asked_are_refused() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: BenchArgs,
        }
        let classifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/densenet-cxr-64px.safetensors");
        let parse = |workload: &str| {
            let argv = ["bench", workload, "--weights", classifier.to_str().unwrap()];
            <Cli as clap::Parser>::try_parse_from(argv).unwrap().args
        };
        let error = run(&parse("generator"), &Device::Cpu).unwrap_err().to_string();
        assert!(error.contains("holds a DenseNet-121 classifier, which the generator workload cannot time"), "{error}");
        assert_eq!(workload_of_weights(&classifier).unwrap().0, Workload::Classifier);
    }

    #[test]
    fn parity_error_is_the_largest_difference_over_the_largest_reference_value() {
        let cpu = Tensor::new(&[1.0f32, -4.0, 2.0], &Device::Cpu).unwrap();
        let same = parity_error(&cpu, &cpu).unwrap();
        assert_eq!((same.max_abs, same.relative), (0.0, 0.0));
        let gpu = Tensor::new(&[1.5f32, -4.0, 1.0], &Device::Cpu).unwrap();
        let error = parity_error(&gpu, &cpu).unwrap();
        assert!((error.max_abs - 1.0).abs() < 1e-12);
        assert!((error.relative - 0.25).abs() < 1e-12);
        let shorter = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
        assert!(parity_error(&shorter, &cpu).is_err());
    }
}
