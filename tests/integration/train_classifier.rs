//! `thorax train classifier` at toy size (32 px, growth 4, blocks 1,1,1,1, batch 4) on the 16 real fixture
//! radiographs: the training forward agrees with the inference network, BatchNorm's running statistics follow
//! PyTorch, a small set is overfitted, resume is bit-exact, the saved file loads with `DenseNet121::load` and
//! classifies, and bad input gives clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{D, Device, Tensor};
use thorax::models::card::Provenance;
use thorax::models::densenet::DenseNet121;
use thorax::models::labels::NIH_CLASSIFIER_LABELS;
use thorax::models::preprocess::classifier_input_sized;
use thorax::train::classifier_split::RowSplit;
use thorax::train::classifier_trainer::{ClassifierTrainConfig, ClassifierTrainer, load_classifier_dataset};
use thorax::train::conv::conv2d_train;
use thorax::train::densenet_train::{BatchNormMode, DenseNetParameters};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train")
}

fn tiny_config() -> ClassifierTrainConfig {
    let labels = NIH_CLASSIFIER_LABELS.iter().map(|s| s.to_string()).collect();
    let mut config = ClassifierTrainConfig::new(labels, 32);
    config.growth_rate = 4;
    config.num_init_features = 8;
    config.bn_size = 2;
    config.block_config = vec![1, 1, 1, 1];
    config.batch = 4;
    config.max_shift_px = 1;
    config.seed = 11;
    config
}

fn split(train: std::ops::Range<usize>, validation: std::ops::Range<usize>) -> RowSplit {
    RowSplit { train: train.collect(), validation: validation.collect(), train_patients: 0, validation_patients: 0 }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn input(rows: usize, side: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (rows, 3, side, side), &Device::Cpu).unwrap()
}

/// Trained-looking parameters: random running statistics and affine BatchNorm, so eval mode is not the identity.
fn perturbed_parameters(config: &ClassifierTrainConfig) -> (DenseNetParameters, thorax::models::card::ModelCard) {
    let card = config.card("tiny", Provenance::default());
    let mut weights = DenseNet121::random_weights(&card, &Device::Cpu, 5).unwrap();
    for (name, tensor) in weights.tensors.iter_mut() {
        if name.contains("norm") {
            let noise = Tensor::rand(0.5f32, 1.5, tensor.dims(), &Device::Cpu).unwrap();
            *tensor =
                if name.ends_with("running_mean") || name.ends_with(".bias") { (noise - 1.0).unwrap() } else { noise };
        }
    }
    (DenseNetParameters::from_tensors(config.densenet(), &weights.tensors).unwrap(), card)
}

#[test]
fn eval_mode_forward_equals_the_inference_network() {
    let mut config = tiny_config();
    config.block_config = vec![2, 1, 3];
    config.resolution_px = 40;
    let (params, card) = perturbed_parameters(&config);
    let x = input(3, 40);
    let (logits, updates) = params.forward(&x, BatchNormMode::Eval).unwrap();
    assert!(updates.is_empty());
    let ours = candle_nn::ops::sigmoid(&logits).unwrap();
    let theirs = params.inference_network(&card).unwrap().forward(&x).unwrap();
    let diff = max_abs_diff(&ours, &theirs);
    assert!(diff < 1e-4, "max abs diff {diff}");
}

#[test]
fn train_mode_batch_norm_follows_pytorch() {
    let config = tiny_config();
    let (params, _) = perturbed_parameters(&config);
    let x = input(4, 32);
    let (train_logits, updates) = params.forward(&x, BatchNormMode::Train { momentum: 0.1 }).unwrap();
    // Every BatchNorm moves both statistics.
    assert_eq!(updates.len(), params.running.len());
    // norm0 by hand: statistics of conv0's output over batch and pixels, running = 0.9 old + 0.1 new (unbiased).
    let conv0 = conv2d_train(&x, params.trainable["features.conv0.weight"].as_tensor(), 2, 3).unwrap();
    let channels = conv0.dim(1).unwrap();
    let per_channel = conv0.transpose(0, 1).unwrap().flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
    let old_mean = params.running["features.norm0.running_mean"].to_vec1::<f32>().unwrap();
    let old_var = params.running["features.norm0.running_var"].to_vec1::<f32>().unwrap();
    let new_mean = updates["features.norm0.running_mean"].to_vec1::<f32>().unwrap();
    let new_var = updates["features.norm0.running_var"].to_vec1::<f32>().unwrap();
    for c in 0..channels {
        let values: Vec<f64> = per_channel[c].iter().map(|v| f64::from(*v)).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let unbiased = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let expected_mean = 0.9 * f64::from(old_mean[c]) + 0.1 * mean;
        let expected_var = 0.9 * f64::from(old_var[c]) + 0.1 * unbiased;
        assert!((f64::from(new_mean[c]) - expected_mean).abs() < 1e-4, "channel {c}");
        assert!((f64::from(new_var[c]) - expected_var).abs() < 1e-3 * expected_var.max(1.0), "channel {c}");
    }
    // Batch statistics make the output differ from eval mode.
    let (eval_logits, _) = params.forward(&x, BatchNormMode::Eval).unwrap();
    assert!(max_abs_diff(&train_logits, &eval_logits) > 1e-3);
    // Train mode is deterministic (the parameters and running statistics are not touched by a forward pass).
    let (logits_again, _) = params.forward(&x, BatchNormMode::Train { momentum: 0.1 }).unwrap();
    assert_eq!(max_abs_diff(&train_logits, &logits_again), 0.0);
    assert_eq!(train_logits.dims(), &[4, 14]);
    assert!(train_logits.mean(D::Minus1).unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn a_few_steps_overfit_eight_images() {
    let mut config = tiny_config();
    config.max_shift_px = 0;
    // A larger step than the recipe's 0.01, so that 20 steps show the fit clearly.
    config.lr = 0.1;
    config.plateau_patience = 1000;
    config.early_stop_patience = None;
    let data = load_classifier_dataset(&fixtures(), &fixtures().join("labels.csv"), &config).unwrap();
    let mut trainer = ClassifierTrainer::new(config, split(0..8, 0..8), &Device::Cpu).unwrap();
    let mut losses = Vec::new();
    for _ in 0..20 {
        let (loss, _) = trainer.train_step(&data).unwrap();
        assert!(loss.is_finite());
        losses.push(loss);
    }
    let first = losses[..4].iter().sum::<f32>() / 4.0;
    let last = losses[16..].iter().sum::<f32>() / 4.0;
    assert!(last < 0.85 * first, "losses {losses:?}");
    // Ten epochs of 2 steps, each validated through the inference network; validation loss falls too.
    let history = trainer.history();
    assert_eq!(history.len(), 10);
    assert!(history[9].validation_loss < history[0].validation_loss, "{history:?}");
}

/// The optimiser state holds values, not graphs: a momentum buffer that recorded its parameter would keep the
/// previous step's buffer, and so every step's, in memory (25 MB a step at growth 12 until the process was killed).
#[test]
fn momentum_buffers_keep_no_graph_between_steps() {
    let config = tiny_config();
    let data = load_classifier_dataset(&fixtures(), &fixtures().join("labels.csv"), &config).unwrap();
    let mut trainer = ClassifierTrainer::new(config, split(0..8, 8..12), &Device::Cpu).unwrap();
    for _ in 0..2 {
        trainer.train_step(&data).unwrap();
    }
    let tracked: Vec<&String> =
        trainer.momentum_buffers().iter().filter(|(_, buffer)| buffer.track_op()).map(|(name, _)| name).collect();
    assert!(tracked.is_empty(), "momentum buffers recorded in a graph: {tracked:?}");
}

#[test]
fn resume_is_bit_exact_and_the_saved_file_classifies() {
    let config = tiny_config();
    let data = load_classifier_dataset(&fixtures(), &fixtures().join("labels.csv"), &config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 12 training rows, 3 steps per epoch: 5 steps cross an epoch end (validation, best weights) mid-run.
    let mut straight = ClassifierTrainer::new(config.clone(), split(0..12, 12..16), &Device::Cpu).unwrap();
    for _ in 0..5 {
        straight.train_step(&data).unwrap();
    }
    let mut first = ClassifierTrainer::new(config, split(0..12, 12..16), &Device::Cpu).unwrap();
    for _ in 0..2 {
        first.train_step(&data).unwrap();
    }
    let checkpoint = dir.path().join("c.ckpt.safetensors");
    first.save_checkpoint(&checkpoint).unwrap();
    let mut resumed = ClassifierTrainer::resume(&checkpoint, &Device::Cpu).unwrap();
    for _ in 0..3 {
        resumed.train_step(&data).unwrap();
    }
    assert_eq!(resumed.step(), 5);
    assert_eq!(resumed.history(), straight.history());
    let a = straight.parameters().tensors();
    let b = resumed.parameters().tensors();
    assert_eq!(a.len(), b.len());
    for (name, tensor) in &a {
        let x = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = b[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(x == y, "{name} differs after resume");
    }

    // The saved result loads through the unchanged inference path and classifies a preprocessed film.
    let out = dir.path().join("classifier.safetensors");
    let card = resumed.result_card("tiny", Provenance::default());
    resumed.save_result(&out, &card).unwrap();
    let net = DenseNet121::load(&out, &Device::Cpu).unwrap();
    assert_eq!(net.card().resolution, 32);
    let picture = image::open(fixtures().join("train_00.png")).unwrap().into_luma8();
    let gray: Vec<f32> = picture.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
    let x = classifier_input_sized(
        &gray,
        picture.width() as usize,
        picture.height() as usize,
        net.card().input_normalization.as_ref(),
        32,
        &Device::Cpu,
    )
    .unwrap();
    let probabilities = net.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(probabilities[0].len(), 14);
    assert!(probabilities[0].iter().all(|p| (0.0..=1.0).contains(p)));
    let aucs = resumed.validation_auc(&data).unwrap();
    assert_eq!(aucs.len(), 14);
    assert!(aucs.iter().all(|a| a.auc.is_none_or(|v| (0.0..=1.0).contains(&v))));
    assert!(aucs.iter().all(|a| a.positives + a.negatives <= 4));
}

fn cli(args: &[&str], images: &Path, labels: &Path, out: &Path) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train", "classifier", "--images"]).arg(images).arg("--labels").arg(labels);
    command.args(["--device", "cpu", "--resolution", "32", "--growth-rate", "4", "--num-init-features", "8"]);
    command.args(["--block-config", "1,1,1,1", "--batch", "4"]).args(args).arg("--out").arg(out);
    command.output().unwrap()
}

#[test]
fn cli_trains_resumes_and_records_auc_in_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.safetensors");
    let log = dir.path().join("log.csv");
    let labels = fixtures().join("labels.csv");
    let log_text = log.to_string_lossy().into_owned();
    let first =
        cli(&["--steps", "2", "--val-fraction", "0.25", "--json", "--log", &log_text], &fixtures(), &labels, &out);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("ETA") && stderr.contains("validation AUC"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["steps"], 2);
    assert_eq!(summary["validation_images"], 4);
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train", "classifier", "--images"]).arg(fixtures()).arg("--labels").arg(&labels);
    command.args(["--device", "cpu", "--val-fraction", "0.25", "--steps", "3", "--json", "--log", &log_text]);
    command.arg("--resume").arg(dir.path().join("c.ckpt.safetensors")).arg("--out").arg(&out);
    let second = command.output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["steps"], 3);
    assert_eq!(summary["steps_this_run"], 1);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
    let net = DenseNet121::load(&out, &Device::Cpu).unwrap();
    let card = net.card();
    assert_eq!(card.metrics["training_steps"], 3);
    assert_eq!(card.metrics["validation_auc"].as_object().unwrap().len(), 14);
    assert!(card.provenance.training_command.as_deref().unwrap_or("").contains("train classifier"));
    assert_eq!(card.hyper["growth_rate"], 4.0);

    // Resuming without a split flag keeps the checkpoint's split (the default fraction would differ).
    let mut command = Command::new(env!("CARGO_BIN_EXE_thorax"));
    command.args(["train", "classifier", "--images"]).arg(fixtures()).arg("--labels").arg(&labels);
    command.args(["--device", "cpu", "--steps", "4", "--json"]);
    command.arg("--resume").arg(dir.path().join("c.ckpt.safetensors")).arg("--out").arg(&out);
    let third = command.output().unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(summary["steps"], 4);
    assert_eq!(summary["validation_images"], 4);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.safetensors");
    let missing = cli(&["--steps", "1"], &fixtures(), &dir.path().join("nope.csv"), &out);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.csv"));

    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "file,findings\n").unwrap();
    let result = cli(&["--steps", "1"], &fixtures(), &empty, &out);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("empty.csv") && stderr.contains("no rows"), "{stderr}");

    let no_label = dir.path().join("no_label.csv");
    let header: Vec<&str> = NIH_CLASSIFIER_LABELS.iter().copied().filter(|l| *l != "Hernia").collect();
    let mut text = format!("file,{}\n", header.join(","));
    for row in 0..8 {
        text.push_str(&format!("train_{row:02}.png{}\n", ",0".repeat(header.len())));
    }
    std::fs::write(&no_label, text).unwrap();
    let result = cli(&["--steps", "1"], &fixtures(), &no_label, &out);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("Hernia") && stderr.contains("no_label.csv"), "{stderr}");

    let fold = cli(&["--steps", "1", "--val-fold", "1"], &fixtures(), &fixtures().join("labels.csv"), &out);
    assert!(!fold.status.success());
    assert!(String::from_utf8_lossy(&fold.stderr).contains("`fold`"));
}

#[test]
fn cli_never_writes_over_its_labels_or_an_earlier_log() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    std::fs::copy(fixtures().join("labels.csv"), &labels).unwrap();
    let original = std::fs::read(&labels).unwrap();
    let labels_text = labels.to_string_lossy().into_owned();
    let out = dir.path().join("c.safetensors");

    let onto_labels = cli(&["--steps", "1", "--val-fraction", "0.25"], &fixtures(), &labels, &labels);
    let stderr = String::from_utf8_lossy(&onto_labels.stderr);
    assert!(
        !onto_labels.status.success() && stderr.contains("--out") && stderr.contains("is the labels CSV"),
        "{stderr}"
    );
    let log_on_labels =
        cli(&["--steps", "1", "--val-fraction", "0.25", "--log", &labels_text], &fixtures(), &labels, &out);
    let stderr = String::from_utf8_lossy(&log_on_labels.stderr);
    assert!(!log_on_labels.status.success() && stderr.contains("--log"), "{stderr}");
    assert_eq!(std::fs::read(&labels).unwrap(), original, "the labels are untouched");

    let notes = dir.path().join("notes.csv");
    std::fs::write(&notes, "my notes\n").unwrap();
    let notes_text = notes.to_string_lossy().into_owned();
    let over_notes = cli(&["--steps", "1", "--val-fraction", "0.25", "--log", &notes_text], &fixtures(), &labels, &out);
    let stderr = String::from_utf8_lossy(&over_notes.stderr);
    assert!(!over_notes.status.success() && stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");

    // No image is written among the training images, over one or beside them; and a model is a .safetensors.
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, images.join(path.file_name().unwrap())).unwrap();
    }
    let image = images.join("train_00.png");
    let image_bytes = std::fs::read(&image).unwrap();
    let files_before = std::fs::read_dir(&images).unwrap().count();
    for (out, expected) in [
        (image.clone(), "lies in the --images folder"),
        (images.join("new.png"), "lies in the --images folder"),
        (dir.path().join("model.png"), "give the file the .safetensors extension"),
    ] {
        let run = cli(&["--steps", "1", "--val-fraction", "0.25"], &images, &labels, &out);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && stderr.contains(expected), "{stderr}");
    }
    assert_eq!(std::fs::read(&image).unwrap(), image_bytes, "the image is untouched");
    assert_eq!(std::fs::read_dir(&images).unwrap().count(), files_before, "nothing was added beside it");
}
