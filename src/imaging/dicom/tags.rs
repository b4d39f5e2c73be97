//! A flat listing of a file's attributes for a tag panel, with the identifying ones marked.

use super::basic_profile::is_identifying;
use super::read::DicomFile;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::{InMemDicomObject, StandardDataDictionary};
use serde::Serialize;

/// Longest value text shown; longer values are cut with an ellipsis.
const MAX_VALUE_CHARS: usize = 160;

/// One attribute (or sequence item marker) of a DICOM file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagRow {
    /// `"(0010,0010)"`.
    pub tag: String,
    pub group: u16,
    pub element: u16,
    /// Value representation as encoded (`"PN"`, `"SQ"`, ...; `"--"` for item markers).
    pub vr: String,
    /// Dictionary keyword (`"PatientName"`), `"PrivateCreator"`, `"Private"`, `"Item"`, or empty.
    pub keyword: String,
    /// The value as text; binary values as a byte count; sequences as an item count.
    pub value: String,
    /// Whether the PS3.15 Basic Profile protects this attribute (or it sits inside one that is).
    pub is_identifying: bool,
    /// Nesting depth: 0 for top-level attributes, +1 inside each sequence item.
    pub depth: u32,
}

/// Lists the file meta group (when the file had one) and every attribute, depth first.
pub fn list_tags(file: &DicomFile) -> Vec<TagRow> {
    let mut rows = Vec::new();
    if file.has_file_meta {
        for element in file.object.meta().to_element_iter() {
            let tag = element.tag();
            rows.push(TagRow {
                tag: tag_text(tag),
                group: tag.group(),
                element: tag.element(),
                vr: element.vr().to_string().to_owned(),
                keyword: keyword(tag),
                value: element.to_str().map(|s| shorten(s.trim_end_matches(['\0', ' ']))).unwrap_or_default(),
                is_identifying: is_identifying(tag),
                depth: 0,
            });
        }
    }
    push_rows(&file.object, 0, false, &mut rows);
    rows
}

fn push_rows(object: &InMemDicomObject, depth: u32, inside_identifying: bool, rows: &mut Vec<TagRow>) {
    for element in object.iter() {
        let tag = element.tag();
        let identifying = inside_identifying || is_identifying(tag);
        let value = match element.value() {
            Value::Primitive(primitive) => primitive_text(element.vr(), primitive),
            Value::Sequence(sequence) => format!("<{} item(s)>", sequence.items().len()),
            Value::PixelSequence(pixels) => {
                let bytes: usize = pixels.fragments().iter().map(Vec::len).sum();
                format!("<encapsulated: {} fragment(s), {bytes} bytes>", pixels.fragments().len())
            }
        };
        rows.push(TagRow {
            tag: tag_text(tag),
            group: tag.group(),
            element: tag.element(),
            vr: element.vr().to_string().to_owned(),
            keyword: keyword(tag),
            value,
            is_identifying: identifying,
            depth,
        });
        if let Value::Sequence(sequence) = element.value() {
            for (index, item) in sequence.items().iter().enumerate() {
                rows.push(TagRow {
                    tag: tag_text(Tag(0xFFFE, 0xE000)),
                    group: 0xFFFE,
                    element: 0xE000,
                    vr: "--".to_owned(),
                    keyword: "Item".to_owned(),
                    value: format!("#{}", index + 1),
                    is_identifying: identifying,
                    depth: depth + 1,
                });
                push_rows(item, depth + 1, identifying, rows);
            }
        }
    }
}

fn tag_text(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

fn keyword(tag: Tag) -> String {
    if tag.group() % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&tag.element()) {
            "PrivateCreator".to_owned()
        } else {
            "Private".to_owned()
        };
    }
    StandardDataDictionary.by_tag(tag).map(|entry| entry.alias().to_owned()).unwrap_or_default()
}

fn primitive_text(vr: VR, value: &PrimitiveValue) -> String {
    let binary = matches!(vr, VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN);
    if binary {
        return format!("<{} bytes>", value.calculate_byte_len());
    }
    let text = value.to_str();
    shorten(text.trim_end_matches(['\0', ' ']))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_long_values_and_names_private_tags() {
        let long = "x".repeat(500);
        assert_eq!(shorten(&long).chars().count(), MAX_VALUE_CHARS + 1);
        assert_eq!(keyword(Tag(0x0009, 0x0010)), "PrivateCreator");
        assert_eq!(keyword(Tag(0x0009, 0x1001)), "Private");
        assert_eq!(keyword(Tag(0x0010, 0x0010)), "PatientName");
        assert_eq!(tag_text(Tag(0x7FE0, 0x0010)), "(7FE0,0010)");
    }
}
