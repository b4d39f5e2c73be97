//! The study definition: questions, confidence scale, display, readers and flags. Stored as JSON in the database.

use serde::{Deserialize, Serialize};

use super::error::{StudyError, StudyResult};

/// Version of the design JSON; a file with a larger number is refused.
pub const DESIGN_FORMAT_VERSION: u32 = 1;

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
}

impl Default for DisplaySpec {
    fn default() -> Self {
        Self { size_px: 512, bit_depth: DisplayBitDepth::Eight }
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
}
