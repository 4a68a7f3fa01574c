//! Running the DAG: build planned models in dependency order, independent
//! ones concurrently; and the two product runs, `init` and `elt`.
//!
//! Each model build is one atomic commit that also records the model's
//! fingerprint and the snapshot of every input it read (see [`super::plan`]),
//! so after a failure or a kill the next run sees which models are already
//! current and builds only the rest: a re-run converges to the same tables as
//! an uninterrupted run, without redoing committed work.
//!
//! Runs are logged in the Iceberg table `lakehouse.runs` (one row when a run
//! starts, one when it is done). With the embedded source, `elt` serves the
//! day after the last completed run's day (or the same day again, to finish
//! an interrupted run) with the same scale and seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::lock::RunLock;
use super::plan::{
    DEP_EPOCH_PREFIX, DEP_PREFIX, FINGERPRINT, Planned, Status, load_tables, plan_with,
};
use super::registry::{Dag, ModelKind};
use super::sources::{self, EmbeddedSettings, Served};
pub use super::sources::{SourceSpec, held_pages_bytes};
use super::upkeep::{MaintainOptions, UpkeepReport, upkeep_locked};
use crate::budget::MemoryBudget;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::land::ExtractReport;
use crate::model::Project;
use crate::model::build::{
    BuildContexts, BuildMode, EPOCH, build_dar_model_with, build_frame_with,
};
use crate::model::dar::Dar;
use crate::storage::upkeep::UpkeepPolicy;
use crate::storage::{AsOf, CommitOutcome, TableName, Warehouse, Write};
use crate::tuning::Tuning;

/// Options of a model run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Models built at the same time (0: two per core; see [`run_models`]).
    pub concurrency: usize,
    /// Progress bars on a terminal.
    pub progress: bool,
    /// Test hook: fail when this model (`ns.table`) starts, as a crash would.
    pub fail_at: Option<String>,
    /// Test hook: this model (`ns.table`) runs out of memory the first time
    /// it starts, as it would beside other builds sharing the pool.
    pub out_of_memory_once_at: Option<String>,
    /// The memory budget the run's queries execute under; it also caps the
    /// models built at once ([`MemoryBudget::models_at_once`]).
    pub budget: MemoryBudget,
    /// The speed tunings the run uses (all by default; see
    /// [`crate::tuning`]): the run hands each its switch.
    pub tuning: Tuning,
}

/// What happened to one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRun {
    pub model: String,
    pub status: Status,
    pub full: bool,
    pub rows: u64,
    pub seconds: f64,
    pub commit: Option<CommitOutcome>,
    /// Bytes spilled to disk to stay within the memory budget.
    pub spilled_bytes: u64,
}

/// What every model build of a run reads.
struct Shared {
    wh: Warehouse,
    project: Project,
    dag: Dag,
    options: RunOptions,
    contexts: BuildContexts,
}

/// Build the planned models (those not up to date) in dependency order.
pub async fn run_models(
    wh: &Warehouse,
    project: &Project,
    dag: &Dag,
    planned: &[Planned],
    options: &RunOptions,
    lock: Option<&RunLock>,
) -> Result<Vec<ModelRun>> {
    let todo: BTreeMap<usize, &Planned> = planned
        .iter()
        .filter(|p| p.status != Status::UpToDate)
        .map(|p| (p.node, p))
        .collect();
    // Two models per core by default: a build alternates CPU work with
    // waits (file reads and writes, the commit's pointer swap) and phases
    // on one thread (planning, writing Parquet), so with one model per core
    // the CPU sat partly idle (figures: `docs/benchmarks.md`).
    let limit = options.budget.models_at_once(if options.concurrency == 0 {
        2 * datafusion::common::utils::get_available_parallelism()
    } else {
        options.concurrency
    });
    let bar = if options.progress {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} models [{bar:30}] {pos}/{len} {msg}",
            )
            .map_err(|e| Error::internal(e.to_string()))?
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let contexts = BuildContexts::new(
        &options.budget.context()?,
        options.tuning.lean_incremental_plans,
    );
    if let Some(bytes) = options.budget.kept_rows_bytes() {
        wh.cache().set_added_budget(bytes);
    }
    // Only DAR models need the DAR layer; deriving it checks the config
    // once, before any build starts.
    let needs_dar = todo
        .keys()
        .any(|i| matches!(dag.nodes[*i].kind, ModelKind::Dar { .. }));
    if needs_dar {
        Dar::new(project)?;
    }
    // Each build is a task of its own, so builds run on every worker
    // thread (in one task, their planning, decoding and commits took turns
    // on one thread); they share the run's inputs. They are aborted when
    // the run's future is dropped, so a cancelled run does not go on
    // committing beside the next one.
    let shared = Arc::new(Shared {
        wh: wh.clone(),
        project: project.clone(),
        dag: dag.clone(),
        options: options.clone(),
        contexts,
    });
    let mut cost = vec![1; dag.nodes.len()];
    for p in todo.values() {
        cost[p.node] = p.cost();
    }
    let chains = dag.chain_costs(&cost);
    let mut waiting: BTreeSet<usize> = todo.keys().copied().collect();
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    // The models `running` builds.
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut results = Vec::new();
    // A model that fails stops only the models that read it (transitively):
    // every other model still builds. Losing the run lock stops the run.
    let mut failures: Vec<(usize, Error)> = Vec::new();
    let mut skipped: BTreeSet<usize> = BTreeSet::new();
    let mut stop: Option<Error> = None;
    // A model that ran out of memory while others were building shared the
    // pool with them: it is built again, once, alone (nothing of it was
    // committed), after the builds running then have ended. Models that
    // built beside another one.
    let mut company: BTreeSet<usize> = BTreeSet::new();
    let mut retry: Vec<usize> = Vec::new();
    let mut retried: BTreeSet<usize> = BTreeSet::new();
    loop {
        if stop.is_none()
            && let Some(l) = lock
            && let Err(e) = l.check()
        {
            stop = Some(e);
        }
        // Whether a model retried alone is building: nothing starts beside it.
        let alone = active.len() == 1 && active.iter().all(|i| retried.contains(i));
        if stop.is_none() && !alone {
            let ready: Vec<usize> = if retry.is_empty() {
                let mut ready: Vec<usize> = waiting
                    .iter()
                    .copied()
                    .filter(|i| {
                        dag.nodes[*i]
                            .deps
                            .iter()
                            .all(|d| !todo.contains_key(d) || done.contains(d))
                    })
                    .collect();
                // Costliest chains of readers first (see `Dag::chain_costs`).
                ready.sort_by_key(|&i| (std::cmp::Reverse(chains[i]), i));
                ready.truncate(limit.saturating_sub(running.len()));
                ready
            } else if running.is_empty() {
                vec![retry.remove(0)]
            } else {
                // A retry waits for the running builds to end.
                vec![]
            };
            for i in ready {
                waiting.remove(&i);
                if !active.is_empty() {
                    company.insert(i);
                    company.extend(active.iter().copied());
                }
                let p = todo[&i].clone();
                let shared = Arc::clone(&shared);
                let inject_oom = !retried.contains(&i)
                    && options.out_of_memory_once_at.as_deref()
                        == Some(dag.nodes[i].name.to_string().as_str());
                let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                    let Shared {
                        wh,
                        project,
                        dag,
                        options,
                        contexts,
                    } = &*shared;
                    if inject_oom {
                        return Err(Error::new(
                            ErrorKind::OutOfMemory,
                            "injected: Failed to allocate additional 1 MB for ExternalSorter[0]",
                        ));
                    }
                    let dar = match dag.nodes[p.node].kind {
                        ModelKind::Dar { .. } => Some(Dar::new(project)?),
                        _ => None,
                    };
                    build_node(wh, project, dar.as_ref(), dag, &p, contexts, options).await
                }));
                active.insert(i);
                running.push(async move {
                    let r = task.await.unwrap_or_else(|e| {
                        Err(Error::internal(format!("model build task failed: {e}")))
                    });
                    (i, r)
                });
            }
        }
        let Some((i, r)) = running.next().await else {
            break;
        };
        active.remove(&i);
        let shared_pool = company.remove(&i);
        bar.inc(1);
        bar.set_message(dag.nodes[i].name.to_string());
        match r {
            Ok(run) => {
                done.insert(i);
                results.push(run);
            }
            Err(e) => {
                let e = options.budget.explain(&dag.nodes[i].name.to_string(), e);
                if e.kind() == ErrorKind::OutOfMemory && shared_pool && retried.insert(i) {
                    tracing::info!(model = %dag.nodes[i].name, "out of memory beside other builds: retrying alone");
                    retry.push(i);
                    continue;
                }
                let below = dag.descendants(&BTreeSet::from([i]));
                for d in below.intersection(&waiting.clone()) {
                    waiting.remove(d);
                    skipped.insert(*d);
                }
                failures.push((i, e));
            }
        }
    }
    bar.finish_and_clear();
    if let Some(e) = stop {
        return Err(e);
    }
    if !failures.is_empty() {
        return Err(failed_models(dag, failures, &skipped, results.len()));
    }
    results.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(results)
}

/// The error of a run in which models failed: the first failure's, as it
/// is when it is the only one and nothing had to be skipped; otherwise one
/// line naming every failed model, how many models that read them were not
/// built, how many were, and the first failure's cause.
fn failed_models(
    dag: &Dag,
    mut failures: Vec<(usize, Error)>,
    skipped: &BTreeSet<usize>,
    built: usize,
) -> Error {
    if failures.len() == 1 && skipped.is_empty() {
        return failures.remove(0).1;
    }
    let names: Vec<String> = failures
        .iter()
        .map(|(i, _)| dag.nodes[*i].name.to_string())
        .collect();
    let (_, first) = failures.remove(0);
    Error::new(
        first.kind(),
        format!(
            "{} model(s) failed ({}); {} model(s) reading them were not built, the other {built} were \
             (re-run to finish); first failure",
            names.len(),
            names.join(", "),
            skipped.len(),
        ),
    )
    .with_source(first)
}

async fn build_node(
    wh: &Warehouse,
    project: &Project,
    dar: Option<&Dar<'_>>,
    dag: &Dag,
    planned: &Planned,
    contexts: &BuildContexts,
    options: &RunOptions,
) -> Result<ModelRun> {
    let node = &dag.nodes[planned.node];
    if options.fail_at.as_deref() == Some(node.name.to_string().as_str()) {
        return Err(Error::new(
            ErrorKind::Internal,
            format!("injected failure at {}", node.name),
        ));
    }
    let t0 = Instant::now();
    // Pin every input at its current snapshot and record what was read.
    let mut extra = BTreeMap::from([(FINGERPRINT.to_string(), node.fingerprint.clone())]);
    let mut pins = Vec::new();
    let mut pinned = std::collections::HashMap::new();
    let deps = futures::future::try_join_all(node.deps.iter().map(|&d| {
        let dep = &dag.nodes[d].name;
        async move { Ok::<_, Error>((dep, wh.load_table(dep).await?)) }
    }))
    .await?;
    for (dep, loaded) in deps {
        // A compaction is not a change: record the snapshot that last changed rows.
        let snap = loaded.data_snapshot_id();
        extra.insert(
            format!("{DEP_PREFIX}{dep}"),
            snap.map(|s| s.to_string()).unwrap_or_default(),
        );
        extra.insert(
            format!("{DEP_EPOCH_PREFIX}{dep}"),
            loaded
                .current_properties()
                .get(EPOCH)
                .cloned()
                .unwrap_or_default(),
        );
        pins.push(snap);
        pinned.insert(dep.to_string(), loaded);
    }
    let mode = if planned.full() {
        BuildMode::Full
    } else {
        BuildMode::Incremental
    };
    let report = match &node.kind {
        ModelKind::Raw => {
            return Err(Error::internal(format!(
                "{} is landed by extract, not built",
                node.name
            )));
        }
        ModelKind::Dar { kind } => {
            let dar = dar.ok_or_else(|| Error::internal("no DAR layer"))?;
            let model = dar.model(*kind)?;
            build_dar_model_with(wh, contexts, dar, &model, mode, &extra, &pinned).await?
        }
        ModelKind::Frame { frame } => {
            let frame = project
                .model
                .frame(frame)
                .ok_or_else(|| Error::internal(format!("no frame {frame}")))?;
            let resource = project.resource_of(frame)?;
            let as_of = pins
                .first()
                .copied()
                .flatten()
                .map(AsOf::Snapshot)
                .unwrap_or(AsOf::Latest);
            build_frame_with(
                wh,
                contexts,
                frame,
                &resource.primary_key,
                mode,
                as_of,
                &extra,
            )
            .await?
        }
    };
    Ok(ModelRun {
        model: node.name.to_string(),
        status: planned.status,
        full: report.mode == BuildMode::Full,
        rows: report.rows,
        seconds: t0.elapsed().as_secs_f64(),
        commit: report.commit,
        spilled_bytes: report.spilled_bytes,
    })
}

/// Options of `init` and `elt`.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub source: SourceSpec,
    pub run: RunOptions,
    /// `init` on a non-empty warehouse: drop every table first.
    pub force: bool,
    /// How long a run lock stays valid without renewal.
    pub lock_ttl: Duration,
    /// Upkeep `elt` runs after its models (`None`: none; see
    /// [`super::upkeep`]).
    pub upkeep: Option<UpkeepPolicy>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            source: SourceSpec::default(),
            run: RunOptions::default(),
            force: false,
            lock_ttl: Duration::from_secs(60),
            upkeep: None,
        }
    }
}

/// What a pipeline run did.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    pub run_id: String,
    /// The embedded source's day, if embedded.
    pub day: Option<u32>,
    pub extract: ExtractReport,
    pub models: Vec<ModelRun>,
    /// Wall time of the whole run, and of its extraction.
    pub seconds: f64,
    pub extract_seconds: f64,
    /// What the upkeep after an `elt` did, or why it failed (the run's own
    /// work is committed either way).
    pub upkeep: Option<std::result::Result<UpkeepReport, String>>,
}

/// The run log table.
pub fn runs_table() -> TableName {
    TableName {
        namespace: "lakehouse".into(),
        name: "runs".into(),
    }
}

fn runs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("command", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("day", DataType::Int64, true),
        Field::new("scale", DataType::Float64, true),
        Field::new("seed", DataType::Int64, true),
        Field::new("source", DataType::Utf8, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

#[derive(Debug, Clone, PartialEq)]
struct RunRow {
    status: String,
    day: Option<u32>,
    scale: Option<f64>,
    seed: Option<u64>,
}

async fn last_run(wh: &Warehouse) -> Result<Option<RunRow>> {
    if wh.try_load_table(&runs_table()).await?.is_none() {
        return Ok(None);
    }
    let mut last: Option<(i64, RunRow)> = None;
    for b in wh.scan(&runs_table(), AsOf::Latest).await? {
        let col = |n: &str| {
            b.column_by_name(n).cloned().ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("lakehouse.runs has no column {n}"),
                )
            })
        };
        let at = col("at")?;
        let at = at
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "lakehouse.runs.at"))?;
        let status = arrow::compute::cast(&col("status")?, &DataType::Utf8)?;
        let status = status
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "lakehouse.runs.status"))?
            .clone();
        let day = col("day")?;
        let day = day
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "lakehouse.runs.day"))?
            .clone();
        let scale = col("scale")?;
        let scale = scale
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "lakehouse.runs.scale"))?
            .clone();
        let seed = col("seed")?;
        let seed = seed
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "lakehouse.runs.seed"))?
            .clone();
        for i in 0..b.num_rows() {
            let row = RunRow {
                status: status.value(i).to_string(),
                day: (!day.is_null(i)).then(|| day.value(i) as u32),
                scale: (!scale.is_null(i)).then(|| scale.value(i)),
                seed: (!seed.is_null(i)).then(|| seed.value(i) as u64),
            };
            if last.as_ref().is_none_or(|(t, _)| at.value(i) >= *t) {
                last = Some((at.value(i), row));
            }
        }
    }
    Ok(last.map(|(_, r)| r))
}

#[allow(clippy::too_many_arguments)]
async fn log_run(
    wh: &Warehouse,
    run_id: &str,
    command: &str,
    status: &str,
    day: Option<u32>,
    scale: Option<f64>,
    seed: Option<u64>,
    source: Option<&str>,
) -> Result<()> {
    let batch = RecordBatch::try_new(
        runs_schema(),
        vec![
            Arc::new(StringArray::from(vec![run_id])),
            Arc::new(StringArray::from(vec![command])),
            Arc::new(StringArray::from(vec![status])),
            Arc::new(Int64Array::from(vec![day.map(i64::from)])),
            Arc::new(Float64Array::from(vec![scale])),
            Arc::new(Int64Array::from(vec![seed.map(|s| s as i64)])),
            Arc::new(StringArray::from(vec![source])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![chrono::Utc::now().timestamp_micros()])
                    .with_timezone("UTC"),
            ),
        ],
    )?;
    wh.write(&runs_table(), runs_schema(), vec![batch], Write::append())
        .await?;
    Ok(())
}

/// `init`: extract from the source and build every model from scratch.
pub async fn init(
    wh: &Warehouse,
    project: &Project,
    options: &PipelineOptions,
) -> Result<PipelineReport> {
    let lock = RunLock::acquire(wh, "init", options.lock_ttl).await?;
    let result = async {
        // The run log alone (an `init` that failed before landing anything)
        // does not make the warehouse taken.
        let existing = wh.list_all_tables().await?;
        let runs = runs_table();
        if existing.iter().any(|t| *t != runs) {
            if !options.force {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "the warehouse {} already holds {} tables; run `lakehouse elt` to update it, or `lakehouse init --force` to rebuild it from scratch",
                        wh.url().root_url(),
                        existing.len()
                    ),
                ));
            }
            for t in existing {
                wh.drop_table(&t).await?;
            }
        }
        let spec = &options.source;
        let (day, scale, seed) = if any_embedded(project, spec)? {
            (
                Some(spec.day.unwrap_or(0)),
                Some(spec.scale.unwrap_or(0.01)),
                Some(spec.seed.unwrap_or(42)),
            )
        } else {
            (None, None, None)
        };
        pipeline(wh, project, options, &lock, "init", day, scale, seed, true).await
    }
    .await;
    lock.release().await?;
    result
}

/// `transform`: build the models of `layers` whose name matches `pattern`
/// (all when `None`) from the tables below them, as the plan decides: new
/// and changed models (a config edit) in full, stale ones incrementally,
/// up-to-date ones not at all; with `full`, every selected model in full.
/// Nothing is extracted. Holds the run lock like `init` and `elt`.
pub async fn transform(
    wh: &Warehouse,
    project: &Project,
    layers: &[super::Layer],
    pattern: Option<&str>,
    full: bool,
    options: &RunOptions,
    lock_ttl: Duration,
) -> Result<Vec<ModelRun>> {
    let dag = Dag::build_with(project, options.tuning.plan_cache)?;
    let mut selected = Vec::new();
    let mut matched = false;
    let lock = RunLock::acquire(wh, "transform", lock_ttl).await?;
    let result = async {
        for p in plan_with(&dag, full, &load_tables(wh, |_| true).await?) {
            let node = &dag.nodes[p.node];
            if !layers.contains(&node.layer) {
                continue;
            }
            if let Some(pat) = pattern
                && !crate::model::build::matches_pattern(
                    pat,
                    &node.name.namespace,
                    &node.name.name,
                )?
            {
                continue;
            }
            matched = true;
            selected.push(p);
        }
        if !matched {
            return Err(Error::not_found(format!(
                "no model of the layer(s) asked for matches '{}' (`lakehouse render` lists them)",
                pattern.unwrap_or("*")
            )));
        }
        run_models(wh, project, &dag, &selected, options, Some(&lock)).await
    }
    .await;
    lock.release().await?;
    result
}

/// `elt`: extract what changed (the embedded source advances one simulated
/// day) and update only the affected models.
pub async fn elt(
    wh: &Warehouse,
    project: &Project,
    options: &PipelineOptions,
) -> Result<PipelineReport> {
    let lock = RunLock::acquire(wh, "elt", options.lock_ttl).await?;
    let result = async {
        let last = last_run(wh).await?;
        let spec = &options.source;
        let (day, scale, seed) = match (any_embedded(project, spec)?, &last) {
            (false, _) => (None, None, None),
            (true, None) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the warehouse {} has not been initialised: run `lakehouse init` first",
                        wh.url().root_url()
                    ),
                ));
            }
            (true, Some(last)) => {
                let next = match (spec.day, last.day) {
                    (Some(d), _) => d,
                    // An interrupted run is finished on the same day.
                    (None, Some(d)) if last.status != "done" => d,
                    (None, Some(d)) => d + 1,
                    (None, None) => 0,
                };
                (
                    Some(next),
                    spec.scale.or(last.scale).or(Some(0.01)),
                    spec.seed.or(last.seed).or(Some(42)),
                )
            }
        };
        let mut report =
            pipeline(wh, project, options, &lock, "elt", day, scale, seed, false).await?;
        if let Some(policy) = &options.upkeep {
            let upkeep = MaintainOptions {
                tables: None,
                policy: policy.clone(),
                budget: options.run.budget.clone(),
                orphans_when_due: true,
            };
            let t0 = Instant::now();
            let done = upkeep_locked(wh, &upkeep, &lock).await;
            if let Err(e) = &done {
                tracing::warn!(error = %format_args!("{e:#}"), "upkeep after elt failed; run `lakehouse maintain`");
            }
            report.upkeep = Some(done.map_err(|e| format!("{e:#}")));
            report.seconds += t0.elapsed().as_secs_f64();
        }
        Ok(report)
    }
    .await;
    lock.release().await?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn pipeline(
    wh: &Warehouse,
    project: &Project,
    options: &PipelineOptions,
    lock: &RunLock,
    command: &str,
    day: Option<u32>,
    scale: Option<f64>,
    seed: Option<u64>,
    full: bool,
) -> Result<PipelineReport> {
    let t0 = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let served = options.source.resolve(&project.sources)?;
    let source_url = sources::describe(&served);
    // An embedded source generates its data set while the run is logged
    // and the DAG is built; extraction starts after both.
    let spill = sources::source_spill(&options.run.budget);
    let mut started = Vec::with_capacity(served.len());
    for (source, where_) in &served {
        let horizons = horizons(wh, source, where_, full, &options.run.tuning).await?;
        if !horizons.is_empty() {
            tracing::debug!(source = %source.name, ?horizons, "embedded source horizons");
        }
        let settings = EmbeddedSettings {
            day: day.unwrap_or(0),
            scale: scale.unwrap_or(0.01),
            seed: seed.unwrap_or(42),
            horizons,
            spill: spill.clone(),
        };
        started.push((*source, sources::start(source, where_, &settings)));
    }
    log_run(
        wh,
        &run_id,
        command,
        "started",
        day,
        scale,
        seed,
        source_url.as_deref(),
    )
    .await?;
    // The DAG (every model's plan rendered and fingerprinted) does not
    // depend on the extracted data: build it on another thread meanwhile.
    let dag_build = {
        let project = project.clone();
        let plan_cache = options.run.tuning.plan_cache;
        tokio::task::spawn_blocking(move || Dag::build_with(&project, plan_cache))
    };
    let t_extract = Instant::now();
    // Extraction only writes DAS tables (and this run holds the lock): the
    // others are loaded for planning meanwhile.
    let is_das = |t: &TableName| t.namespace == crate::das::NAMESPACE;
    let (extract_report, models_loaded) = tokio::join!(
        sources::extract_all(wh, started, options.run.progress, &options.run.budget),
        load_tables(wh, |t| !is_das(t))
    );
    let extract_report = extract_report?;
    if !extract_report.failures().is_empty() {
        return Err(Error::new(
            ErrorKind::Source,
            format!(
                "extraction failed for {} resource(s); models were not built (re-run to retry; the others were committed):\n{}",
                extract_report.failures().len(),
                crate::extract::land::failure_lines(&extract_report.failures())
            ),
        ));
    }
    let extract_seconds = t_extract.elapsed().as_secs_f64();
    tracing::debug!(ms = t_extract.elapsed().as_millis() as u64, "extracted");
    lock.check()?;
    let t_plan = Instant::now();
    let dag = dag_build
        .await
        .map_err(|e| Error::internal(format!("building the model DAG failed: {e}")))??;
    let dag_ms = t_plan.elapsed().as_millis() as u64;
    let mut tables = models_loaded?;
    tables.extend(load_tables(wh, is_das).await?);
    let planned = plan_with(&dag, full, &tables);
    tracing::debug!(
        dag_wait_ms = dag_ms,
        ms = t_plan.elapsed().as_millis() as u64,
        "planned"
    );
    let models = run_models(wh, project, &dag, &planned, &options.run, Some(lock)).await?;
    log_run(
        wh,
        &run_id,
        command,
        "done",
        day,
        scale,
        seed,
        source_url.as_deref(),
    )
    .await?;
    Ok(PipelineReport {
        run_id,
        day,
        extract: extract_report,
        models,
        seconds: t0.elapsed().as_secs_f64(),
        extract_seconds,
        upkeep: None,
    })
}

/// Per API path, the date before which the embedded generator need not
/// keep `source`'s rows in this run: the landed cursors
/// ([`sources::embedded_horizons`]) when the run is incremental (not
/// `full`), the source embedded and the tuning `skip-landed` on; none
/// otherwise. An incremental run asks each table only for the rows from
/// its cursor on, so the rows left out are rows it never asks for.
pub async fn horizons(
    wh: &Warehouse,
    source: &crate::config::SourceConfig,
    served: &Served,
    full: bool,
    tuning: &Tuning,
) -> Result<BTreeMap<String, chrono::NaiveDate>> {
    Ok(match (served, full) {
        (Served::Embedded, false) if tuning.skip_landed => {
            sources::embedded_horizons(wh, source).await?
        }
        _ => BTreeMap::new(),
    })
}

/// Whether any of `project`'s sources is served by the embedded generator.
fn any_embedded(project: &Project, spec: &SourceSpec) -> Result<bool> {
    Ok(spec
        .resolve(&project.sources)?
        .iter()
        .any(|(_, w)| *w == Served::Embedded))
}
