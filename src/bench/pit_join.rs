//! PIT join benchmark: skewed SCD2 data and a same-run comparison of our
//! operator with DataFusion's built-in plan of the same SQL.
//!
//! Data (all `Int64`; bounds are seconds since the epoch):
//!
//! * right `r(k, id, vf, vt)`: `keys` keys x `versions` versions per key;
//!   per key the versions are contiguous (`vt` of one is `vf` of the next,
//!   lengths random in `[STEP/2, 3*STEP/2)`), the last one open-ended at
//!   9999-12-31; `id` is unique;
//! * left `l(k, id, vf, vt)`: `left_rows` rows, key uniform over the right
//!   keys, except a `hot_share` fraction that all use key 0; `vf` uniform over
//!   the versioned span, `vt = vf + length` with a short length
//!   (`[1, 2*STEP]`), so each left row overlaps about two versions.
//!
//! Both contexts use the same `target_partitions` (`threads`) and batch
//! size; the built-in one lacks only our rule and planner. Our operator runs
//! once per requested strategy (`lakehouse.pit_join.strategy`), each
//! compared with the one built-in run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::join::{PitJoinOptions, PitJoinStrategy};
use crate::query::session_context_with_config;

/// Nominal version length in seconds (one day).
pub const STEP: i64 = 86_400;
/// 9999-12-31T00:00:00Z in seconds: the open end of current versions.
pub const FAR_FUTURE: i64 = 253_402_214_400;
/// The benchmarked query.
pub const BENCH_SQL: &str = "SELECT count(*), sum(r.id) FROM l LEFT JOIN r \
     ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf";

/// Shape of the generated data.
#[derive(Debug, Clone, PartialEq)]
pub struct PitBenchConfig {
    /// Rows on the left (event/child) side.
    pub left_rows: usize,
    /// Distinct keys on the right side.
    pub keys: usize,
    /// Versions per key on the right side.
    pub versions: usize,
    /// Fraction of left rows that use the hot key 0 (0.0 = uniform).
    pub hot_share: f64,
    /// RNG seed.
    pub seed: u64,
    /// `target_partitions` of both contexts (and partitions of the tables).
    pub threads: usize,
    /// Rows per generated batch and session batch size.
    pub batch_size: usize,
    /// Strategies of our operator to run (at least one), in this order.
    pub strategies: Vec<PitJoinStrategy>,
    /// Timed runs of each plan (at least one). Runs are interleaved (every
    /// plan once per round), after one untimed warm-up round when there
    /// are several, and each plan's median time is reported.
    pub runs: usize,
}

impl Default for PitBenchConfig {
    fn default() -> Self {
        Self {
            left_rows: 100_000,
            keys: 100,
            versions: 100,
            hot_share: 0.0,
            seed: 42,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 8192,
            strategies: vec![PitJoinStrategy::default()],
            runs: 1,
        }
    }
}

impl PitBenchConfig {
    /// Check the numbers make sense.
    pub fn validate(&self) -> Result<()> {
        if self.keys == 0 || self.versions == 0 {
            return Err(Error::invalid("--keys and --versions must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.hot_share) {
            return Err(Error::invalid("--hot-share must be within [0, 1]"));
        }
        if self.threads == 0 || self.batch_size == 0 {
            return Err(Error::invalid(
                "--threads and batch size must be at least 1",
            ));
        }
        if self.strategies.is_empty() {
            return Err(Error::invalid("at least one --strategy is needed"));
        }
        if self.runs == 0 {
            return Err(Error::invalid("--runs must be at least 1"));
        }
        Ok(())
    }

    /// Rows on the right side.
    pub fn right_rows(&self) -> usize {
        self.keys * self.versions
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("id", DataType::Int64, false),
        Field::new("vf", DataType::Int64, false),
        Field::new("vt", DataType::Int64, false),
    ]))
}

/// Accumulates rows and cuts them into batches as it goes, so the data is
/// held once (no second full-size copy while generating).
struct BatchBuilder {
    schema: SchemaRef,
    batch_size: usize,
    columns: [Vec<i64>; 4],
    batches: Vec<RecordBatch>,
}

impl BatchBuilder {
    fn new(batch_size: usize) -> Self {
        Self {
            schema: schema(),
            batch_size,
            columns: Default::default(),
            batches: Vec::new(),
        }
    }

    fn push(&mut self, row: [i64; 4]) -> Result<()> {
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.push(v);
        }
        if self.columns[0].len() >= self.batch_size {
            self.cut()?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        if self.columns[0].is_empty() {
            return Ok(());
        }
        let cols = self
            .columns
            .iter_mut()
            .map(|c| Arc::new(Int64Array::from(std::mem::take(c))) as _)
            .collect();
        self.batches
            .push(RecordBatch::try_new(Arc::clone(&self.schema), cols)?);
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<RecordBatch>> {
        self.cut()?;
        Ok(self.batches)
    }
}

/// Generated left and right batches.
#[derive(Debug, Clone)]
pub struct PitBenchData {
    /// Left side batches.
    pub left: Vec<RecordBatch>,
    /// Right side batches.
    pub right: Vec<RecordBatch>,
}

/// Generate the data described in the module docs.
pub fn generate(config: &PitBenchConfig) -> Result<PitBenchData> {
    config.validate()?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut right = BatchBuilder::new(config.batch_size);
    let mut span_end = 0i64;
    for key in 0..config.keys {
        let mut t = 0i64;
        for v in 0..config.versions {
            let from = t;
            t += rng.random_range(STEP / 2..STEP * 3 / 2);
            let to = if v + 1 == config.versions {
                FAR_FUTURE
            } else {
                t
            };
            right.push([key as i64, (key * config.versions + v) as i64, from, to])?;
        }
        span_end = span_end.max(t);
    }
    let span_end = span_end.max(1);
    let mut left = BatchBuilder::new(config.batch_size);
    for i in 0..config.left_rows {
        let key = if rng.random_bool(config.hot_share) {
            0
        } else {
            rng.random_range(0..config.keys) as i64
        };
        let vf = rng.random_range(0..span_end);
        let vt = vf + rng.random_range(1..=2 * STEP);
        left.push([key, i as i64, vf, vt])?;
    }
    Ok(PitBenchData {
        left: left.finish()?,
        right: right.finish()?,
    })
}

fn config_for(threads: usize, batch_size: usize) -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(threads)
        .with_batch_size(batch_size)
}

/// Spread batches round-robin over `parts` partitions.
fn partitioned(batches: &[RecordBatch], parts: usize) -> Vec<Vec<RecordBatch>> {
    let mut out = vec![Vec::new(); parts.max(1)];
    let len = out.len();
    for (i, b) in batches.iter().enumerate() {
        out[i % len].push(b.clone());
    }
    out
}

/// Register `l` and `r` as in-memory tables.
pub fn register(ctx: &SessionContext, data: &PitBenchData, threads: usize) -> Result<()> {
    let schema = schema();
    let left = MemTable::try_new(Arc::clone(&schema), partitioned(&data.left, threads))?;
    let right = MemTable::try_new(schema, partitioned(&data.right, threads))?;
    ctx.register_table("l", Arc::new(left))?;
    ctx.register_table("r", Arc::new(right))?;
    Ok(())
}

/// Context with our operator (executed with `strategy`) and the tables
/// registered.
pub fn pit_context(
    data: &PitBenchData,
    config: &PitBenchConfig,
    strategy: PitJoinStrategy,
) -> Result<SessionContext> {
    let ctx = session_context_with_config(
        config_for(config.threads, config.batch_size)
            .with_option_extension(PitJoinOptions::with_strategy(strategy)),
    );
    register(&ctx, data, config.threads)?;
    Ok(ctx)
}

/// Context with DataFusion's built-in planning only and the tables registered.
pub fn builtin_context(data: &PitBenchData, config: &PitBenchConfig) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config(config_for(config.threads, config.batch_size));
    register(&ctx, data, config.threads)?;
    Ok(ctx)
}

/// One timed execution.
#[derive(Debug, Clone, PartialEq)]
pub struct PitRun {
    /// `count(*)`.
    pub count: i64,
    /// `sum(r.id)` (NULL counts as 0).
    pub sum: i64,
    /// Planning and execution time (the median of `times`).
    pub elapsed: Duration,
    /// Every timed run, in order.
    pub times: Vec<Duration>,
    /// Whether the physical plan used `PitJoinExec`.
    pub used_pit_join: bool,
    /// The strategy the plan executes (`auto` resolved), if it used
    /// `PitJoinExec`.
    pub executed_strategy: Option<PitJoinStrategy>,
}

/// Plan and run [`BENCH_SQL`] on `ctx`.
pub async fn run_query(ctx: &SessionContext) -> Result<PitRun> {
    let started = Instant::now();
    let df = ctx.sql(BENCH_SQL).await?;
    let plan = df.create_physical_plan().await?;
    let display = displayable(plan.as_ref()).indent(false).to_string();
    let used_pit_join = display.contains("PitJoinExec");
    let executed_strategy = display
        .split("PitJoinExec: strategy=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|s| s.parse().ok());
    let batches = collect(plan, ctx.task_ctx()).await?;
    let elapsed = started.elapsed();
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::internal("benchmark query returned no row"))?;
    let count = batch
        .column(0)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::internal("count(*) is not Int64"))?
        .value(0);
    let sums = batch
        .column(1)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::internal("sum(r.id) is not Int64"))?;
    let sum = if sums.is_null(0) { 0 } else { sums.value(0) };
    Ok(PitRun {
        count,
        sum,
        elapsed,
        times: vec![elapsed],
        used_pit_join,
        executed_strategy,
    })
}

impl PitRun {
    /// Add the time of another run of the same plan (same result expected).
    fn merge(&mut self, other: PitRun) -> Result<()> {
        if (self.count, self.sum) != (other.count, other.sum) {
            return Err(Error::internal(format!(
                "two runs of one plan differ: count={} sum={} vs count={} sum={}",
                self.count, self.sum, other.count, other.sum
            )));
        }
        self.times.extend(other.times);
        let mut sorted = self.times.clone();
        sorted.sort();
        self.elapsed = sorted[sorted.len() / 2];
        Ok(())
    }
}

/// Result of [`run_comparison`].
#[derive(Debug, Clone, PartialEq)]
pub struct PitBenchReport {
    /// The configuration.
    pub config: PitBenchConfig,
    /// Our operator, once per strategy of the configuration.
    pub pit: Vec<(PitJoinStrategy, PitRun)>,
    /// DataFusion's plan.
    pub builtin: PitRun,
}

impl PitBenchReport {
    /// `builtin time / our time` of a run of ours.
    pub fn speedup_of(&self, run: &PitRun) -> f64 {
        self.builtin.elapsed.as_secs_f64() / run.elapsed.as_secs_f64().max(1e-9)
    }

    /// `builtin time / our time` of the first strategy.
    pub fn speedup(&self) -> f64 {
        self.pit
            .first()
            .map_or(0.0, |(_, run)| self.speedup_of(run))
    }

    /// Human-readable summary.
    pub fn render(&self) -> String {
        let input = (self.config.left_rows + self.config.right_rows()) as f64;
        let line = |name: &str, r: &PitRun| {
            let secs = r.elapsed.as_secs_f64().max(1e-9);
            let spread = if r.times.len() > 1 {
                let min = r.times.iter().min().map_or(0.0, Duration::as_secs_f64);
                let max = r.times.iter().max().map_or(0.0, Duration::as_secs_f64);
                format!("  (median of {}: {min:.3}..{max:.3} s)", r.times.len())
            } else {
                String::new()
            };
            format!(
                "{name:<26} {:>10.3} s  {:>14.0} input rows/s  {:>14.0} result rows/s  count={} sum={}{spread}",
                secs,
                input / secs,
                r.count as f64 / secs,
                r.count,
                r.sum
            )
        };
        let mut out = format!(
            "PIT join benchmark: left={} right={} ({} keys x {} versions) hot-share={} threads={} seed={}\n",
            self.config.left_rows,
            self.config.right_rows(),
            self.config.keys,
            self.config.versions,
            self.config.hot_share,
            self.config.threads,
            self.config.seed,
        );
        for (strategy, run) in &self.pit {
            let name = match run.executed_strategy {
                Some(s) if s != *strategy => format!("pit_join strategy={strategy}({s})"),
                _ => format!("pit_join strategy={strategy}"),
            };
            out.push_str(&line(&name, run));
            out.push('\n');
        }
        out.push_str(&line("builtin", &self.builtin));
        out.push('\n');
        for (strategy, run) in &self.pit {
            out.push_str(&format!(
                "speedup (builtin / pit, strategy={strategy}): {:.2}x\n",
                self.speedup_of(run)
            ));
        }
        out
    }
}

/// Generate data, run our operator (each strategy) and the built-in plan in
/// the same process, and check they agree.
pub async fn run_comparison(config: &PitBenchConfig) -> Result<PitBenchReport> {
    config.validate()?;
    let data = generate(config)?;
    let builtin_ctx = builtin_context(&data, config)?;
    let mut contexts = Vec::with_capacity(config.strategies.len());
    for &strategy in &config.strategies {
        contexts.push((strategy, pit_context(&data, config, strategy)?));
    }
    // Rounds: every plan once per round, so drift (memory first faulted
    // in, other load on the machine) hits all plans alike; with several
    // runs, a first untimed round warms up.
    let warm_up = usize::from(config.runs > 1);
    let mut pit: Vec<(PitJoinStrategy, PitRun)> = Vec::new();
    let mut builtin: Option<PitRun> = None;
    for round in 0..warm_up + config.runs {
        for (i, (strategy, ctx)) in contexts.iter().enumerate() {
            let run = run_query(ctx).await?;
            if !run.used_pit_join {
                return Err(Error::internal(
                    "the PIT join rule did not fire on the benchmark query",
                ));
            }
            if round < warm_up {
                continue;
            }
            match pit.get_mut(i) {
                Some((_, r)) => r.merge(run)?,
                None => pit.push((*strategy, run)),
            }
        }
        let run = run_query(&builtin_ctx).await?;
        if round < warm_up {
            continue;
        }
        match builtin.as_mut() {
            Some(r) => r.merge(run)?,
            None => builtin = Some(run),
        }
    }
    let builtin = builtin.ok_or_else(|| Error::internal("no timed run"))?;
    for (strategy, run) in &pit {
        if (run.count, run.sum) != (builtin.count, builtin.sum) {
            return Err(Error::internal(format!(
                "results differ: pit (strategy={strategy}) count={} sum={}, builtin count={} sum={}",
                run.count, run.sum, builtin.count, builtin.sum
            )));
        }
    }
    Ok(PitBenchReport {
        config: config.clone(),
        pit,
        builtin,
    })
}
