//! The unified bridge `dar._bridge__as_of`: every event bridge stacked into
//! one table (UNION ALL by name).
//!
//! Columns: `peripheral`, `_pit_hook__bridge`, every `_pit_hook__*` column of
//! any event bridge (sorted), `_hook__epoch__date`, every `event__*` flag
//! (sorted), every `measure__*` column (sorted), then the five
//! `bridge__record_*` columns. Frames' own `_hook__*` columns are dropped.
//! A PIT hook column an event bridge lacks, or holds NULL in, becomes
//! `ghost_record`, and so does a missing date hook, so every PIT hook joins
//! exactly one peripheral row. Flags and measures of other peripherals stay
//! NULL.

use std::collections::BTreeSet;

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};

use super::bridge::{PERIPHERAL, PIT_BRIDGE, record_columns};
use super::event::EPOCH_DATE;
use super::peripheral::GHOST_RECORD;
use crate::error::{Error, Result};

/// The unified bridge's table name (namespace `dar`).
pub const UNIFIED: &str = "_bridge__as_of";

/// The unified bridge over the event bridges (`(name, plan)` pairs).
pub fn unified_plan(events: Vec<(String, LogicalPlan)>) -> Result<LogicalPlan> {
    let mut pits = BTreeSet::new();
    let mut flags: BTreeSet<(String, DataType)> = BTreeSet::new();
    let mut measures: BTreeSet<(String, DataType)> = BTreeSet::new();
    for (_, p) in &events {
        for (_, f) in p.schema().iter() {
            let n = f.name();
            if n.starts_with("_pit_hook__") && n != PIT_BRIDGE {
                pits.insert(n.clone());
            } else if n.starts_with("event__") {
                flags.insert((n.clone(), f.data_type().clone()));
            } else if n.starts_with("measure__") {
                measures.insert((n.clone(), f.data_type().clone()));
            }
        }
    }
    for set in [&flags, &measures] {
        let names: Vec<&String> = set.iter().map(|(n, _)| n).collect();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(format!(
                "unified bridge: column {} has different types in different event bridges",
                w[0]
            )));
        }
    }
    let mut builder: Option<LogicalPlanBuilder> = None;
    for (name, plan) in events {
        let has = |c: &str| plan.schema().fields().iter().any(|f| f.name() == c);
        let ghost_or = |c: &str| {
            if has(c) {
                coalesce(vec![col(c), lit(GHOST_RECORD)]).alias(c)
            } else {
                lit(GHOST_RECORD).alias(c)
            }
        };
        let typed = |c: &str, t: &DataType| -> Result<Expr> {
            Ok(if has(c) {
                col(c)
            } else {
                lit(ScalarValue::try_from(t)?).alias(c)
            })
        };
        let mut e: Vec<Expr> = vec![col(PERIPHERAL), col(PIT_BRIDGE)];
        e.extend(pits.iter().map(|c| ghost_or(c)));
        e.push(ghost_or(EPOCH_DATE));
        for (c, t) in flags.iter().chain(measures.iter()) {
            e.push(typed(c, t)?);
        }
        e.extend(record_columns().iter().map(|c| col(c.as_str())));
        let p = LogicalPlanBuilder::from(plan)
            .project(e)
            .map_err(|e| Error::from(e).context(format!("unified bridge: event bridge {name}")))?
            .build()?;
        builder = Some(match builder {
            None => LogicalPlanBuilder::from(p),
            Some(b) => b.union(p)?,
        });
    }
    let builder = builder.ok_or_else(|| Error::invalid("unified bridge: no event bridges"))?;
    Ok(builder.build()?)
}
