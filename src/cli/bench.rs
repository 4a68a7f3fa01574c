//! The `bench` verbs: argument parsing and dispatch to [`crate::bench`].

use clap::Subcommand;

use super::Cli;
use crate::bench::elt::UpkeepMode;
use crate::bench::pit_join::{
    BENCH_SQL, PitBenchConfig, builtin_context, generate, pit_context, run_comparison,
};
use crate::error::{Error, Result};
use crate::join::PitJoinStrategy;
use crate::query::explain_sql;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Our PIT join vs DataFusion's built-in plan on generated SCD2 data.
    PitJoin(PitJoinBenchArgs),
    /// The pipeline on generated data (temporary warehouse): extract, frames,
    /// DAR, with the DAR build time and the share spent in PIT joins.
    Transform(BenchDataArgs),
    /// End to end: `init`, then incremental `elt` days, each a process of its
    /// own, with wall time, CPU time, peak memory and each day's ratio to `init`,
    /// the warehouse's files and bytes after each run, and how day 1 grew to
    /// the last day, with or without upkeep (`--upkeep`).
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
    /// Upkeep at the end of each elt: off (elt --no-upkeep), on (elt --retain
    /// 0s --keep-last 8: a week of daily runs kept by count, as simulated
    /// days pass in seconds), or both (each sequence once off,
    /// once on, interleaved, summarised apart).
    #[arg(long, default_value = "off", value_name = "on|off|both")]
    pub upkeep: UpkeepMode,
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

/// Run one benchmark verb.
pub(super) async fn run(cli: &Cli, bench: &BenchCommand) -> Result<()> {
    match bench {
        BenchCommand::PitJoin(args) => {
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
        BenchCommand::Transform(args) => {
            use crate::bench::transform::{TransformBenchConfig, run_transform_bench};
            let report = run_transform_bench(&TransformBenchConfig {
                scale: args.scale,
                seed: args.seed,
                days: args.days,
            })
            .await?;
            out!("{}", report.render().trim_end());
        }
        BenchCommand::Elt(args) => {
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
                upkeep: args.upkeep,
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
        BenchCommand::Scale(args) => {
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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Command;

    fn elt_args(extra: &[&str]) -> std::result::Result<EltBenchArgs, clap::Error> {
        let cli = Cli::try_parse_from(["lakehouse", "bench", "elt"].iter().chain(extra))?;
        let Command::Bench {
            bench: BenchCommand::Elt(args),
        } = cli.command
        else {
            panic!("expected bench elt");
        };
        Ok(args)
    }

    #[test]
    fn bench_elt_upkeep_is_off_unless_asked() {
        assert_eq!(elt_args(&[]).expect("parses").upkeep, UpkeepMode::Off);
        for (text, mode) in [
            ("on", UpkeepMode::On),
            ("off", UpkeepMode::Off),
            ("both", UpkeepMode::Both),
        ] {
            let args = elt_args(&["--upkeep", text, "--days", "100"]).expect(text);
            assert_eq!((args.upkeep, args.data.days), (mode, 100));
        }
        let e = elt_args(&["--upkeep", "weekly"]).expect_err("not a mode");
        assert!(e.to_string().contains("weekly"), "{e}");
    }
}
