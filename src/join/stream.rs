//! The per-partition merge sweep of [`super::exec::PitJoinExec`]
//! (`strategy=sort`).
//!
//! # Input contract
//!
//! Both inputs arrive hash-partitioned on the keys and sorted by key (ASC,
//! NULLS FIRST), by DataFusion's (spilling) `SortExec`. The order within a
//! key is not required: each right key group is sorted by
//! `(right_start, right_end)` here, in memory (a no-op check when the input
//! already is, e.g. from an ordered source), and each left row is searched
//! independently in its group. Sorting by the key alone lets DataFusion use
//! its fast single-column sort for the usual one-key joins. Keys are compared as
//! arrow `Rows` built with the same sort options, so byte order equals sort
//! order; bounds are compared as order-preserving `i64` encodings
//! ([`super::bounds`]).
//!
//! # Algorithm
//!
//! A merge over keys. The right side is consumed one *key group* at a time
//! (all right rows with one key; rows with a NULL key or NULL bound are
//! dropped: they never match), sorted by (start, end). The left side streams
//! row by row in key order; for each row the right groups are advanced while
//! their key is smaller than the row's key. Since both sides are in the same
//! key order, when that stops the current group holds exactly the right rows
//! with the row's key, or (group key larger, or right side exhausted) no right
//! row has that key. A left row whose key or bound is NULL, or whose key has
//! no right group, has no candidates. Within the group the candidates are
//! found by the binary searches (or the max-segment-tree descent, when the
//! group's ends are not monotone) of [`super::search`], which also gives the
//! correctness argument: exactly the pairs satisfying key equality and both
//! range comparisons are produced, each once, with no assumption that
//! intervals are well formed. Cost per partition: the key sort (done
//! upstream), O(m log m) to sort a right group of m rows (O(m) when already
//! sorted), O(log m + matches) per left row (O((1 + matches) log m) on the
//! tree path): O((n + m) log(n + m) + output) overall.
//!
//! # Output and residual filter
//!
//! Candidate pairs are collected as (batch, row) references and gathered with
//! arrow's `interleave` kernel into batches of at most `batch_size` rows;
//! [`super::output`] applies the residual filter, the left-join markers
//! (every left row appears at least once, see there), intersection columns
//! and the projection.
//!
//! # Memory
//!
//! Buffered: the right key group (three vectors) and the input batches still
//! referenced by the group or by pending output (released after every output
//! batch, and output is flushed early when too many batches are pinned).
//! The total is registered with a `MemoryReservation` and reported as
//! `peak_mem_used`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow::buffer::NullBuffer;
use arrow::compute::{SortOptions, interleave};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
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
use super::range::PhysicalRange;
use super::search::{end_lower, is_monotone, max_tree_query, push_max_tree, start_prefix};

/// Flush pending output early when more input batches than this are pinned
/// by it on one side.
const MAX_PINNED_BATCHES: usize = 8;

/// One input batch with its join columns evaluated.
struct Prepared {
    batch: RecordBatch,
    keys: Rows,
    /// Row has non-NULL keys and bounds (can match at all).
    joinable: Option<NullBuffer>,
    start: Vec<i64>,
    end: Vec<i64>,
    mem: usize,
}

impl Prepared {
    #[inline]
    fn joinable(&self, row: usize) -> bool {
        self.joinable.as_ref().is_none_or(|n| n.is_valid(row))
    }
    fn len(&self) -> usize {
        self.batch.num_rows()
    }
}

/// One input with its buffered batches; batch ids are absolute, the front of
/// `batches` has id `base`.
struct Side {
    input: SendableRecordBatchStream,
    keys: Vec<PhysicalExprRef>,
    start: PhysicalExprRef,
    end: PhysicalExprRef,
    converter: RowConverter,
    batches: VecDeque<Prepared>,
    base: usize,
    mem: usize,
    rows_in: Count,
}

impl Side {
    /// Pull and prepare the next non-empty batch; false at end of input.
    async fn fetch(&mut self, wait: &mut Duration) -> Result<bool> {
        loop {
            let t = Instant::now();
            let next = self.input.next().await;
            *wait += t.elapsed();
            let batch = match next {
                None => return Ok(false),
                Some(b) => b?,
            };
            if batch.num_rows() == 0 {
                continue;
            }
            self.rows_in.add(batch.num_rows());
            let prepared = self.prepare(batch)?;
            self.mem += prepared.mem;
            self.batches.push_back(prepared);
            return Ok(true);
        }
    }

    fn prepare(&self, batch: RecordBatch) -> Result<Prepared> {
        let n = batch.num_rows();
        let mut joinable: Option<NullBuffer> = None;
        let mut key_arrays = Vec::with_capacity(self.keys.len());
        for e in &self.keys {
            let a = e.evaluate(&batch)?.into_array(n)?;
            joinable = NullBuffer::union(joinable.as_ref(), a.logical_nulls().as_ref());
            key_arrays.push(a);
        }
        let keys = self.converter.convert_columns(&key_arrays)?;
        let mut start = Vec::new();
        let mut end = Vec::new();
        let sa = self.start.evaluate(&batch)?.into_array(n)?;
        let sn = encode_bounds(&sa, &mut start)?;
        joinable = NullBuffer::union(joinable.as_ref(), sn.as_ref());
        let ea = self.end.evaluate(&batch)?.into_array(n)?;
        let en = encode_bounds(&ea, &mut end)?;
        joinable = NullBuffer::union(joinable.as_ref(), en.as_ref());
        let mem = batch.get_array_memory_size()
            + keys.size()
            + (start.capacity() + end.capacity()) * std::mem::size_of::<i64>()
            + n / 8;
        Ok(Prepared {
            batch,
            keys,
            joinable,
            start,
            end,
            mem,
        })
    }

    /// Drop buffered batches with id below `keep_from`.
    fn release_before(&mut self, keep_from: usize) {
        while self.base < keep_from {
            match self.batches.pop_front() {
                Some(b) => {
                    self.mem -= b.mem;
                    self.base += 1;
                }
                None => break,
            }
        }
    }

    fn get(&self, id: usize) -> Option<&Prepared> {
        id.checked_sub(self.base).and_then(|i| self.batches.get(i))
    }

    /// One past the id of the last buffered batch.
    fn end_id(&self) -> usize {
        self.base + self.batches.len()
    }
}

/// All joinable right rows of one key, sorted by (start, end).
#[derive(Default)]
struct RightGroup {
    key: Vec<u8>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// (batch id, row) of each row.
    refs: Vec<(usize, usize)>,
    /// Smallest batch id referenced by `refs` (they are not in id order
    /// once sorted by start).
    first_batch: Option<usize>,
    ends_sorted: bool,
    tree: Vec<i64>,
    tree_size: usize,
    /// Scratch for sorting the group.
    order: Vec<u32>,
    tmp: Vec<i64>,
    tmp_refs: Vec<(usize, usize)>,
}

impl RightGroup {
    fn clear(&mut self) {
        self.key.clear();
        self.starts.clear();
        self.ends.clear();
        self.refs.clear();
        self.first_batch = None;
    }

    /// Sort the group by (start, end) unless it already is (it arrives in
    /// input order, which is only sorted by key), then detect whether the
    /// ends are monotone and build the segment tree if they are not.
    fn finish(&mut self) {
        // Rows were collected in input order, so the first has the lowest id.
        self.first_batch = self.refs.first().map(|r| r.0);
        let n = self.starts.len();
        let sorted = (1..n)
            .all(|i| (self.starts[i - 1], self.ends[i - 1]) <= (self.starts[i], self.ends[i]));
        if !sorted {
            self.order.clear();
            self.order.extend(0..n as u32);
            let (starts, ends) = (&self.starts, &self.ends);
            self.order
                .sort_unstable_by_key(|&i| (starts[i as usize], ends[i as usize]));
            self.tmp.clear();
            self.tmp
                .extend(self.order.iter().map(|&i| self.starts[i as usize]));
            std::mem::swap(&mut self.starts, &mut self.tmp);
            self.tmp.clear();
            self.tmp
                .extend(self.order.iter().map(|&i| self.ends[i as usize]));
            std::mem::swap(&mut self.ends, &mut self.tmp);
            self.tmp_refs.clear();
            self.tmp_refs
                .extend(self.order.iter().map(|&i| self.refs[i as usize]));
            std::mem::swap(&mut self.refs, &mut self.tmp_refs);
        }
        self.ends_sorted = is_monotone(&self.ends);
        if !self.ends_sorted {
            self.tree.clear();
            self.tree_size = push_max_tree(&self.ends, &mut self.tree);
        }
    }

    fn mem(&self) -> usize {
        self.key.capacity()
            + (self.starts.capacity()
                + self.ends.capacity()
                + self.tree.capacity()
                + self.tmp.capacity())
                * 8
            + (self.refs.capacity() + self.tmp_refs.capacity()) * 16
            + self.order.capacity() * 4
    }

    /// Append to `out`, in increasing order, every `j < p` whose end satisfies
    /// `ls < e_j` (or `<=` when `inclusive`).
    fn tree_query(
        &self,
        p: usize,
        ls: i64,
        inclusive: bool,
        stack: &mut Vec<(usize, usize, usize)>,
        out: &mut Vec<u32>,
    ) {
        max_tree_query(&self.tree, self.tree_size, p, ls, inclusive, stack, out);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RightState {
    Unloaded,
    Group,
    Exhausted,
}

/// The candidates of the left row being processed.
struct Work {
    left: (usize, usize),
    /// Next position: index into `lo..hi` (range mode) or into `scratch`.
    next: usize,
    hi: usize,
    list: bool,
    had_candidates: bool,
}

struct Metrics {
    baseline: BaselineMetrics,
    left_rows: Count,
    right_rows: Count,
    candidates: Count,
    sweep_time: Time,
    output_time: Time,
    peak_mem: Gauge,
}

/// Pending output rows as references. Right slot 0 is the NULL row, slot
/// `id + 1` is right batch `id`.
#[derive(Default)]
struct Pending {
    left: Vec<(usize, usize)>,
    right: Vec<(usize, usize)>,
    marker: Vec<bool>,
}

impl Pending {
    fn len(&self) -> usize {
        self.left.len()
    }
    fn is_empty(&self) -> bool {
        self.left.is_empty()
    }
    fn clear(&mut self) {
        self.left.clear();
        self.right.clear();
        self.marker.clear();
    }
}

impl JoinState for PitJoinStream {
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
            &self.metrics.sweep_time,
            &mut self.flush_time,
            &mut self.reservation,
        )
    }
}

/// State of one output partition.
pub(crate) struct PitJoinStream {
    left: Side,
    right: Side,
    range: PhysicalRange,
    has_filter: bool,
    join_type: PitJoinType,
    output: OutputBuilder,
    batch_size: usize,
    /// Next left row to process.
    left_cursor: (usize, usize),
    /// Next unconsumed right row.
    right_cursor: (usize, usize),
    right_state: RightState,
    group: RightGroup,
    work: Option<Work>,
    scratch: Vec<u32>,
    stack: Vec<(usize, usize, usize)>,
    pending: Pending,
    /// One-row NULL arrays of the right columns (interleave slot 0).
    right_nulls: Vec<ArrayRef>,
    reservation: MemoryReservation,
    metrics: Metrics,
    flush_time: Duration,
}

impl PitJoinStream {
    /// Build the stream for one partition.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_new(
        left: SendableRecordBatchStream,
        right: SendableRecordBatchStream,
        on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
        range: PhysicalRange,
        filter: Option<PhysicalExprRef>,
        join_type: PitJoinType,
        intersection: bool,
        join_schema: SchemaRef,
        full_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
        context: &Arc<TaskContext>,
        partition: usize,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<SendableRecordBatchStream> {
        let left_schema = left.schema();
        let right_schema = right.schema();
        let opts = SortOptions {
            descending: false,
            nulls_first: true,
        };
        let fields = on
            .iter()
            .map(|(l, _)| {
                Ok(SortField::new_with_options(
                    l.data_type(&left_schema)?,
                    opts,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let left_keys = on.iter().map(|(l, _)| Arc::clone(l)).collect();
        let right_keys = on.iter().map(|(_, r)| Arc::clone(r)).collect();
        let m = Metrics {
            baseline: BaselineMetrics::new(metrics, partition),
            left_rows: MetricBuilder::new(metrics).counter("left_input_rows", partition),
            right_rows: MetricBuilder::new(metrics).counter("right_input_rows", partition),
            candidates: MetricBuilder::new(metrics).counter("candidate_pairs", partition),
            sweep_time: MetricBuilder::new(metrics).subset_time("sweep_time", partition),
            output_time: MetricBuilder::new(metrics).subset_time("build_output_time", partition),
            peak_mem: MetricBuilder::new(metrics).gauge("peak_mem_used", partition),
        };
        let left_side = Side {
            input: left,
            keys: left_keys,
            start: Arc::clone(&range.left_start),
            end: Arc::clone(&range.left_end),
            converter: RowConverter::new(fields.clone())?,
            batches: VecDeque::new(),
            base: 0,
            mem: 0,
            rows_in: m.left_rows.clone(),
        };
        let right_side = Side {
            input: right,
            keys: right_keys,
            start: Arc::clone(&range.right_start),
            end: Arc::clone(&range.right_end),
            converter: RowConverter::new(fields)?,
            batches: VecDeque::new(),
            base: 0,
            mem: 0,
            rows_in: m.right_rows.clone(),
        };
        let right_nulls = right_schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        let reservation = MemoryConsumer::new(format!("PitJoinStream[{partition}]"))
            .register(context.memory_pool());
        let state = PitJoinStream {
            left: left_side,
            right: right_side,
            has_filter: filter.is_some(),
            output: OutputBuilder::new(OutputSpec {
                range: range.clone(),
                filter,
                intersection,
                join_schema,
                full_schema,
                projection,
                schema: Arc::clone(&schema),
                n_left: left_schema.fields().len(),
            }),
            range,
            join_type,
            batch_size: context.session_config().batch_size().max(1),
            left_cursor: (0, 0),
            right_cursor: (0, 0),
            right_state: RightState::Unloaded,
            group: RightGroup::default(),
            work: None,
            scratch: Vec::new(),
            stack: Vec::new(),
            pending: Pending::default(),
            right_nulls,
            reservation,
            metrics: m,
            flush_time: Duration::ZERO,
        };
        Ok(into_stream(schema, state))
    }

    fn track_memory(&mut self) -> Result<()> {
        let total = self.left.mem
            + self.right.mem
            + self.group.mem()
            + self.pending.left.capacity() * 33
            + self.scratch.capacity() * 4;
        self.reservation.try_resize(total)?;
        self.metrics.peak_mem.set_max(total);
        Ok(())
    }

    /// Release batches not referenced by the group, the cursors or pending
    /// output.
    fn release(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        let left_keep = match &self.work {
            Some(w) => w.left.0.min(self.left_cursor.0),
            None => self.left_cursor.0,
        };
        self.left.release_before(left_keep);
        let right_keep = match self.group.first_batch {
            Some(id) if self.right_state == RightState::Group => id.min(self.right_cursor.0),
            _ => self.right_cursor.0,
        };
        self.right.release_before(right_keep);
    }

    /// Load the next right key group after the cursor, or mark the right side
    /// exhausted.
    async fn load_next_group(&mut self, wait: &mut Duration) -> Result<()> {
        self.group.clear();
        // Find the first joinable row.
        loop {
            let (id, row) = self.right_cursor;
            let Some(b) = self.right.get(id) else {
                if !self.right.fetch(wait).await? {
                    self.right_state = RightState::Exhausted;
                    return self.track_memory();
                }
                continue;
            };
            let mut r = row;
            while r < b.len() && !b.joinable(r) {
                r += 1;
            }
            if r < b.len() {
                self.right_cursor = (id, r);
                self.group.key.extend_from_slice(b.keys.row(r).as_ref());
                break;
            }
            self.right_cursor = (id + 1, 0);
            if self.pending.is_empty() {
                self.right.release_before(id + 1);
            }
        }
        // Collect the group.
        loop {
            let (id, row) = self.right_cursor;
            let Some(b) = self.right.get(id) else {
                if !self.right.fetch(wait).await? {
                    break;
                }
                continue;
            };
            let mut r = row;
            let n = b.len();
            while r < n {
                if b.keys.row(r).as_ref() != self.group.key.as_slice() {
                    break;
                }
                if b.joinable(r) {
                    self.group.starts.push(b.start[r]);
                    self.group.ends.push(b.end[r]);
                    self.group.refs.push((id, r));
                }
                r += 1;
            }
            if r < n {
                self.right_cursor = (id, r);
                break;
            }
            self.right_cursor = (id + 1, 0);
        }
        self.group.finish();
        self.right_state = RightState::Group;
        self.track_memory()
    }

    /// The left row has no candidates.
    fn no_candidates(&mut self, left: (usize, usize)) {
        if self.join_type == PitJoinType::Left {
            self.pending.left.push(left);
            self.pending.right.push((0, 0));
            self.pending.marker.push(true);
        }
    }

    /// All candidates of the left row were emitted.
    fn finish_row(&mut self, left: (usize, usize), had_candidates: bool) {
        if self.join_type == PitJoinType::Left && (self.has_filter || !had_candidates) {
            self.pending.left.push(left);
            self.pending.right.push((0, 0));
            self.pending.marker.push(true);
        }
    }

    /// Process left rows from the cursor within the current left batch, as
    /// long as they need no new right group, the group's ends are sorted and
    /// all candidates fit in the pending output. Same semantics as the
    /// general path in `next_batch`; returns whether any row was processed.
    fn sweep_run(&mut self) -> bool {
        let (lid, start_row) = self.left_cursor;
        let Some(b) = self.left.get(lid) else {
            return false;
        };
        let group = &self.group;
        let pending = &mut self.pending;
        let left_join = self.join_type == PitJoinType::Left;
        let always_marker = left_join && self.has_filter;
        let (start_inclusive, end_inclusive) =
            (self.range.start_inclusive, self.range.end_inclusive);
        let batch_size = self.batch_size;
        let mut candidates = 0;
        let mut r = start_row;
        let n = b.len();
        while r < n && pending.len() < batch_size {
            let matched = if !b.joinable(r) {
                false
            } else {
                match self.right_state {
                    RightState::Unloaded => break,
                    RightState::Exhausted => false,
                    RightState::Group => match group.key.as_slice().cmp(b.keys.row(r).as_ref()) {
                        std::cmp::Ordering::Less => break,
                        std::cmp::Ordering::Greater => false,
                        std::cmp::Ordering::Equal => true,
                    },
                }
            };
            if !matched {
                if left_join {
                    pending.left.push((lid, r));
                    pending.right.push((0, 0));
                    pending.marker.push(true);
                }
                r += 1;
                continue;
            }
            if !group.ends_sorted {
                break;
            }
            let (ls, le) = (b.start[r], b.end[r]);
            let p = start_prefix(&group.starts, le, start_inclusive);
            let lo = end_lower(&group.ends[..p], ls, end_inclusive);
            if p - lo >= batch_size - pending.len() {
                break;
            }
            for &(id, row) in &group.refs[lo..p] {
                pending.left.push((lid, r));
                pending.right.push((id + 1, row));
                pending.marker.push(false);
            }
            candidates += p - lo;
            if always_marker || (left_join && p == lo) {
                pending.left.push((lid, r));
                pending.right.push((0, 0));
                pending.marker.push(true);
            }
            r += 1;
        }
        self.metrics.candidates.add(candidates);
        self.left_cursor = (lid, r);
        r > start_row
    }

    /// Produce the next output batch, or `None` at the end.
    async fn produce(&mut self, wait: &mut Duration) -> Result<Option<RecordBatch>> {
        loop {
            // 0. Keep output batches at most `batch_size` rows: every step
            // below pushes at most the remaining room.
            if self.pending.len() >= self.batch_size {
                if let Some(b) = self.flush()? {
                    return Ok(Some(b));
                }
                continue;
            }

            // 1. Continue emitting the candidates of the current left row.
            if let Some(w) = self.work.as_mut() {
                let left = w.left;
                if w.next >= w.hi {
                    let had = w.had_candidates;
                    self.work = None;
                    self.finish_row(left, had);
                    continue;
                }
                let room = self.batch_size - self.pending.len();
                let take = room.min(w.hi - w.next);
                let from = w.next;
                w.next += take;
                w.had_candidates = true;
                let list = w.list;
                self.metrics.candidates.add(take);
                for k in from..from + take {
                    let j = if list { self.scratch[k] as usize } else { k };
                    let (id, row) = self.group.refs[j];
                    self.pending.left.push(left);
                    self.pending.right.push((id + 1, row));
                    self.pending.marker.push(false);
                }
                continue;
            }

            // An inner join cannot produce anything once the right side is
            // exhausted: stop without reading the rest of the left input.
            if self.join_type == PitJoinType::Inner && self.right_state == RightState::Exhausted {
                if let Some(b) = self.flush()? {
                    return Ok(Some(b));
                }
                return Ok(None);
            }

            // 2. Make sure a left row is available.
            let (lid, lrow) = self.left_cursor;
            let has_row = self.left.get(lid).is_some_and(|b| lrow < b.len());
            if !has_row {
                if self.left.get(lid).is_some() {
                    self.left_cursor = (lid + 1, 0);
                    continue;
                }
                if !self.pending.is_empty()
                    && self.left.batches.len() >= MAX_PINNED_BATCHES
                    && let Some(b) = self.flush()?
                {
                    return Ok(Some(b));
                }
                self.release();
                if !self.left.fetch(wait).await? {
                    // End of the left input: nothing else can be produced.
                    if !self.pending.is_empty() {
                        if let Some(b) = self.flush()? {
                            return Ok(Some(b));
                        }
                        continue;
                    }
                    return Ok(None);
                }
                self.track_memory()?;
                continue;
            }

            // Fast path: rows that need no right input and whose candidates
            // fit in the output batch are handled in a tight loop.
            if self.sweep_run() {
                continue;
            }

            // 3. Find the right group for this row's key.
            let joinable = self.left.get(lid).is_some_and(|b| b.joinable(lrow));
            let matched = if !joinable {
                false
            } else {
                loop {
                    let ord = match self.right_state {
                        RightState::Exhausted => break false,
                        RightState::Unloaded => std::cmp::Ordering::Less,
                        RightState::Group => {
                            let Some(b) = self.left.get(lid) else {
                                return Err(DataFusionError::Internal(
                                    "PitJoin: left batch released too early".into(),
                                ));
                            };
                            self.group.key.as_slice().cmp(b.keys.row(lrow).as_ref())
                        }
                    };
                    match ord {
                        std::cmp::Ordering::Less => {
                            let pinned = self.right.end_id() - self.right.base;
                            if !self.pending.is_empty()
                                && pinned >= MAX_PINNED_BATCHES
                                && let Some(b) = self.flush()?
                            {
                                return Ok(Some(b));
                            }
                            self.release();
                            self.load_next_group(wait).await?;
                        }
                        std::cmp::Ordering::Equal => break true,
                        std::cmp::Ordering::Greater => break false,
                    }
                }
            };
            self.left_cursor = (lid, lrow + 1);
            if !matched {
                self.no_candidates((lid, lrow));
                continue;
            }

            // 4. Range search within the group.
            let (ls, le) = match self.left.get(lid) {
                Some(b) => (b.start[lrow], b.end[lrow]),
                None => {
                    return Err(DataFusionError::Internal(
                        "PitJoin: left batch released too early".into(),
                    ));
                }
            };
            let g = &self.group;
            let p = start_prefix(&g.starts, le, self.range.start_inclusive);
            let inclusive = self.range.end_inclusive;
            let work = if g.ends_sorted {
                let lo = end_lower(&g.ends[..p], ls, inclusive);
                // Common case: all candidates (and a possible marker) fit in
                // the current output batch; emit them without a work item.
                if p - lo < self.batch_size - self.pending.len() {
                    let n = p - lo;
                    self.metrics.candidates.add(n);
                    for &(id, row) in &g.refs[lo..p] {
                        self.pending.left.push((lid, lrow));
                        self.pending.right.push((id + 1, row));
                        self.pending.marker.push(false);
                    }
                    self.finish_row((lid, lrow), n > 0);
                    continue;
                }
                Work {
                    left: (lid, lrow),
                    next: lo,
                    hi: p,
                    list: false,
                    had_candidates: false,
                }
            } else {
                self.scratch.clear();
                g.tree_query(p, ls, inclusive, &mut self.stack, &mut self.scratch);
                Work {
                    left: (lid, lrow),
                    next: 0,
                    hi: self.scratch.len(),
                    list: true,
                    had_candidates: false,
                }
            };
            self.work = Some(work);
        }
    }

    /// Gather pending rows into an output batch, apply the residual filter
    /// and append intersection columns. `None` if every row was filtered out.
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let t = Instant::now();
        let n = self.pending.len();
        let lbase = self.left.base;
        let left_idx: Vec<(usize, usize)> = self
            .pending
            .left
            .iter()
            .map(|&(id, row)| (id - lbase, row))
            .collect();
        let rbase = self.right.base;
        let right_idx: Vec<(usize, usize)> = self
            .pending
            .right
            .iter()
            .map(|&(slot, row)| {
                if slot == 0 {
                    (0, 0)
                } else {
                    (slot - rbase, row)
                }
            })
            .collect();
        let output = &mut self.output;
        let (left, right, right_nulls) = (&self.left, &self.right, &self.right_nulls);
        let n_left = output.n_left();
        let batch = output.build(n, &self.pending.marker, |c| {
            if c < n_left {
                let arrays: Vec<&dyn Array> = left
                    .batches
                    .iter()
                    .map(|b| b.batch.column(c).as_ref())
                    .collect();
                return Ok(interleave(&arrays, &left_idx)?);
            }
            let c = c - n_left;
            let mut arrays: Vec<&dyn Array> = Vec::with_capacity(right.batches.len() + 1);
            let null = right_nulls.get(c).ok_or_else(|| {
                DataFusionError::Internal(format!("PitJoin: no right column {c}"))
            })?;
            arrays.push(null.as_ref());
            arrays.extend(right.batches.iter().map(|b| b.batch.column(c).as_ref()));
            Ok(interleave(&arrays, &right_idx)?)
        })?;
        self.finish_flush(batch, t)
    }

    /// Clear pending output, release batches, account time and memory.
    fn finish_flush(
        &mut self,
        batch: Option<RecordBatch>,
        started: Instant,
    ) -> Result<Option<RecordBatch>> {
        self.pending.clear();
        self.release();
        let spent = started.elapsed();
        self.metrics.output_time.add_duration(spent);
        self.flush_time += spent;
        self.track_memory()?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(starts: &[i64], ends: &[i64]) -> RightGroup {
        let mut g = RightGroup::default();
        g.starts.extend_from_slice(starts);
        g.ends.extend_from_slice(ends);
        g.refs.extend((0..starts.len()).map(|i| (0, i)));
        g.finish();
        g
    }

    #[test]
    fn unsorted_groups_are_sorted_by_start_then_end() {
        let g = group(&[5, 0, 5, 2], &[9, 3, 6, 4]);
        assert_eq!(g.starts, [0, 2, 5, 5]);
        assert_eq!(g.ends, [3, 4, 6, 9]);
        assert_eq!(g.refs, [(0, 1), (0, 3), (0, 2), (0, 0)]);
        assert!(g.ends_sorted);
    }

    #[test]
    fn sorted_ends_are_detected() {
        let g = group(&[0, 5, 10], &[5, 10, 99]);
        assert!(g.ends_sorted);
        let g = group(&[], &[]);
        assert!(g.ends_sorted);
    }
}
