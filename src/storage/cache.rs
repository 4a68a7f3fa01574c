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
//!   by theirs ([`FileCache::set_added_budget`]; the run sets a share of its
//!   memory limit). New rows make room by dropping the oldest kept ones
//!   (whose readers, earlier in the DAG, have most likely read them); rows
//!   larger than the whole budget are not kept. A miss reads the files.

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
/// Byte budget of the added rows kept (Arrow's in-memory size) unless the
/// run sets one ([`FileCache::set_added_budget`]).
const ADDED_ROWS_BYTES: usize = 256 * 1024 * 1024;

/// The added rows kept per (table location, snapshot id), each with its
/// insertion number and size.
#[derive(Debug)]
struct AddedRows {
    budget: usize,
    total: usize,
    next: u64,
    kept: HashMap<(String, i64), (u64, usize, Vec<RecordBatch>)>,
}

impl AddedRows {
    /// Drop the oldest rows kept until `bytes` more fit in the budget.
    fn make_room(&mut self, bytes: usize) {
        while self.total + bytes > self.budget {
            let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, (n, _, _))| *n)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, b, _)) = self.kept.remove(&oldest) {
                self.total -= b;
            }
        }
    }
}

impl Default for AddedRows {
    fn default() -> Self {
        Self {
            budget: ADDED_ROWS_BYTES,
            total: 0,
            next: 0,
            kept: HashMap::new(),
        }
    }
}

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

    /// Keep at most `bytes` of added rows from now on (what is kept past
    /// it goes, oldest first).
    pub fn set_added_budget(&self, bytes: usize) {
        let mut added = lock(&self.added);
        added.budget = bytes;
        added.make_room(0);
    }

    /// The byte budget of the added rows kept: a commit's rows larger than
    /// it are not worth gathering.
    pub fn added_budget(&self) -> usize {
        lock(&self.added).budget
    }

    /// Keep the rows snapshot `snapshot` of the table at `location` added
    /// (all of them: see the module's invariants), within the budget,
    /// dropping the oldest rows kept to make room.
    pub fn put_added(&self, location: &str, snapshot: i64, rows: &[RecordBatch]) {
        let bytes = memory_size(rows);
        let mut added = lock(&self.added);
        let a = &mut *added;
        // Only a table's newest snapshot is read that way: what was kept
        // for older ones of the same table goes.
        let total = &mut a.total;
        a.kept.retain(|(l, _), (_, b, _)| {
            let older = l == location;
            if older {
                *total -= *b;
            }
            !older
        });
        if bytes > a.budget {
            return;
        }
        a.make_room(bytes);
        a.total += bytes;
        a.next += 1;
        a.kept.insert(
            (location.to_string(), snapshot),
            (a.next, bytes, rows.to_vec()),
        );
    }

    /// The rows kept for snapshot `snapshot` of the table at `location`.
    pub fn added(&self, location: &str, snapshot: i64) -> Option<Vec<RecordBatch>> {
        let added = lock(&self.added);
        added
            .kept
            .get(&(location.to_string(), snapshot))
            .map(|(_, _, rows)| rows.clone())
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
        let both = lock(&c.added).total;
        c.put_added("t2", 2, &rows(7));
        assert!(c.added("t2", 1).is_none(), "dropped by the newer");
        assert_eq!(c.added("t2", 2).expect("kept")[0].num_rows(), 7);
        assert_eq!(
            lock(&c.added).total,
            both - memory_size(&rows(5)) + memory_size(&rows(7))
        );

        let big = (ADDED_ROWS_BYTES / 8) as i64 + 1;
        c.put_added("t3", 1, &rows(big));
        assert!(c.added("t3", 1).is_none(), "over the budget");
        c.put_added("t3", 2, &rows(10));
        assert_eq!(c.added("t3", 2).expect("kept")[0].num_rows(), 10);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// Under a budget set by the run, new rows push out the oldest kept
    /// (and only as many as needed); a lower budget drops the oldest too.
    #[test]
    fn added_rows_make_room_oldest_first() {
        let dir = std::env::temp_dir().join(format!("cache-{}", uuid::Uuid::new_v4()));
        let wh = crate::storage::Warehouse::open(dir.to_str().expect("path")).expect("warehouse");
        let c = wh.cache();
        let each = memory_size(&rows(100));
        c.set_added_budget(3 * each);
        assert_eq!(c.added_budget(), 3 * each);
        for (i, t) in ["t1", "t2", "t3"].into_iter().enumerate() {
            c.put_added(t, i as i64, &rows(100));
        }
        assert!(c.added("t1", 0).is_some() && c.added("t3", 2).is_some());
        c.put_added("t4", 3, &rows(100));
        assert!(c.added("t1", 0).is_none(), "the oldest made room");
        for (t, s) in [("t2", 1), ("t3", 2), ("t4", 3)] {
            assert_eq!(c.added(t, s).expect("kept")[0].num_rows(), 100, "{t}");
        }
        c.set_added_budget(each);
        assert!(c.added("t2", 1).is_none() && c.added("t3", 2).is_none());
        assert!(c.added("t4", 3).is_some(), "the newest stays");
        assert_eq!(lock(&c.added).total, each);
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
