//! Models: DataFusion logical plans generated from the YAML in `config/models/`.
//!
//! - [`config`]: concepts, keysets and frames, parsed and validated once;
//! - [`das`]: the layout of the raw layer the models read;
//! - [`frame`]: HOOK frames (DAB layer);
//! - [`build`]: materialising models (full or incremental).
//!
//! Nothing here names Adventure Works: a second source system is new YAML.

pub mod build;
pub mod config;
pub mod das;
pub mod frame;
