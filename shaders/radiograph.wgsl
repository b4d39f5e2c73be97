// Radiograph display: window/level on original values, invert, optional colormap, optional heatmap overlay.
// The image is an R32Float texture of original values (8-bit, 16-bit or float units), read with textureLoad and
// interpolated here, because 32-bit float textures are not filterable on every adapter.

struct Uniforms {
    // Image pixel coordinates at the widget's top-left corner and per widget-uv unit.
    image_origin_px: vec2<f32>,
    image_extent_px: vec2<f32>,
    // Window in image units.
    window_center: f32,
    window_width: f32,
    // 1 = invert, 0 = not.
    invert: u32,
    // 0 = gray, 1 = viridis, 2 = inferno, 3 = jet.
    colormap: u32,
    // Heatmap overlay: 0 = none; opacity in [0, 1]; values below threshold are not drawn.
    overlay_enabled: u32,
    overlay_opacity: f32,
    overlay_threshold: f32,
    overlay_colormap: u32,
    // Gamma-encoded colour outside the image.
    background: vec4<f32>,
    // 1 when the render target is an sRGB format: undo its encoding so the window maps linearly to display values.
    output_srgb: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var image_tex: texture_2d<f32>;
@group(0) @binding(2) var overlay_tex: texture_2d<f32>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) widget_uv: vec2<f32>,
};

// One triangle that covers the whole viewport (egui sets the viewport to the widget rect).
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let uv = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: VertexOut;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.widget_uv = uv;
    return out;
}

fn load_clamped(tex: texture_2d<f32>, p: vec2<i32>) -> f32 {
    let size = vec2<i32>(textureDimensions(tex));
    return textureLoad(tex, clamp(p, vec2<i32>(0), size - vec2<i32>(1)), 0).r;
}

// Bilinear interpolation between pixel centres.
fn sample_bilinear(tex: texture_2d<f32>, p_px: vec2<f32>) -> f32 {
    let q = p_px - vec2<f32>(0.5);
    let base = floor(q);
    let f = q - base;
    let b = vec2<i32>(base);
    let v00 = load_clamped(tex, b);
    let v10 = load_clamped(tex, b + vec2<i32>(1, 0));
    let v01 = load_clamped(tex, b + vec2<i32>(0, 1));
    let v11 = load_clamped(tex, b + vec2<i32>(1, 1));
    return mix(mix(v00, v10, f.x), mix(v01, v11, f.x), f.y);
}

// Polynomial fits of matplotlib's colormaps (t in [0, 1]).
fn viridis(t: f32) -> vec3<f32> {
    let c0 = vec3<f32>(0.2777273272234177, 0.005407344544966578, 0.3340998053353061);
    let c1 = vec3<f32>(0.1050930431085774, 1.404613529898575, 1.384590162594685);
    let c2 = vec3<f32>(-0.3308618287255563, 0.214847559468213, 0.09509516302823659);
    let c3 = vec3<f32>(-4.634230498983486, -5.799100973351585, -19.33244095627987);
    let c4 = vec3<f32>(6.228269936347081, 14.17993336680509, 56.69055260068105);
    let c5 = vec3<f32>(4.776384997670288, -13.74514537774601, -65.35303263337234);
    let c6 = vec3<f32>(-5.435455855934631, 4.645852612178535, 26.3124352495832);
    return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}

fn inferno(t: f32) -> vec3<f32> {
    let c0 = vec3<f32>(0.0002189403691192265, 0.001651004631001012, -0.01948089843709184);
    let c1 = vec3<f32>(0.1065134194856116, 0.5639564367884091, 3.932712388889277);
    let c2 = vec3<f32>(11.60249308247187, -3.972853965665698, -15.9423941062914);
    let c3 = vec3<f32>(-41.70399613139459, 17.43639888205313, 44.35414519872813);
    let c4 = vec3<f32>(77.162935699427, -33.40235894210092, -81.80730925738993);
    let c5 = vec3<f32>(-71.31942824499214, 32.62606426397723, 73.20951985803202);
    let c6 = vec3<f32>(25.13112622477341, -12.24266895238567, -23.07032500287172);
    return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}

fn jet(t: f32) -> vec3<f32> {
    return clamp(vec3<f32>(1.5) - abs(vec3<f32>(4.0 * t) - vec3<f32>(3.0, 2.0, 1.0)), vec3<f32>(0.0), vec3<f32>(1.0));
}

fn apply_colormap(t: f32, map: u32) -> vec3<f32> {
    switch map {
        case 1u: { return clamp(viridis(t), vec3<f32>(0.0), vec3<f32>(1.0)); }
        case 2u: { return clamp(inferno(t), vec3<f32>(0.0), vec3<f32>(1.0)); }
        case 3u: { return jet(t); }
        default: { return vec3<f32>(t); }
    }
}

// Same formula as `Window::display_fraction` in src/imaging/window.rs.
fn window_level(value: f32) -> f32 {
    let width = max(u.window_width, 1e-3);
    var t = clamp((value - u.window_center) / width + 0.5, 0.0, 1.0);
    if (u.invert == 1u) {
        t = 1.0 - t;
    }
    return t;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let p_px = u.image_origin_px + in.widget_uv * u.image_extent_px;
    let size = vec2<f32>(textureDimensions(image_tex));
    if (p_px.x < 0.0 || p_px.y < 0.0 || p_px.x >= size.x || p_px.y >= size.y) {
        var bg = u.background.rgb;
        if (u.output_srgb == 1u) {
            bg = srgb_to_linear(bg);
        }
        return vec4<f32>(bg, 1.0);
    }
    var rgb = apply_colormap(window_level(sample_bilinear(image_tex, p_px)), u.colormap);
    if (u.overlay_enabled == 1u) {
        let overlay_size = vec2<f32>(textureDimensions(overlay_tex));
        let heat = clamp(sample_bilinear(overlay_tex, p_px / size * overlay_size), 0.0, 1.0);
        if (heat >= u.overlay_threshold) {
            rgb = mix(rgb, apply_colormap(heat, u.overlay_colormap), u.overlay_opacity);
        }
    }
    if (u.output_srgb == 1u) {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
