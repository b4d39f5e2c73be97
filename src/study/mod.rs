//! Blinded real-vs-artificial reading studies: design, randomisation, durable store, reading sessions,
//! statistics and export (iMRMC, CSV). Nothing here knows egui; the app drives `ReadingSession`.
//!
//! A reading screen needs only this loop; every `submit` is on disk when it returns, and reopening the file
//! continues at the first unanswered case:
//!
//! ```no_run
//! use thorax::study::{Answer, Call, ReadingSession};
//!
//! # fn main() -> Result<(), thorax::study::StudyError> {
//! let mut session = ReadingSession::open(std::path::Path::new("study.sqlite"))?;
//! while let Some(case) = session.next_case("alice")? {
//!     // Show case.image (pixels only) and "case {k} of {n}" from case.progress; collect the answer.
//!     let answer = Answer { call: Call::Artificial, confidence: 4, free_text: None, giveaway: None };
//!     let receipt = session.submit("alice", case.token, &answer)?;
//!     if let Some(feedback) = receipt.practice_feedback {
//!         println!("practice case was {:?}", feedback.truth);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod analysis;
pub mod answer;
pub mod builder;
pub mod design;
pub mod display;
pub mod error;
pub mod export;
pub mod generator_source;
pub mod harmonise;
pub mod imrmc;
pub mod randomise;
pub mod reader_copy;
pub mod resolution_match;
pub mod session;
pub mod snapshot;
pub mod sources;
pub mod stats;
pub mod store;

pub use answer::{Answer, GiveawayPoint};
pub use builder::{CaseMix, StudySummary, create_study, create_study_harmonised};
pub use design::{Call, ConfidenceScale, DisplayBitDepth, DisplaySpec, OptionalQuestions, Provenance, StudyDesign};
pub use display::DisplayImage;
pub use error::{StudyError, StudyResult};
pub use session::{
    CaseForDisplay, CaseProgress, CaseToken, ReaderProgress, ReadingPhase, ReadingSession, SubmitReceipt,
};
pub use sources::{ArtificialSource, FolderArtificialSource, RealImageFolder, SourceImage};
pub use store::StudyStore;
