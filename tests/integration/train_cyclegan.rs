//! `thorax train cyclegan` at toy size (32 px, ngf 4, ndf 4, one residual block) on small synthetic domains: the
//! training forward equals the inference network, the transposed convolution equals candle's, losses are finite and
//! the cycle loss falls, resume is bit-exact, the saved generators load and translate, and bad input is refused.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device, Tensor, Var};
use thorax::models::card::Provenance;
use thorax::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use thorax::models::style_transfer::translate_gray;
use thorax::models::weights::Weights;
use thorax::train::cyclegan_train::{conv_transpose3x3_s2_train, cyclegan_generator_forward};
use thorax::train::cyclegan_trainer::{CycleGanTrainConfig, CycleGanTrainer};
use thorax::train::domain_images::DomainImages;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// `count` grey PNGs per domain (48x40, so the centre crop matters): A are left-to-right ramps with a bright disc,
/// B top-to-bottom ramps with a dark bar; file names `a_i.png` / `b_i.png` in one folder.
fn write_domains(dir: &Path, count: usize) {
    for i in 0..count {
        let a = image::GrayImage::from_fn(48, 40, |x, y| {
            let dx = x as f32 - 20.0 - i as f32;
            let dy = y as f32 - 20.0;
            let disc = if dx * dx + dy * dy < 64.0 { 80.0 } else { 0.0 };
            image::Luma([((x as f32 * 3.0 + disc + i as f32 * 7.0).min(255.0)) as u8])
        });
        a.save(dir.join(format!("a_{i}.png"))).unwrap();
        let b = image::GrayImage::from_fn(48, 40, |x, y| {
            let bar = if (x as usize).abs_diff(14 + 2 * i) < 3 { 0.0 } else { 1.0 };
            image::Luma([((y as f32 * 5.0 + 40.0) * bar).min(255.0) as u8])
        });
        b.save(dir.join(format!("b_{i}.png"))).unwrap();
    }
}

fn tiny_config() -> CycleGanTrainConfig {
    let mut config = CycleGanTrainConfig::new(32, 4, 4, 1, ["NIH".to_owned(), "Guangzhou".to_owned()]);
    config.seed = 11;
    config
}

fn domains(dir: &Path) -> (DomainImages, DomainImages) {
    (DomainImages::load("A", dir, "a_", 32).unwrap(), DomainImages::load("B", dir, "b_", 32).unwrap())
}

/// The training forward on random weights (with non-zero biases) equals the inference network, on a non-square
/// batch, within 1e-4.
#[test]
fn training_forward_equals_the_inference_network() {
    let device = Device::Cpu;
    let config = CycleGanConfig {
        ngf: 4,
        n_blocks: 2,
        input_nc: 1,
        output_nc: 1,
        use_dropout: false,
        direction: Direction::AToB,
    };
    let card = config.card("parity", ["A", "B"], Provenance::default());
    let mut tensors = HashMap::new();
    for (i, (name, shape)) in config.tensor_shapes().into_iter().enumerate() {
        let std = if name.ends_with(".bias") { 0.1 } else { 0.3 };
        let seeded = Tensor::randn(0f32, std, shape, &device).unwrap();
        tensors.insert(name, (seeded + 0.001 * i as f64).unwrap());
    }
    let x = Tensor::randn(0f32, 0.5, (2, 1, 24, 32), &device).unwrap().tanh().unwrap();
    let trained = cyclegan_generator_forward(&config, &tensors, &x).unwrap();
    let inference = CycleGanGenerator::from_weights(Weights { card, tensors }).unwrap().forward(&x).unwrap();
    assert_eq!(trained.dims(), &[2, 1, 24, 32]);
    let diff = max_diff(&trained, &inference);
    assert!(diff < 1e-4, "training and inference forwards differ by {diff}");
    // The output is not trivially saturated or constant.
    let spread = max_diff(&trained.narrow(0, 0, 1).unwrap(), &trained.narrow(0, 1, 1).unwrap());
    assert!(spread > 1e-2, "{spread}");
}

/// The sub-pixel transposed convolution equals candle's conv_transpose2d(padding 1, output_padding 1, stride 2) in
/// values and in the gradients of input and weight.
#[test]
fn transposed_convolution_equals_candle_in_values_and_gradients() {
    let device = Device::Cpu;
    for (batch, maps_in, maps_out, height, width) in [(1, 3, 2, 4, 4), (2, 4, 5, 3, 6), (1, 2, 3, 1, 1)] {
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (batch, maps_in, height, width), &device).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (maps_in, maps_out, 3, 3), &device).unwrap()).unwrap();
        let ours = conv_transpose3x3_s2_train(x.as_tensor(), w.as_tensor()).unwrap();
        let theirs = x.as_tensor().conv_transpose2d(w.as_tensor(), 1, 1, 2, 1).unwrap();
        assert_eq!(ours.dims(), &[batch, maps_out, 2 * height, 2 * width]);
        assert_eq!(ours.dims(), theirs.dims());
        assert!(max_diff(&ours, &theirs) < 1e-10, "values {:?}", (batch, maps_in, maps_out, height, width));
        let probe = Tensor::randn(0f64, 1.0, ours.dims(), &device).unwrap();
        let g_ours = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for (what, var) in [("input", &x), ("weight", &w)] {
            let a = g_ours.get(var.as_tensor()).unwrap();
            let b = g_theirs.get(var.as_tensor()).unwrap();
            assert!(max_diff(a, b) < 1e-10, "{what} gradient {:?}", (batch, maps_in, maps_out, height, width));
        }
    }
}

#[test]
fn losses_are_finite_and_the_cycle_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    write_domains(dir.path(), 6);
    let (a, b) = domains(dir.path());
    assert_eq!((a.len(), b.len()), (6, 6));
    let mut config = tiny_config();
    config.batch = 2;
    let mut trainer = CycleGanTrainer::new(config, &Device::Cpu).unwrap();
    let mut cycle = Vec::new();
    for _ in 0..20 {
        let l = trainer.train_step(&a, &b).unwrap();
        for value in [l.d_a, l.d_b, l.g_a, l.g_b, l.cycle_a, l.cycle_b, l.idt_a, l.idt_b, l.g_total] {
            assert!(value.is_finite() && value >= 0.0, "{l:?}");
        }
        assert!(l.idt_a > 0.0 && l.d_a > 0.0);
        cycle.push(f64::from(l.cycle_a + l.cycle_b));
    }
    let first = cycle[..4].iter().sum::<f64>() / 4.0;
    let last = cycle[16..].iter().sum::<f64>() / 4.0;
    println!("cycle loss (A + B, weighted) mean of steps 1-4 {first:.4}, of steps 17-20 {last:.4}");
    assert!(last < 0.85 * first, "cycle loss {first} -> {last}: {cycle:?}");
    assert_eq!(trainer.step(), 20);
}

#[test]
fn resume_from_a_checkpoint_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    write_domains(dir.path(), 3);
    let (a, b) = domains(dir.path());
    let mut config = tiny_config();
    // A pool of 2 fills in the first step, so later steps swap pooled fakes: their state must survive the resume.
    config.pool_size = 2;
    config.batch = 2;
    config.decay = Some(thorax::train::cyclegan_trainer::LinearDecay { start_step: 2, end_step: 4 });
    let mut straight = CycleGanTrainer::new(config.clone(), &Device::Cpu).unwrap();
    for _ in 0..4 {
        straight.train_step(&a, &b).unwrap();
    }
    let mut first_half = CycleGanTrainer::new(config, &Device::Cpu).unwrap();
    for _ in 0..2 {
        first_half.train_step(&a, &b).unwrap();
    }
    let middle = dir.path().join("middle.ckpt.safetensors");
    first_half.save_checkpoint(&middle).unwrap();
    drop(first_half);
    let mut resumed = CycleGanTrainer::resume(&middle, &Device::Cpu).unwrap();
    assert_eq!(resumed.step(), 2);
    for _ in 0..2 {
        resumed.train_step(&a, &b).unwrap();
    }
    let (path_a, path_b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    straight.save_checkpoint(&path_a).unwrap();
    resumed.save_checkpoint(&path_b).unwrap();
    let tensors_a = candle_core::safetensors::load(&path_a, &Device::Cpu).unwrap();
    let tensors_b = candle_core::safetensors::load(&path_b, &Device::Cpu).unwrap();
    let mut names: Vec<&String> = tensors_a.keys().collect();
    names.sort();
    let mut names_b: Vec<&String> = tensors_b.keys().collect();
    names_b.sort();
    assert_eq!(names, names_b);
    for group in ["G/G_A.", "G/G_B.", "D/D_A.", "D/D_B.", "adam_G/m/", "adam_G/v/", "adam_D/m/", "adam_D/v/", "pool/A"]
    {
        assert!(names.iter().any(|n| n.starts_with(group)), "no {group} tensors in {names:?}");
    }
    for name in names {
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&tensors_a[name]), bits(&tensors_b[name]), "{name} differs after resume");
    }
    // Everything but the measured wall time agrees.
    let mut state_a = CycleGanTrainer::read_checkpoint_state(&path_a).unwrap();
    let mut state_b = CycleGanTrainer::read_checkpoint_state(&path_b).unwrap();
    assert_eq!((state_a.step, state_a.adam_generator_step, state_a.adam_discriminator_step), (4, 4, 4));
    (state_a.train_seconds, state_b.train_seconds) = (0.0, 0.0);
    assert_eq!(state_a, state_b);
    // Training moved the weights, so the comparison is not between untouched tensors.
    let fresh = CycleGanTrainer::new(tiny_config(), &Device::Cpu).unwrap();
    fresh.save_checkpoint(&dir.path().join("fresh.safetensors")).unwrap();
    let start = candle_core::safetensors::load(dir.path().join("fresh.safetensors"), &Device::Cpu).unwrap();
    let key = "G/G_A.model.1.weight";
    assert!(max_diff(&start[key], &tensors_a[key]) > 0.0);
}

#[test]
fn saved_generators_load_with_the_cyclegan_loader_and_translate() {
    let dir = tempfile::tempdir().unwrap();
    write_domains(dir.path(), 3);
    let (a, b) = domains(dir.path());
    let mut trainer = CycleGanTrainer::new(tiny_config(), &Device::Cpu).unwrap();
    trainer.train_step(&a, &b).unwrap();
    for direction in [Direction::AToB, Direction::BToA] {
        let card = trainer.generator_card(direction, "test", Provenance::default());
        let path = dir.path().join(format!("g_{}.safetensors", direction.as_str()));
        trainer.save_generator(&path, direction, &card, DType::F32).unwrap();
        let generator = CycleGanGenerator::load(&path, &Device::Cpu).unwrap();
        assert_eq!(generator.config().direction, direction);
        assert_eq!(generator.card().labels, vec!["NIH".to_owned(), "Guangzhou".to_owned()]);
        assert!(!generator.card().untrained);
        let gray: Vec<f32> = (0..40 * 36).map(|i| (i % 40) as f32 / 40.0).collect();
        let translated = translate_gray(&generator, &gray, 40, 36, &Device::Cpu).unwrap();
        assert_eq!((translated.width_px, translated.height_px), (40, 36));
        // The file computes what the trainer's own network computes.
        let x = a.batch(&[0, 1], &Device::Cpu).unwrap();
        let own = trainer.generator_network(direction).unwrap().forward(&x).unwrap();
        assert_eq!(max_diff(&generator.forward(&x).unwrap(), &own), 0.0);
    }
    let errors = trainer.cycle_errors(&a, &b).unwrap().unwrap();
    assert!(errors.a_to_b_to_a.is_finite() && errors.a_to_b_to_a > 0.0 && errors.b_to_a_to_b < 2.0, "{errors:?}");
    assert_eq!((errors.images_a, errors.images_b), (3, 3));
}

fn thorax() -> Command {
    Command::new(env!("CARGO_BIN_EXE_thorax"))
}

/// The command end to end: domain A joined from two folders, 2 steps, then a resume to 3, with the log, the
/// held-out list, both generators, the card's metrics and the JSON summary; `thorax translate` uses the result at
/// both scales.
#[test]
fn cli_trains_resumes_and_writes_generators_with_cards() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_domains(&data, 4);
    let more_a = dir.path().join("more");
    std::fs::create_dir(&more_a).unwrap();
    write_domains(&more_a, 2);
    let out = dir.path().join("cg.safetensors");
    let log = dir.path().join("losses.csv");
    let held_out = dir.path().join("held-out.csv");
    let run = |steps: &str, resume: bool| {
        let mut command = thorax();
        command.args(["train", "cyclegan", "--domain-a"]).arg(&data).arg("--domain-a").arg(&more_a);
        command.arg("--domain-b").arg(&data).arg("--held-out-list").arg(&held_out);
        command.args(["--domain-a-prefix", "a_", "--domain-b-prefix", "b_", "--val-count", "2"]);
        if resume {
            command.arg("--resume").arg(dir.path().join("cg.ckpt.safetensors"));
        } else {
            command.args(["--resolution", "32", "--ngf", "4", "--ndf", "4", "--blocks", "1"]);
            command.args(["--domain-a-name", "NIH", "--domain-b-name", "Guangzhou"]);
        }
        command.args(["--steps", steps, "--device", "cpu", "--json", "--licence", "CC BY 4.0 test"]);
        command.arg("--log").arg(&log).arg("--out").arg(&out);
        command.output().unwrap()
    };
    let first = run("2", false);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stderr).contains("ETA"));
    let second = run("3", true);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    // A resume keeps the stored hold-out count and refuses other folders or another count (either would put
    // held-out images into training).
    let cases = [(vec![&data], vec![], "had 6 and 4"), (vec![&data, &more_a], vec!["--val-count", "3"], "val-count")];
    for (folders_a, extra, expected) in cases {
        let mut command = thorax();
        command.args(["train", "cyclegan", "--domain-b"]).arg(&data);
        for folder in folders_a {
            command.arg("--domain-a").arg(folder);
        }
        command.args(["--domain-a-prefix", "a_", "--domain-b-prefix", "b_", "--steps", "4", "--device", "cpu"]);
        command.args(extra).arg("--resume").arg(dir.path().join("cg.ckpt.safetensors"));
        let refused = command.arg("--out").arg(dir.path().join("other.safetensors")).output().unwrap();
        assert!(!refused.status.success());
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(message.contains(expected), "{message}");
        assert!(!dir.path().join("other.safetensors").exists());
    }
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["steps"], 3);
    assert_eq!(summary["steps_this_run"], 1);
    assert_eq!(summary["held_out_images"], serde_json::json!([2, 2]));
    assert!(summary["cycle_errors"]["a_to_b_to_a"].as_f64().unwrap() > 0.0);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log_text.lines().count(), 4, "{log_text}");
    for (path, direction) in [(out.clone(), Direction::AToB), (dir.path().join("cg_b2a.safetensors"), Direction::BToA)]
    {
        let generator = CycleGanGenerator::load(&path, &Device::Cpu).unwrap();
        let card = generator.card();
        assert_eq!(generator.config().direction, direction);
        assert_eq!(card.labels, vec!["NIH".to_owned(), "Guangzhou".to_owned()]);
        assert_eq!(card.metrics["training_steps"], 3);
        assert!(card.metrics["cycle_l1_a_to_b_to_a"].as_f64().unwrap() > 0.0);
        assert_eq!(card.metrics["held_out_images"]["Guangzhou"], 2);
        assert_eq!(card.provenance.licence.as_deref(), Some("CC BY 4.0 test"));
        let data_text = card.provenance.training_data.clone().unwrap();
        assert!(data_text.contains("NIH: 6 images") && data_text.contains("2 held out"), "{data_text}");
        assert!(data_text.contains(&format!("{} + {}", data.display(), more_a.display())), "{data_text}");
        assert!(card.provenance.training_command.clone().unwrap().contains("cyclegan"));
    }
    let listed = std::fs::read_to_string(&held_out).unwrap();
    let rows: Vec<&str> = listed.lines().collect();
    assert_eq!(rows.len(), 5, "{listed}");
    assert_eq!(rows[0], "domain,file");
    assert_eq!(rows.iter().filter(|row| row.starts_with("NIH,")).count(), 2, "{listed}");
    for row in &rows[1..] {
        let (_, file) = row.split_once(',').unwrap();
        assert!(Path::new(file).is_file(), "{row}");
    }
    // A 48 x 40 image: at the training scale (32 px) the generator sees 40 x 32, at its own scale 48 x 40.
    for (scale, size) in [(None, (40, 32)), (Some("native"), (48, 40)), (Some("training"), (40, 32))] {
        let mut command = thorax();
        command.args(["translate", "--direction", "a2b", "--model"]).arg(&out).arg(data.join("a_0.png"));
        if let Some(scale) = scale {
            command.args(["--scale", scale]);
        }
        // A folder per scale: translate does not replace the previous scale's a_0_a2b.png.
        let folder = dir.path().join(format!("translated-{}", scale.unwrap_or("default")));
        let translated = command.arg("--out").arg(&folder).output().unwrap();
        assert!(translated.status.success(), "{}", String::from_utf8_lossy(&translated.stderr));
        let image = image::open(folder.join("a_0_a2b.png")).unwrap();
        assert_eq!((image.width(), image.height()), size, "--scale {scale:?}");
    }
}

#[test]
fn bad_input_gives_errors_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    write_domains(dir.path(), 2);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = |a: &Path, b: &Path, extra: &[&str]| {
        let output = thorax()
            .args(["train", "cyclegan", "--domain-a"])
            .arg(a)
            .arg("--domain-b")
            .arg(b)
            .args(["--ngf", "2", "--ndf", "2", "--blocks", "0", "--steps", "1"])
            .args(["--device", "cpu"])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join("never.safetensors"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(!dir.path().join("never.safetensors").exists());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let message = run(dir.path(), &empty, &["--resolution", "32", "--val-count", "0"]);
    assert!(message.contains("domain B") && message.contains("no PNG") && message.contains("empty"), "{message}");
    let message = run(Path::new("/no/such/folder"), dir.path(), &["--resolution", "32", "--val-count", "0"]);
    assert!(message.contains("/no/such/folder") && message.contains("does not exist"), "{message}");
    let message = run(dir.path(), dir.path(), &["--resolution", "48", "--val-count", "0"]);
    assert!(message.contains("--resolution 48") && message.contains("64, 128 or 256"), "{message}");
    let message = run(dir.path(), dir.path(), &["--resolution", "32", "--domain-a-prefix", "a_", "--val-count", "2"]);
    assert!(message.contains("2 images cannot spare 2"), "{message}");
}

#[test]
fn cli_refuses_one_folder_as_both_domains() {
    let dir = tempfile::tempdir().unwrap();
    write_domains(dir.path(), 2);
    let output = thorax()
        .args(["train", "cyclegan", "--domain-a"])
        .arg(dir.path())
        .arg("--domain-b")
        .arg(dir.path().join("."))
        .args(["--steps", "1", "--device", "cpu", "--out"])
        .arg(dir.path().join("cg.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("both take") && stderr.contains("same file prefix"),
        "{stderr}"
    );
}
