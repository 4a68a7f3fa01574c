//! Point-in-time (PIT) join: an equi-join with a range condition, as a pure
//! DataFusion extension.
//!
//! # Semantics
//!
//! `PitJoin` joins left and right rows whose equality keys are equal (NULL
//! equals nothing) and whose bounds satisfy the canonical range condition
//!
//! ```text
//!   right_start (< | <=) left_end  AND  left_start (< | <=) right_end
//! ```
//!
//! which covers both shapes used by the models:
//!
//! * interval overlap `l.vf < r.vt AND l.vt > r.vf` (SCD2 bridges), and
//! * point in interval `l.ts >= r.vf AND l.ts < r.vt`, or
//!   `l.ts BETWEEN r.vf AND r.vt` (events), where the left start and end
//!   are the same expression.
//!
//! Any further conjuncts form a residual filter applied to candidate pairs.
//! Join types: inner and left (every left row appears at least once; rows
//! with a NULL key or NULL bound never match but survive a left join
//! NULL-padded). Bounds may be integers, floats, dates, times, timestamps or
//! durations (see [`bounds`]); the result is exactly the multiset DataFusion's
//! hash join with the same predicate returns, for any values, including
//! empty, zero-length, inverted and open-ended (`9999-12-31`) intervals.
//! Optionally two intersection columns `max(left_start, right_start)` and
//! `min(left_end, right_end)` are appended.
//!
//! # Execution
//!
//! Three strategies, chosen per session with `lakehouse.pit_join.strategy`
//! ([`options`]; the default, `auto`, picks `partitioned_hash` when the right side's
//! statistics show it fits well in memory and `sort` otherwise) and shown in
//! `EXPLAIN`:
//!
//! * `partitioned_hash`: both sides hash-partitioned on the keys
//!   (no sort); each partition collects its right rows into a table grouped
//!   by key (each group's intervals sorted, see [`hash`]) and streams its
//!   left rows through it unsorted, each row finding its key group (by hash,
//!   or directly by value for one dense integer key) and its matches by
//!   binary search. Fastest on the README's uniform benchmark.
//! * `hash`: the same with one table of the whole right side, built once
//!   and shared by all output partitions, and the left side neither
//!   repartitioned nor sorted; but the one table is built by one thread
//!   while the others wait.
//! * `sort`: both sides hash-partitioned and sorted by key by
//!   DataFusion (its `SortExec` spills under memory pressure), then a merge
//!   of the two key-sorted streams keeping only the current right key group
//!   in memory ([`stream`]). Fastest on skewed keys (consecutive left rows
//!   hit the same cached key group, where each hash probe pays cache
//!   misses), and the only strategy that spills.
//!
//! Within a key group every strategy finds a left row's matches by binary
//! search over the intervals sorted by start (or a max-segment-tree when
//! they nest), in O(log m + matches). Output is gathered with arrow's
//! `take`/`interleave` into batches of the session's batch size; the
//! residual filter runs on those batches. See [`exec`] for each strategy's
//! input contract and the metrics shown by `EXPLAIN ANALYZE`.
//!
//! # Limitations
//!
//! Inner and left joins only; `IS NOT DISTINCT FROM` keys are not matched
//! (the rule leaves such joins alone); each key pair, and each compared pair
//! of bounds, must have one Arrow type (DataFusion's type coercion ensures
//! this for SQL); bounds of other types (decimals, strings) are left to
//! DataFusion.
//!
//! # Pieces
//!
//! * [`PitJoin`] ([`logical`]): the `UserDefinedLogicalNodeCore` node;
//! * [`PitJoinRule`] ([`rule`]): the optimizer rule recognising the pattern
//!   in `LogicalPlan::Join` (from SQL or `LogicalPlanBuilder`);
//! * [`PitJoinPlanner`] / [`PitQueryPlanner`] ([`planner`]): physical
//!   planning;
//! * [`PitJoinExec`] ([`exec`]) with its hash build and probe ([`hash`]) and
//!   its sort-merge sweep ([`stream`]); shared pieces: the range condition
//!   ([`range`]), the range search within a key group (`search`) and output
//!   assembly (`output`);
//! * [`PitJoinOptions`] ([`options`]): the session option choosing the
//!   strategy.
//!
//! Register everything on a session with [`with_pit_join`]. This module only
//! depends on DataFusion/arrow and `crate::error`.

pub mod bounds;
pub mod exec;
pub mod hash;
pub mod logical;
pub mod options;
mod output;
pub mod planner;
pub mod range;
pub mod rule;
mod search;
pub mod stream;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::error::{Error, ErrorKind, Result};

pub use exec::PitJoinExec;
pub use logical::{PitJoin, PitJoinType, RangeKind, RangeSpec};
pub use options::{PitJoinOptions, PitJoinStrategy, with_pit_join_options};
pub use planner::{PitJoinPlanner, PitQueryPlanner};
pub use range::PhysicalRange;
pub use rule::PitJoinRule;

/// Add the PIT join rule (appended after DataFusion's own optimizer rules,
/// so equi-keys are already extracted when it runs) and a query planner that
/// plans `PitJoin` nodes. If the caller needs other extension planners, set
/// [`PitQueryPlanner::with_extension_planner`] as query planner afterwards.
pub fn with_pit_join(builder: SessionStateBuilder) -> SessionStateBuilder {
    builder
        .with_optimizer_rule(Arc::new(PitJoinRule::new()))
        .with_query_planner(Arc::new(PitQueryPlanner::new()))
}

/// Build a PIT join plan directly (for models): `on` pairs left and right
/// key expressions; `intersection` names the optional appended
/// `(from, to)` columns.
pub fn pit_join_plan(
    left: LogicalPlan,
    right: LogicalPlan,
    on: Vec<(Expr, Expr)>,
    range: RangeSpec,
    filter: Option<Expr>,
    join_type: PitJoinType,
    intersection: Option<(String, String)>,
) -> Result<LogicalPlan> {
    PitJoin::try_new(
        Arc::new(left),
        Arc::new(right),
        on,
        range,
        filter,
        join_type,
        intersection,
    )
    .map(PitJoin::into_plan)
    .map_err(|e| Error::new(ErrorKind::InvalidInput, "invalid PIT join").with_source(e))
}
