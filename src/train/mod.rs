//! Training our own models with candle autograd: the conditional ProGAN generator (`thorax train gan`).

pub mod adam;
pub mod allocator;
pub mod augment;
pub mod checkpoint;
pub mod chexpert_layout;
pub mod classifier_split;
pub mod classifier_trainer;
pub mod conv;
pub mod cyclegan_train;
pub mod cyclegan_trainer;
pub mod dataset;
pub mod dataset_layout;
pub mod densenet_train;
pub mod discriminator;
pub mod domain_images;
pub mod ema;
pub mod error;
pub mod federated;
pub mod gan_loss;
pub mod gan_trainer;
pub mod generator;
pub mod growth;
pub mod nih_layout;
pub mod our_layout;
pub mod patch_discriminator;
pub mod rng;
