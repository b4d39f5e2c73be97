//! The worker's style transfer and "Open model..." jobs, run by the production runner on the CPU.

use std::sync::Arc;
use std::time::Duration;

use thorax::engine::device::{DeviceChoice, open_device};
use thorax::engine::job_runner::ModelRunner;
use thorax::engine::{ModelSource, Output, Request, Response, WorkerHandle};
use thorax::imaging::{BitDepth, GrayImage};
use thorax::models::card::ModelKind;
use thorax::models::cyclegan::Direction;
use thorax::models::registry::default_model;
use thorax::models::style_transfer::NetworkScale;

fn worker() -> WorkerHandle {
    WorkerHandle::spawn(ModelRunner::new(open_device(DeviceChoice::Cpu).unwrap()), Arc::new(|| {})).unwrap()
}

fn run(worker: &WorkerHandle, request: Request) -> Response {
    worker.submit(request);
    worker.wait(Duration::from_secs(120)).expect("the worker answered")
}

fn placeholder_cyclegan() -> ModelSource {
    let model = default_model(ModelKind::CycleganGenerator).expect("the default CycleGAN is embedded");
    ModelSource::Embedded { file_name: model.file_name, bytes: model.bytes }
}

/// A 50 x 38 gradient: neither side is a multiple of 4, so the network works on 48 x 40 and the result is resampled.
fn gradient() -> GrayImage {
    let (w, h) = (50, 38);
    let pixels = (0..w * h).map(|i| ((i % w) * 5 % 256) as f32).collect();
    GrayImage::new(w, h, BitDepth::U8, pixels).unwrap()
}

#[test]
fn a_translation_comes_back_at_the_input_size_with_its_difference() {
    let worker = worker();
    let image = gradient();
    let response = run(
        &worker,
        Request::Translate {
            model: placeholder_cyclegan(),
            direction: Direction::AToB,
            scale: NetworkScale::Native,
            image: image.clone(),
        },
    );
    let Ok(Output::Translated(result)) = response.result else {
        panic!("translation failed: {:?}", response.result.err());
    };
    assert!(response.timings.run_ms > 0.0);
    assert_eq!(result.image_id, image.id());
    assert_eq!(result.direction, Direction::AToB);
    assert_eq!(result.translated.name, "NIH -> Guangzhou");
    assert_eq!(result.translated.tensor_dims, vec![1, 1, 40, 48]);
    for shown in [&result.translated.image, &result.difference.image] {
        assert_eq!((shown.width_px(), shown.height_px()), (50, 38));
    }
    assert_eq!(result.translated.image.depth(), BitDepth::U8);
    let translated = result.translated.image.pixels();
    assert!(translated.iter().all(|v| (0.0..=255.0).contains(v)));
    // The difference is exactly |translated - input| here: both are 8-bit at the same size.
    for ((d, t), i) in result.difference.image.pixels().iter().zip(translated).zip(image.pixels()) {
        assert!((d - (t - i).abs()).abs() < 1e-3, "{d} != |{t} - {i}|");
    }
    assert!(result.difference.image.pixels().iter().any(|&d| d > 0.0), "the network changes the image");
}

#[test]
fn at_the_training_scale_the_network_sees_the_card_side_and_the_result_comes_back_at_the_input_size() {
    let worker = worker();
    let image = gradient();
    let card = default_model(ModelKind::CycleganGenerator).unwrap().card;
    let side = card.training_side_px().expect("the default CycleGAN records its training side");
    let request = Request::Translate {
        model: placeholder_cyclegan(),
        direction: Direction::AToB,
        scale: NetworkScale::Training,
        image,
    };
    let Ok(Output::Translated(result)) = run(&worker, request).result else { panic!("translation failed") };
    // 50 x 38: the shorter side becomes the training side, the longer keeps the aspect (multiples of 4).
    let long = ((50.0 * side as f64 / 38.0).round() / 4.0).round() as usize * 4;
    assert_eq!(result.translated.tensor_dims, vec![1, 1, side as usize, long]);
    for shown in [&result.translated.image, &result.difference.image] {
        assert_eq!((shown.width_px(), shown.height_px()), (50, 38));
    }
}

#[test]
fn a_generator_of_the_other_direction_is_refused_with_both_named() {
    let worker = worker();
    let response = run(
        &worker,
        Request::Translate {
            model: placeholder_cyclegan(),
            direction: Direction::BToA,
            scale: NetworkScale::Training,
            image: gradient(),
        },
    );
    let message = response.result.unwrap_err().to_string();
    assert!(message.contains("G_A") && message.contains("NIH -> Guangzhou"), "{message}");
    assert!(message.contains("not Guangzhou -> NIH"), "{message}");
}

#[test]
fn opening_model_files_checks_their_kind_and_keeps_them_for_later_jobs() {
    let worker = worker();
    let folder = tempfile::tempdir().unwrap();
    // A ProGAN generator opened as a CycleGAN: the error names the file and both kinds.
    let progan = default_model(ModelKind::ProganGenerator).unwrap();
    let wrong_kind = folder.path().join("progan-as-cyclegan.safetensors");
    std::fs::write(&wrong_kind, progan.bytes).unwrap();
    let response = run(&worker, Request::LoadModel { kind: ModelKind::CycleganGenerator, path: wrong_kind.clone() });
    let message = response.result.unwrap_err().to_string();
    assert!(message.contains(&wrong_kind.display().to_string()), "{message}");
    assert!(message.contains("holds a ProGAN generator, but this needs a CycleGAN generator"), "{message}");
    // A broken file names the file too.
    let broken = folder.path().join("broken.safetensors");
    std::fs::write(&broken, b"not a safetensors file").unwrap();
    let response = run(&worker, Request::LoadModel { kind: ModelKind::CycleganGenerator, path: broken.clone() });
    let message = response.result.unwrap_err().to_string();
    assert!(message.contains(&broken.display().to_string()), "{message}");
    // A good file comes back with its card and hash, and translates as a file source.
    let cyclegan = default_model(ModelKind::CycleganGenerator).unwrap();
    let good = folder.path().join("g_a.safetensors");
    std::fs::write(&good, cyclegan.bytes).unwrap();
    let response = run(&worker, Request::LoadModel { kind: ModelKind::CycleganGenerator, path: good.clone() });
    let Ok(Output::ModelLoaded(loaded)) = response.result else {
        panic!("opening failed: {:?}", response.result.err());
    };
    assert_eq!(loaded.source, ModelSource::File(good.clone()));
    assert_eq!(loaded.card, cyclegan.card);
    assert_eq!(loaded.sha256, cyclegan.sha256);
    let response = run(
        &worker,
        Request::Translate {
            model: ModelSource::File(good),
            direction: Direction::AToB,
            scale: NetworkScale::Training,
            image: gradient(),
        },
    );
    assert!(matches!(response.result, Ok(Output::Translated(_))), "{:?}", response.result.err());
}
