//! The Results view of a study: per-reader and pooled performance, and agreement, as tables.

use crate::study::analysis::{
    AnalysisOptions, AnalysisReport, ModalityAnalysis, Performance, analyze, format_p_value, restart_note,
};
use crate::study::export::readings_from_store;
use crate::study::{StudyError, StudyStore};

/// Bootstrap resamples of the AUC confidence intervals in the Results view.
pub const RESULTS_BOOTSTRAP_RESAMPLES: usize = 2000;

/// Analyses the study's answers (latest revision of every main case) as `thorax study analyze` does.
pub fn analyze_store(store: &StudyStore) -> Result<AnalysisReport, StudyError> {
    let design = store.design()?;
    let readings = readings_from_store(store)?;
    let categories: Vec<f64> = design.confidence_scale.rating_categories().into_iter().map(|r| r as f64).collect();
    let options = AnalysisOptions { bootstrap_resamples: RESULTS_BOOTSTRAP_RESAMPLES, seed: 0, level: 0.95 };
    analyze(&readings, Some(&categories), &options)
}

fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

fn fmt_p(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), format_p_value)
}

fn fmt_percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn performance_row(ui: &mut egui::Ui, name: &str, p: &Performance) {
    ui.label(name);
    ui.label(p.readings.to_string());
    ui.label(fmt(p.auc));
    ui.label(p.auc_ci.map_or_else(|| "n/a".to_owned(), |ci| format!("{:.3} - {:.3}", ci.lower, ci.upper)));
    ui.label(fmt_percent(p.accuracy));
    ui.label(fmt_p(p.binomial_p));
    ui.label(fmt_percent(p.sensitivity));
    ui.label(fmt_percent(p.specificity));
    let c = p.counts;
    ui.label(format!("{} / {} / {} / {}", c.true_positive, c.false_negative, c.true_negative, c.false_positive));
    ui.label(p.time_per_case.map_or_else(|| "n/a".to_owned(), |t| format!("{:.1} s", t.median_ms / 1000.0)));
    ui.end_row();
}

fn modality_ui(ui: &mut egui::Ui, modality: &ModalityAnalysis, level: f64) {
    let ci_header = format!("AUC {:.0}% CI", level * 100.0);
    ui.label(egui::RichText::new("Performance (detecting artificial images)").strong());
    egui::Grid::new(("study_results_performance", modality.modality.as_str())).striped(true).spacing([14.0, 4.0]).show(
        ui,
        |ui| {
            for header in [
                "Reader",
                "Cases",
                "AUC",
                ci_header.as_str(),
                "Accuracy",
                "Binomial p",
                "Sensitivity",
                "Specificity",
                "TP / FN / TN / FP",
                "Median time",
            ] {
                ui.label(egui::RichText::new(header).strong());
            }
            ui.end_row();
            for reader in &modality.readers {
                performance_row(ui, &reader.reader, &reader.performance);
            }
            performance_row(ui, "Pooled", &modality.pooled);
        },
    );
    ui.label(egui::RichText::new(format!("Mean of the readers' AUCs: {}", fmt(modality.reader_average_auc))).weak());
    if let Some(note) = restart_note(&modality.pooled) {
        ui.label(egui::RichText::new(note).weak());
    }
    ui.add_space(8.0);
    roc_plot_ui(ui, modality);
    ui.add_space(8.0);
    ui.label(egui::RichText::new("Agreement").strong());
    if modality.pairwise_agreement.is_empty() {
        ui.label(egui::RichText::new("Agreement needs two readers.").weak());
        return;
    }
    egui::Grid::new(("study_results_agreement", modality.modality.as_str())).striped(true).spacing([14.0, 4.0]).show(
        ui,
        |ui| {
            for header in ["Readers", "Cases", "Cohen kappa", "Weighted kappa (linear)", "Weighted kappa (quadratic)"] {
                ui.label(egui::RichText::new(header).strong());
            }
            ui.end_row();
            for pair in &modality.pairwise_agreement {
                ui.label(format!("{} - {}", pair.reader_a, pair.reader_b));
                ui.label(pair.cases.to_string());
                ui.label(fmt(pair.cohen_kappa));
                ui.label(fmt(pair.weighted_kappa_linear));
                ui.label(fmt(pair.weighted_kappa_quadratic));
                ui.end_row();
            }
        },
    );
    if let Some(fleiss) = &modality.fleiss {
        ui.label(format!(
            "Fleiss kappa ({} readers, {} cases): {}",
            fleiss.readers.len(),
            fleiss.cases,
            fmt(fleiss.kappa)
        ));
    }
}

/// The readers' and the pooled ROC curves of detecting artificial images, with the chance diagonal.
fn roc_plot_ui(ui: &mut egui::Ui, modality: &ModalityAnalysis) {
    use crate::app::metrics_plots::{RocLine, roc_plot_ui};
    let named = |name: &str, p: &Performance| format!("{name} (AUC {})", fmt(p.auc));
    let curves: Vec<(String, &crate::metrics::roc::RocCurve, bool)> = modality
        .readers
        .iter()
        .filter_map(|r| r.performance.roc.as_ref().map(|roc| (named(&r.reader, &r.performance), roc, false)))
        .chain(modality.pooled.roc.as_ref().map(|roc| (named("Pooled", &modality.pooled), roc, true)))
        .collect();
    if curves.is_empty() {
        ui.label(egui::RichText::new("ROC curves need answers on both real and artificial cases.").weak());
        return;
    }
    ui.label(egui::RichText::new("ROC curves (ratings; positive = artificial)").strong());
    let lines: Vec<RocLine<'_>> = curves
        .into_iter()
        .map(|(name, roc, pooled)| RocLine {
            name,
            fpr: &roc.fpr,
            tpr: &roc.tpr,
            width: if pooled { 2.5 } else { 1.2 },
        })
        .collect();
    roc_plot_ui(ui, ("study_roc", modality.modality.as_str()), 260.0, &lines);
}

/// Draws the report: one section per reading condition (modality).
pub fn results_ui(ui: &mut egui::Ui, report: &AnalysisReport) {
    let options = report.options;
    for modality in &report.modalities {
        if report.modalities.len() > 1 {
            ui.heading(format!("Condition {}", modality.modality));
        }
        modality_ui(ui, modality, options.level);
        ui.add_space(10.0);
    }
    ui.label(
        egui::RichText::new(format!(
            "AUC from the ratings (call and confidence); CI: percentile bootstrap over cases, {} resamples, seed {}. \
             Binomial p: exact two-sided test of accuracy against 50%. Practice cases are excluded.",
            options.bootstrap_resamples, options.seed
        ))
        .weak()
        .small(),
    );
}
