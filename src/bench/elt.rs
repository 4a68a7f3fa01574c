//! `bench elt`: the product's end-to-end benchmark, `init` then incremental
//! `elt` days, each day's wall time as a ratio of the same sequence's `init`.
//!
//! Every run is a process of its own (a `lakehouse` executable, by default
//! this one), as a user runs it, so each run pays its own start-up, source
//! generation and table loading, and the operating system reports its peak
//! resident memory and CPU time (`wait4`). A *sequence* is `init` into a
//! fresh warehouse directory followed by `days` `elt` runs; the ratio of a
//! day is always taken against the `init` of its own sequence, because this
//! machine's speed drifts by tens of percent within minutes and only figures
//! measured side by side compare.
//!
//! With several executables (`--exe a --exe b`) the sequences are
//! interleaved (a, b, a, b, ...) so both builds meet the same phases of the
//! machine, and the report summarises each build on its own.
//!
//! Before each run the file system is synced and the benchmark pauses
//! (`pause`), so one run's write-back does not land in the next run's time.
//! A run that fails stops the benchmark with its exit status and the tail of
//! its output; its warehouse and log are kept for inspection. Otherwise each
//! sequence's warehouse is removed once measured (unless `keep`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, ResultExt};

/// Options of `bench elt`.
#[derive(Debug, Clone, PartialEq)]
pub struct EltBenchConfig {
    /// The executables to measure (interleaved when several).
    pub exes: Vec<PathBuf>,
    /// Embedded source scale of `init` (1 = the real Adventure Works sizes).
    pub scale: f64,
    /// Embedded source seed of `init`.
    pub seed: u64,
    /// `elt` runs after each `init` (at least 1).
    pub days: u32,
    /// Sequences per executable (at least 1).
    pub sequences: u32,
    /// The directory the warehouses are created in.
    pub dir: PathBuf,
    /// Pause before each run, after syncing the file system.
    pub pause: Duration,
    /// Passed on as `--jobs` when set (0: the runs' default).
    pub jobs: usize,
    /// The target ratio of an `elt` day to `init` (0.10 = 10 %).
    pub target: f64,
    /// Keep each sequence's warehouse and log.
    pub keep: bool,
}

/// What the operating system measured of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunMeasure {
    pub wall: Duration,
    /// User plus system CPU time (zero where the platform does not report it).
    pub cpu: Duration,
    /// Peak resident memory in bytes (zero where the platform does not report it).
    pub peak_rss: u64,
}

/// One sequence: an `init` and the `elt` days after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Index into [`EltBenchConfig::exes`].
    pub exe: usize,
    pub init: RunMeasure,
    pub days: Vec<RunMeasure>,
}

impl Sequence {
    /// Day `d`'s (0-based) wall time over this sequence's `init`.
    pub fn ratio(&self, d: usize) -> Option<f64> {
        let day = self.days.get(d)?;
        let init = self.init.wall.as_secs_f64();
        (init > 0.0).then(|| day.wall.as_secs_f64() / init)
    }
}

/// Everything `bench elt` measured, in the order it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct EltBenchReport {
    pub config: EltBenchConfig,
    pub sequences: Vec<Sequence>,
}

/// The median of a non-empty list (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A spreadsheet-style label for sequence `i`: A..Z, AA, AB, ...
fn label(i: usize) -> String {
    let mut n = i + 1;
    let mut s = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

impl EltBenchReport {
    /// The sequences of executable `exe`.
    pub fn of_exe(&self, exe: usize) -> impl Iterator<Item = &Sequence> {
        self.sequences.iter().filter(move |s| s.exe == exe)
    }

    /// The ratios of day `d` (0-based) over the sequences of executable `exe`.
    pub fn ratios(&self, exe: usize, d: usize) -> Vec<f64> {
        self.of_exe(exe).filter_map(|s| s.ratio(d)).collect()
    }

    /// A text report: one line per sequence, then per executable and day the
    /// range and median of the times and ratios, how many met the target, and
    /// the peak resident memory.
    pub fn render(&self) -> String {
        let c = &self.config;
        let pct = |r: f64| format!("{:.1} %", 100.0 * r);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bench elt: scale {}, seed {}, init then {} elt day(s), {} sequence(s) per executable, in {}",
            c.scale,
            c.seed,
            c.days,
            c.sequences,
            c.dir.display()
        );
        for (i, exe) in c.exes.iter().enumerate() {
            let _ = writeln!(out, "executable {}: {}", i + 1, exe.display());
        }
        let _ = write!(out, "\n{:<4} {:<4} {:>18}", "seq", "exe", "init (peak RSS)");
        for d in 1..=c.days {
            let _ = write!(out, " {:>24}", format!("day {d} (ratio, peak RSS)"));
        }
        out.push('\n');
        for (i, s) in self.sequences.iter().enumerate() {
            let _ = write!(
                out,
                "{:<4} {:<4} {:>18}",
                label(i),
                s.exe + 1,
                format!("{:.2} s ({:.0} MB)", secs(s.init.wall), mb(s.init.peak_rss))
            );
            for (d, day) in s.days.iter().enumerate() {
                let ratio = s.ratio(d).map(pct).unwrap_or_else(|| "-".into());
                let _ = write!(
                    out,
                    " {:>24}",
                    format!(
                        "{:.2} s ({ratio}, {:.0} MB)",
                        secs(day.wall),
                        mb(day.peak_rss)
                    )
                );
            }
            out.push('\n');
        }
        for exe in 0..c.exes.len() {
            let seqs: Vec<&Sequence> = self.of_exe(exe).collect();
            if seqs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\nexecutable {}:", exe + 1);
            let init: Vec<f64> = seqs.iter().map(|s| secs(s.init.wall)).collect();
            let init_cpu: Vec<f64> = seqs.iter().map(|s| secs(s.init.cpu)).collect();
            let init_rss: Vec<f64> = seqs.iter().map(|s| mb(s.init.peak_rss)).collect();
            let (lo, hi) = min_max(&init);
            let (rlo, rhi) = min_max(&init_rss);
            let _ = writeln!(
                out,
                "  init   {lo:.2}-{hi:.2} s (median {:.2} s, CPU {:.2} s), peak RSS {rlo:.0}-{rhi:.0} MB",
                median(&init).unwrap_or(0.0),
                median(&init_cpu).unwrap_or(0.0),
            );
            for d in 0..c.days as usize {
                let days: Vec<&RunMeasure> = seqs.iter().filter_map(|s| s.days.get(d)).collect();
                let wall: Vec<f64> = days.iter().map(|m| secs(m.wall)).collect();
                let cpu: Vec<f64> = days.iter().map(|m| secs(m.cpu)).collect();
                let rss: Vec<f64> = days.iter().map(|m| mb(m.peak_rss)).collect();
                let ratios = self.ratios(exe, d);
                let (lo, hi) = min_max(&wall);
                let (qlo, qhi) = min_max(&ratios);
                let (rlo, rhi) = min_max(&rss);
                let under = ratios.iter().filter(|&&r| r < c.target).count();
                let _ = writeln!(
                    out,
                    "  day {} {lo:.2}-{hi:.2} s (CPU {:.2} s), {}-{} of init (median {}), under {} in {under} of {}, peak RSS {rlo:.0}-{rhi:.0} MB",
                    d + 1,
                    median(&cpu).unwrap_or(0.0),
                    pct(qlo),
                    pct(qhi),
                    pct(median(&ratios).unwrap_or(0.0)),
                    pct(c.target),
                    ratios.len(),
                );
            }
        }
        out
    }
}

/// Run the benchmark (see module docs). `progress` is told of each run as it
/// ends, one line each.
pub fn run_elt_bench(
    config: &EltBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<EltBenchReport> {
    validate(config)?;
    std::fs::create_dir_all(&config.dir).ctx(ErrorKind::Storage, || {
        format!("bench elt: cannot create {}", config.dir.display())
    })?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut sequences = Vec::new();
    for round in 0..config.sequences {
        for (exe_index, exe) in config.exes.iter().enumerate() {
            let seq_label = label(sequences.len());
            let warehouse = config
                .dir
                .join(format!("lakehouse-bench-elt-{run_id}-{seq_label}"));
            let log = warehouse.with_extension("log");
            let seq = run_sequence(config, exe, exe_index, &warehouse, &log, |step, m| {
                progress(&format!(
                    "sequence {seq_label} ({} of {}, executable {}): {step} {:.2} s, peak RSS {:.0} MB",
                    round + 1,
                    config.sequences,
                    exe_index + 1,
                    secs(m.wall),
                    mb(m.peak_rss)
                ))
            })?;
            if !config.keep {
                remove(&warehouse)?;
                remove(&log)?;
            }
            sequences.push(seq);
        }
    }
    Ok(EltBenchReport {
        config: config.clone(),
        sequences,
    })
}

fn validate(config: &EltBenchConfig) -> Result<()> {
    if config.days == 0 {
        return Err(Error::invalid("bench elt: --days must be at least 1"));
    }
    if config.sequences == 0 {
        return Err(Error::invalid("bench elt: --sequences must be at least 1"));
    }
    if !(config.scale.is_finite() && config.scale > 0.0) {
        return Err(Error::invalid(format!(
            "bench elt: --scale must be a positive number, got {}",
            config.scale
        )));
    }
    if !(config.target.is_finite() && config.target > 0.0) {
        return Err(Error::invalid(format!(
            "bench elt: --target must be a positive fraction, got {}",
            config.target
        )));
    }
    if config.exes.is_empty() {
        return Err(Error::invalid("bench elt: no executable to measure"));
    }
    for exe in &config.exes {
        if !exe.is_file() {
            return Err(Error::not_found(format!(
                "bench elt: executable {} does not exist",
                exe.display()
            )));
        }
    }
    Ok(())
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
            .ctx(ErrorKind::Storage, || {
                format!("cannot remove {}", path.display())
            }),
        _ => Ok(()),
    }
}

/// `init` into `warehouse`, then `days` `elt` runs, each measured.
fn run_sequence(
    config: &EltBenchConfig,
    exe: &Path,
    exe_index: usize,
    warehouse: &Path,
    log: &Path,
    mut progress: impl FnMut(&str, &RunMeasure),
) -> Result<Sequence> {
    let wh = warehouse
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not UTF-8", warehouse.display())))?;
    let mut init_args = vec![
        "--warehouse".to_string(),
        wh.to_string(),
        "init".to_string(),
        "--scale".to_string(),
        config.scale.to_string(),
        "--seed".to_string(),
        config.seed.to_string(),
    ];
    let mut elt_args = vec!["--warehouse".to_string(), wh.to_string(), "elt".to_string()];
    if config.jobs > 0 {
        for args in [&mut init_args, &mut elt_args] {
            args.extend(["--jobs".to_string(), config.jobs.to_string()]);
        }
    }
    let init = run_step(config, exe, &init_args, log, "init")?;
    progress("init", &init);
    let mut days = Vec::new();
    for d in 1..=config.days {
        let step = format!("elt day {d}");
        let m = run_step(config, exe, &elt_args, log, &step)?;
        progress(&step, &m);
        days.push(m);
    }
    Ok(Sequence {
        exe: exe_index,
        init,
        days,
    })
}

/// One run of `bench elt` (see [`run_logged`]).
fn run_step(
    config: &EltBenchConfig,
    exe: &Path,
    args: &[String],
    log: &Path,
    step: &str,
) -> Result<RunMeasure> {
    run_logged(exe, args, log, step, config.pause, "bench elt")
}

/// One run of a benchmark named `bench`: sync, pause, then the process with
/// its output appended to `log`; a failure names the step and gives the
/// tail of its output.
pub(crate) fn run_logged(
    exe: &Path,
    args: &[String],
    log: &Path,
    step: &str,
    pause: Duration,
    bench: &str,
) -> Result<RunMeasure> {
    sync();
    std::thread::sleep(pause);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|f| Ok((f.try_clone()?, f)))
        .ctx(ErrorKind::Storage, || {
            format!("{bench}: cannot open {}", log.display())
        })?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.0)
        .stderr(out.1);
    let (status, measure) = run_measured(&mut cmd).ctx(ErrorKind::Internal, || {
        format!("{bench}: cannot run {} ({step})", exe.display())
    })?;
    if !status.success() {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = output.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        return Err(Error::internal(format!(
            "{bench}: {step} failed ({status}): {} {}; its warehouse is kept, its output in {}:\n{}",
            exe.display(),
            args.join(" "),
            log.display(),
            tail.join("\n")
        )));
    }
    Ok(measure)
}

/// Flush written files to disk so a run's write-back is not timed in the next.
fn sync() {
    #[cfg(unix)]
    // SAFETY: `sync` takes no arguments and cannot fail.
    unsafe {
        libc::sync()
    };
}

/// Run `cmd` to its end; its wall time, and from the OS its CPU time and peak
/// resident memory.
#[cfg(unix)]
fn run_measured(cmd: &mut Command) -> std::io::Result<(ExitStatus, RunMeasure)> {
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (the `Child` handle
        // is never waited on: dropping it does not wait); both pointers are
        // valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed();
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    // Linux and the BSDs report the peak in KiB, macOS in bytes.
    let rss_unit: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Ok((
        ExitStatus::from_raw(status),
        RunMeasure {
            wall,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            peak_rss: (usage.ru_maxrss.max(0) as u64) * rss_unit,
        },
    ))
}

#[cfg(not(unix))]
fn run_measured(cmd: &mut Command) -> std::io::Result<(ExitStatus, RunMeasure)> {
    let start = Instant::now();
    let status = cmd.status()?;
    Ok((
        status,
        RunMeasure {
            wall: start.elapsed(),
            cpu: Duration::ZERO,
            peak_rss: 0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(wall_ms: u64, rss_mb: u64) -> RunMeasure {
        RunMeasure {
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::from_millis(2 * wall_ms),
            peak_rss: rss_mb * 1_000_000,
        }
    }

    fn config(exes: usize, days: u32) -> EltBenchConfig {
        EltBenchConfig {
            exes: (0..exes)
                .map(|i| PathBuf::from(format!("/bin/x{i}")))
                .collect(),
            scale: 1.0,
            seed: 42,
            days,
            sequences: 2,
            dir: PathBuf::from("/dev/shm"),
            pause: Duration::ZERO,
            jobs: 0,
            target: 0.10,
            keep: false,
        }
    }

    #[test]
    fn medians_and_labels() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let labels: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .into_iter()
            .map(label)
            .collect();
        assert_eq!(
            labels,
            ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"].map(String::from)
        );
    }

    #[test]
    fn ratios_are_per_sequence_and_per_executable() {
        let report = EltBenchReport {
            config: config(2, 2),
            sequences: vec![
                Sequence {
                    exe: 0,
                    init: m(10_000, 3000),
                    days: vec![m(700, 200), m(1_100, 330)],
                },
                Sequence {
                    exe: 1,
                    init: m(8_000, 3000),
                    days: vec![m(800, 210), m(800, 300)],
                },
                Sequence {
                    exe: 0,
                    init: m(12_000, 3100),
                    days: vec![m(900, 190), m(1_080, 320)],
                },
            ],
        };
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
        };
        assert!(close(&report.ratios(0, 0), &[0.07, 0.075]));
        assert!(close(&report.ratios(0, 1), &[0.11, 0.09]));
        assert!(close(&report.ratios(1, 1), &[0.1]));
        assert_eq!(report.sequences[0].ratio(2), None);
        let text = report.render();
        assert!(
            text.contains("A    1     10.00 s (3000 MB)   0.70 s (7.0 %, 200 MB)"),
            "{text}"
        );
        assert!(text.contains("C    1     12.00 s (3100 MB)"), "{text}");
        // Executable 1, day 2: 11.0 % and 9.0 %, one of two under 10 %.
        assert!(
            text.contains(
                "  day 2 1.08-1.10 s (CPU 2.18 s), 9.0 %-11.0 % of init (median 10.0 %), under 10.0 % in 1 of 2, peak RSS 320-330 MB"
            ),
            "{text}"
        );
        // Executable 2: exactly 10 % is not under the target.
        assert!(
            text.contains("(median 10.0 %), under 10.0 % in 0 of 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "  init   10.00-12.00 s (median 11.00 s, CPU 22.00 s), peak RSS 3000-3100 MB"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let mut c = config(1, 0);
        c.exes = vec![std::env::current_exe().expect("test executable")];
        let e = validate(&c).expect_err("no days");
        assert!(e.message().contains("--days"), "{e}");
        c.days = 1;
        c.sequences = 0;
        assert!(
            validate(&c)
                .expect_err("")
                .message()
                .contains("--sequences")
        );
        c.sequences = 1;
        c.scale = f64::NAN;
        assert!(validate(&c).expect_err("").message().contains("--scale"));
        c.scale = 1.0;
        validate(&c).expect("valid");
        c.exes.push(PathBuf::from("/nonexistent/lakehouse"));
        let e = validate(&c).expect_err("missing executable");
        assert!(e.message().contains("/nonexistent/lakehouse"), "{e}");
    }
}
