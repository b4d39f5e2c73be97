//! Analysis of a reading: per reader and pooled performance (AUC with bootstrap CI, accuracy with a binomial test,
//! sensitivity, specificity, time per case) and agreement (pairwise Cohen's kappa on calls, linear and quadratic
//! weighted kappa on ratings, Fleiss' kappa on calls), separately for every modality.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::error::{StudyError, StudyResult};
use super::stats::{
    BootstrapCi, ConfusionCounts, KappaWeighting, TimeSummary, bootstrap_ci, cohen_kappa, fleiss_kappa, roc_auc,
    time_summary,
};

/// One reader's reading of one case (practice cases excluded), from the database, a CSV or an iMRMC file.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Reader id.
    pub reader: String,
    /// Case id.
    pub case_id: String,
    /// Reading condition (iMRMC modality).
    pub modality: String,
    /// Ground truth: the case is artificial.
    pub truth_artificial: bool,
    /// Ordinal rating, higher = more surely artificial.
    pub rating: f64,
    /// The reader called it artificial.
    pub call_artificial: bool,
    /// Active reading time, if recorded.
    pub time_ms: Option<u64>,
    /// The reading spans a restart of the reading station (its time resumed from a checkpoint).
    pub time_spans_restart: bool,
}

/// Bootstrap settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AnalysisOptions {
    /// Resamples per confidence interval.
    pub bootstrap_resamples: usize,
    /// Seed of every bootstrap (the same seed for each reader and the pooled analysis).
    pub seed: u64,
    /// Interval coverage, e.g. 0.95.
    pub level: f64,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        Self { bootstrap_resamples: 2000, seed: 0, level: 0.95 }
    }
}

/// A p-value as papers print it: three decimals, or scientific notation below 0.001. Shared by the Results window
/// and `thorax study analyze`.
pub fn format_p_value(p: f64) -> String {
    if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

/// "k of n reading times span a restart ..." when some of `performance`'s do, else `None`. Shared by the Results
/// window and `thorax study analyze`, so that a reader of either knows which times may be short.
pub fn restart_note(performance: &Performance) -> Option<String> {
    let times = performance.time_per_case?;
    (times.cases_spanning_restart > 0).then(|| {
        format!(
            "{} of {} reading times span a restart of the reading station: resumed from a checkpoint, each may be a \
             few seconds short (time_spans_restart in the answers CSV)",
            times.cases_spanning_restart, times.cases
        )
    })
}

/// Performance of one reader, or of all readers pooled.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Performance {
    /// Readings analysed.
    pub readings: usize,
    /// Distinct cases.
    pub cases: usize,
    /// ROC AUC of the ratings for detecting artificial images (None with a single class).
    pub auc: Option<f64>,
    /// Percentile bootstrap CI of the AUC, resampling cases (all of a case's readings together).
    pub auc_ci: Option<BootstrapCi>,
    /// Fraction of correct calls.
    pub accuracy: Option<f64>,
    /// Exact two-sided binomial test of accuracy against 0.5.
    pub binomial_p: Option<f64>,
    /// Artificial images called artificial.
    pub sensitivity: Option<f64>,
    /// Real images called real.
    pub specificity: Option<f64>,
    /// The 2x2 counts.
    pub counts: ConfusionCounts,
    /// Reading time per case, when recorded.
    pub time_per_case: Option<TimeSummary>,
    /// The empirical ROC curve of the ratings (scikit-learn's `roc_curve`, all points), when both classes occur.
    pub roc: Option<crate::metrics::roc::RocCurve>,
}

/// One reader's performance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReaderPerformance {
    /// Reader id.
    pub reader: String,
    /// Their performance.
    #[serde(flatten)]
    pub performance: Performance,
}

/// Agreement of two readers on the cases both read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairAgreement {
    /// First reader.
    pub reader_a: String,
    /// Second reader.
    pub reader_b: String,
    /// Cases both read.
    pub cases: usize,
    /// Cohen's kappa of the real/artificial calls.
    pub cohen_kappa: Option<f64>,
    /// Linearly weighted kappa of the ratings.
    pub weighted_kappa_linear: Option<f64>,
    /// Quadratically weighted kappa of the ratings.
    pub weighted_kappa_quadratic: Option<f64>,
}

/// Fleiss' kappa of the calls of all readers on the cases every reader read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleissAgreement {
    /// Readers included.
    pub readers: Vec<String>,
    /// Cases every one of them read.
    pub cases: usize,
    /// Fleiss' kappa.
    pub kappa: Option<f64>,
}

/// Results of one modality.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModalityAnalysis {
    /// Modality id.
    pub modality: String,
    /// Per reader, sorted by reader id.
    pub readers: Vec<ReaderPerformance>,
    /// All readings pooled into one ROC (iMRMC's "pooled" average).
    pub pooled: Performance,
    /// Mean of the per-reader AUCs.
    pub reader_average_auc: Option<f64>,
    /// Pairwise agreement (every pair of readers).
    pub pairwise_agreement: Vec<PairAgreement>,
    /// Agreement of all readers (two or more).
    pub fleiss: Option<FleissAgreement>,
}

/// The whole analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalysisReport {
    /// Bootstrap settings used.
    pub options: AnalysisOptions,
    /// One entry per modality, sorted by modality id.
    pub modalities: Vec<ModalityAnalysis>,
}

/// Analyses `readings`. `rating_categories`, when given, are all possible ratings in order (the categories of
/// weighted kappa); otherwise each pair's observed ratings are used, as sklearn does without `labels`.
pub fn analyze(
    readings: &[Reading],
    rating_categories: Option<&[f64]>,
    options: &AnalysisOptions,
) -> StudyResult<AnalysisReport> {
    if readings.is_empty() {
        return Err(StudyError::Analysis("there are no readings to analyse".to_owned()));
    }
    let mut seen = BTreeSet::new();
    let mut truth_of_case: BTreeMap<&str, bool> = BTreeMap::new();
    for reading in readings {
        if reading.rating.is_nan() {
            return Err(StudyError::Analysis(format!(
                "reader {} has a NaN rating for case {}",
                reading.reader, reading.case_id
            )));
        }
        if !seen.insert((&reading.modality, &reading.reader, &reading.case_id)) {
            return Err(StudyError::Analysis(format!(
                "reader {} read case {} twice in modality {}",
                reading.reader, reading.case_id, reading.modality
            )));
        }
        if let Some(previous) = truth_of_case.insert(&reading.case_id, reading.truth_artificial)
            && previous != reading.truth_artificial
        {
            return Err(StudyError::Analysis(format!("case {} has conflicting truth values", reading.case_id)));
        }
    }
    let modality_ids: BTreeSet<&str> = readings.iter().map(|r| r.modality.as_str()).collect();
    let modalities = modality_ids
        .into_iter()
        .map(|modality| {
            let subset: Vec<&Reading> = readings.iter().filter(|r| r.modality == modality).collect();
            analyze_modality(modality, &subset, rating_categories, options)
        })
        .collect();
    Ok(AnalysisReport { options: *options, modalities })
}

fn analyze_modality(
    modality: &str,
    readings: &[&Reading],
    rating_categories: Option<&[f64]>,
    options: &AnalysisOptions,
) -> ModalityAnalysis {
    let reader_ids: BTreeSet<&str> = readings.iter().map(|r| r.reader.as_str()).collect();
    let readers: Vec<ReaderPerformance> = reader_ids
        .iter()
        .map(|reader| {
            let own: Vec<&Reading> = readings.iter().copied().filter(|r| r.reader == *reader).collect();
            ReaderPerformance { reader: (*reader).to_owned(), performance: performance(&own, options) }
        })
        .collect();
    let aucs: Vec<f64> = readers.iter().filter_map(|r| r.performance.auc).collect();
    let reader_average_auc =
        (aucs.len() == readers.len() && !aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64);
    let reader_list: Vec<&str> = reader_ids.iter().copied().collect();
    let mut pairwise_agreement = Vec::new();
    for (index, a) in reader_list.iter().enumerate() {
        for b in reader_list.iter().skip(index + 1) {
            pairwise_agreement.push(pair_agreement(readings, a, b, rating_categories));
        }
    }
    let fleiss = (reader_list.len() >= 2).then(|| fleiss_agreement(readings, &reader_list));
    ModalityAnalysis {
        modality: modality.to_owned(),
        readers,
        pooled: performance(readings, options),
        reader_average_auc,
        pairwise_agreement,
        fleiss,
    }
}

/// Performance of a set of readings; the bootstrap resamples cases, keeping all readings of a case together.
fn performance(readings: &[&Reading], options: &AnalysisOptions) -> Performance {
    let truth: Vec<bool> = readings.iter().map(|r| r.truth_artificial).collect();
    let ratings: Vec<f64> = readings.iter().map(|r| r.rating).collect();
    let counts = ConfusionCounts::from_pairs(readings.iter().map(|r| (r.truth_artificial, r.call_artificial)));
    let mut by_case: BTreeMap<&str, Vec<(bool, f64)>> = BTreeMap::new();
    for reading in readings {
        by_case.entry(reading.case_id.as_str()).or_default().push((reading.truth_artificial, reading.rating));
    }
    let clusters: Vec<Vec<(bool, f64)>> = by_case.into_values().collect();
    let auc = roc_auc(&truth, &ratings);
    let auc_ci = auc.and_then(|_| {
        bootstrap_ci(clusters.len(), options.bootstrap_resamples, options.seed, options.level, |drawn| {
            let (t, s): (Vec<bool>, Vec<f64>) =
                drawn.iter().filter_map(|index| clusters.get(*index)).flatten().copied().unzip();
            roc_auc(&t, &s)
        })
    });
    let times: Vec<u64> = readings.iter().filter_map(|r| r.time_ms).collect();
    let times_spanning_restart = readings.iter().filter(|r| r.time_ms.is_some() && r.time_spans_restart).count();
    Performance {
        readings: readings.len(),
        cases: clusters.len(),
        auc,
        auc_ci,
        accuracy: counts.accuracy(),
        binomial_p: counts.binomial_p(),
        sensitivity: counts.sensitivity(),
        specificity: counts.specificity(),
        counts,
        time_per_case: time_summary(&times)
            .map(|summary| TimeSummary { cases_spanning_restart: times_spanning_restart, ..summary }),
        roc: auc.and_then(|_| crate::metrics::roc::roc_curve(&truth, &ratings, false).ok()),
    }
}

fn pair_agreement(readings: &[&Reading], a: &str, b: &str, rating_categories: Option<&[f64]>) -> PairAgreement {
    let of = |reader: &str| -> BTreeMap<&str, &Reading> {
        readings.iter().filter(|r| r.reader == reader).map(|r| (r.case_id.as_str(), *r)).collect()
    };
    let (reads_a, reads_b) = (of(a), of(b));
    let common: Vec<(&Reading, &Reading)> =
        reads_a.iter().filter_map(|(case, ra)| reads_b.get(case).map(|rb| (*ra, *rb))).collect();
    let calls_a: Vec<usize> = common.iter().map(|(ra, _)| usize::from(ra.call_artificial)).collect();
    let calls_b: Vec<usize> = common.iter().map(|(_, rb)| usize::from(rb.call_artificial)).collect();
    let categories: Vec<f64> = match rating_categories {
        Some(categories) => categories.to_vec(),
        None => {
            let mut observed: Vec<f64> = common.iter().flat_map(|(ra, rb)| [ra.rating, rb.rating]).collect();
            observed.sort_by(f64::total_cmp);
            observed.dedup();
            observed
        }
    };
    let index_of = |rating: f64| categories.iter().position(|c| *c == rating);
    let ratings: Option<(Vec<usize>, Vec<usize>)> =
        common.iter().map(|(ra, rb)| Some((index_of(ra.rating)?, index_of(rb.rating)?))).collect();
    let weighted = |weighting| ratings.as_ref().and_then(|(ia, ib)| cohen_kappa(ia, ib, categories.len(), weighting));
    PairAgreement {
        reader_a: a.to_owned(),
        reader_b: b.to_owned(),
        cases: common.len(),
        cohen_kappa: cohen_kappa(&calls_a, &calls_b, 2, KappaWeighting::Unweighted),
        weighted_kappa_linear: weighted(KappaWeighting::Linear),
        weighted_kappa_quadratic: weighted(KappaWeighting::Quadratic),
    }
}

fn fleiss_agreement(readings: &[&Reading], readers: &[&str]) -> FleissAgreement {
    let mut calls_by_case: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for reading in readings {
        calls_by_case.entry(reading.case_id.as_str()).or_default().push(reading.call_artificial);
    }
    let table: Vec<Vec<u64>> = calls_by_case
        .values()
        .filter(|calls| calls.len() == readers.len())
        .map(|calls| {
            let artificial = calls.iter().filter(|c| **c).count() as u64;
            vec![calls.len() as u64 - artificial, artificial]
        })
        .collect();
    FleissAgreement {
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        cases: table.len(),
        kappa: fleiss_kappa(&table),
    }
}

#[cfg(test)]
mod format_tests {
    use super::format_p_value;

    #[test]
    fn p_values_read_as_papers_print_them() {
        assert_eq!(format_p_value(1.0), "1.000");
        assert_eq!(format_p_value(0.0421), "0.042");
        assert_eq!(format_p_value(0.000123), "1.2e-4");
    }
}
