//! Candle networks of the original study, one file each, and their model cards.

pub mod card;
pub mod cudnn_conv;
pub mod cyclegan;
pub mod dense_block_buffer;
pub mod densenet;
pub mod embedding;
pub mod error;
pub mod fast_conv;
pub mod fused_pool;
pub mod heatmap;
pub mod heatmap_export;
pub mod inception;
pub mod inception_embedding;
pub mod label_traversal;
pub mod labels;
pub mod op_profile;
pub mod preprocess;
pub mod progan;
pub mod registry;
pub mod safetensors_file;
pub mod shifted_conv;
pub mod style_transfer;
pub mod upload_cache;
pub mod weights;
