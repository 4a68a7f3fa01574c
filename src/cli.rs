//! The `lakehouse` command line: argument parsing and dispatch, nothing else.
//!
//! Each verb parses its arguments here and calls one function of the library;
//! output formatting for the terminal lives here too.

use clap::{Args, Parser, Subcommand};

use crate::bench::pit_join::{
    BENCH_SQL, PitBenchConfig, builtin_context, generate, pit_context, run_comparison,
};
use crate::error::Result;
use crate::query::{OutputFormat, explain_sql, format_batches, run_sql, session_context};

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

    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one or more `;`-separated SQL statements and print each result.
    Query {
        /// The SQL script, e.g. "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'x'; SELECT ...".
        sql: String,
        /// Output format.
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
    },
    /// Show the physical plan of the script's last statement (earlier ones are run).
    Explain {
        /// Execute the statement and show per-operator metrics.
        #[arg(long)]
        analyze: bool,
        /// The SQL script.
        sql: String,
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
}

/// Arguments of `bench pit-join`.
#[derive(Debug, Args)]
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
    /// Also print `EXPLAIN ANALYZE` of both plans (one extra run each).
    #[arg(long)]
    pub explain: bool,
}

impl PitJoinBenchArgs {
    fn config(&self) -> PitBenchConfig {
        let defaults = PitBenchConfig::default();
        PitBenchConfig {
            left_rows: self.left,
            keys: self.keys,
            versions: self
                .versions
                .unwrap_or_else(|| self.right.checked_div(self.keys).unwrap_or(0).max(1)),
            hot_share: self.hot_share,
            seed: self.seed,
            threads: self.threads.unwrap_or(defaults.threads),
            batch_size: defaults.batch_size,
        }
    }
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Query { sql, format } => {
            let format: OutputFormat = format.parse()?;
            let ctx = session_context();
            let results = run_sql(&ctx, &sql).await?;
            let many = results.len() > 1;
            for (statement, batches) in results {
                if many {
                    println!("-- {statement}");
                }
                if batches.is_empty() {
                    println!("OK (no rows)");
                } else {
                    println!("{}", format_batches(&batches, format)?);
                }
            }
            Ok(())
        }
        Command::Explain { analyze, sql } => {
            let ctx = session_context();
            println!("{}", explain_sql(&ctx, &sql, analyze).await?);
            Ok(())
        }
        Command::Bench {
            bench: BenchCommand::PitJoin(args),
        } => {
            let config = args.config();
            let report = run_comparison(&config).await?;
            print!("{}", report.render());
            if args.explain {
                let data = generate(&config)?;
                for (name, ctx) in [
                    ("pit_join", pit_context(&data, &config)?),
                    ("builtin", builtin_context(&data, &config)?),
                ] {
                    println!(
                        "\n== {name} ==\n{}",
                        explain_sql(&ctx, BENCH_SQL, true).await?
                    );
                }
            }
            Ok(())
        }
    }
}
