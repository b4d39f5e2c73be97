//! Gives every VR UN element of undefined length in an explicit VR data set a defined length, before dicom-rs
//! parses the data set.
//!
//! PS3.5 6.2.2: a UN value of undefined length is a sequence whose items are encoded in implicit VR little
//! endian, whatever the transfer syntax (items and nested sequences may have undefined length, ended by Item
//! and Sequence Delimitation Items). Archives that do not know a private (or newer public) sequence write it so.
//! dicom-rs 0.10 reads such an element as a sequence but decodes its items as explicit VR, so it refuses the
//! whole file. This pass rewrites each such element as a UN of defined length holding the same item bytes
//! (without the final Sequence Delimitation Item): dicom-rs then keeps it as opaque bytes, and de-identification
//! reads it as the sequence the dictionary names (`deidentify::parse_un_sequence`).
//!
//! The element can sit at the top level or in an item of an ordinary (explicit VR) sequence; a sequence or item
//! of defined length around it gets its length shortened by the delimiter bytes removed. Inside a UN value all
//! is implicit VR, so nothing there needs rewriting. Explicit VR big endian (retired) is handled the same way:
//! the outer headers are big endian, the UN content stays implicit VR little endian as PS3.5 6.2.2 says.
//! Deflated data sets are not walked (their bytes are compressed); implicit VR data sets have no VR UN headers.
//!
//! Nothing is copied unless such an element exists. Lengths are only compared with the bytes present, never
//! allocated, and every refusal names the element's tag and the reason.

use super::length_guard::{DataSetEncoding, has_long_length};
use dicom_core::VR;
use std::borrow::Cow;

const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_DELIMITATION: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
/// The bytes of a delimitation item: tag and a zero length.
const DELIMITER_SIZE: usize = 8;

/// `bytes` with every UN element of undefined length in the data set from `start` rewritten to a defined length;
/// borrowed (no copy) when there is none. Only explicit VR encodings are walked.
pub(crate) fn define_un_lengths(
    bytes: &[u8],
    start: usize,
    encoding: DataSetEncoding,
) -> Result<Cow<'_, [u8]>, String> {
    let big_endian = match encoding {
        DataSetEncoding::ExplicitLittle => false,
        DataSetEncoding::ExplicitBig => true,
        DataSetEncoding::ImplicitLittle | DataSetEncoding::Deflated => return Ok(Cow::Borrowed(bytes)),
    };
    let mut walker = OuterWalker { bytes, big_endian, open: Vec::new(), edits: Vec::new(), found: false };
    match walker.walk(start) {
        Ok(()) => {}
        // Without such an element there is nothing to rewrite: oddities are for the length guard and the parser.
        Err(_) if !walker.found => return Ok(Cow::Borrowed(bytes)),
        Err(reason) => return Err(reason),
    }
    if walker.edits.is_empty() {
        return Ok(Cow::Borrowed(bytes));
    }
    Ok(Cow::Owned(apply(bytes, walker.edits, big_endian)))
}

/// The defined length for a value of `size` bytes, refused when a 32-bit length cannot hold it (0xFFFFFFFF
/// itself means undefined).
fn defined_length(tag: (u16, u16), size: usize) -> Result<u32, String> {
    u32::try_from(size).ok().filter(|&length| length != UNDEFINED_LENGTH).ok_or_else(|| {
        format!(
            "{} has VR UN and undefined length, and its {size} bytes of items are more than a defined length can \
             hold",
            tag_text(tag)
        )
    })
}

fn tag_text((group, element): (u16, u16)) -> String {
    format!("element ({group:04X},{element:04X})")
}

/// One change to the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// Write this length at this offset (a 4-byte length field).
    Length { at: usize, value: u32 },
    /// Leave out the Sequence Delimitation Item at this offset.
    DropDelimiter { at: usize },
}

impl Edit {
    fn at(&self) -> usize {
        match *self {
            Edit::Length { at, .. } | Edit::DropDelimiter { at } => at,
        }
    }
}

fn apply(bytes: &[u8], mut edits: Vec<Edit>, big_endian: bool) -> Vec<u8> {
    edits.sort_by_key(Edit::at);
    let mut out = Vec::with_capacity(bytes.len());
    let mut copied = 0;
    for edit in edits {
        // Edits come from a walk over these bytes, so they lie inside them and do not overlap.
        out.extend_from_slice(bytes.get(copied..edit.at()).unwrap_or_default());
        match edit {
            Edit::Length { at, value } => {
                out.extend(if big_endian { value.to_be_bytes() } else { value.to_le_bytes() });
                copied = at + 4;
            }
            Edit::DropDelimiter { at } => copied = at + DELIMITER_SIZE,
        }
    }
    out.extend_from_slice(bytes.get(copied..).unwrap_or_default());
    out
}

/// A sequence or item of the outer data set that the walk is inside.
struct Open {
    /// Its tag (for messages): the sequence's, or (FFFE,E000).
    tag: (u16, u16),
    /// Where its 4-byte length field is.
    length_at: usize,
    /// Its declared length; `None` when undefined (it ends at a delimiter).
    length: Option<u32>,
    /// Where it ends, for a defined length.
    end: usize,
    /// Bytes of delimiters dropped inside it, to take off its defined length.
    shrink: u32,
    is_item: bool,
}

struct OuterWalker<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    open: Vec<Open>,
    edits: Vec<Edit>,
    /// Whether a UN of undefined length was met (from then on, oddities are errors).
    found: bool,
}

impl OuterWalker<'_> {
    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at.checked_add(2)?)?;
        Some(if self.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// The end of a value of `length` bytes starting at `start`, if the bytes are there.
    fn value_end(&self, tag: (u16, u16), at: usize, start: usize, length: u32) -> Result<usize, String> {
        start.checked_add(length as usize).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
            format!(
                "{} at byte {at} declares {length} value bytes but only {} follow",
                tag_text(tag),
                self.bytes.len().saturating_sub(start)
            )
        })
    }

    /// Closes the defined-length sequences and items that end at `position`, fixing their lengths.
    fn close_ended(&mut self, position: usize) -> Result<(), String> {
        while let Some(open) = self.open.last() {
            let Some(length) = open.length else { break };
            if position < open.end {
                break;
            }
            if position > open.end {
                return Err(format!(
                    "{} at byte {} ends inside the element at byte {position}",
                    if open.is_item { "an item".to_owned() } else { tag_text(open.tag) },
                    open.length_at.saturating_sub(4)
                ));
            }
            if open.shrink > 0 {
                self.edits.push(Edit::Length { at: open.length_at, value: length.saturating_sub(open.shrink) });
            }
            self.open.pop();
        }
        Ok(())
    }

    fn walk(&mut self, start: usize) -> Result<(), String> {
        let mut position = start;
        // Inside encapsulated Pixel Data: items are opaque fragments, not data sets.
        let mut in_pixel_sequence = false;
        loop {
            self.close_ended(position)?;
            let (Some(group), Some(element), Some(length)) =
                (self.u16_at(position), self.u16_at(position + 2), self.u32_at(position + 4))
            else {
                break;
            };
            let tag = (group, element);
            if group == 0xFFFE {
                position = self.delimiter_or_item(tag, position, length, &mut in_pixel_sequence)?;
                continue;
            }
            let Some(code) = self.bytes.get(position + 4..position + 6) else { break };
            let Some(vr) = VR::from_binary([code[0], code[1]]) else {
                return Err(format!("{} at byte {position} has an unknown VR code", tag_text(tag)));
            };
            let (length, header) = if has_long_length(vr) {
                let Some(length) = self.u32_at(position + 8) else { break };
                (length, 12)
            } else {
                (self.u16_at(position + 6).map(u32::from).unwrap_or(0), 8)
            };
            let value_start = position + header;
            if length != UNDEFINED_LENGTH {
                if vr == VR::SQ {
                    let end = self.value_end(tag, position, value_start, length)?;
                    self.open.push(Open {
                        tag,
                        length_at: position + 8,
                        length: Some(length),
                        end,
                        shrink: 0,
                        is_item: false,
                    });
                    position = value_start;
                } else {
                    position = self.value_end(tag, position, value_start, length)?;
                }
            } else if tag == PIXEL_DATA {
                in_pixel_sequence = true;
                position = value_start;
            } else if vr == VR::UN {
                self.found = true;
                position = self.define_un(tag, position, value_start)?;
            } else {
                // An explicit sequence (or, as dicom-rs reads it, any other element of undefined length).
                self.open.push(Open { tag, length_at: position + 8, length: None, end: 0, shrink: 0, is_item: false });
                position = value_start;
            }
        }
        match self.open.iter().find(|open| open.length.is_some() && open.shrink > 0) {
            // The file ends inside a defined-length sequence or item whose length would need fixing.
            Some(open) => Err(format!(
                "the file ends inside {} at byte {}: it is truncated",
                if open.is_item { "an item".to_owned() } else { tag_text(open.tag) },
                open.length_at.saturating_sub(4)
            )),
            None => Ok(()),
        }
    }

    /// Steps over an item or delimiter header of the outer data set; returns where the walk goes on.
    fn delimiter_or_item(
        &mut self,
        tag: (u16, u16),
        position: usize,
        length: u32,
        in_pixel_sequence: &mut bool,
    ) -> Result<usize, String> {
        let content = position + DELIMITER_SIZE;
        match tag {
            ITEM if *in_pixel_sequence && length != UNDEFINED_LENGTH => self.value_end(tag, position, content, length),
            ITEM => {
                let (length, end) = match length {
                    UNDEFINED_LENGTH => (None, 0),
                    length => (Some(length), self.value_end(tag, position, content, length)?),
                };
                self.open.push(Open { tag, length_at: position + 4, length, end, shrink: 0, is_item: true });
                Ok(content)
            }
            ITEM_DELIMITATION | SEQUENCE_DELIMITATION if *in_pixel_sequence => {
                *in_pixel_sequence = tag != SEQUENCE_DELIMITATION;
                Ok(content)
            }
            ITEM_DELIMITATION | SEQUENCE_DELIMITATION => {
                let is_item = tag == ITEM_DELIMITATION;
                match self.open.last() {
                    Some(open) if open.length.is_none() && open.is_item == is_item => {
                        self.open.pop();
                    }
                    // dicom-rs ignores a delimiter outside any sequence.
                    None => {}
                    Some(_) => {
                        return Err(format!("a misplaced {} at byte {position}", tag_text(tag)));
                    }
                }
                Ok(content)
            }
            _ => Err(format!("an unknown {} at byte {position}", tag_text(tag))),
        }
    }

    /// Records the edits that give the UN element whose header is at `position` a defined length; returns
    /// where its value (delimiter included) ends.
    fn define_un(&mut self, tag: (u16, u16), position: usize, content: usize) -> Result<usize, String> {
        let delimiter = implicit_sequence_end(self.bytes, content).map_err(|reason| {
            format!("{} at byte {position} has VR UN and undefined length, and {reason}", tag_text(tag))
        })?;
        let length = defined_length(tag, delimiter - content)?;
        self.edits.push(Edit::Length { at: position + 8, value: length });
        self.edits.push(Edit::DropDelimiter { at: delimiter });
        for open in self.open.iter_mut().filter(|open| open.length.is_some()) {
            // A defined length holding this element was at least this element's size, delimiter included.
            open.shrink = open.shrink.saturating_add(DELIMITER_SIZE as u32);
        }
        Ok(delimiter + DELIMITER_SIZE)
    }
}

/// Where we are inside a UN value while looking for its end.
#[derive(Clone, Copy)]
enum Level {
    /// In a sequence of undefined length: items, then a Sequence Delimitation Item.
    Sequence,
    /// In an item of undefined length: elements, then an Item Delimitation Item.
    Item,
}

/// Finds the Sequence Delimitation Item that ends an implicit VR little endian sequence of undefined length whose
/// items start at `start`; returns its offset. Nested items and sequences of undefined length are followed
/// (an element of undefined length in implicit VR is a sequence); items of defined length are stepped over.
/// The nesting is kept on a heap stack, so a deeply nested corrupt value cannot overflow the call stack.
fn implicit_sequence_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut levels = vec![Level::Sequence];
    let mut position = start;
    loop {
        let Some(level) = levels.last().copied() else {
            // Every level pops only at its own delimiter, and the outermost returns there.
            return Err("its content could not be followed".to_owned());
        };
        let header = bytes.get(position..position.saturating_add(8)).filter(|header| header.len() == 8);
        let Some(header) = header else {
            return Err(format!(
                "the file ends at byte {} before the {} that ends it: it is truncated",
                bytes.len(),
                match level {
                    Level::Sequence => "Sequence Delimitation Item (FFFE,E0DD)",
                    Level::Item => "Item Delimitation Item (FFFE,E00D)",
                }
            ));
        };
        let tag = (u16::from_le_bytes([header[0], header[1]]), u16::from_le_bytes([header[2], header[3]]));
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let content = position + 8;
        let found = move |what: &str| {
            format!("at byte {position} its content holds ({:04X},{:04X}) where {what} must be", tag.0, tag.1)
        };
        match level {
            Level::Sequence => match tag {
                SEQUENCE_DELIMITATION if levels.len() == 1 => return Ok(position),
                SEQUENCE_DELIMITATION => {
                    levels.pop();
                    position = content;
                }
                ITEM if length == UNDEFINED_LENGTH => {
                    levels.push(Level::Item);
                    position = content;
                }
                ITEM => position = defined_end(bytes, tag, position, content, length)?,
                _ => return Err(found("an item or a Sequence Delimitation Item")),
            },
            Level::Item => match tag {
                ITEM_DELIMITATION => {
                    levels.pop();
                    position = content;
                }
                (0xFFFE, _) => return Err(found("an element or an Item Delimitation Item")),
                _ if length == UNDEFINED_LENGTH => {
                    levels.push(Level::Sequence);
                    position = content;
                }
                _ => position = defined_end(bytes, tag, position, content, length)?,
            },
        }
    }
}

/// The end of a defined-length value inside a UN value, refused when the bytes are not there.
fn defined_end(bytes: &[u8], tag: (u16, u16), at: usize, start: usize, length: u32) -> Result<usize, String> {
    start.checked_add(length as usize).filter(|&end| end <= bytes.len()).ok_or_else(|| {
        format!(
            "at byte {at} its content holds ({:04X},{:04X}) declaring {length} value bytes but only {} follow: the \
             file is truncated or the length is corrupt",
            tag.0,
            tag.1,
            bytes.len().saturating_sub(start)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQUENCE_END: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    const ITEM_END: [u8; 8] = [0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0];

    fn implicit(group: u16, element: u16, value: &[u8]) -> Vec<u8> {
        let mut out = [group.to_le_bytes(), element.to_le_bytes()].concat();
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        out
    }

    /// An implicit VR item, of defined length or ended by an Item Delimitation Item.
    fn item(content: &[u8], defined: bool) -> Vec<u8> {
        let length = if defined { content.len() as u32 } else { UNDEFINED_LENGTH };
        let mut out = [&[0xFE, 0xFF, 0x00, 0xE0][..], &length.to_le_bytes()].concat();
        out.extend(content);
        if !defined {
            out.extend(ITEM_END);
        }
        out
    }

    /// An implicit VR sequence of undefined length.
    fn implicit_sequence(group: u16, element: u16, items: &[u8]) -> Vec<u8> {
        let mut out = [group.to_le_bytes(), element.to_le_bytes()].concat();
        out.extend(UNDEFINED_LENGTH.to_le_bytes());
        out.extend(items);
        out.extend(SEQUENCE_END);
        out
    }

    /// An explicit VR little endian element with a 4-byte length (`None`: undefined).
    fn explicit_long(group: u16, element: u16, vr: &[u8; 2], length: Option<u32>, value: &[u8]) -> Vec<u8> {
        let mut out = [&group.to_le_bytes()[..], &element.to_le_bytes(), vr, &[0, 0]].concat();
        out.extend(length.unwrap_or(UNDEFINED_LENGTH).to_le_bytes());
        out.extend(value);
        out
    }

    fn explicit_short(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = [&group.to_le_bytes()[..], &element.to_le_bytes(), vr].concat();
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(value);
        out
    }

    /// Items with defined and undefined lengths, one holding a nested sequence of undefined length.
    fn nested_items() -> Vec<u8> {
        let inner = item(&implicit(0x0008, 0x0100, b"R1"), false);
        let first = [implicit(0x0008, 0x0100, b"P1"), implicit_sequence(0x0040, 0xA170, &inner)].concat();
        let second =
            [implicit(0x0010, 0x0010, b"Doe^Jane"), implicit_sequence(0x0009, 0x1012, &item(&[], true))].concat();
        [item(&first, true), item(&second, false), item(&[], false)].concat()
    }

    fn rewrite(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
        define_un_lengths(bytes, 0, DataSetEncoding::ExplicitLittle)
    }

    #[test]
    fn an_undefined_length_un_gets_the_length_of_its_items_and_loses_its_delimiter() {
        let items = nested_items();
        let before = explicit_short(0x0008, 0x0060, b"CS", b"CR");
        let after = explicit_short(0x0028, 0x0010, b"US", &[4, 0]);
        let mut un = explicit_long(0x0009, 0x1010, b"UN", None, &items);
        un.extend(SEQUENCE_END);
        let data = [before.clone(), un, after.clone()].concat();
        let rewritten = rewrite(&data).unwrap();
        let expected = [before, explicit_long(0x0009, 0x1010, b"UN", Some(items.len() as u32), &items), after].concat();
        assert_eq!(&*rewritten, expected.as_slice());
        // Already defined: nothing left to do.
        assert!(matches!(rewrite(&rewritten), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn nothing_is_copied_without_such_an_element() {
        let items = nested_items();
        let data = [
            explicit_short(0x0008, 0x0060, b"CS", b"CR"),
            explicit_long(0x0009, 0x1010, b"UN", Some(items.len() as u32), &items),
            explicit_long(
                0x0008,
                0x1032,
                b"SQ",
                None,
                &[item(&explicit_short(0x0008, 0x0100, b"CS", b"P1"), false), SEQUENCE_END.to_vec()].concat(),
            ),
        ]
        .concat();
        assert!(matches!(rewrite(&data), Ok(Cow::Borrowed(_))));
        // Implicit VR data sets have no VR to say UN; a deflated one cannot be walked.
        for encoding in [DataSetEncoding::ImplicitLittle, DataSetEncoding::Deflated] {
            assert!(matches!(define_un_lengths(&[0xFF; 40], 0, encoding), Ok(Cow::Borrowed(_))));
        }
        // An odd data set without such an element is left to the length guard and the parser.
        assert!(matches!(rewrite(&[0x08, 0x00, 0x60, 0x00, b'Z', b'Z', 2, 0, b'C', b'R']), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn defined_lengths_around_it_shrink_by_the_dropped_delimiters() {
        let items = nested_items();
        let mut un = explicit_long(0x0009, 0x1010, b"UN", None, &items);
        un.extend(SEQUENCE_END);
        let defined_un = explicit_long(0x0009, 0x1010, b"UN", Some(items.len() as u32), &items);
        // A defined-length sequence whose defined-length item holds the element twice, then an undefined-length
        // sequence and item holding it once more.
        let item_with = |content: &[u8]| {
            let mut out = vec![0xFE, 0xFF, 0x00, 0xE0];
            out.extend((content.len() as u32).to_le_bytes());
            out.extend(content);
            out
        };
        let two = item_with(&[un.clone(), explicit_short(0x0008, 0x0100, b"SH", b"P1"), un.clone()].concat());
        let undefined_item = [&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF][..], &un, &ITEM_END].concat();
        let data = [
            explicit_long(0x0040, 0x0260, b"SQ", Some(two.len() as u32), &two),
            explicit_long(0x0008, 0x1032, b"SQ", None, &[undefined_item, SEQUENCE_END.to_vec()].concat()),
            explicit_short(0x0028, 0x0010, b"US", &[4, 0]),
        ]
        .concat();
        let two =
            item_with(&[defined_un.clone(), explicit_short(0x0008, 0x0100, b"SH", b"P1"), defined_un.clone()].concat());
        let undefined_item = [&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF][..], &defined_un, &ITEM_END].concat();
        let expected = [
            explicit_long(0x0040, 0x0260, b"SQ", Some(two.len() as u32), &two),
            explicit_long(0x0008, 0x1032, b"SQ", None, &[undefined_item, SEQUENCE_END.to_vec()].concat()),
            explicit_short(0x0028, 0x0010, b"US", &[4, 0]),
        ]
        .concat();
        assert_eq!(&*rewrite(&data).unwrap(), expected.as_slice());
    }

    #[test]
    fn a_missing_delimiter_or_a_corrupt_item_is_refused_naming_the_tag() {
        let items = nested_items();
        let un = explicit_long(0x0009, 0x1010, b"UN", None, &items);
        let error = rewrite(&un).unwrap_err();
        assert!(error.contains("element (0009,1010) at byte 0 has VR UN and undefined length"), "{error}");
        assert!(error.contains("Sequence Delimitation Item (FFFE,E0DD)") && error.contains("truncated"), "{error}");
        // Cut inside the undefined-length item: its Item Delimitation Item is what is missing.
        let cut = &un[..un.len() - 8 - ITEM_END.len() - 4];
        let error = rewrite(cut).unwrap_err();
        assert!(error.contains("(0009,1010)") && error.contains("Item Delimitation Item (FFFE,E00D)"), "{error}");
        // Something other than an item at the item level.
        let mut wrong = explicit_long(0x0008, 0x1032, b"UN", None, &implicit(0x0010, 0x0010, b"Doe^John"));
        wrong.extend(SEQUENCE_END);
        let error = rewrite(&wrong).unwrap_err();
        assert!(error.contains("element (0008,1032)") && error.contains("holds (0010,0010) where an item"), "{error}");
        // An item length past the end of the file.
        let mut overlong = explicit_long(0x0008, 0x1032, b"UN", None, &[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0x40]);
        overlong.extend(SEQUENCE_END);
        let error = rewrite(&overlong).unwrap_err();
        assert!(error.contains("(0008,1032)") && error.contains("declaring 1073741824 value bytes"), "{error}");
    }

    #[test]
    fn a_length_past_four_gigabytes_is_refused() {
        assert_eq!(defined_length((0x0009, 0x1010), 12), Ok(12));
        let error = defined_length((0x0009, 0x1010), 0xFFFF_FFFF).unwrap_err();
        assert!(error.contains("element (0009,1010)") && error.contains("more than a defined length"), "{error}");
        assert!(defined_length((0x0009, 0x1010), 1 << 33).is_err());
    }

    #[test]
    fn encapsulated_pixel_fragments_are_not_read_as_elements() {
        // A fragment whose bytes look like an undefined-length UN header.
        let fragment = explicit_long(0x0009, 0x1010, b"UN", None, &[]);
        let mut pixels = vec![0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0x00, 0xE0];
        pixels.extend((fragment.len() as u32).to_le_bytes());
        pixels.extend(&fragment);
        pixels.extend(SEQUENCE_END);
        let data = explicit_long(0x7FE0, 0x0010, b"OB", None, &pixels);
        assert!(matches!(rewrite(&data), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn big_endian_headers_with_little_endian_content() {
        let items = nested_items();
        let header = |length: u32| [&[0x00, 0x09, 0x10, 0x10][..], b"UN", &[0, 0], &length.to_be_bytes()].concat();
        let data = [header(UNDEFINED_LENGTH), items.clone(), SEQUENCE_END.to_vec()].concat();
        let rewritten = define_un_lengths(&data, 0, DataSetEncoding::ExplicitBig).unwrap();
        assert_eq!(&*rewritten, [header(items.len() as u32), items].concat().as_slice());
    }
}
