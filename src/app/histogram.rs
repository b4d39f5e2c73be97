//! The histogram strip under a viewport, with the current window shaded.

use egui::{Color32, Rect, Sense, Stroke, pos2, vec2};

use crate::imaging::{ImageStats, Window};

/// Height of the strip in points.
pub const HISTOGRAM_HEIGHT: f32 = 48.0;

/// Draws log-scaled bin counts across the image's nominal range and shades the window.
pub fn histogram_ui(ui: &mut egui::Ui, stats: &ImageStats, window: &Window) {
    let (rect, response) = ui.allocate_exact_size(vec2(ui.available_width(), HISTOGRAM_HEIGHT), Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let (lo, hi) = stats.histogram_range;
    let span = (hi - lo).max(f32::EPSILON);
    let x_of = |value: f32| rect.left() + (value - lo) / span * rect.width();

    let window_rect = Rect::from_x_y_ranges(
        x_of(window.center - window.width / 2.0).max(rect.left())
            ..=x_of(window.center + window.width / 2.0).min(rect.right()),
        rect.y_range(),
    );
    painter.rect_filled(window_rect, 0.0, visuals.selection.bg_fill.gamma_multiply(0.35));

    let max_log = stats.histogram.iter().map(|&c| (c as f32).ln_1p()).fold(0.0_f32, f32::max).max(1.0);
    let bins = stats.histogram.len().max(1);
    let bar_width = rect.width() / bins as f32;
    let bar_color = visuals.text_color().gamma_multiply(0.7);
    for (i, &count) in stats.histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let height = (count as f32).ln_1p() / max_log * (rect.height() - 2.0);
        let x = rect.left() + i as f32 * bar_width;
        painter.rect_filled(
            Rect::from_min_max(pos2(x, rect.bottom() - height), pos2(x + bar_width.max(1.0), rect.bottom())),
            0.0,
            bar_color,
        );
    }
    painter.line_segment(
        [pos2(x_of(window.center), rect.top()), pos2(x_of(window.center), rect.bottom())],
        Stroke::new(1.0, Color32::from_rgb(255, 170, 60)),
    );
    response.on_hover_text(format!(
        "min {:.1}  max {:.1}  mean {:.1}  sd {:.1}\nwindow: centre {:.1}, width {:.1}",
        stats.min, stats.max, stats.mean, stats.std, window.center, window.width
    ));
}
