//! In-process caches of immutable warehouse files.
//!
//! A run reads the same tables many times: every model loads its inputs,
//! scans them, and loads its own table again to commit. Parsing a table's
//! metadata and, above all, its Avro manifests (the Avro schema in each
//! manifest's header is parsed anew per file) would otherwise be repeated
//! per model and per table version.
//!
//! # Invariants
//!
//! - **Metadata.** An entry is keyed by the metadata file's location *and*
//!   holds the exact bytes it was built from; a hit requires the bytes just
//!   read to be equal. A table dropped and recreated (same location, new
//!   contents) therefore never hits a stale entry.
//! - **Manifests and manifest lists** are written once under a fresh UUID
//!   name and never rewritten, so a path identifies its contents for good.
//!   One iceberg [`ObjectCache`] (keyed by path) is shared by every table
//!   this warehouse loads (our patch of iceberg, see
//!   `vendor/iceberg/PATCHED.md`) and by our own commit code.
//! - Bounded: the table map by entry count (emptied when full: a miss only
//!   costs a re-read), the object cache by its byte budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use iceberg::io::{FileIO, ObjectCache};
use iceberg::spec::{Manifest, ManifestFile};
use iceberg::table::Table;

use crate::error::Result;

/// Tables kept (one entry per metadata file).
const MAX_TABLES: usize = 1024;
/// Byte budget of the shared object cache (iceberg's estimate).
const OBJECT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Caches shared by the clones of one [`super::Warehouse`].
#[derive(Debug)]
pub struct FileCache {
    tables: Mutex<HashMap<String, (Bytes, Table)>>,
    objects: Arc<ObjectCache>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FileCache {
    /// Empty caches reading through `io`.
    pub fn new(io: FileIO) -> Self {
        Self {
            tables: Mutex::default(),
            objects: Arc::new(ObjectCache::shared(io, OBJECT_CACHE_BYTES)),
        }
    }

    /// The manifest cache to build tables with.
    pub fn objects(&self) -> Arc<ObjectCache> {
        Arc::clone(&self.objects)
    }

    /// The table built from the metadata `bytes` read at `location`, if it
    /// was built before from the same bytes.
    pub fn table(&self, location: &str, bytes: &Bytes) -> Option<Table> {
        lock(&self.tables)
            .get(location)
            .filter(|(b, _)| b == bytes)
            .map(|(_, t)| t.clone())
    }

    /// Remember the table built from `bytes` at `location`.
    pub fn put_table(&self, location: String, bytes: Bytes, table: Table) {
        let mut tables = lock(&self.tables);
        if tables.len() >= MAX_TABLES && !tables.contains_key(&location) {
            tables.clear();
        }
        tables.insert(location, (bytes, table));
    }

    /// The manifest `file` refers to, parsed once per process.
    pub async fn manifest(&self, file: &ManifestFile) -> Result<Arc<Manifest>> {
        Ok(self.objects.get_manifest(file).await?)
    }
}
