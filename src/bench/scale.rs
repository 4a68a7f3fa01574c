//! `bench scale`: how `init` and an `elt` day grow with the source.
//!
//! For each scale, in the order given: `init --scale S` into a fresh
//! warehouse, then one `elt` day, each a process of its own measured by the
//! operating system like `bench elt` (wall time, CPU time, peak resident
//! memory). The report puts each scale's figures beside the first scale's:
//! its `init` time as a multiple of the first's next to the multiple that
//! linear growth would give (the scale ratio), and the `elt` day as a share
//! of its own `init`. A memory limit (`--memory-limit`) and spill directory
//! given to the benchmark are passed on to every run, so the peak shows
//! whether the runs stayed within the limit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::elt::{RunMeasure, run_logged};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// Options of `bench scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleBenchConfig {
    /// The executable to run (by default this one).
    pub exe: PathBuf,
    /// Source scales, measured in this order (the first is the baseline).
    pub scales: Vec<f64>,
    pub seed: u64,
    /// Where the warehouses are created.
    pub dir: PathBuf,
    /// Passed on as `--memory-limit` when set.
    pub memory_limit: Option<String>,
    /// Passed on as `--spill-dir` when set.
    pub spill_dir: Option<PathBuf>,
    /// Passed on as `--jobs` when non-zero.
    pub jobs: usize,
    /// Pause before each run, after syncing the file system.
    pub pause: Duration,
    /// Keep each warehouse and log.
    pub keep: bool,
}

/// One scale's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRun {
    pub scale: f64,
    pub init: RunMeasure,
    pub elt: RunMeasure,
}

/// Everything `bench scale` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleBenchReport {
    pub config: ScaleBenchConfig,
    pub runs: Vec<ScaleRun>,
}

/// Run the benchmark (see module docs); `progress` gets one line per run.
pub fn run_scale_bench(
    config: &ScaleBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<ScaleBenchReport> {
    validate(config)?;
    std::fs::create_dir_all(&config.dir).ctx(ErrorKind::Storage, || {
        format!("bench scale: cannot create {}", config.dir.display())
    })?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut runs = Vec::new();
    for &scale in &config.scales {
        let warehouse = config
            .dir
            .join(format!("lakehouse-bench-scale-{run_id}-{scale}"));
        let log = warehouse.with_extension("log");
        let run = run_one(config, scale, &warehouse, &log, &mut progress)?;
        if !config.keep {
            super::elt::remove(&warehouse)?;
            super::elt::remove(&log)?;
        }
        runs.push(run);
    }
    Ok(ScaleBenchReport {
        config: config.clone(),
        runs,
    })
}

fn validate(config: &ScaleBenchConfig) -> Result<()> {
    if config.scales.is_empty() {
        return Err(Error::invalid(
            "bench scale: --scales needs at least one scale",
        ));
    }
    if let Some(s) = config.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::invalid(format!(
            "bench scale: every scale must be a positive number, got {s}"
        )));
    }
    if !config.exe.is_file() {
        return Err(Error::not_found(format!(
            "bench scale: executable {} does not exist",
            config.exe.display()
        )));
    }
    Ok(())
}

fn run_one(
    config: &ScaleBenchConfig,
    scale: f64,
    warehouse: &Path,
    log: &Path,
    progress: &mut impl FnMut(&str),
) -> Result<ScaleRun> {
    let wh = warehouse
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not UTF-8", warehouse.display())))?;
    let mut common = vec!["--warehouse".to_string(), wh.to_string()];
    if let Some(limit) = &config.memory_limit {
        common.extend(["--memory-limit".to_string(), limit.clone()]);
    }
    if let Some(dir) = &config.spill_dir {
        common.extend(["--spill-dir".to_string(), dir.display().to_string()]);
    }
    let mut init = common.clone();
    init.extend([
        "init".to_string(),
        "--scale".to_string(),
        scale.to_string(),
        "--seed".to_string(),
        config.seed.to_string(),
    ]);
    let mut elt = common;
    elt.push("elt".to_string());
    if config.jobs > 0 {
        for args in [&mut init, &mut elt] {
            args.extend(["--jobs".to_string(), config.jobs.to_string()]);
        }
    }
    let line = |step: &str, m: &RunMeasure| {
        format!(
            "scale {scale}: {step} {:.2} s (CPU {:.2} s), peak RSS {:.0} MB",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.peak_rss as f64 / 1e6
        )
    };
    let step = format!("init --scale {scale}");
    let init = run_logged(&config.exe, &init, log, &step, config.pause, "bench scale")?;
    progress(&line("init", &init));
    let elt = run_logged(&config.exe, &elt, log, "elt", config.pause, "bench scale")?;
    progress(&line("elt", &elt));
    Ok(ScaleRun { scale, init, elt })
}

impl ScaleBenchReport {
    /// A table: per scale, `init` (wall, CPU, peak RSS), its growth against
    /// the first scale beside linear growth, and the `elt` day.
    pub fn render(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bench scale: seed {}, memory limit {}, in {}",
            c.seed,
            c.memory_limit.as_deref().unwrap_or("default"),
            c.dir.display()
        );
        let _ = writeln!(
            out,
            "\n{:>6} {:>10} {:>10} {:>14} {:>14} {:>10} {:>14} {:>10}",
            "scale",
            "init",
            "init CPU",
            "init peak RSS",
            "growth/linear",
            "elt",
            "elt peak RSS",
            "elt/init"
        );
        let Some(first) = self.runs.first() else {
            return out;
        };
        for r in &self.runs {
            let growth = r.init.wall.as_secs_f64() / first.init.wall.as_secs_f64().max(1e-9);
            let linear = r.scale / first.scale;
            let _ = writeln!(
                out,
                "{:>6} {:>10} {:>10} {:>14} {:>14} {:>10} {:>14} {:>10}",
                r.scale,
                format!("{:.1} s", r.init.wall.as_secs_f64()),
                format!("{:.1} s", r.init.cpu.as_secs_f64()),
                format!("{:.0} MB", r.init.peak_rss as f64 / 1e6),
                format!("{growth:.2}x/{linear:.0}x"),
                format!("{:.2} s", r.elt.wall.as_secs_f64()),
                format!("{:.0} MB", r.elt.peak_rss as f64 / 1e6),
                format!(
                    "{:.1} %",
                    100.0 * r.elt.wall.as_secs_f64() / r.init.wall.as_secs_f64().max(1e-9)
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(wall: f64, rss_mb: u64) -> RunMeasure {
        RunMeasure {
            wall: Duration::from_secs_f64(wall),
            cpu: Duration::from_secs_f64(wall * 1.5),
            peak_rss: rss_mb * 1_000_000,
        }
    }

    #[test]
    fn the_report_puts_growth_beside_linear() {
        let config = ScaleBenchConfig {
            exe: PathBuf::from("/bin/true"),
            scales: vec![1.0, 3.0],
            seed: 42,
            dir: PathBuf::from("/tmp"),
            memory_limit: Some("4GiB".into()),
            spill_dir: None,
            jobs: 0,
            pause: Duration::ZERO,
            keep: false,
        };
        let report = ScaleBenchReport {
            config,
            runs: vec![
                ScaleRun {
                    scale: 1.0,
                    init: measure(10.0, 1200),
                    elt: measure(0.5, 300),
                },
                ScaleRun {
                    scale: 3.0,
                    init: measure(31.0, 2500),
                    elt: measure(1.2, 600),
                },
            ],
        };
        let text = report.render();
        assert!(text.contains("memory limit 4GiB"), "{text}");
        let row3 = text
            .lines()
            .find(|l| l.trim_start().starts_with("3 "))
            .unwrap();
        assert!(row3.contains("31.0 s"), "{row3}");
        assert!(row3.contains("46.5 s"), "{row3}");
        assert!(row3.contains("2500 MB"), "{row3}");
        assert!(row3.contains("3.10x/3x"), "{row3}");
        assert!(row3.contains("3.9 %"), "{row3}");
        let row1 = text
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .unwrap();
        assert!(
            row1.contains("1.00x/1x") && row1.contains("5.0 %"),
            "{row1}"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let mut config = ScaleBenchConfig {
            exe: std::env::current_exe().unwrap(),
            scales: vec![],
            seed: 42,
            dir: std::env::temp_dir(),
            memory_limit: None,
            spill_dir: None,
            jobs: 0,
            pause: Duration::ZERO,
            keep: false,
        };
        let e = run_scale_bench(&config, |_| {}).unwrap_err().to_string();
        assert!(e.contains("at least one scale"), "{e}");
        config.scales = vec![1.0, -2.0];
        let e = run_scale_bench(&config, |_| {}).unwrap_err().to_string();
        assert!(e.contains("positive"), "{e}");
        config.scales = vec![1.0];
        config.exe = PathBuf::from("/no/such/lakehouse");
        let e = run_scale_bench(&config, |_| {}).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
