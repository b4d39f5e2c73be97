//! 8/16-bit grayscale PNG with the image's provenance in tEXt chunks (written before the image data, so a
//! reader sees them without decoding pixels).

use super::error::{DicomError, path_text};
use super::gray_image::{GrayImage, GraySamples};
use super::provenance::{Provenance, SYNTHETIC_STATEMENT};
use crate::atomic_file::{IfExists, write_file};
use crate::imaging::gray_channels::{NotGray, equal_channels_to_gray};
use std::path::Path;

const KEY_SOFTWARE: &str = "Software";
const KEY_DESCRIPTION: &str = "Description";
const KEY_COMMENT: &str = "Comment";
const KEY_SYNTHETIC: &str = "thorax.synthetic";
const KEY_MODEL_SHA256: &str = "thorax.model_sha256";
const KEY_SEED: &str = "thorax.seed";
const KEY_LABELS: &str = "thorax.labels";
const KEY_LATENT: &str = "thorax.latent";

/// Writes `image` as a grayscale PNG of its own bit depth with `provenance` in text chunks, through a temporary
/// file renamed into place; a file of that name is replaced (the workbench asks first, in its save dialog).
pub fn write_png_with_provenance(path: &Path, image: &GrayImage, provenance: &Provenance) -> Result<(), DicomError> {
    let png_error = |reason: String| DicomError::Png { path: path_text(path), reason };
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(match image.samples {
        GraySamples::U8(_) => png::BitDepth::Eight,
        GraySamples::U16(_) => png::BitDepth::Sixteen,
    });
    let chunks = [
        (KEY_SOFTWARE, provenance.software.clone()),
        (KEY_DESCRIPTION, SYNTHETIC_STATEMENT.to_owned()),
        (KEY_COMMENT, provenance.summary_text()),
        (KEY_SYNTHETIC, "true".to_owned()),
        (KEY_MODEL_SHA256, provenance.model_sha256.clone()),
        (KEY_SEED, provenance.seed.to_string()),
        (KEY_LABELS, provenance.labels.clone()),
        (KEY_LATENT, provenance.latent.clone()),
    ];
    crate::imaging::png_text::add_text_chunks(&mut encoder, chunks).map_err(|e| png_error(e.to_string()))?;
    let mut writer = encoder.write_header().map_err(|e| png_error(e.to_string()))?;
    let bytes: Vec<u8> = match &image.samples {
        GraySamples::U8(v) => v.clone(),
        // PNG stores 16-bit samples big-endian.
        GraySamples::U16(v) => v.iter().flat_map(|s| s.to_be_bytes()).collect(),
    };
    writer.write_image_data(&bytes).map_err(|e| png_error(e.to_string()))?;
    writer.finish().map_err(|e| png_error(e.to_string()))?;
    write_file(path, IfExists::Replace, &encoded).map_err(|error| DicomError::Io {
        path: path_text(path),
        action: "writing the PNG",
        source: error.into_io(),
    })
}

/// Reads a grayscale PNG (1-16 bits; low depths expand to 8; a gray palette or equal RGB channels count as gray)
/// and its provenance chunks, if all are present.
pub fn read_png_with_provenance(path: &Path) -> Result<(GrayImage, Option<Provenance>), DicomError> {
    let png_error = |reason: String| DicomError::Png { path: path_text(path), reason };
    let bytes = std::fs::read(path).map_err(|source| DicomError::Io {
        path: path_text(path),
        action: "reading the PNG",
        source,
    })?;
    if let Some(reason) = crate::imaging::png_palette::damaged_palette(&bytes) {
        return Err(png_error(reason));
    }
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| png_error(e.to_string()))?;
    let buffer_size = reader.output_buffer_size().ok_or_else(|| png_error("image too large to decode".to_owned()))?;
    let mut buffer = vec![0u8; buffer_size];
    let frame = reader.next_frame(&mut buffer).map_err(|e| png_error(e.to_string()))?;
    // Text chunks may follow the image data (ImageMagick moves them there); read to the end to see them. A reader
    // that already reached the end says so, which is no error.
    match reader.finish() {
        Ok(()) | Err(png::DecodingError::Parameter(_)) => {}
        Err(e) => return Err(png_error(e.to_string())),
    }
    let provenance = provenance_of(reader.info(), &png_error)?;
    let data = buffer.get(..frame.buffer_size()).unwrap_or(&buffer);
    // A gray palette or equal RGB channels is a gray image in colour clothing; real colour or alpha is refused.
    let channels = frame.color_type.samples();
    let width_px = frame.width as usize;
    let not_gray = |e: NotGray| png_error(format!("{e} (a {:?} PNG)", reader.info().color_type));
    let samples = match frame.bit_depth {
        png::BitDepth::Sixteen => {
            let values: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            GraySamples::U16(gray_plane(values, channels, width_px, u16::MAX).map_err(not_gray)?)
        }
        _ => GraySamples::U8(gray_plane(data.to_vec(), channels, width_px, u8::MAX).map_err(not_gray)?),
    };
    let image = GrayImage::new(frame.width, frame.height, samples)?;
    Ok((image, provenance))
}

/// The text of chunk `key`, from tEXt, zTXt or iTXt chunks alike (tools re-encode them: ImageMagick writes long
/// values as zTXt). `png_error` names the file.
fn chunk_text(
    info: &png::Info<'_>,
    key: &str,
    png_error: &impl Fn(String) -> DicomError,
) -> Result<Option<String>, DicomError> {
    let decoded =
        |text: Result<String, png::DecodingError>| text.map(Some).map_err(|e| png_error(format!("{key} chunk: {e}")));
    if let Some(chunk) = info.uncompressed_latin1_text.iter().find(|chunk| chunk.keyword == key) {
        return Ok(Some(chunk.text.clone()));
    }
    if let Some(chunk) = info.compressed_latin1_text.iter().find(|chunk| chunk.keyword == key) {
        return decoded(chunk.get_text());
    }
    if let Some(chunk) = info.utf8_text.iter().find(|chunk| chunk.keyword == key) {
        return decoded(chunk.get_text());
    }
    Ok(None)
}

/// The provenance a PNG's text chunks hold, when the hash, seed and labels are all present.
fn provenance_of(
    info: &png::Info<'_>,
    png_error: &impl Fn(String) -> DicomError,
) -> Result<Option<Provenance>, DicomError> {
    let text = |key: &str| chunk_text(info, key, png_error);
    let (Some(hash), Some(seed), Some(labels)) = (text(KEY_MODEL_SHA256)?, text(KEY_SEED)?, text(KEY_LABELS)?) else {
        return Ok(None);
    };
    let seed = seed.trim().parse::<u64>().map_err(|e| png_error(format!("{KEY_SEED} chunk {seed:?}: {e}")))?;
    let mut provenance = Provenance::new(&hash, seed, &labels)?.with_latent(&text(KEY_LATENT)?.unwrap_or_default())?;
    if let Some(software) = text(KEY_SOFTWARE)? {
        provenance.software = software;
    }
    Ok(Some(provenance))
}

/// `samples` as is when gray, else their gray plane (see [`equal_channels_to_gray`]).
fn gray_plane<T: Copy + PartialEq>(
    samples: Vec<T>,
    channels: usize,
    width_px: usize,
    opaque: T,
) -> Result<Vec<T>, NotGray> {
    if channels == 1 { Ok(samples) } else { equal_channels_to_gray(&samples, channels, width_px, opaque) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::BufWriter;

    #[test]
    fn round_trips_pixels_and_provenance_8_and_16_bit() {
        let dir = tempfile::tempdir().unwrap();
        let provenance = Provenance::new(&"0f".repeat(32), 42, "Effusion=1,Mass=0").unwrap();
        let images = [
            GrayImage::new(3, 2, GraySamples::U8(vec![0, 1, 2, 253, 254, 255])).unwrap(),
            GrayImage::new(2, 2, GraySamples::U16(vec![0, 256, 4095, 65535])).unwrap(),
        ];
        for (index, image) in images.iter().enumerate() {
            let path = dir.path().join(format!("image{index}.png"));
            write_png_with_provenance(&path, image, &provenance).unwrap();
            let (back, back_provenance) = read_png_with_provenance(&path).unwrap();
            assert_eq!(&back, image);
            assert_eq!(back_provenance.as_ref(), Some(&provenance));
        }
    }

    #[test]
    fn plain_png_has_no_provenance_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.png");
        let file = File::create(&path).unwrap();
        let mut encoder = png::Encoder::new(BufWriter::new(file), 1, 1);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[7]).unwrap();
        writer.finish().unwrap();
        let (image, provenance) = read_png_with_provenance(&path).unwrap();
        assert_eq!(image.samples, GraySamples::U8(vec![7]));
        assert!(provenance.is_none());

        let garbage = dir.path().join("garbage.png");
        std::fs::write(&garbage, b"not a png").unwrap();
        let error = read_png_with_provenance(&garbage).unwrap_err().to_string();
        assert!(error.contains("garbage.png"), "{error}");
    }

    /// Writes a 2x1 palette PNG whose pixels use palette entries 1 and 0.
    fn write_palette_png(path: &Path, palette: &[u8]) {
        let mut encoder = png::Encoder::new(BufWriter::new(File::create(path).unwrap()), 2, 1);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_palette(palette.to_vec());
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[1, 0]).unwrap();
        writer.finish().unwrap();
    }

    #[test]
    fn a_gray_palette_reads_as_gray_and_a_colour_palette_is_refused_as_colour() {
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("gray-palette.png");
        write_palette_png(&gray, &[30, 30, 30, 220, 220, 220]);
        let (image, _) = read_png_with_provenance(&gray).unwrap();
        assert_eq!(image.samples, GraySamples::U8(vec![220, 30]));

        let colour = dir.path().join("colour-palette.png");
        write_palette_png(&colour, &[30, 30, 30, 220, 10, 220]);
        let error = read_png_with_provenance(&colour).unwrap_err().to_string();
        assert!(error.contains("colour-palette.png") && error.contains("pixel (0, 0)"), "{error}");
        assert!(error.contains("Indexed"), "names what the file is: {error}");
    }

    #[test]
    fn provenance_is_read_from_compressed_and_international_chunks_after_the_image_data() {
        // ImageMagick's re-encoding of a generated PNG: the chunks after IDAT, long values compressed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reencoded.png");
        let mut encoder = png::Encoder::new(BufWriter::new(File::create(&path).unwrap()), 1, 1);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[7]).unwrap();
        let hash = "0f".repeat(32);
        writer.write_text_chunk(&png::text_metadata::TEXtChunk::new(KEY_MODEL_SHA256, hash.as_str())).unwrap();
        writer.write_text_chunk(&png::text_metadata::ZTXtChunk::new(KEY_SEED, "42")).unwrap();
        writer.write_text_chunk(&png::text_metadata::ITXtChunk::new(KEY_LABELS, "Effusion=1,Mass=0")).unwrap();
        writer.finish().unwrap();
        let (image, provenance) = read_png_with_provenance(&path).unwrap();
        assert_eq!(image.samples, GraySamples::U8(vec![7]));
        assert_eq!(provenance, Some(Provenance::new(&hash, 42, "Effusion=1,Mass=0").unwrap()));
    }
}
