//! The `lakehouse` command line: argument parsing and dispatch, nothing else.
//!
//! Each verb parses its arguments here and calls one function of the library;
//! output formatting for the terminal lives here too.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
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
#[cfg(feature = "demo")]
mod bench;
mod sources;
mod upkeep;

#[cfg(feature = "demo")]
pub use bench::BenchCommand;
pub use sources::{DemoSourceArgs, ExtractArgs, PipelineSourceArgs};
use sources::{demo_source, extract, pipeline};
pub use upkeep::{MaintainArgs, UpkeepArgs};

use crate::project::ProjectDir;
use crate::storage::{TableName, Warehouse};

/// A pure-Rust lakehouse: OData -> Iceberg -> HOOK -> Unified Star Schema.
#[derive(Debug, Parser)]
#[command(name = "lakehouse", version, about, long_about = None)]
pub struct Cli {
    /// The project directory, holding lakehouse.yaml (default: the current directory or the
    /// nearest parent holding one; without one, the built-in Adventure Works example).
    #[arg(long, global = true, env = "LAKEHOUSE_PROJECT")]
    pub project: Option<std::path::PathBuf>,

    /// Where the warehouse lives: a local path, file://..., or s3://bucket/prefix (default: the
    /// project's warehouse; ./lakehouse for the built-in example).
    #[arg(long, global = true, env = "LAKEHOUSE_WAREHOUSE")]
    pub warehouse: Option<String>,

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

    /// How long the warehouse's run lock stays valid without renewal: a run killed without
    /// freeing it blocks others this long (renewed every third of it while a run lives).
    #[arg(long, global = true, env = "LAKEHOUSE_LOCK_TTL", default_value = "60s", value_parser = lock_ttl)]
    pub lock_ttl: std::time::Duration,

    /// Speed tunings, all on by default; a comma-separated list turns some
    /// off: `no-NAME` for skip-landed, lean-incremental-plans, plan-cache or
    /// direct-local-reads, or `none`. Results are the same either way.
    #[arg(long, global = true, env = "LAKEHOUSE_TUNING", default_value = "all", value_name = "LIST", value_parser = tuning)]
    pub tuning: crate::tuning::Tuning,

    #[command(subcommand)]
    pub command: Command,

    /// The project, once read.
    #[arg(skip)]
    loaded: std::sync::OnceLock<ProjectDir>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new project into DIR: lakehouse.yaml, its source and model files.
    New {
        /// The directory (created if missing).
        dir: std::path::PathBuf,
        /// The example to start from.
        #[arg(long, default_value = "adventure-works", value_parser = crate::project::EXAMPLES.to_vec(), conflicts_with = "from_odata")]
        example: String,
        /// Write a starter source, frames and concepts from a live OData v4 service's $metadata instead of the example.
        #[arg(long, value_name = "URL")]
        from_odata: Option<String>,
    },
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
        /// Skip the upkeep that ends every `elt` (project setting `upkeep.after_elt`).
        #[arg(long)]
        no_upkeep: bool,
        #[command(flatten)]
        upkeep: UpkeepArgs,
    },
    /// Warehouse upkeep: compact small files, expire old snapshots, delete unreferenced files.
    Maintain(MaintainArgs),
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
        /// Where plans are written (default: the project's `plans` directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Build models from the layer below, as `plan` decides (no extraction).
    Transform {
        /// The layer to build: dab (frames), dar (Unified Star Schema) or all
        /// (dab, then dar). New and changed models build in full, stale ones
        /// incrementally, up-to-date ones not at all.
        #[arg(long, default_value = "dab", value_parser = ["dab", "dar", "all"])]
        layer: String,
        /// Only models matching this glob (e.g. 'frame__adventure_works__sales_*').
        #[arg(long)]
        models: Option<String>,
        /// Rebuild every selected model from scratch.
        #[arg(long)]
        full: bool,
    },
    /// Serve the dashboard (process-control cards over the DAR tables) until Ctrl-C.
    Dashboard {
        /// TCP port, 0 picks a free one (default: the project's, else 8501).
        #[arg(long)]
        port: Option<u16>,
        /// Address to bind (default: the project's, else 127.0.0.1: this machine only).
        #[arg(long)]
        host: Option<std::net::IpAddr>,
        /// Open the page in the default browser once listening.
        #[arg(long)]
        open: bool,
    },
    /// Benchmarks.
    #[cfg(feature = "demo")]
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
    /// Benchmarks: not in this build (built without the `demo` feature).
    #[cfg(not(feature = "demo"))]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

/// The error of a verb this build lacks (built without the `demo` feature).
#[cfg(not(feature = "demo"))]
fn not_in_build(verb: &str) -> crate::Error {
    crate::Error::invalid(format!(
        "`lakehouse {verb}` is not in this build: it was built without the `demo` feature (cargo build --features demo)"
    ))
}

fn lock_ttl(text: &str) -> std::result::Result<std::time::Duration, String> {
    match crate::project::parse_duration("--lock-ttl", text) {
        Ok(d) if d >= std::time::Duration::from_millis(300) => Ok(d),
        Ok(_) => Err("--lock-ttl: at least 300ms (the lock is renewed every third of it)".into()),
        Err(e) => Err(format!("{e:#}")),
    }
}

fn tuning(text: &str) -> std::result::Result<crate::tuning::Tuning, String> {
    crate::tuning::Tuning::parse(text).map_err(|e| e.message().to_string())
}

impl Cli {
    /// The project (see [`crate::project`]): `--project`, else found from
    /// the current directory upwards, else the built-in example. Read once.
    pub fn project_dir(&self) -> Result<&ProjectDir> {
        if let Some(p) = self.loaded.get() {
            return Ok(p);
        }
        let cwd = std::env::current_dir()
            .map_err(|e| Error::internal("cannot read the current directory").with_source(e))?;
        let found = ProjectDir::discover(self.project.as_deref(), &cwd)?;
        Ok(self.loaded.get_or_init(|| found))
    }

    /// The project's validated sources and models.
    pub fn project(&self) -> Result<&crate::model::Project> {
        Ok(&self.project_dir()?.project)
    }

    /// Where the warehouse is: `--warehouse`, else the project's.
    pub fn warehouse_location(&self) -> Result<String> {
        match &self.warehouse {
            Some(w) => Ok(w.clone()),
            None => Ok(self.project_dir()?.warehouse.clone()),
        }
    }

    /// Open the warehouse named on the command line, else the project's.
    pub fn open_warehouse(&self) -> Result<Warehouse> {
        let mut options = Vec::new();
        if let Some(ep) = &self.s3_endpoint {
            options.push(("aws_endpoint".to_string(), ep.clone()));
        }
        let reads = if self.tuning.direct_local_reads {
            crate::storage::LocalReads::Direct
        } else {
            crate::storage::LocalReads::Pooled
        };
        let wh = Warehouse::open_reading(&self.warehouse_location()?, &options, reads)?;
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

fn render(
    cli: &Cli,
    model: Option<&str>,
    write: bool,
    dir: Option<&std::path::Path>,
) -> Result<()> {
    use crate::model::render::{render_all, write_plans};
    let project = cli.project()?;
    if write {
        let dir = match dir {
            Some(d) => d,
            None => cli.project_dir()?.plans.as_path(),
        };
        let files = write_plans(project, dir)?;
        out!("wrote {} plans under {}", files.len(), dir.display());
        return Ok(());
    }
    let Some(model) = model else {
        for m in render_all(project)? {
            out!("{}", m.qualified());
        }
        return Ok(());
    };
    let all = render_all(project)?;
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
async fn dashboard(
    cli: &Cli,
    host: Option<std::net::IpAddr>,
    port: Option<u16>,
    open: bool,
) -> Result<()> {
    let wh = cli.open_warehouse()?;
    let settings = &cli.project_dir()?.dashboard;
    let window = settings
        .window_days
        .unwrap_or(crate::dashboard::data::DEFAULT_WINDOW_DAYS);
    let addr = dashboard_address(host, port, settings);
    let server = crate::dashboard::serve_with(&wh, addr, window).await?;
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

/// The dashboard's address: the flags, else the project's settings, else
/// 127.0.0.1:8501 (this machine only).
fn dashboard_address(
    host: Option<std::net::IpAddr>,
    port: Option<u16>,
    settings: &crate::project::DashboardSettings,
) -> std::net::SocketAddr {
    let host = host
        .or(settings.host)
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    std::net::SocketAddr::new(host, port.or(settings.port).unwrap_or(8501))
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::New {
            dir,
            from_odata: Some(url),
            ..
        } => {
            let made = crate::scaffold::write_from_odata(dir, url).await?;
            out!(
                "wrote a new project from {url} in {}: {} ({} resources and frames{})",
                dir.display(),
                made.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                made.resources,
                if made.skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; left out: {}",
                        made.skipped
                            .iter()
                            .map(|(s, why)| format!("{s} ({why})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
            out!(
                "next: `cd {}`, review sources/*.yaml and models/*.yaml, then `lakehouse init`",
                dir.display()
            );
        }
        Command::New { dir, example, .. } => {
            let files = crate::project::write_example(dir, example)?;
            out!(
                "wrote a new project ({example}) in {}: {}",
                dir.display(),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out!(
                "next: `cd {}` then `lakehouse init` (builds into {}/lakehouse), `lakehouse plan` after editing models/*.yaml",
                dir.display(),
                dir.display()
            );
        }
        Command::DemoSource(args) => demo_source(&cli, args).await?,
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
        Command::Render { model, write, dir } => {
            render(&cli, model.as_deref(), *write, dir.as_deref())?
        }
        Command::Init { source, force } => pipeline(&cli, "init", source, *force, None).await?,
        Command::Elt {
            source,
            no_upkeep,
            upkeep,
        } => {
            let after = !*no_upkeep && cli.project_dir()?.upkeep.after_elt;
            let policy = after.then(|| upkeep.policy(&cli)).transpose()?;
            pipeline(&cli, "elt", source, false, policy).await?
        }
        Command::Maintain(args) => upkeep::run_maintain(&cli, args).await?,
        Command::Plan => {
            use crate::dag::Dag;
            use crate::dag::plan::{Status, plan};
            let wh = cli.open_warehouse()?;
            let project = cli.project()?;
            let dag = Dag::build_with(project, cli.tuning.plan_cache)?;
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
            let dag = Dag::build_with(cli.project()?, cli.tuning.plan_cache)?;
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

            use crate::dag::Layer;
            use crate::dag::run::{RunOptions, transform};
            let wh = cli.open_warehouse()?;
            let project = cli.project()?;
            let t0 = std::time::Instant::now();
            let layers: &[Layer] = match layer.as_str() {
                "dab" => &[Layer::Dab],
                "dar" => &[Layer::DarStaging, Layer::Dar],
                _ => &[Layer::Dab, Layer::DarStaging, Layer::Dar],
            };
            let options = RunOptions {
                progress: std::io::stderr().is_terminal(),
                budget: cli.budget()?,
                tuning: cli.tuning,
                ..RunOptions::default()
            };
            let reports = transform(
                &wh,
                project,
                layers,
                models.as_deref(),
                *full,
                &options,
                cli.lock_ttl,
            )
            .await?;
            let batch = record_batch(vec![
                (
                    "model",
                    Arc::new(StringArray::from_iter_values(
                        reports.iter().map(|r| r.model.clone()),
                    )),
                ),
                (
                    "status",
                    Arc::new(StringArray::from_iter_values(
                        reports.iter().map(|r| r.status.to_string()),
                    )),
                ),
                (
                    "mode",
                    Arc::new(StringArray::from_iter_values(reports.iter().map(|r| {
                        if r.full { "full" } else { "incremental" }.to_string()
                    }))),
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
            if reports.is_empty() {
                out!("every selected model is up to date (`--full` rebuilds them)");
            } else {
                out!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
            }
            out!(
                "{} models built in {:.1}s",
                reports.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        #[cfg(feature = "demo")]
        Command::Bench { bench } => bench::run(&cli, bench).await?,
        #[cfg(not(feature = "demo"))]
        Command::Bench { .. } => return Err(not_in_build("bench")),
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
    fn tuning_flag_turns_tunings_off_and_names_a_bad_one() {
        let cli = Cli::try_parse_from([
            "lakehouse",
            "--tuning",
            "no-plan-cache,no-direct-local-reads",
            "tables",
        ])
        .expect("parses");
        assert_eq!(
            cli.tuning,
            crate::tuning::Tuning {
                plan_cache: false,
                direct_local_reads: false,
                ..Default::default()
            }
        );
        let cli = Cli::try_parse_from(["lakehouse", "plan", "--tuning", "none"]).expect("parses");
        assert_eq!(cli.tuning, crate::tuning::Tuning::all(false));
        let e = Cli::try_parse_from(["lakehouse", "--tuning", "no-plan-cash", "tables"])
            .expect_err("unknown tuning");
        assert!(
            e.to_string().contains("unknown tuning `no-plan-cash`"),
            "{e}"
        );
    }

    #[test]
    fn dashboard_binds_loopback_by_default() {
        let cli = Cli::try_parse_from(["lakehouse", "dashboard"]).expect("parses");
        let Command::Dashboard { port, host, open } = cli.command else {
            panic!("expected dashboard");
        };
        let none = crate::project::DashboardSettings::default();
        assert_eq!(
            dashboard_address(host, port, &none).to_string(),
            "127.0.0.1:8501"
        );
        assert!(!open);
        // The project's settings apply unless a flag is given.
        let project = crate::project::DashboardSettings {
            port: Some(9001),
            ..Default::default()
        };
        assert_eq!(
            dashboard_address(None, None, &project).to_string(),
            "127.0.0.1:9001"
        );
        assert_eq!(
            dashboard_address(None, Some(9002), &project).to_string(),
            "127.0.0.1:9002"
        );
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
            (dashboard_address(host, port, &none).to_string(), open),
            ("0.0.0.0:9000".to_string(), true)
        );
        assert!(Cli::try_parse_from(["lakehouse", "dashboard", "--host", "x' OR 1"]).is_err());
    }

    #[test]
    #[cfg(feature = "demo")]
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
