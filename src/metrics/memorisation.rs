//! Memorisation audit statistics (peers.md 2.10): each generated image's nearest training image by cosine
//! similarity of embeddings, compared with how close held-out real images come to the training set.
//!
//! A generated image closer to a training image than the held-out set's `percentile`-th nearest similarity is
//! flagged as a possible copy. All embeddings are first centred on the training set's mean: pooled ReLU features
//! share a large common component that would push every cosine similarity towards 1 and hide the differences.
//! Reference: scikit-learn `cosine_similarity` of the centred rows (zero vectors have similarity 0) with numpy
//! `argmax` (first index on ties) and numpy's linear `percentile`; golden values in
//! `tests/fixtures/metrics/memorisation.json` (tools/make_memorisation_fixture.py).

use serde::Serialize;

use crate::metrics::MetricError;
use crate::metrics::bootstrap::percentile_sorted;
use crate::metrics::features::FeatureMatrix;

/// The held-out percentile the study's convention uses as the flagging threshold.
pub const DEFAULT_THRESHOLD_PERCENTILE: f64 = 99.0;

/// Cosine similarity at which two embeddings are the same image (up to rounding). Such a generated image is flagged
/// whatever the held-out threshold says: a threshold of 1.0 (held-out images that are training images) let exact
/// copies through, since only similarities above the threshold were flagged.
pub const COPY_SIMILARITY: f64 = 1.0 - 1e-6;

/// A query's most similar reference row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NearestNeighbour {
    /// Row of the reference matrix.
    pub index: usize,
    /// Cosine similarity in [-1, 1].
    pub similarity: f64,
}

/// The audit's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorisationReport {
    pub threshold_percentile: f64,
    /// The held-out nearest similarity at `threshold_percentile`.
    pub threshold: f64,
    /// Nearest training row of each generated row.
    pub generated_nearest: Vec<NearestNeighbour>,
    /// Nearest training row of each held-out row.
    pub heldout_nearest: Vec<NearestNeighbour>,
    /// Generated rows strictly above the threshold, most similar first.
    pub flagged: Vec<usize>,
    /// `flagged.len() / generated rows`.
    pub fraction_flagged: f64,
}

/// The rows of `matrix` in f64, minus `mean` when given.
fn rows_f64(matrix: &FeatureMatrix, mean: Option<&[f64]>) -> Vec<Vec<f64>> {
    (0..matrix.rows())
        .map(|i| {
            let row = matrix.row_f64(i);
            match mean {
                Some(mean) => row.zip(mean).map(|(v, m)| v - m).collect(),
                None => row.collect(),
            }
        })
        .collect()
}

/// Unit-length rows; zero rows stay zero (so their similarities are 0, as in scikit-learn).
fn normalised(rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    rows.into_iter()
        .map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 { row.iter().map(|v| v / norm).collect() } else { row }
        })
        .collect()
}

/// Mean of each column, in f64.
fn column_means(matrix: &FeatureMatrix) -> Vec<f64> {
    let mut sums = vec![0.0f64; matrix.cols()];
    for i in 0..matrix.rows() {
        for (sum, v) in sums.iter_mut().zip(matrix.row_f64(i)) {
            *sum += v;
        }
    }
    sums.iter().map(|s| s / matrix.rows().max(1) as f64).collect()
}

fn check_dimensions(queries: &FeatureMatrix, references: &FeatureMatrix) -> Result<(), MetricError> {
    if queries.cols() != references.cols() {
        return Err(MetricError::ShapeMismatch {
            what: "embedding dimensions (queries vs references)",
            left: queries.cols().to_string(),
            right: references.cols().to_string(),
        });
    }
    Ok(())
}

fn nearest_rows(queries: &[Vec<f64>], references: &[Vec<f64>]) -> Vec<NearestNeighbour> {
    queries
        .iter()
        .map(|query| {
            let mut best = NearestNeighbour { index: 0, similarity: f64::NEG_INFINITY };
            for (index, reference) in references.iter().enumerate() {
                // A dot product of unit vectors can round past 1 (1.0000000000000022); a cosine cannot.
                let similarity = query.iter().zip(reference).map(|(a, b)| a * b).sum::<f64>().clamp(-1.0, 1.0);
                if similarity > best.similarity {
                    best = NearestNeighbour { index, similarity };
                }
            }
            best
        })
        .collect()
}

/// For each query row, the reference row of highest cosine similarity (the first on ties), without centring.
pub fn nearest_by_cosine(
    queries: &FeatureMatrix,
    references: &FeatureMatrix,
) -> Result<Vec<NearestNeighbour>, MetricError> {
    check_dimensions(queries, references)?;
    Ok(nearest_rows(&normalised(rows_f64(queries, None)), &normalised(rows_f64(references, None))))
}

/// Runs the audit: embeddings centred on the training mean, nearest training rows of generated and held-out rows,
/// the held-out threshold, and the generated rows above it. `threshold_percentile` is in [0, 100].
pub fn memorisation_audit(
    generated: &FeatureMatrix,
    training: &FeatureMatrix,
    heldout: &FeatureMatrix,
    threshold_percentile: f64,
) -> Result<MemorisationReport, MetricError> {
    if !(0.0..=100.0).contains(&threshold_percentile) {
        return Err(MetricError::InvalidArgument {
            what: "threshold percentile",
            reason: format!("must be in [0, 100], got {threshold_percentile}"),
        });
    }
    check_dimensions(generated, training)?;
    check_dimensions(heldout, training)?;
    let mean = column_means(training);
    let training_rows = normalised(rows_f64(training, Some(&mean)));
    let generated_nearest = nearest_rows(&normalised(rows_f64(generated, Some(&mean))), &training_rows);
    let heldout_nearest = nearest_rows(&normalised(rows_f64(heldout, Some(&mean))), &training_rows);
    let mut heldout_similarities: Vec<f64> = heldout_nearest.iter().map(|n| n.similarity).collect();
    heldout_similarities.sort_by(f64::total_cmp);
    let threshold = percentile_sorted(&heldout_similarities, threshold_percentile);
    let mut flagged: Vec<usize> = (0..generated_nearest.len())
        .filter(|&i| {
            generated_nearest.get(i).is_some_and(|n| n.similarity > threshold || n.similarity >= COPY_SIMILARITY)
        })
        .collect();
    flagged.sort_by(|&a, &b| generated_nearest[b].similarity.total_cmp(&generated_nearest[a].similarity));
    let fraction_flagged = flagged.len() as f64 / generated_nearest.len().max(1) as f64;
    Ok(MemorisationReport {
        threshold_percentile,
        threshold,
        generated_nearest,
        heldout_nearest,
        flagged,
        fraction_flagged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[f32]]) -> FeatureMatrix {
        FeatureMatrix::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_copy_of_a_training_row_is_flagged_and_a_novel_one_is_not() {
        let training = matrix(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]]);
        let heldout = matrix(&[&[1.0, 0.5, 0.0], &[0.0, 1.0, 0.6], &[0.5, 0.0, 1.0]]);
        // Row 0 copies training row 1 (cosine 1 after centring), row 1 sits between rows.
        let generated = matrix(&[&[0.0, 1.0, 0.0], &[0.6, 0.6, 0.5]]);
        let report = memorisation_audit(&generated, &training, &heldout, 99.0).unwrap();
        assert_eq!(report.generated_nearest[0].index, 1);
        assert!((report.generated_nearest[0].similarity - 1.0).abs() < 1e-12);
        assert_eq!(report.flagged, vec![0]);
        assert_eq!(report.fraction_flagged, 0.5);
    }

    #[test]
    fn an_exact_copy_is_flagged_even_when_the_threshold_is_one() {
        // Held-out images that are the training images put the threshold at 1.0.
        let training = matrix(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]]);
        let generated = matrix(&[&[0.0, 1.0, 0.0], &[0.6, 0.6, 0.5]]);
        let report = memorisation_audit(&generated, &training, &training, 99.0).unwrap();
        assert!((report.threshold - 1.0).abs() < 1e-12);
        assert_eq!(report.flagged, vec![0]);
    }

    #[test]
    fn zero_rows_have_similarity_zero_and_ties_take_the_first_row() {
        let training = matrix(&[&[1.0, 0.0], &[1.0, 0.0]]);
        let nearest = nearest_by_cosine(&matrix(&[&[0.0, 0.0], &[2.0, 0.0]]), &training).unwrap();
        assert_eq!(nearest[0], NearestNeighbour { index: 0, similarity: 0.0 });
        assert_eq!(nearest[1].index, 0);
    }

    #[test]
    fn a_cosine_that_rounds_past_one_is_one() {
        // These unit vectors' dot product sums to 1.0000000000000002 in f64.
        let row: Vec<f32> = [17.0, 4.0, 2.0, 17.0, 1.0, 11.0].iter().map(|v: &f64| (v / 7.0) as f32).collect();
        let rows = FeatureMatrix::from_rows(&[row]).unwrap();
        assert_eq!(nearest_by_cosine(&rows, &rows).unwrap()[0].similarity, 1.0);
    }

    #[test]
    fn matches_scikit_learn_golden_values() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics/memorisation.json");
        let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let features = |key: &str| {
            let rows: Vec<Vec<f32>> = serde_json::from_value(golden[key].clone()).unwrap();
            FeatureMatrix::from_rows(&rows).unwrap()
        };
        let numbers = |key: &str| -> Vec<f64> { serde_json::from_value(golden[key].clone()).unwrap() };
        let indices = |key: &str| -> Vec<usize> { serde_json::from_value(golden[key].clone()).unwrap() };
        let report =
            memorisation_audit(&features("generated"), &features("training"), &features("heldout"), 99.0).unwrap();
        let check = |nearest: &[NearestNeighbour], prefix: &str| {
            let expected_index = indices(&format!("{prefix}_nearest_index"));
            let expected_similarity = numbers(&format!("{prefix}_nearest_similarity"));
            for (i, n) in nearest.iter().enumerate() {
                assert_eq!(n.index, expected_index[i], "{prefix} row {i}");
                assert!((n.similarity - expected_similarity[i]).abs() < 1e-12, "{prefix} row {i}: {n:?}");
            }
        };
        check(&report.generated_nearest, "generated");
        check(&report.heldout_nearest, "heldout");
        assert!((report.threshold - golden["threshold"].as_f64().unwrap()).abs() < 1e-12);
        assert_eq!(report.flagged, indices("flagged"));
    }

    #[test]
    fn refuses_mismatched_dimensions_and_bad_percentiles() {
        let a = matrix(&[&[1.0, 0.0]]);
        let b = matrix(&[&[1.0, 0.0, 0.0]]);
        assert!(matches!(nearest_by_cosine(&a, &b), Err(MetricError::ShapeMismatch { .. })));
        assert!(matches!(memorisation_audit(&a, &a, &a, 101.0), Err(MetricError::InvalidArgument { .. })));
    }
}
