//! `thorax card`: shows a model card and records metrics in it without touching the tensors.

use std::path::Path;
use std::process::Command;

use candle_core::Device;

fn thorax(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thorax")).args(args).output().unwrap()
}

#[test]
fn add_metrics_records_them_and_keeps_the_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/progan-untrained-64px.safetensors");
    let file = dir.path().join("g.safetensors");
    std::fs::copy(&original, &file).unwrap();
    let metrics = dir.path().join("m.json");
    std::fs::write(&metrics, r#"{"fd_densenet": 12.5, "audit": {"flagged": 0}}"#).unwrap();
    let output =
        thorax(&["card".as_ref(), file.as_os_str(), "--add-metrics".as_ref(), metrics.as_os_str(), "--json".as_ref()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let card: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(card["metrics"]["fd_densenet"], 12.5);
    assert_eq!(card["metrics"]["audit"]["flagged"], 0);

    let before = candle_core::safetensors::load(&original, &Device::Cpu).unwrap();
    let after = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    assert_eq!(before.len(), after.len());
    for (name, tensor) in &before {
        let other = &after[name];
        assert_eq!(tensor.dtype(), other.dtype(), "{name}");
        let a = tensor.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
        let b = other.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b, "{name}");
    }
    // The generator still loads, with the new metric in its card.
    let generator = thorax::models::progan::ProganGenerator::load(&file, &Device::Cpu).unwrap();
    assert_eq!(generator.card().metrics["fd_densenet"], 12.5);
}

#[test]
fn bad_metrics_and_bad_files_are_refused_without_damage() {
    let dir = tempfile::tempdir().unwrap();
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/progan-untrained-64px.safetensors");
    let file = dir.path().join("g.safetensors");
    std::fs::copy(&original, &file).unwrap();
    let list = dir.path().join("list.json");
    std::fs::write(&list, "[1, 2]").unwrap();
    let output = thorax(&["card".as_ref(), file.as_os_str(), "--add-metrics".as_ref(), list.as_os_str()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("JSON object"));
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&original).unwrap());

    let not_weights = dir.path().join("x.safetensors");
    std::fs::write(&not_weights, b"not a safetensors file").unwrap();
    let output = thorax(&["card".as_ref(), not_weights.as_os_str()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("x.safetensors"));
}
