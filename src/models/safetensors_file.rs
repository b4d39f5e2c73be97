//! Writing safetensors files: atomically ([`crate::atomic_file`]: a hidden sibling `.partial` file renamed into
//! place, so a crash never leaves half a model or checkpoint under the real name), with ordinary file permissions.
//! The safetensors crate's own writer goes through a private temporary file, which left every model and checkpoint
//! readable by its owner only (0600) and replaced a shared file's mode.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::atomic_file::{IfExists, PartialFile};

use candle_core::Tensor;

/// Writes `tensors` and `metadata` to `path` as safetensors. A new file gets the permissions the umask gives; a file
/// it replaces keeps its own. On error `path` is untouched; the message names the file and the reason.
pub fn write_safetensors(
    tensors: &[(&str, &Tensor)],
    metadata: HashMap<String, String>,
    path: &Path,
) -> Result<(), String> {
    let bytes = safetensors::tensor::serialize(tensors.iter().map(|&(name, tensor)| (name, tensor)), Some(metadata))
        .map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
    let mut partial = PartialFile::create(path, IfExists::Replace).map_err(|e| e.to_string())?;
    partial.file().write_all(&bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    partial.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_a_readable_file_and_keeps_a_replaced_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let tensor = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
        let metadata = HashMap::from([("k".to_owned(), "v".to_owned())]);
        write_safetensors(&[("t", &tensor)], metadata.clone(), &path).unwrap();
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded["t"].to_vec1::<f32>().unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A new file is readable by others unless the umask says otherwise (never the 0600 of a temp file).
            let umask_allows_others = {
                let probe = dir.path().join("probe");
                std::fs::write(&probe, b"").unwrap();
                mode(&probe) & 0o044
            };
            assert_eq!(mode(&path) & 0o044, umask_allows_others);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            write_safetensors(&[("t", &tensor)], metadata.clone(), &path).unwrap();
            assert_eq!(mode(&path), 0o640);
        }
        let error = write_safetensors(&[("t", &tensor)], metadata, &dir.path().join("no/such/dir/m.safetensors"));
        assert!(error.unwrap_err().contains("no/such/dir"));
    }
}
