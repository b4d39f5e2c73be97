//! A software rasterizer for egui's tessellated output, so a figure can be drawn at its full size off screen
//! (a screenshot holds only what the window shows).
//!
//! It follows egui-wgpu's gamma-framebuffer path: vertex colours and texels are premultiplied sRGBA, multiplied
//! in gamma space and blended with `src + dst * (1 - src_alpha)`. Texels are sampled bilinearly with clamped
//! edges, as egui's font atlas is. Pixels are covered by the top-left rule, so the two triangles of a
//! translucent quad blend once along their shared edge.

use std::collections::HashMap;

use egui::epaint::textures::TexturesDelta;
use egui::epaint::{ClippedPrimitive, ImageDelta, Primitive, TextureId, Vertex};
use egui::{Color32, ColorImage, ImageData};

/// Textures by id, kept up to date from each pass's [`TexturesDelta`].
#[derive(Default)]
pub struct SoftTextures {
    images: HashMap<TextureId, ColorImage>,
}

impl SoftTextures {
    /// Applies and takes out `delta`'s new and patched textures (its frees are applied after painting, by
    /// [`Self::free`]); egui asserts in debug builds that no delta is dropped unapplied.
    pub fn set(&mut self, delta: &mut TexturesDelta) {
        for (id, patches) in std::mem::take(&mut delta.set) {
            for patch in &patches {
                self.apply(id, patch);
            }
        }
    }

    /// Drops the textures `delta` frees, and takes them out of it.
    pub fn free(&mut self, delta: &mut TexturesDelta) {
        for id in std::mem::take(&mut delta.free) {
            self.images.remove(&id);
        }
    }

    fn apply(&mut self, id: TextureId, patch: &ImageDelta) {
        let ImageData::Color(source) = &patch.image;
        match patch.pos {
            None => {
                self.images.insert(id, (**source).clone());
            }
            Some([x0, y0]) => {
                let Some(target) = self.images.get_mut(&id) else { return };
                let [width, height] = target.size;
                for (row, line) in source.pixels.chunks_exact(source.size[0].max(1)).enumerate() {
                    let y = y0 + row;
                    if y >= height {
                        break;
                    }
                    for (column, &pixel) in line.iter().enumerate() {
                        let x = x0 + column;
                        if x < width {
                            target.pixels[y * width + x] = pixel;
                        }
                    }
                }
            }
        }
    }
}

/// Premultiplied RGBA in 0..=1, gamma space.
type Rgba = [f32; 4];

fn to_rgba(color: Color32) -> Rgba {
    let [r, g, b, a] = color.to_array();
    [f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0, f32::from(a) / 255.0]
}

/// A premultiplied RGBA canvas in gamma space.
pub struct SoftCanvas {
    width_px: usize,
    height_px: usize,
    pixels: Vec<Rgba>,
}

impl SoftCanvas {
    /// A canvas filled with `background`.
    pub fn new(width_px: usize, height_px: usize, background: Color32) -> Self {
        Self { width_px, height_px, pixels: vec![to_rgba(background); width_px * height_px] }
    }

    /// An opaque canvas holding `colours` (gamma-encoded RGB in [0, 1], row by row), e.g. a radiograph to draw
    /// annotations over; `None` when their number is not `width_px` x `height_px`.
    pub fn from_opaque(width_px: usize, height_px: usize, colours: &[[f32; 3]]) -> Option<Self> {
        (colours.len() == width_px.checked_mul(height_px)?).then(|| Self {
            width_px,
            height_px,
            pixels: colours.iter().map(|&[r, g, b]| [r, g, b, 1.0]).collect(),
        })
    }

    /// Paints `primitives` (positions in points) with the top-left of the canvas at `origin` (points).
    /// Paint callbacks (custom GPU drawing) have no software path and are skipped.
    pub fn paint(
        &mut self,
        primitives: &[ClippedPrimitive],
        textures: &SoftTextures,
        origin: egui::Pos2,
        pixels_per_point: f32,
    ) {
        for primitive in primitives {
            let Primitive::Mesh(mesh) = &primitive.primitive else { continue };
            let texture = textures.images.get(&mesh.texture_id);
            let to_px = |p: egui::Pos2| ((p.x - origin.x) * pixels_per_point, (p.y - origin.y) * pixels_per_point);
            let (clip_x0, clip_y0) = to_px(primitive.clip_rect.min);
            let (clip_x1, clip_y1) = to_px(primitive.clip_rect.max);
            let clip = PixelBox {
                x0: clip_x0.round().max(0.0) as usize,
                y0: clip_y0.round().max(0.0) as usize,
                x1: (clip_x1.round().max(0.0) as usize).min(self.width_px),
                y1: (clip_y1.round().max(0.0) as usize).min(self.height_px),
            };
            if clip.x1 <= clip.x0 || clip.y1 <= clip.y0 {
                continue;
            }
            for triangle in mesh.indices.chunks_exact(3) {
                let corner = |i: u32| mesh.vertices.get(i as usize);
                let (Some(a), Some(b), Some(c)) = (corner(triangle[0]), corner(triangle[1]), corner(triangle[2]))
                else {
                    continue;
                };
                self.triangle([a, b, c].map(|v| (to_px(v.pos), v)), texture, &clip);
            }
        }
    }

    fn triangle(&mut self, corners: [((f32, f32), &Vertex); 3], texture: Option<&ColorImage>, clip: &PixelBox) {
        let [((ax, ay), va), ((bx, by), vb), ((cx, cy), vc)] = corners;
        let area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
        if area == 0.0 || !area.is_finite() {
            return;
        }
        // Edge functions oriented so that inside is positive whatever the winding.
        let sign = area.signum();
        let edge = |(x0, y0): (f32, f32), (x1, y1): (f32, f32)| {
            let (dx, dy) = ((x1 - x0) * sign, (y1 - y0) * sign);
            // Top-left rule: a pixel centre on an edge belongs to the triangle when the edge is a top edge
            // (horizontal, interior below) or a left edge (interior to its right); y points down.
            let owns = (dy == 0.0 && dx > 0.0) || dy < 0.0;
            move |px: f32, py: f32| {
                let w = (py - y0) * dx - (px - x0) * dy;
                if w > 0.0 || (w == 0.0 && owns) { Some(w) } else { None }
            }
        };
        let (e0, e1, e2) = (edge((bx, by), (cx, cy)), edge((cx, cy), (ax, ay)), edge((ax, ay), (bx, by)));
        let min_x = ax.min(bx).min(cx).floor().max(clip.x0 as f32) as usize;
        let max_x = (ax.max(bx).max(cx).ceil().max(0.0) as usize).min(clip.x1);
        let min_y = ay.min(by).min(cy).floor().max(clip.y0 as f32) as usize;
        let max_y = (ay.max(by).max(cy).ceil().max(0.0) as usize).min(clip.y1);
        let area = area.abs();
        let colors = [to_rgba(va.color), to_rgba(vb.color), to_rgba(vc.color)];
        let uvs = [va.uv, vb.uv, vc.uv];
        for y in min_y..max_y {
            let py = y as f32 + 0.5;
            for x in min_x..max_x {
                let px = x as f32 + 0.5;
                let (Some(w0), Some(w1), Some(w2)) = (e0(px, py), e1(px, py), e2(px, py)) else { continue };
                let weights = [w0 / area, w1 / area, w2 / area];
                let mix = |f: &dyn Fn(usize) -> f32| weights[0] * f(0) + weights[1] * f(1) + weights[2] * f(2);
                let mut source = [0.0; 4];
                for (channel, value) in source.iter_mut().enumerate() {
                    *value = mix(&|corner| colors[corner][channel]);
                }
                if let Some(texture) = texture {
                    let texel = sample_bilinear(texture, mix(&|i| uvs[i].x), mix(&|i| uvs[i].y));
                    for (value, t) in source.iter_mut().zip(texel) {
                        *value *= t;
                    }
                }
                let Some(target) = self.pixels.get_mut(y * self.width_px + x) else { continue };
                let keep = 1.0 - source[3];
                for (value, s) in target.iter_mut().zip(source) {
                    *value = s + *value * keep;
                }
            }
        }
    }

    /// The canvas as an RGBA image; translucent pixels are un-premultiplied.
    pub fn into_image(self) -> Option<image::RgbaImage> {
        let mut bytes = Vec::with_capacity(self.pixels.len() * 4);
        for [r, g, b, a] in self.pixels {
            let a = a.clamp(0.0, 1.0);
            let unmultiply = |v: f32| if a > 0.0 { (v / a).clamp(0.0, 1.0) } else { 0.0 };
            for v in [unmultiply(r), unmultiply(g), unmultiply(b), a] {
                bytes.push((v * 255.0).round() as u8);
            }
        }
        image::RgbaImage::from_raw(u32::try_from(self.width_px).ok()?, u32::try_from(self.height_px).ok()?, bytes)
    }
}

/// Pixels `x0..x1` by `y0..y1`.
struct PixelBox {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

/// The texel at normalized `(u, v)`, bilinear between texel centres, edges clamped.
fn sample_bilinear(texture: &ColorImage, u: f32, v: f32) -> Rgba {
    let [width, height] = texture.size;
    if width == 0 || height == 0 {
        return [1.0; 4];
    }
    let x = (u * width as f32 - 0.5).clamp(0.0, (width - 1) as f32);
    let y = (v * height as f32 - 0.5).clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let texel = |tx: usize, ty: usize| texture.pixels.get(ty * width + tx).copied().map_or([0.0; 4], to_rgba);
    let (t00, t10, t01, t11) = (texel(x0, y0), texel(x1, y0), texel(x0, y1), texel(x1, y1));
    let mut out = [0.0; 4];
    for (channel, value) in out.iter_mut().enumerate() {
        let top = t00[channel] + (t10[channel] - t00[channel]) * fx;
        let bottom = t01[channel] + (t11[channel] - t01[channel]) * fx;
        *value = top + (bottom - top) * fy;
    }
    out
}

#[cfg(test)]
mod tests {
    use egui::epaint::Mesh;
    use egui::{Rect, pos2};

    use super::*;

    fn quad(rect: Rect, color: Color32) -> ClippedPrimitive {
        let mut mesh = Mesh::default();
        mesh.add_colored_rect(rect, color);
        ClippedPrimitive { clip_rect: Rect::EVERYTHING, primitive: Primitive::Mesh(mesh) }
    }

    fn paint(primitives: &[ClippedPrimitive], size: usize, pixels_per_point: f32) -> image::RgbaImage {
        let mut canvas = SoftCanvas::new(size, size, Color32::WHITE);
        canvas.paint(primitives, &SoftTextures::default(), pos2(0.0, 0.0), pixels_per_point);
        canvas.into_image().unwrap()
    }

    #[test]
    fn an_opaque_rect_covers_exactly_its_pixels() {
        let image = paint(&[quad(Rect::from_min_max(pos2(1.0, 2.0), pos2(4.0, 3.0)), Color32::RED)], 6, 1.0);
        let red: Vec<(u32, u32)> =
            image.enumerate_pixels().filter(|(_, _, p)| p.0 == [255, 0, 0, 255]).map(|(x, y, _)| (x, y)).collect();
        assert_eq!(red, vec![(1, 2), (2, 2), (3, 2)]);
        assert_eq!(image.get_pixel(0, 0).0, [255, 255, 255, 255]);
        // At 2 pixels per point the rect covers 6 x 2 pixels.
        let image = paint(&[quad(Rect::from_min_max(pos2(1.0, 2.0), pos2(4.0, 3.0)), Color32::RED)], 12, 2.0);
        assert_eq!(image.pixels().filter(|p| p.0 == [255, 0, 0, 255]).count(), 12);
    }

    #[test]
    fn a_translucent_quad_blends_once_along_its_diagonal() {
        // Premultiplied half-transparent black over white: 50% gray everywhere, no darker seam.
        let half_black = Color32::from_black_alpha(128);
        let image = paint(&[quad(Rect::from_min_max(pos2(0.0, 0.0), pos2(7.0, 7.0)), half_black)], 7, 1.0);
        let values: std::collections::BTreeSet<u8> = image.pixels().map(|p| p.0[0]).collect();
        assert_eq!(values.len(), 1, "{values:?}");
        assert_eq!(image.get_pixel(3, 3).0, [127, 127, 127, 255]);
    }

    #[test]
    fn adjacent_rects_leave_no_gap_and_no_overlap() {
        let half = Color32::from_black_alpha(128);
        let left = quad(Rect::from_min_max(pos2(0.0, 0.0), pos2(2.5, 5.0)), half);
        let right = quad(Rect::from_min_max(pos2(2.5, 0.0), pos2(5.0, 5.0)), half);
        let image = paint(&[left, right], 5, 1.0);
        assert!(image.pixels().all(|p| p.0 == [127, 127, 127, 255]));
    }

    #[test]
    fn clip_rects_and_textures_are_honoured() {
        let mut mesh = Mesh::with_texture(TextureId::Managed(7));
        mesh.add_rect_with_uv(
            Rect::from_min_max(pos2(0.0, 0.0), pos2(4.0, 4.0)),
            Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
            Color32::WHITE,
        );
        let clipped = ClippedPrimitive {
            clip_rect: Rect::from_min_max(pos2(0.0, 0.0), pos2(2.0, 4.0)),
            primitive: Primitive::Mesh(mesh),
        };
        // A 2 x 1 texture: blue on the left, green on the right.
        let texture = ColorImage::new([2, 1], vec![Color32::BLUE, Color32::GREEN]);
        let mut textures = SoftTextures::default();
        let mut delta = TexturesDelta::default();
        delta.set.insert(TextureId::Managed(7), [ImageDelta::full(texture, Default::default())].into());
        textures.set(&mut delta);
        assert!(delta.is_empty(), "the delta is taken out");
        let mut canvas = SoftCanvas::new(4, 4, Color32::WHITE);
        canvas.paint(&[clipped], &textures, pos2(0.0, 0.0), 1.0);
        let image = canvas.into_image().unwrap();
        assert_eq!(image.get_pixel(0, 1).0, [0, 0, 255, 255], "left edge clamps to the first texel");
        let between = image.get_pixel(1, 1).0;
        assert!(between[1] > 0 && between[2] > 0 && between[2] > between[1], "bilinear blend: {between:?}");
        assert_eq!(image.get_pixel(2, 1).0, [255, 255, 255, 255], "clipped away");
        assert_eq!(image.get_pixel(3, 3).0, [255, 255, 255, 255], "clipped away");

        // A patch replaces texels; a free drops the texture.
        let mut patch = TexturesDelta::default();
        let red = ColorImage::new([1, 1], vec![Color32::RED]);
        patch.set.insert(TextureId::Managed(7), [ImageDelta::partial([0, 0], red, Default::default())].into());
        textures.set(&mut patch);
        assert_eq!(textures.images[&TextureId::Managed(7)].pixels, vec![Color32::RED, Color32::GREEN]);
        patch.free.insert(TextureId::Managed(7));
        textures.free(&mut patch);
        assert!(textures.images.is_empty() && patch.is_empty());
    }
}
