//! The calendar `dar.calendar`: one row per day from 1 January of the
//! earliest event year to 31 December of the latest, taken from the date
//! hooks (`epoch__date|YYYY-MM-DD`) of the unified bridge. Values that are
//! not date hooks (`ghost_record` for event rows without a date) are
//! ignored, so they never break the calendar; no dates give no rows.
//!
//! Columns (example 2013-04-05): `_hook__epoch__date` `epoch__date|2013-04-05`,
//! `date` `2013-04-05` (text), `year` 2013, `iso_year` 2013, `quarter` 2,
//! `month` 4, `month__name` `Apr`, `week` 14 (ISO week), `weekday` 5
//! (0 = Sunday), `weekday__name` `Fri`, `year_quarter` `2013-2`,
//! `year_month` `2013-04`, `year_month__name` `2013-Apr`, `year_week`
//! `2013-W14` (ISO year and week), `iso_week_date` `2013-W14-5` (ISO
//! weekday, 1 = Monday), `ordinal_date` `2013-095`, `is_leap_year`
//! (Gregorian). Integer columns are Int32.

use arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::{date_part, make_date, substr, to_char};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::functions_nested::expr_fn::gen_series;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};

use super::bridge::concat;
use super::event::{EPOCH_DATE, EPOCH_DATE_KEYSET};
use crate::error::Result;

/// The calendar's table name (namespace `dar`).
pub const CALENDAR: &str = "calendar";

fn int(e: Expr) -> Expr {
    cast(e, DataType::Int32)
}

fn fmt(e: Expr, f: &str) -> Expr {
    to_char(e, lit(f))
}

/// The calendar over the unified bridge.
pub fn calendar_plan(unified: LogicalPlan) -> Result<LogicalPlan> {
    let prefix = format!("{EPOCH_DATE_KEYSET}|");
    let start = prefix.len() as i64 + 1;
    let dates = LogicalPlanBuilder::from(unified)
        .filter(col(EPOCH_DATE).like(lit(format!("{prefix}%"))))?
        .project(vec![
            cast(substr(col(EPOCH_DATE), lit(start)), DataType::Date32).alias("__date"),
        ])?
        .aggregate(
            Vec::<Expr>::new(),
            vec![
                min(col("__date")).alias("__first"),
                max(col("__date")).alias("__last"),
            ],
        )?
        .filter(col("__first").is_not_null())?
        .project(vec![
            gen_series(
                make_date(
                    int(date_part(lit("year"), col("__first"))),
                    lit(1i32),
                    lit(1i32),
                ),
                make_date(
                    int(date_part(lit("year"), col("__last"))),
                    lit(12i32),
                    lit(31i32),
                ),
                lit(ScalarValue::IntervalMonthDayNano(Some(
                    IntervalMonthDayNano::new(0, 1, 0),
                ))),
            )
            .alias("__day"),
        ])?
        .unnest_column("__day")?
        .project(vec![cast(col("__day"), DataType::Date32).alias("__day")])?
        .build()?;
    let d = || col("__day");
    let year = || int(date_part(lit("year"), d()));
    let leap = (year() % lit(4i32))
        .eq(lit(0i32))
        .and((year() % lit(100i32)).not_eq(lit(0i32)))
        .or((year() % lit(400i32)).eq(lit(0i32)));
    let out = vec![
        concat(vec![lit(prefix.clone()), fmt(d(), "%Y-%m-%d")]).alias(EPOCH_DATE),
        fmt(d(), "%Y-%m-%d").alias("date"),
        year().alias("year"),
        int(fmt(d(), "%G")).alias("iso_year"),
        int(date_part(lit("quarter"), d())).alias("quarter"),
        int(date_part(lit("month"), d())).alias("month"),
        fmt(d(), "%b").alias("month__name"),
        int(fmt(d(), "%V")).alias("week"),
        int(date_part(lit("dow"), d())).alias("weekday"),
        fmt(d(), "%a").alias("weekday__name"),
        concat(vec![
            cast(year(), DataType::Utf8),
            lit("-"),
            cast(int(date_part(lit("quarter"), d())), DataType::Utf8),
        ])
        .alias("year_quarter"),
        fmt(d(), "%Y-%m").alias("year_month"),
        fmt(d(), "%Y-%b").alias("year_month__name"),
        fmt(d(), "%G-W%V").alias("year_week"),
        fmt(d(), "%G-W%V-%u").alias("iso_week_date"),
        fmt(d(), "%Y-%j").alias("ordinal_date"),
        leap.alias("is_leap_year"),
    ];
    Ok(LogicalPlanBuilder::from(dates).project(out)?.build()?)
}
