//! Training our own models with candle autograd: the conditional ProGAN generator (`thorax train gan`).

pub mod adam;
pub mod augment;
pub mod checkpoint;
pub mod conv;
pub mod cyclegan_train;
pub mod cyclegan_trainer;
pub mod dataset;
pub mod discriminator;
pub mod domain_images;
pub mod ema;
pub mod error;
pub mod gan_loss;
pub mod gan_trainer;
pub mod generator;
pub mod patch_discriminator;
pub mod rng;
