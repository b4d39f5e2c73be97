//! The frame size a JPEG or JPEG-LS stream declares in its start-of-frame header, to check an encapsulated frame
//! against the data set's Rows and Columns: codecs decode a smaller frame into the larger buffer without a word,
//! which re-strides the image into garbage.

/// `(rows, columns)` from the first start-of-frame marker of a JPEG (ITU T.81) or JPEG-LS (T.87) stream, or `None`
/// when `bytes` is not such a stream or ends before one.
pub(crate) fn jpeg_frame_size(bytes: &[u8]) -> Option<(u16, u16)> {
    if bytes.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let length = usize::from(u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]));
        let is_frame_header = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) || marker == 0xF7;
        if is_frame_header {
            // Length, sample precision, then the number of lines and samples per line.
            let rows = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            let columns = u16::from_be_bytes([*bytes.get(at + 7)?, *bytes.get(at + 8)?]);
            return Some((rows, columns));
        }
        if marker == 0xDA || marker == 0xD9 || length < 2 {
            return None;
        }
        at += 2 + length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_frame_size_of_an_encoded_jpeg() {
        let image = image::GrayImage::from_fn(40, 24, |x, y| image::Luma([(x + y) as u8]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(image).write_to(&mut bytes, image::ImageFormat::Jpeg).unwrap();
        let bytes = bytes.into_inner();
        assert_eq!(jpeg_frame_size(&bytes), Some((24, 40)));
        assert_eq!(jpeg_frame_size(&bytes[..20]), None, "cut before the frame header");
        assert_eq!(jpeg_frame_size(b"not a jpeg"), None);
        // JPEG-LS: SOI, then SOF55 with precision 8, 3 lines of 5 samples, 1 component.
        let jpeg_ls = [0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x0B, 0x08, 0x00, 0x03, 0x00, 0x05, 0x01, 0x01, 0x11, 0x00];
        assert_eq!(jpeg_frame_size(&jpeg_ls), Some((3, 5)));
    }
}
