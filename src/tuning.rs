//! Speed tunings that reach across layers, each behind one named switch.
//!
//! A tuning is a shortcut one layer takes with knowledge of another; each
//! one's code stays in its own module and the crossing happens only where
//! the run hands that module its switch from [`Tuning`]:
//! - `skip-landed`: an `elt` run reads each embedded-source table's landed
//!   cursor ([`crate::dag::sources::embedded_horizons`]) and the generator
//!   leaves out the rows of append-only tables below it (see
//!   [`crate::source::ServerOptions::horizons`]). Off: the generator keeps
//!   every row.
//! - `lean-incremental-plans`: incremental model builds plan in a context
//!   of their own (`incremental_context` in [`crate::model::build`]): a
//!   hand-picked set of optimizer rules, one partition, the PIT join's
//!   `hash` strategy. Off: they plan in the run's context, as full builds
//!   do.
//! - `plan-cache`: every model's plan fingerprint is kept on disk per
//!   program and project ([`crate::dag::fingerprints`]). Off: the
//!   fingerprints are rendered every time and no cache file is read or
//!   written.
//! - `direct-local-reads`: a local warehouse reads files on the calling
//!   thread ([`crate::storage::local`]). Off: its store is `object_store`'s
//!   plain `LocalFileSystem`.
//!
//! # Invariants
//! - A tuning changes how fast a run is, never what it reads, writes or
//!   reports: every result is the same with any of them off (a test per
//!   tuning checks it).
//! - All are on by default. `--tuning LIST` (or `LAKEHOUSE_TUNING`) is a
//!   comma-separated list read left to right from the default: `NAME`
//!   turns a tuning on, `no-NAME` off, `none` all off, `all` all on; any
//!   other item is an error naming it.
//!
//! Why each exists, with its measured effect: `docs/benchmarks.md`.

use std::fmt;

use crate::error::{Error, Result};

/// Which speed tunings a run uses (see the module docs); all on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// `skip-landed`: the embedded source leaves out rows below the landed
    /// cursors in an `elt`.
    pub skip_landed: bool,
    /// `lean-incremental-plans`: incremental builds plan in their lean
    /// context.
    pub lean_incremental_plans: bool,
    /// `plan-cache`: plan fingerprints are cached on disk.
    pub plan_cache: bool,
    /// `direct-local-reads`: a local warehouse reads files in place.
    pub direct_local_reads: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self::all(true)
    }
}

impl Tuning {
    /// The tunings' names, in the order of the fields.
    pub const NAMES: [&'static str; 4] = [
        "skip-landed",
        "lean-incremental-plans",
        "plan-cache",
        "direct-local-reads",
    ];

    /// Every tuning on, or every one off.
    pub fn all(on: bool) -> Self {
        Self {
            skip_landed: on,
            lean_incremental_plans: on,
            plan_cache: on,
            direct_local_reads: on,
        }
    }

    /// The switch named `name` (one of [`Tuning::NAMES`]).
    fn switch(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "skip-landed" => &mut self.skip_landed,
            "lean-incremental-plans" => &mut self.lean_incremental_plans,
            "plan-cache" => &mut self.plan_cache,
            "direct-local-reads" => &mut self.direct_local_reads,
            _ => return None,
        })
    }

    /// Whether the tuning named `name` is on (`None`: no such tuning).
    pub fn is_on(&self, name: &str) -> Option<bool> {
        let mut copy = *self;
        copy.switch(name).map(|on| *on)
    }

    /// Parse a `--tuning` list (see the module docs).
    pub fn parse(text: &str) -> Result<Self> {
        let mut tuning = Self::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "all" => tuning = Self::all(true),
                "none" => tuning = Self::all(false),
                _ => {
                    let (name, on) = match item.strip_prefix("no-") {
                        Some(name) => (name, false),
                        None => (item, true),
                    };
                    *tuning.switch(name).ok_or_else(|| {
                        Error::invalid(format!(
                            "--tuning: unknown tuning `{item}` (known: {}; `no-NAME` turns one off, `none` all, `all` all on)",
                            Self::NAMES.join(", ")
                        ))
                    })? = on;
                }
            }
        }
        Ok(tuning)
    }
}

/// `all`, or the tunings that are off as `no-NAME` items (what
/// [`Tuning::parse`] reads back to the same value).
impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off: Vec<String> = Self::NAMES
            .iter()
            .filter(|n| self.is_on(n) == Some(false))
            .map(|n| format!("no-{n}"))
            .collect();
        if off.is_empty() {
            f.write_str("all")
        } else {
            f.write_str(&off.join(","))
        }
    }
}

impl std::str::FromStr for Tuning {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_turn_tunings_off_and_on_left_to_right() {
        assert_eq!(Tuning::parse("").unwrap(), Tuning::default());
        assert_eq!(Tuning::parse("all").unwrap(), Tuning::all(true));
        assert_eq!(Tuning::parse("none").unwrap(), Tuning::all(false));
        let t = Tuning::parse("no-plan-cache, no-skip-landed").unwrap();
        assert_eq!(
            t,
            Tuning {
                skip_landed: false,
                plan_cache: false,
                ..Tuning::default()
            }
        );
        assert_eq!(t.to_string(), "no-skip-landed,no-plan-cache");
        assert_eq!(Tuning::parse(&t.to_string()).unwrap(), t);
        let t = Tuning::parse("none,direct-local-reads").unwrap();
        assert_eq!(
            (
                t.skip_landed,
                t.lean_incremental_plans,
                t.plan_cache,
                t.direct_local_reads
            ),
            (false, false, false, true)
        );
        assert_eq!(
            t.to_string(),
            "no-skip-landed,no-lean-incremental-plans,no-plan-cache"
        );
        assert_eq!(Tuning::default().to_string(), "all");
        for name in Tuning::NAMES {
            let off = Tuning::parse(&format!("no-{name}")).unwrap();
            assert_eq!(off.is_on(name), Some(false), "{name}");
            assert_eq!(
                Tuning::NAMES
                    .iter()
                    .filter(|n| off.is_on(n) == Some(true))
                    .count(),
                3,
                "no-{name} turns only {name} off"
            );
        }
    }

    #[test]
    fn an_unknown_tuning_is_named() {
        for bad in ["plan_cache", "no-speed", "fast"] {
            let e = Tuning::parse(&format!("no-skip-landed,{bad}")).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("unknown tuning `{bad}`")), "{text}");
            assert!(
                text.contains("skip-landed, lean-incremental-plans"),
                "{text}"
            );
        }
    }
}
