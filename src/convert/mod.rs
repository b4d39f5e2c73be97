//! Readers for the original checkpoints (TF ProGAN pickles, PyTorch files) and .npy arrays.

pub mod npy;
pub mod pickle;
pub mod progan_tf;
pub mod pytorch;
