//! Extraction: read a source's resources (OData or REST JSON) into Arrow
//! batches and land them.
//!
//! - [`client`]: one client per source, whatever it speaks;
//! - [`http`]: the HTTP both kinds share: retries, credentials, rate limit;
//! - [`rest`]: the REST JSON client: record selector, paginators, cursor
//!   parameter;
//! - [`page`]: one page's rows, checked and converted to a batch;
//! - [`naming`]: API member names to snake_case column names.
//! - [`schema`]: JSON rows to record batches of the landed layout
//!   ([`crate::das`]; unknown members kept as extra `Utf8` columns).
//! - [`odata`]: the OData client: `$filter`/`$orderby` cursor,
//!   `@odata.nextLink` paging, a `$count` cross-check, one [`page::Page`] (a
//!   record batch plus the page's maximum cursor value) at a time;
//! - [`metadata`]: a service's `$metadata` (CSDL) read into entity sets,
//!   keys and typed properties, and written for a source config;
//! - [`paging`]: what the client refuses of a faulty service's pages (a next
//!   link to another origin or back to a page read, a repeated page, a NULL
//!   key).
//!
//! # Where the load metadata goes
//! The extractor's batches carry only source data. The loader ([`land`])
//! appends, per load, the load columns of [`crate::das`] (load id, load
//! time in UTC, per-load row sequence; decisions D1, D4) to each page's
//! batch before committing it, and records the page's
//! [`page::Page::max_cursor`] with the commit so the next load resumes from
//! it ([`odata::Cursor::After`]).

pub mod client;
pub mod http;
pub mod land;
pub mod landing;
pub mod metadata;
pub mod naming;
pub mod odata;
pub mod page;
pub mod paging;
pub mod rest;
pub mod schema;

pub use client::SourceClient;
pub use http::RetryPolicy;
pub use odata::{Cursor, Extracted, ODataClient};
pub use page::Page;
