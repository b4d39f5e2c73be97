//! A minimal reader of NumPy `.npy` files (format versions 1-3, C order, little-endian or byte-sized dtypes
//! `f4 f8 u1 u2 i4 i8`), enough for feature matrices and test fixtures. Private to the metrics until the project's
//! shared reader (`convert::npy`) exists.

use std::path::Path;

/// Why an `.npy` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read.
    #[error("cannot read .npy file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a supported `.npy` array.
    #[error(".npy {what}: {reason}")]
    Format { what: &'static str, reason: String },
}

/// Element values of an array, converted to `f64` (integers are exact below 2^53).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f64>,
}

impl NpyArray {
    /// The values as `f32`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }
}

/// Reads an `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: path.display().to_string(), source })?;
    parse_npy(&bytes)
}

/// Parses the bytes of an `.npy` file.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let format = |what: &'static str, reason: String| NpyError::Format { what, reason };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format("magic", "missing \\x93NUMPY".into()));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let raw = bytes.get(8..12).ok_or_else(|| format("header", "truncated".into()))?;
            (u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize, 12)
        }
        other => return Err(format("version", format!("unsupported major version {other}"))),
    };
    let header_bytes =
        bytes.get(header_start..header_start + header_len).ok_or_else(|| format("header", "truncated".into()))?;
    let header = String::from_utf8_lossy(header_bytes);
    let descr = dict_value(&header, "descr").ok_or_else(|| format("header", "no 'descr'".into()))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(&header, "fortran_order").ok_or_else(|| format("header", "no 'fortran_order'".into()))?;
    if fortran.trim() != "False" {
        return Err(format("layout", "Fortran order is not supported; save with np.ascontiguousarray".into()));
    }
    let shape_text = dict_value(&header, "shape").ok_or_else(|| format("header", "no 'shape'".into()))?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|e| format("shape", format!("{s:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format("shape", "overflows".into()))?;
    let data = &bytes[header_start + header_len..];
    let (size, convert): (usize, fn(&[u8]) -> f64) = match descr {
        "<f4" => (4, |b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        "<f8" => (8, |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        "|u1" | "<u1" => (1, |b| f64::from(b[0])),
        "<u2" => (2, |b| f64::from(u16::from_le_bytes([b[0], b[1]]))),
        "<i4" => (4, |b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        "<i8" => (8, |b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64),
        other => {
            return Err(format("dtype", format!("unsupported dtype {other:?} (use <f4, <f8, u1, <u2, <i4 or <i8)")));
        }
    };
    let needed = count.checked_mul(size).ok_or_else(|| format("shape", "overflows".into()))?;
    if data.len() < needed {
        return Err(format("data", format!("expected {needed} bytes, found {}", data.len())));
    }
    let values = data[..needed].chunks_exact(size).map(convert).collect();
    Ok(NpyArray { shape, values })
}

/// The text of `'key': value` in a Python dict literal (value up to the next top-level comma).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header.get(start..)?.trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 && c == ')' {
                    return rest.get(..=i);
                }
            }
            ',' | '}' if depth == 0 => return rest.get(..i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_made_file_and_rejects_garbage() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut padded = header.to_string();
        while !(10 + padded.len() + 1).is_multiple_of(64) {
            padded.push(' ');
        }
        padded.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.5] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let array = parse_npy(&bytes).unwrap();
        assert_eq!(array.shape, vec![2, 3]);
        assert_eq!(array.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert!(parse_npy(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_npy(b"not numpy at all").is_err());
    }
}
