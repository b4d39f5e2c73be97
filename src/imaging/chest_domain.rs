//! Whether a DICOM image is the kind the networks were trained on: a chest radiograph (NIH ChestX-ray14,
//! CheXpert and the paediatric set are all projection radiographs of the chest). Plain image files carry no such
//! facts, so only DICOM attributes can raise a doubt.

use crate::imaging::DicomDetails;

/// Modalities of projection radiography: computed, digital, and the generic radiographic imaging code.
const RADIOGRAPH_MODALITIES: [&str; 3] = ["CR", "DX", "RG"];

/// Body Part Examined (0018,0015) values that mean the chest.
const CHEST_BODY_PARTS: [&str; 3] = ["CHEST", "THORAX", "LUNG"];

/// Why the image is not a chest radiograph, from its Modality and Body Part Examined; `None` when neither says
/// so (an absent attribute raises no doubt).
pub fn not_a_chest_radiograph(details: &DicomDetails) -> Option<String> {
    let modality = details.summary.modality.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if let Some(modality) = modality
        && !RADIOGRAPH_MODALITIES.iter().any(|m| m.eq_ignore_ascii_case(modality))
    {
        return Some(format!("{} image, not a radiograph", modality_name(modality)));
    }
    let body_part = details
        .tags
        .iter()
        .find(|row| row.depth == 0 && row.group == 0x0018 && row.element == 0x0015)
        .map(|row| row.value.trim().to_owned())
        .filter(|v| !v.is_empty());
    if let Some(part) = body_part
        && !CHEST_BODY_PARTS.iter().any(|c| c.eq_ignore_ascii_case(&part))
    {
        return Some(format!("a radiograph of the {}, not the chest", part.to_lowercase()));
    }
    None
}

/// The common name of a DICOM modality code with its article ("a CT", "an MR"), or the code itself.
fn modality_name(code: &str) -> String {
    let name = match code.to_ascii_uppercase().as_str() {
        "CT" => "a CT",
        "MR" => "an MR",
        "US" => "an ultrasound",
        "NM" => "a nuclear medicine",
        "PT" => "a PET",
        "MG" => "a mammography",
        "XA" => "an angiography",
        "RF" => "a fluoroscopy",
        "IO" => "an intra-oral",
        "PX" => "a panoramic dental",
        _ => return format!("a {code}-modality"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::load_radiograph;

    fn details(file: &str) -> std::sync::Arc<DicomDetails> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/real").join(file);
        load_radiograph(&path).unwrap().dicom.unwrap()
    }

    #[test]
    fn chest_radiographs_pass_and_other_modalities_are_named() {
        assert_eq!(not_a_chest_radiograph(&details("chest_cr_pa_siim_nih.dcm")), None);
        assert_eq!(not_a_chest_radiograph(&details("chest_cr_pa_mono1_10bit_nometa.dcm")), None);
        assert_eq!(
            not_a_chest_radiograph(&details("ct_small_128.dcm")).as_deref(),
            Some("a CT image, not a radiograph")
        );
        assert_eq!(
            not_a_chest_radiograph(&details("mr_small_64.dcm")).as_deref(),
            Some("an MR image, not a radiograph")
        );
    }

    #[test]
    fn a_body_part_other_than_the_chest_raises_a_doubt() {
        let mut hand = (*details("chest_cr_pa_siim_nih.dcm")).clone();
        let row = hand.tags.iter_mut().find(|r| r.group == 0x0018 && r.element == 0x0015).unwrap();
        row.value = "HAND ".to_owned();
        assert_eq!(not_a_chest_radiograph(&hand).as_deref(), Some("a radiograph of the hand, not the chest"));
    }
}
