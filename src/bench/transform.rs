//! Transform benchmark: the whole pipeline on generated data, timed per
//! layer, with the share of the DAR build spent in PIT joins.
//!
//! Steps: serve the embedded source at `scale`, extract `days` simulated
//! days into a fresh warehouse under the system temp directory (removed
//! afterwards), build every frame in full, then the DAR layer. The PIT join
//! share is the PIT join operators' compute time over the compute time of
//! every operator of the DAR plans (both summed over partitions and over
//! models built concurrently, so the ratio is meaningful while the absolute
//! sums may exceed wall time).

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::land::{ExtractOptions, extract};
use crate::extract::{RetryPolicy, SourceClient};
use crate::model::Project;
use crate::model::build::{BuildMode, build_dar, build_frames};
use crate::source::{GeneratorOptions, ServerOptions, serve};
use crate::storage::Warehouse;

/// Options of `bench transform`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformBenchConfig {
    pub scale: f64,
    pub seed: u64,
    /// Simulated days extracted before the transform (at least 1).
    pub days: u32,
}

/// What `bench transform` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformBenchReport {
    pub config: TransformBenchConfig,
    pub extract: Duration,
    pub frames: Duration,
    pub frame_rows: u64,
    pub dar: Duration,
    pub dar_models: usize,
    pub dar_rows: u64,
    /// Operator compute of the DAR plans, all and PIT joins only.
    pub dar_compute: Duration,
    pub pit_join_compute: Duration,
    /// The slowest DAR models (wall time of each build), slowest first.
    pub slowest: Vec<(String, Duration)>,
}

impl TransformBenchReport {
    /// PIT join share of the DAR plans' operator compute (0..=1).
    pub fn pit_join_share(&self) -> f64 {
        if self.dar_compute.is_zero() {
            0.0
        } else {
            self.pit_join_compute.as_secs_f64() / self.dar_compute.as_secs_f64()
        }
    }

    /// A short text report.
    pub fn render(&self) -> String {
        format!(
            "bench transform: scale {}, seed {}, {} day(s)\n\
             extract      {:>8.2}s\n\
             dab (frames) {:>8.2}s  {} rows\n\
             dar          {:>8.2}s  {} models, {} rows\n\
             PIT joins    {:>8.2}s of {:.2}s operator compute in DAR plans ({:.1}%)\n\
             slowest DAR models:\n",
            self.config.scale,
            self.config.seed,
            self.config.days,
            self.extract.as_secs_f64(),
            self.frames.as_secs_f64(),
            self.frame_rows,
            self.dar.as_secs_f64(),
            self.dar_models,
            self.dar_rows,
            self.pit_join_compute.as_secs_f64(),
            self.dar_compute.as_secs_f64(),
            100.0 * self.pit_join_share()
        ) + &self
            .slowest
            .iter()
            .map(|(m, d)| format!("  {:>8.2}s  {m}\n", d.as_secs_f64()))
            .collect::<String>()
    }
}

/// Run the benchmark (see module docs).
pub async fn run_transform_bench(config: &TransformBenchConfig) -> Result<TransformBenchReport> {
    if config.days == 0 || config.scale.is_nan() || config.scale <= 0.0 {
        return Err(Error::invalid(
            "bench transform: --days must be at least 1 and --scale positive",
        ));
    }
    let project = Project::adventure_works()?;
    let dir = std::env::temp_dir().join(format!("lakehouse-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).ctx(ErrorKind::Storage, || {
        format!("cannot create {}", dir.display())
    })?;
    let result = run_in(&project, config, &dir).await;
    let cleanup = std::fs::remove_dir_all(&dir).ctx(ErrorKind::Storage, || {
        format!("cannot remove {}", dir.display())
    });
    let report = result?;
    cleanup?;
    Ok(report)
}

async fn run_in(
    project: &Project,
    config: &TransformBenchConfig,
    dir: &std::path::Path,
) -> Result<TransformBenchReport> {
    let location = dir
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not UTF-8", dir.display())))?;
    let wh = Warehouse::open(location)?;
    let server = serve(
        &project.sources[0],
        ServerOptions {
            generator: GeneratorOptions {
                seed: config.seed,
                scale: config.scale,
            },
            ..ServerOptions::default()
        },
    )
    .await?;
    let client = SourceClient::for_source(
        &project.sources[0],
        server.base_url(),
        RetryPolicy::default(),
    )?;
    let t = Instant::now();
    for day in 0..config.days {
        server.set_day(day)?;
        let r = extract(
            &wh,
            &project.sources[0],
            &client,
            &ExtractOptions::default(),
        )
        .await?;
        if let Some(f) = r.failures().first() {
            return Err(Error::new(
                ErrorKind::Source,
                format!(
                    "bench transform: extraction failed on day {day}: {}",
                    f.error.as_deref().unwrap_or("unknown error")
                ),
            ));
        }
    }
    let extract_time = t.elapsed();
    let t = Instant::now();
    let frames = build_frames(
        &wh,
        project,
        None,
        BuildMode::Full,
        false,
        &crate::budget::MemoryBudget::unbounded(),
    )
    .await?;
    let frames_time = t.elapsed();
    let t = Instant::now();
    let dar = build_dar(
        &wh,
        project,
        None,
        false,
        &crate::budget::MemoryBudget::unbounded(),
    )
    .await?;
    let dar_time = t.elapsed();
    server.shutdown().await?;
    let mut slowest: Vec<(String, Duration)> =
        dar.iter().map(|r| (r.model.clone(), r.elapsed)).collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.1));
    slowest.truncate(5);
    Ok(TransformBenchReport {
        config: config.clone(),
        extract: extract_time,
        frames: frames_time,
        frame_rows: frames.iter().map(|r| r.rows).sum(),
        dar: dar_time,
        dar_models: dar.len(),
        dar_rows: dar.iter().map(|r| r.rows).sum(),
        dar_compute: dar.iter().map(|r| r.compute).sum(),
        pit_join_compute: dar.iter().map(|r| r.pit_join_compute).sum(),
        slowest,
    })
}
