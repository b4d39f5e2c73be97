//! Palette PNGs whose pixels point past the end of their palette. The PNG specification makes such a file an
//! error, but decoders (the `image` crate among them) expand the missing entry to black without a word, so a
//! damaged file would read as an image with black patches. The indices are checked before the image is used.

use std::io::Cursor;

/// The first pixel of a palette PNG whose index has no palette entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexPastPalette {
    pub x: u32,
    pub y: u32,
    pub index: u8,
    pub palette_entries: usize,
}

impl std::fmt::Display for IndexPastPalette {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pixel ({}, {}) uses palette entry {}, but the palette has {} entries",
            self.x, self.y, self.index, self.palette_entries
        )
    }
}

/// Why `bytes` must not be used as an image: a palette PNG with a pixel that has no palette entry. `None` for
/// everything else, including files that are not PNG or that the PNG decoder refuses (the caller's decoder
/// reports those).
pub fn damaged_palette(bytes: &[u8]) -> Option<String> {
    index_past_palette(bytes).ok().flatten().map(|found| format!("the palette PNG is damaged: {found}"))
}

/// `Ok(None)` for a PNG that is not palette-based or whose indices all have an entry; the first pixel without an
/// entry otherwise. Errors are the PNG decoder's (a file the caller's decoder will refuse as well).
pub fn index_past_palette(png_bytes: &[u8]) -> Result<Option<IndexPastPalette>, png::DecodingError> {
    let mut decoder = png::Decoder::new(Cursor::new(png_bytes));
    // The raw indices, not the colours they stand for.
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info()?;
    let info = reader.info();
    if info.color_type != png::ColorType::Indexed {
        return Ok(None);
    }
    let palette_entries = info.palette.as_ref().map_or(0, |palette| palette.len() / 3);
    let bits = info.bit_depth as usize;
    // Every index of a 2^bits palette has an entry: nothing to look at.
    if palette_entries >= 1 << bits {
        return Ok(None);
    }
    let size = reader.output_buffer_size().ok_or(png::DecodingError::LimitsExceeded)?;
    let mut buffer = vec![0_u8; size];
    let frame = reader.next_frame(&mut buffer)?;
    let per_byte = 8 / bits;
    let mask = ((1_u16 << bits) - 1) as u8;
    for (y, line) in buffer.chunks(frame.line_size).take(frame.height as usize).enumerate() {
        for x in 0..frame.width as usize {
            let byte = line[x / per_byte];
            // Sub-byte indices are packed from the most significant bits.
            let shift = 8 - bits * (x % per_byte + 1);
            let index = (byte >> shift) & mask;
            if usize::from(index) >= palette_entries {
                return Ok(Some(IndexPastPalette { x: x as u32, y: y as u32, index, palette_entries }));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `width` x `height` palette PNG of `bits` per index with `entries` gray palette entries and `indices`.
    fn palette_png(width: u32, height: u32, bits: png::BitDepth, entries: usize, indices: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(bits);
        encoder.set_palette((0..entries).flat_map(|i| [i as u8 * 10; 3]).collect::<Vec<u8>>());
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(indices).unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn an_index_past_the_palette_is_found_with_its_pixel() {
        // 3x2 at 8 bits, 4 entries: index 7 at (1, 1).
        let bytes = palette_png(3, 2, png::BitDepth::Eight, 4, &[0, 1, 2, 3, 7, 0]);
        let found = index_past_palette(&bytes).unwrap().unwrap();
        assert_eq!(found, IndexPastPalette { x: 1, y: 1, index: 7, palette_entries: 4 });
        assert_eq!(found.to_string(), "pixel (1, 1) uses palette entry 7, but the palette has 4 entries");
        let sound = palette_png(3, 2, png::BitDepth::Eight, 4, &[0, 1, 2, 3, 3, 0]);
        assert_eq!(index_past_palette(&sound).unwrap(), None);
    }

    #[test]
    fn packed_indices_are_read_from_the_high_bits() {
        // 5 px at 2 bits in one byte plus one: indices 0,1,2,1 | 3 with 3 entries -> (4, 0) holds 3.
        let bytes = palette_png(5, 1, png::BitDepth::Two, 3, &[0b00_01_10_01, 0b11_00_00_00]);
        assert_eq!(
            index_past_palette(&bytes).unwrap(),
            Some(IndexPastPalette { x: 4, y: 0, index: 3, palette_entries: 3 })
        );
        // The padding bits after the last pixel are not pixels.
        let padded = palette_png(5, 1, png::BitDepth::Two, 3, &[0b00_01_10_01, 0b10_11_11_11]);
        assert_eq!(index_past_palette(&padded).unwrap(), None);
    }

    #[test]
    fn other_colour_types_are_not_looked_at() {
        let mut bytes = Vec::new();
        image::GrayImage::from_raw(2, 2, vec![0, 255, 9, 200])
            .unwrap()
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(index_past_palette(&bytes).unwrap(), None);
    }
}
