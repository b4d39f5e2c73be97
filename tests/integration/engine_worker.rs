//! The worker: coalescing to the newest request per key, stamps, timings, errors, waking the UI.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thorax::engine::device::{DeviceChoice, open_device};
use thorax::engine::job_runner::{JobRunner, ModelRunner};
use thorax::engine::request::PreparedImage;
use thorax::engine::{EngineError, ImageSource, Output, Request, Slot, WorkerActivity, WorkerHandle};
use thorax::imaging::samples::embedded_samples;

/// Records which image names it ran, sleeping `sleep` per job.
struct RecordingRunner {
    sleep: Duration,
    ran: Arc<Mutex<Vec<String>>>,
}

impl JobRunner for RecordingRunner {
    fn device_label(&self) -> String {
        "test".to_owned()
    }

    fn run(&mut self, request: Request) -> Result<Output, EngineError> {
        let Request::PrepareImage { source, .. } = request else {
            return Err(EngineError::WorkerGone);
        };
        std::thread::sleep(self.sleep);
        self.ran.lock().unwrap().push(source.display_name());
        let image = thorax::imaging::GrayImage::new(1, 1, thorax::imaging::BitDepth::U8, vec![0.0]).unwrap();
        Ok(Output::PreparedImage(Box::new(PreparedImage {
            name: source.display_name(),
            stats: Arc::new(thorax::imaging::ImageStats::compute(&image)),
            image,
            tensor_dims: vec![],
            tensor_mean: 0.0,
            stored_window: None,
            dicom: None,
        })))
    }
}

fn named(name: &str) -> ImageSource {
    ImageSource::Bytes { name: name.to_owned(), bytes: Arc::from(Vec::new()) }
}

#[test]
fn only_the_newest_request_per_key_runs_while_busy() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let wakes = Arc::new(AtomicUsize::new(0));
    let wakes_in_worker = Arc::clone(&wakes);
    let worker = WorkerHandle::spawn(
        RecordingRunner { sleep: Duration::from_millis(200), ran: Arc::clone(&ran) },
        Arc::new(move || {
            wakes_in_worker.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    // The first request starts at once; the next nine arrive while it runs and collapse to the last one.
    let first = worker.submit(Request::PrepareImage { slot: Slot::Real, source: named("r0") });
    std::thread::sleep(Duration::from_millis(50));
    let mut last = first;
    for i in 1..10 {
        last = worker.submit(Request::PrepareImage { slot: Slot::Real, source: named(&format!("r{i}")) });
    }
    // A different key is not coalesced with them.
    worker.submit(Request::PrepareImage { slot: Slot::Artificial, source: named("a0") });
    let mut responses = Vec::new();
    while responses.len() < 3 {
        responses.push(worker.wait(Duration::from_secs(10)).expect("worker answered"));
    }
    assert!(worker.wait(Duration::from_millis(400)).is_none(), "stale requests were run");
    assert_eq!(*ran.lock().unwrap(), vec!["r0", "r9", "a0"]);
    assert_eq!(responses[0].stamp, first);
    assert_eq!(responses[1].stamp, last);
    assert!(responses[1].timings.queued_ms >= 100.0, "{:?}", responses[1].timings);
    assert!(responses.iter().all(|r| r.timings.run_ms >= 190.0));
    assert_eq!(worker.status().coalesced_count, 8);
    assert_eq!(worker.status().activity, WorkerActivity::Idle);
    assert!(wakes.load(Ordering::SeqCst) >= 3);
}

#[test]
fn submit_returns_at_once_while_a_job_runs() {
    let worker = WorkerHandle::spawn(
        RecordingRunner { sleep: Duration::from_millis(500), ran: Arc::default() },
        Arc::new(|| {}),
    )
    .unwrap();
    worker.submit(Request::PrepareImage { slot: Slot::Real, source: named("slow") });
    std::thread::sleep(Duration::from_millis(50));
    let started = std::time::Instant::now();
    worker.submit(Request::PrepareImage { slot: Slot::Real, source: named("next") });
    let status = worker.status();
    assert!(started.elapsed() < Duration::from_millis(50));
    assert!(matches!(status.activity, WorkerActivity::Running { .. }));
}

#[test]
fn model_runner_prepares_a_real_sample_on_the_device() {
    let device = open_device(DeviceChoice::Cpu).unwrap();
    let worker = WorkerHandle::spawn(ModelRunner::new(device), Arc::new(|| {})).unwrap();
    let sample = &embedded_samples()[0];
    worker.submit(Request::PrepareImage {
        slot: Slot::Real,
        source: ImageSource::Bytes { name: sample.file_name.clone(), bytes: sample.bytes.into() },
    });
    let response = worker.wait(Duration::from_secs(30)).unwrap();
    let Ok(Output::PreparedImage(prepared)) = response.result else {
        panic!("preparing failed: {:?}", response.result.err());
    };
    assert_eq!(prepared.tensor_dims, vec![1, 1, 256, 256]);
    // A chest radiograph mapped to [-1, 1] has a mean well inside the range, not at an edge.
    assert!(prepared.tensor_mean > -0.9 && prepared.tensor_mean < 0.9, "{}", prepared.tensor_mean);
    assert_eq!(prepared.stats.histogram.iter().sum::<u64>() as usize, prepared.image.pixels().len());
}

#[test]
fn a_bad_file_comes_back_as_an_error_naming_it() {
    let device = open_device(DeviceChoice::Cpu).unwrap();
    let worker = WorkerHandle::spawn(ModelRunner::new(device), Arc::new(|| {})).unwrap();
    worker.submit(Request::PrepareImage {
        slot: Slot::Real,
        source: ImageSource::Bytes {
            name: "broken.png".to_owned(),
            bytes: Arc::from(b"\x89PNG\r\n\x1a\nnot really".to_vec()),
        },
    });
    let response = worker.wait(Duration::from_secs(10)).unwrap();
    let err = response.result.unwrap_err();
    assert!(err.to_string().contains("broken.png"), "{err}");
}
