//! Extraction: read a source's resources over OData into Arrow batches.
//!
//! - [`naming`]: API member names to snake_case column names.
//! - [`schema`]: curated types to Arrow and JSON rows to record batches
//!   (unknown members kept as extra `Utf8` columns).
//! - [`odata`]: the HTTP client: incremental cursor, server-driven paging,
//!   retries with backoff, one [`odata::Page`] (a record batch plus the
//!   page's maximum cursor value) at a time;
//! - [`metadata`]: a service's `$metadata` (CSDL) read into entity sets,
//!   keys and typed properties, and written for a source config;
//! - [`paging`]: what the client refuses of a faulty service's pages (a next
//!   link to another origin or back to a page read, a repeated page, a NULL
//!   key).
//!
//! # Where the load metadata goes
//! The extractor's batches carry only source data. The loader (storage
//! layer) appends, per load, the load id, the load time (UTC) and a per-load
//! row sequence (decisions D1, D4) to each page's batch before committing
//! it, and records the page's [`odata::Page::max_cursor`] with the commit so
//! the next load resumes from it ([`odata::Cursor::After`]).

pub mod land;
pub mod landing;
pub mod metadata;
pub mod naming;
pub mod odata;
pub mod paging;
pub mod schema;

pub use odata::{Cursor, Extracted, ODataClient, Page, RetryPolicy};
