//! `thorax convert progan-tf` and `thorax generate` end to end on the TensorFlow parity fixture.

use std::path::{Path, PathBuf};

use clap::Parser;
use thorax::cli::convert_progan::{self, ConvertProganArgs};
use thorax::cli::generate::{self, GenerateArgs};
use thorax::convert::npy::{read_npy_f32, write_npy_f32};
use thorax::models::progan::to_png_u8;

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

#[derive(Parser)]
struct ConvertCli {
    #[command(flatten)]
    args: ConvertProganArgs,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/progan").join(name)
}

fn converted(dir: &Path) -> PathBuf {
    let out = dir.join("g.safetensors");
    let pkl = fixture("progan64_np2_p5.pkl");
    let cli = ConvertCli::try_parse_from(["convert", pkl.to_str().unwrap(), out.to_str().unwrap(), "--dataset", "nih"])
        .unwrap();
    convert_progan::run(&cli.args).unwrap();
    out
}

fn generate(args: &[&str]) -> anyhow::Result<()> {
    let cli = GenerateCli::try_parse_from(std::iter::once("generate").chain(args.iter().copied()))?;
    generate::run(&cli.args, None)
}

#[test]
fn generate_from_npy_matches_tensorflow_and_writes_pngs_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let raw = dir.path().join("raw.npy");
    let pngs = dir.path().join("png");
    let latents = fixture("inputs_latents.npy");
    let labels = fixture("inputs_labels.npy");
    generate(&[
        "--model",
        model.to_str().unwrap(),
        "--latent-npy",
        latents.to_str().unwrap(),
        "--labels-npy",
        labels.to_str().unwrap(),
        "--out-npy",
        raw.to_str().unwrap(),
        "--out",
        pngs.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch-size",
        "3",
    ])
    .unwrap();
    let (shape, ours) = read_npy_f32(&raw).unwrap();
    let (reference_shape, reference) = read_npy_f32(&fixture("reference_output.npy")).unwrap();
    assert_eq!(shape, reference_shape);
    let range = reference.iter().copied().fold(f32::MIN, f32::max) - reference.iter().copied().fold(f32::MAX, f32::min);
    let error = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(error <= 1e-4 * range, "{error}");

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(pngs.join("fake_2.png")).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut pixels).unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height, info.color_type), (64, 64, png::ColorType::Grayscale));
    let text: std::collections::HashMap<_, _> =
        info.uncompressed_latin1_text.iter().map(|t| (t.keyword.clone(), t.text.clone())).collect();
    let sha = thorax::convert::progan_tf::sha256_hex(&std::fs::read(&model).unwrap());
    assert_eq!(text["thorax.model_sha256"], sha);
    assert!(text["thorax.labels"].starts_with("Cardiomegaly="), "{}", text["thorax.labels"]);
    assert!(text["thorax.latent"].ends_with("row 2"));
    let image = &ours[2 * 64 * 64..3 * 64 * 64];
    let expected: Vec<u8> = image.iter().map(|&v| to_png_u8(v)).collect();
    assert_eq!(pixels, expected);
}

#[test]
fn generate_by_seed_and_label_names_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let first = dir.path().join("a.npy");
    let second = dir.path().join("b.npy");
    for out in [&first, &second] {
        generate(&[
            "--model",
            model.to_str().unwrap(),
            "--labels",
            "Cardiomegaly=1, Edema=0.5",
            "--seed",
            "1000",
            "-n",
            "2",
            "--out-npy",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ])
        .unwrap();
    }
    let (shape, a) = read_npy_f32(&first).unwrap();
    assert_eq!(shape, vec![2, 1, 64, 64]);
    assert_eq!(a, read_npy_f32(&second).unwrap().1);
    // Seed 1000 means np.random.RandomState(1000).randn(2, 32): the same as feeding those latents from a file.
    let latents = thorax::models::progan::latents_from_seed(1000, 2, 32);
    let z = dir.path().join("z.npy");
    write_npy_f32(&z, &[2, 32], &latents).unwrap();
    let mut labels = vec![0.0f32; 14];
    labels[0] = 1.0; // Cardiomegaly is first in the NIH GAN order
    labels[12] = 0.5; // Edema
    let l = dir.path().join("l.npy");
    write_npy_f32(&l, &[1, 14], &labels).unwrap();
    let third = dir.path().join("c.npy");
    generate(&[
        "--model",
        model.to_str().unwrap(),
        "--labels-npy",
        l.to_str().unwrap(),
        "--latent-npy",
        z.to_str().unwrap(),
        "--out-npy",
        third.to_str().unwrap(),
        "--device",
        "cpu",
    ])
    .unwrap();
    assert_eq!(a, read_npy_f32(&third).unwrap().1);

    // One image per batch, streamed to a file in a folder made for it: the same values.
    let fourth = dir.path().join("new").join("d.npy");
    let png_dir = dir.path().join("pngs");
    let args = ["--model", model.to_str().unwrap(), "--labels", "Cardiomegaly=1, Edema=0.5", "--seed", "1000"];
    let streamed = [&args[..], &["-n", "2", "--batch-size", "1", "--device", "cpu"]].concat();
    let outputs = ["--out-npy", fourth.to_str().unwrap(), "--out", png_dir.to_str().unwrap()];
    generate(&[&streamed[..], &outputs[..]].concat()).unwrap();
    assert_eq!(read_npy_f32(&fourth).unwrap(), (vec![2, 1, 64, 64], a));
    assert!(png_dir.join("fake_1.png").is_file());
    // --out naming a file is refused by its name.
    let error = generate(&[&streamed[..], &["--out", first.to_str().unwrap()]].concat()).unwrap_err();
    assert!(format!("{error:#}").contains("a.npy is a file"), "{error:#}");
}

#[test]
fn generate_reports_bad_arguments_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let model = converted(dir.path());
    let model = model.to_str().unwrap();
    let out = dir.path().join("o.npy");
    let out = out.to_str().unwrap();
    let error =
        generate(&["--model", model, "--labels", "Cardiomegly=1", "--seed", "1", "--out-npy", out, "--device", "cpu"])
            .unwrap_err()
            .to_string();
    assert!(error.contains("unknown label `Cardiomegly`") && error.contains("Cardiomegaly, Emphysema"), "{error}");

    let z = dir.path().join("z.npy");
    write_npy_f32(&z, &[2, 31], &[0.0; 62]).unwrap();
    let error = generate(&[
        "--model",
        model,
        "--labels",
        "",
        "--latent-npy",
        z.to_str().unwrap(),
        "--out-npy",
        out,
        "--device",
        "cpu",
    ])
    .unwrap_err();
    assert!(format!("{error:#}").contains("expected [N, 32] (latent size"), "{error:#}");

    let l = dir.path().join("l.npy");
    write_npy_f32(&l, &[3, 14], &[0.0; 42]).unwrap();
    let error = generate(&[
        "--model",
        model,
        "--labels-npy",
        l.to_str().unwrap(),
        "--seed",
        "1",
        "-n",
        "2",
        "--out-npy",
        out,
        "--device",
        "cpu",
    ])
    .unwrap_err();
    assert!(error.to_string().contains("3 label rows for 2 images"), "{error:#}");

    // Neither labels nor a latent source: clap refuses.
    assert!(generate(&["--model", model, "--out-npy", out]).is_err());
    assert!(generate(&["--model", model, "--labels", "", "--out-npy", out]).is_err());
    // No output requested.
    let error = generate(&["--model", model, "--labels", "", "--seed", "1"]).unwrap_err();
    assert!(error.to_string().contains("nothing to write"));
    // No model and no embedded default.
    let error = generate(&["--labels", "", "--seed", "1", "--out-npy", out, "--device", "cpu"]).unwrap_err();
    assert!(error.to_string().contains("no --model"), "{error}");
}
