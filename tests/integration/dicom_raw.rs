//! Raw DICOM bytes for tests: implicit VR elements and items, part 10 files, and what dicom-rs cannot write
//! (a VR UN element of undefined length, spliced into written bytes).

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use std::path::{Path, PathBuf};

/// An implicit VR little endian element (value padded to even length).
pub(crate) fn implicit_element(tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(b' ');
    }
    let mut out = Vec::new();
    out.extend(tag.group().to_le_bytes());
    out.extend(tag.element().to_le_bytes());
    out.extend(u32::try_from(value.len()).unwrap().to_le_bytes());
    out.extend(value);
    out
}

/// A sequence item around `content`, of defined or undefined length.
pub(crate) fn implicit_item(content: &[u8], defined_length: bool) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF, 0x00, 0xE0];
    if defined_length {
        out.extend(u32::try_from(content.len()).unwrap().to_le_bytes());
        out.extend(content);
    } else {
        out.extend(u32::MAX.to_le_bytes());
        out.extend(content);
        out.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
    }
    out
}

pub(crate) fn un(tag: Tag, bytes: Vec<u8>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UN, PrimitiveValue::U8(bytes.into()))
}

/// A part 10 file (explicit VR little endian) holding `elements`, written under `dir`.
pub(crate) fn write_part10(dir: &Path, name: &str, elements: Vec<DataElement<InMemDicomObject>>) -> PathBuf {
    let object = InMemDicomObject::from_element_iter(elements)
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                .media_storage_sop_instance_uid("1.2.826.0.1.999.3"),
        )
        .unwrap();
    let path = dir.join(name);
    object.write_to_file(&path).unwrap();
    path
}

/// An implicit VR sequence of undefined length holding `items`, as nested in a UN value.
pub(crate) fn implicit_sequence(tag: Tag, items: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(tag.group().to_le_bytes());
    out.extend(tag.element().to_le_bytes());
    out.extend(u32::MAX.to_le_bytes());
    out.extend(items);
    out.extend(SEQUENCE_DELIMITATION);
    out
}

pub(crate) const SEQUENCE_DELIMITATION: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];

/// Where the explicit VR little endian header of the UN element `tag` starts in `bytes` (exactly one there).
pub(crate) fn un_header_at(bytes: &[u8], tag: Tag) -> usize {
    let mut pattern = Vec::new();
    pattern.extend(tag.group().to_le_bytes());
    pattern.extend(tag.element().to_le_bytes());
    pattern.extend(b"UN\0\0");
    let found: Vec<usize> =
        bytes.windows(pattern.len()).enumerate().filter(|(_, w)| *w == pattern.as_slice()).map(|(at, _)| at).collect();
    assert_eq!(found.len(), 1, "UN header of {tag:?}");
    found[0]
}

/// Gives the UN element `tag` (written by dicom-rs with a defined length) undefined length, as an archive that
/// does not know the attribute writes it: length 0xFFFFFFFF, the same item bytes, then a Sequence Delimitation
/// Item. Only for elements outside any defined-length sequence or item (their lengths are not fixed here).
pub(crate) fn make_un_length_undefined(bytes: &mut Vec<u8>, tag: Tag) {
    let at = un_header_at(bytes, tag);
    let length = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    assert_ne!(length, u32::MAX as usize, "already undefined");
    bytes[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let end = at + 12 + length;
    bytes.splice(end..end, SEQUENCE_DELIMITATION);
}

/// [`make_un_length_undefined`] on a file.
pub(crate) fn make_file_un_length_undefined(path: &Path, tags: &[Tag]) {
    let mut bytes = std::fs::read(path).unwrap();
    for &tag in tags {
        make_un_length_undefined(&mut bytes, tag);
    }
    std::fs::write(path, bytes).unwrap();
}
