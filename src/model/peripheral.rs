//! Peripherals (`dar.<entity>`): every version of a frame, without its
//! `_hook__*` columns, plus exactly one ghost record.
//!
//! The ghost record stands for "unknown member": the unified bridge turns a
//! missing PIT hook into `ghost_record`, so joining any bridge row to any
//! peripheral on the PIT hook finds exactly one row. Its columns: PIT hook
//! `ghost_record`; every text-like source column (text, xml, uuid) `N/A`;
//! `record_loaded_at`, `record_updated_at`, `record_valid_from`
//! `1970-01-01T00:00:00Z`; `record_valid_to` `9999-12-31T23:59:59Z`;
//! `record_version` 0; `is_current_record` TRUE; everything else NULL.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};

use super::config::Frame;
use super::frame::{MAX_TS_MICROS, MIN_TS_MICROS, prefixed};
use crate::das::ts_lit;
use crate::error::{Error, Result};

/// The PIT hook value of ghost records.
pub const GHOST_RECORD: &str = "ghost_record";
/// The value of text columns in ghost records.
pub const NOT_AVAILABLE: &str = "N/A";

/// The literal `value` as a literal of exactly `data_type`, so the ghost
/// record's branch of the union has the frame's column types to the time
/// zone's spelling (`UTC` and `+00:00` are one zone but two Arrow types).
fn typed(value: Expr, data_type: &datafusion::arrow::datatypes::DataType) -> Result<Expr> {
    match value {
        Expr::Literal(v, _) => Ok(lit(v.cast_to(data_type)?)),
        other => Ok(other),
    }
}

/// The peripheral of `frame` over its frame table; `text_columns` are the
/// source columns whose curated type is text-like.
pub fn peripheral_plan(
    frame: &Frame,
    frame_scan: LogicalPlan,
    text_columns: &[String],
) -> Result<LogicalPlan> {
    let ctx = |e: Error| e.context(format!("peripheral of frame {}", frame.name));
    let pit = frame.primary().pit_name();
    let schema = frame_scan.schema().clone();
    let mut rows: Vec<Expr> = Vec::new();
    let mut ghost: Vec<Expr> = Vec::new();
    let text: Vec<String> = text_columns.iter().map(|c| prefixed(frame, c)).collect();
    for (_, field) in schema.iter() {
        let name = field.name();
        if name.starts_with("_hook__") {
            continue;
        }
        rows.push(col(name.as_str()));
        let value = if name == &pit {
            lit(GHOST_RECORD)
        } else if text.contains(name) {
            lit(NOT_AVAILABLE)
        } else if name == &prefixed(frame, "record_valid_to") {
            typed(ts_lit(MAX_TS_MICROS), field.data_type())?
        } else if [
            prefixed(frame, "record_loaded_at"),
            prefixed(frame, "record_updated_at"),
            prefixed(frame, "record_valid_from"),
        ]
        .contains(name)
        {
            typed(ts_lit(MIN_TS_MICROS), field.data_type())?
        } else if name == &prefixed(frame, "record_version") {
            lit(ScalarValue::Int64(Some(0)).cast_to(field.data_type())?)
        } else if name == &prefixed(frame, "is_current_record") {
            lit(true)
        } else {
            lit(ScalarValue::try_from(field.data_type())?)
        };
        ghost.push(value.alias(name.as_str()));
    }
    if !rows
        .iter()
        .any(|e| matches!(e, Expr::Column(c) if c.name == pit))
    {
        return Err(ctx(Error::invalid(format!(
            "the frame has no column {pit}"
        ))));
    }
    let ghost = LogicalPlanBuilder::empty(true).project(ghost)?.build()?;
    Ok(LogicalPlanBuilder::from(frame_scan)
        .project(rows)
        .map_err(|e| ctx(e.into()))?
        .union(ghost)?
        .build()?)
}
