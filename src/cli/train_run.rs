//! The mechanics every `thorax train` command shares: the loss-log CSV, the training command written into the card,
//! and the run clock behind the progress line, the ETA and `--max-minutes`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::cli::output_paths::{check_extension, check_not_replacing, check_outputs_apart, check_writable, same_file};

/// Seconds between two progress lines (the first and the last step always print).
const PRINT_INTERVAL_S: f64 = 10.0;

/// The per-step loss CSV of `--log`; without `--log` it writes nothing.
pub(crate) struct LossLog(Option<File>);

impl LossLog {
    /// Creates `path` with `header` as its first line, or appends to it when the run is `resumed` and it exists. A new
    /// run refuses a log that already holds lines: it is an earlier run's record (or another file named by mistake).
    pub(crate) fn open(path: Option<&Path>, header: &str, resumed: bool) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self(None)) };
        let append = resumed && path.is_file();
        let holds_lines = std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0);
        if !append && holds_lines {
            anyhow::bail!(
                "--log {} already exists: a new run does not overwrite it (an earlier run's losses, or a file named \
                 by mistake); continue that run with --resume, or give another --log, or remove the file",
                path.display()
            );
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("opening the loss log {}", path.display()))?;
        if !append {
            writeln!(file, "{header}").with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self(Some(file)))
    }

    /// Appends the row `row` makes (without its line end); it is only made when there is a log.
    pub(crate) fn write_row(&mut self, row: impl FnOnce() -> String) -> anyhow::Result<()> {
        match &mut self.0 {
            Some(file) => writeln!(file, "{}", row()).context("writing the loss log"),
            None => Ok(()),
        }
    }
}

/// Outputs with a rule of their own about an existing file (see [`check_run_outputs`]).
const OWN_RULE_FLAGS: [&str; 3] = ["--checkpoint", "site checkpoint", "--log"];

/// Outputs that hold a model or a checkpoint (safetensors files).
const MODEL_OUTPUT_FLAGS: [&str; 4] = ["--out", "--out-b2a", "--checkpoint", "site checkpoint"];

/// Checks, before the first step, that each of a run's `outputs` (`(flag, path)`, the loss log among them) can be
/// written, so that a typo in a folder name fails at once instead of after the training; that no output lands on one
/// of the run's `inputs` (the labels CSV, a model it grows from) or inside an input folder, on another output, or, except `checkpoint` itself,
/// on the checkpoint it resumes; and that a run which does not continue `checkpoint` (`resumed_from` is another file
/// or none) will not replace an earlier run's checkpoint there. Model outputs must be `.safetensors` files. A new run
/// (not resumed) replaces an existing model, sample grid or held-out list only with `overwrite` (`--overwrite`); the
/// checkpoint and the loss log keep their own rules (continue with --resume, or another name).
pub(crate) fn check_run_outputs(
    outputs: &[(&str, &Path)],
    inputs: &[(&str, &Path)],
    checkpoint: &Path,
    resumed_from: Option<&Path>,
    overwrite: bool,
) -> anyhow::Result<()> {
    check_outputs_apart(outputs, inputs)?;
    for &(flag, path) in outputs {
        if MODEL_OUTPUT_FLAGS.contains(&flag) {
            check_extension(flag, path, &["safetensors"])?;
        }
        check_writable(flag, path)?;
    }
    if let Some(from) = resumed_from {
        let besides_checkpoint: Vec<_> =
            outputs.iter().copied().filter(|(_, path)| !same_file(path, checkpoint)).collect();
        check_outputs_apart(&besides_checkpoint, &[("the checkpoint --resume continues", from)])?;
    }
    let continues_it = resumed_from.is_some_and(|from| same_file(from, checkpoint));
    if checkpoint.exists() && !continues_it {
        anyhow::bail!(
            "{} already holds a training checkpoint: continue that run with --resume {0}, or start a new one with \
             another --checkpoint (or --out), or remove the file",
            checkpoint.display()
        );
    }
    if resumed_from.is_none() {
        let replaced: Vec<(&str, &Path)> =
            outputs.iter().copied().filter(|(flag, _)| !OWN_RULE_FLAGS.contains(flag)).collect();
        check_not_replacing(&replaced, overwrite)?;
    }
    Ok(())
}

/// `arg` as a POSIX shell word, so the card's training command can be pasted back.
fn shell_quoted(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+'));
    if plain { arg.to_owned() } else { format!("'{}'", arg.replace('\'', "'\\''")) }
}

/// This process's command line as one shell line, for the card's provenance.
pub(crate) fn training_command() -> String {
    std::env::args().map(|arg| shell_quoted(&arg)).collect::<Vec<_>>().join(" ")
}

/// `1h02m03s` style durations for the progress line.
pub(crate) fn format_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 { format!("{h}h{m:02}m{s:02}s") } else { format!("{m}m{s:02}s") }
}

/// Whether `--checkpoint-every N` asks for a checkpoint after `step` (0 turns it off).
pub(crate) fn checkpoint_due(step: u64, checkpoint_every: u64) -> bool {
    checkpoint_every > 0 && step.is_multiple_of(checkpoint_every)
}

/// The wall clock of one run: when it started, at which step, and when the last progress line was printed.
pub(crate) struct RunClock {
    started: Instant,
    first_step: u64,
    last_print: Instant,
}

impl RunClock {
    /// Starts now, at `first_step` (a resumed run's step count).
    pub(crate) fn start(first_step: u64) -> Self {
        Self { started: Instant::now(), first_step, last_print: Instant::now() }
    }

    pub(crate) fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// True on this run's first step, at `target` and once the last line is `PRINT_INTERVAL_S` old; true restarts
    /// the interval.
    pub(crate) fn should_print(&mut self, step: u64, target: u64) -> bool {
        let due = self.last_print.elapsed().as_secs_f64() >= PRINT_INTERVAL_S
            || step == target
            || step == self.first_step + 1;
        if due {
            self.last_print = Instant::now();
        }
        due
    }

    /// Steps this run per second so far (the floor keeps a zero-second run finite).
    pub(crate) fn rate_per_s(&self, step: u64) -> f64 {
        step.saturating_sub(self.first_step) as f64 / self.elapsed_seconds().max(1e-9)
    }

    /// Seconds until `target` at this run's rate so far.
    pub(crate) fn eta_seconds(&self, step: u64, target: u64) -> f64 {
        target.saturating_sub(step) as f64 / self.rate_per_s(step).max(1e-9)
    }

    /// Whether `--max-minutes` (if given) of wall time have passed.
    pub(crate) fn time_is_up(&self, max_minutes: Option<f64>) -> bool {
        max_minutes.is_some_and(|minutes| self.elapsed_seconds() >= minutes * 60.0)
    }

    /// The run's numbers as of now, ending at `step`.
    pub(crate) fn totals(&self, step: u64) -> RunTotals {
        let run_seconds = self.elapsed_seconds();
        let steps_this_run = step.saturating_sub(self.first_step);
        RunTotals { step, steps_this_run, run_seconds, steps_per_second: steps_this_run as f64 / run_seconds.max(1e-9) }
    }
}

/// What a run did, for the `done:` line and the JSON summary.
pub(crate) struct RunTotals {
    pub step: u64,
    pub steps_this_run: u64,
    pub run_seconds: f64,
    pub steps_per_second: f64,
}

/// `1000 steps (500 this run, 2.000 step/s, 4m10s)`.
impl std::fmt::Display for RunTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (step, this_run, rate) = (self.step, self.steps_this_run, self.steps_per_second);
        write!(f, "{step} steps ({this_run} this run, {rate:.3} step/s, {})", format_duration(self.run_seconds))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A clock that started `seconds_ago` at `first_step`.
    fn clock_started(seconds_ago: u64, first_step: u64) -> RunClock {
        let started = Instant::now().checked_sub(Duration::from_secs(seconds_ago)).unwrap();
        RunClock { started, first_step, last_print: started }
    }

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(format_duration(3723.0), "1h02m03s");
        assert_eq!(format_duration(59.4), "0m59s");
        assert_eq!(format_duration(-5.0), "0m00s");
    }

    #[test]
    fn arguments_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_quoted("--out"), "--out");
        assert_eq!(shell_quoted("/a/b_c.safetensors"), "/a/b_c.safetensors");
        assert_eq!(shell_quoted("CC BY 4.0"), "'CC BY 4.0'");
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
        assert_eq!(shell_quoted(""), "''");
    }

    #[test]
    fn rate_and_eta_count_only_this_runs_steps() {
        // Resumed at step 100, 100 s ago, now at step 300: 2 step/s, so the 700 steps to 1000 take 350 s.
        let clock = clock_started(100, 100);
        let (rate, eta) = (clock.rate_per_s(300), clock.eta_seconds(300, 1000));
        assert!((rate - 2.0).abs() < 0.01 && (eta - 350.0).abs() < 2.0, "{rate} {eta}");
        assert_eq!(clock.eta_seconds(1000, 1000), 0.0);
        let totals = clock.totals(300);
        assert_eq!(totals.steps_this_run, 200);
        assert!(totals.to_string().starts_with("300 steps (200 this run, 2.00"), "{totals}");
        assert!(totals.to_string().ends_with(" step/s, 1m40s)"), "{totals}");
        // No step yet: a huge ETA, not a division by zero.
        assert!(RunClock::start(5).eta_seconds(5, 10) > 1e9);
    }

    #[test]
    fn time_is_up_only_with_a_limit_that_has_passed() {
        let clock = clock_started(90, 0);
        assert!(!clock.time_is_up(None));
        assert!(clock.time_is_up(Some(1.0)));
        assert!(!clock.time_is_up(Some(2.0)));
    }

    #[test]
    fn progress_prints_on_the_first_and_last_step_and_every_interval() {
        let mut fresh = RunClock::start(10);
        assert!(fresh.should_print(11, 100), "first step of the run");
        assert!(!fresh.should_print(12, 100));
        assert!(fresh.should_print(100, 100), "last step");
        let mut stale = clock_started(11, 0);
        assert!(stale.should_print(5, 100), "interval passed");
        assert!(!stale.should_print(6, 100), "printing restarts the interval");
    }

    #[test]
    fn outputs_are_checked_before_training_and_checkpoints_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("g.safetensors");
        let checkpoint = dir.path().join("g.ckpt.safetensors");
        check_run_outputs(&[("--out", &model)], &[], &checkpoint, None, false).unwrap();
        let missing = dir.path().join("typo/g.safetensors");
        let error = check_run_outputs(&[("--out", &missing)], &[], &checkpoint, None, false).unwrap_err().to_string();
        assert!(error.contains("--out") && error.contains("does not exist"), "{error}");
        let error =
            check_run_outputs(&[("--samples", dir.path())], &[], &checkpoint, None, false).unwrap_err().to_string();
        assert!(error.contains("is a folder"), "{error}");
        std::fs::write(&checkpoint, b"earlier run").unwrap();
        let error = check_run_outputs(&[("--out", &model)], &[], &checkpoint, None, false).unwrap_err().to_string();
        assert!(error.contains("--resume"), "{error}");
        let other = dir.path().join("other.ckpt.safetensors");
        std::fs::write(&other, b"another run").unwrap();
        assert!(check_run_outputs(&[], &[], &checkpoint, Some(&other), false).is_err());
        // Continuing the run in place is the one way to write over it; the spelling of the path does not matter.
        let spelled_otherwise = dir.path().join(".").join("g.ckpt.safetensors");
        check_run_outputs(&[("--out", &model)], &[], &checkpoint, Some(&spelled_otherwise), false).unwrap();
        assert_eq!(std::fs::read(&checkpoint).unwrap(), b"earlier run");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no probe file left behind");
        // The checkpoint may be the resumed file; the log and the model may not, nor an input.
        let outputs = [("--checkpoint", checkpoint.as_path()), ("--log", other.as_path())];
        let error = check_run_outputs(&outputs, &[], &checkpoint, Some(&other), false).unwrap_err().to_string();
        assert!(error.contains("--log") && error.contains("the checkpoint --resume continues"), "{error}");
        let labels = dir.path().join("labels.csv");
        let outputs = [("--out", labels.as_path())];
        let error = check_run_outputs(&outputs, &[("the labels CSV", &labels)], &checkpoint, Some(&checkpoint), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is the labels CSV"), "{error}");
    }

    #[test]
    fn a_new_run_replaces_an_earlier_model_or_sample_grid_only_with_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("g.safetensors");
        let samples = dir.path().join("g.png");
        let checkpoint = dir.path().join("g.ckpt.safetensors");
        let outputs = [("--out", model.as_path()), ("--samples", samples.as_path())];
        std::fs::write(&samples, b"earlier grid").unwrap();
        let error = check_run_outputs(&outputs, &[], &checkpoint, None, false).unwrap_err().to_string();
        assert!(error.contains("--samples") && error.contains("g.png") && error.contains("--overwrite"), "{error}");
        check_run_outputs(&outputs, &[], &checkpoint, None, true).unwrap();
        // A resumed run writes its own model and grid again.
        std::fs::write(&model, b"earlier model").unwrap();
        std::fs::write(&checkpoint, b"earlier run").unwrap();
        check_run_outputs(&outputs, &[], &checkpoint, Some(&checkpoint), false).unwrap();
        // --overwrite is no way around the checkpoint's own rule.
        let error = check_run_outputs(&outputs, &[], &checkpoint, None, true).unwrap_err().to_string();
        assert!(error.contains("already holds a training checkpoint"), "{error}");
    }

    #[test]
    fn checkpoints_fall_on_multiples_and_never_with_zero() {
        assert!(checkpoint_due(500, 500) && checkpoint_due(1000, 500));
        assert!(!checkpoint_due(499, 500) && !checkpoint_due(500, 0));
    }

    #[test]
    fn the_loss_log_starts_fresh_or_continues_a_resumed_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.csv");
        let read = || std::fs::read_to_string(&path).unwrap();
        // Resuming without a log yet still writes the header.
        LossLog::open(Some(&path), "step,loss", true).unwrap().write_row(|| "1,0.5".into()).unwrap();
        LossLog::open(Some(&path), "step,loss", true).unwrap().write_row(|| "2,0.4".into()).unwrap();
        assert_eq!(read(), "step,loss\n1,0.5\n2,0.4\n");
        // A new run keeps an earlier run's log and says so; without --log nothing is written.
        let error = LossLog::open(Some(&path), "step,loss", false).err().unwrap().to_string();
        assert!(error.contains("already exists") && error.contains("--resume"), "{error}");
        assert_eq!(read(), "step,loss\n1,0.5\n2,0.4\n");
        LossLog::open(None, "step,loss", false).unwrap().write_row(|| unreachable!()).unwrap();
        // An empty file (made by hand, or by `touch`) is taken.
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, b"").unwrap();
        LossLog::open(Some(&empty), "step,loss", false).unwrap();
        assert_eq!(std::fs::read_to_string(&empty).unwrap(), "step,loss\n");
    }
}
