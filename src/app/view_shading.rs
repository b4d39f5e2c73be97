//! The CPU twin of `shaders/radiograph.wgsl`: the colours a viewport shows, computed pixel for pixel as the shader
//! computes them (sample at the pixel centre, bilinear between image pixel centres, window/level, invert, colour map,
//! heatmap overlay), so a view saved as PNG holds what the screen showed. A parity test holds the two together.

use crate::app::radiograph_renderer::{Colormap, RadiographFrame};
use crate::imaging::GrayImage;

/// Display colours (gamma-encoded, each channel in [0, 1]) of a `width_px` x `height_px` viewport showing `frame`,
/// row by row.
pub fn shade_view(frame: &RadiographFrame, width_px: usize, height_px: usize) -> Vec<[f32; 3]> {
    let background = frame.background.to_array().map(|c| f32::from(c) / 255.0);
    let background = [background[0], background[1], background[2]];
    let image = &frame.image;
    let size = [image.width_px() as f32, image.height_px() as f32];
    let mut colours = Vec::with_capacity(width_px.saturating_mul(height_px));
    for y in 0..height_px {
        let v = (y as f32 + 0.5) / height_px as f32;
        for x in 0..width_px {
            let u = (x as f32 + 0.5) / width_px as f32;
            let p = [
                frame.image_origin_px[0] + u * frame.image_extent_px[0],
                frame.image_origin_px[1] + v * frame.image_extent_px[1],
            ];
            if p[0] < 0.0 || p[1] < 0.0 || p[0] >= size[0] || p[1] >= size[1] {
                colours.push(background);
                continue;
            }
            let t = frame.window.display_fraction(sample_bilinear(image, p), frame.inverted);
            let mut rgb = colormap_rgb(t, frame.colormap);
            if let Some(overlay) = &frame.overlay {
                let heatmap = &overlay.heatmap;
                let scale = [heatmap.width_px() as f32 / size[0], heatmap.height_px() as f32 / size[1]];
                let heat = sample_bilinear(heatmap, [p[0] * scale[0], p[1] * scale[1]]).clamp(0.0, 1.0);
                if heat >= overlay.threshold {
                    let heat_rgb = colormap_rgb(heat, overlay.colormap);
                    for (channel, over) in rgb.iter_mut().zip(heat_rgb) {
                        *channel = mix(*channel, over, overlay.opacity);
                    }
                }
            }
            colours.push(rgb);
        }
    }
    colours
}

/// The value at continuous pixel coordinates `p_px`: bilinear between pixel centres, edges clamped (the shader's
/// `sample_bilinear`).
fn sample_bilinear(image: &GrayImage, p_px: [f32; 2]) -> f32 {
    let (width, height) = (image.width_px() as i64, image.height_px() as i64);
    let pixels = image.pixels();
    let load = |x: i64, y: i64| {
        let (x, y) = (x.clamp(0, width - 1), y.clamp(0, height - 1));
        pixels.get((y * width + x) as usize).copied().unwrap_or(0.0)
    };
    let q = [p_px[0] - 0.5, p_px[1] - 0.5];
    let base = [q[0].floor(), q[1].floor()];
    let f = [q[0] - base[0], q[1] - base[1]];
    let (bx, by) = (base[0] as i64, base[1] as i64);
    let top = mix(load(bx, by), load(bx + 1, by), f[0]);
    let bottom = mix(load(bx, by + 1), load(bx + 1, by + 1), f[0]);
    mix(top, bottom, f[1])
}

/// WGSL's `mix`.
fn mix(a: f32, b: f32, t: f32) -> f32 {
    a * (1.0 - t) + b * t
}

/// Polynomial fits of matplotlib's colour maps, the shader's coefficients digit for digit (t in [0, 1]).
#[allow(clippy::excessive_precision)]
const VIRIDIS: [[f32; 3]; 7] = [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

#[allow(clippy::excessive_precision)]
const INFERNO: [[f32; 3]; 7] = [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
];

fn polynomial(t: f32, coefficients: &[[f32; 3]; 7]) -> [f32; 3] {
    let mut rgb = [0.0; 3];
    for (channel, value) in rgb.iter_mut().enumerate() {
        // Horner's rule in the shader's order: c0 + t (c1 + t (c2 + ...)).
        *value = coefficients.iter().rev().fold(0.0, |acc, c| c[channel] + t * acc).clamp(0.0, 1.0);
    }
    rgb
}

fn colormap_rgb(t: f32, colormap: Colormap) -> [f32; 3] {
    match colormap {
        Colormap::Gray => [t; 3],
        Colormap::Viridis => polynomial(t, &VIRIDIS),
        Colormap::Inferno => polynomial(t, &INFERNO),
        Colormap::Jet => [3.0, 2.0, 1.0].map(|offset| (1.5 - (4.0 * t - offset).abs()).clamp(0.0, 1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::radiograph_renderer::Overlay;
    use crate::imaging::{BitDepth, Window};

    fn frame(image: GrayImage, origin: [f32; 2], extent: [f32; 2]) -> RadiographFrame {
        RadiographFrame {
            image,
            image_origin_px: origin,
            image_extent_px: extent,
            window: Window { center: 50.0, width: 100.0 },
            inverted: false,
            colormap: Colormap::Gray,
            overlay: None,
            background: egui::Color32::from_rgb(10, 20, 30),
        }
    }

    #[test]
    fn pixels_are_windowed_interpolated_between_centres_and_the_outside_is_background() {
        // Two pixels, 0 and 100, drawn 4 viewport pixels wide: centres at 0.5 and 1.5 image px (viewport x 0.5
        // and 2.5 + ...), so the viewport pixels sample 0.25, 0.75, 1.25, 1.75 image px.
        let image = GrayImage::new(2, 1, BitDepth::U8, vec![0.0, 100.0]).unwrap();
        let colours = shade_view(&frame(image.clone(), [0.0, 0.0], [2.0, 1.0]), 4, 1);
        let grey: Vec<f32> = colours.iter().map(|c| c[0]).collect();
        // Clamped at the left edge (0), then 25 and 75 between the centres, clamped at the right (100).
        assert_eq!(grey, [0.0, 0.25, 0.75, 1.0]);
        // Half the viewport left of the image: background there.
        let colours = shade_view(&frame(image, [-2.0, 0.0], [4.0, 1.0]), 4, 1);
        let background = [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0];
        assert_eq!(&colours[..2], [background, background]);
        assert_eq!(colours[2], [0.0; 3]);
    }

    #[test]
    fn invert_colour_maps_and_an_overlay_above_its_threshold() {
        let image = GrayImage::new(1, 1, BitDepth::U8, vec![25.0]).unwrap();
        let mut inverted = frame(image.clone(), [0.0, 0.0], [1.0, 1.0]);
        inverted.inverted = true;
        assert_eq!(shade_view(&inverted, 1, 1)[0], [0.75; 3]);
        // Jet at 0.25: (1.5 - |1 - 3|, 1.5 - |1 - 2|, 1.5 - |1 - 1|) clamped = (0, 0.5, 1).
        let mut jet = frame(image.clone(), [0.0, 0.0], [1.0, 1.0]);
        jet.colormap = Colormap::Jet;
        assert_eq!(shade_view(&jet, 1, 1)[0], [0.0, 0.5, 1.0]);
        // Viridis ends: matplotlib's (0.267, 0.005, 0.329) and (0.993, 0.906, 0.144), within the fit's error.
        for (t, expected) in [(0.0, [0.267, 0.005, 0.329]), (1.0, [0.993, 0.906, 0.144])] {
            let rgb = colormap_rgb(t, Colormap::Viridis);
            assert!(rgb.iter().zip(expected).all(|(a, b)| (a - b).abs() < 0.02), "{t}: {rgb:?}");
        }
        // A heatmap of 0.8 at opacity 0.5 over grey 0.25 in Gray: 0.25 + (0.8 - 0.25) / 2; below its threshold
        // it is not drawn.
        let heatmap = GrayImage::new(1, 1, BitDepth::F32, vec![0.8]).unwrap();
        let mut overlaid = frame(image, [0.0, 0.0], [1.0, 1.0]);
        overlaid.overlay = Some(Overlay { heatmap, opacity: 0.5, threshold: 0.5, colormap: Colormap::Gray });
        assert!(shade_view(&overlaid, 1, 1)[0].iter().all(|c| (c - 0.525).abs() < 1e-6));
        if let Some(overlay) = overlaid.overlay.as_mut() {
            overlay.threshold = 0.9;
        }
        assert_eq!(shade_view(&overlaid, 1, 1)[0], [0.25; 3]);
    }
}
