//! A DenseNet block's growing feature map on the CPU, allocated once at its final width.
//!
//! Each dense layer reads every channel so far and adds `growth_rate` new ones. Concatenating at every layer copies
//! all earlier channels again (about 40 MB per DenseNet-121 pass at batch 1, a tenth of its time on two cores);
//! here each channel is written once, and the layers read the filled prefix in place
//! ([`fast_conv::conv2d_fused_prefix`](crate::models::fast_conv::conv2d_fused_prefix)).

use candle_core::{Device, Result, Tensor, bail};

use crate::models::fast_conv::with_cpu_f32;

/// `[N, channels_total, H, W]` float32 values whose first `channels_filled` channels of each image are set.
pub struct DenseBlockBuffer {
    values: Vec<f32>,
    batch: usize,
    channels_total: usize,
    channels_filled: usize,
    height: usize,
    width: usize,
}

impl DenseBlockBuffer {
    /// A buffer `channels_total` wide holding the block's input `[N, C, H, W]` (CPU float32) in its first `C`
    /// channels.
    pub fn new(input: &Tensor, channels_total: usize) -> Result<Self> {
        let (batch, channels, height, width) = input.dims4()?;
        if channels > channels_total {
            bail!("dense block buffer: input of {channels} channels is wider than the block's {channels_total}");
        }
        let mut buffer = Self {
            values: vec![0.0; batch * channels_total * height * width],
            batch,
            channels_total,
            channels_filled: 0,
            height,
            width,
        };
        buffer.append(input)?;
        Ok(buffer)
    }

    /// Writes `features` `[N, k, H, W]` (CPU float32) into the next `k` channels.
    pub fn append(&mut self, features: &Tensor) -> Result<()> {
        let (batch, channels, height, width) = features.dims4()?;
        if (batch, height, width) != (self.batch, self.height, self.width) {
            bail!(
                "dense block buffer: features of shape {:?} do not fit a [{}, _, {}, {}] block",
                features.dims(),
                self.batch,
                self.height,
                self.width
            );
        }
        if self.channels_filled + channels > self.channels_total {
            bail!(
                "dense block buffer: {channels} more channels overflow {} of {}",
                self.channels_filled,
                self.channels_total
            );
        }
        let plane = height * width;
        let (image_stride, offset) = (self.channels_total * plane, self.channels_filled * plane);
        let features = features.contiguous()?;
        with_cpu_f32(&features, "dense block features", |new| {
            for (image, source) in new.chunks_exact(channels * plane).enumerate() {
                let start = image * image_stride + offset;
                self.values[start..start + source.len()].copy_from_slice(source);
            }
            Ok(())
        })?;
        self.channels_filled += channels;
        Ok(())
    }

    /// The values, the dims `[N, channels_filled, H, W]` of the filled prefix, and the floats from image to image.
    pub fn filled(&self) -> (&[f32], [usize; 4], usize) {
        let plane = self.height * self.width;
        (&self.values, [self.batch, self.channels_filled, self.height, self.width], self.channels_total * plane)
    }

    /// The whole block `[N, channels_total, H, W]`, once every channel is filled.
    pub fn into_tensor(self) -> Result<Tensor> {
        if self.channels_filled != self.channels_total {
            bail!("dense block buffer: {} of {} channels filled", self.channels_filled, self.channels_total);
        }
        Tensor::from_vec(self.values, (self.batch, self.channels_total, self.height, self.width), &Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_equals_concatenation_and_the_prefix_is_in_place() {
        let first = crate::test_random::randn(0f32, 1.0, (2, 3, 4, 5));
        let second = crate::test_random::randn(0f32, 1.0, (2, 2, 4, 5));
        let mut buffer = DenseBlockBuffer::new(&first, 5).unwrap();
        let (values, dims, stride) = buffer.filled();
        assert_eq!((dims, stride), ([2, 3, 4, 5], 100));
        let second_image = first.get(1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&values[100..160], second_image.as_slice());
        assert!(buffer.append(&crate::test_random::randn(0f32, 1.0, (2, 3, 4, 5))).is_err(), "overflow");
        assert!(buffer.append(&crate::test_random::randn(0f32, 1.0, (2, 1, 4, 4))).is_err(), "wrong size");
        buffer.append(&second).unwrap();
        let expected = Tensor::cat(&[&first, &second], 1).unwrap();
        let got = buffer.into_tensor().unwrap();
        let difference = (got - expected).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(difference, 0.0);
    }

    #[test]
    fn an_unfilled_block_is_not_a_tensor() {
        let first = crate::test_random::randn(0f32, 1.0, (1, 2, 3, 3));
        assert!(DenseBlockBuffer::new(&first, 4).unwrap().into_tensor().is_err());
        assert!(DenseBlockBuffer::new(&first, 1).is_err());
    }
}
