//! Lookup tables of the Modality LUT Sequence (0028,3000) and VOI LUT Sequence (0028,3010) (PS3.3 C.11.1, C.11.2).

use super::error::DicomError;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::Serialize;

/// A LUT: input `first_mapped` maps to `values[0]`; inputs outside the range clamp to the ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookupTable {
    /// The input value mapped to the first entry (LUT Descriptor, second value).
    pub first_mapped: i32,
    /// Bits per entry (LUT Descriptor, third value).
    pub bits_per_entry: u16,
    /// The entries (LUT Data).
    #[serde(skip)]
    pub values: Vec<u16>,
}

impl LookupTable {
    /// The entry for `input` (rounded, clamped to the table).
    pub fn lookup(&self, input: f64) -> u16 {
        let last = self.values.len().saturating_sub(1);
        let offset = (input.round() - f64::from(self.first_mapped)).clamp(0.0, last as f64);
        // offset is within 0..=last after the clamp, so the cast is exact.
        self.values.get(offset as usize).copied().unwrap_or(0)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Largest representable entry, `2^bits - 1`.
    pub fn max_entry(&self) -> f64 {
        f64::from(1u32 << self.bits_per_entry.clamp(1, 16)) - 1.0
    }
}

/// Parses one item of a LUT sequence. `pixel_signed` decides how the first-mapped value is read
/// (the descriptor is US or SS depending on Pixel Representation).
pub(crate) fn parse_lut_item(
    item: &InMemDicomObject,
    pixel_signed: bool,
    path: &str,
    attribute: &'static str,
) -> Result<LookupTable, DicomError> {
    let invalid = |reason: String| DicomError::InvalidAttribute { path: path.to_owned(), attribute, reason };
    let descriptor =
        item.get(tags::LUT_DESCRIPTOR).ok_or_else(|| invalid("item has no LUT Descriptor (0028,3002)".into()))?;
    let descriptor: Vec<i64> =
        descriptor.to_multi_int::<i64>().map_err(|e| invalid(format!("LUT Descriptor is not numeric: {e}")))?;
    let [entries, first, bits] = descriptor[..] else {
        return Err(invalid(format!("LUT Descriptor has {} values instead of 3", descriptor.len())));
    };
    // 0 entries means 65536 (PS3.3 C.11.1.1.1).
    let entries = match entries & 0xFFFF {
        0 => 65536,
        n => n as usize,
    };
    let first_mapped = if pixel_signed && (0x8000..=0xFFFF).contains(&first) {
        (first - 0x1_0000) as i32
    } else if (-0x8000..=0xFFFF).contains(&first) {
        first as i32
    } else {
        return Err(invalid(format!("LUT Descriptor first mapped value {first} is out of range")));
    };
    let bits_per_entry = u16::try_from(bits)
        .ok()
        .filter(|b| (1..=16).contains(b))
        .ok_or_else(|| invalid(format!("LUT Descriptor bits per entry {bits} is not 1..16")))?;
    let data = item.get(tags::LUT_DATA).ok_or_else(|| invalid("item has no LUT Data (0028,3006)".into()))?;
    let mut values = match data.value() {
        Value::Primitive(PrimitiveValue::U16(words)) => words.to_vec(),
        Value::Primitive(PrimitiveValue::I16(words)) => {
            words.iter().map(|&w| u16::from_ne_bytes(w.to_ne_bytes())).collect()
        }
        Value::Primitive(PrimitiveValue::U8(bytes)) => {
            bytes.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect()
        }
        other => {
            other.to_multi_int::<u16>().map_err(|e| invalid(format!("LUT Data is not a list of 16-bit words: {e}")))?
        }
    };
    // Some writers pack 8-bit entries two per word; unpack when that is what the sizes say.
    if values.len() < entries && bits_per_entry <= 8 && values.len() * 2 >= entries {
        values = values.iter().flat_map(|w| w.to_le_bytes()).map(u16::from).take(entries).collect();
    }
    if values.len() < entries {
        return Err(invalid(format!("LUT Data has {} entries but the descriptor announces {entries}", values.len())));
    }
    values.truncate(entries);
    Ok(LookupTable { first_mapped, bits_per_entry, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_clamps_and_offsets() {
        let lut = LookupTable { first_mapped: -2, bits_per_entry: 8, values: vec![10, 20, 30] };
        assert_eq!(lut.lookup(-5.0), 10);
        assert_eq!(lut.lookup(-2.0), 10);
        assert_eq!(lut.lookup(-1.0), 20);
        assert_eq!(lut.lookup(0.0), 30);
        assert_eq!(lut.lookup(100.0), 30);
        assert_eq!(lut.max_entry(), 255.0);
    }
}
