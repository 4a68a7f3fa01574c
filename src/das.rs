//! What a DAS table is: the contract between the extractor, which lands it,
//! and the models, which read it. Both import this module; neither imports
//! the other.
//!
//! `das.raw__<system>__<entity>` ([`NAMESPACE`]) holds every extracted row,
//! append-only: the source's curated columns (snake_case, in config order,
//! typed by [`arrow_type`]), then any extra columns a source sent that its
//! config does not list, then three load columns:
//! - [`LOAD_ID`] (text): the extraction run that landed the row;
//! - [`LOADED_AT`] (timestamp, UTC): when that run started; equal for every
//!   row of one run, strictly increasing across runs;
//! - [`LOAD_SEQUENCE`] (bigint): the row's position within its run, to
//!   order versions deterministically when load times tie.
//!
//! # Field metadata
//! Every source column carries [`SOURCE_NAME_KEY`] (its API name) and
//! [`CURATED_TYPE_KEY`] (its curated type, `text` for extras); an extra
//! column is flagged [`EXTRA_COLUMN_KEY`]` = "true"`, so the storage layer
//! can evolve the table schema. Extras are nullable `Utf8`.
//!
//! Timestamps, in the data and in literals compared with it ([`ts_lit`]),
//! are microseconds in UTC.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, lit};

use crate::config::{ColumnType, ResourceConfig};

/// The DAS namespace.
pub const NAMESPACE: &str = "das";

/// Column: the id of the load that landed the row.
pub const LOAD_ID: &str = "_load_id";
/// Column: the load time (UTC).
pub const LOADED_AT: &str = "_loaded_at";
/// Column: the row's sequence within its load.
pub const LOAD_SEQUENCE: &str = "_load_sequence";

/// The three load columns, in landing order, as Arrow fields.
pub fn load_fields() -> [Field; 3] {
    [
        Field::new(LOAD_ID, DataType::Utf8, false),
        Field::new(
            LOADED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(LOAD_SEQUENCE, DataType::Int64, false),
    ]
}

/// Whether `column` is one of the load columns.
pub fn is_load_column(column: &str) -> bool {
    matches!(column, LOAD_ID | LOADED_AT | LOAD_SEQUENCE)
}

/// A UTC timestamp literal (`micros` since the epoch), of the type of
/// [`LOADED_AT`] and of curated `timestamp` columns.
pub fn ts_lit(micros: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

/// Field metadata key: the member name in the API.
pub const SOURCE_NAME_KEY: &str = "lakehouse.source_name";
/// Field metadata key: the curated type.
pub const CURATED_TYPE_KEY: &str = "lakehouse.curated_type";
/// Field metadata key, value `"true"`: a column the config does not list.
pub const EXTRA_COLUMN_KEY: &str = "lakehouse.extra";

/// The Arrow type of a curated type.
pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::Bigint => DataType::Int64,
        ColumnType::Double => DataType::Float64,
        ColumnType::Text | ColumnType::Xml | ColumnType::Uniqueidentifier => DataType::Utf8,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Binary => DataType::Binary,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
    }
}

fn field(name: &str, source: &str, t: ColumnType, extra: bool) -> Field {
    let mut meta = HashMap::from([
        (SOURCE_NAME_KEY.to_string(), source.to_string()),
        (CURATED_TYPE_KEY.to_string(), t.to_string()),
    ]);
    if extra {
        meta.insert(EXTRA_COLUMN_KEY.to_string(), "true".to_string());
    }
    Field::new(name, arrow_type(t), true).with_metadata(meta)
}

/// The schema of a resource's configured columns, in config order.
pub fn resource_schema(resource: &ResourceConfig) -> SchemaRef {
    page_schema(resource, &[])
}

/// The configured columns followed by `extras` (`(column, API name)`, in
/// the given order) as `Utf8` columns flagged [`EXTRA_COLUMN_KEY`].
pub fn page_schema(resource: &ResourceConfig, extras: &[(String, String)]) -> SchemaRef {
    let mut fields: Vec<Field> = resource
        .columns
        .iter()
        .map(|c| field(&c.name, &c.source, c.data_type, false))
        .collect();
    fields.extend(
        extras
            .iter()
            .map(|(name, source)| field(name, source, ColumnType::Text, true)),
    );
    Arc::new(Schema::new(fields))
}

/// Whether a field of a landed schema is an extra (unconfigured) column.
pub fn is_extra(field: &Field) -> bool {
    field.metadata().get(EXTRA_COLUMN_KEY).map(String::as_str) == Some("true")
}

/// The DAS table's schema as the extractor lands it before any extra
/// column: the configured columns (nullable, without metadata), then the
/// load columns.
pub fn table_schema(resource: &ResourceConfig) -> SchemaRef {
    let mut fields: Vec<Field> = resource_schema(resource)
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), f.data_type().clone(), true))
        .collect();
    fields.extend(load_fields());
    Arc::new(Schema::new(fields))
}
