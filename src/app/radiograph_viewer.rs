//! The radiograph viewer widget: wheel zoom about the cursor, drag to pan, right-drag window/level,
//! double-click to fit, Shift + drag to measure (Shift + click clears the measurements, Esc drops a drag in
//! progress). Given the view's measurements, a plain drag that starts on one of their handles moves it instead of
//! panning, and a plain click selects the one under the pointer. Pixels go through the WGSL shader via
//! [`RadiographCallback`].

use egui::{Rect, Sense, Vec2, pos2, vec2};

use crate::app::measurement::handles::{self, HIT_TOLERANCE_PT};
use crate::app::measurement::{HandleId, MeasureGesture, Measurements};
use crate::app::radiograph_renderer::{Overlay, RadiographCallback, RadiographFrame};
use crate::app::view_state::{MAX_ZOOM, MIN_ZOOM, ViewState};
use crate::imaging::GrayImage;
use crate::imaging::window::MIN_WINDOW_WIDTH;

/// The pixel under the pointer, in image coordinates and original units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoveredPixel {
    pub x_px: usize,
    pub y_px: usize,
    pub value: f32,
}

/// What the user did to the viewer this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ViewerOutput {
    pub hovered_pixel: Option<HoveredPixel>,
    /// Zoom or pan changed.
    pub transform_changed: bool,
    /// Window/level changed.
    pub window_changed: bool,
    /// The user interacted with this viewer (it becomes the active one).
    pub interacted: bool,
    /// Shift + drag or Shift + click on the image; a plain drag of a handle, a plain click.
    pub measure: Option<MeasureGesture>,
    /// The measurement handle under the pointer, which a plain drag would move.
    pub hovered_handle: Option<HandleId>,
}

/// What a left-button drag does, decided when it begins: releasing Shift midway must not turn a measurement into a
/// pan.
#[derive(Clone, Copy, Debug, PartialEq)]
enum LeftDrag {
    Pan,
    Measure,
    /// Moving a measurement's handle; `offset_px` is from the pointer to the handle where the drag began, so the
    /// handle does not jump to the pointer.
    Handle {
        handle: HandleId,
        offset_px: Vec2,
    },
    /// A measuring drag or a handle's move dropped with Esc: the rest of it does nothing.
    Cancelled,
}

/// Maps between widget points and image pixels for one frame.
#[derive(Clone, Copy, Debug)]
pub struct ViewGeometry {
    rect: Rect,
    image_size_px: Vec2,
    /// Points per image pixel.
    scale: f32,
    center_px: Vec2,
}

impl ViewGeometry {
    pub fn new(rect: Rect, image: &GrayImage, state: &ViewState) -> Self {
        let image_size_px = vec2(image.width_px() as f32, image.height_px() as f32);
        let fit_scale = (rect.width() / image_size_px.x).min(rect.height() / image_size_px.y);
        let [u, v] = state.transform.center_uv;
        Self {
            rect,
            image_size_px,
            scale: (fit_scale * state.transform.zoom).max(f32::EPSILON),
            center_px: vec2(u * image_size_px.x, v * image_size_px.y),
        }
    }

    /// Image pixel coordinates (continuous) of a widget point.
    pub fn image_px_from_point(&self, point: egui::Pos2) -> Vec2 {
        self.center_px + (point - self.rect.center()) / self.scale
    }

    /// The widget point of image pixel coordinates (continuous).
    pub fn point_from_image_px(&self, image_px: Vec2) -> egui::Pos2 {
        self.rect.center() + (image_px - self.center_px) * self.scale
    }

    /// The hit tolerance in image pixels at this zoom: [`HIT_TOLERANCE_PT`] on screen.
    fn tolerance_px(&self) -> f32 {
        HIT_TOLERANCE_PT / self.scale
    }

    /// Image coordinates at the widget's top-left corner and the extent the widget spans.
    pub fn shader_mapping(&self) -> ([f32; 2], [f32; 2]) {
        let origin = self.image_px_from_point(self.rect.min);
        let extent = self.rect.size() / self.scale;
        ([origin.x, origin.y], [extent.x, extent.y])
    }

    /// The on-screen rectangle the image covers.
    pub fn image_rect(&self) -> Rect {
        let top_left = self.rect.center() - self.center_px * self.scale;
        Rect::from_min_size(pos2(top_left.x, top_left.y), self.image_size_px * self.scale)
    }
}

/// Shows `image` filling the available space and applies the user's interactions to `state`.
pub fn radiograph_viewer_ui(
    ui: &mut egui::Ui,
    id: egui::Id,
    image: &GrayImage,
    state: &mut ViewState,
    overlay: Option<&Overlay>,
) -> ViewerOutput {
    viewer_ui(ui, id, image, state, overlay, None)
}

/// [`radiograph_viewer_ui`] over a view's `measurements`: plain drags of their handles and plain clicks on them
/// become gestures (the caller applies them).
pub fn measuring_viewer_ui(
    ui: &mut egui::Ui,
    id: egui::Id,
    image: &GrayImage,
    state: &mut ViewState,
    overlay: Option<&Overlay>,
    measurements: &Measurements,
) -> ViewerOutput {
    viewer_ui(ui, id, image, state, overlay, Some(measurements))
}

fn viewer_ui(
    ui: &mut egui::Ui,
    id: egui::Id,
    image: &GrayImage,
    state: &mut ViewState,
    overlay: Option<&Overlay>,
    measurements: Option<&Measurements>,
) -> ViewerOutput {
    let size = ui.available_size().max(vec2(32.0, 32.0));
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let response = response.on_hover_cursor(egui::CursorIcon::Crosshair);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "radiograph view"));
    let mut output = ViewerOutput::default();

    if response.double_clicked() {
        state.fit();
        output.transform_changed = true;
    }

    // Wheel (or pinch) zoom about the pointer: the image point under the pointer stays put.
    if let Some(pointer) = response.hover_pos() {
        let (scroll_y, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        let factor = (scroll_y * 0.0025).exp() * pinch;
        if (factor - 1.0).abs() > 1e-4 {
            let before = ViewGeometry::new(rect, image, state).image_px_from_point(pointer);
            state.transform.zoom = (state.transform.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
            let after = ViewGeometry::new(rect, image, state).image_px_from_point(pointer);
            let shift = before - after;
            state.transform.center_uv[0] += shift.x / image.width_px() as f32;
            state.transform.center_uv[1] += shift.y / image.height_px() as f32;
            output.transform_changed = true;
        }
    }

    // Shift at the start of a left drag makes it a measurement: it draws from where it began, instead of panning.
    let drag_id = id.with("left drag");
    let shift = ui.input(|i| i.modifiers.shift);
    // The handle (and the pointer's offset from it) a plain press at `point` takes, if any.
    let handle_under = |point: egui::Pos2, state: &ViewState| {
        let items = measurements?.items();
        let geometry = ViewGeometry::new(rect, image, state);
        let p = geometry.image_px_from_point(point);
        let handle = handles::handle_at(items, [p.x, p.y], geometry.tolerance_px())?;
        let [x, y] = items.get(handle.item)?.handles_px().get(handle.handle).copied()?;
        Some((handle, vec2(x, y) - p))
    };
    if response.drag_started_by(egui::PointerButton::Primary) {
        let origin = ui.input(|i| i.pointer.press_origin());
        let mode = if shift {
            LeftDrag::Measure
        } else if let Some((handle, offset_px)) = origin.and_then(|o| handle_under(o, &*state)) {
            LeftDrag::Handle { handle, offset_px }
        } else {
            LeftDrag::Pan
        };
        ui.data_mut(|d| d.insert_temp(drag_id, mode));
    }
    let mode = ui.data(|d| d.get_temp::<LeftDrag>(drag_id)).unwrap_or(LeftDrag::Pan);
    if response.dragged_by(egui::PointerButton::Primary) {
        match mode {
            LeftDrag::Measure | LeftDrag::Handle { .. } if ui.input(|i| i.key_pressed(egui::Key::Escape)) => {
                ui.data_mut(|d| d.insert_temp(drag_id, LeftDrag::Cancelled));
                output.measure = Some(MeasureGesture::Cancel);
            }
            LeftDrag::Measure => {
                let geometry = ViewGeometry::new(rect, image, state);
                let origin = ui.input(|i| i.pointer.press_origin());
                if let (Some(origin), Some(pointer)) = (origin, response.interact_pointer_pos()) {
                    let (from, to) = (geometry.image_px_from_point(origin), geometry.image_px_from_point(pointer));
                    output.measure = Some(MeasureGesture::Drag { from_px: [from.x, from.y], to_px: [to.x, to.y] });
                }
            }
            LeftDrag::Handle { handle, offset_px } => {
                ui.ctx().set_cursor_icon(egui::CursorIcon::Grabbing);
                if let Some(pointer) = response.interact_pointer_pos() {
                    let to = ViewGeometry::new(rect, image, state).image_px_from_point(pointer) + offset_px;
                    output.measure = Some(MeasureGesture::MoveHandle { handle, to_px: [to.x, to.y] });
                }
            }
            LeftDrag::Pan => {
                let geometry = ViewGeometry::new(rect, image, state);
                let delta_px = response.drag_delta() / geometry.scale;
                state.transform.center_uv[0] -= delta_px.x / image.width_px() as f32;
                state.transform.center_uv[1] -= delta_px.y / image.height_px() as f32;
                output.transform_changed = true;
            }
            LeftDrag::Cancelled => {}
        }
    } else if response.drag_stopped_by(egui::PointerButton::Primary) {
        // Where the button came up (offset for a handle): a last move and the release can arrive in one frame.
        let at_px = |offset_px: Vec2| {
            response.interact_pointer_pos().map(|pointer| {
                let to = ViewGeometry::new(rect, image, state).image_px_from_point(pointer) + offset_px;
                [to.x, to.y]
            })
        };
        match mode {
            LeftDrag::Measure => output.measure = Some(MeasureGesture::Release { at_px: at_px(Vec2::ZERO) }),
            LeftDrag::Handle { handle, offset_px } => {
                output.measure = Some(MeasureGesture::DropHandle { handle, at_px: at_px(offset_px) });
            }
            LeftDrag::Pan | LeftDrag::Cancelled => {}
        }
        ui.data_mut(|d| d.remove::<LeftDrag>(drag_id));
    } else if shift && response.clicked() {
        output.measure = Some(MeasureGesture::Clear);
    } else if let Some(items) = measurements.map(Measurements::items)
        && response.clicked_by(egui::PointerButton::Primary)
        && let Some(pointer) = response.interact_pointer_pos()
    {
        let geometry = ViewGeometry::new(rect, image, state);
        let p = geometry.image_px_from_point(pointer);
        output.measure = Some(match handles::handle_at(items, [p.x, p.y], geometry.tolerance_px()) {
            Some(handle) => MeasureGesture::SelectHandle { handle },
            None => MeasureGesture::Select { item: handles::item_at(items, [p.x, p.y], geometry.tolerance_px()) },
        });
    }

    // The handle a plain drag would take: marked, with a grab cursor (Shift + drag draws, so not then).
    let dragging = ui.data(|d| d.get_temp::<LeftDrag>(drag_id)).is_some() && response.dragged();
    if !dragging
        && !shift
        && let Some(pointer) = response.hover_pos()
    {
        output.hovered_handle = handle_under(pointer, &*state).map(|(handle, _)| handle);
        if output.hovered_handle.is_some() {
            ui.ctx().set_cursor_icon(egui::CursorIcon::Grab);
        }
    }

    // Right-drag: horizontal = width, vertical = centre; a drag across the viewport spans the full range.
    if response.dragged_by(egui::PointerButton::Secondary) {
        let (lo, hi) = image.display_range();
        let span = hi - lo;
        let delta = response.drag_delta();
        state.window.width = (state.window.width + delta.x / rect.width() * span).max(MIN_WINDOW_WIDTH);
        state.window.center += delta.y / rect.height() * span;
        output.window_changed = true;
    }

    output.interacted = response.clicked() || response.dragged() || output.transform_changed;

    let geometry = ViewGeometry::new(rect, image, state);
    if let Some(pointer) = response.hover_pos() {
        let p = geometry.image_px_from_point(pointer);
        if p.x >= 0.0 && p.y >= 0.0 {
            let (x_px, y_px) = (p.x as usize, p.y as usize);
            output.hovered_pixel = image.value_at(x_px, y_px).map(|value| HoveredPixel { x_px, y_px, value });
        }
    }

    let (image_origin_px, image_extent_px) = geometry.shader_mapping();
    let frame = RadiographFrame {
        image: image.clone(),
        image_origin_px,
        image_extent_px,
        window: state.window,
        inverted: state.inverted,
        colormap: state.colormap,
        overlay: overlay.cloned(),
        background: ui.visuals().extreme_bg_color,
    };
    ui.painter().add(eframe::egui_wgpu::Callback::new_paint_callback(rect, RadiographCallback { viewport: id, frame }));
    output
}
