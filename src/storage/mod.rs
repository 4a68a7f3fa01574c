//! The warehouse: Iceberg tables on local disk or S3, with commits we own.
//!
//! - [`cache`]: in-process caches of parsed metadata and manifests;
//! - [`location`]: parsing a warehouse location and building its object store;
//! - [`io`]: Iceberg file IO over that object store;
//! - [`catalog`]: the serverless catalog (tables, versions, atomic pointer);
//! - [`schema`]: Arrow/Iceberg schema mapping and batch validation;
//! - [`commit`]: append / overwrite / upsert snapshots with a retry loop;
//! - [`provider`]: the table provider of every scan, which knows its table and snapshot;
//! - [`read`]: DataFusion registration, scans and time travel;
//! - [`restrict`]: scans restricted to key values, pushed into the Iceberg scan;
//! - [`sink`]: new rows streamed into rolling Parquet data files as they are computed;
//! - [`upkeep`]: compaction, snapshot expiry and orphan removal per table.
//!
//! This floor knows tables, snapshots and commits, never hooks or models.

pub mod added;
pub mod cache;
pub mod catalog;
pub mod commit;
pub mod io;
pub mod local;
pub mod location;
pub mod provider;
pub mod read;
pub mod restrict;
pub mod schema;
pub mod sink;
pub mod upkeep;

pub use catalog::{LoadedTable, TableName, Warehouse};
pub use commit::{CommitOutcome, SchemaPolicy, Write, WriteMode};
pub use location::{LocalReads, WarehouseUrl};
pub use read::AsOf;
pub use sink::Part;
