//! `train::federated` (FedAvg over sites, one thread per site) at toy size: one site equals central training bit for
//! bit, two sites end on the count-weighted average of their weights, resumed sites continue as if never stopped,
//! and a site with bad data is named in the error.

use std::path::{Path, PathBuf};

use candle_core::Device;
use thorax::models::labels::NIH_GAN_LABELS;
use thorax::train::dataset::GanDataset;
use thorax::train::federated::{FederatedSchedule, SharedWeights, Site, federated_average, train_federated};
use thorax::train::gan_trainer::{GanTrainConfig, GanTrainer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train")
}

fn labels() -> Vec<String> {
    NIH_GAN_LABELS.iter().map(|s| s.to_string()).collect()
}

fn tiny_config() -> GanTrainConfig {
    let mut config = GanTrainConfig::new(32, 16, labels());
    config.fmap_base = 64.0;
    config.latent_size = 32;
    config.batch = 4;
    config.seed = 11;
    config
}

fn site(name: &str, labels_csv: &Path, checkpoint: Option<PathBuf>) -> Site {
    Site {
        name: name.to_owned(),
        images: fixtures(),
        labels: labels_csv.to_path_buf(),
        checkpoint,
        layout: Default::default(),
    }
}

/// A labels CSV with the fixture rows whose position satisfies `keep`.
fn subset_csv(dir: &Path, name: &str, keep: impl Fn(usize) -> bool) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("labels.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_owned()];
    out.extend(lines.enumerate().filter(|(i, _)| keep(*i)).map(|(_, l)| l.to_owned()));
    let path = dir.join(name);
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn max_abs_diff(a: &SharedWeights, b: &SharedWeights) -> f32 {
    let mut worst = 0f32;
    for (group, tensors) in &a.groups {
        for (name, tensor) in tensors {
            let other = &b.groups[group][name];
            let diff = (tensor - other).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            worst = worst.max(diff);
        }
    }
    worst
}

#[test]
fn one_site_equals_central_training_bit_for_bit() {
    let config = tiny_config();
    let data = GanDataset::load(&fixtures(), &fixtures().join("labels.csv"), 32, &labels()).unwrap();
    let mut central = GanTrainer::new(config.clone(), &Device::Cpu).unwrap();
    for _ in 0..4 {
        central.train_step(&data).unwrap();
    }
    let schedule = FederatedSchedule { rounds: 2, local_steps: 2, resume: false };
    let mut rounds_seen = Vec::new();
    let outcome = train_federated(
        &config,
        &[site("only", &fixtures().join("labels.csv"), None)],
        &schedule,
        &Device::Cpu,
        |report| rounds_seen.push(report.round),
    )
    .unwrap();
    assert_eq!(rounds_seen, vec![1, 2]);
    assert_eq!(outcome.site_images, vec![("only".to_owned(), 16)]);
    let federated = outcome.trainer.shared_weights().unwrap();
    assert_eq!(max_abs_diff(&federated, &central.shared_weights().unwrap()), 0.0);
}

#[test]
fn two_sites_end_on_the_weighted_average_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // 12 and 4 images: weights 0.75 and 0.25.
    let big = subset_csv(dir.path(), "big.csv", |i| i < 12);
    let small = subset_csv(dir.path(), "small.csv", |i| i >= 12);
    let config = tiny_config();
    let checkpoints = |tag: &str| (dir.path().join(format!("{tag}-a.ckpt")), dir.path().join(format!("{tag}-b.ckpt")));
    let sites = |tag: &str| {
        let (a, b) = checkpoints(tag);
        vec![site("A", &big, Some(a)), site("B", &small, Some(b))]
    };
    let straight = FederatedSchedule { rounds: 2, local_steps: 2, resume: false };
    let outcome = train_federated(&config, &sites("straight"), &straight, &Device::Cpu, |_| {}).unwrap();
    assert_eq!(outcome.site_images, vec![("A".to_owned(), 12), ("B".to_owned(), 4)]);
    let global = outcome.trainer.shared_weights().unwrap();

    // The sites' own final weights (after their last local steps) averaged 3:1 give the global weights.
    let (a_path, b_path) = checkpoints("straight");
    let site_a = GanTrainer::resume(&a_path, &Device::Cpu).unwrap().shared_weights().unwrap();
    let site_b = GanTrainer::resume(&b_path, &Device::Cpu).unwrap().shared_weights().unwrap();
    assert!(max_abs_diff(&site_a, &site_b) > 0.0, "the sites trained on different data");
    let expected = federated_average(&[(site_a, 12), (site_b, 4)]).unwrap();
    assert_eq!(max_abs_diff(&global, &expected), 0.0);
    let g = &global.groups["G"];
    let (name, tensor) = g.iter().next().unwrap();
    let a = &GanTrainer::resume(&a_path, &Device::Cpu).unwrap().shared_weights().unwrap().groups["G"][name];
    let b = &GanTrainer::resume(&b_path, &Device::Cpu).unwrap().shared_weights().unwrap().groups["G"][name];
    let by_hand = ((a * 0.75).unwrap() + (b * 0.25).unwrap()).unwrap();
    let diff = (tensor - by_hand).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-6, "{name}: {diff}");

    // One round, stop, resume for the second: the same final weights.
    let first = FederatedSchedule { rounds: 1, local_steps: 2, resume: false };
    train_federated(&config, &sites("split"), &first, &Device::Cpu, |_| {}).unwrap();
    let rest = FederatedSchedule { rounds: 2, local_steps: 2, resume: true };
    let resumed = train_federated(&config, &sites("split"), &rest, &Device::Cpu, |_| {}).unwrap();
    assert_eq!(max_abs_diff(&resumed.trainer.shared_weights().unwrap(), &global), 0.0);
}

#[test]
fn a_site_with_bad_data_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-labels.csv");
    let schedule = FederatedSchedule { rounds: 1, local_steps: 1, resume: false };
    let sites = [site("good", &fixtures().join("labels.csv"), None), site("broken", &missing, None)];
    let error = match train_federated(&tiny_config(), &sites, &schedule, &Device::Cpu, |_| {}) {
        Ok(_) => panic!("a missing labels CSV must fail"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("broken") && error.contains("no-such-labels.csv"), "{error}");
    let empty: [Site; 0] = [];
    assert!(train_federated(&tiny_config(), &empty, &schedule, &Device::Cpu, |_| {}).is_err());
    let zero_steps = FederatedSchedule { rounds: 1, local_steps: 0, resume: false };
    assert!(train_federated(&tiny_config(), &sites[..1], &zero_steps, &Device::Cpu, |_| {}).is_err());
}

/// Two site folders (images + labels.csv each) made from the fixtures: 10 and 6 images.
fn site_folders(dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(fixtures().join("labels.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    let rows: Vec<&str> = lines.collect();
    let make = |name: &str, range: std::ops::Range<usize>| {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let mut csv = vec![header.clone()];
        for row in &rows[range] {
            let file = row.split(',').next().unwrap();
            std::fs::copy(fixtures().join(file), folder.join(file)).unwrap();
            csv.push((*row).to_owned());
        }
        std::fs::write(folder.join("labels.csv"), csv.join("\n") + "\n").unwrap();
        folder
    };
    (make("hospital-a", 0..10), make("hospital-b", 10..16))
}

#[test]
fn cli_trains_two_sites_resumes_and_records_them_in_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = site_folders(dir.path());
    let out = dir.path().join("fed.safetensors");
    let run = |rounds: &str, resume: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"));
        command.args(["train", "gan", "--federated", "--sites"]).arg(format!("{},{}", a.display(), b.display()));
        command.args(["--rounds", rounds, "--local-steps", "1", "--device", "cpu", "--json"]);
        if resume {
            command.arg("--resume").arg(dir.path().join("fed.ckpt.safetensors"));
        } else {
            command.args(["--resolution", "32", "--fmap-max", "16", "--fmap-base", "64", "--latent-size", "32"]);
            command.args(["--batch", "4"]);
        }
        command.arg("--out").arg(&out).output().unwrap()
    };
    let first = run("1", false);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(dir.path().join("fed.ckpt.site0.safetensors").is_file());
    assert!(dir.path().join("fed.ckpt.site1.safetensors").is_file());
    let second = run("2", true);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["rounds"], 2);
    assert!(String::from_utf8_lossy(&second.stderr).contains("round 2/2"));
    let generator = thorax::models::progan::ProganGenerator::load(&out, &Device::Cpu).unwrap();
    let sites = generator.card().metrics["federated_sites"].to_string();
    assert!(sites.contains("hospital-a: 10 images") && sites.contains("hospital-b: 6 images"), "{sites}");

    // A site that keeps NIH ChestX-ray14's own Data_Entry_2017.csv (images under images/) joins as it is.
    let nih = dir.path().join("hospital-nih");
    std::fs::create_dir_all(nih.join("images")).unwrap();
    let mut entries = vec!["Image Index,Finding Labels,Follow-up #,Patient ID,View Position".to_owned()];
    let text = std::fs::read_to_string(fixtures().join("labels.csv")).unwrap();
    for (i, row) in text.lines().skip(1).take(8).enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        std::fs::copy(fixtures().join(cells[0]), nih.join("images").join(cells[0])).unwrap();
        let findings = if cells[1].is_empty() { "No Finding" } else { cells[1] };
        entries.push(format!("{},{findings},0,{},PA", cells[0], 100 + i));
    }
    std::fs::write(nih.join("Data_Entry_2017.csv"), entries.join("\n") + "\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["train", "gan", "--federated", "--sites"])
        .arg(format!("{},{}", a.display(), nih.display()))
        .args(["--rounds", "1", "--local-steps", "1", "--device", "cpu", "--resolution", "32", "--fmap-max", "16"])
        .args(["--fmap-base", "64", "--latent-size", "32", "--batch", "4", "--json", "--out"])
        .arg(dir.path().join("nih.safetensors"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["sites"][1], serde_json::json!(["hospital-nih", 8]));

    // A site folder without a labels file is refused by name before anything trains.
    let empty = dir.path().join("hospital-c");
    std::fs::create_dir_all(&empty).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["train", "gan", "--federated", "--sites"])
        .arg(format!("{},{}", a.display(), empty.display()))
        .arg("--out")
        .arg(dir.path().join("never.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("hospital-c") && message.contains("labels.csv"), "{message}");
}
