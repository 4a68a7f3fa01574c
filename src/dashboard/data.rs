//! What the dashboard reads: metric discovery and the per-day metric query.
//!
//! [`DashboardData::load`] registers the tables of namespace `dar` (their
//! snapshots current at that moment: the dashboard shows a consistent
//! picture until it is restarted) and discovers from their schemas:
//!
//! - **metrics**: every `event__*` column of `dar._bridge__as_of` not ending
//!   in `_modified`, and every `measure__*` column (same exclusion), each
//!   shown as `metric__<name without the event__/measure__ prefix>`; plus,
//!   for every pair `measure__<x>_from_new_customers` /
//!   `measure__<x>_from_returning_customers`, the two percentages
//!   `metric__<x>_from_new_customers__percentage` = new / (new + returning)
//!   × 100 and the same for returning (undefined, hence absent, on days
//!   where new + returning = 0);
//! - **slices**: every text column (not starting with `_`) of every other
//!   table of `dar` (a peripheral) that shares a `_pit_hook__*` column with
//!   the bridge; the peripheral is joined on that hook. Peripherals carry a
//!   ghost row (`ghost_record`, text `N/A`), so the join is total: slicing
//!   by `N/A` selects the events without that peripheral.
//!
//! [`DashboardData::metrics`] computes, for a [`MetricQuery`], one value per
//! calendar day of the window `[from, to]`: the sum over the current bridge
//! rows (`bridge__is_current_record`) whose `_hook__epoch__date` joins
//! `dar.calendar` on that day (booleans count as 1, NULL is ignored, a day
//! without rows is 0), optionally restricted to the rows whose peripheral
//! attribute equals the slice value. Queries are built with DataFusion's
//! DataFrame API: table and column names come only from the discovered
//! metadata, and user input enters the plan as literal values, never as SQL
//! text. Series are returned newest day first, with their XmR points.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use chrono::{Duration, NaiveDate};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::prelude::{DataFrame, Expr, JoinType, SessionContext, cast, ident, lit};
use datafusion::scalar::ScalarValue;
use datafusion::sql::TableReference;

use super::xmr::{XmrPoint, xmr};
use crate::error::{Error, Result};
use crate::query::session_context;
use crate::storage::{AsOf, Warehouse};

/// The namespace of the Unified Star Schema.
pub const NAMESPACE: &str = "dar";
/// The unified bridge's table name.
pub const BRIDGE: &str = "_bridge__as_of";
/// The calendar's table name.
pub const CALENDAR: &str = "calendar";
/// Days in the default window (52 weeks, both ends included).
pub const DEFAULT_WINDOW_DAYS: i64 = 364;
/// The longest window a query may ask for (about ten years).
pub const MAX_WINDOW_DAYS: i64 = 3660;
/// The most distinct values listed for a slice.
pub const MAX_SLICE_VALUES: usize = 1000;

const CAL_HOOK: &str = "__dashboard_cal_hook";
const DAY: &str = "__dashboard_date";
const SLICE_PIT: &str = "__dashboard_slice_pit";
const SLICE_VALUE: &str = "__dashboard_slice_value";

/// One summed metric: a bridge column and its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricColumn {
    /// The `event__*` or `measure__*` column of the bridge.
    pub column: String,
    /// `metric__<rest>`.
    pub name: String,
}

/// A derived new/returning customer percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Percentage {
    /// `metric__<x>_from_{new,returning}_customers__percentage`.
    pub name: String,
    /// Index (in [`DashboardData::metric_columns`]) of the numerator.
    pub numerator: usize,
    /// Index of the other half of the denominator.
    pub other: usize,
}

/// A peripheral attribute the metrics can be sliced by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Slice {
    /// `<peripheral>.<column>`, the value of the `slice` parameter.
    pub key: String,
    /// The peripheral table (namespace `dar`).
    pub peripheral: String,
    /// The text column.
    pub column: String,
    /// The PIT hook column shared with the bridge.
    pub pit_hook: String,
}

/// A validated request: a date window and an optional slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// First day (inclusive).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// `(slice key, value)`.
    pub slice: Option<(String, String)>,
}

/// One metric over the window, newest day first.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    /// `metric__...`.
    pub name: String,
    /// Days with a value, newest first (percentages skip undefined days).
    pub dates: Vec<NaiveDate>,
    /// XmR points, parallel to `dates`.
    pub points: Vec<XmrPoint>,
}

impl MetricSeries {
    /// The newest day and its point.
    pub fn latest(&self) -> Option<(NaiveDate, &XmrPoint)> {
        Some((*self.dates.first()?, self.points.first()?))
    }
}

/// The registered DAR tables and what was discovered in them.
pub struct DashboardData {
    ctx: SessionContext,
    metric_columns: Vec<MetricColumn>,
    percentages: Vec<Percentage>,
    slices: BTreeMap<String, Slice>,
    data_range: Option<(NaiveDate, NaiveDate)>,
    /// The newest day on which the source modified anything (`event__*_modified`):
    /// the source's "today". Later event dates are scheduled, not observed
    /// (e.g. an offer's end date), so the default window ends here.
    source_today: Option<NaiveDate>,
    /// The newest day carrying a measure (`measure__*` not NULL). A source
    /// can modify reference data (a contact, a product) years after its
    /// last order; the default window ends at the measures' newest day then,
    /// not on a stretch of zeros.
    measures_last: Option<NaiveDate>,
    /// The default window's length in days ([`DEFAULT_WINDOW_DAYS`] unless
    /// the project sets it).
    window_days: i64,
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn table_ref(name: &str) -> TableReference {
    TableReference::partial(NAMESPACE, name)
}

fn days_to_date(days: i32) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(Duration::days(i64::from(days))))
        .ok_or_else(|| Error::internal(format!("date out of range: {days} days after 1970")))
}

fn date_to_days(date: NaiveDate) -> Result<i32> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)
        .ok_or_else(|| Error::internal("epoch date unrepresentable"))?;
    i32::try_from((date - epoch).num_days())
        .map_err(|_| Error::invalid(format!("date {date} out of range")))
}

fn date_lit(date: NaiveDate) -> Result<Expr> {
    Ok(lit(ScalarValue::Date32(Some(date_to_days(date)?))))
}

/// Discover the summed metrics of a bridge schema (see the module docs).
pub fn discover_metrics(columns: &[String]) -> Vec<MetricColumn> {
    let mut out: Vec<MetricColumn> = Vec::new();
    let mut sorted: Vec<&String> = columns.iter().collect();
    sorted.sort();
    for column in sorted {
        let rest = column
            .strip_prefix("event__")
            .or_else(|| column.strip_prefix("measure__"));
        let Some(rest) = rest else { continue };
        if rest.is_empty() || column.ends_with("_modified") {
            continue;
        }
        let mut name = format!("metric__{rest}");
        if out.iter().any(|m| m.name == name) {
            name = format!("metric__{column}");
        }
        out.push(MetricColumn {
            column: column.clone(),
            name,
        });
    }
    out
}

/// Discover the new/returning customer percentages among `metrics`.
pub fn discover_percentages(metrics: &[MetricColumn]) -> Vec<Percentage> {
    let mut out = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let Some(stem) = m
            .column
            .strip_prefix("measure__")
            .and_then(|r| r.strip_suffix("_from_new_customers"))
        else {
            continue;
        };
        let returning = format!("measure__{stem}_from_returning_customers");
        let Some(j) = metrics.iter().position(|o| o.column == returning) else {
            continue;
        };
        out.push(Percentage {
            name: format!("metric__{stem}_from_new_customers__percentage"),
            numerator: i,
            other: j,
        });
        out.push(Percentage {
            name: format!("metric__{stem}_from_returning_customers__percentage"),
            numerator: j,
            other: i,
        });
    }
    out
}

impl DashboardData {
    /// Register the tables of namespace `dar` of `wh` and discover metrics,
    /// slices and the range of dates with data.
    pub async fn load(wh: &Warehouse) -> Result<Self> {
        let ctx = session_context();
        let names = wh.list_tables(NAMESPACE).await?;
        for name in &names {
            let table = wh.load_table(name).await?;
            wh.register(&ctx, &table, AsOf::Latest).await?;
        }
        let has = |t: &str| names.iter().any(|n| n.name == t);
        for required in [BRIDGE, CALENDAR] {
            if !has(required) {
                return Err(Error::not_found(format!(
                    "table {NAMESPACE}.{required} is missing: build the DAR layer first"
                )));
            }
        }
        let bridge = ctx.table(table_ref(BRIDGE)).await?;
        let bridge_columns: Vec<String> = bridge
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for required in ["_hook__epoch__date", "bridge__is_current_record"] {
            if !bridge_columns.iter().any(|c| c == required) {
                return Err(Error::invalid(format!(
                    "{NAMESPACE}.{BRIDGE} has no column {required}"
                )));
            }
        }
        let calendar = ctx.table(table_ref(CALENDAR)).await?;
        for required in ["_hook__epoch__date", "date"] {
            if calendar
                .schema()
                .field_with_unqualified_name(required)
                .is_err()
            {
                return Err(Error::invalid(format!(
                    "{NAMESPACE}.{CALENDAR} has no column {required}"
                )));
            }
        }
        let metric_columns = discover_metrics(&bridge_columns);
        let percentages = discover_percentages(&metric_columns);

        let pit_hooks: Vec<&String> = bridge_columns
            .iter()
            .filter(|c| c.starts_with("_pit_hook__") && c.as_str() != "_pit_hook__bridge")
            .collect();
        let mut slices = BTreeMap::new();
        let mut peripherals: Vec<&str> = names
            .iter()
            .map(|n| n.name.as_str())
            .filter(|n| *n != BRIDGE && *n != CALENDAR)
            .collect();
        peripherals.sort();
        for peripheral in peripherals {
            let df = ctx.table(table_ref(peripheral)).await?;
            let schema = df.schema();
            let Some(pit_hook) = schema
                .fields()
                .iter()
                .map(|f| f.name())
                .find(|n| pit_hooks.contains(n))
            else {
                continue;
            };
            for field in schema.fields() {
                if field.name().starts_with('_') || !is_text(field.data_type()) {
                    continue;
                }
                let key = format!("{peripheral}.{}", field.name());
                slices.insert(
                    key.clone(),
                    Slice {
                        key,
                        peripheral: peripheral.to_string(),
                        column: field.name().clone(),
                        pit_hook: pit_hook.clone(),
                    },
                );
            }
        }
        let mut data = Self {
            ctx,
            metric_columns,
            percentages,
            slices,
            data_range: None,
            source_today: None,
            measures_last: None,
            window_days: DEFAULT_WINDOW_DAYS,
        };
        data.data_range = data.compute_data_range().await?;
        data.source_today = data.compute_source_today(&bridge_columns).await?;
        data.measures_last = data.compute_measures_last(&bridge_columns).await?;
        Ok(data)
    }

    /// Set the default window's length (days before its last day).
    pub fn with_window_days(mut self, days: i64) -> Self {
        self.window_days = days;
        self
    }

    /// The default window's length in days.
    pub fn window_days(&self) -> i64 {
        self.window_days
    }

    /// The DataFusion context with the `dar` tables registered.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The summed metric columns, sorted by column name.
    pub fn metric_columns(&self) -> &[MetricColumn] {
        &self.metric_columns
    }

    /// The derived percentages.
    pub fn percentages(&self) -> &[Percentage] {
        &self.percentages
    }

    /// Every metric name, summed ones first.
    pub fn metric_names(&self) -> Vec<String> {
        self.metric_columns
            .iter()
            .map(|m| m.name.clone())
            .chain(self.percentages.iter().map(|p| p.name.clone()))
            .collect()
    }

    /// The slice dimensions, by key.
    pub fn slices(&self) -> &BTreeMap<String, Slice> {
        &self.slices
    }

    /// First and last day with current bridge rows (None: no data).
    pub fn data_range(&self) -> Option<(NaiveDate, NaiveDate)> {
        self.data_range
    }

    /// The default window: [`Self::window_days`] (52 weeks unless set)
    /// ending on the earliest of: the last day with data, the source's last
    /// modification day (days after it only hold scheduled dates) and the
    /// newest day carrying a measure (see `measures_last`).
    pub fn default_window(&self) -> Option<(NaiveDate, NaiveDate)> {
        let (_, last) = self.data_range?;
        let end = [self.source_today, self.measures_last]
            .into_iter()
            .flatten()
            .fold(last, NaiveDate::min);
        Some((end - Duration::days(self.window_days), end))
    }

    async fn compute_source_today(&self, bridge_columns: &[String]) -> Result<Option<NaiveDate>> {
        let any = bridge_columns
            .iter()
            .filter(|c| c.starts_with("event__") && c.ends_with("_modified"))
            .map(|c| ident(c.as_str()).is_true())
            .reduce(|a, b| a.or(b));
        self.newest_day_where(any).await
    }

    async fn compute_measures_last(&self, bridge_columns: &[String]) -> Result<Option<NaiveDate>> {
        let any = bridge_columns
            .iter()
            .filter(|c| c.starts_with("measure__"))
            .map(|c| ident(c.as_str()).is_not_null())
            .reduce(|a, b| a.or(b));
        self.newest_day_where(any).await
    }

    /// The newest day of the current rows passing `filter` (`None`: no
    /// filter, or no such row).
    async fn newest_day_where(&self, filter: Option<Expr>) -> Result<Option<NaiveDate>> {
        let Some(any) = filter else {
            return Ok(None);
        };
        let batches = self
            .dated_rows()
            .await?
            .filter(any)?
            .aggregate(vec![], vec![max(ident(DAY)).alias("today")])?
            .collect()
            .await?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        match batch.column(0).as_primitive_opt::<Date32Type>() {
            Some(d) if d.is_valid(0) => Ok(Some(days_to_date(d.value(0))?)),
            _ => Ok(None),
        }
    }

    /// Current bridge rows joined to the calendar, with the day as `DAY`.
    async fn dated_rows(&self) -> Result<DataFrame> {
        let bridge = self
            .ctx
            .table(table_ref(BRIDGE))
            .await?
            .filter(ident("bridge__is_current_record").is_true())?;
        let calendar = self.ctx.table(table_ref(CALENDAR)).await?.select(vec![
            ident("_hook__epoch__date").alias(CAL_HOOK),
            cast(ident("date"), DataType::Date32).alias(DAY),
        ])?;
        Ok(bridge.join(
            calendar,
            JoinType::Inner,
            &["_hook__epoch__date"],
            &[CAL_HOOK],
            None,
        )?)
    }

    async fn compute_data_range(&self) -> Result<Option<(NaiveDate, NaiveDate)>> {
        let batches = self
            .dated_rows()
            .await?
            .aggregate(
                vec![],
                vec![
                    min(ident(DAY)).alias("first"),
                    max(ident(DAY)).alias("last"),
                ],
            )?
            .collect()
            .await?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let first = batch.column(0).as_primitive_opt::<Date32Type>();
        let last = batch.column(1).as_primitive_opt::<Date32Type>();
        match (first, last) {
            (Some(f), Some(l)) if f.is_valid(0) && l.is_valid(0) => {
                Ok(Some((days_to_date(f.value(0))?, days_to_date(l.value(0))?)))
            }
            _ => Ok(None),
        }
    }

    /// Check a slice key and value: the key must be a discovered slice and
    /// the value must occur in that column (compared as a literal value).
    pub async fn validate_slice(&self, key: &str, value: &str) -> Result<&Slice> {
        let slice = self.slices.get(key).ok_or_else(|| {
            Error::invalid(format!(
                "unknown slice `{key}`: expected <peripheral>.<column>, one of the {} listed by /api/slices",
                self.slices.len()
            ))
        })?;
        let batches = self
            .ctx
            .table(table_ref(&slice.peripheral))
            .await?
            .filter(ident(&slice.column).eq(lit(value)))?
            .aggregate(vec![], vec![count(lit(1)).alias("n")])?
            .collect()
            .await?;
        let n: i64 = batches
            .iter()
            .filter_map(|b| b.column(0).as_primitive_opt::<Int64Type>())
            .flat_map(|a| a.iter().flatten())
            .sum();
        if n == 0 {
            return Err(Error::invalid(format!(
                "slice `{key}` has no value `{value}`: see /api/values?slice={key}"
            )));
        }
        Ok(slice)
    }

    /// The distinct values of a slice, sorted (at most [`MAX_SLICE_VALUES`]).
    pub async fn slice_values(&self, key: &str) -> Result<Vec<String>> {
        let slice = self
            .slices
            .get(key)
            .ok_or_else(|| Error::invalid(format!("unknown slice `{key}`")))?;
        let batches = self
            .ctx
            .table(table_ref(&slice.peripheral))
            .await?
            .select(vec![cast(ident(&slice.column), DataType::Utf8).alias("v")])?
            .filter(ident("v").is_not_null())?
            .distinct()?
            .collect()
            .await?;
        let mut values: Vec<String> = batches
            .iter()
            .filter_map(|b| b.column(0).as_string_opt::<i32>())
            .flat_map(|a| a.iter().flatten().map(str::to_string))
            .collect();
        values.sort();
        values.truncate(MAX_SLICE_VALUES);
        Ok(values)
    }

    /// Every metric over the query's window, newest day first, each with
    /// its XmR points.
    pub async fn metrics(&self, query: &MetricQuery) -> Result<Vec<MetricSeries>> {
        if query.from > query.to {
            return Err(Error::invalid(format!(
                "from ({}) is after to ({})",
                query.from, query.to
            )));
        }
        let span = (query.to - query.from).num_days();
        if span > MAX_WINDOW_DAYS {
            return Err(Error::invalid(format!(
                "the window spans {span} days; at most {MAX_WINDOW_DAYS} are allowed"
            )));
        }
        let mut df = self.dated_rows().await?.filter(
            ident(DAY)
                .gt_eq(date_lit(query.from)?)
                .and(ident(DAY).lt_eq(date_lit(query.to)?)),
        )?;
        if let Some((key, value)) = &query.slice {
            let slice = self.validate_slice(key, value).await?;
            let peripheral = self
                .ctx
                .table(table_ref(&slice.peripheral))
                .await?
                .select(vec![
                    ident(&slice.pit_hook).alias(SLICE_PIT),
                    ident(&slice.column).alias(SLICE_VALUE),
                ])?
                .filter(ident(SLICE_VALUE).eq(lit(value.as_str())))?
                .select(vec![ident(SLICE_PIT)])?
                .distinct()?;
            df = df.join(
                peripheral,
                JoinType::Inner,
                &[slice.pit_hook.as_str()],
                &[SLICE_PIT],
                None,
            )?;
        }
        let aggregates: Vec<Expr> = self
            .metric_columns
            .iter()
            .enumerate()
            .map(|(i, m)| sum(cast(ident(&m.column), DataType::Float64)).alias(format!("m{i}")))
            .collect();
        let batches = if aggregates.is_empty() {
            Vec::new()
        } else {
            df.aggregate(vec![ident(DAY)], aggregates)?
                .collect()
                .await?
        };
        let by_day = sums_by_day(&batches, self.metric_columns.len())?;

        // Every day of the window, newest first; a day without rows is 0.
        let days: Vec<NaiveDate> = (0..=span).map(|d| query.to - Duration::days(d)).collect();
        let zeros = vec![0.0; self.metric_columns.len()];
        let rows: Vec<&Vec<f64>> = days
            .iter()
            .map(|d| by_day.get(d).unwrap_or(&zeros))
            .collect();

        let mut out = Vec::new();
        for (i, m) in self.metric_columns.iter().enumerate() {
            let values: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            out.push(MetricSeries {
                name: m.name.clone(),
                dates: days.clone(),
                points: xmr(&values),
            });
        }
        for p in &self.percentages {
            let mut dates = Vec::new();
            let mut values = Vec::new();
            for (day, r) in days.iter().zip(&rows) {
                let total = r[p.numerator] + r[p.other];
                if total != 0.0 {
                    dates.push(*day);
                    values.push(r[p.numerator] / total * 100.0);
                }
            }
            out.push(MetricSeries {
                name: p.name.clone(),
                dates,
                points: xmr(&values),
            });
        }
        Ok(out)
    }
}

/// Read `(DAY, m0, m1, …)` aggregate batches into day -> sums (NULL = 0).
fn sums_by_day(batches: &[RecordBatch], metrics: usize) -> Result<HashMap<NaiveDate, Vec<f64>>> {
    let mut out = HashMap::new();
    for batch in batches {
        let days = batch
            .column(0)
            .as_primitive_opt::<Date32Type>()
            .ok_or_else(|| Error::internal("metric query: day column is not a date"))?;
        let mut columns = Vec::with_capacity(metrics);
        for i in 0..metrics {
            columns.push(
                batch
                    .column(i + 1)
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| Error::internal("metric query: sum is not a double"))?,
            );
        }
        for row in 0..batch.num_rows() {
            if days.is_null(row) {
                continue;
            }
            let values = columns
                .iter()
                .map(|c| if c.is_null(row) { 0.0 } else { c.value(row) })
                .collect();
            out.insert(days_to_date(days.value(row))?, values);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics_are_events_and_measures_without_modified() {
        let cols = names(&[
            "peripheral",
            "event__sales_order_header__order",
            "event__sales_order_header__modified",
            "measure__sales_order_line_total_placed",
            "measure__x_modified",
            "bridge__is_current_record",
            "event__",
        ]);
        let m = discover_metrics(&cols);
        let got: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.column.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "event__sales_order_header__order",
                    "metric__sales_order_header__order"
                ),
                (
                    "measure__sales_order_line_total_placed",
                    "metric__sales_order_line_total_placed"
                ),
            ]
        );
    }

    #[test]
    fn percentages_pair_new_and_returning() {
        let cols = names(&[
            "measure__sales_order_headers_from_new_customers",
            "measure__sales_order_headers_from_returning_customers",
            "measure__lonely_from_new_customers",
        ]);
        let m = discover_metrics(&cols);
        let p = discover_percentages(&m);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].name,
            "metric__sales_order_headers_from_new_customers__percentage"
        );
        assert_eq!(m[p[0].numerator].column, cols[0]);
        assert_eq!(m[p[0].other].column, cols[1]);
        assert_eq!(
            p[1].name,
            "metric__sales_order_headers_from_returning_customers__percentage"
        );
    }

    #[test]
    fn dates_round_trip_through_days() {
        let d = NaiveDate::from_ymd_opt(2013, 4, 5).map(|d| (d, date_to_days(d)));
        let Some((d, Ok(days))) = d else {
            panic!("date conversion failed")
        };
        assert_eq!(days, 15800);
        assert_eq!(days_to_date(days).ok(), Some(d));
    }
}
