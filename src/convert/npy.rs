//! The project's `.npy` reader and writer (format versions 1-3, C order, as numpy's `np.save` writes them).
//!
//! [`read_npy_f32`] accepts `<f4` and `<f8` (f64 values are narrowed to f32), for network inputs and outputs;
//! [`read_npy`] also accepts the integer dtypes `u1 <u2 <i4 <i8` and keeps values as f64, for feature matrices,
//! labels and test fixtures. Writing always produces `<f4`, format version 1.0.

use std::path::{Path, PathBuf};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8] = b"\x93NUMPY";

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a .npy file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path} holds dtype `{descr}`; supported here: {supported}")]
    UnsupportedDtype { path: PathBuf, descr: String, supported: &'static str },
    #[error("{path} is stored in Fortran order; save it with C order (np.ascontiguousarray)")]
    FortranOrder { path: PathBuf },
    #[error("array for {path}: shape {shape:?} needs {expected} values but {found} were given")]
    ShapeMismatch { path: PathBuf, shape: Vec<usize>, expected: usize, found: usize },
}

/// Element values of an array of any supported dtype, as f64 (integers are exact below 2^53).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f64>,
}

impl NpyArray {
    /// The values as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }
}

/// Reads a float32 or float64 `.npy` file; returns its shape and values (C order) as f32.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Read { path: path.to_path_buf(), source })?;
    parse_npy_f32(&bytes, path)
}

/// Same as [`read_npy_f32`] on bytes already in memory; `path` only names them in errors.
pub fn parse_npy_f32(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let stored = parse_stored(bytes, path)?;
    let values = match stored.descr.as_str() {
        "<f4" => decode::<4, f32>(stored.data, stored.count, f32::from_le_bytes),
        "<f8" => decode::<8, f32>(stored.data, stored.count, |b| f64::from_le_bytes(b) as f32),
        _ => {
            return Err(NpyError::UnsupportedDtype {
                path: path.to_path_buf(),
                descr: stored.descr,
                supported: "little-endian float32 (`<f4`) and float64 (`<f8`)",
            });
        }
    }
    .ok_or_else(|| short_data(path, &stored.shape))?;
    Ok((stored.shape, values))
}

/// Reads a `.npy` file of any supported dtype (`<f4 <f8 u1 <u2 <i4 <i8`) with its values as f64.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Read { path: path.to_path_buf(), source })?;
    parse_npy(&bytes, path)
}

/// Same as [`read_npy`] on bytes already in memory; `path` only names them in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray, NpyError> {
    let stored = parse_stored(bytes, path)?;
    let (data, count) = (stored.data, stored.count);
    let values = match stored.descr.as_str() {
        "<f4" => decode::<4, f64>(data, count, |b| f64::from(f32::from_le_bytes(b))),
        "<f8" => decode::<8, f64>(data, count, f64::from_le_bytes),
        "|u1" | "<u1" => decode::<1, f64>(data, count, |b| f64::from(b[0])),
        "<u2" => decode::<2, f64>(data, count, |b| f64::from(u16::from_le_bytes(b))),
        "<i4" => decode::<4, f64>(data, count, |b| f64::from(i32::from_le_bytes(b))),
        "<i8" => decode::<8, f64>(data, count, |b| i64::from_le_bytes(b) as f64),
        _ => {
            return Err(NpyError::UnsupportedDtype {
                path: path.to_path_buf(),
                descr: stored.descr,
                supported: "<f4, <f8, u1, <u2, <i4 and <i8",
            });
        }
    }
    .ok_or_else(|| short_data(path, &stored.shape))?;
    Ok(NpyArray { shape: stored.shape, values })
}

/// An array's header fields and the bytes after the header.
struct Stored<'a> {
    descr: String,
    shape: Vec<usize>,
    count: usize,
    data: &'a [u8],
}

/// Checks the magic and version and reads the header (dtype, order, shape).
fn parse_stored<'a>(bytes: &'a [u8], path: &Path) -> Result<Stored<'a>, NpyError> {
    let format = |reason: &str| NpyError::Format { path: path.to_path_buf(), reason: reason.to_owned() };
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err(format("missing the \\x93NUMPY magic"));
    }
    let major = bytes[6];
    // Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one.
    let (header_len, header_start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let raw = bytes.get(8..12).ok_or_else(|| format("truncated header"))?;
            (u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize, 12)
        }
        _ => return Err(format(&format!("unknown format version {major}"))),
    };
    let data_start = header_start.checked_add(header_len).ok_or_else(|| format("header length overflows"))?;
    let header_bytes = bytes.get(header_start..data_start).ok_or_else(|| format("truncated header"))?;
    let header = std::str::from_utf8(header_bytes).map_err(|_| format("header is not text"))?;
    let descr = header_value(header, "descr").ok_or_else(|| format("header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_owned();
    let fortran = header_value(header, "fortran_order").ok_or_else(|| format("header has no 'fortran_order'"))?;
    if fortran.starts_with("True") {
        return Err(NpyError::FortranOrder { path: path.to_path_buf() });
    }
    let shape = parse_shape(header).ok_or_else(|| format("header has no readable 'shape'"))?;
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| format("shape overflows"))?;
    Ok(Stored { descr, shape, count, data: &bytes[data_start..] })
}

fn short_data(path: &Path, shape: &[usize]) -> NpyError {
    NpyError::Format { path: path.to_path_buf(), reason: format!("data is shorter than shape {shape:?} needs") }
}

/// Writes `data` (C order) as a little-endian float32 `.npy` file of the given shape, through a temporary file
/// renamed into place ([`crate::atomic_file`]), replacing a file of that name: callers refuse one first where the
/// user did not allow it.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let bytes = encode_npy_f32(shape, data).map_err(|(expected, found)| NpyError::ShapeMismatch {
        path: path.to_path_buf(),
        shape: shape.to_vec(),
        expected,
        found,
    })?;
    crate::atomic_file::write_file(path, crate::atomic_file::IfExists::Replace, &bytes)
        .map_err(|error| NpyError::Write { path: path.to_path_buf(), source: error.into_io() })
}

/// The bytes of a float32 `.npy` file; on a shape/length mismatch returns (values needed, values given).
pub fn encode_npy_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, (usize, usize)> {
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err((expected, data.len()));
    }
    let mut bytes = npy_f32_header(shape).ok_or((expected, data.len()))?;
    bytes.reserve(data.len() * 4);
    for value in data {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    Ok(bytes)
}

/// The magic, version and header of a float32 C-order `.npy` file of `shape`, so that its values can follow in
/// pieces (a long `thorax generate` run writes each batch as it comes); `None` when the header would not fit.
pub fn npy_f32_header(shape: &[usize]) -> Option<Vec<u8>> {
    let shape_text = match shape {
        [single] => format!("({single},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // The header (with its trailing newline) pads the data start to a multiple of 64 bytes, as numpy does.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).ok()?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    Some(bytes)
}

/// Decodes `count` little-endian values of `N` bytes each, or None when `data` is too short.
fn decode<const N: usize, T>(data: &[u8], count: usize, convert: impl Fn([u8; N]) -> T) -> Option<Vec<T>> {
    let needed = count.checked_mul(N)?;
    let data = data.get(..needed)?;
    Some(
        data.chunks_exact(N)
            .map(|chunk| {
                let mut raw = [0u8; N];
                raw.copy_from_slice(chunk);
                convert(raw)
            })
            .collect(),
    )
}

/// The text after `'key':` in the header dict, up to the end of the header.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let single = format!("'{key}':");
    let double = format!("\"{key}\":");
    let start =
        header.find(&single).map(|i| i + single.len()).or_else(|| header.find(&double).map(|i| i + double.len()))?;
    let rest = header.get(start..)?.trim_start();
    // A value ends at the next comma outside parentheses; 'shape' is read separately.
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest.get(..end).map(str::trim)
}

/// The `shape` tuple of the header, e.g. `(4, 1, 64, 64)`, `(3,)` or `()`.
fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let start = header.find("'shape':").or_else(|| header.find("\"shape\":"))?;
    let rest = header.get(start..)?;
    let open = rest.find('(')?;
    let close = rest.find(')')?;
    let inner = rest.get(open + 1..close)?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_float32() {
        let shape = [2, 3];
        let data = [1.0f32, -2.5, 3.25, 0.0, 1e-7, f32::MAX];
        let bytes = encode_npy_f32(&shape, &data).unwrap();
        assert_eq!((bytes.len() - data.len() * 4) % 64, 0);
        let (read_shape, read) = parse_npy_f32(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!(read_shape, shape);
        assert_eq!(read, data);
    }

    #[test]
    fn reads_numpy_float64_header() {
        // Header exactly as numpy 1.26 writes it for np.save('z.npy', np.array([[1.5, -2.0]]))
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }";
        let mut header = header.to_owned();
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&1.5f64.to_le_bytes());
        bytes.extend_from_slice(&(-2.0f64).to_le_bytes());
        let (shape, data) = parse_npy_f32(&bytes, Path::new("z.npy")).unwrap();
        assert_eq!(shape, vec![1, 2]);
        assert_eq!(data, vec![1.5, -2.0]);
    }

    #[test]
    fn scalar_and_vector_shapes() {
        let bytes = encode_npy_f32(&[], &[7.0]).unwrap();
        assert_eq!(parse_npy_f32(&bytes, Path::new("s.npy")).unwrap(), (vec![], vec![7.0]));
        let bytes = encode_npy_f32(&[3], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(parse_npy_f32(&bytes, Path::new("v.npy")).unwrap().0, vec![3]);
    }

    #[test]
    fn reads_integer_and_float_dtypes_as_f64() {
        let path = Path::new("i.npy");
        let mut bytes = encode_npy_f32(&[2], &[1.0, 2.0]).unwrap();
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at + 1] = b'i'; // the same 8 data bytes read as two int32
        let data_start = bytes.len() - 8;
        bytes[data_start..].copy_from_slice(&[7, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(parse_npy(&bytes, path).unwrap(), NpyArray { shape: vec![2], values: vec![7.0, -1.0] });
        let floats = encode_npy_f32(&[1, 2], &[1.5, -2.0]).unwrap();
        let array = parse_npy(&floats, path).unwrap();
        assert_eq!((array.shape.clone(), array.to_f32()), (vec![1, 2], vec![1.5, -2.0]));
        bytes[at + 1] = b'c';
        assert!(matches!(parse_npy(&bytes, path), Err(NpyError::UnsupportedDtype { .. })));
    }

    #[test]
    fn refuses_bad_files() {
        let path = Path::new("bad.npy");
        assert!(matches!(parse_npy_f32(b"hello world", path), Err(NpyError::Format { .. })));
        let mut bytes = encode_npy_f32(&[2], &[1.0, 2.0]).unwrap();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(parse_npy_f32(&bytes, path), Err(NpyError::Format { .. })));
        let mut int_bytes = encode_npy_f32(&[1], &[1.0]).unwrap();
        let at = int_bytes.windows(3).position(|w| w == b"<f4").unwrap();
        int_bytes[at + 1] = b'i';
        assert!(matches!(parse_npy_f32(&int_bytes, path), Err(NpyError::UnsupportedDtype { .. })));
        assert!(matches!(encode_npy_f32(&[2, 2], &[1.0]), Err((4, 1))));
    }
}
