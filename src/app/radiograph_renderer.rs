//! GPU side of the radiograph viewer: an egui wgpu paint callback running `shaders/radiograph.wgsl`.
//!
//! Each viewport keeps one R32Float texture of original values; it is replaced only when the viewport shows a
//! different image, so window/level, invert and zoom are a uniform update per frame.

use std::collections::HashMap;
use std::num::NonZeroU64;

use eframe::egui_wgpu::{self, wgpu};

use crate::imaging::GrayImage;
use crate::imaging::resize::fit_within;

const SHADER_SOURCE: &str = include_str!("../../shaders/radiograph.wgsl");

/// Colour maps the shader knows, in its numbering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Colormap {
    #[default]
    Gray,
    Viridis,
    Inferno,
    Jet,
}

impl Colormap {
    pub const ALL: [Self; 4] = [Self::Gray, Self::Viridis, Self::Inferno, Self::Jet];

    fn shader_index(self) -> u32 {
        match self {
            Self::Gray => 0,
            Self::Viridis => 1,
            Self::Inferno => 2,
            Self::Jet => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gray => "Gray",
            Self::Viridis => "Viridis",
            Self::Inferno => "Inferno",
            Self::Jet => "Jet",
        }
    }
}

/// A heatmap drawn over the image: values in [0, 1] on any grid, stretched to the image.
#[derive(Clone, Debug)]
pub struct Overlay {
    pub heatmap: GrayImage,
    pub opacity: f32,
    pub threshold: f32,
    pub colormap: Colormap,
}

/// Must match `Uniforms` in radiograph.wgsl byte for byte.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniforms {
    image_origin_px: [f32; 2],
    image_extent_px: [f32; 2],
    window_center: f32,
    window_width: f32,
    invert: u32,
    colormap: u32,
    overlay_enabled: u32,
    overlay_opacity: f32,
    overlay_threshold: f32,
    overlay_colormap: u32,
    background: [f32; 4],
    output_srgb: u32,
    _padding: [u32; 3],
}

/// Everything one frame of one viewport needs from the CPU side.
#[derive(Clone, Debug)]
pub struct RadiographFrame {
    pub image: GrayImage,
    /// Image pixel coordinates at the widget's top-left corner, and the image extent the widget spans.
    pub image_origin_px: [f32; 2],
    pub image_extent_px: [f32; 2],
    pub window: crate::imaging::Window,
    pub inverted: bool,
    pub colormap: Colormap,
    pub overlay: Option<Overlay>,
    pub background: egui::Color32,
}

struct ViewportGpu {
    image_id: u64,
    overlay_id: Option<u64>,
    overlay_view: wgpu::TextureView,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// Pipeline and per-viewport textures, stored in egui_wgpu's callback resources.
pub struct RadiographResources {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    output_srgb: bool,
    viewports: HashMap<egui::Id, ViewportGpu>,
}

/// Installs the pipeline into eframe's wgpu renderer. Returns false when there is no wgpu renderer.
pub fn install(render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(render_state) = render_state else {
        return false;
    };
    let device = &render_state.device;
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("radiograph.wgsl"),
        source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
    });
    let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("radiograph bind group layout"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: NonZeroU64::new(std::mem::size_of::<Uniforms>() as u64),
                },
                count: None,
            },
            texture_entry(1),
            texture_entry(2),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("radiograph pipeline layout"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("radiograph pipeline"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &shader,
            entry_point: Some("vs_main"),
            buffers: &[],
            compilation_options: wgpu::PipelineCompilationOptions::default(),
        },
        fragment: Some(wgpu::FragmentState {
            module: &shader,
            entry_point: Some("fs_main"),
            targets: &[Some(render_state.target_format.into())],
            compilation_options: wgpu::PipelineCompilationOptions::default(),
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    render_state.renderer.write().callback_resources.insert(RadiographResources {
        pipeline,
        layout,
        output_srgb: render_state.target_format.is_srgb(),
        viewports: HashMap::new(),
    });
    true
}

/// Uploads a gray image as an R32Float texture, shrinking it first if the adapter cannot hold it.
fn upload(device: &wgpu::Device, queue: &wgpu::Queue, image: &GrayImage, label: &str) -> wgpu::TextureView {
    let max_side = device.limits().max_texture_dimension_2d as usize;
    let shrunk;
    let image = if image.width_px().max(image.height_px()) > max_side {
        // The display copy only; the original values stay in the app for pixel readout and analysis.
        shrunk = fit_within(image, max_side).unwrap_or_else(|_| image.clone());
        &shrunk
    } else {
        image
    };
    let size =
        wgpu::Extent3d { width: image.width_px() as u32, height: image.height_px() as u32, depth_or_array_layers: 1 };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::R32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    queue.write_texture(
        texture.as_image_copy(),
        bytemuck::cast_slice(image.pixels()),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(4 * size.width),
            rows_per_image: Some(size.height),
        },
        size,
    );
    texture.create_view(&wgpu::TextureViewDescriptor::default())
}

/// The paint callback for one viewport.
pub struct RadiographCallback {
    pub viewport: egui::Id,
    pub frame: RadiographFrame,
}

impl RadiographCallback {
    fn uniforms(&self, output_srgb: bool) -> Uniforms {
        let frame = &self.frame;
        let overlay = frame.overlay.as_ref();
        Uniforms {
            image_origin_px: frame.image_origin_px,
            image_extent_px: frame.image_extent_px,
            window_center: frame.window.center,
            window_width: frame.window.width,
            invert: u32::from(frame.inverted),
            colormap: frame.colormap.shader_index(),
            overlay_enabled: u32::from(overlay.is_some()),
            overlay_opacity: overlay.map_or(0.0, |o| o.opacity),
            overlay_threshold: overlay.map_or(0.0, |o| o.threshold),
            overlay_colormap: overlay.map_or(0, |o| o.colormap.shader_index()),
            background: frame.background.to_array().map(|c| f32::from(c) / 255.0),
            output_srgb: u32::from(output_srgb),
            _padding: [0; 3],
        }
    }
}

impl egui_wgpu::CallbackTrait for RadiographCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(resources) = callback_resources.get_mut::<RadiographResources>() else {
            return Vec::new();
        };
        let image_id = self.frame.image.id();
        let overlay_id = self.frame.overlay.as_ref().map(|o| o.heatmap.id());
        let stale = resources
            .viewports
            .get(&self.viewport)
            .is_none_or(|gpu| gpu.image_id != image_id || gpu.overlay_id != overlay_id);
        if stale {
            let image_view = upload(device, queue, &self.frame.image, "radiograph image");
            let overlay_view = match &self.frame.overlay {
                Some(overlay) => upload(device, queue, &overlay.heatmap, "radiograph overlay"),
                None => match resources.viewports.get(&self.viewport) {
                    Some(gpu) if gpu.overlay_id.is_none() => gpu.overlay_view.clone(),
                    _ => {
                        let empty = GrayImage::new(1, 1, crate::imaging::BitDepth::F32, vec![0.0]);
                        match empty {
                            Ok(empty) => upload(device, queue, &empty, "empty overlay"),
                            Err(_) => return Vec::new(),
                        }
                    }
                },
            };
            let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("radiograph uniforms"),
                size: std::mem::size_of::<Uniforms>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("radiograph bind group"),
                layout: &resources.layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: uniforms.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&image_view) },
                    wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&overlay_view) },
                ],
            });
            resources
                .viewports
                .insert(self.viewport, ViewportGpu { image_id, overlay_id, overlay_view, uniforms, bind_group });
        }
        if let Some(gpu) = resources.viewports.get(&self.viewport) {
            let uniforms = self.uniforms(resources.output_srgb);
            queue.write_buffer(&gpu.uniforms, 0, bytemuck::bytes_of(&uniforms));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(resources) = callback_resources.get::<RadiographResources>() else {
            return;
        };
        let Some(gpu) = resources.viewports.get(&self.viewport) else {
            return;
        };
        render_pass.set_pipeline(&resources.pipeline);
        render_pass.set_bind_group(0, &gpu.bind_group, &[]);
        render_pass.draw(0..3, 0..1);
    }
}
