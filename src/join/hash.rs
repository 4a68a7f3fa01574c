//! The hash strategy of [`super::exec::PitJoinExec`]: build a key-grouped
//! table of the right input, stream the left input through it unsorted.
//!
//! # Build ([`build_table`])
//!
//! The right input (one partition: all of it for `strategy=hash`, one hash
//! partition for `strategy=partitioned_hash`) is collected into memory
//! under a `MemoryReservation` of the task's memory pool; if it does not fit
//! the query fails with a `ResourcesExhausted` error naming the `sort`
//! strategy, which spills. The batches are concatenated and the join
//! columns evaluated once:
//!
//! * keys ([`KeyMode`]): one integer key column (`Int8`..`Int64`,
//!   `UInt8`..`UInt32`) as its `i64` value, with no conversion; any other
//!   keys as arrow `Rows` (so any number and type of key columns compare as
//!   bytes; equal keys have equal bytes);
//! * bounds encoded as order-preserving `i64` ([`super::bounds`]);
//! * rows with a NULL key or NULL bound are *not joinable* and left out:
//!   they can never satisfy the equality or the range comparisons.
//!
//! Each joinable row gets a *group id* (one per distinct key) from the key
//! index ([`KeyIndex`]): for one integer key whose joinable values span at
//! most `4 * rows + 1024` values, a *dense* array indexed by `key - min`
//! (exact: no hashing, no key comparison, at most 16 bytes per row);
//! otherwise an open-addressing hash index ([`Slots`]: linear probing on
//! [`hash_key`] of the key bytes, an integer's being its 8 little-endian
//! bytes; distinct keys with equal hashes take distinct slots and are told
//! apart by their bytes). A counting sort by group id then lays the groups
//! out, each as one contiguous record of an `i64` arena: row count, tree
//! base, key length, key bytes (packed into words), then the group's starts,
//! its ends and its right row numbers, each in `(start, end)` order (the
//! sort is skipped when the group already is sorted, e.g. SCD2 histories
//! stored in order); the starts right after the header, so a probe's binary
//! search mostly reads cache lines the header read brought in. Groups whose
//! ends are not monotone also get a max-segment-tree over their ends
//! ([`super::search`]). The index then maps each key to its group's arena
//! offset. Cost O(m log g) for m rows and the largest group g; memory: the
//! right batch, 24 bytes per joinable row plus about 40 per key (hashed) or
//! 4 per value of the key range (dense).
//!
//! # Probe ([`HashProbeStream`])
//!
//! The left input streams batch by batch, in any order and partitioning.
//! For each batch the keys are looked up in phases over chunks of its rows
//! (dense: read every row's slot; hashed: hash every key, read every first
//! slot, confirm every key against its group's record; then read every
//! group's header), so that the cache misses of many rows overlap instead of
//! being paid one after the other; rows with a NULL key or bound, and keys
//! absent on the right, get no group. Then, row by row, the candidates in the group
//! are exactly the right rows satisfying both range comparisons, found by the
//! binary searches (or tree descent) of [`super::search`]. Candidate pairs
//! and left-join markers are collected as (left row, right row) indices, at
//! most `batch_size` per output batch (a row with more candidates continues
//! in the next batch), and gathered with arrow's `take` ([`super::output`]
//! applies the residual filter, intersection columns and projection). The
//! table is immutable and shared, so any number of left partitions probe it
//! concurrently. Pending output only ever references the current left
//! batch: it is flushed before the next one is read.
//!
//! Hence each left row meets exactly the right rows with an equal non-NULL
//! key and satisfying both comparisons, each once: the same pairs as the
//! sort strategy, and as DataFusion's hash join of the same predicate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array, new_null_array};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, Time,
};
use futures::StreamExt;
use futures::future::BoxFuture;

use super::bounds::encode_bounds;
use super::logical::PitJoinType;
use super::output::{JoinState, OutputBuilder, OutputSpec, into_stream};
use super::search::{is_monotone, max_tree_query, push_max_tree};

/// Hash of a key's row-format bytes: a multiply-rotate mix over 8-byte
/// words and a final avalanche (murmur3's `fmix64`), so every output bit
/// depends on every input bit (the index uses the low bits). Equal keys
/// have equal bytes, hence equal hashes; distinct keys may collide, which
/// the index resolves by comparing the keys.
#[inline]
pub(crate) fn hash_key(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let tail = chunks
        .remainder()
        .iter()
        .enumerate()
        .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
    h = (h ^ tail).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    (h ^ (h >> 33)) & HASH_MASK
}

/// Bits of [`hash_key`] kept: all of them, except in this crate's unit tests,
/// which narrow hashes to 2 bits so that distinct keys collide and the
/// collision handling of [`Slots`] is exercised.
#[cfg(not(test))]
const HASH_MASK: u64 = u64::MAX;
#[cfg(test)]
const HASH_MASK: u64 = 0b11;

/// Pack key bytes into little-endian words (zero-padded), the form in which
/// the table stores keys.
#[inline]
fn pack_key(bytes: &[u8], out: &mut Vec<i64>) {
    out.clear();
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        out.push(i64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let w = rest
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
        out.push(w as i64);
    }
}

/// Value of an empty slot.
const EMPTY: u64 = u64::MAX;

/// Open-addressing index from key hash to a value (a group id while
/// building, the group's arena offset afterwards): linear probing, at most
/// half full, so a lookup ends at an empty slot. Distinct keys with equal
/// hashes take distinct slots; lookups confirm the key with `eq`.
struct Slots {
    slots: Vec<(u64, u64)>,
    mask: usize,
    len: usize,
}

impl Slots {
    fn with_capacity(n: usize) -> Self {
        let cap = (n.max(8) * 2).next_power_of_two();
        Self {
            slots: vec![(0, EMPTY); cap],
            mask: cap - 1,
            len: 0,
        }
    }

    #[cfg(test)]
    fn get(&self, hash: u64, eq: impl FnMut(u64) -> bool) -> Option<u64> {
        self.get_from(hash as usize, hash, eq)
    }

    /// [`Self::get`], probing from slot `start` (masked) on.
    #[inline]
    fn get_from(&self, start: usize, hash: u64, mut eq: impl FnMut(u64) -> bool) -> Option<u64> {
        let mut i = start & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY {
                return None;
            }
            if h == hash && eq(v) {
                return Some(v);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// `(slot, value)` of the first slot holding `hash`, or `(_, EMPTY)` if
    /// there is none (then no key with this hash is present).
    #[inline]
    fn first(&self, hash: u64) -> (usize, u64) {
        let mut i = hash as usize & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY || h == hash {
                return (i, v);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The value of the key, inserting `value` if it is absent.
    fn get_or_insert(&mut self, hash: u64, mut eq: impl FnMut(u64) -> bool, value: u64) -> u64 {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut i = hash as usize & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY {
                self.slots[i] = (hash, value);
                self.len += 1;
                return value;
            }
            if h == hash && eq(v) {
                return v;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![(0, EMPTY); cap]);
        self.mask = cap - 1;
        for (h, v) in old.into_iter().filter(|&(_, v)| v != EMPTY) {
            let mut i = h as usize & self.mask;
            while self.slots[i].1 != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = (h, v);
        }
    }

    fn mem(&self) -> usize {
        self.slots.capacity() * 16
    }
}

/// Slot of an absent key in [`KeyIndex::Dense`].
const NO_SLOT: u32 = u32::MAX;

/// Key → group lookup of a [`HashTable`].
enum KeyIndex {
    /// Key hash → value, keys confirmed against the group records.
    Hashed(Slots),
    /// [`KeyMode::Int`] keys within `min..min + slots.len()`: key `k` →
    /// `slots[k - min]` ([`NO_SLOT`] when absent). Exact: no hashing and no
    /// key comparison. Chosen when the keys are dense enough that the array
    /// takes at most 16 bytes per joinable row (plus 4 KiB), less than the
    /// hashed index and the arena.
    Dense { min: i64, slots: Vec<u32> },
}

impl KeyIndex {
    fn mem(&self) -> usize {
        match self {
            Self::Hashed(slots) => slots.mem(),
            Self::Dense { slots, .. } => slots.capacity() * 4,
        }
    }
}

/// The dense slot of `key`, if it lies within `min..min + len`.
#[inline]
fn dense_slot(key: i64, min: i64, len: usize) -> Option<usize> {
    // `checked_sub` fails only for differences beyond i64, far out of range.
    key.checked_sub(min)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|&d| d < len)
}

/// `(min, len)` of a dense index over the joinable keys, if they are dense
/// enough (see [`KeyIndex::Dense`]); `None` when there are none.
fn dense_range(cols: &JoinColumns, n: usize) -> Option<(i64, usize)> {
    let Keys::Int(values) = &cols.keys else {
        return None;
    };
    let (mut min, mut max, mut joinable) = (i64::MAX, i64::MIN, 0usize);
    for (i, &k) in values.iter().enumerate().take(n) {
        if cols.joinable(i) {
            min = min.min(k);
            max = max.max(k);
            joinable += 1;
        }
    }
    if joinable == 0 {
        return None;
    }
    let len = usize::try_from(max.checked_sub(min)?)
        .ok()?
        .checked_add(1)?;
    (len <= 4 * joinable + 1024).then_some((min, len))
}

/// Words before a group's key in the arena: row count, tree base (or -1),
/// key length in bytes.
const HEADER: usize = 3;

/// A group's place in the arena.
#[derive(Debug, Clone, Copy)]
struct GroupView {
    /// Arena index of the group's first start: version `j` has its start
    /// at `data + j`, its end at `data + len + j` and its right row at
    /// `data + 2 * len + j`.
    data: usize,
    len: usize,
    /// `(base, leaf count)` of the group's max-tree in `trees` when its ends
    /// are not monotone.
    tree: Option<(usize, usize)>,
}

/// The right input grouped by key; immutable once built.
///
/// Each group is one record in `arena` (so a lookup touches few cache
/// lines): `[len, tree base or -1, key length in bytes, key words...,
/// starts..., ends..., right rows...]`, with the rows sorted by (start,
/// end). The starts follow the header, so the binary search over them
/// mostly reads the cache lines the header read already brought in.
pub(crate) struct HashTable {
    /// All right rows (including non-joinable ones, never referenced).
    batch: RecordBatch,
    /// Key → arena offset of the group.
    index: KeyIndex,
    arena: Vec<i64>,
    trees: Vec<i64>,
    groups: usize,
    joinable_rows: usize,
    /// Bytes held (as reserved).
    mem: usize,
    /// Partition whose task built the table (its metrics carry the build).
    built_by: usize,
    _reservation: MemoryReservation,
}

impl std::fmt::Debug for HashTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashTable")
            .field("right_rows", &self.batch.num_rows())
            .field("joinable_rows", &self.joinable_rows)
            .field("groups", &self.groups)
            .field("mem", &self.mem)
            .finish()
    }
}

impl HashTable {
    /// Whether the group at `off` has this key (`len` bytes packed as
    /// `words`).
    #[inline]
    fn key_matches(&self, off: usize, len: usize, words: &[i64]) -> bool {
        self.arena.get(off + 2) == Some(&(len as i64))
            && self.arena.get(off + HEADER..off + HEADER + words.len()) == Some(words)
    }

    /// Arena offset of the group with this key (hash, length in bytes,
    /// packed words); the probe uses the batched [`lookup_groups`].
    #[cfg(test)]
    fn find(&self, hash: u64, len: usize, words: &[i64]) -> Option<usize> {
        match &self.index {
            KeyIndex::Hashed(index) => index
                .get(hash, |off| self.key_matches(off as usize, len, words))
                .map(|off| off as usize),
            KeyIndex::Dense { .. } => None,
        }
    }

    #[inline]
    fn group(&self, off: usize) -> GroupView {
        let len = self.arena[off] as usize;
        let tree = self.arena[off + 1];
        let key_len = self.arena[off + 2] as usize;
        GroupView {
            data: off + HEADER + key_len.div_ceil(8),
            len,
            tree: (tree >= 0).then(|| (tree as usize, len.next_power_of_two())),
        }
    }

    /// Bytes held by the table.
    pub(crate) fn mem(&self) -> usize {
        self.mem
    }

    /// Whether no right row can match (the table has no group).
    fn is_empty(&self) -> bool {
        self.groups == 0
    }
}

/// The join columns of one side.
#[derive(Clone)]
pub(crate) struct SideExprs {
    pub keys: Vec<PhysicalExprRef>,
    pub start: PhysicalExprRef,
    pub end: PhysicalExprRef,
}

/// How a table's keys are represented, decided by the key types alone (so
/// both sides agree: their key types are equal).
#[derive(Debug, Clone)]
pub(crate) enum KeyMode {
    /// Any keys, in arrow's row format.
    Rows(Vec<SortField>),
    /// One integer key column that widens to `i64` without loss (`Int8` to
    /// `Int64`, `UInt8` to `UInt32`): compared as its `i64` value, with no
    /// row conversion. Its "key bytes" (for hashing and the arena record)
    /// are the value's 8 little-endian bytes.
    Int,
}

impl KeyMode {
    /// The mode for keys of these types.
    pub(crate) fn for_types(types: Vec<DataType>) -> Self {
        match types.as_slice() {
            [t] if is_int_key(t) => Self::Int,
            _ => Self::Rows(types.into_iter().map(SortField::new).collect()),
        }
    }
}

/// Whether a key column of this type takes [`KeyMode::Int`].
fn is_int_key(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// Evaluated keys of a batch.
enum Keys {
    Rows(Rows),
    /// [`KeyMode::Int`]: the values (arbitrary under NULL).
    Int(ScalarBuffer<i64>),
}

impl Keys {
    /// Row-format bytes of row `i` ([`KeyMode::Rows`] only).
    #[inline]
    fn bytes(rows: &Rows, i: usize) -> &[u8] {
        rows.row(i).data()
    }

    /// Hash of row `i`'s key bytes ([`hash_key`]).
    #[inline]
    fn hash(&self, i: usize) -> u64 {
        match self {
            Self::Rows(rows) => hash_key(Self::bytes(rows, i)),
            Self::Int(v) => hash_key(&v[i].to_le_bytes()),
        }
    }

    /// Whether rows `a` and `b` have equal keys.
    #[inline]
    fn eq(&self, a: usize, b: usize) -> bool {
        match self {
            Self::Rows(rows) => Self::bytes(rows, a) == Self::bytes(rows, b),
            Self::Int(v) => v[a] == v[b],
        }
    }

    /// Pack row `i`'s key bytes into `out` ([`pack_key`]); returns their
    /// length.
    #[inline]
    fn pack(&self, i: usize, out: &mut Vec<i64>) -> usize {
        match self {
            Self::Rows(rows) => {
                let bytes = Self::bytes(rows, i);
                pack_key(bytes, out);
                bytes.len()
            }
            Self::Int(v) => {
                out.clear();
                out.push(v[i]);
                8
            }
        }
    }

    /// Length of row `i`'s key bytes.
    #[inline]
    fn len_of(&self, i: usize) -> usize {
        match self {
            Self::Rows(rows) => Self::bytes(rows, i).len(),
            Self::Int(_) => 8,
        }
    }

    fn mem(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.size(),
            // Zero-copy for Int64 keys; a widened copy otherwise.
            Self::Int(v) => v.len() * 8,
        }
    }
}

/// Evaluated join columns of a batch.
struct JoinColumns {
    keys: Keys,
    /// Row has non-NULL keys and bounds.
    joinable: Option<NullBuffer>,
    start: Vec<i64>,
    end: Vec<i64>,
}

impl JoinColumns {
    fn evaluate(batch: &RecordBatch, exprs: &SideExprs, keys: &KeyEncoder) -> Result<Self> {
        let n = batch.num_rows();
        let mut joinable: Option<NullBuffer> = None;
        let mut key_arrays = Vec::with_capacity(exprs.keys.len());
        for e in &exprs.keys {
            let a = e.evaluate(batch)?.into_array(n)?;
            joinable = NullBuffer::union(joinable.as_ref(), a.logical_nulls().as_ref());
            key_arrays.push(a);
        }
        let keys = match keys {
            KeyEncoder::Rows(converter) => Keys::Rows(converter.convert_columns(&key_arrays)?),
            KeyEncoder::Int => {
                let [key] = key_arrays.as_slice() else {
                    return Err(DataFusionError::Internal(
                        "PitJoin: integer key mode with several keys".into(),
                    ));
                };
                // Lossless for the types of `is_int_key`.
                let wide = cast(key, &DataType::Int64)?;
                let values = wide.as_primitive_opt::<Int64Type>().ok_or_else(|| {
                    DataFusionError::Internal("PitJoin: integer key did not widen".into())
                })?;
                Keys::Int(values.values().clone())
            }
        };
        let mut start = Vec::new();
        let sn = encode_bounds(&exprs.start.evaluate(batch)?.into_array(n)?, &mut start)?;
        joinable = NullBuffer::union(joinable.as_ref(), sn.as_ref());
        let mut end = Vec::new();
        let en = encode_bounds(&exprs.end.evaluate(batch)?.into_array(n)?, &mut end)?;
        joinable = NullBuffer::union(joinable.as_ref(), en.as_ref());
        Ok(Self {
            keys,
            joinable,
            start,
            end,
        })
    }

    #[inline]
    fn joinable(&self, row: usize) -> bool {
        self.joinable.as_ref().is_none_or(|n| n.is_valid(row))
    }

    fn mem(&self) -> usize {
        self.keys.mem() + (self.start.capacity() + self.end.capacity()) * 8
    }
}

/// Evaluates keys in a [`KeyMode`].
enum KeyEncoder {
    Rows(RowConverter),
    Int,
}

impl KeyEncoder {
    fn new(mode: &KeyMode) -> Result<Self> {
        Ok(match mode {
            KeyMode::Rows(fields) => Self::Rows(RowConverter::new(fields.clone())?),
            KeyMode::Int => Self::Int,
        })
    }
}

/// Metrics recorded by the build, on the partition that runs it.
#[derive(Clone)]
pub(crate) struct BuildMetrics {
    pub right_rows: Count,
    pub build_time: Time,
    pub elapsed_compute: Time,
    pub peak_mem: Gauge,
}

/// The error of a failed reservation, saying what to do about it.
fn out_of_memory(e: DataFusionError) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "PIT join (hash strategy) cannot hold its right input in memory: {e}. \
         Use SET lakehouse.pit_join.strategy = 'sort' (its sorts spill to disk), \
         or raise the memory limit"
    ))
}

/// Grow `reservation` by `bytes`.
fn reserve(reservation: &mut MemoryReservation, bytes: usize) -> Result<()> {
    reservation.try_grow(bytes).map_err(out_of_memory)
}

/// Set `reservation` to `bytes`.
fn resize(reservation: &mut MemoryReservation, bytes: usize) -> Result<()> {
    reservation.try_resize(bytes).map_err(out_of_memory)
}

/// Collect `input` and build its [`HashTable`]; see the module docs.
pub(crate) async fn build_table(
    mut input: SendableRecordBatchStream,
    exprs: SideExprs,
    key_mode: KeyMode,
    pool: Arc<dyn MemoryPool>,
    partition: usize,
    metrics: BuildMetrics,
) -> Result<HashTable> {
    let schema = input.schema();
    let mut reservation =
        MemoryConsumer::new(format!("PitJoinHashBuild[{partition}]")).register(&pool);
    let mut compute = Duration::ZERO;
    let mut batches = Vec::new();
    let mut collected = 0;
    loop {
        let next = input.next().await;
        let t = Instant::now();
        let Some(batch) = next else { break };
        let batch = batch?;
        if batch.num_rows() > 0 {
            let size = batch.get_array_memory_size();
            reserve(&mut reservation, size)?;
            collected += size;
            metrics.right_rows.add(batch.num_rows());
            batches.push(batch);
        }
        compute += t.elapsed();
    }
    let t = Instant::now();
    let batch = if batches.len() == 1 {
        batches.swap_remove(0)
    } else {
        // The concatenated copy coexists with the collected batches.
        reserve(&mut reservation, collected)?;
        let out = concat_batches(&schema, &batches)?;
        drop(batches);
        out
    };
    let batch_mem = batch.get_array_memory_size();
    resize(&mut reservation, batch_mem)?;

    let n = batch.num_rows();
    if u32::try_from(n).is_err() {
        return Err(DataFusionError::ResourcesExhausted(
            "PIT join (hash strategy): more than 2^32 - 1 right rows in one table".into(),
        ));
    }
    let encoder = KeyEncoder::new(&key_mode)?;
    let cols = JoinColumns::evaluate(&batch, &exprs, &encoder)?;
    // Transient: the evaluated columns and the group id of every row.
    reserve(&mut reservation, cols.mem() + n * 4)?;

    let mut index = match dense_range(&cols, n) {
        Some((min, len)) => {
            reserve(&mut reservation, len * 4)?;
            KeyIndex::Dense {
                min,
                slots: vec![NO_SLOT; len],
            }
        }
        None => KeyIndex::Hashed(Slots::with_capacity(n.min(1024))),
    };
    // Group ids, in order of first appearance; `reps[g]` is a row of group g.
    let mut group_of = vec![u32::MAX; n];
    let mut counts: Vec<usize> = Vec::new();
    let mut reps: Vec<usize> = Vec::new();
    let mut prev: Option<(u32, usize)> = None;
    let keys = &cols.keys;
    for (i, slot) in group_of.iter_mut().enumerate() {
        if !cols.joinable(i) {
            continue;
        }
        // Consecutive rows of one key (common: histories are stored by key)
        // skip the lookup.
        let g = match prev {
            Some((g, p)) if keys.eq(p, i) => g,
            _ => {
                // `n < u32::MAX`, so a group id is below `NO_SLOT`.
                let new = counts.len() as u32;
                let g = match (&mut index, keys) {
                    (KeyIndex::Hashed(slots), _) => slots.get_or_insert(
                        keys.hash(i),
                        |g| keys.eq(reps[g as usize], i),
                        u64::from(new),
                    ) as u32,
                    (KeyIndex::Dense { min, slots }, Keys::Int(values)) => {
                        let d = dense_slot(values[i], *min, slots.len()).ok_or_else(|| {
                            DataFusionError::Internal("PitJoin: key outside its dense index".into())
                        })?;
                        if slots[d] == NO_SLOT {
                            slots[d] = new;
                        }
                        slots[d]
                    }
                    (KeyIndex::Dense { .. }, Keys::Rows(_)) => {
                        return Err(DataFusionError::Internal(
                            "PitJoin: dense index over row-format keys".into(),
                        ));
                    }
                };
                if g == new {
                    counts.push(0);
                    reps.push(i);
                }
                g
            }
        };
        *slot = g;
        counts[g as usize] += 1;
        prev = Some((g, i));
    }

    // Counting sort of the joinable rows by group id.
    let n_groups = counts.len();
    let mut next = Vec::with_capacity(n_groups);
    let mut total = 0usize;
    for &c in &counts {
        next.push(total);
        total += c;
    }
    let mut grouped = vec![0u32; total];
    for (i, &g) in group_of.iter().enumerate() {
        if g != u32::MAX {
            let at = &mut next[g as usize];
            grouped[*at] = i as u32;
            *at += 1;
        }
    }
    drop(group_of);

    // One arena record per group: rows sorted by (start, end), a tree when
    // the ends are not monotone.
    let key_words: usize = reps.iter().map(|&r| keys.len_of(r).div_ceil(8)).sum();
    let arena_len = n_groups * HEADER + key_words + 3 * total;
    reserve(&mut reservation, arena_len * 8 + total * 4)?;
    let (start, end) = (&cols.start, &cols.end);
    let mut arena: Vec<i64> = Vec::with_capacity(arena_len);
    let mut trees = Vec::new();
    let mut offsets = Vec::with_capacity(n_groups);
    let mut words = Vec::new();
    let mut ends = Vec::new();
    let mut group_start = 0;
    for (g, &count) in counts.iter().enumerate() {
        let slice = &mut grouped[group_start..group_start + count];
        group_start += count;
        let key = |&r: &u32| (start[r as usize], end[r as usize]);
        if !slice.windows(2).all(|p| key(&p[0]) <= key(&p[1])) {
            slice.sort_unstable_by_key(key);
        }
        let off = arena.len();
        offsets.push(off as u64);
        let key_len = keys.pack(reps[g], &mut words);
        arena.extend_from_slice(&[count as i64, -1, key_len as i64]);
        arena.extend_from_slice(&words);
        arena.extend(slice.iter().map(|&r| start[r as usize]));
        ends.clear();
        ends.extend(slice.iter().map(|&r| end[r as usize]));
        arena.extend_from_slice(&ends);
        arena.extend(slice.iter().map(|&r| i64::from(r)));
        if !is_monotone(&ends) {
            let base = trees.len();
            push_max_tree(&ends, &mut trees);
            arena[off + 1] = base as i64;
        }
    }
    drop(grouped);
    drop(cols);
    // The index now maps to arena offsets.
    match &mut index {
        KeyIndex::Hashed(slots) => {
            for slot in slots.slots.iter_mut().filter(|s| s.1 != EMPTY) {
                slot.1 = offsets[slot.1 as usize];
            }
        }
        KeyIndex::Dense { slots, .. } => {
            if arena.len() >= NO_SLOT as usize {
                return Err(DataFusionError::ResourcesExhausted(
                    "PIT join (hash strategy): right input too large for one table".into(),
                ));
            }
            for slot in slots.iter_mut().filter(|s| **s != NO_SLOT) {
                *slot = offsets[*slot as usize] as u32;
            }
        }
    }
    let mem = batch_mem + index.mem() + (arena.capacity() + trees.capacity()) * 8;
    resize(&mut reservation, mem)?;
    compute += t.elapsed();
    metrics.build_time.add_duration(compute);
    metrics.elapsed_compute.add_duration(compute);
    metrics.peak_mem.set_max(mem);
    Ok(HashTable {
        batch,
        index,
        arena,
        trees,
        groups: n_groups,
        joinable_rows: total,
        mem,
        built_by: partition,
        _reservation: reservation,
    })
}

/// The table of a probe stream, built by it or shared with other partitions.
pub(crate) type TableFuture = BoxFuture<'static, Result<Arc<HashTable>>>;

/// The current left batch with its evaluated join columns.
struct ProbeBatch {
    batch: RecordBatch,
    cols: JoinColumns,
    /// The order in which rows are looked up and emitted, when it is not
    /// the batch order: sorted by (group, end) so that rows of one large
    /// group follow each other and their binary searches share cached
    /// lines ([`sorts_probe_rows`]).
    order: Option<Vec<u32>>,
    /// The group of every row, when `order` is set (found to sort them).
    groups: Vec<usize>,
    /// The candidates of the rows looked up so far (a prefix of the batch
    /// in processing order: `spans[i]` is row `order[i]`, or row `i`).
    spans: Vec<Span>,
    /// Next position (in processing order) to emit (`<= spans.len()`).
    next_row: usize,
    mem: usize,
}

impl ProbeBatch {
    /// The row at position `i` of the processing order.
    #[inline]
    fn row(&self, i: usize) -> usize {
        self.order.as_ref().map_or(i, |o| o[i] as usize)
    }
}

/// Average group size from which the probe sorts each left batch by group
/// first: then a group's starts span several cache lines, and the sort
/// (O(n log n) per batch, cached) lets the rows of one group reuse them
/// instead of each paying its own misses. Below it most rows of a batch
/// have distinct groups and the sort would buy nothing.
const SORT_PROBE_MIN_GROUP: usize = 16;

/// Whether probes of `table` sort their left batches by group.
fn sorts_probe_rows(table: &HashTable) -> bool {
    table.joinable_rows >= SORT_PROBE_MIN_GROUP * table.groups.max(1)
}

/// Where a left row's candidates are.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Arena offset of the row's group, or [`NO_GROUP`].
    group: usize,
    /// Monotone group: the candidates are the group's positions `lo..hi`.
    /// Tree group (`lo == TREE`): `hi` is the start prefix `p` to query.
    lo: usize,
    hi: usize,
}

/// [`Span::lo`] of a group searched with its max-tree.
const TREE: usize = usize::MAX;

/// A left row without a group (not joinable, or key absent on the right).
const NO_GROUP: usize = usize::MAX;

/// Rows looked up at a time: enough for their cache misses to overlap, few
/// enough that the index slots and group records they touched are still
/// cached when the rows are emitted.
const LOOKUP_CHUNK: usize = 256;

/// The number of leading `j < len` satisfying `pred` (which holds on a
/// prefix of `0..len`), by binary search.
#[inline]
fn partition_point_by(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The smallest `lo <= p` such that `ok` holds on all of `lo..p`, where `ok`
/// fails on a prefix of `0..p` and holds on the rest: an exponential search
/// down from `p`, so it reads only versions near `p` (already cached by the
/// start search) when the matches are few. O(log(p - lo)).
#[inline]
fn gallop_down(p: usize, ok: impl Fn(usize) -> bool) -> usize {
    let mut hi = p; // `ok` holds on hi..p
    let mut step = 1;
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if ok(probe) {
            hi = probe;
            step *= 2;
        } else {
            // The answer is in probe + 1..=hi.
            let from = probe + 1;
            return from + partition_point_by(hi - from, |i| !ok(from + i));
        }
    }
    0
}

/// Reused buffers of [`lookup_spans`].
#[derive(Default)]
struct LookupScratch {
    hashes: Vec<u64>,
    first: Vec<(usize, u64)>,
    groups: Vec<usize>,
    views: Vec<GroupView>,
    words: Vec<i64>,
}

/// Append to `out` the span of each row in `rows`, in phases: find every
/// row's group (dense index: one array read; hashed index: hash all keys,
/// read each hash's first slot, confirm the keys against the group
/// records); then binary-search each row's range in its group. Each phase
/// is a short loop whose iterations are independent, so the cache misses of
/// many rows overlap (one row at a time would wait for each miss in turn).
fn lookup_spans<I: Iterator<Item = usize> + Clone>(
    table: &HashTable,
    cols: &JoinColumns,
    rows: I,
    known_groups: Option<&[usize]>,
    (start_inclusive, end_inclusive): (bool, bool),
    scratch: &mut LookupScratch,
    out: &mut Vec<Span>,
) -> Result<()> {
    let LookupScratch {
        hashes,
        first,
        groups,
        views,
        words,
    } = scratch;
    groups.clear();
    match known_groups {
        Some(known) => groups.extend(rows.clone().map(|r| known[r])),
        None => find_groups(table, cols, rows.clone(), hashes, first, words, groups)?,
    }
    // Read every group's header first: independent loads whose cache
    // misses overlap, and they bring in the first starts too.
    views.clear();
    views.extend(groups.iter().map(|&group| {
        if group == NO_GROUP {
            GroupView {
                data: 0,
                len: 0,
                tree: None,
            }
        } else {
            table.group(group)
        }
    }));
    let arena = &table.arena;
    out.extend(
        rows.zip(groups.iter().zip(views.iter()))
            .map(|(r, (&group, &g))| {
                if group == NO_GROUP {
                    return Span {
                        group,
                        lo: 0,
                        hi: 0,
                    };
                }
                let d = g.data;
                let (ls, le) = (cols.start[r], cols.end[r]);
                let p = if start_inclusive {
                    partition_point_by(g.len, |j| arena[d + j] <= le)
                } else {
                    partition_point_by(g.len, |j| arena[d + j] < le)
                };
                let e = d + g.len;
                let lo = match g.tree {
                    None if end_inclusive => gallop_down(p, |j| ls <= arena[e + j]),
                    None => gallop_down(p, |j| ls < arena[e + j]),
                    Some(_) => TREE,
                };
                Span { group, lo, hi: p }
            }),
    );
    Ok(())
}

/// Append to `groups` the arena offset of each row's group ([`NO_GROUP`]
/// for rows that are not joinable or whose key is absent), in phases (see
/// [`lookup_spans`]).
fn find_groups<I: Iterator<Item = usize> + Clone>(
    table: &HashTable,
    cols: &JoinColumns,
    rows: I,
    hashes: &mut Vec<u64>,
    first: &mut Vec<(usize, u64)>,
    words: &mut Vec<i64>,
    groups: &mut Vec<usize>,
) -> Result<()> {
    match (&table.index, &cols.keys) {
        (KeyIndex::Dense { min, slots }, Keys::Int(values)) => {
            groups.extend(rows.clone().map(|r| {
                if !cols.joinable(r) {
                    return NO_GROUP;
                }
                match dense_slot(values[r], *min, slots.len()).map(|d| slots[d]) {
                    Some(off) if off != NO_SLOT => off as usize,
                    _ => NO_GROUP,
                }
            }));
        }
        (KeyIndex::Dense { .. }, Keys::Rows(_)) => {
            return Err(DataFusionError::Internal(
                "PitJoin: dense index probed with row-format keys".into(),
            ));
        }
        (KeyIndex::Hashed(index), keys) => {
            hashes.clear();
            hashes.extend(rows.clone().map(|r| keys.hash(r)));
            first.clear();
            first.extend(rows.clone().zip(hashes.iter()).map(|(r, &h)| {
                if cols.joinable(r) {
                    index.first(h)
                } else {
                    (NO_GROUP, EMPTY)
                }
            }));
            for (i, r) in rows.clone().enumerate() {
                let (slot, off) = first[i];
                if off == EMPTY {
                    groups.push(NO_GROUP);
                    continue;
                }
                let len = keys.pack(r, words);
                let found = if table.key_matches(off as usize, len, words) {
                    Some(off as usize)
                } else {
                    // Another key with the same hash took that slot: probe on.
                    index
                        .get_from(slot + 1, hashes[i], |o| {
                            table.key_matches(o as usize, len, words)
                        })
                        .map(|o| o as usize)
                };
                groups.push(found.unwrap_or(NO_GROUP));
            }
        }
    }
    Ok(())
}

/// Candidates of a left row that did not fit in the current output batch.
struct Work {
    row: usize,
    /// Arena index of the group's right rows.
    rows: usize,
    /// Next candidate: a position in the group (range mode) or an index
    /// into `scratch` (list mode), which holds positions in the group.
    next: usize,
    hi: usize,
    list: bool,
}

/// Pending output rows of the current left batch.
#[derive(Default)]
struct Pending {
    left: Vec<u32>,
    /// Right row; unused (0) on markers.
    right: Vec<u32>,
    marker: Vec<bool>,
}

impl Pending {
    fn len(&self) -> usize {
        self.left.len()
    }
    fn is_empty(&self) -> bool {
        self.left.is_empty()
    }
    fn push(&mut self, left: usize, right: u32) {
        self.left.push(left as u32);
        self.right.push(right);
        self.marker.push(false);
    }
    fn push_marker(&mut self, left: usize) {
        self.left.push(left as u32);
        self.right.push(0);
        self.marker.push(true);
    }
}

struct ProbeMetrics {
    baseline: BaselineMetrics,
    left_rows: Count,
    candidates: Count,
    probe_time: Time,
    output_time: Time,
    peak_mem: Gauge,
}

/// Metrics of the hash strategy for `partition`: build and probe side.
pub(crate) fn hash_metrics(
    metrics: &ExecutionPlanMetricsSet,
    partition: usize,
) -> (BuildMetrics, BaselineMetrics, [Count; 2], [Time; 2]) {
    let baseline = BaselineMetrics::new(metrics, partition);
    let build = BuildMetrics {
        right_rows: MetricBuilder::new(metrics).counter("right_input_rows", partition),
        build_time: MetricBuilder::new(metrics).subset_time("build_time", partition),
        elapsed_compute: baseline.elapsed_compute().clone(),
        peak_mem: MetricBuilder::new(metrics).gauge("peak_mem_used", partition),
    };
    let counts = [
        MetricBuilder::new(metrics).counter("left_input_rows", partition),
        MetricBuilder::new(metrics).counter("candidate_pairs", partition),
    ];
    let times = [
        MetricBuilder::new(metrics).subset_time("probe_time", partition),
        MetricBuilder::new(metrics).subset_time("build_output_time", partition),
    ];
    (build, baseline, counts, times)
}

impl JoinState for HashProbeStream {
    fn next_batch<'a>(
        &'a mut self,
        wait: &'a mut Duration,
    ) -> BoxFuture<'a, Result<Option<RecordBatch>>> {
        Box::pin(self.produce(wait))
    }

    fn timing(
        &mut self,
    ) -> (
        &BaselineMetrics,
        &Time,
        &mut Duration,
        &mut MemoryReservation,
    ) {
        (
            &self.metrics.baseline,
            &self.metrics.probe_time,
            &mut self.flush_time,
            &mut self.reservation,
        )
    }
}

/// Probe state of one output partition; see the module docs.
pub(crate) struct HashProbeStream {
    table_future: Option<TableFuture>,
    table: Option<Arc<HashTable>>,
    left: SendableRecordBatchStream,
    exprs: SideExprs,
    encoder: KeyEncoder,
    start_inclusive: bool,
    end_inclusive: bool,
    join_type: PitJoinType,
    has_filter: bool,
    batch_size: usize,
    partition: usize,
    current: Option<ProbeBatch>,
    work: Option<Work>,
    scratch: Vec<u32>,
    stack: Vec<(usize, usize, usize)>,
    lookup: LookupScratch,
    pending: Pending,
    output: OutputBuilder,
    reservation: MemoryReservation,
    metrics: ProbeMetrics,
    /// Time spent in output assembly during the current poll.
    flush_time: Duration,
}

/// Everything [`HashProbeStream::try_new`] needs.
pub(crate) struct ProbeSpec {
    pub left: SendableRecordBatchStream,
    pub table: TableFuture,
    pub exprs: SideExprs,
    pub key_mode: KeyMode,
    pub start_inclusive: bool,
    pub end_inclusive: bool,
    pub join_type: PitJoinType,
    pub output: OutputSpec,
    pub batch_size: usize,
    pub pool: Arc<dyn MemoryPool>,
    pub partition: usize,
    pub baseline: BaselineMetrics,
    /// `left_input_rows`, `candidate_pairs`.
    pub counts: [Count; 2],
    /// `probe_time`, `build_output_time`.
    pub times: [Time; 2],
    /// `peak_mem_used`.
    pub peak_mem: Gauge,
}

impl HashProbeStream {
    /// The output stream of one partition.
    pub(crate) fn try_new(spec: ProbeSpec) -> Result<SendableRecordBatchStream> {
        let schema: SchemaRef = Arc::clone(&spec.output.schema);
        let [left_rows, candidates] = spec.counts;
        let [probe_time, output_time] = spec.times;
        let reservation = MemoryConsumer::new(format!("PitJoinHashProbe[{}]", spec.partition))
            .register(&spec.pool);
        let state = HashProbeStream {
            table_future: Some(spec.table),
            table: None,
            left: spec.left,
            exprs: spec.exprs,
            encoder: KeyEncoder::new(&spec.key_mode)?,
            start_inclusive: spec.start_inclusive,
            end_inclusive: spec.end_inclusive,
            join_type: spec.join_type,
            has_filter: spec.output.filter.is_some(),
            batch_size: spec.batch_size.max(1),
            partition: spec.partition,
            current: None,
            work: None,
            scratch: Vec::new(),
            stack: Vec::new(),
            lookup: LookupScratch::default(),
            pending: Pending::default(),
            output: OutputBuilder::new(spec.output),
            reservation,
            metrics: ProbeMetrics {
                baseline: spec.baseline,
                left_rows,
                candidates,
                probe_time,
                output_time,
                peak_mem: spec.peak_mem,
            },
            flush_time: Duration::ZERO,
        };
        Ok(into_stream(schema, state))
    }

    fn track_memory(&mut self) -> Result<()> {
        let probe = self.current.as_ref().map_or(0, |c| c.mem)
            + self.pending.left.capacity() * 9
            + self.scratch.capacity() * 4;
        self.reservation.try_resize(probe)?;
        let table = self
            .table
            .as_ref()
            .filter(|t| t.built_by == self.partition)
            .map_or(0, |t| t.mem());
        self.metrics.peak_mem.set_max(table + probe);
        Ok(())
    }

    /// Produce the next output batch, or `None` at the end. `wait` collects
    /// time spent waiting for inputs (including the table build of another
    /// partition).
    async fn produce(&mut self, wait: &mut Duration) -> Result<Option<RecordBatch>> {
        let table = match &self.table {
            Some(t) => Arc::clone(t),
            None => {
                let Some(fut) = self.table_future.take() else {
                    return Err(DataFusionError::Internal(
                        "PitJoin: hash table future polled twice".into(),
                    ));
                };
                let t = Instant::now();
                let table = fut.await?;
                *wait += t.elapsed();
                self.table = Some(Arc::clone(&table));
                self.track_memory()?;
                table
            }
        };
        loop {
            // Every step below pushes at most the remaining room.
            if self.pending.len() >= self.batch_size {
                if let Some(b) = self.flush(&table)? {
                    return Ok(Some(b));
                }
                continue;
            }
            if let Some(w) = self.work.as_mut() {
                let row = w.row;
                if w.next >= w.hi {
                    self.work = None;
                    // Candidates existed (a work item is only made for a
                    // non-empty list that did not fit).
                    if self.join_type == PitJoinType::Left && self.has_filter {
                        self.pending.push_marker(row);
                    }
                    continue;
                }
                let room = self.batch_size - self.pending.len();
                let n = room.min(w.hi - w.next);
                let (from, list, rows) = (w.next, w.list, w.rows);
                w.next += n;
                self.metrics.candidates.add(n);
                for k in from..from + n {
                    let pos = if list { self.scratch[k] as usize } else { k };
                    self.pending.push(row, table.arena[rows + pos] as u32);
                }
                continue;
            }
            if let Some(c) = self.current.as_mut() {
                if c.next_row < c.spans.len() {
                    self.probe_run(&table);
                    continue;
                }
                let (from, n) = (c.spans.len(), c.batch.num_rows());
                if from < n {
                    let to = n.min(from + LOOKUP_CHUNK);
                    let inclusive = (self.start_inclusive, self.end_inclusive);
                    match &c.order {
                        Some(order) => lookup_spans(
                            &table,
                            &c.cols,
                            order[from..to].iter().map(|&r| r as usize),
                            Some(&c.groups),
                            inclusive,
                            &mut self.lookup,
                            &mut c.spans,
                        )?,
                        None => lookup_spans(
                            &table,
                            &c.cols,
                            from..to,
                            None,
                            inclusive,
                            &mut self.lookup,
                            &mut c.spans,
                        )?,
                    }
                    continue;
                }
            }
            // The current batch is done: its pending rows go out before the
            // next batch replaces it.
            if !self.pending.is_empty() {
                if let Some(b) = self.flush(&table)? {
                    return Ok(Some(b));
                }
                continue;
            }
            if self.join_type == PitJoinType::Inner && table.is_empty() {
                return Ok(None);
            }
            self.current = None;
            let t = Instant::now();
            let next = self.left.next().await;
            *wait += t.elapsed();
            let Some(batch) = next else {
                return Ok(None);
            };
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            self.metrics.left_rows.add(batch.num_rows());
            let cols = JoinColumns::evaluate(&batch, &self.exprs, &self.encoder)?;
            let n = batch.num_rows();
            let spans = Vec::with_capacity(n);
            let mut groups = Vec::new();
            let order = if sorts_probe_rows(&table) && u32::try_from(n).is_ok() {
                let LookupScratch {
                    hashes,
                    first,
                    words,
                    ..
                } = &mut self.lookup;
                groups.reserve(n);
                find_groups(&table, &cols, 0..n, hashes, first, words, &mut groups)?;
                let mut order: Vec<u32> = (0..n as u32).collect();
                order.sort_unstable_by_key(|&r| (groups[r as usize], cols.end[r as usize]));
                Some(order)
            } else {
                None
            };
            let mem = batch.get_array_memory_size()
                + cols.mem()
                + n * std::mem::size_of::<Span>()
                + groups.capacity() * 8
                + order.as_ref().map_or(0, |o| o.capacity() * 4);
            self.current = Some(ProbeBatch {
                batch,
                cols,
                order,
                groups,
                spans,
                next_row: 0,
                mem,
            });
            self.track_memory()?;
        }
    }

    /// Look up rows of the current batch until it is done, the output batch
    /// is full, or a row has more candidates than fit (it becomes `work`).
    fn probe_run(&mut self, table: &HashTable) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        let cols = &current.cols;
        let n = current.spans.len();
        let pending = &mut self.pending;
        let left_join = self.join_type == PitJoinType::Left;
        let always_marker = left_join && self.has_filter;
        let end_inclusive = self.end_inclusive;
        let batch_size = self.batch_size;
        let arena = &table.arena;
        let mut candidates = 0;
        let mut i = current.next_row;
        while i < n && pending.len() < batch_size {
            let span = current.spans[i];
            let r = current.row(i);
            i += 1;
            if span.group == NO_GROUP {
                if left_join {
                    pending.push_marker(r);
                }
                continue;
            }
            let g = table.group(span.group);
            let rows = g.data + 2 * g.len;
            let room = batch_size - pending.len();
            let (count, list) = match g.tree {
                Some((base, size)) if span.lo == TREE => {
                    self.scratch.clear();
                    max_tree_query(
                        &table.trees[base..base + 2 * size],
                        size,
                        span.hi,
                        cols.start[r],
                        end_inclusive,
                        &mut self.stack,
                        &mut self.scratch,
                    );
                    (self.scratch.len(), true)
                }
                _ => (span.hi - span.lo, false),
            };
            if count >= room {
                self.work = Some(if list {
                    Work {
                        row: r,
                        rows,
                        next: 0,
                        hi: count,
                        list,
                    }
                } else {
                    Work {
                        row: r,
                        rows,
                        next: span.lo,
                        hi: span.hi,
                        list,
                    }
                });
                break;
            }
            if list {
                for &pos in &self.scratch {
                    pending.push(r, arena[rows + pos as usize] as u32);
                }
            } else {
                for j in span.lo..span.hi {
                    pending.push(r, arena[rows + j] as u32);
                }
            }
            candidates += count;
            if always_marker || (left_join && count == 0) {
                pending.push_marker(r);
            }
        }
        current.next_row = i;
        self.metrics.candidates.add(candidates);
    }

    /// Gather the pending rows into an output batch (`None` if the residual
    /// filter removed all of them).
    fn flush(&mut self, table: &HashTable) -> Result<Option<RecordBatch>> {
        let t = Instant::now();
        let pending = std::mem::take(&mut self.pending);
        let n = pending.len();
        let Some(current) = self.current.as_ref() else {
            return Err(DataFusionError::Internal(
                "PitJoin: pending output without its left batch".into(),
            ));
        };
        let left_idx = UInt32Array::new(ScalarBuffer::from(pending.left), None);
        let markers = pending.marker.iter().filter(|&&m| m).count();
        let right_idx = if markers == 0 {
            Some(UInt32Array::new(ScalarBuffer::from(pending.right), None))
        } else if markers == n {
            None
        } else {
            let valid = NullBuffer::from(pending.marker.iter().map(|&m| !m).collect::<Vec<_>>());
            Some(UInt32Array::new(
                ScalarBuffer::from(pending.right),
                Some(valid),
            ))
        };
        let n_left = self.output.n_left();
        let left = &current.batch;
        let right = &table.batch;
        let batch = self
            .output
            .build(n, &pending.marker, |c| -> Result<ArrayRef> {
                if c < n_left {
                    return Ok(take(left.column(c).as_ref(), &left_idx, None)?);
                }
                let column = right.column(c - n_left);
                match &right_idx {
                    Some(idx) => Ok(take(column.as_ref(), idx, None)?),
                    // Only markers: all NULL (also when the table is empty).
                    None => Ok(new_null_array(column.data_type(), n)),
                }
            })?;
        self.pending = Pending {
            left: Vec::with_capacity(self.batch_size.min(n.max(16))),
            right: Vec::with_capacity(self.batch_size.min(n.max(16))),
            marker: Vec::with_capacity(self.batch_size.min(n.max(16))),
        };
        let spent = t.elapsed();
        self.metrics.output_time.add_duration(spent);
        self.flush_time += spent;
        self.track_memory()?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, UnboundedMemoryPool};
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use std::collections::BTreeMap;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("vf", DataType::Int64, true),
            Field::new("vt", DataType::Int64, true),
        ]))
    }

    type Row = (Option<i64>, Option<&'static str>, Option<i64>, Option<i64>);

    fn batches(rows: &[Row], chunk: usize) -> Vec<RecordBatch> {
        rows.chunks(chunk)
            .map(|c| {
                let cols: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(c.iter().map(|r| r.0).collect::<Vec<_>>())),
                    Arc::new(StringArray::from(c.iter().map(|r| r.1).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(c.iter().map(|r| r.2).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(c.iter().map(|r| r.3).collect::<Vec<_>>())),
                ];
                RecordBatch::try_new(schema(), cols).expect("batch")
            })
            .collect()
    }

    fn exprs() -> SideExprs {
        let s = schema();
        SideExprs {
            keys: vec![col("k", &s).expect("k"), col("s", &s).expect("s")],
            start: col("vf", &s).expect("vf"),
            end: col("vt", &s).expect("vt"),
        }
    }

    fn fields() -> Vec<SortField> {
        vec![
            SortField::new(DataType::Int64),
            SortField::new(DataType::Utf8),
        ]
    }

    async fn build(rows: &[Row], pool: Arc<dyn MemoryPool>) -> Result<HashTable> {
        let stream = futures::stream::iter(batches(rows, 7).into_iter().map(Ok));
        let input: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(schema(), stream));
        let metrics = ExecutionPlanMetricsSet::new();
        let (build_metrics, ..) = hash_metrics(&metrics, 0);
        build_table(
            input,
            exprs(),
            KeyMode::Rows(fields()),
            pool,
            0,
            build_metrics,
        )
        .await
    }

    /// Many keys over few hash values (2 bits in unit tests): every group
    /// is found through its chain, holds exactly its joinable rows sorted by
    /// (start, end), and has a tree exactly when its ends are not monotone.
    #[tokio::test]
    async fn groups_hold_exactly_their_rows_despite_hash_collisions() {
        let names = ["a", "b", "ccc", "a longer string key"];
        let mut rows: Vec<Row> = Vec::new();
        for i in 0..400i64 {
            let k = (i * 7) % 23;
            let s = names[(i % 4) as usize];
            let vf = (i * 37) % 101;
            let len = (i * 13) % 17 - 3;
            rows.push((Some(k), Some(s), Some(vf), Some(vf + len)));
        }
        rows.push((None, Some("a"), Some(0), Some(1)));
        rows.push((Some(1), None, Some(0), Some(1)));
        rows.push((Some(1), Some("a"), None, Some(1)));
        rows.push((Some(1), Some("a"), Some(0), None));
        let table = build(&rows, Arc::new(UnboundedMemoryPool::default()))
            .await
            .expect("build");
        // (start, end, right row) per key.
        type Versions = Vec<(i64, i64, u32)>;
        let mut expected: BTreeMap<(i64, &str), Versions> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let (Some(k), Some(s), Some(vf), Some(vt)) = *r {
                expected.entry((k, s)).or_default().push((vf, vt, i as u32));
            }
        }
        assert_eq!(table.groups, expected.len());
        assert_eq!(table.joinable_rows, 400);
        let converter = RowConverter::new(fields()).expect("converter");
        let find = |k: i64, s: &str| {
            let keys: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![k])),
                Arc::new(StringArray::from(vec![s])),
            ];
            let key_rows = converter.convert_columns(&keys).expect("rows");
            let key = key_rows.row(0);
            let mut words = Vec::new();
            pack_key(key.as_ref(), &mut words);
            table.find(hash_key(key.as_ref()), key.as_ref().len(), &words)
        };
        let mut trees = 0;
        for ((k, s), mut want) in expected {
            let off = find(k, s).expect("group of an existing key");
            let g = table.group(off);
            let (d, m) = (g.data, g.len);
            let got: Vec<(i64, i64, u32)> = (0..m)
                .map(|j| {
                    let a = &table.arena;
                    (a[d + j], a[d + m + j], a[d + 2 * m + j] as u32)
                })
                .collect();
            want.sort_by_key(|&(vf, vt, _)| (vf, vt));
            let bounds = |v: &[(i64, i64, u32)]| v.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>();
            assert_eq!(bounds(&got), bounds(&want), "key ({k}, {s})");
            let mut got_rows: Vec<u32> = got.iter().map(|x| x.2).collect();
            let mut want_rows: Vec<u32> = want.iter().map(|x| x.2).collect();
            got_rows.sort_unstable();
            want_rows.sort_unstable();
            assert_eq!(got_rows, want_rows, "key ({k}, {s})");
            let ends: Vec<i64> = got.iter().map(|x| x.1).collect();
            assert_eq!(g.tree.is_none(), is_monotone(&ends), "key ({k}, {s})");
            trees += usize::from(g.tree.is_some());
        }
        assert!(
            trees > 0,
            "the data should have groups with nested intervals"
        );
        // Absent keys (with colliding hashes: only 4 exist here) are not found.
        assert!(find(1000, "a").is_none());
        assert!(find(1, "zz").is_none());
        assert!(find(1, "a longer string key, longer").is_none());
    }

    /// One integer key: a dense index when the values are dense (exact
    /// lookups, no hashing), the hashed index over the values otherwise;
    /// either way each group holds exactly its key's joinable rows.
    #[tokio::test]
    async fn integer_keys_use_a_dense_index_only_when_dense() {
        for (scale, dense) in [(1i64, true), (1_000_000_007, false)] {
            let mut rows: Vec<Row> = (0..300i64)
                .map(|i| (Some((i % 50 - 20) * scale), Some("x"), Some(i), Some(i + 5)))
                .collect();
            rows.push((None, Some("x"), Some(0), Some(1)));
            rows.push((Some(3 * scale), Some("x"), None, Some(1)));
            let s = schema();
            let int_exprs = SideExprs {
                keys: vec![col("k", &s).expect("k")],
                start: col("vf", &s).expect("vf"),
                end: col("vt", &s).expect("vt"),
            };
            let stream = futures::stream::iter(batches(&rows, 7).into_iter().map(Ok));
            let input: SendableRecordBatchStream =
                Box::pin(RecordBatchStreamAdapter::new(schema(), stream));
            let metrics = ExecutionPlanMetricsSet::new();
            let (build_metrics, ..) = hash_metrics(&metrics, 0);
            let pool: Arc<dyn MemoryPool> = Arc::new(UnboundedMemoryPool::default());
            let table = build_table(input, int_exprs, KeyMode::Int, pool, 0, build_metrics)
                .await
                .expect("build");
            assert_eq!(
                matches!(table.index, KeyIndex::Dense { .. }),
                dense,
                "scale {scale}"
            );
            assert_eq!(table.groups, 50);
            assert_eq!(table.joinable_rows, 300);
            let find = |k: i64| match &table.index {
                KeyIndex::Dense { min, slots } => dense_slot(k, *min, slots.len())
                    .map(|d| slots[d])
                    .filter(|&o| o != NO_SLOT)
                    .map(|o| o as usize),
                KeyIndex::Hashed(_) => table.find(hash_key(&k.to_le_bytes()), 8, &[k]),
            };
            for g in 0..50i64 {
                let k = (g - 20) * scale;
                let off = find(k).expect("present key");
                let view = table.group(off);
                let mut got: Vec<u32> = (0..view.len)
                    .map(|j| table.arena[view.data + 2 * view.len + j] as u32)
                    .collect();
                got.sort_unstable();
                let want: Vec<u32> = (0..300u32).filter(|&i| i64::from(i) % 50 == g).collect();
                assert_eq!(got, want, "key {k}");
            }
            for absent in [-21 * scale, 30 * scale, 30 * scale + 7, i64::MIN, i64::MAX] {
                assert!(find(absent).is_none(), "key {absent}");
            }
        }
    }

    #[test]
    fn gallop_down_finds_the_first_of_the_satisfying_suffix() {
        let ends = [1, 3, 3, 5, 8, 8, 9, 12, 20];
        for p in 0..=ends.len() {
            for ls in 0..22 {
                for inclusive in [false, true] {
                    let ok = |j: usize| {
                        if inclusive {
                            ls <= ends[j]
                        } else {
                            ls < ends[j]
                        }
                    };
                    let expected = (0..p).find(|&j| ok(j)).unwrap_or(p);
                    assert_eq!(gallop_down(p, ok), expected, "p={p} ls={ls}");
                }
            }
        }
        assert_eq!(partition_point_by(5, |j| j < 3), 3);
        assert_eq!(partition_point_by(0, |_| true), 0);
    }

    #[tokio::test]
    async fn build_fails_with_a_resources_error_over_the_pool_limit() {
        let rows: Vec<Row> = (0..5000)
            .map(|i| (Some(i), Some("key"), Some(0), Some(1)))
            .collect();
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(16 * 1024));
        let err = build(&rows, Arc::clone(&pool))
            .await
            .expect_err("5000 rows do not fit in 16 KiB");
        assert!(
            matches!(err, DataFusionError::ResourcesExhausted(_)),
            "{err}"
        );
        assert!(
            err.to_string().contains("lakehouse.pit_join.strategy"),
            "{err}"
        );
        assert_eq!(pool.reserved(), 0, "a failed build releases its memory");
        let table = build(&rows[..10], Arc::clone(&pool)).await.expect("fits");
        assert_eq!(pool.reserved(), table.mem());
        drop(table);
        assert_eq!(pool.reserved(), 0);
    }
}
