//! Models: DataFusion logical plans generated from the YAML in `config/models/`.
//!
//! - [`config`]: concepts, keysets and frames, parsed and validated once;
//! - [`das`]: the layout of the raw layer the models read;
//! - [`frame`]: HOOK frames (DAB layer);
//! - [`build`]: materialising models (full or incremental);
//! - [`project`]: source + model config validated together;
//! - [`render`]: the readable plans under `plans/`.
//!
//! Nothing here names Adventure Works: a second source system is new YAML.

pub mod build;
pub mod config;
pub mod das;
pub mod frame;
pub mod project;
pub mod render;

pub use project::Project;
