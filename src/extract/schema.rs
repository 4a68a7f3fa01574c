//! JSON rows to Arrow record batches, each value read by its curated type
//! (the Arrow types are [`crate::das::arrow_type`]'s).
//!
//! # Type mapping
//! | curated | Arrow | accepted JSON |
//! |---|---|---|
//! | `bigint` | `Int64` | integer number, or a string holding one (OData `IEEE754Compatible`) |
//! | `double` | `Float64` | number, or a numeric string (`"12.5"`, `"NaN"`, `"INF"`) |
//! | `text`, `xml` | `Utf8` | string; numbers and booleans as their JSON text; arrays/objects as JSON text |
//! | `uniqueidentifier` | `Utf8` | a GUID string, stored lowercase hyphenated |
//! | `bool` | `Boolean` | `true` / `false` |
//! | `date` | `Date32` | `YYYY-MM-DD`, or a date-time whose UTC date is taken |
//! | `timestamp` | `Timestamp(Microsecond, "UTC")` | RFC 3339 date-time (converted to UTC), a naive date-time (taken as UTC), or a date (midnight UTC) |
//! | `binary` | `Binary` | base64 (standard or URL-safe alphabet, padding optional), **decoded** to bytes |
//!
//! `null` and absent members are NULL for every type; every field is
//! nullable. A value that does not fit its type is an
//! [`ErrorKind::SchemaMismatch`] error naming the resource, the row (its
//! position in the extraction) and the field.
//!
//! # Unknown fields
//! A member the config does not list is kept, never dropped: it becomes a
//! nullable `Utf8` column named by [`snake_case`] of its API name (strings
//! as-is, other values as JSON text), placed after the configured columns
//! in name order and flagged as an extra column, with the field metadata
//! every landed column carries ([`crate::das`] states that layout).
//! Members whose name starts with `@` or contains `@odata.` are OData
//! annotations and are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::config::{ColumnType, ResourceConfig};
use crate::das::page_schema;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::naming::snake_case;

/// Parse an instant: `YYYY-MM-DD` (midnight UTC), RFC 3339, or a naive
/// date-time taken as UTC.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_plain_instant(s) {
        return Some(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The two shapes sources send most, `YYYY-MM-DD` and
/// `YYYY-MM-DDTHH:MM:SSZ`, read digit by digit (a source serves hundreds of
/// thousands of them, and chrono's format parser is far slower). `None` for
/// anything else, which [`parse_instant`] then reads the general way.
fn parse_plain_instant(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = match &b[10..] {
        [] => date.and_hms_opt(0, 0, 0)?,
        [b'T', _, _, b':', _, _, b':', _, _, b'Z'] => {
            date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?
        }
        _ => return None,
    };
    Some(time.and_utc())
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

type Conv<T> = std::result::Result<Option<T>, String>;

fn to_i64(v: &Value) -> Conv<i64> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("number {n} is not a 64-bit integer")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("string {s:?} is not an integer")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

fn to_f64(v: &Value) -> Conv<f64> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("number {n} is not a double")),
        Value::String(s) => match s.trim() {
            "NaN" => Ok(Some(f64::NAN)),
            "INF" => Ok(Some(f64::INFINITY)),
            "-INF" => Ok(Some(f64::NEG_INFINITY)),
            t => t
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("string {s:?} is not a number")),
        },
        other => Err(format!("expected a number, got {other}")),
    }
}

/// A decimal of `precision` digits, `scale` after the point, from a JSON
/// number or string (OData sends `Edm.Decimal` as either), exactly: the
/// value's text is parsed, never a binary double. More fractional digits
/// than the scale holds is an error, not a silent rounding.
fn to_decimal(v: &Value, precision: u8, scale: i8) -> Conv<i128> {
    use arrow::datatypes::Decimal128Type;
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("expected a decimal number, got {other}")),
    };
    if !text.contains(['e', 'E'])
        && let Some((_, fraction)) = text.split_once('.')
    {
        let digits = fraction.trim_end_matches('0').len();
        if digits > scale as usize {
            return Err(format!(
                "{text} has {digits} digits after the point, more than decimal({precision},{scale}) keeps"
            ));
        }
    }
    arrow::compute::kernels::cast_utils::parse_decimal::<Decimal128Type>(&text, precision, scale)
        .map(Some)
        .map_err(|e| format!("{text} is not a decimal({precision},{scale}): {e}"))
}

fn to_text(v: &Value) -> Conv<String> {
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

fn to_text_strict(v: &Value) -> Conv<String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(_) | Value::Bool(_) => Ok(Some(v.to_string())),
        other => Err(format!("expected a string, got {other}")),
    }
}

fn to_uuid(v: &Value) -> Conv<String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => uuid::Uuid::parse_str(s.trim())
            .map(|u| Some(u.hyphenated().to_string()))
            .map_err(|_| format!("string {s:?} is not a GUID")),
        other => Err(format!("expected a GUID string, got {other}")),
    }
}

fn to_bool(v: &Value) -> Conv<bool> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(format!("expected true or false, got {other}")),
    }
}

fn to_date(v: &Value) -> Conv<i32> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_instant(s.trim())
            .map(|t| Some((t.date_naive() - EPOCH).num_days() as i32))
            .ok_or_else(|| format!("string {s:?} is not a date")),
        other => Err(format!("expected a date string, got {other}")),
    }
}

fn to_timestamp(v: &Value) -> Conv<i64> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_instant(s.trim())
            .map(|t| Some(t.timestamp_micros()))
            .ok_or_else(|| format!("string {s:?} is not a date-time")),
        other => Err(format!("expected a date-time string, got {other}")),
    }
}

fn to_binary(v: &Value) -> Conv<Vec<u8>> {
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    match v {
        Value::Null => Ok(None),
        Value::String(s) => STD
            .decode(s.trim())
            .or_else(|_| URL.decode(s.trim()))
            .map(Some)
            .map_err(|e| format!("string is not base64 ({e})")),
        other => Err(format!("expected a base64 string, got {other}")),
    }
}

/// A row's member `name`: exactly, else the one equal to it ignoring case
/// (as [`rows_to_batch`] matches configured fields).
pub fn member<'a>(row: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    row.get(name).or_else(|| {
        row.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Whether a JSON member is an OData annotation rather than data.
pub fn is_annotation(member: &str) -> bool {
    member.starts_with('@') || member.contains("@odata.")
}

/// Convert JSON objects (one page) to a record batch.
///
/// `first_row` is the position of `rows[0]` in the whole extraction, used in
/// error messages. Returns the batch and the extra columns it carries
/// (`(column, API name)`, sorted by column).
pub fn rows_to_batch(
    resource: &ResourceConfig,
    rows: &[Map<String, Value>],
    first_row: usize,
) -> Result<(RecordBatch, Vec<(String, String)>)> {
    // The members of this page (annotations aside), in first-seen order.
    let mut members: Vec<&str> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for row in rows {
        for key in row.keys() {
            if !is_annotation(key) && seen.insert(key.as_str()) {
                members.push(key.as_str());
            }
        }
    }
    let fail = |why: String| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!("resource `{}`: {why}", resource.table),
        )
    };
    // Each configured column's member, matched as OData clients do: the
    // exact name, else the one member equal to it ignoring case (a service
    // sending `Rowguid` for the configured `rowguid`).
    let mut matched: Vec<&str> = Vec::with_capacity(resource.columns.len());
    for c in &resource.columns {
        let member = if seen.contains(c.source.as_str()) {
            Some(c.source.as_str())
        } else {
            let mut alike = members.iter().filter(|m| {
                m.eq_ignore_ascii_case(&c.source) && resource.column_by_source(m).is_none()
            });
            match (alike.next(), alike.next()) {
                (Some(m), None) => Some(*m),
                (Some(a), Some(b)) => {
                    return Err(fail(format!(
                        "field `{}` arrives as both `{a}` and `{b}`; name one of them in the config",
                        c.source
                    )));
                }
                (None, _) => None,
            }
        };
        match member {
            Some(m) => matched.push(m),
            // A configured field absent from every row of a page with rows
            // would land as NULLs, silently: refuse it.
            None if !rows.is_empty() => {
                return Err(fail(format!(
                    "rows {}..{}: no row has the configured field `{}` (column `{}`); the page's fields are {}",
                    first_row,
                    first_row + rows.len(),
                    c.source,
                    c.name,
                    members.join(", ")
                )));
            }
            None => matched.push(c.source.as_str()),
        }
    }
    // Unknown members, by normalised name (first API spelling wins); one
    // whose name is a configured column's would shadow it: refused.
    let mut extras: BTreeMap<String, String> = BTreeMap::new();
    for key in &members {
        if matched.contains(key) {
            continue;
        }
        let name = snake_case(key);
        if let Some(c) = resource.column(&name) {
            return Err(fail(format!(
                "field `{key}` is not the configured `{}` but lands as the same column `{name}`; rename one",
                c.source
            )));
        }
        extras.entry(name).or_insert_with(|| key.to_string());
    }
    let extras: Vec<(String, String)> = extras.into_iter().collect();
    let schema = page_schema(resource, &extras);
    let null = Value::Null;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (c, member) in resource.columns.iter().zip(&matched) {
        let values = rows.iter().map(|r| r.get(*member).unwrap_or(&null));
        let fail = |i: usize, why: String| {
            Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "resource `{}`: row {}: field `{}` ({}): {why}",
                    resource.table,
                    first_row + i,
                    c.source,
                    c.data_type
                ),
            )
        };
        macro_rules! collect {
            ($conv:expr) => {
                values
                    .enumerate()
                    .map(|(i, v)| $conv(v).map_err(|why| fail(i, why)))
                    .collect::<Result<Vec<_>>>()?
            };
        }
        let array: ArrayRef = match c.data_type {
            ColumnType::Bigint => Arc::new(Int64Array::from(collect!(to_i64))),
            ColumnType::Double => Arc::new(Float64Array::from(collect!(to_f64))),
            ColumnType::Text | ColumnType::Xml => {
                Arc::new(StringArray::from(collect!(to_text_strict)))
            }
            ColumnType::Uniqueidentifier => Arc::new(StringArray::from(collect!(to_uuid))),
            ColumnType::Bool => Arc::new(BooleanArray::from(collect!(to_bool))),
            ColumnType::Date => Arc::new(Date32Array::from(collect!(to_date))),
            ColumnType::Timestamp => Arc::new(
                TimestampMicrosecondArray::from(collect!(to_timestamp)).with_timezone("UTC"),
            ),
            ColumnType::Binary => {
                let v: Vec<Option<Vec<u8>>> = collect!(to_binary);
                Arc::new(BinaryArray::from_iter(v))
            }
            ColumnType::Decimal { precision, scale } => {
                let convert = |v: &Value| to_decimal(v, precision, scale);
                Arc::new(
                    Decimal128Array::from(collect!(convert))
                        .with_precision_and_scale(precision, scale)
                        .map_err(|e| fail(0, e.to_string()))?,
                )
            }
        };
        columns.push(array);
    }
    for (_, source) in &extras {
        let v: Vec<Option<String>> = rows
            .iter()
            .map(|r| to_text(r.get(source).unwrap_or(&null)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|why| Error::new(ErrorKind::SchemaMismatch, why))?;
        columns.push(Arc::new(StringArray::from(v)));
    }
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "resource `{}`: cannot assemble a batch: {e}",
                resource.table
            ),
        )
    })?;
    Ok((batch, extras))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::ColumnConfig;
    use crate::das::is_extra;
    use arrow::array::Array;
    use arrow::datatypes::DataType;

    /// The digit-by-digit path reads what the general one reads, and
    /// leaves every other shape to it.
    #[test]
    fn plain_instants_read_as_chrono_reads_them() {
        let general = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .or_else(|| {
                    DateTime::parse_from_rfc3339(s)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                })
        };
        for s in [
            "2014-06-30",
            "1970-01-01",
            "2024-02-29",
            "2014-06-30T00:00:00Z",
            "2011-05-31T23:59:58Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_plain_instant(s), general(s), "{s}");
            assert!(parse_plain_instant(s).is_some(), "{s}");
        }
        for s in [
            "2023-02-29",
            "2014-13-01",
            "2014-06-30T24:00:00Z",
            "2014-6-30",
            "2014-06-30T00:00:00+02:00",
            "2014-06-30T00:00:00.5Z",
            "2014/06/30",
            "x014-06-30",
            "",
        ] {
            assert_eq!(parse_plain_instant(s), None, "{s}");
        }
        assert_eq!(
            parse_instant("2014-06-30T00:00:00+02:00"),
            general("2014-06-30T00:00:00+02:00")
        );
        assert_eq!(
            parse_instant("2014-06-30T00:00:00.5Z").map(|t| t.timestamp_micros()),
            Some(1_404_086_400_500_000)
        );
    }

    /// A resource with a column of every type (shared with the paging tests).
    pub(crate) fn resource() -> ResourceConfig {
        let col = |name: &str, source: &str, t| ColumnConfig {
            name: name.into(),
            source: source.into(),
            data_type: t,
        };
        ResourceConfig {
            table: "raw__demo__things".into(),
            api_path: "/Things".into(),
            primary_key: vec!["thing_id".into()],
            cursor_field: "ModifiedDate".into(),
            columns: vec![
                col("thing_id", "ThingId", ColumnType::Bigint),
                col("price", "Price", ColumnType::Double),
                col("name", "Name", ColumnType::Text),
                col("rowguid", "rowguid", ColumnType::Uniqueidentifier),
                col("active", "Active", ColumnType::Bool),
                col("start_date", "StartDate", ColumnType::Timestamp),
                col("photo", "Photo", ColumnType::Binary),
                col("modified_date", "ModifiedDate", ColumnType::Date),
            ],
            ..Default::default()
        }
    }

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|r| r.as_object().expect("object").clone())
            .collect()
    }

    #[test]
    fn decimals_land_exactly_or_fail_naming_the_value() {
        let money = ColumnType::Decimal {
            precision: 19,
            scale: 4,
        };
        let r = ResourceConfig {
            table: "raw__demo__prices".into(),
            api_path: "/Prices".into(),
            primary_key: vec!["price_id".into()],
            cursor_field: "ModifiedDate".into(),
            columns: vec![
                ColumnConfig {
                    name: "price_id".into(),
                    source: "PriceId".into(),
                    data_type: ColumnType::Bigint,
                },
                ColumnConfig {
                    name: "amount".into(),
                    source: "Amount".into(),
                    data_type: money,
                },
                ColumnConfig {
                    name: "modified_date".into(),
                    source: "ModifiedDate".into(),
                    data_type: ColumnType::Date,
                },
            ],
            ..Default::default()
        };
        let data = rows(serde_json::json!([
            {"PriceId": 1, "Amount": 0.1, "ModifiedDate": "2014-07-01"},
            {"PriceId": 2, "Amount": "0.2", "ModifiedDate": "2014-07-01"},
            {"PriceId": 3, "Amount": "123456789012345.6789", "ModifiedDate": "2014-07-01"},
            {"PriceId": 4, "Amount": "-3578.2700", "ModifiedDate": "2014-07-01"},
            {"PriceId": 5, "Amount": null, "ModifiedDate": "2014-07-01"}
        ]));
        let (batch, _) = rows_to_batch(&r, &data, 0).expect("converts");
        let amounts = batch
            .column(1)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .expect("decimal");
        assert_eq!(amounts.data_type(), &DataType::Decimal128(19, 4));
        assert_eq!(amounts.value(0), 1_000);
        assert_eq!(amounts.value(1), 2_000);
        // 0.1 + 0.2 is exactly 0.3 (a double sum would give 0.30000000000000004).
        assert_eq!(amounts.value(0) + amounts.value(1), 3_000);
        // Sent as a string, all 19 digits arrive (a JSON number would pass through a double).
        assert_eq!(amounts.value_as_string(2), "123456789012345.6789");
        assert_eq!(amounts.value_as_string(3), "-3578.2700");
        assert!(amounts.is_null(4));
        let too_fine = rows(serde_json::json!([
            {"PriceId": 1, "Amount": 1.23456, "ModifiedDate": "2014-07-01"}
        ]));
        let e = rows_to_batch(&r, &too_fine, 40).unwrap_err().to_string();
        assert!(e.contains("raw__demo__prices"), "{e}");
        assert!(e.contains("row 40"), "{e}");
        assert!(e.contains("Amount"), "{e}");
        assert!(e.contains("1.23456 has 5 digits after the point"), "{e}");
        let not_a_number = rows(serde_json::json!([
            {"PriceId": 1, "Amount": "12,50", "ModifiedDate": "2014-07-01"}
        ]));
        let e = rows_to_batch(&r, &not_a_number, 0).unwrap_err().to_string();
        assert!(e.contains("12,50 is not a decimal(19,4)"), "{e}");
    }

    #[test]
    fn fields_match_ignoring_case_and_never_land_silent_nulls() {
        let r = resource();
        // The service spells `rowguid` as `Rowguid`: matched, not an extra.
        let data = rows(serde_json::json!([
            {"ThingId": 1, "Price": 2.5, "Name": "a", "Rowguid": "A1B2C3D4-0000-4000-8000-000000000001",
             "Active": true, "StartDate": null, "Photo": null, "ModifiedDate": "2014-07-01"}
        ]));
        let (batch, extras) = rows_to_batch(&r, &data, 0).expect("converts");
        assert!(extras.is_empty(), "{extras:?}");
        let guid = batch
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("str");
        assert_eq!(guid.value(0), "a1b2c3d4-0000-4000-8000-000000000001");
        // A configured field in no row of a page with rows is an error.
        let mut missing = data.clone();
        missing[0].remove("Rowguid");
        let e = rows_to_batch(&r, &missing, 5).unwrap_err().to_string();
        assert!(
            e.contains("rows 5..6: no row has the configured field `rowguid` (column `rowguid`)"),
            "{e}"
        );
        // A field landing as a configured column's name, but not matching
        // it, would shadow it: refused.
        let mut shadow = data.clone();
        shadow[0].insert("Start_Date".into(), serde_json::json!("x"));
        let e = rows_to_batch(&r, &shadow, 0).unwrap_err().to_string();
        assert!(
            e.contains("field `Start_Date` is not the configured `StartDate` but lands as the same column `start_date`"),
            "{e}"
        );
        // An empty page is fine.
        assert_eq!(rows_to_batch(&r, &[], 0).unwrap().0.num_rows(), 0);
    }

    #[test]
    fn converts_every_type() {
        let r = resource();
        let data = rows(serde_json::json!([
            {"ThingId": 7, "Price": 12.5, "Name": "Bolt", "rowguid": "A1B2C3D4-0000-4000-8000-000000000001",
             "Active": true, "StartDate": "2011-05-31T00:00:00Z", "Photo": "R0lGODlh",
             "ModifiedDate": "2014-07-01", "Color@odata.type": "x", "NewField": 3},
            {"ThingId": "8", "Price": "NaN", "Name": null, "rowguid": null, "Active": null,
             "StartDate": "2011-05-31T02:00:00+02:00", "Photo": null, "ModifiedDate": "2014-07-02T10:00:00Z"}
        ]));
        let (batch, extras) = rows_to_batch(&r, &data, 0).expect("converts");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            extras,
            vec![("new_field".to_string(), "NewField".to_string())]
        );
        let schema = batch.schema();
        assert_eq!(schema.fields().len(), 9);
        assert!(is_extra(schema.field(8)));
        assert_eq!(schema.field(8).name(), "new_field");
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!((ids.value(0), ids.value(1)), (7, 8));
        let guid = batch
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("str");
        assert_eq!(guid.value(0), "a1b2c3d4-0000-4000-8000-000000000001");
        let ts = batch
            .column(5)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("ts");
        assert_eq!(ts.value(0), 1_306_800_000_000_000);
        assert_eq!(ts.value(1), 1_306_800_000_000_000);
        let photo = batch
            .column(6)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .expect("bin");
        assert_eq!(&photo.value(0)[..6], b"GIF89a");
        let dates = batch
            .column(7)
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("date");
        assert_eq!((dates.value(0), dates.value(1)), (16252, 16253));
        let extra = batch
            .column(8)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("str");
        assert_eq!(extra.value(0), "3");
        assert!(extra.is_null(1));
    }

    #[test]
    fn bad_value_names_resource_row_and_field() {
        let r = resource();
        // Every configured field present (NULL), so only the value is wrong.
        let row = |k: &str, v: serde_json::Value| {
            let mut m: Map<String, Value> = r
                .columns
                .iter()
                .map(|c| (c.source.clone(), Value::Null))
                .collect();
            m.insert(k.into(), v);
            m
        };
        let data = vec![row("ThingId", 1.into()), row("ThingId", "x1".into())];
        let err = rows_to_batch(&r, &data, 40).expect_err("bad id");
        assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
        assert_eq!(
            err.message(),
            "resource `raw__demo__things`: row 41: field `ThingId` (bigint): string \"x1\" is not an integer"
        );
        let data = vec![row("ModifiedDate", "July".into())];
        let err = rows_to_batch(&r, &data, 0).expect_err("bad date");
        assert_eq!(
            err.message(),
            "resource `raw__demo__things`: row 0: field `ModifiedDate` (date): string \"July\" is not a date"
        );
    }
}
