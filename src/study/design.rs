//! The study definition: questions, confidence scale, display, readers and flags. Stored as JSON in the database.

use serde::{Deserialize, Serialize};

use super::error::{StudyError, StudyResult};

/// Newest version of the design JSON this build reads; a file with a larger number is refused. Version 2 added
/// `DisplaySpec::border_crop_percent`.
pub const DESIGN_FORMAT_VERSION: u32 = 2;

/// The version a design without a border crop is written with, so that builds from before the crop still read it.
pub const BASE_DESIGN_FORMAT_VERSION: u32 = 1;

/// The first version that may hold a border crop. Builds before it ignore unknown fields: a crop written under
/// version 1 would be dropped from their status, their reader copies and the design their merges compare.
pub const BORDER_CROP_DESIGN_FORMAT_VERSION: u32 = 2;

// This build must read every version it writes.
const _: () = assert!(BORDER_CROP_DESIGN_FORMAT_VERSION <= DESIGN_FORMAT_VERSION);

/// Largest border crop per side: a quarter from each side still leaves the middle half of the film.
pub const MAX_BORDER_CROP_PERCENT: u32 = 25;

/// Reader ids the iMRMC format reserves (truth rows).
const RESERVED_READER_IDS: [&str; 2] = ["truth", "-1"];

/// Where a case came from. This is the ground truth and never reaches the reading screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// A real radiograph.
    Real,
    /// An artificial (generated) radiograph.
    Artificial,
}

impl Provenance {
    /// `true` for artificial: the positive class of the "detect the fake" task.
    pub fn is_artificial(self) -> bool {
        self == Self::Artificial
    }

    /// Name used in CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Artificial => "artificial",
        }
    }
}

/// The reader's call for one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// "This image is real."
    Real,
    /// "This image is artificial."
    Artificial,
}

impl Call {
    /// `true` for an "artificial" call.
    pub fn is_artificial(self) -> bool {
        self == Self::Artificial
    }

    /// Name used in CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Artificial => "artificial",
        }
    }
}

/// How sure the reader is of the call, asked after every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceScale {
    /// Five levels, 1 (guessing) to 5 (certain).
    FiveLevel,
    /// A slider from 0 (guessing) to 100 (certain).
    Slider100,
}

impl ConfidenceScale {
    /// Smallest allowed confidence value.
    pub fn min(self) -> u32 {
        match self {
            Self::FiveLevel => 1,
            Self::Slider100 => 0,
        }
    }

    /// Largest allowed confidence value.
    pub fn max(self) -> u32 {
        match self {
            Self::FiveLevel => 5,
            Self::Slider100 => 100,
        }
    }

    /// Combines call and confidence into one ordinal rating where higher means "more surely artificial":
    /// a sure "real" is the lowest rating, a sure "artificial" the highest (five levels: 1..=10; slider: 0..=201).
    /// This is the score exported to iMRMC and used for ROC analysis.
    pub fn rating(self, call: Call, confidence: u32) -> i64 {
        let (min, max) = (i64::from(self.min()), i64::from(self.max()));
        let confidence = i64::from(confidence);
        match call {
            Call::Real => min + (max - confidence),
            Call::Artificial => min + (max - min) + 1 + (confidence - min),
        }
    }

    /// Smallest rating that means an "artificial" call (ratings at or above it are artificial calls).
    pub fn call_threshold(self) -> i64 {
        self.rating(Call::Artificial, self.min())
    }

    /// The lowest and the highest rating: a sure "real" and a sure "artificial".
    pub fn rating_bounds(self) -> (i64, i64) {
        (self.rating(Call::Real, self.max()), self.rating(Call::Artificial, self.max()))
    }

    /// All possible ratings in ascending order (the categories of weighted kappa).
    pub fn rating_categories(self) -> Vec<i64> {
        let (low, high) = self.rating_bounds();
        (low..=high).collect()
    }
}

/// Bit depth of every displayed case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayBitDepth {
    /// Every case is quantised to 8 bits (stored as u16 `v * 257`), so a 16-bit source cannot betray itself.
    Eight,
    /// Every case keeps 16 bits (8-bit sources are scaled by 257).
    Sixteen,
}

/// The one display pipeline every case goes through (see `display.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplaySpec {
    /// Side of the square display image in pixels.
    pub size_px: u32,
    /// Quantisation of every case.
    pub bit_depth: DisplayBitDepth,
    /// Percent of the width cut from the left and from the right, and of the height from the top and from the
    /// bottom, of every case before the centre crop: real films carry burned-in text (side markers, labels, dates)
    /// near their edges that artificial ones lack. 0 (off) in designs written before the option existed.
    #[serde(default)]
    pub border_crop_percent: u32,
}

impl Default for DisplaySpec {
    fn default() -> Self {
        Self { size_px: 512, bit_depth: DisplayBitDepth::Eight, border_crop_percent: 0 }
    }
}

impl DisplaySpec {
    /// The design format version a design with this display is written with: the oldest that holds it.
    pub fn format_version(&self) -> u32 {
        if self.border_crop_percent > 0 { BORDER_CROP_DESIGN_FORMAT_VERSION } else { BASE_DESIGN_FORMAT_VERSION }
    }

    /// One line for people: "512 px, 8-bit, lanczos3, border crop 10% per side".
    pub fn describe(&self) -> String {
        let depth = match self.bit_depth {
            DisplayBitDepth::Eight => "8-bit",
            DisplayBitDepth::Sixteen => "16-bit",
        };
        let crop = match self.border_crop_percent {
            0 => "no border crop".to_owned(),
            percent => format!("border crop {percent}% per side"),
        };
        format!("{} px, {depth}, {}, {crop}", self.size_px, super::display::RESAMPLING_FILTER)
    }
}

/// Optional questions beyond call and confidence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionalQuestions {
    /// Ask for a free-text comment.
    pub free_text: bool,
    /// Ask for a click on "what gave it away".
    pub giveaway_click: bool,
}

/// The study definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyDesign {
    /// Design JSON version (`DESIGN_FORMAT_VERSION` when written).
    pub format_version: u32,
    /// Title shown to the study owner (never names provenance of a case).
    pub title: String,
    /// Reader ids, in the order they were given.
    pub readers: Vec<String>,
    /// Confidence scale of every answer.
    pub confidence_scale: ConfidenceScale,
    /// Whether a reader may go back and change an earlier answer.
    pub allow_back: bool,
    /// Whether practice cases reveal the truth after each answer.
    pub practice_feedback: bool,
    /// Optional questions.
    pub questions: OptionalQuestions,
    /// Display pipeline parameters.
    pub display: DisplaySpec,
    /// iMRMC modality id of this reading condition.
    pub modality: String,
    /// Seed of case selection, case ids and reader orders (logged).
    pub seed: u64,
}

impl StudyDesign {
    /// Checks the design for consistency.
    pub fn validate(&self) -> StudyResult<()> {
        if self.format_version > DESIGN_FORMAT_VERSION {
            return Err(StudyError::InvalidDesign(format!(
                "design format version {} is newer than this build's {DESIGN_FORMAT_VERSION}",
                self.format_version
            )));
        }
        if self.readers.is_empty() {
            return Err(StudyError::InvalidDesign("at least one reader is needed".to_owned()));
        }
        for (index, reader) in self.readers.iter().enumerate() {
            validate_identifier("reader id", reader)?;
            if RESERVED_READER_IDS.contains(&reader.as_str()) {
                return Err(StudyError::InvalidDesign(format!(
                    "reader id {reader:?} is reserved for truth rows in iMRMC files"
                )));
            }
            if self.readers.iter().take(index).any(|earlier| earlier == reader) {
                return Err(StudyError::InvalidDesign(format!("reader id {reader:?} is given twice")));
            }
        }
        validate_identifier("modality", &self.modality)?;
        if self.modality == "truth" {
            return Err(StudyError::InvalidDesign("modality \"truth\" is reserved by iMRMC".to_owned()));
        }
        if !(8..=4096).contains(&self.display.size_px) {
            return Err(StudyError::InvalidDesign(format!(
                "display size {} px is outside 8..=4096",
                self.display.size_px
            )));
        }
        if self.display.border_crop_percent > MAX_BORDER_CROP_PERCENT {
            return Err(StudyError::InvalidDesign(format!(
                "border crop {}% is outside 0..={MAX_BORDER_CROP_PERCENT}",
                self.display.border_crop_percent
            )));
        }
        // A crop under an older version would be read, and passed on, as no crop by builds that predate it.
        if self.format_version < self.display.format_version() {
            return Err(StudyError::InvalidDesign(format!(
                "a border crop needs design format version {}, the design says {}",
                self.display.format_version(),
                self.format_version
            )));
        }
        Ok(())
    }
}

/// Ids travel into CSV and iMRMC files: keep them non-empty, trimmed, without separators or line breaks.
fn validate_identifier(what: &str, value: &str) -> StudyResult<()> {
    let bad =
        value.is_empty() || value.trim() != value || value.chars().any(|c| c == ',' || c == '"' || c.is_control());
    if bad {
        return Err(StudyError::InvalidDesign(format!(
            "{what} {value:?} must be non-empty, without surrounding spaces, commas, quotes or control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_level_ratings_order_sure_real_to_sure_artificial() {
        let scale = ConfidenceScale::FiveLevel;
        assert_eq!(scale.rating(Call::Real, 5), 1);
        assert_eq!(scale.rating(Call::Real, 1), 5);
        assert_eq!(scale.rating(Call::Artificial, 1), 6);
        assert_eq!(scale.rating(Call::Artificial, 5), 10);
        assert_eq!(scale.call_threshold(), 6);
        assert_eq!(scale.rating_categories(), (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn slider_ratings_order_sure_real_to_sure_artificial() {
        let scale = ConfidenceScale::Slider100;
        assert_eq!(scale.rating(Call::Real, 100), 0);
        assert_eq!(scale.rating(Call::Real, 0), 100);
        assert_eq!(scale.rating(Call::Artificial, 0), 101);
        assert_eq!(scale.rating(Call::Artificial, 100), 201);
        assert_eq!(scale.call_threshold(), 101);
        assert_eq!(scale.rating_categories().len(), 202);
    }

    fn design() -> StudyDesign {
        StudyDesign {
            format_version: DESIGN_FORMAT_VERSION,
            title: "t".to_owned(),
            readers: vec!["alice".to_owned(), "bob".to_owned()],
            confidence_scale: ConfidenceScale::FiveLevel,
            allow_back: false,
            practice_feedback: true,
            questions: OptionalQuestions::default(),
            display: DisplaySpec::default(),
            modality: "blinded".to_owned(),
            seed: 1,
        }
    }

    #[test]
    fn rejects_duplicate_reserved_and_malformed_readers_and_newer_format() {
        assert!(design().validate().is_ok());
        for readers in [vec!["a", "a"], vec!["truth"], vec!["a,b"], vec![" a"], vec![]] {
            let mut bad = design();
            bad.readers = readers.into_iter().map(str::to_owned).collect();
            assert!(bad.validate().is_err(), "{:?}", bad.readers);
        }
        let mut newer = design();
        newer.format_version = DESIGN_FORMAT_VERSION + 1;
        assert!(newer.validate().unwrap_err().to_string().contains("newer"));
    }

    /// The design JSON of a study written before the border crop existed (format version 1).
    const VERSION_1_DESIGN_JSON: &str = r#"{"format_version":1,"title":"t","readers":["alice"],
        "confidence_scale":"five_level","allow_back":false,"practice_feedback":true,
        "questions":{"free_text":false,"giveaway_click":false},"display":{"size_px":256,"bit_depth":"eight"},
        "modality":"blinded","seed":3}"#;

    #[test]
    fn a_design_from_before_the_border_crop_loads_without_a_crop() {
        let old: StudyDesign = serde_json::from_str(VERSION_1_DESIGN_JSON).unwrap();
        assert_eq!(old.display.border_crop_percent, 0);
        assert_eq!(old.display.size_px, 256);
        assert!(old.validate().is_ok());
    }

    #[test]
    fn only_a_design_with_a_crop_needs_the_newer_format_version() {
        let plain = design().display;
        assert_eq!(plain.format_version(), BASE_DESIGN_FORMAT_VERSION);
        let cropped = DisplaySpec { border_crop_percent: 10, ..plain };
        assert_eq!(cropped.format_version(), BORDER_CROP_DESIGN_FORMAT_VERSION);

        let mut good = design();
        good.display = cropped;
        good.format_version = cropped.format_version();
        assert!(good.validate().is_ok());
        // A crop labelled version 1 would be silently dropped by builds that predate the crop.
        let mut mislabelled = good.clone();
        mislabelled.format_version = BASE_DESIGN_FORMAT_VERSION;
        assert!(mislabelled.validate().unwrap_err().to_string().contains("format version 2"));
        let json = serde_json::to_string(&good).unwrap();
        assert!(json.contains(r#""border_crop_percent":10"#), "{json}");
        assert_eq!(serde_json::from_str::<StudyDesign>(&json).unwrap(), good);
    }

    #[test]
    fn a_border_crop_beyond_a_quarter_is_refused() {
        let mut bad = design();
        bad.display.border_crop_percent = MAX_BORDER_CROP_PERCENT + 1;
        bad.format_version = DESIGN_FORMAT_VERSION;
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains("border crop 26%"), "{error}");
        bad.display.border_crop_percent = MAX_BORDER_CROP_PERCENT;
        assert!(bad.validate().is_ok());
    }
}
