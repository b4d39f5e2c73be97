//! Embeds the sample radiographs of `assets/samples/` so the workbench runs on its defaults with no files around,
//! and with the `cuda` feature compiles the fused training kernels (`src/train/fused_training.cu`) to PTX.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let assets = Path::new(&manifest_dir).join("assets");
    embed(&assets.join("samples"), ".png", "EMBEDDED_SAMPLES", "embedded_samples.rs");
    embed(&assets.join("models"), ".safetensors", "EMBEDDED_MODELS", "embedded_models.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_ptx(&Path::new(&manifest_dir).join("src/train/fused_training.cu"), "fused_training.ptx");
    }
}

/// `nvcc --ptx` of `source` into `OUT_DIR/out_file`, for the compute capability in `CUDA_COMPUTE_CAP` (default 90,
/// as candle's kernels; scripts/build-cuda.sh sets both it and nvcc's PATH).
fn compile_ptx(source: &Path, out_file: &str) {
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let capability = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_owned());
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    let output = Path::new(&out_dir).join(out_file);
    let status = std::process::Command::new("nvcc")
        .args(["--ptx", "-O3", &format!("-arch=sm_{capability}"), "-o"])
        .arg(&output)
        .arg(source)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("nvcc failed on {} ({status})", source.display()),
        Err(e) => panic!("cannot run nvcc for {} (the cuda feature needs it on PATH): {e}", source.display()),
    }
}

/// Writes `OUT_DIR/out_file` declaring `static_name: &[(file name, bytes)]` for every file of `dir` ending in `suffix`.
fn embed(dir: &Path, suffix: &str, static_name: &str, out_file: &str) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = format!(
        "/// Embedded files of `{}`: (file name, bytes).\npub static {static_name}: &[(&str, &[u8])] = &[\n",
        dir.display()
    );
    for name in &names {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(code, "    ({name:?}, include_bytes!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    if let Err(e) = std::fs::write(Path::new(&out_dir).join(out_file), code) {
        panic!("cannot write {out_file}: {e}");
    }
}
