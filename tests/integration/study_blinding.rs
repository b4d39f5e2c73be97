//! Blinding: real and artificial cases of different sizes, bit depths and formats reach the reading screen as
//! identical kinds of buffers, and nothing the UI sees names a source.

use crate::study_common;

use std::collections::BTreeSet;

use thorax::study::{CaseForDisplay, DisplayBitDepth, Provenance, ReadingSession, StudyStore};

/// Reads every case of `reader` without answering logic beyond a fixed answer; returns (case id, what the UI saw).
fn read_all(db: &std::path::Path, reader: &str) -> Vec<(String, CaseForDisplay)> {
    let mut seen = Vec::new();
    let order = StudyStore::open(db).unwrap().reader_order(reader).unwrap();
    let mut session = ReadingSession::open(db).unwrap();
    while let Some(case) = session.next_case(reader).unwrap() {
        let case_id = order[seen.len()].case_id.clone();
        let answer =
            thorax::study::Answer { call: thorax::study::Call::Real, confidence: 3, free_text: None, giveaway: None };
        session.submit(reader, case.token, &answer).unwrap();
        seen.push((case_id, case));
    }
    seen
}

fn check_blinding(bit_depth: DisplayBitDepth) {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice"], 64, bit_depth);
    let db = study_common::make_study(dir.path(), &design, 10, 2);
    let truth: std::collections::BTreeMap<String, Provenance> =
        StudyStore::open(&db).unwrap().cases().unwrap().into_iter().map(|c| (c.case_id, c.provenance)).collect();
    let seen = read_all(&db, "alice");
    assert_eq!(seen.len(), 12);
    let forbidden = [
        "patient",
        "generated",
        "real",
        "Real",
        "artificial",
        "Artificial",
        ".png",
        ".jp",
        ".tif",
        "case-",
        "practice-",
    ];
    let root = dir.path().display().to_string();
    let mut signatures = BTreeSet::new();
    let mut provenances = BTreeSet::new();
    for (case_id, case) in &seen {
        // Exhaustive destructuring: adding a field to what the UI sees breaks this test until it is reviewed.
        let CaseForDisplay { token, image, progress, previous_answer } = case;
        assert!(previous_answer.is_none());
        let debug = format!("{token:?} {image:?} {progress:?}");
        for word in forbidden.iter().copied().chain([root.as_str()]) {
            assert!(!debug.contains(word), "the UI's view of {case_id} mentions {word:?}: {debug}");
        }
        let pixels: &[u16] = image.pixels();
        assert_eq!(pixels.len(), 64 * 64);
        let on_8_bit_grid = pixels.iter().all(|v| v % 257 == 0);
        if bit_depth == DisplayBitDepth::Eight {
            assert!(on_8_bit_grid, "{case_id} is not quantised to 8 bits");
        }
        // Non-constant images: the whole pipeline ran and produced real content.
        assert!(pixels.iter().min() < pixels.iter().max());
        let value_grid = if on_8_bit_grid { "8-bit grid" } else { "16-bit" };
        signatures.insert((image.width_px(), image.height_px(), pixels.len(), value_grid));
        provenances.insert(truth[case_id].as_str());
    }
    assert_eq!(provenances.len(), 2, "the study must mix real and artificial cases");
    if bit_depth == DisplayBitDepth::Eight {
        assert_eq!(signatures.len(), 1, "display buffers differ in kind: {signatures:?}");
    } else {
        assert!(signatures.iter().all(|(w, h, n, _)| (*w, *h, *n) == (64, 64, 64 * 64)), "{signatures:?}");
    }
}

#[test]
fn eight_bit_display_buffers_are_identical_in_kind_for_real_and_artificial() {
    check_blinding(DisplayBitDepth::Eight);
}

#[test]
fn sixteen_bit_display_buffers_are_identical_in_size_and_type_for_real_and_artificial() {
    check_blinding(DisplayBitDepth::Sixteen);
}

#[test]
fn case_ids_do_not_group_by_provenance_and_readers_get_independent_reproducible_orders() {
    let dir = tempfile::tempdir().unwrap();
    let design = study_common::small_design(&["alice", "bob"], 8, DisplayBitDepth::Eight);
    let db = study_common::make_tiny_study(dir.path(), &design, 40, 0);
    let store = StudyStore::open(&db).unwrap();
    let cases = store.cases().unwrap();
    let by_id: Vec<bool> = cases.iter().map(|c| c.provenance == Provenance::Artificial).collect();
    let switches = by_id.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 5, "case ids sorted by provenance: {by_id:?}");
    let alice: Vec<String> = store.reader_order("alice").unwrap().into_iter().map(|e| e.case_id).collect();
    let bob: Vec<String> = store.reader_order("bob").unwrap().into_iter().map(|e| e.case_id).collect();
    assert_ne!(alice, bob);
    let seeds = store.readers().unwrap();
    assert_ne!(seeds[0].seed, seeds[1].seed);
    drop(store);
    // The same seed rebuilds the same orders.
    let again = tempfile::tempdir().unwrap();
    let db2 = study_common::make_tiny_study(again.path(), &design, 40, 0);
    let store2 = StudyStore::open(&db2).unwrap();
    let alice2: Vec<String> = store2.reader_order("alice").unwrap().into_iter().map(|e| e.case_id).collect();
    assert_eq!(alice, alice2);
    assert_eq!(store2.readers().unwrap(), seeds);
}
