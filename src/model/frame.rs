//! HOOK frames as DataFusion logical plans.
//!
//! A frame turns the append-only DAS table into versioned business data:
//!
//! 1. **SCD2** over the table's *true* primary key, versions ordered by
//!    (`_loaded_at`, `_load_sequence`): `record_version` 1, 2, ...;
//!    `record_valid_from` = `1970-01-01T00:00:00Z` for version 1, else the load
//!    time; `record_valid_to` = the next version's load time, or
//!    `9999-12-31T23:59:59Z` for the last; `is_current_record` = the last
//!    version; `record_updated_at` = the load time if current, else
//!    `record_valid_to` (when it stopped being current). Intervals are
//!    half-open `[from, to)` and tile each key's timeline without gaps.
//! 2. **Hooks**: simple `<keyset>|<business key as text>`; a NULL business
//!    key gives a NULL hook. Composite: the parts joined with `~`, NULL if any
//!    part is NULL.
//! 3. **PIT hook** of the primary hook: `<primary>~epoch__valid_from|<valid_from>`,
//!    unique per frame row when the true key is unique per load.
//! 4. Every source column renamed `<prefix>__<column>`, then the record
//!    columns, also prefixed.
//!
//! Text renderings inside keys never depend on the machine's time zone:
//! timestamps as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z` (fraction only when
//! non-zero), dates as `YYYY-MM-DD`, integers as digits, text verbatim.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::to_char;
use datafusion::functions_window::expr_fn::{lead, row_number};
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Operator, binary_expr,
    cast, col, lit, when,
};

use super::config::{Frame, HookKind};
use crate::das::{LOAD_SEQUENCE, LOADED_AT, is_load_column, ts_lit};
use crate::error::{Error, Result};

/// `1970-01-01T00:00:00Z` in microseconds.
pub const MIN_TS_MICROS: i64 = 0;
/// `9999-12-31T23:59:59Z` in microseconds.
pub const MAX_TS_MICROS: i64 = 253_402_300_799_000_000;

/// The record columns every frame ends with (unprefixed names).
pub const RECORD_COLUMNS: [&str; 6] = [
    "record_loaded_at",
    "record_updated_at",
    "record_version",
    "record_valid_from",
    "record_valid_to",
    "is_current_record",
];

/// The canonical text of a key value of `data_type` (see module docs).
pub fn key_text(expr: Expr, data_type: &DataType) -> Result<Expr> {
    Ok(match data_type {
        DataType::Utf8 => expr,
        DataType::LargeUtf8 | DataType::Utf8View => cast(expr, DataType::Utf8),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Boolean
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32 => cast(expr, DataType::Utf8),
        DataType::Timestamp(
            TimeUnit::Microsecond | TimeUnit::Millisecond | TimeUnit::Second,
            _,
        ) => to_char(expr, lit("%Y-%m-%dT%H:%M:%S%.fZ")),
        other => {
            return Err(Error::invalid(format!(
                "cannot use a {other} column as a business key"
            )));
        }
    })
}

fn concat(parts: Vec<Expr>) -> Expr {
    let mut it = parts.into_iter();
    let first = it.next().unwrap_or_else(|| lit(ScalarValue::Utf8(None)));
    it.fold(first, |acc, p| binary_expr(acc, Operator::StringConcat, p))
}

/// The prefixed name of a frame column.
pub fn prefixed(frame: &Frame, column: &str) -> String {
    format!("{}__{column}", frame.column_prefix)
}

/// Build the frame's plan over `das` (a scan of its DAS table). `true_key`
/// partitions the versions. With `changed_since` (micros, UTC), only rows
/// whose `record_updated_at` is later are returned: new versions and the
/// versions they closed, i.e. exactly what an incremental build upserts.
pub fn frame_plan(
    frame: &Frame,
    true_key: &[String],
    das: LogicalPlan,
    changed_since: Option<i64>,
) -> Result<LogicalPlan> {
    let ctx = |e: Error| e.context(format!("frame {}", frame.name));
    let schema = das.schema().clone();
    for c in true_key
        .iter()
        .map(String::as_str)
        .chain([LOADED_AT, LOAD_SEQUENCE])
    {
        if schema.field_with_unqualified_name(c).is_err() {
            return Err(ctx(Error::invalid(format!(
                "source table {} has no column {c}",
                frame.source_table
            ))));
        }
    }
    if true_key.is_empty() {
        return Err(ctx(Error::invalid("the source table has no primary key")));
    }
    let partition: Vec<Expr> = true_key.iter().map(|k| col(k.as_str())).collect();
    let order = vec![
        col(LOADED_AT).sort(true, false),
        col(LOAD_SEQUENCE).sort(true, false),
    ];
    let version = row_number()
        .partition_by(partition.clone())
        .order_by(order.clone())
        .build()?
        .alias("__version");
    let next = lead(col(LOADED_AT), Some(1), None)
        .partition_by(partition)
        .order_by(order)
        .build()?
        .alias("__next_loaded_at");
    let source_columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !is_load_column(n))
        .collect();

    // Step 1: SCD2 columns.
    let mut scd: Vec<Expr> = source_columns.iter().map(|c| col(c.as_str())).collect();
    scd.extend([
        col(LOADED_AT).alias("record_loaded_at"),
        cast(col("__version"), DataType::Int64).alias("record_version"),
        when(col("__version").eq(lit(1u64)), ts_lit(MIN_TS_MICROS))
            .otherwise(col(LOADED_AT))?
            .alias("record_valid_from"),
        when(col("__next_loaded_at").is_null(), ts_lit(MAX_TS_MICROS))
            .otherwise(col("__next_loaded_at"))?
            .alias("record_valid_to"),
    ]);
    let scd = LogicalPlanBuilder::from(das)
        .window(vec![version, next])?
        .project(scd)?
        .build()?;

    // Step 2: current flag, updated_at, hooks, PIT hook.
    let is_current = col("record_valid_to").eq(ts_lit(MAX_TS_MICROS));
    let mut hooks: Vec<(String, Expr)> = Vec::new();
    for h in &frame.hooks {
        if let HookKind::Simple {
            keyset,
            business_key,
        } = &h.kind
        {
            let dt = col(business_key.as_str()).get_type(scd.schema().as_ref())?;
            let text = key_text(col(business_key.as_str()), &dt).map_err(|e| {
                ctx(e.context(format!("hook {}, business key {business_key}", h.name)))
            })?;
            hooks.push((
                h.name.clone(),
                concat(vec![lit(format!("{keyset}|")), text]),
            ));
        }
    }
    for h in &frame.hooks {
        if let HookKind::Composite { parts } = &h.kind {
            let mut pieces = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let (_, e) = hooks.iter().find(|(n, _)| n == p).ok_or_else(|| {
                    ctx(Error::invalid(format!("hook {}: unknown part {p}", h.name)))
                })?;
                if i > 0 {
                    pieces.push(lit("~"));
                }
                pieces.push(e.clone());
            }
            hooks.push((h.name.clone(), concat(pieces)));
        }
    }
    let primary = frame.primary();
    let primary_expr = hooks
        .iter()
        .find(|(n, _)| n == &primary.name)
        .map(|(_, e)| e.clone())
        .ok_or_else(|| ctx(Error::internal("primary hook not built")))?;
    let pit = concat(vec![
        primary_expr,
        lit("~epoch__valid_from|"),
        key_text(
            col("record_valid_from"),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?,
    ]);

    let mut out: Vec<Expr> = vec![pit.alias(primary.pit_name())];
    for h in &frame.hooks {
        let (_, e) = hooks
            .iter()
            .find(|(n, _)| n == &h.name)
            .ok_or_else(|| ctx(Error::internal(format!("hook {} not built", h.name))))?;
        out.push(e.clone().alias(h.name.as_str()));
    }
    for c in &source_columns {
        out.push(col(c.as_str()).alias(prefixed(frame, c)));
    }
    out.extend([
        col("record_loaded_at").alias(prefixed(frame, "record_loaded_at")),
        when(is_current.clone(), col("record_loaded_at"))
            .otherwise(col("record_valid_to"))?
            .alias(prefixed(frame, "record_updated_at")),
        col("record_version").alias(prefixed(frame, "record_version")),
        col("record_valid_from").alias(prefixed(frame, "record_valid_from")),
        col("record_valid_to").alias(prefixed(frame, "record_valid_to")),
        is_current.alias(prefixed(frame, "is_current_record")),
    ]);
    let mut builder = LogicalPlanBuilder::from(scd).project(out)?;
    if let Some(since) = changed_since {
        builder = builder.filter(col(prefixed(frame, "record_updated_at")).gt(ts_lit(since)))?;
    }
    Ok(builder.build()?)
}
