//! `bench elt`: the product's end-to-end benchmark, `init` then incremental
//! `elt` days, each day's wall time as a ratio of the same sequence's `init`,
//! and the warehouse's files and bytes after every run.
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
//! **Upkeep** (`--upkeep`, [`UpkeepMode`]): with `off` (the default, so
//! figures measured before upkeep existed stay comparable) every `elt` is
//! run with `--no-upkeep`; an executable that predates upkeep (its `elt`
//! has no `--no-upkeep`, found by asking its `elt --help` once) never runs
//! upkeep and is passed nothing. With `on` every `elt` ends with upkeep
//! under a compressed-time policy, [`UPKEEP_ON_ARGS`]:
//! `--retain 0s --keep-last 8`. The benchmark runs a
//! hundred simulated days in minutes, so every snapshot is seconds old and
//! an age-based retention (the product's default keeps 7 days) would never
//! expire anything; history is therefore kept by count instead: the newest
//! 8 snapshots of each table, about a week of daily runs (the current one
//! and seven before it; a compaction's snapshot counts too). The orphan
//! age stays the product's (3 days): the benchmark's runs leave no
//! orphans, and `elt` sweeps for them at most once per half that age, as
//! it does in daily use. Compaction stays on. With
//! `both` each sequence is run once with upkeep off and once on.
//!
//! A *group* ([`Group`]) is one executable with one upkeep variant; the
//! report summarises each group on its own, as it does each build. With
//! several executables (`--exe a --exe b`) or both variants the sequences
//! are interleaved round by round (a off, a on, b off, b on, then again) so
//! every group meets the same phases of the machine.
//!
//! **Warehouse size**: after `init` and after every `elt` day the warehouse
//! directory is walked ([`measure_dir`]): its regular files and their bytes.
//! The report gives, per sequence and per group (the median over its
//! sequences), day 1's and the last day's wall time and their ratio, the
//! mean wall time of the last [`TAIL_DAYS`] days, and the files and bytes
//! after day 1 and after the last day with their ratios ([`Growth`]).
//! Every day's ratio to `init` is printed for up to [`TAIL_DAYS`] days;
//! beyond that only day 1, every tenth day and the last ([`shown_days`]),
//! so a hundred days do not flood the terminal.
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

pub use super::elt_growth::{Growth, GrowthSummary, TAIL_DAYS, shown_days};
use super::elt_growth::{median, render_table};
pub use super::warehouse_size::{DirSize, measure_dir};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// What `elt` is passed with upkeep on: a compressed-time policy (see
/// module docs), history kept by count because simulated days pass in
/// seconds.
pub const UPKEEP_ON_ARGS: [&str; 4] = ["--retain", "0s", "--keep-last", "8"];

/// What `elt` is passed with upkeep off (when the executable knows it).
pub const UPKEEP_OFF_ARG: &str = "--no-upkeep";

/// Whether a sequence's `elt` runs end with upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Upkeep {
    Off,
    On,
}

impl std::fmt::Display for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Upkeep::Off => "off",
            Upkeep::On => "on",
        })
    }
}

/// `--upkeep`: the variants each round of sequences runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpkeepMode {
    /// Every `elt` without upkeep (the figures from before upkeep existed).
    #[default]
    Off,
    /// Every `elt` with upkeep ([`UPKEEP_ON_ARGS`]).
    On,
    /// Each sequence once off, once on, interleaved.
    Both,
}

impl UpkeepMode {
    /// The variants, in the order each round runs them.
    pub fn variants(self) -> &'static [Upkeep] {
        match self {
            UpkeepMode::Off => &[Upkeep::Off],
            UpkeepMode::On => &[Upkeep::On],
            UpkeepMode::Both => &[Upkeep::Off, Upkeep::On],
        }
    }
}

impl std::str::FromStr for UpkeepMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(UpkeepMode::Off),
            "on" => Ok(UpkeepMode::On),
            "both" => Ok(UpkeepMode::Both),
            _ => Err(Error::invalid(format!(
                "--upkeep: `{s}` is not one of on, off, both"
            ))),
        }
    }
}

impl std::fmt::Display for UpkeepMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpkeepMode::Off => "off",
            UpkeepMode::On => "on",
            UpkeepMode::Both => "both",
        })
    }
}

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
    /// Which upkeep variants run.
    pub upkeep: UpkeepMode,
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

/// One sequence: an `init` and the `elt` days after it, and the warehouse
/// after each.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Index into [`EltBenchConfig::exes`].
    pub exe: usize,
    /// Whether its `elt` runs ended with upkeep.
    pub upkeep: Upkeep,
    pub init: RunMeasure,
    /// The warehouse after `init`.
    pub init_size: DirSize,
    pub days: Vec<RunMeasure>,
    /// The warehouse after each day (one per entry of `days`).
    pub day_sizes: Vec<DirSize>,
}

/// The sequences the report summarises together: one executable with one
/// upkeep variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Index into [`EltBenchConfig::exes`].
    pub exe: usize,
    pub upkeep: Upkeep,
}

impl Sequence {
    /// The group it belongs to.
    pub fn group(&self) -> Group {
        Group {
            exe: self.exe,
            upkeep: self.upkeep,
        }
    }

    /// Its growth from day 1 to its last day (`None` without days).
    pub fn growth(&self) -> Option<Growth> {
        let walls: Vec<f64> = self.days.iter().map(|m| secs(m.wall)).collect();
        Growth::of(&walls, &self.day_sizes)
    }

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
    /// The groups in the order they run: each executable, each upkeep variant.
    pub fn groups(&self) -> Vec<Group> {
        (0..self.config.exes.len())
            .flat_map(|exe| {
                self.config
                    .upkeep
                    .variants()
                    .iter()
                    .map(move |&upkeep| Group { exe, upkeep })
            })
            .collect()
    }

    /// The sequences of group `g`.
    pub fn of_group(&self, g: Group) -> impl Iterator<Item = &Sequence> {
        self.sequences.iter().filter(move |s| s.group() == g)
    }

    /// The ratios of day `d` (0-based) over the sequences of group `g`.
    pub fn ratios(&self, g: Group, d: usize) -> Vec<f64> {
        self.of_group(g).filter_map(|s| s.ratio(d)).collect()
    }

    /// The growth of group `g`: the median over its sequences.
    pub fn growth(&self, g: Group) -> Option<GrowthSummary> {
        let growths: Vec<Growth> = self.of_group(g).filter_map(Sequence::growth).collect();
        GrowthSummary::of(&growths)
    }

    /// Whether the report tells the upkeep variants apart (`--upkeep both`).
    fn by_upkeep(&self) -> bool {
        self.config.upkeep.variants().len() > 1
    }

    /// How group `g` is named in the report.
    fn group_name(&self, g: Group) -> String {
        if self.by_upkeep() {
            format!("executable {}, upkeep {}", g.exe + 1, g.upkeep)
        } else {
            format!("executable {}", g.exe + 1)
        }
    }

    /// A text report: one line per sequence, then per group and day the
    /// range and median of the times and ratios, how many met the target, and
    /// the peak resident memory, then how each sequence and group grew from
    /// day 1 to the last day. Beyond [`TAIL_DAYS`] days only the days of
    /// [`shown_days`] are shown one by one.
    pub fn render(&self) -> String {
        let c = &self.config;
        let pct = |r: f64| format!("{:.1} %", 100.0 * r);
        let by_upkeep = self.by_upkeep();
        let shown = shown_days(c.days as usize);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bench elt: scale {}, seed {}, init then {} elt day(s), {} sequence(s) per executable{}, in {}",
            c.scale,
            c.seed,
            c.days,
            c.sequences,
            if by_upkeep { " and upkeep variant" } else { "" },
            c.dir.display()
        );
        let _ = writeln!(
            out,
            "upkeep {}: {}",
            c.upkeep,
            match c.upkeep {
                UpkeepMode::Off => format!("elt {UPKEEP_OFF_ARG}"),
                UpkeepMode::On => format!("elt {}", UPKEEP_ON_ARGS.join(" ")),
                UpkeepMode::Both => format!(
                    "each sequence once with elt {UPKEEP_OFF_ARG}, once with elt {}",
                    UPKEEP_ON_ARGS.join(" ")
                ),
            }
        );
        for (i, exe) in c.exes.iter().enumerate() {
            let _ = writeln!(out, "executable {}: {}", i + 1, exe.display());
        }
        if shown.len() < c.days as usize {
            let names: Vec<String> = shown.iter().map(|d| (d + 1).to_string()).collect();
            let _ = writeln!(
                out,
                "days shown one by one: {} (every day up to {TAIL_DAYS} days)",
                names.join(", ")
            );
        }
        let _ = write!(out, "\n{:<4} {:<4} ", "seq", "exe");
        if by_upkeep {
            let _ = write!(out, "{:<6} ", "upkeep");
        }
        let _ = write!(out, "{:>18}", "init (peak RSS)");
        for &d in &shown {
            let _ = write!(out, " {:>24}", format!("day {} (ratio, peak RSS)", d + 1));
        }
        out.push('\n');
        for (i, s) in self.sequences.iter().enumerate() {
            let _ = write!(out, "{:<4} {:<4} ", label(i), s.exe + 1);
            if by_upkeep {
                let _ = write!(out, "{:<6} ", s.upkeep.to_string());
            }
            let _ = write!(
                out,
                "{:>18}",
                format!("{:.2} s ({:.0} MB)", secs(s.init.wall), mb(s.init.peak_rss))
            );
            for &d in &shown {
                let Some(day) = s.days.get(d) else { continue };
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
        for g in self.groups() {
            let seqs: Vec<&Sequence> = self.of_group(g).collect();
            if seqs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{}:", self.group_name(g));
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
            for &d in &shown {
                let days: Vec<&RunMeasure> = seqs.iter().filter_map(|s| s.days.get(d)).collect();
                let wall: Vec<f64> = days.iter().map(|m| secs(m.wall)).collect();
                let cpu: Vec<f64> = days.iter().map(|m| secs(m.cpu)).collect();
                let rss: Vec<f64> = days.iter().map(|m| mb(m.peak_rss)).collect();
                let ratios = self.ratios(g, d);
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
            let init_files: Vec<f64> = seqs.iter().map(|s| s.init_size.files as f64).collect();
            let init_bytes: Vec<f64> = seqs.iter().map(|s| s.init_size.bytes as f64).collect();
            let _ = writeln!(
                out,
                "  warehouse after init: {:.0} files, {:.1} MB (median)",
                median(&init_files).unwrap_or(0.0),
                median(&init_bytes).unwrap_or(0.0) / 1e6,
            );
            if let Some(growth) = self.growth(g) {
                let _ = writeln!(out, "  {} (median)", growth.describe());
            }
        }
        let mut rows: Vec<([String; 3], GrowthSummary)> = Vec::new();
        for (i, s) in self.sequences.iter().enumerate() {
            if let Some(g) = s.growth().and_then(|g| GrowthSummary::of(&[g])) {
                rows.push(([label(i), (s.exe + 1).to_string(), s.upkeep.to_string()], g));
            }
        }
        if c.sequences > 1 {
            for g in self.groups() {
                if let Some(summary) = self.growth(g) {
                    rows.push((
                        [
                            "median".into(),
                            (g.exe + 1).to_string(),
                            g.upkeep.to_string(),
                        ],
                        summary,
                    ));
                }
            }
        }
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "\ngrowth (wall times of day 1 and day {days}, their ratio, the mean of the last {} day(s); files and MB in the warehouse after day 1 and day {days}):",
                (c.days as usize).min(TAIL_DAYS),
                days = c.days,
            );
            out.push_str(&render_table(&rows, c.days as usize));
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
    let upkeep_flags = config
        .exes
        .iter()
        .map(|exe| upkeep_flags_of(exe, config.upkeep))
        .collect::<Result<Vec<bool>>>()?;
    std::fs::create_dir_all(&config.dir).ctx(ErrorKind::Storage, || {
        format!("bench elt: cannot create {}", config.dir.display())
    })?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let variants = config.upkeep.variants();
    let mut sequences = Vec::new();
    for round in 0..config.sequences {
        for (exe_index, exe) in config.exes.iter().enumerate() {
            for &upkeep in variants {
                let seq_label = label(sequences.len());
                let warehouse = config
                    .dir
                    .join(format!("lakehouse-bench-elt-{run_id}-{seq_label}"));
                let log = warehouse.with_extension("log");
                let run = SequenceRun {
                    exe,
                    exe_index,
                    upkeep,
                    upkeep_flags: upkeep_flags[exe_index],
                    warehouse: &warehouse,
                    log: &log,
                };
                let variant = if variants.len() > 1 {
                    format!(", upkeep {upkeep}")
                } else {
                    String::new()
                };
                let seq = run_sequence(config, &run, |step, m, size| {
                    progress(&format!(
                        "sequence {seq_label} ({} of {}, executable {}{variant}): {step} {:.2} s, peak RSS {:.0} MB, warehouse {} files, {:.1} MB",
                        round + 1,
                        config.sequences,
                        exe_index + 1,
                        secs(m.wall),
                        mb(m.peak_rss),
                        size.files,
                        mb(size.bytes),
                    ))
                })?;
                if !config.keep {
                    remove(&warehouse)?;
                    remove(&log)?;
                }
                sequences.push(seq);
            }
        }
    }
    Ok(EltBenchReport {
        config: config.clone(),
        sequences,
    })
}

/// Whether `exe`'s `elt` has the upkeep flags (`--no-upkeep`), asked of its
/// `elt --help`. An executable without them never runs upkeep: fine for
/// `--upkeep off`, an error for the modes that need upkeep on.
fn upkeep_flags_of(exe: &Path, mode: UpkeepMode) -> Result<bool> {
    let out = Command::new(exe)
        .args(["elt", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ctx(ErrorKind::Internal, || {
            format!("bench elt: cannot run {} elt --help", exe.display())
        })?;
    let known = out.status.success() && help_has_upkeep(&String::from_utf8_lossy(&out.stdout));
    if !known && mode != UpkeepMode::Off {
        return Err(Error::invalid(format!(
            "bench elt: --upkeep {mode}: {} has no upkeep (its `elt --help` names no {UPKEEP_OFF_ARG}); \
             measure it with --upkeep off",
            exe.display()
        )));
    }
    Ok(known)
}

/// Whether an `elt --help` text offers the upkeep flags.
fn help_has_upkeep(help: &str) -> bool {
    help.contains(UPKEEP_OFF_ARG) && help.contains(UPKEEP_ON_ARGS[2])
}

/// What one sequence runs, and where.
struct SequenceRun<'a> {
    exe: &'a Path,
    exe_index: usize,
    upkeep: Upkeep,
    /// Whether `exe`'s `elt` has the upkeep flags ([`upkeep_flags_of`]).
    upkeep_flags: bool,
    warehouse: &'a Path,
    log: &'a Path,
}

/// The arguments of the `elt` runs for an upkeep variant (see module docs):
/// none when the executable has no upkeep flags.
fn upkeep_args(upkeep: Upkeep, upkeep_flags: bool) -> Vec<String> {
    let args: &[&str] = match (upkeep_flags, upkeep) {
        (false, _) => &[],
        (true, Upkeep::Off) => &[UPKEEP_OFF_ARG],
        (true, Upkeep::On) => &UPKEEP_ON_ARGS,
    };
    args.iter().map(|a| a.to_string()).collect()
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

/// `init` into the warehouse, then `days` `elt` runs, each measured and
/// the warehouse measured after each.
fn run_sequence(
    config: &EltBenchConfig,
    run: &SequenceRun<'_>,
    mut progress: impl FnMut(&str, &RunMeasure, &DirSize),
) -> Result<Sequence> {
    let SequenceRun {
        exe,
        warehouse,
        log,
        ..
    } = *run;
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
    elt_args.extend(upkeep_args(run.upkeep, run.upkeep_flags));
    if config.jobs > 0 {
        for args in [&mut init_args, &mut elt_args] {
            args.extend(["--jobs".to_string(), config.jobs.to_string()]);
        }
    }
    let measure =
        || measure_dir(warehouse).map_err(|e| e.context("bench elt: measuring the warehouse"));
    let init = run_step(config, exe, &init_args, log, "init")?;
    let init_size = measure()?;
    progress("init", &init, &init_size);
    let mut days = Vec::new();
    let mut day_sizes = Vec::new();
    for d in 1..=config.days {
        let step = format!("elt day {d}");
        let m = run_step(config, exe, &elt_args, log, &step)?;
        let size = measure()?;
        progress(&step, &m, &size);
        days.push(m);
        day_sizes.push(size);
    }
    Ok(Sequence {
        exe: run.exe_index,
        upkeep: run.upkeep,
        init,
        init_size,
        days,
        day_sizes,
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
            upkeep: UpkeepMode::Off,
        }
    }

    fn seq(exe: usize, upkeep: Upkeep, init: RunMeasure, days: Vec<RunMeasure>) -> Sequence {
        let day_sizes = (1..=days.len() as u64)
            .map(|d| DirSize {
                files: 100 + 10 * d,
                bytes: 1_000_000 * (10 + d),
            })
            .collect();
        Sequence {
            exe,
            upkeep,
            init,
            init_size: DirSize {
                files: 100,
                bytes: 10_000_000,
            },
            days,
            day_sizes,
        }
    }

    const OFF0: Group = Group {
        exe: 0,
        upkeep: Upkeep::Off,
    };

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
                seq(
                    0,
                    Upkeep::Off,
                    m(10_000, 3000),
                    vec![m(700, 200), m(1_100, 330)],
                ),
                seq(
                    1,
                    Upkeep::Off,
                    m(8_000, 3000),
                    vec![m(800, 210), m(800, 300)],
                ),
                seq(
                    0,
                    Upkeep::Off,
                    m(12_000, 3100),
                    vec![m(900, 190), m(1_080, 320)],
                ),
            ],
        };
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
        };
        let off1 = Group { exe: 1, ..OFF0 };
        assert!(close(&report.ratios(OFF0, 0), &[0.07, 0.075]));
        assert!(close(&report.ratios(OFF0, 1), &[0.11, 0.09]));
        assert!(close(&report.ratios(off1, 1), &[0.1]));
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

    #[test]
    fn upkeep_modes_and_their_arguments() {
        for (text, mode) in [
            ("off", UpkeepMode::Off),
            ("on", UpkeepMode::On),
            (" Both ", UpkeepMode::Both),
        ] {
            assert_eq!(text.parse::<UpkeepMode>().expect(text), mode);
        }
        let e = "sometimes".parse::<UpkeepMode>().expect_err("not a mode");
        assert!(e.message().contains("--upkeep") && e.message().contains("sometimes"));
        assert_eq!(UpkeepMode::default(), UpkeepMode::Off);
        assert_eq!(UpkeepMode::Off.variants(), [Upkeep::Off]);
        assert_eq!(UpkeepMode::On.variants(), [Upkeep::On]);
        assert_eq!(UpkeepMode::Both.variants(), [Upkeep::Off, Upkeep::On]);
        assert_eq!(upkeep_args(Upkeep::Off, true), ["--no-upkeep"]);
        assert_eq!(
            upkeep_args(Upkeep::On, true),
            ["--retain", "0s", "--keep-last", "8"]
        );
        // An executable from before upkeep never runs it: nothing to pass.
        assert!(upkeep_args(Upkeep::Off, false).is_empty());
        assert!(help_has_upkeep(
            "Options:\n      --no-upkeep  Skip the upkeep\n      --keep-last <N>  Always keep"
        ));
        assert!(!help_has_upkeep("Options:\n      --jobs <JOBS>"));
    }

    #[test]
    fn both_variants_are_summarised_apart_and_many_days_compactly() {
        let mut c = config(1, 12);
        c.upkeep = UpkeepMode::Both;
        let day = |d: u64, upkeep: Upkeep| match upkeep {
            Upkeep::Off => m(1_000 + 100 * d, 200),
            Upkeep::On => m(1_000, 210),
        };
        let sequence = |upkeep: Upkeep, init_ms: u64, files_per_day: u64| {
            let mut s = seq(
                0,
                upkeep,
                m(init_ms, 3000),
                (1..=12).map(|d| day(d, upkeep)).collect(),
            );
            s.day_sizes = (1..=12)
                .map(|d| DirSize {
                    files: 100 + files_per_day * d,
                    bytes: 1_000_000 * (100 + files_per_day * d),
                })
                .collect();
            s
        };
        let report = EltBenchReport {
            config: c,
            sequences: vec![
                sequence(Upkeep::Off, 10_000, 10),
                sequence(Upkeep::On, 10_000, 0),
                sequence(Upkeep::Off, 12_000, 10),
                sequence(Upkeep::On, 12_000, 0),
            ],
        };
        let on = Group {
            upkeep: Upkeep::On,
            ..OFF0
        };
        assert_eq!(report.groups(), [OFF0, on]);
        assert_eq!(report.of_group(on).count(), 2);
        let off = report.growth(OFF0).expect("growth off");
        // Off: day 1 1.1 s, day 12 2.2 s, the last 10 days 1.3..=2.2 s.
        assert!((off.first_wall - 1.1).abs() < 1e-9 && (off.last_wall - 2.2).abs() < 1e-9);
        assert!((off.tail_mean - 1.75).abs() < 1e-9, "{off:?}");
        assert_eq!((off.first_files, off.last_files), (110.0, 220.0));
        let on_growth = report.growth(on).expect("growth on");
        assert_eq!(on_growth.files_ratio, Some(1.0));
        let text = report.render();
        assert!(text.contains("upkeep both: each sequence once with elt --no-upkeep, once with elt --retain 0s --keep-last 8"), "{text}");
        assert!(text.contains("days shown one by one: 1, 10, 12"), "{text}");
        assert!(text.contains("\nexecutable 1, upkeep off:\n"), "{text}");
        assert!(text.contains("\nexecutable 1, upkeep on:\n"), "{text}");
        assert!(text.contains("B    1    on     "), "{text}");
        assert!(text.contains("  day 10 1.00-1.00 s"), "{text}");
        assert!(text.contains("  day 12 2.20-2.20 s"), "{text}");
        assert!(!text.contains("  day 2 "), "{text}");
        assert!(!text.contains("day 2 (ratio"), "{text}");
        assert!(
            text.contains("  warehouse after init: 100 files, 10.0 MB (median)"),
            "{text}"
        );
        assert!(
            text.contains(
                "  day 1 -> day 12: 1.10 s -> 2.20 s (2.00x), mean of the last 10 day(s) 1.75 s; \
                 warehouse 110 -> 220 files (2.00x), 110.0 -> 220.0 MB (2.00x) (median)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  day 1 -> day 12: 1.00 s -> 1.00 s (1.00x), mean of the last 10 day(s) 1.00 s; \
                 warehouse 100 -> 100 files (1.00x), 100.0 -> 100.0 MB (1.00x) (median)"
            ),
            "{text}"
        );
        // The growth table: four sequences, then a median per group.
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("growth ("))
            .skip(1)
            .collect();
        assert_eq!(table.len(), 7, "{text}");
        assert!(
            table[0].starts_with("seq    exe upkeep  day 1 day 12  12/1 last 10"),
            "{text}"
        );
        assert!(
            table[1].starts_with("A      1   off    1.10 s 2.20 s 2.00x  1.75 s"),
            "{text}"
        );
        assert!(table[5].starts_with("median 1   off "), "{text}");
        assert!(table[6].starts_with("median 1   on  "), "{text}");
    }
}
