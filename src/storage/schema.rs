//! Arrow <-> Iceberg schemas, and checking batches against a table.
//!
//! Field ids: a column keeps its id for as long as its name and type stay
//! the same; a new or retyped column gets a fresh id above the table's
//! `last-column-id`, so files written under older schemas stay readable
//! (readers resolve columns by id).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef, TimeUnit,
};
use iceberg::arrow::{arrow_type_to_type, schema_to_arrow_schema};
use iceberg::spec::{NestedField, Schema, Type};

use crate::error::{Error, ErrorKind, Result};

/// Build an Iceberg schema for `arrow`, reusing ids from `current`
/// (`(schema, last_column_id)`) where a column keeps its name and type.
pub fn iceberg_schema_from_arrow(
    arrow: &ArrowSchema,
    current: Option<(&Schema, i32)>,
) -> Result<Schema> {
    let mut next_id = current.map(|(_, last)| last).unwrap_or(0);
    let mut fields = Vec::with_capacity(arrow.fields().len());
    let mut seen = std::collections::HashSet::new();
    for f in arrow.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!("column '{}' appears twice", f.name()),
            ));
        }
        let ty = iceberg_type(f)?;
        // A promoted column keeps its id: files written before read as the
        // wider type (readers promote by id).
        let reuse = current
            .and_then(|(s, _)| s.field_by_name(f.name()))
            .filter(|existing| {
                *existing.field_type == ty || is_promotion(&existing.field_type, &ty)
            })
            .map(|existing| existing.id);
        let id = match reuse {
            Some(id) => id,
            None => {
                next_id += 1;
                next_id
            }
        };
        let field = if f.is_nullable() {
            NestedField::optional(id, f.name(), ty)
        } else {
            NestedField::required(id, f.name(), ty)
        };
        fields.push(Arc::new(field));
    }
    let schema_id = current.map(|(s, _)| s.schema_id() + 1).unwrap_or(0);
    Ok(Schema::builder()
        .with_schema_id(schema_id)
        .with_fields(fields)
        .build()?)
}

fn iceberg_type(f: &Field) -> Result<Type> {
    if let DataType::Timestamp(TimeUnit::Nanosecond | TimeUnit::Second | TimeUnit::Millisecond, _) =
        f.data_type()
    {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "column '{}': timestamps are stored with microsecond precision; cast {} to Timestamp(Microsecond)",
                f.name(),
                f.data_type()
            ),
        ));
    }
    let ty = arrow_type_to_type(f.data_type()).map_err(|e| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "column '{}': type {} has no Iceberg equivalent",
                f.name(),
                f.data_type()
            ),
        )
        .with_source(e)
    })?;
    if !ty.is_primitive() {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "column '{}': nested type {} is not supported",
                f.name(),
                f.data_type()
            ),
        ));
    }
    Ok(ty)
}

/// The Arrow schema (with field-id metadata) of an Iceberg schema.
pub fn arrow_schema(schema: &Schema) -> Result<ArrowSchemaRef> {
    Ok(Arc::new(schema_to_arrow_schema(schema)?))
}

/// Whether two Arrow types store the same Iceberg type (so a cast is lossless).
fn same_iceberg_type(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    match (a, b) {
        _ if a == b => true,
        _ if string(a) && string(b) => true,
        _ if binary(a) && binary(b) => true,
        (Timestamp(ua, za), Timestamp(ub, zb)) => ua == ub && za.is_some() == zb.is_some(),
        _ => false,
    }
}

/// Whether Iceberg lets a column's type change from `from` to `to` in
/// place (the spec's promotions: int to long, float to double, a decimal to
/// more digits at the same scale).
pub fn is_promotion(from: &Type, to: &Type) -> bool {
    use iceberg::spec::PrimitiveType as P;
    match (from, to) {
        (Type::Primitive(f), Type::Primitive(t)) => match (f, t) {
            (P::Int, P::Long) | (P::Float, P::Double) => true,
            (
                P::Decimal {
                    precision: p1,
                    scale: s1,
                },
                P::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s1 == s2 && p2 > p1,
            _ => false,
        },
        _ => false,
    }
}

/// How a table column's type stands against the type a batch (or a
/// config) wants for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChange {
    /// The table has no such column (it would be added).
    New,
    Same,
    /// A promotion Iceberg allows in place ([`is_promotion`]).
    Widened,
    /// Any other change: the table must be rebuilt.
    Incompatible {
        table: String,
        wanted: String,
    },
}

/// How `table`'s column named like `wanted` stands against `wanted`'s type.
pub fn type_change(table: &Schema, wanted: &Field) -> Result<TypeChange> {
    let Some(existing) = table.field_by_name(wanted.name()) else {
        return Ok(TypeChange::New);
    };
    let ty = iceberg_type(wanted)?;
    Ok(if *existing.field_type == ty {
        TypeChange::Same
    } else if is_promotion(&existing.field_type, &ty) {
        TypeChange::Widened
    } else {
        TypeChange::Incompatible {
            table: existing.field_type.to_string(),
            wanted: ty.to_string(),
        }
    })
}

/// Check `batch` against the table `schema` and return it in the table's
/// exact Arrow layout (column order, types, field ids).
///
/// Refused, naming the column: a column the table lacks, a table column the
/// batch lacks, a type that is not the column's type, NULLs in a required
/// column. `table` names the table in messages.
pub fn conform_batch(
    table: &str,
    batch: &RecordBatch,
    target: &ArrowSchemaRef,
) -> Result<RecordBatch> {
    let by_name: HashMap<&str, usize> = batch
        .schema_ref()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().as_str(), i))
        .collect();
    for f in batch.schema_ref().fields() {
        if target.field_with_name(f.name()).is_err() {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!("table {table} has no column '{}'", f.name()),
            ));
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for tf in target.fields() {
        let Some(&i) = by_name.get(tf.name().as_str()) else {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "column '{}' of table {table} is missing from the batch",
                    tf.name()
                ),
            ));
        };
        let col = batch.column(i);
        let col = if col.data_type() == tf.data_type() {
            col.clone()
        } else if same_iceberg_type(col.data_type(), tf.data_type()) {
            cast(col, tf.data_type())?
        } else {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "column '{}' of table {table} has type {} but the batch has {}; \
                     Iceberg cannot change a column to that type in place: rebuild the table \
                     (`lakehouse init --force` rebuilds the warehouse)",
                    tf.name(),
                    tf.data_type(),
                    col.data_type()
                ),
            ));
        };
        if !tf.is_nullable() && col.null_count() > 0 {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "column '{}' of table {table} is required but the batch has {} NULL(s)",
                    tf.name(),
                    col.null_count()
                ),
            ));
        }
        columns.push(col);
    }
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

/// Project `batch` (read from an older file) onto `target` by column name:
/// columns the batch lacks become NULL, extra columns are dropped.
pub fn project_by_name(batch: &RecordBatch, target: &ArrowSchemaRef) -> Result<RecordBatch> {
    let columns = target
        .fields()
        .iter()
        .map(|tf| match batch.schema_ref().index_of(tf.name()) {
            Ok(i) if batch.column(i).data_type() == tf.data_type() => Ok(batch.column(i).clone()),
            Ok(i) => Ok(cast(batch.column(i), tf.data_type())?),
            Err(_) => Ok(new_null_array(tf.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotions_are_the_specs() {
        use iceberg::spec::PrimitiveType as P;
        let t = Type::Primitive;
        let dec = |precision, scale| t(P::Decimal { precision, scale });
        assert!(is_promotion(&t(P::Int), &t(P::Long)));
        assert!(is_promotion(&t(P::Float), &t(P::Double)));
        assert!(is_promotion(&dec(12, 2), &dec(18, 2)));
        assert!(!is_promotion(&dec(18, 2), &dec(12, 2)), "narrowing");
        assert!(!is_promotion(&dec(12, 2), &dec(18, 3)), "another scale");
        assert!(!is_promotion(&t(P::Long), &t(P::Int)));
        assert!(!is_promotion(&t(P::Date), &t(P::Timestamp)));
    }
}
