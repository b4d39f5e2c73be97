//! A quick walk over element headers that refuses declared lengths larger than the bytes that follow.
//!
//! dicom-rs allocates and zero-fills a value's declared length before reading it, so a corrupt length
//! (e.g. 3 GB in a 40 KB file) would cost seconds and gigabytes before failing. This walk runs first and turns
//! such a file into a clear error. It only checks lengths and VR codes; all other validation is left to
//! the real parser.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_object::StandardDataDictionary;

const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

/// How the data set after the file meta group is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataSetEncoding {
    ExplicitLittle,
    ImplicitLittle,
    ExplicitBig,
    /// Deflated: the bytes after the meta group are compressed; nothing to walk.
    Deflated,
}

impl DataSetEncoding {
    /// The encoding a transfer syntax UID implies (encapsulated syntaxes are explicit VR little endian).
    pub fn from_transfer_syntax(uid: &str) -> DataSetEncoding {
        match uid.trim_end_matches(['\0', ' ']) {
            "1.2.840.10008.1.2" => DataSetEncoding::ImplicitLittle,
            "1.2.840.10008.1.2.2" => DataSetEncoding::ExplicitBig,
            "1.2.840.10008.1.2.1.99" => DataSetEncoding::Deflated,
            _ => DataSetEncoding::ExplicitLittle,
        }
    }
}

/// Whether an explicit VR element of this VR has the 12-byte header with a 4-byte length (PS3.5 7.1.2).
pub(crate) fn has_long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

/// Walks a part 10 file from `start` (just after "DICM"): the meta group, then the data set. Returns where the
/// data set starts and how it is encoded.
pub(crate) fn check_part10_lengths(bytes: &[u8], start: usize) -> Result<(usize, DataSetEncoding), String> {
    let mut walker = Walker::new(bytes, start, DataSetEncoding::ExplicitLittle);
    let mut transfer_syntax = String::from("1.2.840.10008.1.2.1");
    // Where File Meta Information Group Length (0002,0000) says the meta group ends.
    let mut meta_end: Option<usize> = None;
    // The meta group is always explicit VR little endian.
    while let Some((tag, value)) = walker.peek_meta_element()? {
        if tag == Tag(0x0002, 0x0000) && value.len() == 4 {
            let group_length = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
            meta_end = Some(walker.position.saturating_add(group_length as usize));
        }
        if tag == Tag(0x0002, 0x0010) {
            transfer_syntax = String::from_utf8_lossy(value).into_owned();
        }
    }
    if let Some(end) = meta_end.filter(|&end| end > bytes.len()) {
        return Err(format!(
            "the file ends inside its file meta information, {} of its {} bytes present: it is truncated",
            bytes.len().saturating_sub(start),
            end - start
        ));
    }
    let encoding = DataSetEncoding::from_transfer_syntax(&transfer_syntax);
    let data_set_start = walker.position;
    if encoding != DataSetEncoding::Deflated {
        walker.encoding = encoding;
        walker.walk()?;
    }
    Ok((data_set_start, encoding))
}

/// Walks a raw data set (no preamble, no meta) from byte 0.
pub(crate) fn check_raw_lengths(bytes: &[u8], encoding: DataSetEncoding) -> Result<(), String> {
    Walker::new(bytes, 0, encoding).walk()
}

struct Walker<'a> {
    bytes: &'a [u8],
    position: usize,
    encoding: DataSetEncoding,
    /// Inside encapsulated Pixel Data, items are opaque fragments to skip, not data sets to walk.
    in_pixel_sequence: bool,
}

impl<'a> Walker<'a> {
    fn new(bytes: &'a [u8], position: usize, encoding: DataSetEncoding) -> Walker<'a> {
        Walker { bytes, position, encoding, in_pixel_sequence: false }
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at + 2)?;
        Some(match self.encoding {
            DataSetEncoding::ExplicitBig => u16::from_be_bytes([b[0], b[1]]),
            _ => u16::from_le_bytes([b[0], b[1]]),
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at + 4)?;
        Some(match self.encoding {
            DataSetEncoding::ExplicitBig => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        })
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    /// The next meta group element (tag, value) if the next tag is in group 0002; advances past it.
    fn peek_meta_element(&mut self) -> Result<Option<(Tag, &'a [u8])>, String> {
        let (Some(group), Some(element)) = (self.u16_at(self.position), self.u16_at(self.position + 2)) else {
            return Ok(None);
        };
        if group != 0x0002 {
            return Ok(None);
        }
        if self.remaining() < 8 {
            return Err(self.cut_header(Tag(group, element)));
        }
        let (tag, length, header) = self.explicit_header(Tag(group, element))?;
        let start = self.position + header;
        let value = self.bytes.get(start..start + length as usize).unwrap_or(&[]);
        self.position = start + length as usize;
        Ok(Some((tag, value)))
    }

    /// Reads an explicit VR header at the current position: (tag, length, header size); checks the length.
    fn explicit_header(&self, tag: Tag) -> Result<(Tag, u32, usize), String> {
        let at = self.position;
        let Some(code) = self.bytes.get(at + 4..at + 6) else {
            return Ok((tag, 0, self.remaining()));
        };
        let vr = VR::from_binary([code[0], code[1]]).ok_or_else(|| {
            format!(
                "element ({:04X},{:04X}) at byte {at} has an unknown VR code {:?}",
                tag.group(),
                tag.element(),
                String::from_utf8_lossy(code)
            )
        })?;
        let (length, header) =
            if has_long_length(vr) { (self.u32_at(at + 8), 12) } else { (self.u16_at(at + 6).map(u32::from), 8) };
        let Some(length) = length else {
            return Err(self.cut_header(tag));
        };
        self.check_length(tag, length, header)?;
        Ok((tag, length, header))
    }

    /// The error for a file that ends inside the header of element `tag`.
    fn cut_header(&self, tag: Tag) -> String {
        format!(
            "the file ends inside the header of element ({:04X},{:04X}) at byte {}: it is truncated",
            tag.group(),
            tag.element(),
            self.position
        )
    }

    fn check_length(&self, tag: Tag, length: u32, header: usize) -> Result<(), String> {
        if length == UNDEFINED_LENGTH {
            return Ok(());
        }
        let available = self.remaining().saturating_sub(header);
        if length as usize > available {
            return Err(format!(
                "element ({:04X},{:04X}) at byte {} declares {length} value bytes but only {available} follow: the \
                 file is truncated or the length is corrupt",
                tag.group(),
                tag.element(),
                self.position
            ));
        }
        Ok(())
    }

    fn walk(&mut self) -> Result<(), String> {
        while self.remaining() >= 8 {
            let (Some(group), Some(element)) = (self.u16_at(self.position), self.u16_at(self.position + 2)) else {
                return Ok(());
            };
            let tag = Tag(group, element);
            if group == 0xFFFE {
                let length = self.u32_at(self.position + 4).unwrap_or(0);
                self.check_length(tag, length, 8)?;
                self.position += 8;
                match element {
                    0xE000 if self.in_pixel_sequence && length != UNDEFINED_LENGTH => {
                        self.position += length as usize;
                    }
                    0xE0DD => self.in_pixel_sequence = false,
                    // Items of sequences hold data sets: walk into them.
                    _ => {}
                }
                continue;
            }
            let (length, header, is_sequence) = match self.encoding {
                DataSetEncoding::ImplicitLittle => {
                    let length = self.u32_at(self.position + 4).unwrap_or(0);
                    self.check_length(tag, length, 8)?;
                    let is_sequence =
                        StandardDataDictionary.by_tag(tag).is_some_and(|entry| entry.vr().relaxed() == VR::SQ);
                    (length, 8, is_sequence)
                }
                _ => {
                    let (_, length, header) = self.explicit_header(tag)?;
                    let code = self.bytes.get(self.position + 4..self.position + 6);
                    if code == Some(b"UN".as_slice()) && length == UNDEFINED_LENGTH {
                        // An undefined-length UN holds implicit VR items (PS3.5 6.2.2): `un_undefined_length`
                        // gives it a defined length, and the guard runs again on that output.
                        return Ok(());
                    }
                    (length, header, code == Some(b"SQ".as_slice()))
                }
            };
            self.position += header;
            if length == UNDEFINED_LENGTH {
                if tag == Tag(0x7FE0, 0x0010) {
                    self.in_pixel_sequence = true;
                }
                continue;
            }
            if !is_sequence {
                self.position += length as usize;
            }
        }
        // A data set ends after a whole element; a few bytes more are the start of a header the file lost.
        if self.remaining() > 0 {
            return Err(format!(
                "the file ends {} byte(s) into an element header at byte {}: it is truncated",
                self.remaining(),
                self.position
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(group.to_le_bytes());
        out.extend(element.to_le_bytes());
        out.extend(vr);
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn accepts_consistent_lengths_and_refuses_overlong_ones() {
        let mut data = explicit_element(0x0008, 0x0060, b"CS", b"CR");
        data.extend(explicit_element(0x0028, 0x0010, b"US", &[4, 0]));
        assert_eq!(check_raw_lengths(&data, DataSetEncoding::ExplicitLittle), Ok(()));
        // Implicit: (0010,0010) with a 4-byte length of 1 GB.
        let mut implicit = vec![0x10, 0x00, 0x10, 0x00];
        implicit.extend(1_000_000_000u32.to_le_bytes());
        implicit.extend(b"Doe^John");
        let error = check_raw_lengths(&implicit, DataSetEncoding::ImplicitLittle).unwrap_err();
        assert!(error.contains("(0010,0010) at byte 0 declares 1000000000"), "{error}");
        let mut unknown = explicit_element(0x0028, 0x0010, b"US", &[4, 0]);
        unknown[4..6].copy_from_slice(b"ZZ");
        let error = check_raw_lengths(&unknown, DataSetEncoding::ExplicitLittle).unwrap_err();
        assert!(error.contains("unknown VR code \"ZZ\""), "{error}");
    }

    #[test]
    fn a_file_cut_inside_an_element_header_is_truncated() {
        let mut data = explicit_element(0x0008, 0x0060, b"CS", b"CR");
        let whole = data.len();
        data.extend(explicit_element(0x0028, 0x0010, b"US", &[4, 0]));
        for cut in 1..8 {
            let error = check_raw_lengths(&data[..whole + cut], DataSetEncoding::ExplicitLittle).unwrap_err();
            assert!(error.contains(&format!("ends {cut} byte(s) into an element header at byte {whole}")), "{error}");
        }
        // A long-form header (OB) cut after its VR: 12 header bytes, 9 present.
        let mut long = data.clone();
        long.extend([0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 4]);
        let error = check_raw_lengths(&long, DataSetEncoding::ExplicitLittle).unwrap_err();
        assert!(error.contains("ends inside the header of element (7FE0,0010)"), "{error}");
        assert_eq!(check_raw_lengths(&data, DataSetEncoding::ExplicitLittle), Ok(()));
    }
}
