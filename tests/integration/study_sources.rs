//! Case sources: a labels CSV defines the real pool, and any `ArtificialSource` (the generator later) plugs in,
//! getting the labels of real cases to replay when the study asks for it.

use crate::study_common;

use image::{DynamicImage, ImageBuffer, Luma};
use thorax::study::sources::CaseLabels;
use thorax::study::{
    ArtificialSource, CaseMix, DisplayBitDepth, Provenance, RealImageFolder, SourceImage, StudyResult, StudyStore,
    create_study,
};

/// A stand-in for the conditional generator: draws a flat image whose gray level encodes the index.
struct FakeGenerator {
    replayed: Vec<Option<CaseLabels>>,
}

impl ArtificialSource for FakeGenerator {
    fn description(&self) -> String {
        "fake generator sha256=0000 seed=9".to_owned()
    }

    fn produce(&mut self, index: usize, replay_labels: Option<&CaseLabels>) -> StudyResult<Option<SourceImage>> {
        self.replayed.push(replay_labels.cloned());
        let level = (index * 20 % 256) as u8;
        Ok(Some(SourceImage {
            image: DynamicImage::ImageLuma8(ImageBuffer::from_fn(256, 256, |x, _| Luma([level.wrapping_add(x as u8)]))),
            provenance: format!("generator index={index}"),
            labels: replay_labels.cloned().unwrap_or_default(),
        }))
    }
}

#[test]
fn labels_csv_defines_the_pool_and_a_generator_gets_real_labels_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (real, _) = study_common::make_image_folders(dir.path(), 6, 0);
    let csv = dir.path().join("labels.csv");
    std::fs::write(
        &csv,
        "file,Cardiomegaly,Effusion,Patient ID\npatient_000.png,1,0,P1\npatient_001.png,0,1,P2\npatient_002.jpg,1,1,P3\n\
         patient_003.tiff,0,0,P4\n",
    )
    .unwrap();
    let folder = RealImageFolder::open(&real, Some(&csv)).unwrap();
    assert_eq!(folder.entries().len(), 4, "the CSV's rows, not every file, make the pool");
    assert_eq!(folder.entries()[0].labels["Cardiomegaly"], "1");
    let mut generator = FakeGenerator { replayed: Vec::new() };
    let design = study_common::small_design(&["alice"], 16, DisplayBitDepth::Eight);
    let mix = CaseMix { main_cases: 6, practice_cases: 0, artificial_fraction: 0.5, replay_real_labels: true };
    let out = dir.path().join("s.sqlite");
    let (store, summary) = create_study(&out, &design, &mix, &folder, &mut generator).unwrap();
    assert_eq!((summary.real_cases, summary.artificial_cases), (3, 3));
    assert_eq!(generator.replayed.len(), 3);
    let real_label_sets: Vec<CaseLabels> = folder.entries().iter().map(|e| e.labels.clone()).collect();
    for replayed in &generator.replayed {
        let labels = replayed.as_ref().expect("labels are replayed");
        assert!(real_label_sets.contains(labels));
    }
    let cases = store.cases().unwrap();
    let artificial: Vec<_> = cases.iter().filter(|c| c.provenance == Provenance::Artificial).collect();
    assert!(artificial.iter().all(|c| c.source.starts_with("generator index=") && c.labels.contains_key("Effusion")));
    // The real cases keep their pathology labels, not the patient column of the CSV.
    let real_cases: Vec<_> = cases.iter().filter(|c| c.provenance == Provenance::Real).collect();
    assert!(real_cases.iter().all(|c| c.labels.contains_key("Cardiomegaly") && !c.labels.contains_key("Patient ID")));
    let metadata = store.metadata().unwrap();
    assert!(metadata.iter().any(|(k, v)| k == "artificial_source" && v.contains("fake generator")));
    drop(store);
    assert!(StudyStore::open(&out).is_ok());
}
