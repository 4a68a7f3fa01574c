//! Session options of the PIT join: `lakehouse.pit_join.strategy`.
//!
//! [`PitJoinOptions`] is a DataFusion [`ConfigExtension`] under the
//! `lakehouse` namespace, so the strategy can be set on a `SessionConfig`
//! ([`with_pit_join_options`]) or, once the extension is registered (the
//! contexts of [`crate::query`] do this), with
//! `SET lakehouse.pit_join.strategy = 'sort'` in SQL. The planner reads it
//! when it plans a `PitJoin`; a session without the extension uses the
//! default, [`PitJoinStrategy::Auto`], which the planner resolves per join
//! from the right input's statistics ([`PitJoinStrategy::resolve_auto`]):
//! `partitioned_hash` when the right side is known to be small enough to
//! hold in memory (no sorts, tables built in parallel: the fastest on the
//! README's uniform benchmark on a quiet machine, where `hash` waits for its
//! one-threaded build), `sort` otherwise (the only strategy that spills, and
//! the fastest on skewed keys). The resolved strategy is part of
//! the physical plan (`strategy=...` in `EXPLAIN`), so changing the option
//! only affects plans created afterwards.

use std::any::Any;
use std::fmt;
use std::str::FromStr;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::prelude::SessionConfig;

/// How [`super::PitJoinExec`] executes; see [`super::exec`] for each
/// strategy's input contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PitJoinStrategy {
    /// Collect the right input once (shared by all output partitions), group
    /// it by key in a hash table, and stream the left input unsorted and
    /// unpartitioned through it ([`super::hash`]).
    Hash,
    /// Like [`Self::Hash`], but both inputs are hash-partitioned on the key
    /// and each partition builds a table of its own right rows: the builds
    /// run in parallel and tables are smaller, at the cost of repartitioning
    /// the left input.
    PartitionedHash,
    /// Both inputs hash-partitioned and sorted by key (DataFusion's spilling
    /// `SortExec`), then a merge sweep per partition ([`super::stream`]); the
    /// only strategy that does not need the right input in memory.
    Sort,
    /// The default: [`Self::PartitionedHash`] when the right input's statistics bound
    /// its table well within memory, else [`Self::Sort`]; resolved when the
    /// plan is created ([`Self::resolve_auto`]), never executed as such.
    #[default]
    Auto,
}

/// Largest estimated right-side table [`PitJoinStrategy::Auto`] builds in
/// memory (`strategy=partitioned_hash`); also at most half of a finite
/// memory pool.
pub const AUTO_HASH_MAX_BYTES: usize = 512 * 1024 * 1024;

/// Estimated bytes per right row of a hash table beyond the rows themselves:
/// the arena (start, end, row: 24) and the transient evaluated join columns
/// and group ids (about 24).
const TABLE_BYTES_PER_ROW: usize = 48;

impl PitJoinStrategy {
    /// Every executable strategy, for tests and benchmarks that compare them
    /// ([`Self::Auto`] resolves to one of them).
    pub const ALL: [PitJoinStrategy; 3] = [Self::Hash, Self::PartitionedHash, Self::Sort];

    /// The strategy to execute: `self`, or for [`Self::Auto`] the choice
    /// from the right input's estimated size (`right_rows`, `right_bytes`
    /// from its statistics, exact or estimated; `None` when unknown) and the
    /// memory pool's limit (`None` when unbounded or unknown). `partitioned_hash` when
    /// both are known and the table (the collected rows twice, while they
    /// are concatenated, plus [`TABLE_BYTES_PER_ROW`] per row) fits in
    /// [`AUTO_HASH_MAX_BYTES`] and half the pool; otherwise `sort`, which
    /// needs no such bound.
    pub fn resolve_auto(
        self,
        right_rows: Option<usize>,
        right_bytes: Option<usize>,
        pool_limit: Option<usize>,
    ) -> PitJoinStrategy {
        if self != Self::Auto {
            return self;
        }
        let budget = pool_limit.map_or(AUTO_HASH_MAX_BYTES, |l| (l / 2).min(AUTO_HASH_MAX_BYTES));
        let estimate = right_rows.zip(right_bytes).and_then(|(rows, bytes)| {
            bytes
                .checked_mul(2)?
                .checked_add(rows.checked_mul(TABLE_BYTES_PER_ROW)?)
        });
        match estimate {
            Some(bytes) if bytes <= budget => Self::PartitionedHash,
            _ => Self::Sort,
        }
    }

    /// The option value naming this strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::PartitionedHash => "partitioned_hash",
            Self::Sort => "sort",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for PitJoinStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PitJoinStrategy {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hash" => Ok(Self::Hash),
            "partitioned_hash" => Ok(Self::PartitionedHash),
            "sort" => Ok(Self::Sort),
            "auto" => Ok(Self::Auto),
            other => Err(DataFusionError::Configuration(format!(
                "unknown PIT join strategy '{other}': expected auto, hash, partitioned_hash or sort"
            ))),
        }
    }
}

/// The `lakehouse.pit_join.*` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PitJoinOptions {
    /// `lakehouse.pit_join.strategy`.
    pub strategy: PitJoinStrategy,
}

/// Full key of the strategy option.
pub const STRATEGY_KEY: &str = "lakehouse.pit_join.strategy";
const STRATEGY_DESCRIPTION: &str = "PIT join execution: auto (default: partitioned_hash when the right \
     side's statistics show it fits well in memory, else sort), partitioned_hash (both sides \
     hash-partitioned, one table per partition, left streamed unsorted), hash (right side \
     collected once into one shared table, left neither partitioned nor sorted) or sort (both \
     sides partitioned and sorted by key, merge sweep; right side not held in memory)";

impl PitJoinOptions {
    /// Options with the given strategy.
    pub fn with_strategy(strategy: PitJoinStrategy) -> Self {
        Self { strategy }
    }

    /// The options of a session, or the defaults when it has none.
    pub fn from_config(config: &SessionConfig) -> Self {
        config
            .options()
            .extensions
            .get::<PitJoinOptions>()
            .cloned()
            .unwrap_or_default()
    }
}

impl ConfigExtension for PitJoinOptions {
    const PREFIX: &'static str = "lakehouse";
}

impl ExtensionOptions for PitJoinOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    /// `key` comes without the `lakehouse.` prefix.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "pit_join.strategy" => {
                self.strategy = value.parse()?;
                Ok(())
            }
            other => Err(DataFusionError::Configuration(format!(
                "unknown option lakehouse.{other}: the only one is {STRATEGY_KEY}"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: STRATEGY_KEY.to_string(),
            value: Some(self.strategy.to_string()),
            description: STRATEGY_DESCRIPTION,
        }]
    }
}

/// `config` with the PIT join options registered (the defaults unless it
/// already has them), so `SET lakehouse.pit_join.strategy` works.
pub fn with_pit_join_options(mut config: SessionConfig) -> SessionConfig {
    if config
        .options()
        .extensions
        .get::<PitJoinOptions>()
        .is_none()
    {
        config
            .options_mut()
            .extensions
            .insert(PitJoinOptions::default());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip() {
        for s in PitJoinStrategy::ALL
            .into_iter()
            .chain([PitJoinStrategy::Auto])
        {
            assert_eq!(s.as_str().parse::<PitJoinStrategy>().ok(), Some(s));
        }
        assert_eq!(
            " SORT ".parse::<PitJoinStrategy>().ok(),
            Some(PitJoinStrategy::Sort)
        );
        assert!("merge".parse::<PitJoinStrategy>().is_err());
    }

    #[test]
    fn auto_picks_hash_only_for_a_right_side_known_to_fit() {
        use PitJoinStrategy::{Auto, Hash, PartitionedHash, Sort};
        let mb = 1024 * 1024;
        // 1M rows of 32 bytes: 2 * 32 MB + 48 MB.
        let fits = PartitionedHash;
        assert_eq!(Auto.resolve_auto(Some(mb), Some(32 * mb), None), fits);
        assert_eq!(
            Auto.resolve_auto(Some(mb), Some(32 * mb), Some(224 * mb)),
            fits
        );
        assert_eq!(
            Auto.resolve_auto(Some(mb), Some(32 * mb), Some(222 * mb)),
            Sort
        );
        assert_eq!(Auto.resolve_auto(Some(20 * mb), Some(640 * mb), None), Sort);
        // Unknown size, or an overflowing estimate: the spilling sort.
        assert_eq!(Auto.resolve_auto(None, Some(mb), None), Sort);
        assert_eq!(Auto.resolve_auto(Some(10), None, None), Sort);
        assert_eq!(Auto.resolve_auto(Some(usize::MAX), Some(1), None), Sort);
        // Explicit strategies are kept.
        for s in [Hash, PartitionedHash, Sort] {
            assert_eq!(s.resolve_auto(None, None, Some(0)), s);
        }
    }

    #[test]
    fn options_are_set_through_the_session_config() {
        let mut config = with_pit_join_options(SessionConfig::new());
        assert_eq!(
            PitJoinOptions::from_config(&config).strategy,
            PitJoinStrategy::Auto
        );
        config
            .options_mut()
            .set(STRATEGY_KEY, "hash")
            .expect("set strategy");
        assert_eq!(
            PitJoinOptions::from_config(&config).strategy,
            PitJoinStrategy::Hash
        );
        assert!(config.options_mut().set(STRATEGY_KEY, "nested").is_err());
        assert!(
            config
                .options_mut()
                .set("lakehouse.pit_join.other", "1")
                .is_err()
        );
        // Registering again keeps the value already set.
        let config = with_pit_join_options(config);
        assert_eq!(
            PitJoinOptions::from_config(&config).strategy,
            PitJoinStrategy::Hash
        );
        assert!(
            config
                .options()
                .entries()
                .iter()
                .any(|e| e.key == STRATEGY_KEY && e.value.as_deref() == Some("hash"))
        );
    }
}
