//! Progressive growing (`thorax train gan --grow-from`) at toy size (16 -> 32 px, batch 4, narrow feature maps) on
//! the 16 real fixture radiographs: at alpha 0 the grown networks compute exactly the smaller ones, at alpha 1 the
//! training forward equals the saved inference generator, a grown run trains and resumes bit for bit, and bad
//! growth requests fail with errors that name the problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use thorax::models::labels::NIH_GAN_LABELS;
use thorax::models::progan::{ProganGenerator, latents_from_seed};
use thorax::train::checkpoint::load_checkpoint;
use thorax::train::dataset::GanDataset;
use thorax::train::discriminator::WeightUse;
use thorax::train::gan_trainer::{GanTrainConfig, GanTrainer, GeneratorCopy};
use thorax::train::growth::{FadeSchedule, upsample_nearest_2x};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train")
}

fn labels() -> Vec<String> {
    NIH_GAN_LABELS.iter().map(|s| s.to_string()).collect()
}

fn config(resolution_px: usize) -> GanTrainConfig {
    let mut config = GanTrainConfig::new(resolution_px, 16, labels());
    config.fmap_base = 64.0;
    config.latent_size = 32;
    config.batch = 4;
    config.seed = 7;
    config
}

fn dataset(resolution_px: usize) -> GanDataset {
    GanDataset::load(&fixtures(), &fixtures().join("labels.csv"), resolution_px, &labels()).unwrap()
}

/// A 16 px run trained 2 steps, saved as a checkpoint in `dir`.
fn small_checkpoint(dir: &Path) -> PathBuf {
    let mut small = GanTrainer::new(config(16), &Device::Cpu).unwrap();
    let data = dataset(16);
    for _ in 0..2 {
        small.train_step(&data).unwrap();
    }
    let path = dir.join("small.ckpt.safetensors");
    small.save_checkpoint(&path).unwrap();
    path
}

fn grown(checkpoint: &Path, fade_steps: u64) -> GanTrainer {
    GanTrainer::resume(checkpoint, &Device::Cpu).unwrap().grow(config(32), fade_steps).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

fn inputs() -> (Tensor, Tensor) {
    let latents = Tensor::from_vec(latents_from_seed(5, 4, 32), (4, 32), &Device::Cpu).unwrap();
    let (labels, _) = dataset(16).labels_of(&[0, 5, 9, 14], &Device::Cpu).unwrap();
    (latents, labels)
}

#[test]
fn right_after_growing_the_networks_compute_the_smaller_ones() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = small_checkpoint(dir.path());
    let small = GanTrainer::resume(&checkpoint, &Device::Cpu).unwrap();
    let grown = grown(&checkpoint, 4);
    assert_eq!(grown.fade(), Some(FadeSchedule { start_step: 2, steps: 4 }));
    assert_eq!((grown.step(), grown.fade_alpha()), (2, 0.0));

    let (latents, labels) = inputs();
    for copy in [GeneratorCopy::Training, GeneratorCopy::Ema] {
        let small_images = small.generate_faded(copy, &latents, &labels, 1.0).unwrap();
        let grown_images = grown.generate(copy, &latents, &labels).unwrap();
        assert_eq!(grown_images.dims(), &[4, 1, 32, 32]);
        let diff = max_abs_diff(&grown_images, &upsample_nearest_2x(&small_images).unwrap());
        assert!(diff < 1e-5, "{copy:?}: {diff}");
        // The faded output is not simply the new block's: that one differs.
        let full = grown.generate_faded(copy, &latents, &labels, 1.0).unwrap();
        assert!(max_abs_diff(&full, &grown_images) > 1e-3);
    }

    let images = dataset(32).batch(&[1, 4, 7, 12], &Device::Cpu).unwrap().images;
    let grown_scores = grown.discriminate(&images).unwrap();
    let small_scores = small.discriminator().forward(&images.avg_pool2d(2).unwrap(), WeightUse::Frozen).unwrap();
    assert!(max_abs_diff(&grown_scores.adversarial, &small_scores.adversarial) < 1e-5);
    assert!(max_abs_diff(&grown_scores.label_logits, &small_scores.label_logits) < 1e-5);
    let full_scores = grown.discriminator().forward_faded(&images, 1.0, WeightUse::Frozen).unwrap();
    assert!(max_abs_diff(&full_scores.adversarial, &grown_scores.adversarial) > 1e-4);

    // The old output layer became lod 1; the new block starts as a fresh 32 px run starts it.
    let old = small.generator_tensors(GeneratorCopy::Training, WeightUse::Frozen).unwrap();
    let new = grown.training_generator_tensors(GeneratorCopy::Training, WeightUse::Frozen).unwrap();
    assert_eq!(max_abs_diff(&old["ToRGB_lod0/weight"], &new["ToRGB_lod1/weight"]), 0.0);
    assert_eq!(max_abs_diff(&old["16x16/Conv1/weight"], &new["16x16/Conv1/weight"]), 0.0);
    let fresh = GanTrainer::new(config(32), &Device::Cpu).unwrap();
    let fresh = fresh.generator_tensors(GeneratorCopy::Training, WeightUse::Frozen).unwrap();
    for name in ["32x32/Conv0_up/weight", "32x32/Conv1/weight", "ToRGB_lod0/weight"] {
        assert_eq!(max_abs_diff(&fresh[name], &new[name]), 0.0, "{name}");
    }
}

#[test]
fn at_alpha_one_the_training_forward_equals_the_saved_generator() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = small_checkpoint(dir.path());
    let mut trainer = grown(&checkpoint, 2);
    let data = dataset(32);
    for _ in 0..2 {
        trainer.train_step(&data).unwrap();
    }
    assert_eq!(trainer.fade_alpha(), 1.0);
    let path = dir.path().join("g.safetensors");
    let card = trainer.generator_card("grown", Default::default());
    trainer.save_generator(&path, GeneratorCopy::Ema, &card, DType::F32).unwrap();
    let stored = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    assert!(stored.keys().all(|name| !name.contains("lod1")), "{:?}", stored.keys());
    assert!(stored.contains_key("32x32/Conv1/weight") && stored.contains_key("ToRGB_lod0/weight"));
    let inference = ProganGenerator::load(&path, &Device::Cpu).unwrap();
    let (latents, labels) = inputs();
    let expected = inference.forward(&latents, &labels).unwrap();
    let got = trainer.generate_faded(GeneratorCopy::Ema, &latents, &labels, 1.0).unwrap();
    assert_eq!(got.dims(), &[4, 1, 32, 32]);
    let diff = max_abs_diff(&got, &expected);
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn a_grown_run_trains_and_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = small_checkpoint(dir.path());
    let data = dataset(32);
    // Fade over steps 2..5; 5 steps cross its end (where both optimisers restart).
    let mut straight = grown(&checkpoint, 3);
    for _ in 0..5 {
        let losses = straight.train_step(&data).unwrap();
        let (d, g) = (losses.discriminator, losses.generator);
        for value in [d.total, d.adversarial, d.label, d.real_score, d.fake_score, g.total, g.adversarial, g.label] {
            assert!(value.is_finite(), "{losses:?}");
        }
    }
    let mut first_half = grown(&checkpoint, 3);
    for _ in 0..2 {
        first_half.train_step(&data).unwrap();
    }
    let middle = dir.path().join("middle.ckpt.safetensors");
    first_half.save_checkpoint(&middle).unwrap();
    drop(first_half);
    let mut resumed = GanTrainer::resume(&middle, &Device::Cpu).unwrap();
    assert_eq!((resumed.step(), resumed.fade()), (4, Some(FadeSchedule { start_step: 2, steps: 3 })));
    for _ in 0..3 {
        resumed.train_step(&data).unwrap();
    }
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    straight.save_checkpoint(&a).unwrap();
    resumed.save_checkpoint(&b).unwrap();
    let (groups_a, state_a) = load_checkpoint(&a, &Device::Cpu).unwrap();
    let (groups_b, mut state_b) = load_checkpoint(&b, &Device::Cpu).unwrap();
    // Wall time is the one thing that may differ.
    state_b.train_seconds = state_a.train_seconds;
    assert_eq!(state_a, state_b);
    assert_eq!((state_a.step, state_a.adam_generator_step, state_a.adam_discriminator_step), (7, 2, 2));
    assert!(groups_a["G"].contains_key("ToRGB_lod1/weight") && groups_a["D"].contains_key("FromRGB_lod1/weight"));
    assert!(
        groups_a["G_ema"].contains_key("ToRGB_lod1/bias") && groups_a["adam_D/v"].contains_key("FromRGB_lod1/bias")
    );
    let mut compared = 0;
    for (group, tensors) in &groups_a {
        assert_eq!(tensors.keys().collect::<Vec<_>>(), groups_b[group].keys().collect::<Vec<_>>(), "{group}");
        for (name, tensor) in tensors {
            let bits = |t: &Tensor| -> Vec<u32> {
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(tensor), bits(&groups_b[group][name]), "{group}/{name} differs after resume");
            compared += 1;
        }
    }
    assert!(compared > 50, "{compared}");
    // The new block trained.
    let start = GanTrainer::new(config(32), &Device::Cpu).unwrap();
    let start = start.generator_tensors(GeneratorCopy::Training, WeightUse::Frozen).unwrap();
    let trained = straight.generator_tensors(GeneratorCopy::Training, WeightUse::Frozen).unwrap();
    assert!(max_abs_diff(&start["32x32/Conv1/weight"], &trained["32x32/Conv1/weight"]) > 0.0);
}

#[test]
fn bad_growth_requests_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = small_checkpoint(dir.path());
    let grow = |config: GanTrainConfig, fade_steps: u64| {
        GanTrainer::resume(&checkpoint, &Device::Cpu).unwrap().grow(config, fade_steps).err().unwrap().to_string()
    };
    let too_far = grow(config(64), 4);
    assert!(too_far.contains("16 px") && too_far.contains("32 px") && too_far.contains("64 px"), "{too_far}");
    let mut wider = config(32);
    wider.fmap_max = 8;
    let wider = grow(wider, 4);
    assert!(wider.contains("fmap-max") && wider.contains('8') && wider.contains("16"), "{wider}");
    let no_fade = grow(config(32), 0);
    assert!(no_fade.contains("fade-steps"), "{no_fade}");
    // A run still fading cannot grow again.
    let path = dir.path().join("fading.ckpt.safetensors");
    grown(&checkpoint, 4).save_checkpoint(&path).unwrap();
    let fading = GanTrainer::resume(&path, &Device::Cpu).unwrap().grow(config(64), 4).err().unwrap().to_string();
    assert!(fading.contains("fading") && fading.contains("step 6"), "{fading}");

    let run = |resolution: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
        command.args(["train", "gan", "--images"]).arg(fixtures()).arg("--labels").arg(fixtures().join("labels.csv"));
        command.arg("--grow-from").arg(&checkpoint).args(["--resolution", resolution, "--fade-steps", "4"]);
        command.args(["--steps", "3", "--device", "cpu"]).arg("--out").arg(dir.path().join("g.safetensors"));
        command.output().unwrap()
    };
    let refused = run("64");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--grow-from") || stderr.contains("growing"), "{stderr}");
    assert!(stderr.contains("16 px") && stderr.contains("64 px"), "{stderr}");
}

/// The command end to end: grow 16 -> 32 px and train one step of a 4-step fade; the card records the fade.
#[test]
fn cli_grows_a_run_and_records_the_fade() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = small_checkpoint(dir.path());
    let out = dir.path().join("g32.safetensors");
    let samples = dir.path().join("samples.png");
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train", "gan", "--images"]).arg(fixtures()).arg("--labels").arg(fixtures().join("labels.csv"));
    command.arg("--grow-from").arg(&checkpoint).args(["--resolution", "32", "--fade-steps", "4", "--steps", "3"]);
    command.args(["--device", "cpu", "--json"]).arg("--samples").arg(&samples).arg("--out").arg(&out);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["steps"].as_u64(), summary["steps_this_run"].as_u64()), (Some(3), Some(1)));
    let generator = ProganGenerator::load(&out, &Device::Cpu).unwrap();
    assert_eq!(generator.card().resolution, 32);
    assert_eq!(generator.card().metrics["fade_alpha"], 0.25);
    assert_eq!(generator.card().metrics["grown_at_step"], 2);
    let grid = image::open(&samples).unwrap();
    assert_eq!((grid.width(), grid.height()), (256, 256));
    let (_, state) = load_checkpoint(&dir.path().join("g32.ckpt.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(state.fade, Some(FadeSchedule { start_step: 2, steps: 4 }));

    // --fade-steps without --grow-from is refused by the argument parser.
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train", "gan", "--images"]).arg(fixtures()).arg("--labels").arg(fixtures().join("labels.csv"));
    let refused = command.args(["--fade-steps", "4", "--steps", "1"]).arg("--out").arg(&out).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--grow-from"));
}
