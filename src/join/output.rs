//! Output assembly shared by both strategies: from candidate pairs to an
//! output batch.
//!
//! A strategy collects up to `batch_size` *pending* output rows, each a
//! candidate pair (left row, right row) or, for a left join, a *marker*: a
//! left row with NULL right columns. A left row's candidates are followed by
//! its marker when a residual filter exists or when it had no candidates,
//! and a row's candidates and marker are never reordered (they may span
//! several output batches). [`OutputBuilder::build`] then
//!
//! 1. gathers the needed columns (the strategy provides the gather function
//!    for a join-schema column; when there is neither a filter nor
//!    intersection columns only the projected columns are gathered);
//! 2. evaluates the residual filter on the gathered batch and keeps a
//!    candidate iff it passes, and a marker iff no candidate of its row
//!    passed (tracked across batches in `row_matched`), so every left row of
//!    a left join appears at least once and unmatched ones exactly once;
//! 3. appends the intersection columns `max(left_start, right_start)` and
//!    `min(left_end, right_end)` (NULL on markers);
//! 4. applies the embedded projection.

use std::sync::Arc;

use arrow::array::make_array;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::{gt, lt};
use arrow::compute::kernels::zip::zip;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, Time};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::future::BoxFuture;

use super::range::PhysicalRange;

/// Turns pending rows into output batches; see the module docs.
pub(crate) struct OutputBuilder {
    range: PhysicalRange,
    filter: Option<PhysicalExprRef>,
    intersection: bool,
    join_schema: SchemaRef,
    full_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    n_left: usize,
    /// Some candidate of the currently open left row passed the filter.
    row_matched: bool,
}

/// Everything [`OutputBuilder::new`] needs from the plan.
pub(crate) struct OutputSpec {
    pub range: PhysicalRange,
    pub filter: Option<PhysicalExprRef>,
    pub intersection: bool,
    /// Left ++ right columns.
    pub join_schema: SchemaRef,
    /// Join schema plus intersection columns.
    pub full_schema: SchemaRef,
    /// Output columns as indices into `full_schema`.
    pub projection: Option<Vec<usize>>,
    /// The output schema.
    pub schema: SchemaRef,
    /// Number of left columns.
    pub n_left: usize,
}

impl OutputBuilder {
    pub(crate) fn new(spec: OutputSpec) -> Self {
        Self {
            range: spec.range,
            filter: spec.filter,
            intersection: spec.intersection,
            join_schema: spec.join_schema,
            full_schema: spec.full_schema,
            projection: spec.projection,
            schema: spec.schema,
            n_left: spec.n_left,
            row_matched: false,
        }
    }

    /// Number of left columns (join-schema columns below it are left ones).
    pub(crate) fn n_left(&self) -> usize {
        self.n_left
    }

    /// Build the output batch of `n` pending rows (`marker[i]` tells
    /// markers); `gather(c)` returns join-schema column `c` for the pending
    /// rows (NULL right columns on markers). `None` if every row was
    /// filtered out.
    pub(crate) fn build(
        &mut self,
        n: usize,
        marker: &[bool],
        gather: impl Fn(usize) -> Result<ArrayRef>,
    ) -> Result<Option<RecordBatch>> {
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        // Fast path: no filter and no intersection, so only the projected
        // columns need gathering.
        if self.filter.is_none()
            && !self.intersection
            && let Some(projection) = &self.projection
        {
            let columns = projection
                .iter()
                .map(|&c| gather(c))
                .collect::<Result<Vec<_>>>()?;
            let batch =
                RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
            return Ok((batch.num_rows() > 0).then_some(batch));
        }

        let columns = (0..self.join_schema.fields().len())
            .map(&gather)
            .collect::<Result<Vec<_>>>()?;
        let mut batch =
            RecordBatch::try_new_with_options(Arc::clone(&self.join_schema), columns, &options)?;

        if let Some(filter) = &self.filter {
            let mask = filter.evaluate(&batch)?.into_array(n)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| {
                DataFusionError::Internal("PitJoin: filter did not return booleans".into())
            })?;
            let mut keep = Vec::with_capacity(n);
            for (i, &is_marker) in marker.iter().enumerate().take(n) {
                if is_marker {
                    keep.push(!self.row_matched);
                    self.row_matched = false;
                } else {
                    let pass = mask.is_valid(i) && mask.value(i);
                    self.row_matched |= pass;
                    keep.push(pass);
                }
            }
            let keep = BooleanArray::new(BooleanBuffer::from(keep), None);
            batch = filter_record_batch(&batch, &keep)?;
        }

        if self.intersection {
            batch = self.append_intersection(batch)?;
        }
        if let Some(projection) = &self.projection {
            batch = batch.project(projection)?;
        }
        Ok((batch.num_rows() > 0).then_some(batch))
    }

    fn append_intersection(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let n_join = self.join_schema.fields().len();
        let left_part = batch.project(&(0..self.n_left).collect::<Vec<_>>())?;
        let right_part = batch.project(&(self.n_left..n_join).collect::<Vec<_>>())?;
        let eval = |e: &PhysicalExprRef, b: &RecordBatch| -> Result<ArrayRef> {
            e.evaluate(b)?.into_array(n)
        };
        let ls = eval(&self.range.left_start, &left_part)?;
        let le = eval(&self.range.left_end, &left_part)?;
        let rs = eval(&self.range.right_start, &right_part)?;
        let re = eval(&self.range.right_end, &right_part)?;
        let from = pick(&ls, &rs, &gt(&ls, &rs)?)?;
        let to = pick(&le, &re, &lt(&le, &re)?)?;
        let mut columns = batch.columns().to_vec();
        columns.push(from);
        columns.push(to);
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.full_schema),
            columns,
            &options,
        )?)
    }
}

/// A strategy's per-partition state, driven as a stream by [`into_stream`].
pub(crate) trait JoinState: Send + 'static {
    /// The next output batch, or `None` at the end; time spent waiting for
    /// inputs is added to `wait`.
    fn next_batch<'a>(
        &'a mut self,
        wait: &'a mut std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<RecordBatch>>>;

    /// Baseline metrics, the strategy's own time metric (search work: all
    /// compute but output assembly), the output assembly time of the
    /// current poll (reset before each poll), and the memory reservation.
    fn timing(
        &mut self,
    ) -> (
        &BaselineMetrics,
        &Time,
        &mut std::time::Duration,
        &mut MemoryReservation,
    );
}

/// The output stream of `state`: each poll's compute time (excluding input
/// waits) goes to `elapsed_compute` and, minus output assembly, to the
/// strategy's time metric; output batches are recorded on the baseline
/// metrics; at the end the reservation is freed.
pub(crate) fn into_stream<S: JoinState>(schema: SchemaRef, state: S) -> SendableRecordBatchStream {
    let stream = futures::stream::try_unfold(state, |mut s| async move {
        let t = std::time::Instant::now();
        let mut wait = std::time::Duration::ZERO;
        *s.timing().2 = std::time::Duration::ZERO;
        let out = s.next_batch(&mut wait).await;
        let compute = t.elapsed().saturating_sub(wait);
        let (baseline, phase, flush, reservation) = s.timing();
        baseline.elapsed_compute().add_duration(compute);
        phase.add_duration(compute.saturating_sub(*flush));
        match out? {
            Some(batch) => {
                let batch = record_output(baseline, batch)?;
                Ok(Some((batch, s)))
            }
            None => {
                baseline.done();
                reservation.free();
                Ok(None)
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// Record an output batch on `baseline` (rows, batches, bytes) and pass it
/// on.
fn record_output(baseline: &BaselineMetrics, batch: RecordBatch) -> Result<RecordBatch> {
    match baseline.record_poll(std::task::Poll::Ready(Some(Ok(batch)))) {
        std::task::Poll::Ready(Some(Ok(batch))) => Ok(batch),
        _ => Err(DataFusionError::Internal(
            "PitJoin: lost an output batch".into(),
        )),
    }
}

/// `a` where `mask` else `b`; NULL where either input is NULL.
fn pick(a: &ArrayRef, b: &ArrayRef, mask: &BooleanArray) -> Result<ArrayRef> {
    let chosen = zip(mask, a, b)?;
    let nulls = NullBuffer::union(a.logical_nulls().as_ref(), b.logical_nulls().as_ref());
    let data = chosen.to_data().into_builder().nulls(nulls).build()?;
    Ok(make_array(data))
}
