//! The verbs that read sources: `init` and `elt` (extract, then build), `extract`
//! alone, and `demo-source` (serve the embedded source); their arguments and
//! their terminal output.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};

use super::{Cli, record_batch};
use crate::error::Result;

/// Source arguments of `init` and `elt`.
#[derive(Debug, clap::Args)]
pub struct PipelineSourceArgs {
    /// OData service URL serving a source instead of its `base_url`: `NAME=URL`, or a bare URL when the project has one source; repeat for several. Without it, each source is read from its `base_url` (`embedded`: served in-process)
    #[arg(long, value_name = "[NAME=]URL")]
    pub source: Vec<String>,
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
    fn spec(&self) -> Result<crate::dag::sources::SourceSpec> {
        crate::dag::sources::SourceSpec::embedded(self.day, self.scale, self.seed)
            .with_source_args(&self.source)
    }
}

/// Arguments of `extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// OData service URL serving a source instead of its `base_url`: `NAME=URL`, or a bare URL when there is one source; repeat for several. Without it, each source is read from its `base_url` (`embedded`: started in-process)
    #[arg(long, value_name = "[NAME=]URL")]
    pub source: Vec<String>,
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
    /// Source config file to extract instead of the project's sources.
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

pub(super) async fn pipeline(
    cli: &Cli,
    command: &str,
    source: &PipelineSourceArgs,
    force: bool,
    upkeep: Option<crate::storage::upkeep::UpkeepPolicy>,
) -> Result<()> {
    use std::io::IsTerminal;

    use crate::dag::run::{PipelineOptions, RunOptions, elt, init};
    let wh = cli.open_warehouse()?;
    let project = cli.project()?;
    if cli.project_dir()?.root.is_some() {
        eprintln!("{}", cli.project_dir()?.describe());
    }
    let options = PipelineOptions {
        source: source.spec()?,
        run: RunOptions {
            progress: std::io::stderr().is_terminal(),
            concurrency: source.jobs,
            budget: cli.budget()?,
            tuning: cli.tuning,
            ..RunOptions::default()
        },
        force,
        upkeep,
        lock_ttl: cli.lock_ttl,
    };
    let report = if command == "init" {
        init(&wh, project, &options).await?
    } else {
        elt(&wh, project, &options).await?
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
            ("rows", int_column(m.iter().map(|r| r.rows as i64))),
            ("seconds", seconds_column(m.iter().map(|r| r.seconds))),
            (
                "spilled",
                Arc::new(StringArray::from_iter_values(m.iter().map(|r| {
                    if r.spilled_bytes > 0 {
                        crate::budget::format_size(r.spilled_bytes)
                    } else {
                        String::new()
                    }
                }))),
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
    match &report.upkeep {
        Some(Ok(u)) => {
            super::upkeep::print_report(u, false)?;
            for f in u.failures() {
                eprintln!("warning: upkeep of {f} (run `lakehouse maintain` to retry)");
            }
        }
        Some(Err(e)) => eprintln!(
            "warning: upkeep after {command} failed (the run's data is committed): {e}\nrun `lakehouse maintain` to retry"
        ),
        None => {}
    }
    out!(
        "next: `lakehouse dashboard --open` (http://127.0.0.1:8501/), `lakehouse query \"SELECT ...\"`, `lakehouse elt` for the next day of changes"
    );
    Ok(())
}

#[cfg(not(feature = "demo"))]
pub(super) async fn demo_source(_: &Cli, _: &DemoSourceArgs) -> Result<()> {
    Err(super::not_in_build("demo-source"))
}

#[cfg(feature = "demo")]
pub(super) async fn demo_source(cli: &Cli, args: &DemoSourceArgs) -> Result<()> {
    use crate::config::SourceConfig;
    use crate::error::{ErrorKind, ResultExt};
    use crate::source::{GeneratorOptions, ServerOptions, serve};

    // The generator serves the Adventure Works data: the project's embedded
    // source, else the built-in config.
    let config = match &args.config {
        Some(path) => SourceConfig::from_path(path)?,
        None => match cli
            .project()?
            .sources
            .iter()
            .find(|s| s.base_url == crate::config::BaseUrl::Embedded)
        {
            Some(s) => s.clone(),
            None => SourceConfig::adventure_works()?,
        },
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

pub(super) async fn extract(cli: &Cli, args: &ExtractArgs) -> Result<()> {
    use std::io::IsTerminal;

    use crate::extract::land::ExtractOptions;

    use crate::dag::sources::{EmbeddedSettings, SourceSpec, describe, extract_one, start};

    let sources = match &args.config {
        Some(path) => vec![crate::discovery::load_source(path)?],
        None => cli.project()?.sources.clone(),
    };
    // Every name given must name a resource of some source.
    if let Some(unknown) = args.resources.iter().find(|n| {
        !sources
            .iter()
            .flat_map(|s| &s.resources)
            .any(|r| r.is_named(n))
    }) {
        return Err(crate::Error::invalid(format!(
            "--resources: no source has a resource `{unknown}` (sources: {})",
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let wh = cli.open_warehouse()?;
    let spec = SourceSpec::embedded(Some(args.day), Some(args.scale), Some(args.seed))
        .with_source_args(&args.source)?;
    let served = spec.resolve(&sources)?;
    let settings = EmbeddedSettings {
        day: args.day,
        scale: args.scale,
        seed: args.seed,
        horizons: Default::default(),
        spill: crate::dag::sources::source_spill(&cli.budget()?),
    };
    let mut report: Option<crate::extract::land::ExtractReport> = None;
    for (source, where_) in &served {
        let resources: Vec<String> = args
            .resources
            .iter()
            .filter(|n| source.resources.iter().any(|r| r.is_named(n)))
            .cloned()
            .collect();
        if !args.resources.is_empty() && resources.is_empty() {
            continue;
        }
        eprintln!(
            "extracting {} from {} into {}",
            source.name,
            describe(&[(*source, where_.clone())]).unwrap_or_else(|| "the embedded source".into()),
            wh.url().root_url()
        );
        let options = ExtractOptions {
            resources,
            concurrency: args.concurrency,
            progress: std::io::stderr().is_terminal(),
            held_pages_bytes: crate::dag::run::held_pages_bytes(&cli.budget()?),
        };
        let one = extract_one(&wh, source, start(source, where_, &settings), &options).await?;
        match &mut report {
            None => report = Some(one),
            Some(r) => r.resources.extend(one.resources),
        }
    }
    let report = report.ok_or_else(|| crate::Error::invalid("nothing to extract"))?;
    let r = &report.resources;
    let batch = record_batch(vec![
        (
            "table",
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|x| x.table.clone()),
            )),
        ),
        ("pages", int_column(r.iter().map(|x| x.pages as i64))),
        ("fetched", int_column(r.iter().map(|x| x.fetched as i64))),
        ("landed", int_column(r.iter().map(|x| x.landed as i64))),
        ("seconds", seconds_column(r.iter().map(|x| x.seconds))),
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
                "{} resource(s) failed; the others were committed:\n{}",
                failed.len(),
                crate::extract::land::failure_lines(&failed)
            ),
        ));
    }
    Ok(())
}

/// An integer column of a printed table.
fn int_column(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

/// A seconds column of a printed table, to the hundredth.
fn seconds_column(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(arrow::array::Float64Array::from_iter_values(
        values.map(|s| (s * 100.0).round() / 100.0),
    ))
}
