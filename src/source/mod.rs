//! The embedded Adventure Works source: a deterministic data generator
//! ([`generator`]) served over a real local HTTP OData v4 endpoint
//! ([`server`]).
//!
//! Together they stand in for the public demo API so that extraction,
//! incremental loads and the whole pipeline can be tested offline, at any
//! size (`scale`), over any number of simulated days (`day`), with injected
//! HTTP failures. The generator produces only the data; the server applies
//! the source config's API names and the OData query options. At large
//! scales the generator can keep its append-only tables in a temporary
//! spill file instead of memory ([`SpillOptions`]).

mod cell;
mod defs;
pub mod generator;
pub mod server;
mod spill;
mod table;

pub use cell::Cell;
pub use generator::{DayDelta, Generator, GeneratorOptions, TableData};
pub use server::{Fault, FaultInjector, ServerHandle, ServerOptions, serve};
pub use spill::{SpillOptions, SpillStats};
pub use table::{ChunkCells, Rows};
