//! Fresh UIDs and the consistent original-to-new UID mapping used within one de-identified export.

use std::collections::HashMap;

/// The Implementation Class UID (0002,0012) of files this program writes: one fixed UUID-derived UID (PS3.7 D.3.3.2
/// asks for a value that names the implementation, not the DICOM library under it).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.121321814032585165360290212942503439985";

/// The Implementation Version Name (0002,0013): at most 16 characters.
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("THORAX_", env!("CARGO_PKG_VERSION"));

/// A new globally unique UID of the form `2.25.<128-bit random integer>` (PS3.5 B.2, UUID-derived).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

/// Maps original UIDs to fresh ones, so that every file of one export that shared a UID (study, series,
/// frame of reference, referenced instance) still shares the replacement, and no original UID survives.
#[derive(Debug, Default, Clone)]
pub struct UidMap {
    replacements: HashMap<String, String>,
}

impl UidMap {
    /// An empty map: start one per export.
    pub fn new() -> UidMap {
        UidMap::default()
    }

    /// The replacement for `original` (trailing NUL/space padding ignored), created on first use.
    pub fn replace(&mut self, original: &str) -> String {
        let key = original.trim_end_matches(['\0', ' ']);
        self.replacements.entry(key.to_owned()).or_insert_with(new_uid).clone()
    }

    /// How many distinct UIDs have been replaced so far.
    pub fn len(&self) -> usize {
        self.replacements.len()
    }

    /// Whether no UID has been replaced yet.
    pub fn is_empty(&self) -> bool {
        self.replacements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_implementation_names_are_valid_ui_and_sh_values() {
        assert!(IMPLEMENTATION_CLASS_UID.len() <= 64);
        assert!(IMPLEMENTATION_CLASS_UID.split('.').all(|c| !c.is_empty() && (c == "0" || !c.starts_with('0'))));
        assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16, "{IMPLEMENTATION_VERSION_NAME}");
    }

    #[test]
    fn new_uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        for uid in [&a, &b] {
            assert!(uid.starts_with("2.25."));
            assert!(uid.len() <= 64, "{uid}");
            assert!(uid.chars().all(|c| c.is_ascii_digit() || c == '.'));
            let integer = &uid[5..];
            assert!(!integer.starts_with('0') || integer == "0", "{uid}");
        }
    }

    #[test]
    fn map_is_consistent_and_ignores_padding() {
        let mut map = UidMap::new();
        let first = map.replace("1.2.3.4");
        assert_eq!(map.replace("1.2.3.4\0"), first);
        assert_ne!(map.replace("1.2.3.5"), first);
        assert_ne!(first, "1.2.3.4");
        assert_eq!(map.len(), 2);
    }
}
