//! Text chunks for the PNGs this project writes: tEXt where the text is Latin-1, iTXt (UTF-8) otherwise, so a
//! non-Latin image name or path is kept rather than refused.

use std::io::Write;

/// A text chunk the encoder refused (e.g. an empty or over-long keyword).
#[derive(Debug, thiserror::Error)]
#[error("PNG text chunk `{keyword}`: {reason}")]
pub struct PngTextError {
    pub keyword: String,
    pub reason: String,
}

/// Adds each `(keyword, text)` to `encoder`, in order, before its header is written.
pub fn add_text_chunks<W, K, T>(
    encoder: &mut png::Encoder<'_, W>,
    chunks: impl IntoIterator<Item = (K, T)>,
) -> Result<(), PngTextError>
where
    W: Write,
    K: AsRef<str>,
    T: Into<String>,
{
    for (keyword, text) in chunks {
        let (keyword, text) = (keyword.as_ref().to_owned(), text.into());
        // The encoder takes any keyword and fails only when the header is written, without naming it.
        if let Some(reason) = keyword_problem(&keyword) {
            return Err(PngTextError { keyword, reason: reason.to_owned() });
        }
        let added = if is_latin1(&text) {
            encoder.add_text_chunk(keyword.clone(), text)
        } else {
            encoder.add_itxt_chunk(keyword.clone(), text)
        };
        added.map_err(|e| PngTextError { keyword, reason: e.to_string() })?;
    }
    Ok(())
}

/// What makes `keyword` no PNG keyword (PNG 11.3.4.2: 1 to 79 printable Latin-1 characters, no leading,
/// trailing or doubled spaces).
fn keyword_problem(keyword: &str) -> Option<&'static str> {
    let printable = |c: char| matches!(u32::from(c), 32..=126 | 161..=255);
    if keyword.is_empty() || keyword.chars().count() > 79 {
        Some("a keyword has 1 to 79 characters")
    } else if !keyword.chars().all(printable) {
        Some("a keyword holds printable Latin-1 characters only")
    } else if keyword.starts_with(' ') || keyword.ends_with(' ') || keyword.contains("  ") {
        Some("a keyword has no leading, trailing or doubled spaces")
    } else {
        None
    }
}

fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) < 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written_with(chunks: &[(&str, &str)]) -> Result<Vec<u8>, PngTextError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
        encoder.set_color(png::ColorType::Grayscale);
        add_text_chunks(&mut encoder, chunks.iter().map(|&(k, t)| (k, t)))?;
        let mut writer =
            encoder.write_header().map_err(|e| PngTextError { keyword: "-".into(), reason: e.to_string() })?;
        writer.write_image_data(&[7]).map_err(|e| PngTextError { keyword: "-".into(), reason: e.to_string() })?;
        drop(writer);
        Ok(bytes)
    }

    #[test]
    fn latin1_text_goes_in_text_chunks_and_other_text_in_itxt() {
        let bytes = written_with(&[("Title", "Thorax café"), ("Source", "胸部.png")]).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        let latin: Vec<(&str, &str)> =
            info.uncompressed_latin1_text.iter().map(|c| (c.keyword.as_str(), c.text.as_str())).collect();
        assert_eq!(latin, [("Title", "Thorax café")]);
        assert_eq!(info.utf8_text.len(), 1);
        assert_eq!(info.utf8_text[0].keyword, "Source");
        assert_eq!(info.utf8_text[0].get_text().unwrap(), "胸部.png");
    }

    #[test]
    fn a_refused_keyword_is_named() {
        let error = written_with(&[("Title", "ok"), ("", "x")]).unwrap_err();
        assert_eq!((error.keyword.as_str(), error.reason.as_str()), ("", "a keyword has 1 to 79 characters"));
        let error = written_with(&[("thorax.μ", "x")]).unwrap_err();
        assert_eq!(error.reason, "a keyword holds printable Latin-1 characters only");
        assert!(written_with(&[(" Title", "x")]).is_err());
        assert!(written_with(&[(&"k".repeat(80), "x")]).is_err());
        assert!(written_with(&[(&"k".repeat(79), "x")]).is_ok());
    }
}
