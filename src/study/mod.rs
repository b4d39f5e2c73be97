//! Blinded real-vs-artificial reading studies: design, randomisation, durable store, reading sessions,
//! statistics and export (iMRMC, CSV). Nothing here knows egui; the app drives `ReadingSession`.

pub mod analysis;
pub mod answer;
pub mod builder;
pub mod design;
pub mod display;
pub mod error;
pub mod export;
pub mod imrmc;
pub mod randomise;
pub mod session;
pub mod sources;
pub mod stats;
pub mod store;

pub use answer::{Answer, GiveawayPoint};
pub use builder::{CaseMix, StudySummary, create_study};
pub use design::{Call, ConfidenceScale, DisplayBitDepth, DisplaySpec, OptionalQuestions, Provenance, StudyDesign};
pub use display::DisplayImage;
pub use error::{StudyError, StudyResult};
pub use session::{
    CaseForDisplay, CaseProgress, CaseToken, ReaderProgress, ReadingPhase, ReadingSession, SubmitReceipt,
};
pub use sources::{ArtificialSource, FolderArtificialSource, RealImageFolder, SourceImage};
pub use store::StudyStore;
