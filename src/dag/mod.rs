//! Orchestration: the model DAG (registry), what a run would do (plan), the
//! run itself (init/elt), where its sources are served (the embedded one:
//! [`embedded`]), lineage diagrams and the warehouse run lock, and upkeep
//! over all tables.

pub mod embedded;
pub mod fingerprints;
pub mod lineage;
pub mod lock;
pub mod plan;
pub mod registry;
pub mod run;
pub mod sources;
pub mod upkeep;

pub use registry::{Dag, Layer, ModelKind, Node};
