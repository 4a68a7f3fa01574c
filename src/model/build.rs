//! Materialising models into the warehouse.
//!
//! A frame build reads its DAS table at the current snapshot and writes
//! `dab.<frame>`:
//! - **full**: the whole plan streamed into the table's files as it is
//!   computed, in the plan's order ([`Warehouse::write_stream`]), committed
//!   as an overwrite;
//! - **incremental**: only rows whose `record_updated_at` is later than the
//!   frame's watermark (new versions and the versions they closed), committed
//!   as an upsert keyed on the PIT hook. Versions never change their
//!   `record_valid_from`, so PIT hooks are stable and the result equals a
//!   full build.
//!
//! An incremental frame build first narrows the DAS table to the true keys
//! with loads after the watermark (all their rows, so each key's versions are
//! recomputed whole) and commits merge-on-read (position deletes), so no
//! data file is rewritten.
//!
//! DAR models are built in full (overwrite, streamed like a full frame
//! build), or incrementally: only the versions affected by input changes
//! after the model's watermark are recomputed and replaced
//! ([`super::incremental`]). Both stream their rows into the table's files
//! as they are computed and commit once at the end; a cascade past
//! [`LARGE_RECOMPUTE`] versions that reaches half its table is built in full.
//! [`build_dar`] (the `transform` verb) builds in full, in the stage order of
//! [`Dar::stages`].
//!
//! Model tables are not written sorted: a replace finds its rows by key
//! with row-group statistics and hashing either way (what a sort of every
//! full build by PIT hook cost and gained: `docs/benchmarks.md`).
//!
//! Full builds plan and run in the run's session context; incremental ones
//! in [`BuildContexts::incremental`], a lean context of their own unless the
//! tuning `lean-incremental-plans` ([`crate::tuning`]) is off.
//!
//! Every model commit carries, as snapshot properties in the same commit as
//! its rows: the watermark (frames: the latest DAS load time seen; DAR: the
//! largest watermark of its inputs), the DAS snapshot read (frames), and an
//! epoch that changes on every full build, so downstream models can tell an
//! input that was rebuilt (and may have rewritten history) from one that
//! only grew.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering as AtomicOrdering};

use arrow::array::{RecordBatch, TimestampMicrosecondArray};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::prelude::SessionContext;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;

use super::config::Frame;
use super::dar::{Dar, DarKind, DarModel};
use super::frame::{frame_plan, prefixed};
use super::incremental::{self, EventRows, Recomputed};
use crate::budget::MemoryBudget;
use crate::das;
use crate::error::{Error, Result};
use crate::join::{PitJoinExec, PitJoinOptions, PitJoinStrategy};
use crate::storage::{AsOf, CommitOutcome, LoadedTable, TableName, Warehouse, Write, WriteMode};

pub use super::tables::{
    DAB, DEP_EPOCH_PREFIX, DEP_PREFIX, EPOCH, SOURCE_SNAPSHOT, WATERMARK, loaded_scan_plan,
    restricted_scan_plan,
};

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    Full,
    Incremental,
}

/// What a model build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub model: String,
    pub mode: BuildMode,
    /// Rows the plan produced (all rows for full, changed rows for incremental).
    pub rows: u64,
    pub commit: Option<CommitOutcome>,
    /// Wall time of the build (plan, execute, commit).
    pub elapsed: Duration,
    /// Compute time of the plan's operators, summed over operators and
    /// partitions, and the part of it spent in PIT joins (DAR models only;
    /// zero for frames).
    pub compute: Duration,
    pub pit_join_compute: Duration,
    /// Bytes the plan's operators spilled to disk to stay within the
    /// memory budget.
    pub spilled_bytes: u64,
}

/// Build one frame from the current DAS snapshot.
pub async fn build_frame(
    wh: &Warehouse,
    ctx: &SessionContext,
    frame: &Frame,
    true_key: &[String],
    mode: BuildMode,
) -> Result<BuildReport> {
    build_frame_with(
        wh,
        &BuildContexts::new(ctx, true),
        frame,
        true_key,
        mode,
        AsOf::Latest,
        &BTreeMap::new(),
    )
    .await
}

/// Build one frame reading its DAS table `as_of`, committing `extra`
/// snapshot properties with the rows. An incremental build with no changed
/// rows still commits `extra` (if any), so recorded state stays current.
pub async fn build_frame_with(
    wh: &Warehouse,
    contexts: &BuildContexts,
    frame: &Frame,
    true_key: &[String],
    mode: BuildMode,
    das_as_of: AsOf,
    extra: &BTreeMap<String, String>,
) -> Result<BuildReport> {
    let started = Instant::now();
    let das_name = TableName::new(das::NAMESPACE, frame.source_table.clone())?;
    let target = TableName::new(DAB, frame.name.clone())?;
    let existing = wh.try_load_table(&target).await?;
    let watermark = match (mode, &existing) {
        (BuildMode::Incremental, Some(t)) => watermark_of(t)?,
        _ => None,
    };
    // No watermark means nothing reliable to increment from: build in full.
    let mode = if watermark.is_none() {
        BuildMode::Full
    } else {
        mode
    };
    let das = wh.load_table(&das_name).await?;
    let (das_plan, das_snapshot) = loaded_scan_plan(&das, das_as_of).await?;
    let ctx = contexts.of(mode);
    let das_plan = match watermark {
        Some(since) => keys_loaded_since(ctx, &das, das_as_of, das_plan, true_key, since).await?,
        None => das_plan,
    };
    let plan = frame_plan(frame, true_key, das_plan, watermark)?;
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let pit = frame.primary().pit_name();
    let loaded_col = prefixed(frame, "record_loaded_at");
    // The watermark: the latest load time among the rows written.
    let mark = Arc::new(AtomicI64::new(watermark.unwrap_or(i64::MIN)));
    let observe = {
        let mark = Arc::clone(&mark);
        move |b: &RecordBatch| {
            if let Some(a) = b
                .column_by_name(&loaded_col)
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                && let Some(m) = arrow::compute::max(a)
            {
                mark.fetch_max(m, AtomicOrdering::Relaxed);
            }
        }
    };
    let write = match mode {
        BuildMode::Full => Write::overwrite(),
        BuildMode::Incremental => Write::merge([pit]),
    };
    let epoch = epoch_for(existing.as_ref(), mode);
    let properties = |w: Write| {
        let mark = Arc::clone(&mark);
        let mut w = w
            .deferred_property(WATERMARK, move || {
                Some(mark.load(AtomicOrdering::Relaxed).to_string())
            })
            .property(
                SOURCE_SNAPSHOT,
                das_snapshot.map(|s| s.to_string()).unwrap_or_default(),
            )
            .property(EPOCH, epoch.clone());
        for (k, v) in extra {
            w = w.property(k.clone(), v.clone());
        }
        w
    };
    let (rows, commit, spilled_bytes) = match mode {
        // A full build streams its rows into the table's files as they
        // are computed.
        BuildMode::Full => {
            let (rows, commit, physical) =
                stream_into(wh, ctx, &target, plan, properties(write), &observe).await?;
            (rows, Some(commit), compute_times(&physical).2)
        }
        // An incremental build's rows are the changed versions: few, held
        // in memory.
        BuildMode::Incremental => {
            let batches: Vec<RecordBatch> = ctx.execute_logical_plan(plan).await?.collect().await?;
            batches.iter().for_each(&observe);
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let commit = if rows == 0 {
                if extra.is_empty() {
                    None
                } else {
                    // Nothing changed, but record what was read.
                    Some(
                        wh.write(&target, schema, vec![], properties(Write::append()))
                            .await?,
                    )
                }
            } else {
                Some(
                    wh.write(&target, schema, batches, properties(write))
                        .await?,
                )
            };
            (rows, commit, 0)
        }
    };
    let computed = started.elapsed();
    tracing::debug!(
        model = %target,
        rows,
        computed_ms = computed.as_millis() as u64,
        ms = started.elapsed().as_millis() as u64,
        "frame built"
    );
    Ok(BuildReport {
        model: target.to_string(),
        mode,
        rows,
        commit,
        elapsed: started.elapsed(),
        compute: Duration::ZERO,
        pit_join_compute: Duration::ZERO,
        spilled_bytes,
    })
}

/// The DAS rows of the true keys with a load after `since` (all loads of
/// those keys, so their versions are recomputed whole). NULL key parts
/// match each other, as they share a window partition in the frame.
///
/// Two steps: the values of the first key column among the new loads
/// (a scan of the files loaded after `since`, the others pruned by their
/// load-time statistics), then the table restricted to them in the scan
/// ([`crate::storage::restrict`]: only rows with such a value are decoded
/// whole), joined with the changed keys when the key has more columns or a
/// NULL first part (which no restriction can name).
async fn keys_loaded_since(
    ctx: &SessionContext,
    table: &LoadedTable,
    as_of: AsOf,
    das: LogicalPlan,
    true_key: &[String],
    since: i64,
) -> Result<LogicalPlan> {
    use datafusion::logical_expr::col;
    let first = true_key
        .first()
        .ok_or_else(|| Error::invalid(format!("table {}: empty true key", table.name)))?;
    let loaded_since =
        LogicalPlanBuilder::from(das.clone()).filter(col(das::LOADED_AT).gt(das::ts_lit(since)))?;
    let firsts = loaded_since
        .clone()
        .project(vec![col(first.as_str())])?
        .distinct()?
        .build()?;
    let batches = ctx.execute_logical_plan(firsts).await?.collect().await?;
    let null_first = batches.iter().any(|b| b.column(0).null_count() > 0);
    if !null_first {
        let values = incremental::distinct_values(&batches, first)?;
        let restricted = restricted_scan_plan(table, as_of, first, values).await?;
        if true_key.len() == 1 {
            return Ok(restricted);
        }
        return semi_join_keys(restricted, loaded_since, true_key);
    }
    semi_join_keys(das, loaded_since, true_key)
}

/// `rows` whose true key (NULL parts matching each other) is among those
/// of `changed`.
fn semi_join_keys(
    rows: LogicalPlan,
    changed: LogicalPlanBuilder,
    true_key: &[String],
) -> Result<LogicalPlan> {
    use datafusion::common::{Column, NullEquality};
    use datafusion::logical_expr::{JoinType, col};
    let renamed = |k: &String| format!("__changed__{k}");
    let keys = changed
        .project(
            true_key
                .iter()
                .map(|k| col(k.as_str()).alias(renamed(k)))
                .collect::<Vec<_>>(),
        )?
        .distinct()?
        .build()?;
    Ok(LogicalPlanBuilder::from(rows)
        .join_detailed(
            keys,
            JoinType::LeftSemi,
            (
                true_key.iter().map(Column::from_name).collect::<Vec<_>>(),
                true_key
                    .iter()
                    .map(|k| Column::from_name(renamed(k)))
                    .collect::<Vec<_>>(),
            ),
            None,
            NullEquality::NullEqualsNull,
        )?
        .build()?)
}

/// Build one DAR model in full (overwrite) from the current tables it reads.
pub async fn build_dar_model(
    wh: &Warehouse,
    ctx: &SessionContext,
    dar: &Dar<'_>,
    model: &DarModel,
) -> Result<BuildReport> {
    // A full build: no incremental context to make.
    build_dar_model_with(
        wh,
        &BuildContexts::new(ctx, false),
        dar,
        model,
        BuildMode::Full,
        &BTreeMap::new(),
        &HashMap::new(),
    )
    .await
}

/// The watermark property of a table's current snapshot.
fn watermark_of(t: &LoadedTable) -> Result<Option<i64>> {
    t.current_properties()
        .get(WATERMARK)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                Error::invalid(format!("table {}: bad {WATERMARK} property '{v}'", t.name))
            })
        })
        .transpose()
}

/// The epoch a build commits: kept by incremental builds, fresh otherwise.
fn epoch_for(existing: Option<&LoadedTable>, mode: BuildMode) -> String {
    match (
        mode,
        existing.and_then(|t| t.current_properties().get(EPOCH).cloned()),
    ) {
        (BuildMode::Incremental, Some(e)) => e,
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// [`build_dar_model`] in `mode`, committing `extra` snapshot properties
/// with the rows, and reading the inputs in `pinned` (by `<ns>.<name>`) at
/// the loaded versions (other inputs are loaded now). An incremental build
/// falls back to a full one when the model or an input has no watermark yet.
pub async fn build_dar_model_with(
    wh: &Warehouse,
    contexts: &BuildContexts,
    dar: &Dar<'_>,
    model: &DarModel,
    mode: BuildMode,
    extra: &BTreeMap<String, String>,
    pinned: &HashMap<String, LoadedTable>,
) -> Result<BuildReport> {
    let started = Instant::now();
    let target = TableName::new(model.namespace.clone(), model.name.clone())?;
    let mut inputs = HashMap::new();
    let mut loaded_inputs: HashMap<String, LoadedTable> = HashMap::new();
    let mut input_mark: Option<i64> = Some(i64::MIN);
    for (ns, name) in &model.inputs {
        let t = TableName::new(ns.clone(), name.clone())?;
        let loaded = match pinned.get(&t.to_string()) {
            Some(l) => l.clone(),
            None => wh
                .load_table(&t)
                .await
                .map_err(|e| e.context(format!("reading input {t}")))?,
        };
        input_mark = match (input_mark, watermark_of(&loaded)?) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let (plan, _) = loaded_scan_plan(&loaded, AsOf::Latest)
            .await
            .map_err(|e| e.context(format!("reading input {t}")))?;
        inputs.insert(t.to_string(), plan);
        loaded_inputs.insert(t.to_string(), loaded);
    }
    let existing = wh.try_load_table(&target).await?;
    let loading = started.elapsed();
    let previous = match &existing {
        Some(t) => watermark_of(t)?,
        None => None,
    };
    // An input rebuilt in full since this model last read it (its epoch,
    // recorded by the DAG runner in `extra`, moved; e.g. a large cascade
    // earlier in this run) means a full build, as the plan decides before
    // a run.
    let recorded = existing
        .as_ref()
        .map(LoadedTable::current_properties)
        .unwrap_or_default();
    let input_rebuilt = extra.iter().any(|(k, now)| {
        k.starts_with(DEP_EPOCH_PREFIX)
            && recorded
                .get(k)
                .is_some_and(|before| !before.is_empty() && before != now)
    });
    let since = match (mode, previous, input_mark) {
        (BuildMode::Incremental, Some(p), Some(_)) if !input_rebuilt => Some(p),
        _ => None,
    };
    let mut mode = if since.is_some() {
        BuildMode::Incremental
    } else {
        BuildMode::Full
    };
    let full_ctx = &contexts.full;
    let ctx = contexts.of(mode);
    let mut write_props = extra.clone();
    write_props.insert(EPOCH.to_string(), epoch_for(existing.as_ref(), mode));
    if let Some(m) = input_mark {
        write_props.insert(WATERMARK.to_string(), m.to_string());
    }
    let with_props = |mut w: Write| {
        for (k, v) in &write_props {
            w = w.property(k.clone(), v.clone());
        }
        // A bridge's new rows are its event bridge's changes, an event
        // bridge's the unified bridge's, the unified bridge's the
        // calendar's (see `InputChanges`): kept in memory for them instead
        // of decoded again from the files just written.
        match model.kind {
            DarKind::Bridge(_) | DarKind::Event(_) | DarKind::Unified => w.keep_added(),
            _ => w,
        }
    };

    // What to compute and how to commit it.
    let full_plan = |inputs: &HashMap<String, LogicalPlan>| dar.plan(model, inputs);
    let (plan, write) = match since {
        None => (
            Recomputed::Plan(Box::new(full_plan(&inputs)?)),
            with_props(Write::overwrite()),
        ),
        Some(since) => {
            let own = match (&existing, model.kind) {
                (Some(t), DarKind::Calendar) => Some(loaded_scan_plan(t, AsOf::Latest).await?.0),
                _ => None,
            };
            let t = Instant::now();
            let read = existing
                .as_ref()
                .map(LoadedTable::current_properties)
                .unwrap_or_default();
            let changes =
                incremental::InputChanges::of(ctx, wh, model, &inputs, &loaded_inputs, &read)
                    .await?;
            let recompute = incremental::affected(
                ctx,
                dar,
                model,
                &inputs,
                &loaded_inputs,
                &changes,
                since,
                own,
            )
            .await?;
            tracing::debug!(model = %target, ms = t.elapsed().as_millis() as u64, "affected versions found");
            if recompute.is_empty() {
                // Nothing to recompute: record what was read.
                let schema = match &existing {
                    Some(t) => crate::storage::schema::arrow_schema(t.metadata().current_schema())?,
                    None => return Err(Error::internal(format!("{target} has no table"))),
                };
                let commit = wh
                    .write(&target, schema, vec![], with_props(Write::append()))
                    .await?;
                return Ok(BuildReport {
                    model: target.to_string(),
                    mode,
                    rows: 0,
                    commit: Some(commit),
                    elapsed: started.elapsed(),
                    compute: Duration::ZERO,
                    pit_join_compute: Duration::ZERO,
                    spilled_bytes: 0,
                });
            }
            let rows_now = existing.as_ref().map_or(0, LoadedTable::row_count);
            if let incremental::Recompute::Calendar { .. } = recompute {
                (
                    Recomputed::Plan(Box::new(full_plan(&inputs)?)),
                    with_props(Write::overwrite()),
                )
            } else if recompute.versions() > LARGE_RECOMPUTE
                && recompute.versions() as u64 * LARGE_RECOMPUTE_SHARE > rows_now
            {
                // A cascade this large reaching this share of the table is
                // a rebuild in all but name: build in full instead (each
                // replaced row costs a search and a position delete). The
                // new epoch tells its descendants to rebuild in full too, so
                // a small table is never rebuilt that way (a few versions
                // of a small table would rebuild every model below it).
                tracing::debug!(model = %target, versions = recompute.versions(), rows = rows_now, "large recompute: building in full");
                mode = BuildMode::Full;
                let epoch = epoch_for(existing.as_ref(), mode);
                (
                    Recomputed::Plan(Box::new(full_plan(&inputs)?)),
                    with_props(Write::overwrite()).property(EPOCH, epoch),
                )
            } else {
                let (plan, matches) = incremental::recompute_plan(
                    ctx,
                    dar,
                    model,
                    inputs,
                    &loaded_inputs,
                    &changes,
                    &recompute,
                )
                .await?;
                (plan, with_props(Write::replace(matches)))
            }
        }
    };
    // Every build streams its rows into the table's files as they are
    // computed: a full one in the full context (partitions, spilling
    // strategies) even when an incremental build fell back to it, an
    // incremental one in the incremental context (its commit, a replace,
    // searches the rows it deletes meanwhile).
    let run_ctx = if mode == BuildMode::Full || write.mode == WriteMode::Overwrite {
        full_ctx
    } else {
        ctx
    };
    let (rows, commit, physical) = match plan {
        Recomputed::Plan(plan) => {
            let (rows, commit, physical) =
                stream_into(wh, run_ctx, &target, *plan, write, &|_| {}).await?;
            (rows, commit, Some(physical))
        }
        Recomputed::Unified { schema, events } => {
            let rows = Arc::new(AtomicU64::new(0));
            let part = unified_part(run_ctx, &schema, events, Arc::clone(&rows));
            let commit = wh.write_stream(&target, schema, vec![part], write).await?;
            (rows.load(AtomicOrdering::Relaxed), commit, None)
        }
    };
    let (compute, pit_join_compute, spilled_bytes) =
        physical.as_ref().map(compute_times).unwrap_or_default();
    tracing::debug!(
        model = %target,
        rows,
        ms = started.elapsed().as_millis() as u64,
        loading_ms = loading.as_millis() as u64,
        "built"
    );
    Ok(BuildReport {
        model: target.to_string(),
        mode,
        rows,
        commit: Some(commit),
        elapsed: started.elapsed(),
        compute,
        pit_join_compute,
        spilled_bytes,
    })
}

/// Execute `plan` and stream its rows into `target` with `write` (see
/// [`Warehouse::write_stream`]), calling `observe` on every batch. Returns
/// the rows written, the commit and the executed plan (for its metrics).
///
/// Each output partition is a part of the write (its rows stay together in
/// the files: the unified bridge's partitions keep its peripherals apart,
/// so its files are clustered by peripheral without a sort).
async fn stream_into(
    wh: &Warehouse,
    ctx: &SessionContext,
    target: &TableName,
    plan: LogicalPlan,
    write: Write,
    observe: &(dyn Fn(&RecordBatch) + Sync),
) -> Result<(u64, CommitOutcome, Arc<dyn ExecutionPlan>)> {
    use datafusion::physical_plan::ExecutionPlanProperties;
    use futures::{StreamExt, TryStreamExt};
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let source = ctx.state().create_physical_plan(&plan).await?;
    let rows = Arc::new(AtomicU64::new(0));
    let task = ctx.task_ctx();
    let parts: Vec<crate::storage::Part<'_>> = (0..source.output_partitioning().partition_count())
        .map(|i| {
            let (source, task, rows) = (Arc::clone(&source), Arc::clone(&task), Arc::clone(&rows));
            // Each partition starts when the write takes it up.
            futures::stream::once(async move { source.execute(i, task) })
                .try_flatten()
                .map(move |b| -> Result<RecordBatch> {
                    let b = b?;
                    rows.fetch_add(b.num_rows() as u64, AtomicOrdering::Relaxed);
                    observe(&b);
                    Ok(b)
                })
                .boxed()
        })
        .collect();
    let commit = wh.write_stream(target, schema, parts, write).await?;
    Ok((rows.load(AtomicOrdering::Relaxed), commit, source))
}

/// A cascade of more versions than this that also reaches a
/// [`LARGE_RECOMPUTE_SHARE`]-th of its table's rows is built in full, not
/// incrementally (see [`build_dar_model_with`]). Both stream within the
/// memory budget.
pub const LARGE_RECOMPUTE: usize = 1_000_000;
/// See [`LARGE_RECOMPUTE`].
pub const LARGE_RECOMPUTE_SHARE: u64 = 2;

/// The unified bridge's recomputed rows as one part of its write: each
/// event bridge's rows (kept by its commit, else read from the files it
/// added) turned into unified rows batch by batch, counted in `rows`.
fn unified_part<'a>(
    ctx: &'a SessionContext,
    schema: &arrow::datatypes::SchemaRef,
    events: Vec<(String, EventRows)>,
    rows: Arc<AtomicU64>,
) -> crate::storage::Part<'a> {
    use futures::{StreamExt, TryStreamExt};
    let schema = Arc::clone(schema);
    futures::stream::iter(events)
        .then(move |(name, source)| {
            let (schema, rows) = (Arc::clone(&schema), Arc::clone(&rows));
            async move {
                let batches: crate::storage::Part<'a> = match source {
                    EventRows::Kept(b) => futures::stream::iter(b.into_iter().map(Ok)).boxed(),
                    EventRows::Scan(plan) => ctx
                        .execute_logical_plan(*plan)
                        .await?
                        .execute_stream()
                        .await?
                        .map_err(Error::from)
                        .boxed(),
                };
                Ok::<_, Error>(batches.map(move |b| {
                    let unified = super::unified::unified_batch(&schema, &name, &b?)?;
                    rows.fetch_add(unified.num_rows() as u64, AtomicOrdering::Relaxed);
                    Ok(unified)
                }))
            }
        })
        .try_flatten()
        .boxed()
}

/// The session contexts model builds plan and run their queries in.
#[derive(Clone)]
pub struct BuildContexts {
    /// Full builds, and incremental builds that fall back to full ones.
    pub full: SessionContext,
    /// Incremental builds: `incremental_context` of `full` when the
    /// tuning `lean-incremental-plans` is on, else `full` itself.
    pub incremental: SessionContext,
}

impl BuildContexts {
    /// Builds in `ctx`, incremental ones in its lean context when
    /// `lean_incremental_plans` (see [`crate::tuning`]).
    pub fn new(ctx: &SessionContext, lean_incremental_plans: bool) -> Self {
        Self {
            full: ctx.clone(),
            incremental: if lean_incremental_plans {
                incremental_context(ctx)
            } else {
                ctx.clone()
            },
        }
    }

    /// The context of a build in `mode`.
    fn of(&self, mode: BuildMode) -> &SessionContext {
        match mode {
            BuildMode::Full => &self.full,
            BuildMode::Incremental => &self.incremental,
        }
    }
}

/// The lean context incremental builds plan and run their queries in (the
/// tuning `lean-incremental-plans`; what it saves: `docs/benchmarks.md`).
///
/// Their plans join a few recomputed versions to the few parent rows they
/// name, so:
/// - PIT joins use the `hash` strategy: one hash table of each (restricted)
///   parent, probed by the left rows, beats partitioning and sorting both
///   sides (what `auto` picks for Iceberg inputs, which carry no
///   statistics);
/// - the logical optimizer runs one pass of the rules such plans need:
///   expression simplification (it also turns `coalesce` into an
///   executable CASE), DISTINCT as an aggregate, filter push-down (the
///   change filters reach the Iceberg scans, which prune files by their
///   load-time statistics) and projection pruning (scans read only the
///   columns used). The other rules find nothing to do in these
///   generated plans but cost planning time on each of the ~80 models of
///   a run. Type coercion (the analyzer) runs as always;
/// - the physical optimizer runs without the rules that only act on limits,
///   sort push-down into sources, statistics-answered aggregates or check
///   the final plan ([`INCREMENTAL_SKIPPED_PHYSICAL_RULES`]): these plans
///   have none of those (the calendar's existence check stops at its first
///   row either way), and each rule walks every plan;
/// - plans run in one partition (`target_partitions = 1`): a run builds
///   several models at once (two per core), so the cores are kept busy by
///   models rather than by splitting each model's few rows, and a plan in
///   one partition has no repartition and merge operators to plan, spawn
///   and feed.
///
/// None of this changes a result: the rules left out only rewrite plans
/// into equivalent ones, and every strategy of the PIT join gives the same
/// rows.
fn incremental_context(ctx: &SessionContext) -> SessionContext {
    use datafusion::optimizer::OptimizerRule;
    use datafusion::optimizer::optimize_projections::OptimizeProjections;
    use datafusion::optimizer::push_down_filter::PushDownFilter;
    use datafusion::optimizer::replace_distinct_aggregate::ReplaceDistinctWithAggregate;
    let mut config = ctx.state().config().clone();
    config
        .options_mut()
        .extensions
        .insert(PitJoinOptions::with_strategy(PitJoinStrategy::Hash));
    config.options_mut().optimizer.max_passes = 1;
    config.options_mut().execution.target_partitions = 1;
    let rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = vec![
        Arc::new(SimplifyExpressions::new()),
        Arc::new(ReplaceDistinctWithAggregate::new()),
        Arc::new(PushDownFilter::new()),
        Arc::new(OptimizeProjections::new()),
    ];
    let state = ctx.state();
    let physical = state
        .physical_optimizers()
        .iter()
        .filter(|r| !INCREMENTAL_SKIPPED_PHYSICAL_RULES.contains(&r.name()))
        .cloned()
        .collect();
    SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_optimizer_rules(rules)
            .with_physical_optimizer_rules(physical)
            .build(),
    )
}

/// Physical optimizer rules (by name) the incremental context leaves out
/// (see [`incremental_context`]); they change no result, only limits, sort
/// push-down and statistics shortcuts, or (the last) check the plan.
const INCREMENTAL_SKIPPED_PHYSICAL_RULES: [&str; 7] = [
    "aggregate_statistics",
    "LimitedDistinctAggregation",
    "LimitAggregation",
    "LimitPushPastWindows",
    "LimitPushdown",
    "PushdownSort",
    "SanityCheckPlan",
];

/// (all operators, PIT joins only) `elapsed_compute` of an executed plan,
/// and the bytes its operators spilled.
fn compute_times(plan: &Arc<dyn ExecutionPlan>) -> (Duration, Duration, u64) {
    let metrics = plan.metrics();
    let own = metrics
        .as_ref()
        .and_then(|m| m.elapsed_compute())
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or_default();
    let mut spilled = metrics
        .as_ref()
        .and_then(|m| m.spilled_bytes())
        .unwrap_or(0) as u64;
    let is_pit = plan.as_any().downcast_ref::<PitJoinExec>().is_some();
    let (mut all, mut pit) = (own, if is_pit { own } else { Duration::ZERO });
    for child in plan.children() {
        let (a, p, s) = compute_times(child);
        all += a;
        pit += p;
        spilled += s;
    }
    (all, pit, spilled)
}

/// Build the DAR layer (models matching `pattern`, all when `None`) in
/// full, stage by stage ([`Dar::stages`]), the models of a stage several at
/// a time. A model's inputs must exist (frames, and earlier stages' models).
pub async fn build_dar(
    wh: &Warehouse,
    project: &super::Project,
    pattern: Option<&str>,
    progress: bool,
    budget: &MemoryBudget,
) -> Result<Vec<BuildReport>> {
    use futures::StreamExt;
    let dar = Dar::new(project)?;
    let mut stages = Vec::new();
    for stage in dar.stages()? {
        let mut kept = Vec::new();
        for m in stage {
            if pattern
                .map(|p| matches_pattern(p, &m.namespace, &m.name))
                .transpose()?
                .unwrap_or(true)
            {
                kept.push(m);
            }
        }
        if !kept.is_empty() {
            stages.push(kept);
        }
    }
    let total: usize = stages.iter().map(Vec::len).sum();
    if total == 0 {
        return Err(Error::invalid(format!(
            "no DAR model matches '{}'",
            pattern.unwrap_or_default()
        )));
    }
    let bar = progress_bar(progress, total as u64, "dar")?;
    let ctx = budget.context()?;
    let parallel = budget.models_at_once(datafusion::common::utils::get_available_parallelism());
    let mut reports = Vec::new();
    for stage in &stages {
        let results: Vec<Result<BuildReport>> = futures::stream::iter(stage)
            .map(|model| {
                let (ctx, dar, bar) = (&ctx, &dar, bar.clone());
                async move {
                    let r = build_dar_model(wh, ctx, dar, model)
                        .await
                        .map_err(|e| budget.explain(&model.qualified(), e));
                    bar.inc(1);
                    bar.set_message(model.name.clone());
                    r
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        for r in results {
            reports.push(r?);
        }
    }
    bar.finish_and_clear();
    reports.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(reports)
}

fn progress_bar(progress: bool, len: u64, layer: &str) -> Result<indicatif::ProgressBar> {
    if !progress {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} transform {layer} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"
        ))
        .map_err(|e| Error::internal(e.to_string()))?
        .progress_chars("=> "),
    );
    Ok(b)
}

/// Whether `name` matches a glob `pattern` (`*` = any run of characters),
/// with or without its namespace.
pub fn matches_pattern(pattern: &str, namespace: &str, name: &str) -> Result<bool> {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    let re = regex::Regex::new(&re)
        .map_err(|e| Error::invalid(format!("bad model pattern '{pattern}': {e}")))?;
    Ok(re.is_match(name) || re.is_match(&format!("{namespace}.{name}")))
}

/// Build every frame of `project` matching `pattern` (all when `None`),
/// several at a time, in `mode` (frames without a previous build are built
/// in full).
pub async fn build_frames(
    wh: &Warehouse,
    project: &super::Project,
    pattern: Option<&str>,
    mode: BuildMode,
    progress: bool,
    budget: &MemoryBudget,
) -> Result<Vec<BuildReport>> {
    use futures::StreamExt;
    let mut frames = Vec::new();
    for f in &project.model.frames {
        if pattern
            .map(|p| matches_pattern(p, DAB, &f.name))
            .transpose()?
            .unwrap_or(true)
        {
            frames.push(f);
        }
    }
    if frames.is_empty() {
        return Err(Error::invalid(format!(
            "no frame matches '{}'",
            pattern.unwrap_or_default()
        )));
    }
    let bar = if progress {
        let b = indicatif::ProgressBar::new(frames.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} transform dab [{bar:30}] {pos}/{len} {msg}",
            )
            .map_err(|e| Error::internal(e.to_string()))?
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let ctx = budget.context()?;
    let parallel = budget.models_at_once(datafusion::common::utils::get_available_parallelism());
    let results: Vec<Result<BuildReport>> = futures::stream::iter(frames)
        .map(|frame| {
            let ctx = &ctx;
            let bar = bar.clone();
            async move {
                let resource = project.resource_of(frame)?;
                let r = build_frame(wh, ctx, frame, &resource.primary_key, mode)
                    .await
                    .map_err(|e| budget.explain(&format!("{DAB}.{}", frame.name), e));
                bar.inc(1);
                bar.set_message(frame.name.clone());
                r
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut reports = results.into_iter().collect::<Result<Vec<_>>>()?;
    reports.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of a context's (logical, physical) optimizer rules.
    fn rules(c: &SessionContext) -> (Vec<String>, Vec<String>) {
        let state = c.state();
        (
            state
                .optimizers()
                .iter()
                .map(|r| r.name().to_string())
                .collect(),
            state
                .physical_optimizers()
                .iter()
                .map(|r| r.name().to_string())
                .collect(),
        )
    }

    /// The incremental context drops exactly the listed physical rules, each
    /// a rule of the default optimizer (a renamed rule would otherwise be
    /// kept silently), and keeps the ones results depend on.
    #[test]
    fn incremental_context_skips_only_the_listed_physical_rules() {
        let names = |c: &SessionContext| rules(c).1;
        let ctx = crate::query::session_context();
        let full = names(&ctx);
        let incremental = names(&incremental_context(&ctx));
        for skipped in INCREMENTAL_SKIPPED_PHYSICAL_RULES {
            assert!(
                full.iter().any(|n| n == skipped),
                "{skipped} is a default rule"
            );
        }
        let expected: Vec<String> = full
            .iter()
            .filter(|n| !INCREMENTAL_SKIPPED_PHYSICAL_RULES.contains(&n.as_str()))
            .cloned()
            .collect();
        assert_eq!(incremental, expected);
        // Incremental plans run in one partition.
        assert_eq!(
            incremental_context(&ctx)
                .state()
                .config()
                .target_partitions(),
            1
        );
        for kept in [
            "EnforceDistribution",
            "EnforceSorting",
            "OutputRequirements",
        ] {
            assert!(incremental.iter().any(|n| n == kept), "{kept} kept");
        }
    }

    /// With the tuning `lean-incremental-plans` on, incremental builds plan
    /// with the four logical rules, without the skipped physical ones, in
    /// one partition and with the `hash` PIT strategy; with it off, in the
    /// run's context: every default rule, its partitions, `auto`.
    #[test]
    fn lean_incremental_plans_switch_the_incremental_context() {
        let logical = |c: &SessionContext| rules(c).0;
        let physical = |c: &SessionContext| rules(c).1;
        let strategy = |c: &SessionContext| PitJoinOptions::from_config(c.state().config());
        let ctx = crate::query::session_context();
        let partitions = ctx.state().config().target_partitions();
        assert!(logical(&ctx).len() > 10, "{:?}", logical(&ctx));

        let lean = BuildContexts::new(&ctx, true);
        assert_eq!(
            logical(&lean.incremental),
            [
                "simplify_expressions",
                "replace_distinct_aggregate",
                "push_down_filter",
                "optimize_projections"
            ]
        );
        assert_eq!(
            physical(&lean.incremental).len(),
            physical(&ctx).len() - INCREMENTAL_SKIPPED_PHYSICAL_RULES.len()
        );
        assert_eq!(lean.incremental.state().config().target_partitions(), 1);
        assert_eq!(
            strategy(&lean.incremental),
            PitJoinOptions::with_strategy(PitJoinStrategy::Hash)
        );
        assert_eq!(logical(&lean.full), logical(&ctx));

        let plain = BuildContexts::new(&ctx, false);
        for c in [&plain.full, &plain.incremental] {
            assert_eq!(logical(c), logical(&ctx));
            assert_eq!(physical(c), physical(&ctx));
            assert_eq!(c.state().config().target_partitions(), partitions);
            assert_eq!(strategy(c), strategy(&ctx));
            assert_eq!(strategy(c).strategy, PitJoinStrategy::Auto);
        }
    }
}
