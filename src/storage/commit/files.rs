//! The Parquet files of a commit: the settings every file is written with,
//! data files written through iceberg's writers, and whole files read back
//! (upsert rewrites, position delete files). Every file we write goes
//! through [`writer_properties`].

use std::sync::Arc;

use arrow::array::RecordBatch;
use iceberg::spec::{DataFile, DataFileFormat, Schema};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::storage::catalog::Warehouse;

/// Parquet settings of every file we write (data and position deletes).
///
/// LZ4 (the raw block format, `LZ4_RAW`) rather than zstd: an `elt` run
/// decodes key columns of large tables to find the rows it replaces and
/// restricts, and LZ4 decompresses (and compresses) with less CPU, for
/// larger files (the trade measured: `docs/benchmarks.md`).
///
/// A sorted table ([`Write::sort_by`]) is written in pages of at most
/// [`SORTED_PAGE_ROWS`] rows, each with min/max statistics (the column
/// index), so that a search for keys reads only the pages that may hold one.
///
/// [`Write::sort_by`]: super::request::Write::sort_by
pub(super) fn writer_properties(sorted: bool) -> Result<WriterProperties> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        // Row groups small enough for min/max pruning of merge-on-read key lookups.
        .set_max_row_group_row_count(Some(128 * 1024));
    if sorted {
        b = b.set_data_page_row_count_limit(SORTED_PAGE_ROWS);
    }
    Ok(b.build())
}

/// Rows per data page of a sorted table (see [`writer_properties`]): the
/// unit a replace's search skips or decodes.
const SORTED_PAGE_ROWS: usize = 1024;

/// Write conformed batches as Parquet data files of `table`.
pub(super) async fn write_data_files(
    table: &Table,
    schema: &Schema,
    batches: &[RecordBatch],
    commit_id: Uuid,
    tag: &str,
    sorted: bool,
) -> Result<Vec<DataFile>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(vec![]);
    }
    let props = writer_properties(sorted)?;
    let parquet = ParquetWriterBuilder::new(props, Arc::new(schema.clone()));
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        parquet,
        table.file_io().clone(),
        DefaultLocationGenerator::new(table.metadata())?,
        DefaultFileNameGenerator::new(format!("{commit_id}-{tag}"), None, DataFileFormat::Parquet),
    );
    let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
    for b in batches {
        if b.num_rows() > 0 {
            writer.write(b.clone()).await?;
        }
    }
    Ok(writer.close().await?)
}

/// The bytes of a Parquet file of the table.
pub(super) async fn read_parquet_bytes(wh: &Warehouse, file: &DataFile) -> Result<bytes::Bytes> {
    if file.file_format() != DataFileFormat::Parquet {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("file {} is not Parquet", file.file_path()),
        ));
    }
    let path = wh.url().location_to_path(file.file_path())?;
    let cannot = |e: object_store::Error| {
        Error::from(e).context(format!("cannot read file {}", file.file_path()))
    };
    wh.store()
        .get(&path)
        .await
        .map_err(cannot)?
        .bytes()
        .await
        .map_err(cannot)
}

/// Decode a Parquet file, only the top-level `columns` when given.
pub(super) fn decode_parquet(
    bytes: bytes::Bytes,
    columns: Option<&[String]>,
    location: &str,
) -> Result<Vec<RecordBatch>> {
    let corrupt = || format!("file {location} is not valid Parquet");
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).ctx(ErrorKind::Corrupt, corrupt)?;
    let builder = match columns {
        None => builder,
        Some(columns) => {
            let roots = root_indices(builder.parquet_schema(), columns);
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
    };
    let reader = builder.build().ctx(ErrorKind::Corrupt, corrupt)?;
    reader
        .map(|b| {
            b.ctx(ErrorKind::Corrupt, || {
                format!("cannot decode file {location}")
            })
        })
        .collect()
}

/// Indices of the top-level Parquet fields named in `columns`.
pub(super) fn root_indices(
    schema: &parquet::schema::types::SchemaDescriptor,
    columns: &[String],
) -> Vec<usize> {
    schema
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.iter().any(|c| c == f.name()))
        .map(|(i, _)| i)
        .collect()
}
