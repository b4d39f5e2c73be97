//! The frame an encapsulated JPEG, JPEG-LS or JPEG 2000 stream declares in its header, to check it against the data
//! set's Rows and Columns before a codec sees it. Codecs decode a smaller frame into the larger buffer without a
//! word (which re-strides the image into garbage), and the JPEG 2000 codec panics on a larger one.

/// What a stream's header declares about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub rows: u32,
    pub columns: u32,
    /// Bits per sample (JPEG's sample precision; JPEG 2000's largest component depth).
    pub precision: u8,
    pub components: u16,
    pub kind: FrameKind,
}

/// The coding process of a frame, as far as the checks need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// ITU T.81 DCT-based (baseline, extended, progressive).
    JpegDct,
    /// ITU T.81 lossless (process 14).
    JpegLossless,
    /// ITU T.87 JPEG-LS.
    JpegLs,
    /// ISO 15444-1 JPEG 2000 codestream.
    Jpeg2000,
}

/// The frame header of a JPEG (T.81) or JPEG-LS (T.87) stream, from its first start-of-frame marker, or of a
/// JPEG 2000 codestream, from its SIZ marker; `None` when `bytes` is none of these or ends before the header.
pub(crate) fn frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    match bytes.get(0..2)? {
        [0xFF, 0xD8] => jpeg_frame_header(bytes),
        [0xFF, 0x4F] => jpeg2000_frame_header(bytes),
        _ => None,
    }
}

fn jpeg_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
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
        let kind = match marker {
            0xC3 | 0xC7 | 0xCB | 0xCF => Some(FrameKind::JpegLossless),
            0xC0..=0xC2 | 0xC5 | 0xC6 | 0xC9 | 0xCA | 0xCD | 0xCE => Some(FrameKind::JpegDct),
            0xF7 => Some(FrameKind::JpegLs),
            _ => None,
        };
        if let Some(kind) = kind {
            // Length, sample precision, the number of lines and samples per line, then the component count.
            return Some(FrameHeader {
                precision: *bytes.get(at + 4)?,
                rows: u32::from(u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?])),
                columns: u32::from(u16::from_be_bytes([*bytes.get(at + 7)?, *bytes.get(at + 8)?])),
                components: u16::from(*bytes.get(at + 9)?),
                kind,
            });
        }
        if marker == 0xDA || marker == 0xD9 || length < 2 {
            return None;
        }
        at += 2 + length;
    }
}

/// SOC, then SIZ (ISO 15444-1 A.5.1): Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, four tile fields, Csiz, and Ssiz of
/// each component (its depth minus one in the low 7 bits).
fn jpeg2000_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    if bytes.get(2..4)? != [0xFF, 0x51] {
        return None;
    }
    let be32 = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let (width, height) = (be32(8)?, be32(12)?);
    let (x_offset, y_offset) = (be32(16)?, be32(20)?);
    let components = u16::from_be_bytes([*bytes.get(40)?, *bytes.get(41)?]);
    let precision = (0..usize::from(components))
        .map(|component| bytes.get(42 + 3 * component).map(|ssiz| (ssiz & 0x7F) + 1))
        .collect::<Option<Vec<u8>>>()?
        .into_iter()
        .max()?;
    Some(FrameHeader {
        rows: height.checked_sub(y_offset)?,
        columns: width.checked_sub(x_offset)?,
        precision,
        components,
        kind: FrameKind::Jpeg2000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_frame_of_an_encoded_jpeg_and_a_jpeg_ls_header() {
        let image = image::GrayImage::from_fn(40, 24, |x, y| image::Luma([(x + y) as u8]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(image).write_to(&mut bytes, image::ImageFormat::Jpeg).unwrap();
        let bytes = bytes.into_inner();
        let header = frame_header(&bytes).unwrap();
        assert_eq!(
            header,
            FrameHeader { rows: 24, columns: 40, precision: 8, components: 1, kind: FrameKind::JpegDct }
        );
        assert_eq!(frame_header(&bytes[..20]), None, "cut before the frame header");
        assert_eq!(frame_header(b"not a jpeg"), None);
        // JPEG-LS: SOI, then SOF55 with precision 8, 3 lines of 5 samples, 1 component.
        let jpeg_ls = [0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x0B, 0x08, 0x00, 0x03, 0x00, 0x05, 0x01, 0x01, 0x11, 0x00];
        let header = frame_header(&jpeg_ls).unwrap();
        assert_eq!((header.rows, header.columns, header.kind), (3, 5, FrameKind::JpegLs));
        // A 12-bit extended-process frame (SOF1).
        let extended = [0xFF, 0xD8, 0xFF, 0xC1, 0x00, 0x0B, 0x0C, 0x00, 0x03, 0x00, 0x05, 0x01, 0x01, 0x11, 0x00];
        let header = frame_header(&extended).unwrap();
        assert_eq!((header.precision, header.kind), (12, FrameKind::JpegDct));
    }

    #[test]
    fn reads_a_jpeg2000_siz_marker() {
        let mut siz = vec![0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00];
        for value in [477u32 + 3, 440 + 2, 3, 2, 480, 442, 0, 0] {
            siz.extend_from_slice(&value.to_be_bytes());
        }
        siz.extend_from_slice(&[0x00, 0x01, 0x0B, 0x01, 0x01]);
        let header = frame_header(&siz).unwrap();
        assert_eq!(
            header,
            FrameHeader { rows: 440, columns: 477, precision: 12, components: 1, kind: FrameKind::Jpeg2000 }
        );
        assert_eq!(frame_header(&siz[..30]), None, "cut inside SIZ");
    }
}
