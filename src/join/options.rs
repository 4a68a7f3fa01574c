//! Session options of the PIT join: `lakehouse.pit_join.strategy`.
//!
//! [`PitJoinOptions`] is a DataFusion [`ConfigExtension`] under the
//! `lakehouse` namespace, so the strategy can be set on a `SessionConfig`
//! ([`with_pit_join_options`]) or, once the extension is registered (the
//! contexts of [`crate::query`] do this), with
//! `SET lakehouse.pit_join.strategy = 'sort'` in SQL. The planner reads it
//! when it plans a `PitJoin`; a session without the extension uses the
//! default, [`PitJoinStrategy::Sort`]: on the benchmarks of the README it is
//! the fastest or as fast as the hash strategies on every shape (the hash
//! probes pay a cache miss per lookup that the key-ordered sweep avoids). The chosen strategy is part of the
//! physical plan (`strategy=...` in `EXPLAIN`), so changing the option only
//! affects plans created afterwards.

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
    /// only strategy that does not need the right input in memory. The
    /// default.
    #[default]
    Sort,
}

impl PitJoinStrategy {
    /// Every strategy, for tests and benchmarks that compare them.
    pub const ALL: [PitJoinStrategy; 3] = [Self::Hash, Self::PartitionedHash, Self::Sort];

    /// The option value naming this strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::PartitionedHash => "partitioned_hash",
            Self::Sort => "sort",
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
            other => Err(DataFusionError::Configuration(format!(
                "unknown PIT join strategy '{other}': expected hash, partitioned_hash or sort"
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
const STRATEGY_DESCRIPTION: &str = "PIT join execution: sort (default), partitioned_hash (both \
     sides hash-partitioned, one table per partition, left streamed unsorted), hash (right side \
     collected once into one shared table, left neither partitioned nor sorted) or sort (both sides partitioned and sorted by key, merge sweep; right side not \
     held in memory)";

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
        for s in PitJoinStrategy::ALL {
            assert_eq!(s.as_str().parse::<PitJoinStrategy>().ok(), Some(s));
        }
        assert_eq!(
            " SORT ".parse::<PitJoinStrategy>().ok(),
            Some(PitJoinStrategy::Sort)
        );
        assert!("merge".parse::<PitJoinStrategy>().is_err());
    }

    #[test]
    fn options_are_set_through_the_session_config() {
        let mut config = with_pit_join_options(SessionConfig::new());
        assert_eq!(
            PitJoinOptions::from_config(&config).strategy,
            PitJoinStrategy::Sort
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
