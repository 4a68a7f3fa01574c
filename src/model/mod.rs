//! Models: DataFusion logical plans generated from the YAML in `config/models/`.
//!
//! - [`config`]: concepts, keysets and frames, parsed and validated once;
//! - [`frame`]: HOOK frames (DAB layer);
//! - [`graph`]: the dependency graph between frames (via hooks);
//! - [`measures`]: measures of the event bridges;
//! - [`bridge`], [`event`], [`peripheral`], [`unified`], [`calendar`]: the
//!   DAR layer's plans, put together by [`dar`];
//! - [`build`]: materialising models (full or incremental);
//! - [`full`]: every model's full-build plan over the current tables;
//! - [`tables`]: the frames' namespace, the snapshot properties builds
//!   record, and scans of warehouse tables as plans;
//! - [`project`]: source + model config validated together;
//! - [`render`]: the readable plans under `plans/`.
//!
//! Nothing here names Adventure Works: a second source system is new YAML.

pub mod bridge;
pub mod build;
pub mod calendar;
pub mod config;
pub mod dar;
pub mod event;
pub mod frame;
pub mod full;
pub mod graph;
pub mod incremental;
pub mod measures;
pub mod peripheral;
pub mod project;
pub mod render;
pub mod tables;
pub mod unified;

pub use project::Project;
