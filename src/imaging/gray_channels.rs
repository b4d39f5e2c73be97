//! Gray images stored in colour clothing: a PNG with a gray palette, or an RGB file whose three channels are equal
//! (what many viewers and ImageMagick write for a radiograph). Such a file holds exactly one gray value per pixel, so
//! commands that take gray data only (MS-SSIM, DICOM export) read it losslessly instead of refusing it; a file with
//! real colour or transparency is refused with the first pixel that shows it.

/// Why interleaved colour samples are not a gray image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotGray {
    /// Red, green and blue differ at this pixel.
    #[error("it holds colour (red, green and blue differ at pixel ({x_px}, {y_px})); convert it to gray first")]
    Colour { x_px: usize, y_px: usize },
    /// The alpha channel is not opaque at this pixel.
    #[error(
        "it is transparent at pixel ({x_px}, {y_px}); a radiograph has no transparency, so flatten it to gray first"
    )]
    Transparent { x_px: usize, y_px: usize },
    /// A channel count this module does not take (1 is already gray).
    #[error("it has {0} channels per pixel; expected gray, gray with alpha, RGB or RGBA")]
    Channels(usize),
}

/// The gray plane of `width_px`-wide interleaved samples with `channels` per pixel (2: gray + alpha, 3: RGB, 4: RGBA)
/// when every pixel has equal colour channels and an `opaque` alpha.
pub fn equal_channels_to_gray<T: Copy + PartialEq>(
    samples: &[T],
    channels: usize,
    width_px: usize,
    opaque: T,
) -> Result<Vec<T>, NotGray> {
    if !(2..=4).contains(&channels) {
        return Err(NotGray::Channels(channels));
    }
    let has_alpha = channels != 3;
    let mut gray = Vec::with_capacity(samples.len() / channels);
    for (index, pixel) in samples.chunks_exact(channels).enumerate() {
        let (x_px, y_px) = (index % width_px.max(1), index / width_px.max(1));
        if has_alpha && pixel[channels - 1] != opaque {
            return Err(NotGray::Transparent { x_px, y_px });
        }
        if channels >= 3 && (pixel[1] != pixel[0] || pixel[2] != pixel[0]) {
            return Err(NotGray::Colour { x_px, y_px });
        }
        gray.push(pixel[0]);
    }
    Ok(gray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_rgb_and_opaque_alpha_give_the_gray_plane() {
        assert_eq!(equal_channels_to_gray(&[7u8, 7, 7, 200, 200, 200], 3, 2, 255), Ok(vec![7, 200]));
        assert_eq!(equal_channels_to_gray(&[7u16, 7, 7, 65535], 4, 1, u16::MAX), Ok(vec![7]));
        assert_eq!(equal_channels_to_gray(&[9u8, 255, 10, 255], 2, 2, 255), Ok(vec![9, 10]));
    }

    #[test]
    fn colour_and_transparency_name_the_first_pixel_that_shows_them() {
        let rgb = [1u8, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 4];
        assert_eq!(equal_channels_to_gray(&rgb, 3, 2, 255), Err(NotGray::Colour { x_px: 1, y_px: 1 }));
        let gray_alpha = [1u8, 255, 2, 128];
        assert_eq!(equal_channels_to_gray(&gray_alpha, 2, 2, 255), Err(NotGray::Transparent { x_px: 1, y_px: 0 }));
        assert_eq!(equal_channels_to_gray(&[1u8], 1, 1, 255), Err(NotGray::Channels(1)));
    }
}
