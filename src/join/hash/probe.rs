//! The probe side: [`HashProbeStream`] streams one partition's left input
//! through the shared table, batch by batch, and emits the joined rows at
//! most `batch_size` at a time (see the [hash](super) docs). Pending output
//! only references the current left batch: it is flushed before the next
//! batch is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array, new_null_array};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, Count, Gauge, Time};
use futures::StreamExt;
use futures::future::BoxFuture;

use super::super::logical::PitJoinType;
use super::super::output::{JoinState, OutputBuilder, OutputSpec, into_stream};
use super::super::search::max_tree_query;
use super::keys::{JoinColumns, KeyEncoder, KeyMode, SideExprs};
use super::lookup::{LOOKUP_CHUNK, LookupScratch, NO_GROUP, Span, TREE, find_groups, lookup_spans};
use super::metrics::ProbeMetrics;
use super::table::HashTable;

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
