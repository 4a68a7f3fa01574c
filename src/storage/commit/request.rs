//! The write request and what a commit reports back: [`Write`] with its
//! [`WriteMode`], [`KeyMatch`]es and [`SchemaPolicy`], and
//! [`CommitOutcome`]. Plain values: nothing here touches the warehouse, so
//! every other module of the commit may use them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::error::Result;

/// What a write does to the rows already in the table.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace all rows (and adopt the batch schema).
    Overwrite,
    /// Replace the rows whose key (these columns) appears in the new rows;
    /// keep every other row untouched.
    Upsert { keys: Vec<String> },
    /// Merge-on-read: delete (with position deletes) the rows matching any
    /// of `matches`, then add the new rows.
    Replace { matches: Vec<KeyMatch> },
    /// Compaction, a rewrite that changes no live row: the data files named
    /// in `remove` leave the table and the new rows (exactly their live
    /// rows) come in; with `merged_deletes`, every position delete file
    /// leaves too and one file holding these positions (data file, sorted
    /// positions) replaces them. Committed as an Iceberg `replace`
    /// snapshot. Fails with [`crate::error::ErrorKind::CommitConflict`]
    /// when the table's current snapshot is no longer `base`: the rows were
    /// read there.
    Compact {
        base: i64,
        remove: Vec<String>,
        merged_deletes: Option<Vec<(String, Vec<i64>)>>,
    },
}

/// Which existing rows a [`WriteMode::Replace`] deletes: rows whose values
/// in the key columns equal one of the key tuples. NULL never equals
/// anything, and a base file lacking a key column has no matching row.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    /// The tuples of these columns found in the new rows (an upsert).
    NewRows(Vec<String>),
    /// These tuples: the batch's columns name the key columns, each row is
    /// one tuple.
    Values(RecordBatch),
}

impl KeyMatch {
    pub(super) fn columns(&self) -> Vec<String> {
        match self {
            KeyMatch::NewRows(c) => c.clone(),
            KeyMatch::Values(b) => b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        }
    }
}

impl WriteMode {
    pub(super) fn name(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Upsert { .. } => "upsert",
            WriteMode::Replace { .. } => "replace",
            WriteMode::Compact { .. } => "compact",
        }
    }
}

/// How a write treats a batch schema that differs from the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaPolicy {
    /// The batch must have exactly the table's columns (overwrite always
    /// adopts the batch schema).
    #[default]
    Strict,
    /// New columns in the batch are added to the table (as optional columns);
    /// table columns the batch lacks are filled with NULL if optional.
    AddColumns,
}

/// A write request.
#[derive(Debug, Clone)]
pub struct Write {
    pub mode: WriteMode,
    /// Extra snapshot-summary properties committed with the rows.
    pub properties: BTreeMap<String, String>,
    pub schema_policy: SchemaPolicy,
    /// Give up after this many lost races.
    pub max_attempts: usize,
    /// Write each batch to data files of its own (never two batches in one
    /// file), so a reader filtering on what tells the batches apart can
    /// skip whole files by their statistics.
    pub file_per_batch: bool,
    /// Write the new rows sorted by these columns (ascending, NULLs first;
    /// not with `file_per_batch`) in small pages (see [`writer_properties`]):
    /// a replace's search, and a scan restricted to key values, then decode
    /// only the pages whose min/max may hold one of the keys.
    ///
    /// [`writer_properties`]: super::files::writer_properties
    pub sort_by: Vec<String>,
    /// Keep the new rows in this process's cache for a reader of this
    /// commit's added rows (append and replace only: their added files hold
    /// exactly the new rows; see [`crate::storage::added`]).
    pub keep_added: bool,
    /// Data files are closed and new ones started past this size (bytes,
    /// encoded); `None`: the warehouse's ([`Warehouse::target_file_size`]).
    ///
    /// [`Warehouse::target_file_size`]: crate::storage::Warehouse::target_file_size
    pub target_file_size: Option<usize>,
    /// Snapshot properties whose values are known only once every new row
    /// has been written (e.g. the largest load time among streamed rows):
    /// each function is called once, after the last row, before staging
    /// (`None`: the property is not set).
    pub deferred: Vec<(String, Deferred)>,
    /// Commit nothing (not even the properties) when there are no new rows
    /// (an append or replace streaming rows that may all be filtered out).
    pub only_with_rows: bool,
}

/// A snapshot property value computed after the last row (see
/// [`Write::deferred`]).
#[derive(Clone)]
pub struct Deferred(pub Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred(..)")
    }
}

impl Write {
    /// A write of the given mode with default settings.
    pub fn new(mode: WriteMode) -> Self {
        Self {
            mode,
            properties: BTreeMap::new(),
            schema_policy: SchemaPolicy::Strict,
            max_attempts: 100,
            file_per_batch: false,
            sort_by: Vec::new(),
            keep_added: false,
            target_file_size: None,
            deferred: Vec::new(),
            only_with_rows: false,
        }
    }
    pub fn append() -> Self {
        Self::new(WriteMode::Append)
    }
    pub fn overwrite() -> Self {
        Self::new(WriteMode::Overwrite)
    }
    pub fn upsert<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self::new(WriteMode::Upsert {
            keys: keys.into_iter().map(Into::into).collect(),
        })
    }
    /// Merge-on-read upsert: the rows whose `keys` appear in the new rows are
    /// deleted with position deletes, then the new rows are added.
    pub fn merge<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self::new(WriteMode::Replace {
            matches: vec![KeyMatch::NewRows(
                keys.into_iter().map(Into::into).collect(),
            )],
        })
    }
    /// Merge-on-read: delete the rows matching any of `matches`, add the new rows.
    pub fn replace(matches: Vec<KeyMatch>) -> Self {
        Self::new(WriteMode::Replace { matches })
    }
    /// Add a snapshot-summary property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
    pub fn schema_policy(mut self, policy: SchemaPolicy) -> Self {
        self.schema_policy = policy;
        self
    }
    /// See [`Write::file_per_batch`].
    pub fn file_per_batch(mut self) -> Self {
        self.file_per_batch = true;
        self
    }
    /// See [`Write::keep_added`].
    pub fn keep_added(mut self) -> Self {
        self.keep_added = true;
        self
    }
    /// A property computed after the last row (see [`Write::deferred`]).
    pub fn deferred_property(
        mut self,
        key: impl Into<String>,
        value: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.deferred.push((key.into(), Deferred(Arc::new(value))));
        self
    }
    /// See [`Write::only_with_rows`].
    pub fn only_with_rows(mut self) -> Self {
        self.only_with_rows = true;
        self
    }
    /// See [`Write::target_file_size`].
    pub fn target_file_size(mut self, bytes: usize) -> Self {
        self.target_file_size = Some(bytes.max(1));
        self
    }
    /// See [`Write::sort_by`].
    pub fn sorted_by<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.sort_by = columns.into_iter().map(Into::into).collect();
        self
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The new snapshot, or `None` when there was nothing to commit.
    pub snapshot_id: Option<i64>,
    /// The metadata version now current.
    pub version: u64,
    pub added_rows: u64,
    pub removed_rows: u64,
    /// Attempts made (1 = no conflict).
    pub attempts: usize,
    /// The write mode: `append`, `overwrite`, `upsert`, `replace` or `compact`.
    pub mode: &'static str,
}

/// Test hook: called at named points of a commit; returning an error aborts
/// the commit there, as a crash would.
pub type FailPoint = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;
