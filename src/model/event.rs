//! Event bridges (`dar__staging.event__<entity>`) as logical plans.
//!
//! An event bridge repeats each bridge row once per distinct non-NULL event
//! date of the frame version it stands for, plus the dates its measures are
//! placed on. The frame's `date` columns are the event sources:
//! - `event__<prefix>__<column>` (with every `_date` removed from the
//!   prefixed name) is TRUE when that column equals the row's date, FALSE
//!   otherwise; dates shared by several columns give one row with several
//!   flags;
//! - each measure ([`super::measures`]) carries its value on the row whose
//!   date equals its date column, NULL on the others;
//! - `_hook__epoch__date` = `epoch__date|YYYY-MM-DD`;
//! - `_pit_hook__bridge` = the bridge key + `~epoch__date|YYYY-MM-DD`, unique
//!   because each (bridge row, date) pair occurs once.
//!
//! A bridge row without any date keeps one row with NULL date hook, flags and
//! measures, and its bridge key unchanged. The frame (and, for measures with
//! `via`, the providing frame) is joined to the bridge with our PIT join on
//! the PIT hook and the interval overlap, which matches exactly the version
//! the bridge row was built from.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_nested::expr_fn::{array_distinct, make_array};
use datafusion::functions_window::expr_fn::dense_rank;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, col, lit, when,
};

use super::bridge::{PIT_BRIDGE, bridge_column, concat};
use super::config::Frame;
use super::frame::prefixed;
use super::measures::{CountIf, Measure};
use crate::error::{Error, Result};
use crate::join::{PitJoinType, RangeSpec, pit_join_plan};

/// The date hook column.
pub const EPOCH_DATE: &str = "_hook__epoch__date";
/// The keyset of date hooks.
pub const EPOCH_DATE_KEYSET: &str = "epoch__date";

/// The flag column of a frame's date column.
pub fn event_flag(frame: &Frame, column: &str) -> String {
    format!("event__{}", prefixed(frame, column).replace("_date", ""))
}

/// A frame providing a foreign hook whose dates some measures use.
pub struct Related<'a> {
    /// The foreign hook (the related frame's primary hook).
    pub hook: String,
    pub frame: &'a Frame,
    pub scan: LogicalPlan,
}

/// Inputs of one event bridge.
pub struct EventInputs<'a> {
    pub frame: &'a Frame,
    /// The frame's bridge and its column names in order.
    pub bridge: LogicalPlan,
    pub bridge_columns: Vec<String>,
    pub frame_scan: LogicalPlan,
    /// The frame's `date` source columns (flags appear in this order).
    pub date_columns: Vec<String>,
    pub measures: Vec<Measure>,
    pub related: Vec<Related<'a>>,
}

/// The internal column holding a measure's number.
fn value_column(m: &Measure) -> String {
    match &m.value {
        Some(v) => format!("__value__{v}"),
        None => format!("__value__{}", m.name),
    }
}

fn null_of(e: &Expr, plan: &LogicalPlan) -> Result<Expr> {
    let t = e.get_type(plan.schema().as_ref())?;
    Ok(lit(ScalarValue::try_from(&t)?))
}

/// Build the event bridge plan.
pub fn event_plan(inputs: EventInputs<'_>) -> Result<LogicalPlan> {
    let frame = inputs.frame;
    let ctx = |e: Error| e.context(format!("event bridge of frame {}", frame.name));
    let own_pit = frame.primary().pit_name();
    let vf = bridge_column("record_valid_from");
    let vt = bridge_column("record_valid_to");

    // The frame's version: dates and measure values.
    let mut f: Vec<Expr> = vec![
        col(own_pit.as_str()).alias("__f_pit"),
        col(prefixed(frame, "record_valid_from")).alias("__f_vf"),
        col(prefixed(frame, "record_valid_to")).alias("__f_vt"),
    ];
    for d in &inputs.date_columns {
        f.push(col(prefixed(frame, d)).alias(format!("__date__{d}")));
    }
    let mut values: Vec<String> = Vec::new();
    let mut frame_scan = inputs.frame_scan;
    let mut ranks: Vec<String> = Vec::new();
    for m in &inputs.measures {
        let column = value_column(m);
        if values.contains(&column) {
            continue;
        }
        let value = match (&m.value, m.count_if, &m.per) {
            (Some(v), _, _) => col(prefixed(frame, v)),
            (None, Some(kind), Some(per)) => {
                // Rank entities within their group by (date, primary hook);
                // versions of one entity share a rank. One window per
                // (group, date), shared by the measures using it.
                let rank_column = format!("__rank__{per}__{}", m.date);
                if !ranks.contains(&rank_column) {
                    let primary = col(frame.primary().name.as_str());
                    let rank = dense_rank()
                        .partition_by(vec![col(prefixed(frame, per))])
                        .order_by(vec![
                            col(prefixed(frame, &m.date)).sort(true, false),
                            primary.sort(true, false),
                        ])
                        .build()?
                        .alias(rank_column.as_str());
                    frame_scan = LogicalPlanBuilder::from(frame_scan)
                        .window(vec![rank])?
                        .build()?;
                    ranks.push(rank_column.clone());
                }
                let first = col(rank_column).eq(lit(1u64));
                let hit = match kind {
                    CountIf::First => first,
                    CountIf::Repeat => !first,
                };
                when(col(prefixed(frame, per)).is_not_null().and(hit), lit(1i64))
                    .otherwise(lit(ScalarValue::Int64(None)))?
            }
            _ => {
                return Err(ctx(Error::invalid(format!(
                    "measure {}: give either `value`, or `count_if` with `per`",
                    m.name
                ))));
            }
        };
        f.push(value.alias(column.as_str()));
        values.push(column);
    }
    let f = LogicalPlanBuilder::from(frame_scan)
        .project(f)
        .map_err(|e| ctx(e.into()))?
        .build()?;
    let mut plan = pit_join_plan(
        inputs.bridge,
        f,
        vec![(col(own_pit.as_str()), col("__f_pit"))],
        RangeSpec::overlap(
            col(vf.as_str()),
            col(vt.as_str()),
            col("__f_vf"),
            col("__f_vt"),
        ),
        None,
        PitJoinType::Left,
        None,
    )
    .map_err(|e| ctx(e.context("joining the frame")))?;

    // Related frames providing measure dates.
    let mut measure_dates: Vec<(Option<usize>, String)> = Vec::new();
    for (j, r) in inputs.related.iter().enumerate() {
        let wanted: Vec<&Measure> = inputs
            .measures
            .iter()
            .filter(|m| m.via.as_deref() == Some(r.hook.as_str()))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let pit = r.frame.primary().pit_name();
        let mut p: Vec<Expr> = vec![
            col(pit.as_str()).alias(format!("__r{j}_pit")),
            col(prefixed(r.frame, "record_valid_from")).alias(format!("__r{j}_vf")),
            col(prefixed(r.frame, "record_valid_to")).alias(format!("__r{j}_vt")),
        ];
        let mut dates: Vec<&str> = Vec::new();
        for m in wanted {
            if !dates.contains(&m.date.as_str()) {
                dates.push(&m.date);
                p.push(col(prefixed(r.frame, &m.date)).alias(format!("__r{j}__{}", m.date)));
                measure_dates.push((Some(j), m.date.clone()));
            }
        }
        let right = LogicalPlanBuilder::from(r.scan.clone())
            .project(p)
            .map_err(|e| ctx(Error::from(e).context(format!("frame {}", r.frame.name))))?
            .build()?;
        plan = pit_join_plan(
            plan,
            right,
            vec![(col(pit.as_str()), col(format!("__r{j}_pit")))],
            RangeSpec::overlap(
                col(vf.as_str()),
                col(vt.as_str()),
                col(format!("__r{j}_vf")),
                col(format!("__r{j}_vt")),
            ),
            None,
            PitJoinType::Left,
            None,
        )
        .map_err(|e| ctx(e.context(format!("joining frame {}", r.frame.name))))?;
    }
    let related_index = |hook: &str| inputs.related.iter().position(|r| r.hook == hook);
    let date_expr = |m: &Measure| -> Result<Expr> {
        Ok(match &m.via {
            None => col(format!("__date__{}", m.date)),
            Some(h) => {
                let j = related_index(h).ok_or_else(|| {
                    ctx(Error::invalid(format!(
                        "measure {}: no related frame for {h}",
                        m.name
                    )))
                })?;
                col(format!("__r{j}__{}", m.date))
            }
        })
    };
    for m in inputs.measures.iter().filter(|m| m.via.is_none()) {
        if !inputs.date_columns.contains(&m.date) {
            return Err(ctx(Error::invalid(format!(
                "measure {}: {} is not a date column of the frame",
                m.name, m.date
            ))));
        }
    }

    // Unpivot: one branch per date source, plus the rows without any date.
    let mut sources: Vec<Expr> = inputs
        .date_columns
        .iter()
        .map(|d| col(format!("__date__{d}")))
        .collect();
    for (j, d) in &measure_dates {
        if let Some(j) = j {
            sources.push(col(format!("__r{j}__{d}")));
        }
    }
    let bridge_exprs: Vec<Expr> = inputs
        .bridge_columns
        .iter()
        .map(|c| col(c.as_str()))
        .collect();
    let flags: Vec<String> = inputs
        .date_columns
        .iter()
        .map(|d| event_flag(frame, d))
        .collect();
    // One row per (bridge row, date source), sources unnested from an
    // array so the joins above run once; rows without any date keep one
    // NULL-date row.
    let has_date = sources
        .iter()
        .map(|s| s.clone().is_not_null())
        .reduce(Expr::or)
        .unwrap_or(lit(false));
    let mut pre: Vec<Expr> = bridge_exprs.clone();
    for d in &inputs.date_columns {
        pre.push(col(format!("__date__{d}")));
    }
    for v in &values {
        pre.push(col(v.as_str()));
    }
    for (j, d) in &measure_dates {
        if let Some(j) = j {
            pre.push(col(format!("__r{j}__{d}")));
        }
    }
    pre.push(has_date.alias("__has_date"));
    let dates = if sources.is_empty() {
        vec![lit(ScalarValue::Date32(None))]
    } else {
        sources.clone()
    };
    // A date shared by several sources is one event: the array keeps the
    // first occurrence of each date (NULLs included, dropped below), so
    // each (bridge row, date) pair is unnested once. The PIT joins above
    // match at most one version per bridge row, so no other duplicates
    // exist and no DISTINCT over the wide rows is needed.
    pre.push(array_distinct(make_array(dates)).alias("__event_date"));
    let unnested = LogicalPlanBuilder::from(plan)
        .project(pre)?
        .unnest_column("__event_date")?
        .filter(
            col("__event_date")
                .is_not_null()
                .or(col("__has_date").is_false()),
        )?
        .build()?;
    let event_date = cast(col("__event_date"), DataType::Date32);
    let mut e = bridge_exprs.clone();
    e.push(event_date.clone().alias("__event_date"));
    for (d, flag) in inputs.date_columns.iter().zip(&flags) {
        e.push(
            when(
                event_date.clone().is_null(),
                lit(ScalarValue::Boolean(None)),
            )
            .otherwise(coalesce(vec![
                col(format!("__date__{d}")).eq(event_date.clone()),
                lit(false),
            ]))?
            .alias(flag.as_str()),
        );
    }
    for m in &inputs.measures {
        let v = col(value_column(m));
        let null = null_of(&v, &unnested)?;
        e.push(
            when(date_expr(m)?.eq(event_date.clone()), v)
                .otherwise(null)?
                .alias(m.name.as_str()),
        );
    }
    let unioned = LogicalPlanBuilder::from(unnested).project(e)?.build()?;

    let date_text = cast(col("__event_date"), DataType::Utf8);
    let mut out: Vec<Expr> = Vec::new();
    for c in &inputs.bridge_columns {
        if c == PIT_BRIDGE {
            out.push(
                when(col("__event_date").is_null(), col(PIT_BRIDGE))
                    .otherwise(concat(vec![
                        col(PIT_BRIDGE),
                        lit(format!("~{EPOCH_DATE_KEYSET}|")),
                        date_text.clone(),
                    ]))?
                    .alias(PIT_BRIDGE),
            );
        } else {
            out.push(col(c.as_str()));
        }
    }
    out.extend(flags.iter().map(|f| col(f.as_str())));
    out.extend(inputs.measures.iter().map(|m| col(m.name.as_str())));
    out.push(concat(vec![lit(format!("{EPOCH_DATE_KEYSET}|")), date_text]).alias(EPOCH_DATE));
    Ok(LogicalPlanBuilder::from(unioned).project(out)?.build()?)
}
