//! What a reader answers for one case.

use serde::{Deserialize, Serialize};

use super::design::{Call, StudyDesign};
use super::error::{StudyError, StudyResult};

/// Longest free-text comment accepted, in bytes.
pub const MAX_FREE_TEXT_BYTES: usize = 10_000;

/// A click on "what gave it away", in display-image coordinates scaled to [0, 1] (origin top-left, +y down).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GiveawayPoint {
    /// 0 = left edge, 1 = right edge.
    pub x: f64,
    /// 0 = top edge, 1 = bottom edge.
    pub y: f64,
}

/// A reader's answer for one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Real or artificial.
    pub call: Call,
    /// Confidence in the call on the study's scale.
    pub confidence: u32,
    /// Optional comment (only when the study asks for it).
    pub free_text: Option<String>,
    /// Optional click on what gave it away (only when the study asks for it).
    pub giveaway: Option<GiveawayPoint>,
}

impl Answer {
    /// Checks the answer against the study's questions.
    pub fn validate(&self, design: &StudyDesign) -> StudyResult<()> {
        let scale = design.confidence_scale;
        if !(scale.min()..=scale.max()).contains(&self.confidence) {
            return Err(StudyError::InvalidAnswer(format!(
                "confidence {} is outside {}..={}",
                self.confidence,
                scale.min(),
                scale.max()
            )));
        }
        if let Some(text) = &self.free_text {
            if !design.questions.free_text {
                return Err(StudyError::InvalidAnswer("this study does not ask for free text".to_owned()));
            }
            if text.len() > MAX_FREE_TEXT_BYTES {
                return Err(StudyError::InvalidAnswer(format!(
                    "free text of {} bytes is longer than {MAX_FREE_TEXT_BYTES}",
                    text.len()
                )));
            }
        }
        if let Some(point) = self.giveaway {
            if !design.questions.giveaway_click {
                return Err(StudyError::InvalidAnswer(
                    "this study does not ask for a \"what gave it away\" click".to_owned(),
                ));
            }
            let inside = |v: f64| (0.0..=1.0).contains(&v);
            if !(inside(point.x) && inside(point.y)) {
                return Err(StudyError::InvalidAnswer(format!(
                    "giveaway point ({}, {}) is outside the image [0, 1] x [0, 1]",
                    point.x, point.y
                )));
            }
        }
        Ok(())
    }

    /// The ordinal rating (higher = more surely artificial) of this answer on the study's scale.
    pub fn rating(&self, design: &StudyDesign) -> i64 {
        design.confidence_scale.rating(self.call, self.confidence)
    }
}
