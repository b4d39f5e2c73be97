//! Plots of metric results: MS-SSIM histograms per pathology (real vs artificial), ROC curves per label with the
//! bootstrap CI in the legend, the pathology correlation matrix as a labelled heatmap, FD/KID values with N.
//! Each function returns the rectangle it drew, which "Save plot PNG" draws off screen as a figure.

use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, pos2, vec2};
use egui_plot::{Bar, BarChart, Legend, Line, LineStyle, Plot, PlotPoints};

use crate::app::metrics_record::{KidSummary, MetricDetail, MetricRecord, MsSsimLabel, RocLabel};
use crate::metrics::correlation::CorrelationMatrix;
use crate::metrics::fid::FrechetDistance;
use crate::metrics::kid::spread_caution;
use crate::metrics::msssim_histogram::PairHistogram;

const REAL_COLOR: Color32 = Color32::from_rgb(90, 160, 235);
const ARTIFICIAL_COLOR: Color32 = Color32::from_rgb(240, 150, 60);
const HISTOGRAM_SIZE: egui::Vec2 = vec2(520.0, 170.0);
const ROC_HEIGHT: f32 = 340.0;

/// Draws the plot of `record`; returns the rectangle it covers.
pub fn record_plot_ui(ui: &mut egui::Ui, record: &MetricRecord) -> Rect {
    let seed = record.setting("seed").unwrap_or("-").to_owned();
    match &record.detail {
        MetricDetail::FdKid { fd, kid } => fd_kid_ui(ui, record, fd, kid),
        MetricDetail::MsSsimHistogram { labels, notes } => msssim_ui(ui, record.id, labels, notes, &seed),
        MetricDetail::Roc { labels } => roc_ui(ui, record.id, labels, record),
        MetricDetail::Correlation { matrix } => correlation_ui(ui, matrix, record),
    }
}

/// Runs `add` in a vertical group and returns the rectangle it used.
fn framed(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) -> Rect {
    ui.vertical(|ui| {
        ui.add_space(2.0);
        add(ui);
    })
    .response
    .rect
}

fn fd_kid_ui(ui: &mut egui::Ui, record: &MetricRecord, fd: &FrechetDistance, kid: &KidSummary) -> Rect {
    framed(ui, |ui| {
        ui.label(egui::RichText::new("FD-DenseNet and KID").strong());
        egui::Grid::new(("fd_kid_values", record.id)).striped(true).spacing([16.0, 4.0]).show(ui, |ui| {
            let rows = [
                ("FD-DenseNet", format!("{:.4}", fd.value)),
                ("  mean term", format!("{:.4}", fd.mean_term)),
                ("  covariance term", format!("{:.4}", fd.covariance_term)),
                ("KID", format!("{:.6} +- {:.6}", kid.mean, kid.std)),
                ("KID subsets", format!("{} of {} rows, seed {}", kid.subsets, kid.subset_size, kid.seed)),
                ("N real / artificial", format!("{} / {}", fd.count_a, fd.count_b)),
                ("Feature dimension", fd.dim.to_string()),
                ("Classifier", record.setting("classifier").unwrap_or("-").to_owned()),
            ];
            for (name, value) in rows {
                ui.label(name);
                ui.label(value);
                ui.end_row();
            }
        });
        if let Some(caution) = fd.sample_size_caution() {
            ui.colored_label(ui.visuals().warn_fg_color, caution);
        }
        if let Some(caution) = spread_caution(kid.subset_size, fd.count_a, fd.count_b) {
            ui.colored_label(ui.visuals().warn_fg_color, format!("KID: {caution}"));
        }
    })
}

fn histogram_bars(histogram: &PairHistogram, name: &str, color: Color32) -> BarChart {
    let bars: Vec<Bar> = histogram
        .counts
        .iter()
        .zip(histogram.bin_edges.windows(2))
        .map(|(&count, edges)| {
            let (low, high) = (edges.first().copied().unwrap_or(0.0), edges.last().copied().unwrap_or(0.0));
            Bar::new((low + high) / 2.0, count as f64).width(high - low)
        })
        .collect();
    BarChart::new(name, bars).color(color.gamma_multiply(0.75))
}

fn side_text(side: &str, histogram: Option<&PairHistogram>) -> String {
    match histogram {
        Some(h) => format!("{side} {} pairs, mean {:.3}", h.pairs_requested, h.mean),
        None => format!("{side}: none"),
    }
}

fn msssim_ui(ui: &mut egui::Ui, record_id: u64, labels: &[MsSsimLabel], notes: &[String], seed: &str) -> Rect {
    framed(ui, |ui| {
        ui.label(egui::RichText::new(format!("MS-SSIM of random same-label pairs, 50 bins, seed {seed}")).strong());
        for label in labels {
            ui.label(format!(
                "{}: {}; {}",
                label.label,
                side_text("real", label.real.as_ref()),
                side_text("artificial", label.artificial.as_ref())
            ));
            let width = HISTOGRAM_SIZE.x.min(ui.available_width());
            let tallest = [&label.real, &label.artificial]
                .into_iter()
                .flatten()
                .flat_map(|h| h.counts.iter())
                .copied()
                .max()
                .unwrap_or(0) as f64;
            Plot::new(("msssim_histogram", record_id, label.label.as_str()))
                .width(width)
                .height(HISTOGRAM_SIZE.y)
                .legend(Legend::default())
                .include_x(0.0)
                .include_x(1.0)
                .include_y(0.0)
                .include_y(tallest * LEGEND_HEADROOM)
                .x_axis_label("MS-SSIM")
                .y_axis_label("pairs")
                .allow_scroll(false)
                .allow_drag(false)
                .allow_zoom(false)
                .show(ui, |plot| {
                    if let Some(h) = &label.real {
                        plot.bar_chart(histogram_bars(h, &format!("real ({} pairs)", h.pairs_requested), REAL_COLOR));
                    }
                    if let Some(h) = &label.artificial {
                        let name = format!("artificial ({} pairs)", h.pairs_requested);
                        plot.bar_chart(histogram_bars(h, &name, ARTIFICIAL_COLOR));
                    }
                });
        }
        for note in notes {
            ui.label(egui::RichText::new(note).weak().small());
        }
    })
}

/// The legend entry of a ROC curve: AUC and, when computed, the bootstrap CI.
pub fn roc_legend(label: &RocLabel) -> String {
    match (label.auc, &label.bootstrap) {
        (Some(auc), Some(b)) => {
            format!("{} AUC {auc:.3} ({:.0}% CI {:.3}-{:.3})", label.label, b.level * 100.0, b.ci_low, b.ci_high)
        }
        (Some(auc), None) => format!("{} AUC {auc:.3}", label.label),
        (None, _) => format!("{}: {}", label.label, label.error.as_deref().unwrap_or("undefined")),
    }
}

fn roc_ui(ui: &mut egui::Ui, record_id: u64, labels: &[RocLabel], record: &MetricRecord) -> Rect {
    framed(ui, |ui| {
        ui.label(
            egui::RichText::new(format!(
                "ROC per label: n = {}, {} bootstrap resamples, seed {}",
                record.setting("n").unwrap_or("-"),
                record.setting("bootstrap_resamples").unwrap_or("-"),
                record.setting("seed").unwrap_or("-")
            ))
            .strong(),
        );
        let lines: Vec<RocLine<'_>> = labels
            .iter()
            .filter(|l| l.auc.is_some())
            .map(|label| RocLine { name: roc_legend(label), fpr: &label.fpr, tpr: &label.tpr, width: 1.5 })
            .collect();
        roc_plot_ui(ui, ("roc_curves", record_id), ROC_HEIGHT, &lines);
        for label in labels.iter().filter(|l| l.auc.is_none()) {
            ui.label(egui::RichText::new(roc_legend(label)).weak().small());
        }
    })
}

/// Height of one legend entry, to keep room for the legend.
const LEGEND_ROW_HEIGHT: f32 = 18.0;

/// Headroom above the tallest bar, so a top-right legend does not cover bars.
pub const LEGEND_HEADROOM: f64 = 1.45;

/// One curve of a ROC plot.
pub struct RocLine<'a> {
    /// Legend entry (name and AUC).
    pub name: String,
    pub fpr: &'a [f64],
    pub tpr: &'a [f64],
    /// Stroke width in points.
    pub width: f32,
}

/// ROC curves on a square data area with the chance diagonal. The legend sits in the bottom-right corner, in a
/// strip below sensitivity 0 kept free for it, so it covers no curve however poor. Shared by the Metrics window and
/// the study Results view.
pub fn roc_plot_ui(ui: &mut egui::Ui, id_salt: impl egui::AsIdSalt, height: f32, lines: &[RocLine<'_>]) {
    // The legend's height as a fraction of the plot's, then in data units below 0 (the y range is 1 + strip).
    let legend_fraction = (((lines.len() + 1) as f32 * LEGEND_ROW_HEIGHT + 12.0) / height.max(1.0)).min(0.6);
    let strip = f64::from(legend_fraction / (1.0 - legend_fraction));
    Plot::new(id_salt)
        .width((height * 1.3).min(ui.available_width()))
        .height(height)
        .data_aspect(1.0)
        .include_x(0.0)
        .include_x(1.0)
        .include_y(-strip)
        .include_y(1.0)
        .x_axis_label("1 - specificity")
        .y_axis_label("sensitivity")
        .legend(Legend::default().position(egui_plot::Corner::RightBottom))
        .show(ui, |plot| {
            let chance = vec![[0.0, 0.0], [1.0, 1.0]];
            plot.line(
                Line::new("chance", PlotPoints::from(chance)).color(Color32::GRAY).style(LineStyle::dashed_dense()),
            );
            for line in lines {
                let points: Vec<[f64; 2]> = line.fpr.iter().zip(line.tpr).map(|(&x, &y)| [x, y]).collect();
                // No band aggregation: the vertical runs of a ROC step curve would be drawn as thick bands.
                plot.line(Line::new(line.name.clone(), PlotPoints::from(points)).width(line.width).allow_band(false));
            }
        });
}

/// Diverging colour of a correlation in [-1, 1] (blue - light gray - red, the ends of matplotlib's coolwarm).
pub fn correlation_color(r: Option<f64>) -> Color32 {
    let Some(r) = r.filter(|r| r.is_finite()) else {
        return Color32::from_gray(70);
    };
    let t = r.clamp(-1.0, 1.0) as f32;
    let mid = [221.0, 221.0, 221.0];
    let end = if t < 0.0 { [59.0, 76.0, 192.0] } else { [180.0, 4.0, 38.0] };
    let a = t.abs();
    let channel = |i: usize| (mid[i] + (end[i] - mid[i]) * a).round() as u8;
    Color32::from_rgb(channel(0), channel(1), channel(2))
}

fn correlation_ui(ui: &mut egui::Ui, matrix: &CorrelationMatrix, record: &MetricRecord) -> Rect {
    framed(ui, |ui| {
        ui.label(
            egui::RichText::new(format!(
                "Pathology correlation (Pearson r): rows = control label, columns = classifier output; {} images per \
                 label, seed {}",
                record.setting("per_label").unwrap_or("-"),
                record.setting("seed").unwrap_or("-")
            ))
            .strong(),
        );
        heatmap_ui(ui, matrix);
    })
}

/// The matrix as coloured cells with their values, row names on the left and column names rotated on top.
fn heatmap_ui(ui: &mut egui::Ui, matrix: &CorrelationMatrix) {
    let font = FontId::proportional(12.0);
    let value_font = FontId::monospace(10.5);
    let text_color = ui.visuals().text_color();
    let name_width = |names: &[String]| {
        names
            .iter()
            .map(|n| ui.painter().layout_no_wrap(n.clone(), font.clone(), text_color).size().x)
            .fold(0.0_f32, f32::max)
    };
    let row_names_px = name_width(&matrix.control_labels) + 8.0;
    let column_names_px = name_width(&matrix.output_labels) + 8.0;
    let cell_px = 34.0;
    let (rows, columns) = (matrix.control_labels.len(), matrix.output_labels.len());
    let size = vec2(row_names_px + cell_px * columns as f32, column_names_px + cell_px * rows as f32);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    // Room for the grid's outside stroke.
    let painter = ui.painter_at(rect.expand(1.0));
    let origin = pos2(rect.left() + row_names_px, rect.top() + column_names_px);
    for (column, name) in matrix.output_labels.iter().enumerate() {
        let galley = painter.layout_no_wrap(name.clone(), font.clone(), text_color);
        // Rotated -90 degrees: reads bottom-up, ending just above its column.
        let x = origin.x + cell_px * (column as f32 + 0.5) - galley.size().y / 2.0;
        let pos = pos2(x, origin.y - 4.0);
        painter.add(egui::epaint::TextShape::new(pos, galley, text_color).with_angle(-std::f32::consts::FRAC_PI_2));
    }
    let mut hovered = None;
    for (row, (name, cells)) in matrix.control_labels.iter().zip(&matrix.r).enumerate() {
        let y = origin.y + cell_px * row as f32;
        painter.text(pos2(origin.x - 6.0, y + cell_px / 2.0), Align2::RIGHT_CENTER, name, font.clone(), text_color);
        for (column, &r) in cells.iter().enumerate() {
            let cell = Rect::from_min_size(pos2(origin.x + cell_px * column as f32, y), vec2(cell_px, cell_px));
            let fill = correlation_color(r);
            painter.rect_filled(cell.shrink(0.5), 0.0, fill);
            let luminance = 0.2126 * f32::from(fill.r()) + 0.7152 * f32::from(fill.g()) + 0.0722 * f32::from(fill.b());
            let ink = if luminance < 140.0 { Color32::WHITE } else { Color32::BLACK };
            let text = r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}"));
            painter.text(cell.center(), Align2::CENTER_CENTER, text, value_font.clone(), ink);
            if response.hover_pos().is_some_and(|p| cell.contains(p)) {
                hovered = Some((row, column, r));
            }
        }
    }
    let grid = Rect::from_min_size(origin, vec2(cell_px * columns as f32, cell_px * rows as f32));
    painter.rect_stroke(grid, 0.0, Stroke::new(1.0, ui.visuals().weak_text_color()), egui::StrokeKind::Outside);
    if let Some((row, column, r)) = hovered {
        let control = matrix.control_labels.get(row).cloned().unwrap_or_default();
        let output = matrix.output_labels.get(column).cloned().unwrap_or_default();
        let value = r.map_or_else(|| "undefined (constant output)".to_owned(), |r| format!("{r:.4}"));
        response.on_hover_text(format!("control {control}, output {output}: r = {value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_colours_run_blue_gray_red() {
        assert_eq!(correlation_color(Some(-1.0)), Color32::from_rgb(59, 76, 192));
        assert_eq!(correlation_color(Some(0.0)), Color32::from_rgb(221, 221, 221));
        assert_eq!(correlation_color(Some(1.0)), Color32::from_rgb(180, 4, 38));
        assert_eq!(correlation_color(Some(5.0)), correlation_color(Some(1.0)));
        assert_eq!(correlation_color(None), Color32::from_gray(70));
    }

    #[test]
    fn roc_legend_names_the_ci() {
        let label = RocLabel {
            label: "Edema".into(),
            cases: 10,
            positives: 4,
            auc: Some(0.8126),
            bootstrap: Some(crate::metrics::bootstrap::BootstrapAuc {
                auc: 0.8126,
                ci_low: 0.5,
                ci_high: 1.0,
                level: 0.95,
                mean: 0.8,
                std: 0.1,
                resamples: 100,
                resamples_used: 100,
                skipped_one_class: 0,
                seed: 0,
            }),
            fpr: vec![],
            tpr: vec![],
            error: None,
        };
        assert_eq!(roc_legend(&label), "Edema AUC 0.813 (95% CI 0.500-1.000)");
    }
}
