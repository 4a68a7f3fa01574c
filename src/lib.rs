//! serverless-lakehouse: a pure-Rust lakehouse in one binary.
//!
//! Floors of the code, each using only the floors below it:
//! 1. foundation: [`storage`] (Iceberg warehouse), [`join`] (the PIT join
//!    operator), [`error`], [`tuning`] (the speed tunings' switches);
//! 2. contracts: [`config`] (a source's YAML), [`das`] (what a landed DAS
//!    table is, shared by extract and model);
//! 3. domain: source, extract, model, query, [`codec`] (plans as bytes);
//! 4. orchestration: the model DAG;
//! 5. face: [`cli`] and the [`dashboard`].
//!
//! The embedded demo source (`source`) and the benchmarks (`bench`) are
//! not the product: they are built with the `demo` feature (on by default).

#[cfg(feature = "demo")]
pub mod bench;
pub mod budget;
pub mod cli;
pub mod codec;
pub mod config;
pub mod dag;
pub mod das;
pub mod dashboard;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod join;
pub mod model;
pub mod project;
pub mod query;
pub mod scaffold;
#[cfg(feature = "demo")]
pub mod source;
pub mod storage;
pub mod telemetry;
pub mod tuning;

pub use error::{Error, ErrorKind, Result};
