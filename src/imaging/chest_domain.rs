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
        && !is_chest_secondary_capture(details, modality)
    {
        return Some(format!("{} image, not a radiograph", modality_name(modality)));
    }
    let description = description_naming_other_anatomy(details);
    if let Some(part) = top_level_text(details, 0x0018, 0x0015) {
        if !CHEST_BODY_PARTS.iter().any(|c| c.eq_ignore_ascii_case(&part)) {
            return Some(format!("a radiograph of the {}, not the chest", part.to_lowercase()));
        }
        // Body Part Examined is often a device default left at CHEST; a description written for this image that
        // names another part and not the chest contradicts it, and the doubt is worth raising.
        return description.map(|d| {
            format!("Body Part Examined says {part}, but the {} \"{}\" names the {}", d.what, d.text, d.anatomy)
        });
    }
    // Many files (the dental CR among our fixtures) leave Body Part Examined out and name the anatomy only in their
    // descriptions; a description that names another part and not the chest raises the doubt too.
    description.map(|d| format!("the {} \"{}\" names the {}, not the chest", d.what, d.text, d.anatomy))
}

/// A Secondary Capture (Modality OT, the usual code for it) whose Body Part Examined is the chest: a digitised film
/// or an artificial chest radiograph (our own `dicom export-sc` writes these), not another modality.
fn is_chest_secondary_capture(details: &DicomDetails, modality: &str) -> bool {
    let is_secondary_capture = details.summary.sop_class_uid.as_deref().is_some_and(|uid| {
        uid.trim_end_matches(['\0', ' ']) == dicom_dictionary_std::uids::SECONDARY_CAPTURE_IMAGE_STORAGE
    });
    modality.eq_ignore_ascii_case("OT")
        && is_secondary_capture
        && top_level_text(details, 0x0018, 0x0015)
            .is_some_and(|part| CHEST_BODY_PARTS.iter().any(|c| c.eq_ignore_ascii_case(&part)))
}

/// A free-text description that names anatomy other than the chest.
struct OtherAnatomyDescription {
    /// Which description ("series description").
    what: &'static str,
    /// Its trimmed text.
    text: String,
    /// The anatomy it names, lower case ("teeth").
    anatomy: String,
}

/// The first description, in the order they are trusted, that names the chest (then `None`) or other anatomy.
fn description_naming_other_anatomy(details: &DicomDetails) -> Option<OtherAnatomyDescription> {
    for (element, what) in DESCRIPTIONS {
        let Some(text) = top_level_text(details, element.0, element.1) else { continue };
        let words: Vec<String> =
            text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_uppercase).collect();
        if words.iter().any(|w| CHEST_WORDS.contains(&w.as_str())) {
            return None;
        }
        if let Some(word) = words.iter().find(|w| OTHER_ANATOMY_WORDS.contains(&w.as_str())) {
            return Some(OtherAnatomyDescription { what, anatomy: word.to_lowercase(), text });
        }
    }
    None
}

/// Descriptions that name the anatomy in free text, in the order they are trusted.
const DESCRIPTIONS: [((u16, u16), &str); 3] = [
    ((0x0018, 0x1030), "protocol name"),
    ((0x0008, 0x103E), "series description"),
    ((0x0008, 0x1030), "study description"),
];

/// Words of a description that mean the chest (whole words, upper case).
const CHEST_WORDS: [&str; 7] = ["CHEST", "THORAX", "THORACIC", "LUNG", "LUNGS", "CXR", "PULMONARY"];

/// Words of a description that name anatomy other than the chest (DICOM Body Part defined terms and their common
/// plain-English forms).
const OTHER_ANATOMY_WORDS: [&str; 38] = [
    "ABDOMEN",
    "ANKLE",
    "ARM",
    "BRAIN",
    "BREAST",
    "CSPINE",
    "DENTAL",
    "ELBOW",
    "EXTREMITY",
    "FACE",
    "FEMUR",
    "FINGER",
    "FOOT",
    "FOREARM",
    "HAND",
    "HEAD",
    "HIP",
    "HUMERUS",
    "JAW",
    "KNEE",
    "LEG",
    "LSPINE",
    "MANDIBLE",
    "MAXILLA",
    "NECK",
    "ORBIT",
    "PELVIS",
    "SHOULDER",
    "SINUS",
    "SKULL",
    "SPINE",
    "TEETH",
    "TIBIA",
    "TOE",
    "TOOTH",
    "TSPINE",
    "WRIST",
    "PANORAMIC",
];

/// The trimmed, non-empty value of a top-level attribute.
fn top_level_text(details: &DicomDetails, group: u16, element: u16) -> Option<String> {
    details
        .tags
        .iter()
        .find(|row| row.depth == 0 && row.group == group && row.element == element)
        .map(|row| row.value.trim().to_owned())
        .filter(|v| !v.is_empty())
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
        // Codes are read letter by letter: "an OT", "an SM", "a PX".
        _ => {
            let article = match code.chars().next().map(|c| c.to_ascii_uppercase()) {
                Some('A' | 'E' | 'F' | 'H' | 'I' | 'L' | 'M' | 'N' | 'O' | 'R' | 'S' | 'X') => "an",
                _ => "a",
            };
            return format!("{article} {code}-modality");
        }
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
    fn unknown_modality_codes_take_the_article_of_their_first_letter() {
        assert_eq!(modality_name("OT"), "an OT-modality");
        assert_eq!(modality_name("DOC"), "a DOC-modality");
    }

    #[test]
    fn a_body_part_other_than_the_chest_raises_a_doubt() {
        let mut hand = (*details("chest_cr_pa_siim_nih.dcm")).clone();
        let row = hand.tags.iter_mut().find(|r| r.group == 0x0018 && r.element == 0x0015).unwrap();
        row.value = "HAND ".to_owned();
        assert_eq!(not_a_chest_radiograph(&hand).as_deref(), Some("a radiograph of the hand, not the chest"));
    }

    #[test]
    fn a_description_that_names_other_anatomy_raises_a_doubt_unless_it_names_the_chest() {
        let dental = details("dental_cr_jpeg_lossless_modality_lut.dcm");
        assert_eq!(
            not_a_chest_radiograph(&dental).as_deref(),
            Some("the series description \"MODALITYLUT - TEETH\" names the teeth, not the chest")
        );
        let mut chest = (*dental).clone();
        for row in chest.tags.iter_mut().filter(|r| r.group == 0x0008 && [0x1030, 0x103E].contains(&r.element)) {
            row.value = "PA CHEST + HAND".to_owned();
        }
        assert_eq!(not_a_chest_radiograph(&chest), None, "a description naming the chest raises no doubt");
        // A word inside another word is not a match ("ARMAMENTARIUM" is not the arm).
        for row in chest.tags.iter_mut().filter(|r| r.group == 0x0008 && [0x1030, 0x103E].contains(&r.element)) {
            row.value = "ARMAMENTARIUM".to_owned();
        }
        assert_eq!(not_a_chest_radiograph(&chest), None);
    }

    #[test]
    fn a_chest_body_part_contradicted_by_a_description_raises_a_doubt() {
        let mut knee = (*details("chest_cr_pa_siim_nih.dcm")).clone();
        assert_eq!(not_a_chest_radiograph(&knee), None);
        let body_part = knee.tags.iter().find(|r| r.group == 0x0018 && r.element == 0x0015).unwrap().value.clone();
        assert_eq!(body_part.trim(), "CHEST");
        row_value(&mut knee, 0x0008, 0x103E, "KNEE: PA");
        assert_eq!(
            not_a_chest_radiograph(&knee).as_deref(),
            Some("Body Part Examined says CHEST, but the series description \"KNEE: PA\" names the knee")
        );
        row_value(&mut knee, 0x0008, 0x103E, "PA CHEST + KNEE");
        assert_eq!(not_a_chest_radiograph(&knee), None, "a description that names the chest agrees with it");
    }

    fn row_value(details: &mut DicomDetails, group: u16, element: u16, value: &str) {
        let row = details.tags.iter_mut().find(|r| r.group == group && r.element == element).unwrap();
        row.value = value.to_owned();
    }
}
