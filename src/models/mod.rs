//! Candle networks of the original study, one file each, and their model cards.

pub mod card;
pub mod labels;
