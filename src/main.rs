//! `thorax`: the workbench (no subcommand) and the headless command line.

use clap::{Parser, Subcommand};
use thorax::engine::device::{DeviceChoice, open_device};
use thorax::models::card::ModelKind;
use thorax::models::registry::default_model_bytes;

#[derive(Parser)]
#[command(name = "thorax", version, about = "Thorax Workbench: study artificial chest radiographs")]
struct Cli {
    /// Compute device of the workbench: auto, cpu, cuda or cuda:N (commands take their own --device).
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Let float32 matrix products on CUDA use TF32 tensor cores (pixel outputs move by up to ~6e-3 of their range;
    /// 4-20% faster on an H100 for most workloads, BENCHMARKS.md); no effect on the CPU. Given before the command
    /// (`thorax --tf32 bench ...`) so that commands that compute nothing do not list it; accepted after it too.
    #[arg(long)]
    tf32: bool,
    /// Measurement switch: how training lowers stride-1 convolutions off the CPU fast path.
    #[arg(long, global = true, hide = true, value_enum, default_value_t = thorax::train::conv::TrainConvLowering::Shifted)]
    train_conv: thorax::train::conv::TrainConvLowering,
    /// Measurement switch: let CUDA's memory pool return freed memory at every synchronisation (its default).
    #[arg(long, global = true, hide = true)]
    cuda_release_memory: bool,
    /// Measurement switch: no cache of small host-to-device uploads in CUDA forward passes.
    #[arg(long, global = true, hide = true)]
    no_cuda_upload_cache: bool,
    /// Measurement switch: run the fused ops (bias + leaky ReLU + pixel norm, phase interleave, BatchNorm + ReLU)
    /// on CUDA as composed candle ops instead of their kernels (train::fused_cuda).
    #[arg(long, global = true, hide = true)]
    no_fused_cuda_ops: bool,
    /// Measurement switch: no cuDNN convolutions in a build with them; CUDA convolutions take cuBLAS products on
    /// shifted views or candle's conv2d instead (models::cudnn_conv).
    #[arg(long, global = true, hide = true)]
    no_cudnn: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the workbench (the default), or a reading station on its study (--study).
    Gui(thorax::cli::gui::GuiArgs),
    /// Show the compute device, embedded samples and models.
    Info(thorax::cli::info::InfoArgs),
    /// Show a weights file's model card, or record measured quality in it (--add-metrics).
    Card(thorax::cli::card::CardArgs),
    /// Generate artificial radiographs from a conditional ProGAN.
    Generate(thorax::cli::generate::GenerateArgs),
    /// Sweep one pathology label with the latent fixed, as a looping animated GIF.
    Traverse(thorax::cli::traverse::TraverseArgs),
    /// Classify radiographs with the DenseNet-121 (14 NIH labels).
    Classify {
        #[command(flatten)]
        args: thorax::cli::classify::ClassifyArgs,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Hospital style transfer with a CycleGAN generator.
    Translate {
        #[command(flatten)]
        args: thorax::cli::translate::TranslateArgs,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Pathology correlation: generate with one label ~ U(0,1), score with the classifier, Pearson matrix.
    Correlate {
        #[command(flatten)]
        args: thorax::cli::correlate::CorrelateArgs,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Train our own models: the conditional ProGAN generator, the DenseNet classifier, a CycleGAN.
    Train {
        #[command(subcommand)]
        command: Box<thorax::cli::train::TrainCommand>,
    },
    /// Time the networks and metrics (median and min of timed runs after a warm-up).
    Bench {
        #[command(flatten)]
        args: thorax::cli::bench::BenchArgs,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Convert original checkpoints to safetensors with a model card.
    Convert {
        #[command(subcommand)]
        command: ConvertCommand,
    },
    /// Read, render, de-identify and export DICOM.
    Dicom {
        #[command(subcommand)]
        command: thorax::cli::dicom::DicomCommand,
    },
    /// Image-quality and diagnostic metrics: MS-SSIM, Frechet distance, KID, ROC with bootstrap.
    Metrics {
        #[command(subcommand)]
        command: thorax::cli::metrics::MetricsCommand,
        /// Classifier whose pooled features embed image folders (fid, kid); default: the embedded one.
        #[arg(long, global = true)]
        classifier: Option<std::path::PathBuf>,
        /// auto, cpu, cuda or cuda:N (for embedding image folders).
        #[arg(long, default_value = "auto", global = true)]
        device: DeviceChoice,
    },
    /// Memorisation audit: are generated images closer to training images than unseen real images are?
    Audit {
        #[command(flatten)]
        args: thorax::cli::audit::AuditArgs,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Blinded real-vs-artificial reading studies: create, status, analyse, export.
    Study {
        #[command(subcommand)]
        command: thorax::cli::study::StudyCommand,
    },
}

#[derive(Subcommand)]
enum ConvertCommand {
    /// The original TF ProGAN snapshot (network-snapshot-*.pkl): takes Gs, applies the weight scaling.
    ProganTf(thorax::cli::convert_progan::ConvertProganArgs),
    /// A PyTorch DenseNet-121 checkpoint (state_dict, or the original's pickled module).
    Densenet(thorax::cli::convert_torch::ConvertDensenetArgs),
    /// A junyanz CycleGAN generator (latest_net_G_A.pth / _B.pth).
    Cyclegan(thorax::cli::convert_torch::ConvertCycleganArgs),
    /// pytorch-fid's FID Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth).
    Inception(thorax::cli::convert_torch::ConvertInceptionArgs),
}

fn main() -> std::process::ExitCode {
    thorax::contained_panic::install_quiet_hook();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error_report(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes as anyhow prints them, without the backtrace that RUST_BACKTRACE=1 would add: a user's
/// mistake (a wrong path, an unknown label) is not a crash. A cause whose text the message above it already holds
/// (an error that prints its source) is left out, so each reason reads once.
fn error_report(error: &anyhow::Error) -> String {
    let mut report = format!("Error: {error}");
    let mut above = error.to_string();
    let mut causes: Vec<String> = Vec::new();
    for cause in error.chain().skip(1).map(|cause| cause.to_string()) {
        if !above.contains(&cause) {
            above.clone_from(&cause);
            causes.push(cause);
        }
    }
    if !causes.is_empty() {
        report.push_str("\n\nCaused by:");
        for (index, cause) in causes.iter().enumerate() {
            report.push_str(&format!("\n    {index}: {cause}"));
        }
    }
    report
}

/// The command line with `--tf32` moved before the command, where it is defined: it is listed only in the top-level
/// help (not by every command, most of which compute nothing), yet `thorax bench --tf32` works as users type it.
/// Arguments after `--` are left alone.
fn hoist_tf32(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let found = args[..end].iter().skip(1).position(|a| a == "--tf32").map(|i| i + 1);
    if let Some(index) = found {
        let flag = args.remove(index);
        args.insert(1.min(args.len()), flag);
    }
    args
}

fn run() -> anyhow::Result<()> {
    restore_default_sigpipe();
    pin_thread_count();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // The first thread of ours: after the environment is set (pin_thread_count).
    if let Err(error) = thorax::interrupt::remove_partial_files_on_interrupt() {
        // Outputs are still written whole or not at all; only a stray temporary file could stay after Ctrl+C.
        log::warn!("cannot watch for interrupts: {error}");
    }
    let cli = Cli::parse_from(hoist_tf32(std::env::args_os()));
    thorax::engine::compute_pool::configure_global_pool();
    candle_core::cuda::set_gemm_reduced_precision_f32(cli.tf32);
    thorax::train::conv::set_train_conv_lowering(cli.train_conv);
    thorax::engine::device::set_release_freed_gpu_memory(cli.cuda_release_memory);
    thorax::models::upload_cache::set_upload_cache_enabled(!cli.no_cuda_upload_cache);
    thorax::train::fused_cuda::set_fused_cuda_ops(!cli.no_fused_cuda_ops);
    thorax::models::cudnn_conv::set_cudnn_convs(!cli.no_cudnn);
    match cli.command.unwrap_or_else(|| Command::Gui(Default::default())) {
        Command::Gui(args) => run_gui(cli.device, &args),
        command => thorax::engine::compute_pool::run_on_compute_pool(|| run_command(command)),
    }
}

/// Runs a command-line command (on rayon's pool, see `engine::compute_pool`).
fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Gui(_) => anyhow::bail!("the workbench runs on the main thread, not as a batch command"),
        Command::Info(args) => thorax::cli::info::run(&args),
        Command::Card(args) => thorax::cli::card::run(&args),
        Command::Generate(args) => thorax::cli::generate::run(&args, default_model_bytes(ModelKind::ProganGenerator)),
        Command::Traverse(args) => thorax::cli::traverse::run(&args, default_model_bytes(ModelKind::ProganGenerator)),
        Command::Classify { args, device } => thorax::cli::classify::run(
            &args,
            &open_device(device)?.device,
            default_model_bytes(ModelKind::Densenet121Classifier),
        ),
        Command::Translate { args, device } => thorax::cli::translate::run(
            &args,
            &open_device(device)?.device,
            default_model_bytes(ModelKind::CycleganGenerator),
        ),
        Command::Correlate { args, device } => thorax::cli::correlate::run(
            &args,
            &open_device(device)?.device,
            default_model_bytes(ModelKind::ProganGenerator),
            default_model_bytes(ModelKind::Densenet121Classifier),
        ),
        Command::Train { command } => thorax::cli::train::run(*command),
        Command::Bench { args, device } => thorax::cli::bench::run(&args, &open_device(device)?.device),
        Command::Convert { command } => match command {
            ConvertCommand::ProganTf(args) => thorax::cli::convert_progan::run(&args),
            ConvertCommand::Densenet(args) => thorax::cli::convert_torch::run_densenet(&args),
            ConvertCommand::Cyclegan(args) => thorax::cli::convert_torch::run_cyclegan(&args),
            ConvertCommand::Inception(args) => thorax::cli::convert_torch::run_inception(&args),
        },
        Command::Dicom { command } => thorax::cli::dicom::run(command),
        Command::Metrics { command, classifier, device } => {
            let device =
                if command.reads_image_folders() { open_device(device)?.device } else { candle_core::Device::Cpu };
            thorax::cli::metrics::run_on_device(
                command,
                classifier.as_deref(),
                &device,
                default_model_bytes(ModelKind::Densenet121Classifier),
            )
        }
        Command::Study { command } => thorax::cli::study::run(command),
        Command::Audit { args, device } => thorax::cli::audit::run(
            &args,
            &open_device(device)?.device,
            default_model_bytes(ModelKind::Densenet121Classifier),
        ),
    }
}

/// Rust ignores SIGPIPE, so `thorax ... | head` made `println!` panic ("failed printing to stdout") once `head`
/// exited. A command-line tool should end quietly instead, as with the default action.
fn restore_default_sigpipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets the signal's disposition to its default before any thread exists; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// candle asks for its thread count at every CPU matrix product; without `RAYON_NUM_THREADS` its answer comes from
/// reading and parsing /proc/cpuinfo each time (about 2,000 times per step of the 64 px classifier's training, 10% of
/// the step). Set once to the size of rayon's pool (rayon's own default), the variable makes those calls cheap and
/// candle's count equal to the pool's.
fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: called first in main, before any other thread exists that could read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

fn run_gui(device: DeviceChoice, args: &thorax::cli::gui::GuiArgs) -> anyhow::Result<()> {
    let open_study = args.study_at_start()?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Thorax Workbench")
            .with_inner_size([1400.0, 860.0])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "Thorax Workbench",
        options,
        Box::new(move |cc| {
            let options = thorax::app::AppOptions { device, open_study, ..Default::default() };
            let app = thorax::app::WorkbenchApp::new(cc, options)?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the window could not be opened: {e}\nOn a machine without a display, the command-line tools work \
             without one: see `thorax --help`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("I/O error ({source}): s.db")]
    struct PrintsItsSource {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn tf32_is_a_flag_before_the_command_and_not_listed_by_commands() {
        use clap::CommandFactory as _;
        let cli = Cli::try_parse_from(["thorax", "--tf32", "bench", "generator"]).unwrap();
        assert!(cli.tf32);
        let typed_after = hoist_tf32(["thorax", "bench", "generator", "--tf32", "--", "--tf32"].map(Into::into));
        assert_eq!(
            typed_after,
            ["thorax", "--tf32", "bench", "generator", "--", "--tf32"].map(std::ffi::OsString::from)
        );
        let typed_after = hoist_tf32(["thorax", "bench", "generator", "--tf32"].map(Into::into));
        assert!(Cli::try_parse_from(typed_after).unwrap().tf32);
        assert!(!Cli::try_parse_from(hoist_tf32(["thorax", "info"].map(Into::into))).unwrap().tf32);
        let mut command = Cli::command();
        let dicom = command.find_subcommand_mut("dicom").unwrap();
        let help = dicom.find_subcommand_mut("info").unwrap().render_long_help().to_string();
        assert!(!help.contains("--tf32"), "{help}");
        assert!(Cli::command().render_long_help().to_string().contains("--tf32"));
    }

    #[test]
    fn a_cause_already_in_the_message_above_is_not_repeated() {
        let inner = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the file is read-only");
        let error = anyhow::Error::new(PrintsItsSource { source: inner }).context("opening the study s.db");
        let report = error_report(&error);
        assert_eq!(report.matches("the file is read-only").count(), 1, "{report}");
        assert!(report.contains("0: I/O error (the file is read-only): s.db"), "{report}");
        assert!(!report.contains("\n    1:"), "{report}");
    }
}
