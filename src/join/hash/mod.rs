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
//! index ([`KeyIndex`](table::KeyIndex)): for one integer key whose joinable values span at
//! most `4 * rows + 1024` values, a *dense* array indexed by `key - min`
//! (exact: no hashing, no key comparison, at most 16 bytes per row);
//! otherwise an open-addressing hash index ([`Slots`](table::Slots): linear probing on
//! [`hash_key`](keys::hash_key) of the key bytes, an integer's being its 8 little-endian
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
//!
//! # Layout
//!
//! `keys` evaluates one side's join columns (keys, bounds, joinability) and
//! hashes key bytes; `table` holds the built [`HashTable`] (its key index
//! and group arena); `build` makes it from the right input; `lookup` finds
//! the candidates of a chunk of left rows in it; `probe` is the left side's
//! stream; `metrics` names what both sides record.

mod build;
mod keys;
mod lookup;
mod metrics;
mod probe;
mod table;

pub(crate) use build::build_table;
pub(crate) use keys::{KeyMode, SideExprs};
pub(crate) use metrics::hash_metrics;
pub(crate) use probe::{HashProbeStream, ProbeSpec};
pub(crate) use table::HashTable;
