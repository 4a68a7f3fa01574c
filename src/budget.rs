//! The memory budget every query of a run executes under.
//!
//! A [`MemoryBudget`] (the `--memory-limit` and `--spill-dir` flags) becomes
//! the DataFusion runtime of a run ([`MemoryBudget::runtime`]):
//! - a **fair spill pool** of [`POOL_SHARE`] of the limit, wrapped so that
//!   sorts leave room for merging what they buffer (`SortRoom`) and an
//!   allocation failure names the operators holding the most memory. Sorts,
//!   aggregates, windows and repartitions spill to disk when their share is
//!   used up; the PIT join's hash strategies reserve from the same pool, and
//!   its `auto` strategy picks `sort` (which spills) when the right side
//!   would not fit in half of it. The rest of the limit is headroom for what
//!   the pool does not track (file reads and Parquet encoding in flight);
//! - a **disk manager** spilling to a temporary directory under `--spill-dir`
//!   (default: the OS temp dir), removed when the run ends; spill files are
//!   LZ4-compressed Arrow IPC;
//! - a **source share** ([`MemoryBudget::source_share`]): the embedded
//!   source spills its generated rows to local files past [`SOURCE_SHARE`]
//!   of the limit;
//! - a **kept-rows share** ([`MemoryBudget::kept_rows_bytes`]): the rows a
//!   commit added, kept for the models reading them next, stay under
//!   [`KEPT_ROWS_SHARE`] of the limit (the oldest go first);
//! - a **model budget** ([`MemoryBudget::models_at_once`]): the scheduler runs
//!   at most one model per [`MODEL_SHARE`] of the pool at a time, so raising
//!   `--jobs` never multiplies the peak past the limit.
//!
//! With no limit given, the default is [`DEFAULT_SHARE`] of the machine's
//! memory (the smaller of physical memory and the cgroup limit).
//! [`MemoryBudget::unbounded`] keeps the pool unbounded (library callers
//! and tests that measure nothing about memory).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
    UnboundedMemoryPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, ErrorKind, Result};

/// Share of the machine's memory a run may use by default.
pub const DEFAULT_SHARE: f64 = 0.5;
/// Share of the limit given to DataFusion's memory pool.
pub const POOL_SHARE: f64 = 0.75;
/// Pools smaller than this run plans in one partition
/// ([`MemoryBudget::target_partitions`]).
pub const SMALL_POOL: usize = 256 * 1024 * 1024;
/// Share of the limit the embedded source may hold before it spills.
pub const SOURCE_SHARE: f64 = 0.125;
/// Share of the limit a run may hold of the rows its commits added, for the
/// models that read them next ([`MemoryBudget::kept_rows_bytes`]).
pub const KEPT_ROWS_SHARE: f64 = 0.125;
/// A sort's merge holds at most a this-many-th of the pool while others
/// hold more, and at least [`MERGE_FLOOR`] (see [`SortRoom`]).
pub const MERGE_SHARE: usize = 4;
/// A sort's merge holds at most a this-many-th of the pool even beside
/// nothing (at least [`MERGE_FLOOR`]), so operators that start later find
/// room (see [`SortRoom`]).
pub const MERGE_ALONE_SHARE: usize = 2;
/// One sort buffers at most a this-many-th of the pool (at least
/// [`MERGE_FLOOR`]) before it spills, so merging its buffer fits under the
/// merge cap (see [`SortRoom`]).
pub const SORT_SHARE: usize = 4;
/// Share of the pool past which sorts that hold something spill, leaving
/// the rest for merges (see [`SortRoom`]).
pub const SORT_CEILING: f64 = 0.6;
/// The least a sort's merge may hold (two spilled batches of wide rows).
pub const MERGE_FLOOR: usize = 64 * 1024 * 1024;
/// Pool memory each model running at once is counted as needing.
pub const MODEL_SHARE: usize = 96 * 1024 * 1024;

/// When and where the embedded source's generator spills its append-only
/// tables (see `source::spill`), as [`MemoryBudget::source_share`] and
/// [`MemoryBudget::spill_dir`] set them. `None` where an
/// `Option<SpillOptions>` is taken: everything stays in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillOptions {
    /// Spill a full chunk of an append-only table once the generator holds
    /// more than this many bytes of cells (24 bytes per value held, text
    /// not counted); `0` spills every full chunk.
    pub above: u64,
    /// Directory under which the `lakehouse-source-*` spill directory is
    /// made (`None`: the OS temporary directory).
    pub dir: Option<PathBuf>,
}

impl SpillOptions {
    /// Spill above `bytes` of held cells, under the OS temporary directory.
    pub fn above(bytes: u64) -> Self {
        Self {
            above: bytes,
            dir: None,
        }
    }
}

/// How much memory a run may use and where it spills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The limit in bytes; `None`: unbounded.
    pub limit: Option<u64>,
    /// Directory for spill files (a temporary directory is made in it);
    /// `None`: the OS temp dir.
    pub spill_dir: Option<PathBuf>,
}

impl MemoryBudget {
    /// No limit: the pool is unbounded (spilling never triggers).
    pub fn unbounded() -> Self {
        Self::default()
    }

    /// A limit of `bytes`.
    pub fn limited(bytes: u64) -> Self {
        Self {
            limit: Some(bytes),
            spill_dir: None,
        }
    }

    /// The CLI's budget: `limit` as given (see [`parse_size`]), else
    /// [`DEFAULT_SHARE`] of the machine's memory.
    pub fn from_flags(limit: Option<&str>, spill_dir: Option<PathBuf>) -> Result<Self> {
        let limit = match limit {
            Some(s) => parse_size(s)?,
            None => (machine_memory()? as f64 * DEFAULT_SHARE) as u64,
        };
        if let Some(d) = &spill_dir {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::invalid(format!("spill directory {}: {e}", d.display())))?;
        }
        Ok(Self {
            limit: Some(limit),
            spill_dir,
        })
    }

    /// Bytes the embedded source may hold in memory before it spills its
    /// generated rows to local files ([`SOURCE_SHARE`] of the limit; `None`:
    /// unbounded, never spills).
    pub fn source_share(&self) -> Option<u64> {
        self.limit.map(|l| (l as f64 * SOURCE_SHARE) as u64)
    }

    /// Bytes of the rows a commit added that a run keeps in memory for the
    /// models reading them next ([`KEPT_ROWS_SHARE`] of the limit; `None`:
    /// unbounded, the warehouse's default). The pool does not track them:
    /// they come out of the headroom beside it.
    pub fn kept_rows_bytes(&self) -> Option<usize> {
        self.limit.map(|l| {
            ((l as f64 * KEPT_ROWS_SHARE) as u64)
                .try_into()
                .unwrap_or(usize::MAX)
        })
    }

    /// The pool's size in bytes (`None`: unbounded).
    pub fn pool_bytes(&self) -> Option<usize> {
        self.limit.map(|l| {
            ((l as f64 * POOL_SHARE) as u64)
                .try_into()
                .unwrap_or(usize::MAX)
        })
    }

    /// Models that may run at once under this budget, at most `wanted`.
    pub fn models_at_once(&self, wanted: usize) -> usize {
        match self.pool_bytes() {
            None => wanted.max(1),
            Some(p) => wanted.min(p / MODEL_SHARE).max(1),
        }
    }

    /// The DataFusion runtime: the pool and the disk manager described in
    /// the module docs.
    pub fn runtime(&self) -> Result<Arc<RuntimeEnv>> {
        let pool: Arc<dyn MemoryPool> = match self.pool_bytes() {
            Some(bytes) => Arc::new(TrackConsumersPool::new(
                SortRoom::new(FairSpillPool::new(bytes), bytes),
                std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            None => Arc::new(UnboundedMemoryPool::default()),
        };
        let mode = match &self.spill_dir {
            Some(d) => DiskManagerMode::Directories(vec![d.clone()]),
            None => DiskManagerMode::OsTmpDirectory,
        };
        Ok(RuntimeEnvBuilder::new()
            .with_memory_pool(pool)
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
            .build_arc()?)
    }

    /// DataFusion settings that follow the budget: each sort sets aside
    /// [`Self::sort_reservation`] for merging its spilled runs.
    pub fn session_config(&self) -> SessionConfig {
        let mut config = SessionConfig::new();
        config.options_mut().execution.sort_spill_reservation_bytes = self.sort_reservation();
        config.options_mut().execution.batch_size = self.batch_size();
        // Spilled runs hold wide rows of long, repetitive hook text, which
        // LZ4 shrinks many times over for little CPU.
        config.options_mut().execution.spill_compression =
            datafusion::common::config::SpillCompression::Lz4Frame;
        if let Some(n) = self.target_partitions() {
            config.options_mut().execution.target_partitions = n;
        }
        config
    }

    /// Memory each sort partition reserves up front for merging what it
    /// spilled: DataFusion's 10 MiB, less under small budgets (a 64th of
    /// the pool, at least 256 KiB), where a plan's several sorts, each in
    /// every partition, would otherwise reserve the whole pool before any
    /// row is sorted.
    pub fn sort_reservation(&self) -> usize {
        const DEFAULT: usize = 10 * 1024 * 1024;
        match self.pool_bytes() {
            Some(pool) => (pool / 64).clamp(256 * 1024, DEFAULT),
            None => DEFAULT,
        }
    }

    /// Rows per batch: DataFusion's 8192 from a 512 MiB pool up, fewer
    /// below (one per 64 KiB of pool, at least 256): the fair pool gives each
    /// spilling operator of the running plans an equal share, and under a
    /// small budget a share must still hold a few batches of wide rows.
    pub fn batch_size(&self) -> usize {
        const DEFAULT: usize = 8192;
        match self.pool_bytes() {
            Some(pool) => (pool / (64 * 1024)).clamp(256, DEFAULT),
            None => DEFAULT,
        }
    }

    /// Partitions a plan runs in: DataFusion's default (one per core), or
    /// one under a pool smaller than [`SMALL_POOL`], where every partition's
    /// sorts would take a share of the little there is.
    pub fn target_partitions(&self) -> Option<usize> {
        match self.pool_bytes() {
            Some(pool) if pool < SMALL_POOL => Some(1),
            _ => None,
        }
    }

    /// A SQL context (with the PIT join) executing under this budget.
    pub fn context(&self) -> Result<SessionContext> {
        Ok(crate::query::session_context_in(
            self.session_config(),
            self.runtime()?,
        ))
    }

    /// The error of building `model`: `e` with that context, or, when a
    /// memory pool refused an allocation, one line naming the model, the
    /// operator that asked (as DataFusion names it, e.g. `ExternalSorter[0]`
    /// or `PitJoinHashBuild[1]`) and the limit, with `e` as its cause.
    pub fn explain(&self, model: &str, e: Error) -> Error {
        if e.kind() != ErrorKind::OutOfMemory {
            return e.context(format!("building {model}"));
        }
        let text = format!("{e:#}");
        let operator = operator_of(&text).unwrap_or_else(|| "an operator".into());
        Error::new(
            ErrorKind::OutOfMemory,
            format!(
                "building {model}: {operator} needs more memory than the memory limit of {} \
                 leaves it and cannot spill more; raise --memory-limit (or \
                 LAKEHOUSE_MEMORY_LIMIT). Nothing of {model} was committed",
                self.describe()
            ),
        )
        .with_source(e)
    }

    /// The limit as text (e.g. `4.0 GiB`, `unbounded`).
    pub fn describe(&self) -> String {
        match self.limit {
            Some(l) => format_size(l),
            None => "unbounded".into(),
        }
    }
}

/// The memory consumer named in a DataFusion "resources exhausted" text.
fn operator_of(text: &str) -> Option<String> {
    let re = regex::Regex::new(
        r"(?:allocation failed for|Failed to allocate additional \S+ \S+ for) (\S+)",
    )
    .ok()?;
    re.captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches(',').to_string())
}

/// A pool that keeps room for sorts to merge what they hold. A sort
/// (DataFusion's `ExternalSorter`) buffers batches under a spillable
/// reservation and, to spill or to emit, merges them under a second,
/// unspillable one (`ExternalSorterMerge`) that holds each batch's sort keys
/// again in row format. That merge cannot give memory back, so if the sorts
/// filled the pool first it fails (seen at scale 10 in a 3 GiB pool: two
/// sorts held their fair halves and the merge before their spill needed
/// ~365 MB more). Three rules, each a refusal the operator answers by
/// spilling (sorts) or by reading fewer files per pass (merges):
/// - **one sort's buffer** holds at most [`SORT_SHARE`] of the pool, so its
///   merge fits under the merge cap below;
/// - **all sorts' buffers together** stop at [`SORT_CEILING`] of the pool:
///   a sort that holds something and would take the pool past it spills
///   instead, leaving the rest for merges. A sort that holds nothing is
///   never refused here (it has nothing to spill: the fair pool decides);
/// - **one merge** holds at most [`MERGE_SHARE`] of the pool (at least
///   [`MERGE_FLOOR`]) while other consumers hold more than that, and at most
///   [`MERGE_ALONE_SHARE`] of it beside nothing. DataFusion's multi-level
///   merge of spill files reads as many files at once as its reservation
///   can grow: one such merge took 1.7 GB of a 3 GiB pool at scale 10 and
///   starved the operators beside it, and at scale 30 one that had grown
///   alone to 3.0 GB left a sort starting after it no room for its first
///   batch. Capped, it makes more passes; a pass needs a few batches, far
///   below half the pool.
///
/// A 16th of the pool per merge was too little at scale 3 (a pass needs two
/// spilled batches; the event bridges' were ~100 MB each), and a cap on all
/// merges together refused growth a started merge needs (its output
/// batches). When merges beside each other still leave a sort nothing to
/// start with, the runner builds that model again alone
/// ([`crate::dag::run::run_models`]).
#[derive(Debug)]
struct SortRoom<P> {
    inner: P,
    /// What one merge may hold (while others hold more).
    merge_cap: usize,
    /// What one merge may hold at all ([`MERGE_ALONE_SHARE`] of the pool).
    merge_alone: usize,
    /// What one sort's buffer may hold.
    sort_cap: usize,
    /// The pool total past which a sort that holds something must spill.
    ceiling: usize,
}

impl<P: MemoryPool> SortRoom<P> {
    /// The room for a pool of `pool` bytes.
    fn new(inner: P, pool: usize) -> Self {
        Self {
            inner,
            merge_cap: (pool / MERGE_SHARE).max(MERGE_FLOOR),
            merge_alone: (pool / MERGE_ALONE_SHARE).max(MERGE_FLOOR),
            sort_cap: (pool / SORT_SHARE).max(MERGE_FLOOR),
            ceiling: (pool as f64 * SORT_CEILING) as usize,
        }
    }

    /// The refusal of `additional` bytes for `reservation`, if a rule above
    /// refuses it.
    fn refusal(&self, reservation: &MemoryReservation, additional: usize) -> Option<String> {
        let name = reservation.consumer().name();
        let held = reservation.size();
        let total = self.inner.reserved();
        if name.starts_with("ExternalSorterMerge") {
            let others = total.saturating_sub(held);
            let wanted = held + additional;
            if wanted > self.merge_cap && others > self.merge_cap {
                Some(format!(
                    "a sort's merge may hold at most {} beside others",
                    format_size(self.merge_cap as u64)
                ))
            } else {
                (wanted > self.merge_alone).then(|| {
                    format!(
                        "a sort's merge may hold at most {}",
                        format_size(self.merge_alone as u64)
                    )
                })
            }
        } else if name.starts_with("ExternalSorter[") && held > 0 {
            if held + additional > self.sort_cap {
                Some(format!(
                    "a sort may buffer at most {} before it spills",
                    format_size(self.sort_cap as u64)
                ))
            } else {
                (total + additional > self.ceiling).then(|| {
                    format!(
                        "sorts spill once the pool holds {}, leaving the rest for their merges",
                        format_size(self.ceiling as u64)
                    )
                })
            }
        } else {
            None
        }
    }
}

impl<P: MemoryPool> MemoryPool for SortRoom<P> {
    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }
    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }
    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }
    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::error::Result<()> {
        if let Some(why) = self.refusal(reservation, additional) {
            return Err(datafusion::error::DataFusionError::ResourcesExhausted(
                format!(
                    "Failed to allocate additional {} for {}: {why}",
                    format_size(additional as u64),
                    reservation.consumer().name(),
                ),
            ));
        }
        self.inner.try_grow(reservation, additional)
    }
    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// Parse a size: a number with an optional unit `B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, `T`/`TB`/`TiB` (all binary: 1 KiB = 1024 B;
/// case-insensitive, spaces allowed), e.g. `4GiB`, `512m`, `1.5 G`.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        Error::invalid(format!(
            "bad size '{text}': expected a number and a unit such as 512MiB or 4GiB"
        ))
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `bytes` in the largest binary unit that keeps it at least 1.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The machine's memory: physical memory, or the cgroup's limit if lower.
fn machine_memory() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let physical = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (physical, cgroup) {
        (Some(p), Some(c)) => Ok(p.min(c)),
        (Some(p), None) => Ok(p),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(Error::invalid(
            "cannot tell this machine's memory: give --memory-limit (e.g. 4GiB)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5 G").unwrap(), 3 << 29);
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["", "GiB", "4 parsecs", "-1G", "0"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains("bad size"), "{bad}: {e}");
        }
        assert_eq!(format_size(4 << 30), "4.0 GiB");
        assert_eq!(format_size(100), "100 B");
    }

    #[test]
    fn the_budget_sizes_the_pool_and_the_models_at_once() {
        let b = MemoryBudget::limited(4 << 30);
        assert_eq!(b.pool_bytes(), Some(3 << 30));
        assert_eq!(b.kept_rows_bytes(), Some(512 << 20));
        assert_eq!(MemoryBudget::unbounded().kept_rows_bytes(), None);
        assert_eq!(b.models_at_once(4), 4);
        // A tiny budget runs one model at a time, whatever --jobs says.
        assert_eq!(MemoryBudget::limited(64 << 20).models_at_once(8), 1);
        assert_eq!(MemoryBudget::unbounded().models_at_once(8), 8);
        let rt = MemoryBudget::limited(64 << 20).runtime().unwrap();
        let r = datafusion::execution::memory_pool::MemoryConsumer::new("test")
            .register(&rt.memory_pool);
        // The pool refuses what exceeds it.
        assert!(r.try_grow(100 << 20).is_err());
        assert!(r.try_grow(1 << 20).is_ok());
        // A sort's merge gets at most a quarter of the pool, at least 64 MiB
        // (512 MiB: 96 MiB of a 384 MiB pool).
        let rt = MemoryBudget::limited(512 << 20).runtime().unwrap();
        let consumer = datafusion::execution::memory_pool::MemoryConsumer::new;
        let merge = consumer("ExternalSorterMerge[0]").register(&rt.memory_pool);
        assert!(merge.try_grow(90 << 20).is_ok());
        let other = consumer("ExternalSorter[0]").register(&rt.memory_pool);
        assert!(other.try_grow(100 << 20).is_ok(), "only merges are capped");
        let e = merge.try_grow(10 << 20).unwrap_err().to_string();
        assert!(e.contains("ExternalSorterMerge[0]"), "{e}");
        // Alone, a merge may grow past its cap, up to half the pool.
        other.free();
        assert!(merge.try_grow(100 << 20).is_ok(), "nobody to starve");
        let e = merge.try_grow(10 << 20).unwrap_err().to_string();
        assert!(e.contains("may hold at most 192.0 MiB"), "{e}");
    }

    #[test]
    fn sorts_leave_room_for_their_merges() {
        // A 768 MiB pool: one sort buffers at most 192 MiB, all sorts stop
        // at 60 % (460.8 MiB), and the rest stays for merges.
        let rt = MemoryBudget::limited(1 << 30).runtime().unwrap();
        let pool = &rt.memory_pool;
        let sorter = |p: usize| {
            MemoryConsumer::new(format!("ExternalSorter[{p}]"))
                .with_can_spill(true)
                .register(pool)
        };
        let (a, b, c) = (sorter(0), sorter(1), sorter(2));
        assert!(a.try_grow(190 << 20).is_ok());
        let e = a.try_grow(10 << 20).unwrap_err().to_string();
        assert!(
            e.contains("ExternalSorter[0]") && e.contains("before it spills"),
            "{e}"
        );
        assert!(b.try_grow(190 << 20).is_ok());
        // A third sort that holds something stops at the ceiling...
        assert!(
            c.try_grow(60 << 20).is_ok(),
            "holding nothing, it may start"
        );
        let e = c.try_grow(30 << 20).unwrap_err().to_string();
        assert!(e.contains("leaving the rest for their merges"), "{e}");
        // ... and a merge still finds the room the sorts left.
        let merge = MemoryConsumer::new("ExternalSorterMerge[0]").register(pool);
        assert!(merge.try_grow(190 << 20).is_ok());
        // Other consumers (not sorts) are left to the fair pool.
        let other = MemoryConsumer::new("PitJoinHashBuild[0]").register(pool);
        assert!(other.try_grow(100 << 20).is_ok());
        assert_eq!(pool.reserved(), 730 << 20);
    }

    #[test]
    fn the_default_is_a_share_of_the_machine() {
        let b = MemoryBudget::from_flags(None, None).unwrap();
        let m = machine_memory().unwrap();
        assert_eq!(b.limit, Some((m as f64 * DEFAULT_SHARE) as u64));
    }
}
