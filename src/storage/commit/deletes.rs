//! Iceberg v2 position delete files: the spec's schema (field ids and
//! names), reading a live delete file's positions, and writing one file for
//! a replace's deletes. A file written here lists its positions sorted by
//! data file path, then by position.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, TableMetadata,
};
use object_store::{ObjectStoreExt, PutPayload};

use super::files::{decode_parquet, read_parquet_bytes, writer_properties};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::catalog::Warehouse;

/// Field ids and names of position delete files (Iceberg spec).
const DELETE_FILE_PATH: (&str, i32) = ("file_path", 2_147_483_546);
const DELETE_POS: (&str, i32) = ("pos", 2_147_483_545);

fn position_delete_schema() -> ArrowSchemaRef {
    use arrow::datatypes::{DataType, Field};
    let field = |(name, id): (&str, i32), t: DataType| {
        Field::new(name, t, false).with_metadata(HashMap::from([(
            parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
            id.to_string(),
        )]))
    };
    Arc::new(arrow::datatypes::Schema::new(vec![
        field(DELETE_FILE_PATH, DataType::Utf8),
        field(DELETE_POS, DataType::Int64),
    ]))
}

/// Add the positions of a live position delete file to `deleted`.
pub(super) async fn read_position_deletes(
    wh: &Warehouse,
    file: &DataFile,
    deleted: &mut HashMap<String, HashSet<i64>>,
) -> Result<()> {
    if file.content_type() != DataContentType::PositionDeletes {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is an equality delete file; only position deletes are supported",
                file.file_path()
            ),
        ));
    }
    let bytes = read_parquet_bytes(wh, file).await?;
    for b in decode_parquet(bytes, None, file.file_path())? {
        let bad = || {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "position delete file {} lacks string file_path / long pos columns",
                    file.file_path()
                ),
            )
        };
        let paths = b
            .column_by_name(DELETE_FILE_PATH.0)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
            .ok_or_else(bad)?;
        let pos = b
            .column_by_name(DELETE_POS.0)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
            .ok_or_else(bad)?;
        for (p, n) in paths.iter().zip(pos.iter()) {
            if let (Some(p), Some(n)) = (p, n) {
                deleted.entry(p.to_string()).or_default().insert(n);
            }
        }
    }
    Ok(())
}

/// Write one position delete file for `deletes` (data file, positions) and
/// describe it as a `DataFile` of content `PositionDeletes`.
pub(super) async fn write_position_deletes(
    wh: &Warehouse,
    base: &TableMetadata,
    mut deletes: Vec<(String, Vec<i64>)>,
    tag: &str,
) -> Result<DataFile> {
    deletes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut paths = Vec::new();
    let mut positions = Vec::new();
    for (p, mut pos) in deletes.iter().cloned() {
        pos.sort_unstable();
        for n in pos {
            paths.push(p.clone());
            positions.push(n);
        }
    }
    let rows = positions.len() as u64;
    // Bounds of both columns, as other writers record them: readers (polars
    // natively, for one) take a delete file whose `file_path` bounds are
    // equal as applying to that one data file only.
    let bounds = match (
        paths.first(),
        paths.last(),
        positions.iter().min(),
        positions.iter().max(),
    ) {
        (Some(first), Some(last), Some(&low), Some(&high)) => Some((
            HashMap::from([
                (DELETE_FILE_PATH.1, Datum::string(first)),
                (DELETE_POS.1, Datum::long(low)),
            ]),
            HashMap::from([
                (DELETE_FILE_PATH.1, Datum::string(last)),
                (DELETE_POS.1, Datum::long(high)),
            ]),
        )),
        _ => None,
    };
    let schema = position_delete_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::StringArray::from(paths)),
            Arc::new(arrow::array::Int64Array::from(positions)),
        ],
    )?;
    let props = writer_properties(false)?;
    let mut buf = Vec::new();
    let encode = |e: parquet::errors::ParquetError| {
        Error::internal(format!("cannot encode a position delete file: {e}"))
    };
    {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(encode)?;
        w.write(&batch).map_err(encode)?;
        w.close().map_err(encode)?;
    }
    let size = buf.len() as u64;
    let location = format!("{}/data/{tag}-deletes.parquet", base.location());
    let path = wh.url().location_to_path(&location)?;
    wh.store()
        .put(&path, PutPayload::from(buf))
        .await
        .map_err(|e| Error::from(e).context(format!("cannot write {location}")))?;
    let mut b = DataFileBuilder::default();
    b.content(DataContentType::PositionDeletes)
        .file_path(location)
        .file_format(DataFileFormat::Parquet)
        .record_count(rows)
        .file_size_in_bytes(size)
        .partition_spec_id(base.default_partition_spec_id());
    if let [(only, _)] = deletes.as_slice() {
        b.referenced_data_file(Some(only.clone()));
    }
    if let Some((lower, upper)) = bounds {
        b.lower_bounds(lower).upper_bounds(upper);
    }
    b.build()
        .map_err(|e| Error::internal(format!("position delete file entry: {e}")))
}
