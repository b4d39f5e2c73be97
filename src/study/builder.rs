//! Creating a study: pick real and artificial images, run each through the display pipeline, assign opaque case
//! ids, give every reader an independently seeded order, and store it all in one new database.

use std::path::Path;

use serde::Serialize;

use crate::models::labels::{CHEXPERT_GAN_LABELS, NIH_CLASSIFIER_LABELS};

use super::design::{Provenance, StudyDesign};
use super::display::{RESAMPLING_FILTER, decode_image_file, to_display_image};
use super::error::{StudyError, StudyResult};
use super::randomise::{StudyRng, derive_seed};
use super::sources::{ArtificialSource, CaseLabels, RealImageFolder};
use super::store::{NewCase, ReaderPlan, StudyStore};

/// How many cases of which kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaseMix {
    /// Cases that count (practice excluded).
    pub main_cases: usize,
    /// Practice cases shown first to every reader.
    pub practice_cases: usize,
    /// Fraction of artificial cases among main and practice cases (rounded to whole cases).
    pub artificial_fraction: f64,
    /// Whether artificial images are asked for with the labels of real cases (the original study's design).
    pub replay_real_labels: bool,
}

impl CaseMix {
    fn split(count: usize, fraction: f64) -> (usize, usize) {
        // The product is within 0..=count, so the cast back is exact.
        let artificial = ((count as f64) * fraction).round() as usize;
        (count - artificial.min(count), artificial.min(count))
    }
}

/// A reader's seed as logged in the study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReaderSeed {
    /// Reader id.
    pub reader: String,
    /// Seed of the reader's order.
    pub seed: u64,
}

/// Summary of a created study.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudySummary {
    /// Main cases.
    pub main_cases: usize,
    /// Real main cases.
    pub real_cases: usize,
    /// Artificial main cases.
    pub artificial_cases: usize,
    /// Practice cases.
    pub practice_cases: usize,
    /// The study seed.
    pub seed: u64,
    /// Per-reader seeds.
    pub readers: Vec<ReaderSeed>,
    /// Display size in pixels.
    pub display_size_px: u32,
    /// Resampling filter of the display pipeline.
    pub resampling: &'static str,
    /// Percent of each side's extent cut from every case before the centre crop (0: none).
    pub border_crop_percent: u32,
}

struct PickedCase {
    provenance: Provenance,
    practice: bool,
    source: String,
    labels: CaseLabels,
    display: super::display::DisplayImage,
}

/// Builds the study in a new file at `out` (which must not exist).
pub fn create_study(
    out: &Path,
    design: &StudyDesign,
    mix: &CaseMix,
    real: &RealImageFolder,
    artificial: &mut dyn ArtificialSource,
) -> StudyResult<(StudyStore, StudySummary)> {
    create_study_harmonised(out, design, mix, real, artificial, None)
}

/// [`create_study`] with every real case's image passed through `harmonise` (e.g. a CycleGAN) before display.
pub fn create_study_harmonised(
    out: &Path,
    design: &StudyDesign,
    mix: &CaseMix,
    real: &RealImageFolder,
    artificial: &mut dyn ArtificialSource,
    mut harmonise: Option<&mut dyn super::harmonise::RealImageTransform>,
) -> StudyResult<(StudyStore, StudySummary)> {
    design.validate()?;
    if mix.main_cases == 0 {
        return Err(StudyError::InvalidDesign("the study needs at least one case".to_owned()));
    }
    if !(0.0..=1.0).contains(&mix.artificial_fraction) {
        return Err(StudyError::InvalidDesign(format!(
            "artificial fraction {} is outside [0, 1]",
            mix.artificial_fraction
        )));
    }
    if out.exists() {
        return Err(StudyError::AlreadyExists { path: out.to_path_buf() });
    }
    let (main_real, main_artificial) = CaseMix::split(mix.main_cases, mix.artificial_fraction);
    let (practice_real, practice_artificial) = CaseMix::split(mix.practice_cases, mix.artificial_fraction);

    let mut pool: Vec<usize> = (0..real.entries().len()).collect();
    StudyRng::from_seed(derive_seed(design.seed, "real-selection")).shuffle(&mut pool);
    let needed_real = main_real + practice_real;
    if pool.len() < needed_real {
        return Err(StudyError::NotEnoughImages { kind: "real", needed: needed_real, available: pool.len() });
    }
    let mut picked = Vec::with_capacity(needed_real + main_artificial + practice_artificial);
    for (rank, index) in pool.iter().take(needed_real).enumerate() {
        let Some(entry) = real.entries().get(*index) else {
            continue;
        };
        let mut image = decode_image_file(&entry.path)?;
        let mut source = entry.path.display().to_string();
        if let Some(transform) = harmonise.as_deref_mut() {
            image = transform.apply(&image, &source)?;
            source = format!("{source} ({})", transform.description());
        }
        picked.push(PickedCase {
            provenance: Provenance::Real,
            practice: rank >= main_real,
            display: to_display_image(&image, &design.display, &source)?,
            source,
            labels: pathology_columns(&entry.labels),
        });
    }

    let needed_artificial = main_artificial + practice_artificial;
    for index in 0..needed_artificial {
        // Replay the labels of the real cases in turn, as the original study did.
        let replay = if mix.replay_real_labels && !real.entries().is_empty() {
            pool.get(index % pool.len())
                .and_then(|real_index| real.entries().get(*real_index))
                .map(|entry| &entry.labels)
        } else {
            None
        };
        let Some(produced) = artificial.produce(index, replay)? else {
            return Err(StudyError::NotEnoughImages {
                kind: "artificial",
                needed: needed_artificial,
                available: index,
            });
        };
        picked.push(PickedCase {
            provenance: Provenance::Artificial,
            practice: index >= main_artificial,
            display: to_display_image(&produced.image, &design.display, &produced.provenance)?,
            source: produced.provenance,
            labels: produced.labels,
        });
    }

    // Opaque ids: numbered in a shuffled order so neither id nor numbering hints at provenance.
    StudyRng::from_seed(derive_seed(design.seed, "case-ids")).shuffle(&mut picked);
    let (mut main_number, mut practice_number) = (0usize, 0usize);
    let mut cases = Vec::with_capacity(picked.len());
    for case in picked {
        let case_id = if case.practice {
            practice_number += 1;
            format!("practice-{practice_number:03}")
        } else {
            main_number += 1;
            format!("case-{main_number:04}")
        };
        cases.push(NewCase {
            case_id,
            provenance: case.provenance,
            practice: case.practice,
            source: case.source,
            labels: case.labels,
            display: case.display,
        });
    }

    let practice_ids: Vec<String> = cases.iter().filter(|c| c.practice).map(|c| c.case_id.clone()).collect();
    let main_ids: Vec<String> = cases.iter().filter(|c| !c.practice).map(|c| c.case_id.clone()).collect();
    let mut plans = Vec::with_capacity(design.readers.len());
    for reader in &design.readers {
        let seed = derive_seed(design.seed, &format!("reader-order/{reader}"));
        let mut rng = StudyRng::from_seed(seed);
        let mut practice = practice_ids.clone();
        let mut main = main_ids.clone();
        rng.shuffle(&mut practice);
        rng.shuffle(&mut main);
        practice.extend(main);
        plans.push(ReaderPlan { reader_id: reader.clone(), seed, order: practice });
    }
    let metadata = vec![
        ("artificial_source".to_owned(), artificial.description()),
        ("real_source_images".to_owned(), real.entries().len().to_string()),
        ("resampling".to_owned(), RESAMPLING_FILTER.to_owned()),
        ("border_crop_percent".to_owned(), design.display.border_crop_percent.to_string()),
        ("rng".to_owned(), "xoshiro256** seeded by SplitMix64; streams by FNV-1a label".to_owned()),
    ];
    let store = StudyStore::create(out, design, &metadata, &cases, &plans)?;
    let summary = StudySummary {
        main_cases: mix.main_cases,
        real_cases: main_real,
        artificial_cases: main_artificial,
        practice_cases: mix.practice_cases,
        seed: design.seed,
        readers: plans.iter().map(|plan| ReaderSeed { reader: plan.reader_id.clone(), seed: plan.seed }).collect(),
        display_size_px: design.display.size_px,
        resampling: RESAMPLING_FILTER,
        border_crop_percent: design.display.border_crop_percent,
    };
    Ok((store, summary))
}
/// The columns of a real case's labels that name a pathology (one of the 14 NIH or CheXpert labels, "No Finding",
/// or an NIH-style findings list), compared without case, spaces or underscores. Only these are stored with the
/// case: a real labels CSV often carries patient columns (ID, age, sex) that a study database, handed to readers'
/// machines, must not copy.
pub fn pathology_columns(labels: &CaseLabels) -> CaseLabels {
    let key = |name: &str| name.to_lowercase().replace(['_', ' '], "");
    let known: Vec<String> = NIH_CLASSIFIER_LABELS
        .iter()
        .chain(&CHEXPERT_GAN_LABELS)
        .chain(&["No Finding", "findings", "Finding Labels"])
        .map(|name| key(name))
        .collect();
    labels.iter().filter(|(column, _)| known.contains(&key(column))).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pathology_columns_are_kept_with_a_real_case() {
        let labels: CaseLabels = [
            ("Patient ID", "00012345"),
            ("Patient Age", "58"),
            ("Finding Labels", "Effusion|Mass"),
            ("pleural_effusion", "1"),
            ("Cardiomegaly", "0"),
            ("No Finding", "0"),
            ("sex", "F"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let kept: Vec<String> = pathology_columns(&labels).into_keys().collect();
        assert_eq!(kept, ["Cardiomegaly", "Finding Labels", "No Finding", "pleural_effusion"]);
    }
}
