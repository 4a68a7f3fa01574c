//! The `lakehouse` command line: argument parsing and dispatch, nothing else.
//!
//! Each verb parses its arguments here and calls one function of the library;
//! output formatting for the terminal lives here too.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use clap::{Parser, Subcommand};

use crate::bench::pit_join::{
    BENCH_SQL, PitBenchConfig, builtin_context, generate, pit_context, run_comparison,
};
use crate::error::{Error, Result};
use crate::join::PitJoinStrategy;
use crate::query::{OutputFormat, explain_sql, format_batches, run_sql};

/// `println!` that ends the process quietly when stdout is closed (e.g. `| head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
use crate::storage::{TableName, Warehouse};

/// A pure-Rust lakehouse: OData -> Iceberg -> HOOK -> Unified Star Schema.
#[derive(Debug, Parser)]
#[command(name = "lakehouse", version, about, long_about = None)]
pub struct Cli {
    /// Where the warehouse lives: a local path, file://..., or s3://bucket/prefix.
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_WAREHOUSE",
        default_value = "./lakehouse"
    )]
    pub warehouse: String,

    /// S3 endpoint for S3-compatible servers (otherwise AWS_ENDPOINT_URL or AWS).
    #[arg(long, global = true, env = "LAKEHOUSE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Memory a run may use, e.g. 4GiB or 512MiB (default: half of the machine's memory).
    /// Sorts, aggregates, windows and joins spill to disk to stay under it.
    #[arg(long, global = true, env = "LAKEHOUSE_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,

    /// Size data files roll over at when a build streams rows into a table,
    /// e.g. 128MiB (the default).
    #[arg(long, global = true, env = "LAKEHOUSE_TARGET_FILE_SIZE")]
    pub target_file_size: Option<String>,

    /// Where spill files go (a temporary directory made in it, removed at exit; default: the OS temp dir).
    #[arg(long, global = true, env = "LAKEHOUSE_SPILL_DIR")]
    pub spill_dir: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the warehouse's tables with row and snapshot counts.
    Tables,
    /// Show a table's snapshots, oldest first.
    History {
        /// The table, as <namespace>.<table>.
        table: String,
    },
    /// Serve the embedded Adventure Works source over HTTP (OData v4) until Ctrl-C.
    DemoSource(DemoSourceArgs),
    /// Extract new and changed source rows into the DAS layer.
    Extract(ExtractArgs),
    /// Run one or more `;`-separated SQL statements over the warehouse and print each result.
    Query {
        /// The SQL script, e.g. "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'x'; SELECT ...".
        sql: String,
        /// Output format.
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
        /// Time travel: read every table as it was at this instant (RFC 3339, e.g. 2026-01-31T12:00:00Z).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Show the physical plan of the script's last statement (earlier ones are run).
    Explain {
        /// Execute the statement and show per-operator metrics.
        #[arg(long)]
        analyze: bool,
        /// The SQL script.
        sql: String,
    },
    /// Build everything from scratch: extract from the source, then every model.
    Init {
        #[command(flatten)]
        source: PipelineSourceArgs,
        /// Drop every table of a non-empty warehouse first.
        #[arg(long)]
        force: bool,
    },
    /// Incremental run: extract what changed (the embedded source advances one day), update affected models.
    Elt {
        #[command(flatten)]
        source: PipelineSourceArgs,
    },
    /// Show what `elt` would build (new, changed and stale models) without writing.
    Plan,
    /// The model DAG as a Mermaid flowchart.
    Lineage {
        /// Only models matching this glob.
        #[arg(long)]
        models: Option<String>,
        /// One node per model or per layer.
        #[arg(long, default_value = "model", value_parser = ["model", "layer"])]
        level: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Print a model's logical plan, or write every model's plan under plans/.
    Render {
        /// The model (e.g. dab.frame__adventure_works__products); all with --write.
        model: Option<String>,
        /// Write every model's plan to <dir>/<namespace>/<model>.txt.
        #[arg(long)]
        write: bool,
        /// Where plans are written.
        #[arg(long, default_value = "plans")]
        dir: std::path::PathBuf,
    },
    /// Build models from the layer below.
    Transform {
        /// The layer to build: dab (frames), dar (Unified Star Schema, always
        /// in full) or all (dab, then dar).
        #[arg(long, default_value = "dab", value_parser = ["dab", "dar", "all"])]
        layer: String,
        /// Only models matching this glob (e.g. 'frame__adventure_works__sales_*').
        #[arg(long)]
        models: Option<String>,
        /// Rebuild from scratch instead of incrementally.
        #[arg(long)]
        full: bool,
    },
    /// Serve the dashboard (process-control cards over the DAR tables) until Ctrl-C.
    Dashboard {
        /// TCP port (0 picks a free one).
        #[arg(long, default_value_t = 8501)]
        port: u16,
        /// Address to bind; the default serves this machine only.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Open the page in the default browser once listening.
        #[arg(long)]
        open: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Our PIT join vs DataFusion's built-in plan on generated SCD2 data.
    PitJoin(PitJoinBenchArgs),
    /// The pipeline on generated data (temporary warehouse): extract, frames,
    /// DAR, with the DAR build time and the share spent in PIT joins.
    Transform(BenchDataArgs),
    /// End to end: `init`, then incremental `elt` days, each a process of its
    /// own, with wall time, CPU time, peak memory and each day's ratio to `init`.
    Elt(EltBenchArgs),
    /// Growth with the source: for each scale `init` then one `elt` day,
    /// each a process of its own (wall, CPU, peak RSS), against the first
    /// scale. `--memory-limit` and `--spill-dir` are passed on to the runs.
    Scale(ScaleBenchArgs),
}

/// Arguments of `bench scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleBenchArgs {
    /// Source scales, comma-separated, measured in this order (the first is
    /// the baseline), e.g. 1,3,10.
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 3.0, 10.0])]
    pub scales: Vec<f64>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the warehouses are created (default: the system temp directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// The executable to run (default: this one).
    #[arg(long)]
    pub exe: Option<std::path::PathBuf>,
    /// Milliseconds to pause before each run, after syncing the file system.
    #[arg(long, default_value_t = 1000)]
    pub pause_ms: u64,
    /// Passed on to init and elt as --jobs (0: their default).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Keep each warehouse and log.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `bench elt`.
#[derive(Debug, clap::Args)]
pub struct EltBenchArgs {
    #[command(flatten)]
    pub data: BenchDataArgs,
    /// Sequences (init and its days) per executable.
    #[arg(long, default_value_t = 3)]
    pub sequences: u32,
    /// Where the warehouses are created (default: the system temp directory;
    /// /dev/shm keeps the file system out of the figures).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Executables to measure, interleaved sequence by sequence (default: this one).
    #[arg(long = "exe")]
    pub exes: Vec<std::path::PathBuf>,
    /// Milliseconds to pause before each run, after syncing the file system.
    #[arg(long, default_value_t = 1000)]
    pub pause_ms: u64,
    /// Passed on to init and elt as --jobs (0: their default).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Target of an elt day's wall time as a percentage of init's.
    #[arg(long, default_value_t = 10.0)]
    pub target_percent: f64,
    /// Keep each sequence's warehouse and log.
    #[arg(long)]
    pub keep: bool,
}

/// The generated data of `bench transform` and `bench elt`.
#[derive(Debug, clap::Args)]
pub struct BenchDataArgs {
    /// Generator scale (1 = the real Adventure Works sizes).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated days: extracted before the transform (`bench transform`),
    /// `elt` runs after each `init` (`bench elt`).
    #[arg(long, default_value_t = 3)]
    pub days: u32,
}

/// Arguments of `bench pit-join`.
#[derive(Debug, clap::Args)]
pub struct PitJoinBenchArgs {
    /// Left (event/child) rows.
    #[arg(long)]
    pub left: usize,
    /// Right (versioned) rows; with --keys determines versions per key unless --versions is given.
    #[arg(long)]
    pub right: usize,
    /// Distinct keys on the right side.
    #[arg(long)]
    pub keys: usize,
    /// Versions per key (default: right / keys).
    #[arg(long)]
    pub versions: Option<usize>,
    /// Fraction of left rows on the hot key 0.
    #[arg(long, default_value_t = 0.0)]
    pub hot_share: f64,
    /// Partitions / threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Strategies of our operator to run, comma-separated: auto (the
    /// default, resolved from the inputs' statistics), hash,
    /// partitioned_hash, sort, or all (each compared with the same built-in run).
    #[arg(long, default_value = "auto")]
    pub strategy: String,
    /// Timed runs of each plan; with more than one, plans run in
    /// interleaved rounds after an untimed warm-up round and each plan's
    /// median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also print `EXPLAIN ANALYZE` of both plans (one extra run each).
    #[arg(long)]
    pub explain: bool,
}

/// `--strategy`: one or several comma-separated strategies, or `all`.
fn parse_strategies(s: &str) -> Result<Vec<PitJoinStrategy>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(PitJoinStrategy::ALL.to_vec());
    }
    s.split(',')
        .map(|part| {
            part.parse::<PitJoinStrategy>()
                .map_err(|e| Error::invalid(format!("--strategy: {e}")))
        })
        .collect()
}

impl PitJoinBenchArgs {
    fn config(&self) -> Result<PitBenchConfig> {
        let defaults = PitBenchConfig::default();
        Ok(PitBenchConfig {
            left_rows: self.left,
            keys: self.keys,
            versions: self
                .versions
                .unwrap_or_else(|| self.right.checked_div(self.keys).unwrap_or(0).max(1)),
            hot_share: self.hot_share,
            seed: self.seed,
            threads: self.threads.unwrap_or(defaults.threads),
            batch_size: defaults.batch_size,
            strategies: parse_strategies(&self.strategy)?,
            runs: self.runs,
        })
    }
}

/// Source arguments of `init` and `elt`.
#[derive(Debug, clap::Args)]
pub struct PipelineSourceArgs {
    /// OData service URL; without it the embedded source is served in-process.
    #[arg(long)]
    pub source: Option<String>,
    /// Embedded source: the simulated day (init: 0; elt: the day after the last run).
    #[arg(long)]
    pub day: Option<u32>,
    /// Embedded source: data size (init: 0.01; elt: as the last run).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Embedded source: generator seed (init: 42; elt: as the last run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Models built at the same time (default: two per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
}

impl PipelineSourceArgs {
    fn spec(&self) -> crate::dag::run::SourceSpec {
        use crate::dag::run::SourceSpec;
        match &self.source {
            Some(u) => SourceSpec::Url(u.clone()),
            None => SourceSpec::Embedded {
                day: self.day,
                scale: self.scale,
                seed: self.seed,
            },
        }
    }
}

/// Arguments of `extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// OData service URL; without it the embedded source is started in-process.
    #[arg(long)]
    pub source: Option<String>,
    /// Only these resources (comma-separated table names, entity names or API paths).
    #[arg(long, value_delimiter = ',')]
    pub resources: Vec<String>,
    /// Embedded source: data size (1.0 is about the real data set).
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Embedded source: simulated day to serve.
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Embedded source: generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Resources extracted at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Source config file (default: the built-in Adventure Works config).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// Arguments of `demo-source`.
#[derive(Debug, clap::Args)]
pub struct DemoSourceArgs {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Data size: 1.0 is about the real data set.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Simulated day to serve (0 = initial history).
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rows per page (default: the source config's page size).
    #[arg(long)]
    pub page_size: Option<usize>,
    /// Source config file (default: the built-in Adventure Works config).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

impl Cli {
    /// Open the warehouse named on the command line.
    pub fn open_warehouse(&self) -> Result<Warehouse> {
        let mut options = Vec::new();
        if let Some(ep) = &self.s3_endpoint {
            options.push(("aws_endpoint".to_string(), ep.clone()));
        }
        let wh = Warehouse::open_with(&self.warehouse, &options)?;
        Ok(match &self.target_file_size {
            Some(size) => wh.with_target_file_size(
                usize::try_from(crate::budget::parse_size(size)?).unwrap_or(usize::MAX),
            ),
            None => wh,
        })
    }

    /// The memory budget named on the command line (see [`crate::budget`]).
    pub fn budget(&self) -> Result<crate::budget::MemoryBudget> {
        crate::budget::MemoryBudget::from_flags(
            self.memory_limit.as_deref(),
            self.spill_dir.clone(),
        )
    }

    /// A SQL context executing under [`Cli::budget`].
    fn sql_context(&self) -> Result<datafusion::prelude::SessionContext> {
        self.budget()?.context()
    }
}

async fn pipeline(
    cli: &Cli,
    command: &str,
    source: &PipelineSourceArgs,
    force: bool,
) -> Result<()> {
    use std::io::IsTerminal;

    use crate::dag::run::{PipelineOptions, RunOptions, elt, init};
    let wh = cli.open_warehouse()?;
    let project = crate::model::Project::adventure_works()?;
    let options = PipelineOptions {
        source: source.spec(),
        run: RunOptions {
            progress: std::io::stderr().is_terminal(),
            concurrency: source.jobs,
            budget: cli.budget()?,
            ..RunOptions::default()
        },
        force,
        ..PipelineOptions::default()
    };
    let report = if command == "init" {
        init(&wh, &project, &options).await?
    } else {
        elt(&wh, &project, &options).await?
    };
    let m = &report.models;
    if !m.is_empty() {
        let batch = record_batch(vec![
            (
                "model",
                Arc::new(StringArray::from_iter_values(
                    m.iter().map(|r| r.model.clone()),
                )),
            ),
            (
                "status",
                Arc::new(StringArray::from_iter_values(
                    m.iter().map(|r| r.status.to_string()),
                )),
            ),
            (
                "commit",
                Arc::new(StringArray::from_iter_values(m.iter().map(
                    |r| match &r.commit {
                        Some(c) => format!(
                            "{} v{} +{} -{}",
                            c.mode, c.version, c.added_rows, c.removed_rows
                        ),
                        None => "nothing to do".into(),
                    },
                ))),
            ),
            (
                "rows",
                Arc::new(Int64Array::from_iter_values(
                    m.iter().map(|r| r.rows as i64),
                )),
            ),
            (
                "seconds",
                Arc::new(arrow::array::Float64Array::from_iter_values(
                    m.iter().map(|r| (r.seconds * 100.0).round() / 100.0),
                )),
            ),
        ])?;
        out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    }
    let spilled: u64 = m.iter().map(|r| r.spilled_bytes).sum();
    out!(
        "{command}{}: {} source rows landed ({:.1}s), {} models built{}, {:.1}s in all",
        report
            .day
            .map(|d| format!(" (embedded source, day {d})"))
            .unwrap_or_default(),
        report.extract.landed(),
        report.extract_seconds,
        m.len(),
        if spilled > 0 {
            format!(
                " ({} spilled to disk under the memory limit of {})",
                crate::budget::format_size(spilled),
                cli.budget()?.describe()
            )
        } else {
            String::new()
        },
        report.seconds
    );
    out!(
        "next: `lakehouse dashboard --open` (http://127.0.0.1:8501/), `lakehouse query \"SELECT ...\"`, `lakehouse elt` for the next day of changes"
    );
    Ok(())
}

fn render(model: Option<&str>, write: bool, dir: &std::path::Path) -> Result<()> {
    use crate::model::Project;
    use crate::model::render::{render_all, write_plans};
    let project = Project::adventure_works()?;
    if write {
        let files = write_plans(&project, dir)?;
        out!("wrote {} plans under {}", files.len(), dir.display());
        return Ok(());
    }
    let Some(model) = model else {
        for m in render_all(&project)? {
            out!("{}", m.qualified());
        }
        return Ok(());
    };
    let all = render_all(&project)?;
    let found = all
        .iter()
        .find(|m| m.qualified() == model || m.name == model)
        .ok_or_else(|| {
            crate::Error::not_found(format!(
                "no model named '{model}' (run `lakehouse render` to list them)"
            ))
        })?;
    out!("{}", found.text.trim_end());
    Ok(())
}

/// A SQL context with our PIT join and every warehouse table registered
/// as `<namespace>.<table>`.
async fn warehouse_context(cli: &Cli) -> Result<datafusion::prelude::SessionContext> {
    let ctx = cli.sql_context()?;
    let wh = cli.open_warehouse()?;
    wh.register_all(&ctx).await?;
    Ok(ctx)
}

/// Serve the dashboard until Ctrl-C.
async fn dashboard(cli: &Cli, host: std::net::IpAddr, port: u16, open: bool) -> Result<()> {
    let wh = cli.open_warehouse()?;
    let server = crate::dashboard::serve(&wh, std::net::SocketAddr::new(host, port)).await?;
    let url = format!("{}/", server.base_url());
    eprintln!("dashboard on {url} (Ctrl-C to stop)");
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(e) = std::process::Command::new(opener).arg(&url).spawn() {
            eprintln!("could not open a browser with {opener}: {e}; open {url} yourself");
        }
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| crate::error::Error::internal("cannot wait for Ctrl-C").with_source(e))?;
    server.shutdown().await
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::DemoSource(args) => demo_source(args).await?,
        Command::Dashboard { port, host, open } => dashboard(&cli, *host, *port, *open).await?,
        Command::Extract(args) => extract(&cli, args).await?,
        Command::Query { sql, format, as_of } => {
            let format: OutputFormat = format.parse()?;
            let as_of = match as_of {
                None => crate::storage::AsOf::Latest,
                Some(t) => crate::storage::AsOf::Timestamp(
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map_err(|e| {
                            crate::Error::invalid(format!(
                                "--as-of '{t}' is not an RFC 3339 instant: {e}"
                            ))
                        })?
                        .with_timezone(&chrono::Utc),
                ),
            };
            let ctx = cli.sql_context()?;
            cli.open_warehouse()?
                .register_all_as_of(&ctx, as_of)
                .await?;
            let results = run_sql(&ctx, sql).await?;
            let many = results.len() > 1;
            for (statement, batches) in results {
                if many {
                    out!("-- {statement}");
                }
                if batches.is_empty() {
                    out!("OK (no rows)");
                } else {
                    out!("{}", format_batches(&batches, format)?);
                }
            }
        }
        Command::Explain { analyze, sql } => {
            let ctx = warehouse_context(&cli).await?;
            out!("{}", explain_sql(&ctx, sql, *analyze).await?);
        }
        Command::Render { model, write, dir } => render(model.as_deref(), *write, dir)?,
        Command::Init { source, force } => pipeline(&cli, "init", source, *force).await?,
        Command::Elt { source } => pipeline(&cli, "elt", source, false).await?,
        Command::Plan => {
            use crate::dag::Dag;
            use crate::dag::plan::{Status, plan};
            let wh = cli.open_warehouse()?;
            let project = crate::model::Project::adventure_works()?;
            let dag = Dag::build(&project)?;
            let planned = plan(&wh, &dag, false).await?;
            let todo: Vec<_> = planned
                .iter()
                .filter(|p| p.status != Status::UpToDate)
                .collect();
            for p in &todo {
                out!(
                    "{:<10} {:<12} {:<60} {}",
                    p.status.to_string(),
                    if p.full() { "full" } else { "incremental" },
                    dag.nodes[p.node].name.to_string(),
                    p.reason
                );
            }
            out!(
                "{} of {} models would be built; `lakehouse elt` also extracts new source data first",
                todo.len(),
                planned.len()
            );
        }
        Command::Lineage {
            models,
            level,
            output,
        } => {
            use crate::dag::Dag;
            use crate::dag::lineage::{Level, mermaid};
            let project = crate::model::Project::adventure_works()?;
            let dag = Dag::build(&project)?;
            let level = if level == "layer" {
                Level::Layer
            } else {
                Level::Model
            };
            let text = mermaid(&dag, models.as_deref(), level)?;
            match output {
                Some(p) => {
                    std::fs::write(p, &text).map_err(|e| {
                        crate::Error::new(
                            crate::ErrorKind::Storage,
                            format!("cannot write {}: {e}", p.display()),
                        )
                    })?;
                    eprintln!("wrote {}", p.display());
                }
                None => out!("{}", text.trim_end()),
            }
        }
        Command::Transform {
            layer,
            models,
            full,
        } => {
            use std::io::IsTerminal;

            use crate::model::Project;
            use crate::model::build::{BuildMode, build_dar, build_frames};
            let wh = cli.open_warehouse()?;
            let project = Project::adventure_works()?;
            let mode = if *full {
                BuildMode::Full
            } else {
                BuildMode::Incremental
            };
            let t0 = std::time::Instant::now();
            let progress = std::io::stderr().is_terminal();
            let budget = cli.budget()?;
            let mut reports = Vec::new();
            if layer == "dab" || layer == "all" {
                reports.extend(
                    build_frames(&wh, &project, models.as_deref(), mode, progress, &budget).await?,
                );
            }
            if layer == "dar" || layer == "all" {
                reports
                    .extend(build_dar(&wh, &project, models.as_deref(), progress, &budget).await?);
            }
            let batch = record_batch(vec![
                (
                    "model",
                    Arc::new(StringArray::from_iter_values(
                        reports.iter().map(|r| r.model.clone()),
                    )),
                ),
                (
                    "mode",
                    Arc::new(StringArray::from_iter_values(
                        reports
                            .iter()
                            .map(|r| format!("{:?}", r.mode).to_lowercase()),
                    )),
                ),
                (
                    "rows",
                    Arc::new(Int64Array::from_iter_values(
                        reports.iter().map(|r| r.rows as i64),
                    )),
                ),
                (
                    "commit",
                    Arc::new(StringArray::from_iter_values(reports.iter().map(
                        |r| match &r.commit {
                            Some(c) => {
                                format!("v{} +{} -{}", c.version, c.added_rows, c.removed_rows)
                            }
                            None => "nothing to do".to_string(),
                        },
                    ))),
                ),
            ])?;
            out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
            out!(
                "{} models in {:.1}s",
                reports.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        Command::Bench {
            bench: BenchCommand::PitJoin(args),
        } => {
            let config = args.config()?;
            let report = run_comparison(&config).await?;
            out!("{}", report.render().trim_end());
            if args.explain {
                let data = generate(&config)?;
                let mut contexts = Vec::new();
                for &strategy in &config.strategies {
                    contexts.push((
                        format!("pit_join strategy={strategy}"),
                        pit_context(&data, &config, strategy)?,
                    ));
                }
                contexts.push(("builtin".to_string(), builtin_context(&data, &config)?));
                for (name, ctx) in contexts {
                    out!(
                        "\n== {name} ==\n{}",
                        explain_sql(&ctx, BENCH_SQL, true).await?
                    );
                }
            }
        }
        Command::Bench {
            bench: BenchCommand::Transform(args),
        } => {
            use crate::bench::transform::{TransformBenchConfig, run_transform_bench};
            let report = run_transform_bench(&TransformBenchConfig {
                scale: args.scale,
                seed: args.seed,
                days: args.days,
            })
            .await?;
            out!("{}", report.render().trim_end());
        }
        Command::Bench {
            bench: BenchCommand::Elt(args),
        } => {
            use crate::bench::elt::{EltBenchConfig, run_elt_bench};
            let exes = if args.exes.is_empty() {
                vec![std::env::current_exe().map_err(|e| {
                    Error::internal("bench elt: cannot find this executable").with_source(e)
                })?]
            } else {
                args.exes.clone()
            };
            let config = EltBenchConfig {
                exes,
                scale: args.data.scale,
                seed: args.data.seed,
                days: args.data.days,
                sequences: args.sequences,
                dir: args.dir.clone().unwrap_or_else(std::env::temp_dir),
                pause: std::time::Duration::from_millis(args.pause_ms),
                jobs: args.jobs,
                target: args.target_percent / 100.0,
                keep: args.keep,
            };
            let report = tokio::task::spawn_blocking(move || {
                run_elt_bench(&config, |line| eprintln!("{line}"))
            })
            .await
            .map_err(|e| {
                Error::internal("bench elt: the benchmark thread failed").with_source(e)
            })??;
            out!("{}", report.render().trim_end());
        }
        Command::Bench {
            bench: BenchCommand::Scale(args),
        } => {
            use crate::bench::scale::{ScaleBenchConfig, run_scale_bench};
            let exe = match &args.exe {
                Some(e) => e.clone(),
                None => std::env::current_exe().map_err(|e| {
                    Error::internal("bench scale: cannot find this executable").with_source(e)
                })?,
            };
            if let Some(limit) = &cli.memory_limit {
                crate::budget::parse_size(limit)?;
            }
            let config = ScaleBenchConfig {
                exe,
                scales: args.scales.clone(),
                seed: args.seed,
                dir: args.dir.clone().unwrap_or_else(std::env::temp_dir),
                memory_limit: cli.memory_limit.clone(),
                spill_dir: cli.spill_dir.clone(),
                jobs: args.jobs,
                pause: std::time::Duration::from_millis(args.pause_ms),
                keep: args.keep,
            };
            let report = tokio::task::spawn_blocking(move || {
                run_scale_bench(&config, |line| eprintln!("{line}"))
            })
            .await
            .map_err(|e| {
                Error::internal("bench scale: the benchmark thread failed").with_source(e)
            })??;
            out!("{}", report.render().trim_end());
        }
        Command::Tables => {
            let wh = cli.open_warehouse()?;
            let stats = wh.stats().await?;
            if stats.is_empty() {
                out!("no tables in {}", wh.url().root_url());
                return Ok(());
            }
            let batch = record_batch(vec![
                (
                    "table",
                    Arc::new(StringArray::from_iter_values(
                        stats.iter().map(|s| s.name.to_string()),
                    )),
                ),
                (
                    "rows",
                    Arc::new(Int64Array::from_iter_values(
                        stats.iter().map(|s| s.rows as i64),
                    )),
                ),
                (
                    "snapshots",
                    Arc::new(Int64Array::from_iter_values(
                        stats.iter().map(|s| s.snapshots as i64),
                    )),
                ),
                (
                    "version",
                    Arc::new(Int64Array::from_iter_values(
                        stats.iter().map(|s| s.version as i64),
                    )),
                ),
            ])?;
            out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
        }
        Command::History { table } => {
            let wh = cli.open_warehouse()?;
            let t = wh.load_table(&TableName::parse(table)?).await?;
            let h = t.history();
            let batch = record_batch(vec![
                (
                    "snapshot_id",
                    Arc::new(Int64Array::from_iter_values(
                        h.iter().map(|s| s.snapshot_id),
                    )),
                ),
                (
                    "sequence",
                    Arc::new(Int64Array::from_iter_values(
                        h.iter().map(|s| s.sequence_number),
                    )),
                ),
                (
                    "committed_at",
                    Arc::new(StringArray::from_iter_values(h.iter().map(|s| {
                        s.committed_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    }))),
                ),
                (
                    "operation",
                    Arc::new(StringArray::from_iter_values(
                        h.iter().map(|s| s.operation.clone()),
                    )),
                ),
                (
                    "total_rows",
                    Arc::new(Int64Array::from_iter(
                        h.iter().map(|s| s.total_records.map(|v| v as i64)),
                    )),
                ),
                (
                    "added_rows",
                    Arc::new(Int64Array::from_iter(h.iter().map(|s| {
                        s.summary.get("added-records").and_then(|v| v.parse().ok())
                    }))),
                ),
                (
                    "deleted_rows",
                    Arc::new(Int64Array::from_iter(h.iter().map(|s| {
                        s.summary
                            .get("deleted-records")
                            .and_then(|v| v.parse().ok())
                    }))),
                ),
            ])?;
            out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
        }
    }
    Ok(())
}

fn record_batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?)
}

async fn demo_source(args: &DemoSourceArgs) -> Result<()> {
    use crate::config::SourceConfig;
    use crate::error::{ErrorKind, ResultExt};
    use crate::source::{GeneratorOptions, ServerOptions, serve};

    let config = match &args.config {
        Some(path) => SourceConfig::from_path(path)?,
        None => SourceConfig::adventure_works()?,
    };
    let options = ServerOptions {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        page_size: args.page_size.unwrap_or(config.page_size),
        generator: GeneratorOptions {
            seed: args.seed,
            scale: args.scale,
        },
        day: args.day,
        ..ServerOptions::default()
    };
    let server = serve(&config, options).await?;
    let counts = server.with_generator(|g| g.row_counts());
    let rows: usize = counts.values().sum();
    out!(
        "Serving {} ({} resources, {rows} rows, scale {}, day {}, seed {}) at {}/",
        config.name,
        config.resources.len(),
        args.scale,
        args.day,
        args.seed,
        server.base_url()
    );
    out!("Try: {}/SalesOrderHeaders?$top=2", server.base_url());
    out!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .ctx(ErrorKind::Internal, || "cannot wait for Ctrl-C".to_string())?;
    server.shutdown().await
}

async fn extract(cli: &Cli, args: &ExtractArgs) -> Result<()> {
    use std::io::IsTerminal;

    use crate::config::SourceConfig;
    use crate::extract::land::{ExtractOptions, extract};
    use crate::extract::{ODataClient, RetryPolicy};
    use crate::source::{GeneratorOptions, ServerOptions, serve};

    let config = match &args.config {
        Some(path) => SourceConfig::from_path(path)?,
        None => SourceConfig::adventure_works()?,
    };
    let wh = cli.open_warehouse()?;
    let server = match &args.source {
        Some(_) => None,
        None => Some(
            serve(
                &config,
                ServerOptions {
                    page_size: config.page_size,
                    generator: GeneratorOptions {
                        seed: args.seed,
                        scale: args.scale,
                    },
                    day: args.day,
                    spill: cli
                        .budget()?
                        .source_share()
                        .map(|above| crate::source::SpillOptions {
                            above,
                            dir: cli.spill_dir.clone(),
                        }),
                    ..ServerOptions::default()
                },
            )
            .await?,
        ),
    };
    let url = match (&args.source, &server) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.base_url().to_string(),
        (None, None) => unreachable!("a server is started when no source is given"),
    };
    eprintln!(
        "extracting {} from {url} into {}",
        config.name,
        wh.url().root_url()
    );
    let client = ODataClient::new(&url, RetryPolicy::default())?;
    let options = ExtractOptions {
        resources: args.resources.clone(),
        concurrency: args.concurrency,
        progress: std::io::stderr().is_terminal(),
        held_pages_bytes: crate::dag::run::held_pages_bytes(&cli.budget()?),
    };
    let report = extract(&wh, &config, &client, &options).await;
    if let Some(s) = server {
        s.shutdown().await?;
    }
    let report = report?;
    let r = &report.resources;
    let batch = record_batch(vec![
        (
            "table",
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|x| x.table.clone()),
            )),
        ),
        (
            "pages",
            Arc::new(Int64Array::from_iter_values(
                r.iter().map(|x| x.pages as i64),
            )),
        ),
        (
            "fetched",
            Arc::new(Int64Array::from_iter_values(
                r.iter().map(|x| x.fetched as i64),
            )),
        ),
        (
            "landed",
            Arc::new(Int64Array::from_iter_values(
                r.iter().map(|x| x.landed as i64),
            )),
        ),
        (
            "seconds",
            Arc::new(arrow::array::Float64Array::from_iter_values(
                r.iter().map(|x| (x.seconds * 100.0).round() / 100.0),
            )),
        ),
        (
            "cursor",
            Arc::new(StringArray::from_iter(
                r.iter().map(|x| x.cursor.map(|c| c.to_rfc3339())),
            )),
        ),
        (
            "error",
            Arc::new(StringArray::from_iter(r.iter().map(|x| x.error.clone()))),
        ),
    ])?;
    out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    out!(
        "load {}: {} rows landed across {} resources",
        report.load_id,
        report.landed(),
        r.len()
    );
    let failed = report.failures();
    if !failed.is_empty() {
        return Err(crate::Error::new(
            crate::ErrorKind::Source,
            format!(
                "{} resource(s) failed (the others were committed): {}",
                failed.len(),
                failed
                    .iter()
                    .map(|f| f.table.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_source_arguments() {
        let cli = Cli::try_parse_from([
            "lakehouse",
            "demo-source",
            "--port",
            "0",
            "--scale",
            "0.5",
            "--day",
            "3",
            "--seed",
            "9",
            "--page-size",
            "250",
        ])
        .expect("parses");
        let Command::DemoSource(args) = cli.command else {
            panic!("expected demo-source");
        };
        assert_eq!(args.port, 0);
        assert_eq!(args.scale, 0.5);
        assert_eq!(args.day, 3);
        assert_eq!(args.seed, 9);
        assert_eq!(args.page_size, Some(250));
        assert!(args.config.is_none());
    }

    #[test]
    fn dashboard_binds_loopback_by_default() {
        let cli = Cli::try_parse_from(["lakehouse", "dashboard"]).expect("parses");
        let Command::Dashboard { port, host, open } = cli.command else {
            panic!("expected dashboard");
        };
        assert_eq!(port, 8501);
        assert_eq!(host, std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(!open);
        let cli = Cli::try_parse_from([
            "lakehouse",
            "dashboard",
            "--port",
            "9000",
            "--host",
            "0.0.0.0",
            "--open",
        ])
        .expect("parses");
        let Command::Dashboard { port, host, open } = cli.command else {
            panic!("expected dashboard");
        };
        assert_eq!(
            (port, host.to_string().as_str(), open),
            (9000, "0.0.0.0", true)
        );
        assert!(Cli::try_parse_from(["lakehouse", "dashboard", "--host", "x' OR 1"]).is_err());
    }

    #[test]
    fn transform_layers_and_bench_transform() {
        for layer in ["dab", "dar", "all"] {
            let cli =
                Cli::try_parse_from(["lakehouse", "transform", "--layer", layer]).expect("parses");
            let Command::Transform { layer: got, .. } = cli.command else {
                panic!("expected transform");
            };
            assert_eq!(got, layer);
        }
        assert!(Cli::try_parse_from(["lakehouse", "transform", "--layer", "gold"]).is_err());
        let cli = Cli::try_parse_from(["lakehouse", "bench", "transform", "--scale", "1"])
            .expect("parses");
        let Command::Bench {
            bench: BenchCommand::Transform(args),
        } = cli.command
        else {
            panic!("expected bench transform");
        };
        assert_eq!((args.scale, args.seed, args.days), (1.0, 42, 3));
        let cli = Cli::try_parse_from([
            "lakehouse",
            "bench",
            "elt",
            "--exe",
            "a",
            "--exe",
            "b",
            "--dir",
            "/dev/shm",
        ])
        .expect("parses");
        let Command::Bench {
            bench: BenchCommand::Elt(args),
        } = cli.command
        else {
            panic!("expected bench elt");
        };
        assert_eq!(
            (
                args.data.scale,
                args.data.days,
                args.sequences,
                args.pause_ms,
                args.target_percent
            ),
            (1.0, 3, 3, 1000, 10.0)
        );
        assert_eq!(args.exes, ["a", "b"].map(std::path::PathBuf::from));
        assert_eq!(args.dir, Some(std::path::PathBuf::from("/dev/shm")));
    }
}
