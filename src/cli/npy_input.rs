//! `.npy` arrays given on the command line (`--latent-npy`, `--tensor-npy`, ...): read as float32 and refused when a
//! value is NaN or infinite, which would otherwise spread through a network and come out as a silent NaN image.

use std::path::Path;

use anyhow::{Context, bail};

use crate::convert::npy::read_npy_f32;

/// The shape and values of the float32 array in `path`, given as `argument`; every value finite.
pub(crate) fn read_finite_npy(path: &Path, argument: &str) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
    let (shape, data) = read_npy_f32(path).with_context(|| format!("reading {argument} {}", path.display()))?;
    if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
        bail!("{argument} {} holds a NaN or infinite value at flat index {bad}", path.display());
    }
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::npy::write_npy_f32;

    #[test]
    fn non_finite_values_are_named_by_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        write_npy_f32(&path, &[2, 2], &[0.0, 1.0, f32::NAN, 2.0]).unwrap();
        let error = read_finite_npy(&path, "--tensor-npy").unwrap_err().to_string();
        assert!(error.contains("--tensor-npy") && error.contains("flat index 2"), "{error}");
        write_npy_f32(&path, &[2, 2], &[0.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(read_finite_npy(&path, "--tensor-npy").unwrap(), (vec![2, 2], vec![0.0, 1.0, 3.0, 2.0]));
    }
}
