//! Puppini bridges (`dar__staging.bridge__<entity>`) as logical plans.
//!
//! A bridge row is one version of the frame's entity joined to the versions
//! of every parent **bridge** it overlaps (cascading inheritance: a parent
//! bridge already carries the grandparents' PIT hooks). The joins are left
//! PIT joins (our operator) on the foreign hook and the half-open interval
//! overlap `own.from < parent.to AND own.to > parent.from`; each join narrows
//! the row's validity to the intersection, so after all parents
//! `bridge__record_valid_from = max(froms)` and `..._valid_to = min(tos)`.
//!
//! Invariants (for frames whose versions tile each key's timeline, which
//! frames guarantee from `1970-01-01T00:00:00Z` to `9999-12-31T23:59:59Z`):
//! - rows of one child version have disjoint, non-empty validities whose
//!   union is the version's validity, so at any instant each child key has
//!   exactly one row;
//! - a child without a matching parent keeps one row per validity interval,
//!   that parent's PIT hooks NULL;
//! - `_pit_hook__bridge` = `peripheral|<peripheral>~<own PIT hook>~epoch__valid_from|<valid_from>`
//!   (timestamps rendered as in the frames) is unique;
//! - an inherited PIT hook reached through several parents takes the first
//!   non-NULL candidate in precedence order (shortest path, then config
//!   order; see [`super::graph`]).
//!
//! Record columns: `bridge__record_loaded_at` is the latest load time of the
//! versions combined in the row; `bridge__is_current_record` is
//! `valid_to = 9999-12-31T23:59:59Z`; `bridge__record_updated_at` is the
//! load time for current rows, else `valid_to` (as in the frames).

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::functions::expr_fn::{coalesce, greatest};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit, when};

use super::config::Frame;
use super::frame::{MAX_TS_MICROS, key_text, prefixed};
use super::graph::Node;
use crate::das::ts_lit;
use crate::error::{Error, Result};
use crate::join::{PitJoinType, RangeSpec, pit_join_plan};

/// Prefix of every bridge record column.
pub const BRIDGE_PREFIX: &str = "bridge";
/// The bridge key column.
pub const PIT_BRIDGE: &str = "_pit_hook__bridge";
/// The peripheral name column.
pub const PERIPHERAL: &str = "peripheral";

/// `bridge__<name>`.
pub fn bridge_column(name: &str) -> String {
    format!("{BRIDGE_PREFIX}__{name}")
}

/// The five record columns every bridge ends with.
pub fn record_columns() -> [String; 5] {
    [
        bridge_column("record_loaded_at"),
        bridge_column("record_updated_at"),
        bridge_column("record_valid_from"),
        bridge_column("record_valid_to"),
        bridge_column("is_current_record"),
    ]
}

pub(crate) fn concat(parts: Vec<Expr>) -> Expr {
    use datafusion::logical_expr::{Operator, binary_expr};
    let mut it = parts.into_iter();
    let first = it
        .next()
        .unwrap_or_else(|| lit(datafusion::common::ScalarValue::Utf8(None)));
    it.fold(first, |acc, p| binary_expr(acc, Operator::StringConcat, p))
}

pub(crate) fn ts_text(e: Expr) -> Result<Expr> {
    key_text(
        e,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
}

const VF: &str = "__valid_from";
const VT: &str = "__valid_to";
const LOADED: &str = "__loaded_at";

fn dep_col(i: usize, name: &str) -> String {
    format!("__d{i}__{name}")
}

/// The bridge of `frame` over its frame table (`frame_scan`) and its parents'
/// bridges (`parents`, one per `node.dependencies`, same order; `parent_columns`
/// lists each parent bridge's PIT hook columns).
pub fn bridge_plan(
    frame: &Frame,
    node: &Node,
    peripheral: &str,
    frame_scan: LogicalPlan,
    parents: Vec<(LogicalPlan, Vec<String>)>,
) -> Result<LogicalPlan> {
    let ctx = |e: Error| e.context(format!("bridge of frame {}", frame.name));
    if parents.len() != node.dependencies.len() {
        return Err(ctx(Error::internal(format!(
            "{} parent bridges given for {} dependencies",
            parents.len(),
            node.dependencies.len()
        ))));
    }
    let primary = frame.primary();
    let own_pit = primary.pit_name();
    let mut own: Vec<Expr> = vec![col(own_pit.as_str()), col(primary.name.as_str())];
    for (i, d) in node.dependencies.iter().enumerate() {
        own.push(col(d.hook.as_str()).alias(dep_col(i, "join")));
    }
    own.extend([
        col(prefixed(frame, "record_loaded_at")).alias(LOADED),
        col(prefixed(frame, "record_valid_from")).alias(VF),
        col(prefixed(frame, "record_valid_to")).alias(VT),
    ]);
    let mut plan = LogicalPlanBuilder::from(frame_scan)
        .project(own)
        .map_err(|e| ctx(e.into()))?
        .build()?;
    // Columns carried along, besides the three interval/load columns.
    let mut carried: Vec<String> = vec![own_pit.clone(), primary.name.clone()];
    carried.extend((0..node.dependencies.len()).map(|i| dep_col(i, "join")));

    for (i, ((parent, parent_columns), dep)) in
        parents.into_iter().zip(&node.dependencies).enumerate()
    {
        let mut right: Vec<Expr> = vec![col(dep.hook.as_str()).alias(dep_col(i, "hook"))];
        for c in &parent_columns {
            right.push(col(c.as_str()).alias(dep_col(i, c)));
        }
        right.extend([
            col(bridge_column("record_loaded_at")).alias(dep_col(i, "loaded_at")),
            col(bridge_column("record_valid_from")).alias(dep_col(i, "vf")),
            col(bridge_column("record_valid_to")).alias(dep_col(i, "vt")),
        ]);
        let right = LogicalPlanBuilder::from(parent)
            .project(right)
            .map_err(|e| ctx(Error::from(e).context(format!("parent via {}", dep.hook))))?
            .build()?;
        let joined = pit_join_plan(
            plan,
            right,
            vec![(col(dep_col(i, "join")), col(dep_col(i, "hook")))],
            RangeSpec::overlap(
                col(VF),
                col(VT),
                col(dep_col(i, "vf")),
                col(dep_col(i, "vt")),
            ),
            None,
            PitJoinType::Left,
            Some((dep_col(i, "from"), dep_col(i, "to"))),
        )
        .map_err(|e| ctx(e.context(format!("joining the parent bridge via {}", dep.hook))))?;
        let mut keep: Vec<Expr> = carried.iter().map(|c| col(c.as_str())).collect();
        for c in &parent_columns {
            keep.push(col(dep_col(i, c)));
        }
        keep.extend([
            greatest(vec![col(LOADED), col(dep_col(i, "loaded_at"))]).alias(LOADED),
            coalesce(vec![col(dep_col(i, "from")), col(VF)]).alias(VF),
            coalesce(vec![col(dep_col(i, "to")), col(VT)]).alias(VT),
        ]);
        carried.extend(parent_columns.iter().map(|c| dep_col(i, c)));
        plan = LogicalPlanBuilder::from(joined).project(keep)?.build()?;
    }

    let is_current = col(VT).eq(ts_lit(MAX_TS_MICROS));
    let mut out: Vec<Expr> = vec![
        lit(peripheral.to_string()).alias(PERIPHERAL),
        concat(vec![
            lit(format!("{PERIPHERAL}|{peripheral}~")),
            col(own_pit.as_str()),
            lit("~epoch__valid_from|"),
            ts_text(col(VF))?,
        ])
        .alias(PIT_BRIDGE),
        col(own_pit.as_str()),
    ];
    for c in node.columns.iter().skip(1) {
        let candidates: Vec<Expr> = c
            .candidates
            .iter()
            .map(|k| col(dep_col(k.dependency, &c.name)))
            .collect();
        let value = match <[Expr; 1]>::try_from(candidates) {
            Ok([single]) => single,
            Err(many) => coalesce(many),
        };
        out.push(value.alias(c.name.as_str()));
    }
    let [loaded, updated, from, to, current] = record_columns();
    out.extend([
        col(primary.name.as_str()),
        col(LOADED).alias(loaded),
        when(is_current.clone(), col(LOADED))
            .otherwise(col(VT))?
            .alias(updated),
        col(VF).alias(from),
        col(VT).alias(to),
        is_current.alias(current),
    ]);
    Ok(LogicalPlanBuilder::from(plan)
        .filter(col(VF).lt(col(VT)))?
        .project(out)?
        .build()?)
}
