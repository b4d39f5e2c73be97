//! Thorax Workbench: a native workbench for studying artificial chest radiographs.

pub mod app;
pub mod atomic_file;
pub mod audit;
pub mod cli;
pub mod contained_panic;
pub mod convert;
pub mod engine;
pub mod imaging;
pub mod interrupt;
pub mod metrics;
pub mod models;
pub mod study;
#[cfg(test)]
mod test_random;
pub mod train;
