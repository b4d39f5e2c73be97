//! Thorax Workbench: a native workbench for studying artificial chest radiographs.

pub mod app;
pub mod engine;
pub mod imaging;
pub mod models;
