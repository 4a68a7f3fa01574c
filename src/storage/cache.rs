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
//! - **Added rows.** The rows a commit of this process added, kept when the
//!   commit asked (a model whose reader takes its last commit's rows, see
//!   [`crate::storage::added::rows_added_since`]), keyed by the table's
//!   location and the new snapshot's id. A snapshot id names one commit of
//!   one table, and the rows kept are exactly those its added data files
//!   hold, so a hit equals reading those files. Every reader gets them (a
//!   bridge's are read by its event bridge and its child bridges); a newer
//!   commit of the same table drops what was kept for older ones.
//! - Bounded: the table map by entry count (emptied when full: a miss only
//!   costs a re-read), the object cache by its byte budget, the added rows
//!   by theirs (rows past it are not kept: a miss reads the files).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::RecordBatch;
use bytes::Bytes;
use iceberg::io::{FileIO, ObjectCache};
use iceberg::spec::{Manifest, ManifestFile};
use iceberg::table::Table;

use crate::error::Result;

/// Tables kept (one entry per metadata file).
const MAX_TABLES: usize = 1024;
/// Byte budget of the shared object cache (iceberg's estimate).
const OBJECT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Byte budget of the added rows kept (Arrow's in-memory size).
const ADDED_ROWS_BYTES: usize = 256 * 1024 * 1024;

/// Rows kept per (table location, snapshot id), and their total size.
type AddedRows = (usize, HashMap<(String, i64), (usize, Vec<RecordBatch>)>);

/// Caches shared by the clones of one [`super::Warehouse`].
#[derive(Debug)]
pub struct FileCache {
    tables: Mutex<HashMap<String, (Bytes, Table)>>,
    objects: Arc<ObjectCache>,
    added: Mutex<AddedRows>,
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
            added: Mutex::default(),
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

    /// Keep the rows snapshot `snapshot` of the table at `location` added
    /// (all of them: see the module's invariants), within the budget.
    pub fn put_added(&self, location: &str, snapshot: i64, rows: &[RecordBatch]) {
        let bytes = memory_size(rows);
        let mut added = lock(&self.added);
        let (total, kept) = &mut *added;
        // Only a table's newest snapshot is read that way: what was kept
        // for older ones of the same table goes.
        kept.retain(|(l, _), (b, _)| {
            let older = l == location;
            if older {
                *total -= *b;
            }
            !older
        });
        if *total + bytes > ADDED_ROWS_BYTES {
            return;
        }
        *total += bytes;
        kept.insert((location.to_string(), snapshot), (bytes, rows.to_vec()));
    }

    /// The rows kept for snapshot `snapshot` of the table at `location`.
    pub fn added(&self, location: &str, snapshot: i64) -> Option<Vec<RecordBatch>> {
        let added = lock(&self.added);
        added
            .1
            .get(&(location.to_string(), snapshot))
            .map(|(_, rows)| rows.clone())
    }

    /// The manifest `file` refers to, parsed once per process.
    pub async fn manifest(&self, file: &ManifestFile) -> Result<Arc<Manifest>> {
        Ok(self.objects.get_manifest(file).await?)
    }
}

/// The memory `rows` hold, each buffer counted once: the unified bridge's
/// rows share one array of ghost records among ~150 columns, which
/// [`RecordBatch::get_array_memory_size`] would count ~150 times.
fn memory_size(rows: &[RecordBatch]) -> usize {
    fn visit(data: &arrow::array::ArrayData, seen: &mut std::collections::HashSet<usize>) -> usize {
        let mut bytes = 0;
        let buffers = data
            .buffers()
            .iter()
            .chain(data.nulls().map(|n| n.buffer()));
        for b in buffers {
            if seen.insert(b.as_ptr() as usize) {
                bytes += b.capacity();
            }
        }
        bytes
            + data
                .child_data()
                .iter()
                .map(|c| visit(c, seen))
                .sum::<usize>()
    }
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .flat_map(|b| b.columns())
        .map(|c| visit(&c.to_data(), &mut seen))
        .sum()
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array};

    use super::*;

    fn rows(n: i64) -> Vec<RecordBatch> {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        vec![RecordBatch::try_from_iter([("a", a)]).expect("batch")]
    }

    /// Added rows are read by every reader, per table and snapshot; a
    /// newer snapshot of a table drops the older one's (giving its size
    /// back); rows past the budget are not kept.
    #[test]
    fn added_rows_are_kept_per_table_and_snapshot() {
        let dir = std::env::temp_dir().join(format!("cache-{}", uuid::Uuid::new_v4()));
        let wh = crate::storage::Warehouse::open(dir.to_str().expect("path")).expect("warehouse");
        let c = wh.cache();
        c.put_added("t1", 1, &rows(3));
        c.put_added("t2", 1, &rows(5));
        assert!(c.added("t1", 2).is_none(), "another snapshot");
        assert_eq!(c.added("t1", 1).expect("kept")[0].num_rows(), 3);
        assert_eq!(c.added("t1", 1).expect("kept again")[0].num_rows(), 3);
        let both = lock(&c.added).0;
        c.put_added("t2", 2, &rows(7));
        assert!(c.added("t2", 1).is_none(), "dropped by the newer");
        assert_eq!(c.added("t2", 2).expect("kept")[0].num_rows(), 7);
        assert_eq!(
            lock(&c.added).0,
            both - memory_size(&rows(5)) + memory_size(&rows(7))
        );

        let big = (ADDED_ROWS_BYTES / 8) as i64 + 1;
        c.put_added("t3", 1, &rows(big));
        assert!(c.added("t3", 1).is_none(), "over the budget");
        c.put_added("t3", 2, &rows(10));
        assert_eq!(c.added("t3", 2).expect("kept")[0].num_rows(), 10);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A buffer shared by several columns (and batches) is counted once.
    #[test]
    fn shared_buffers_count_once() {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
        let b: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
        let one =
            memory_size(&[RecordBatch::try_from_iter([("a", Arc::clone(&a))]).expect("batch")]);
        assert!(one >= 8000, "{one}");
        let shared = RecordBatch::try_from_iter([("x", Arc::clone(&a)), ("y", Arc::clone(&a))])
            .expect("batch");
        assert_eq!(memory_size(&[shared.clone(), shared]), one);
        let apart = RecordBatch::try_from_iter([("x", a), ("y", b)]).expect("batch");
        assert_eq!(memory_size(&[apart]), 2 * one);
    }
}
