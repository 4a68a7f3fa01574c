//! Encoding what plans read: the warehouse's table providers (logical
//! plans) and iceberg-datafusion's table scan (physical plans).
//!
//! A table travels as its identity, its metadata location and the whole
//! metadata JSON, plus the snapshot read: the receiver rebuilds the same
//! table version without a catalog round trip and without I/O (decoding
//! runs inside DataFusion's synchronous codec calls), and reads its data
//! files through its own warehouse handle (same location, its own
//! credentials).

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::physical_plan::from_proto::parse_record_batches;
use datafusion_proto::physical_plan::to_proto::serialize_record_batches;
use futures::FutureExt;
use iceberg::table::Table;
use iceberg_datafusion::physical_plan::IcebergTableScan;

use super::messages::{
    IcebergScanNode, MemoryTableNode, RestrictedTableNode, SnapshotTableNode, TableKind, TableNode,
};
use super::predicate::predicate_to_filters;
use crate::storage::provider::SnapshotTable;
use crate::storage::restrict::RestrictedTable;
use crate::storage::{TableName, Warehouse};

/// A codec error naming what could not be encoded or decoded.
pub fn codec_err(what: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("plan codec: {what}"))
}

/// The node of a provider we know, or an error naming the table (`name`)
/// and the provider's type.
pub fn encode_table(provider: &Arc<dyn TableProvider>, name: &str) -> Result<TableNode> {
    let any = provider.as_any();
    let kind = if let Some(t) = any.downcast_ref::<SnapshotTable>() {
        TableKind::Snapshot(snapshot_node(t.table(), t.snapshot_id())?)
    } else if let Some(t) = any.downcast_ref::<RestrictedTable>() {
        let values = t
            .values()
            .iter()
            .map(|v| v.try_into().map_err(|e| codec_err(format!("{e}"))))
            .collect::<Result<Vec<_>>>()?;
        TableKind::Restricted(Box::new(RestrictedTableNode {
            inner: Some(Box::new(encode_table(t.inner(), name)?)),
            column: t.column().to_string(),
            values,
        }))
    } else if let Some(t) = any.downcast_ref::<MemTable>() {
        let mut partitions = Vec::with_capacity(t.batches.len());
        for p in &t.batches {
            let batches = p
                .try_read()
                .map_err(|_| codec_err(format!("in-memory table {name} is being written")))?;
            partitions.push(serialize_record_batches(&batches)?);
        }
        TableKind::Memory(MemoryTableNode {
            schema: Some(t.schema().as_ref().try_into()?),
            partitions,
        })
    } else {
        // Debug output starts with the type's name.
        let debug = format!("{provider:?}");
        let kind = debug
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default();
        return Err(codec_err(format!(
            "cannot encode table {name}: its provider ({kind}) is not a warehouse, restricted or in-memory table"
        )));
    };
    Ok(TableNode { kind: Some(kind) })
}

/// The provider `node` describes, reading through `wh`.
pub fn decode_table(node: &TableNode, wh: &Warehouse) -> Result<Arc<dyn TableProvider>> {
    match &node.kind {
        Some(TableKind::Snapshot(t)) => Ok(Arc::new(snapshot_table(t, wh)?)),
        Some(TableKind::Restricted(r)) => {
            let inner = r
                .inner
                .as_deref()
                .ok_or_else(|| codec_err("a restricted table without its table"))?;
            let values = r
                .values
                .iter()
                .map(|v| v.try_into().map_err(|e| codec_err(format!("{e}"))))
                .collect::<Result<Vec<_>>>()?;
            let t = RestrictedTable::try_new(decode_table(inner, wh)?, &r.column, values)?;
            Ok(Arc::new(t))
        }
        Some(TableKind::Memory(m)) => {
            let schema = m
                .schema
                .as_ref()
                .ok_or_else(|| codec_err("an in-memory table without a schema"))?;
            let schema = Arc::new(arrow::datatypes::Schema::try_from(schema)?);
            let partitions = m
                .partitions
                .iter()
                .map(|p| parse_record_batches(p))
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(MemTable::try_new(schema, partitions)?))
        }
        None => Err(codec_err("an empty table node")),
    }
}

/// The node of `table` at `snapshot_id`.
fn snapshot_node(table: &Table, snapshot_id: Option<i64>) -> Result<SnapshotTableNode> {
    let ident = table.identifier();
    let metadata_json = serde_json::to_vec(table.metadata())
        .map_err(|e| codec_err(format!("table {ident}: metadata: {e}")))?;
    Ok(SnapshotTableNode {
        namespace: ident.namespace().clone().inner(),
        name: ident.name().to_string(),
        metadata_location: table.metadata_location().unwrap_or_default().to_string(),
        metadata_json,
        snapshot_id,
    })
}

/// The table version `node` describes (no I/O: the metadata is in the node).
fn table_of(node: &SnapshotTableNode, wh: &Warehouse) -> Result<Table> {
    let [namespace] = node.namespace.as_slice() else {
        return Err(codec_err(format!(
            "table {}: namespace {:?} is not one level",
            node.name, node.namespace
        )));
    };
    let name = TableName::new(namespace.clone(), node.name.clone())?;
    Ok(wh.table_from_metadata(
        &name,
        node.metadata_location.clone(),
        bytes::Bytes::from(node.metadata_json.clone()),
    )?)
}

fn snapshot_table(node: &SnapshotTableNode, wh: &Warehouse) -> Result<SnapshotTable> {
    let table = table_of(node, wh)?;
    let name = format!("{}", table.identifier());
    // Building the provider only derives the Arrow schema: it never waits.
    SnapshotTable::try_new(table, node.snapshot_id)
        .now_or_never()
        .ok_or_else(|| codec_err(format!("table {name}: opening the snapshot would wait")))?
        .map_err(DataFusionError::from)
}

/// The node of an Iceberg table scan.
pub fn encode_scan(scan: &IcebergTableScan) -> Result<IcebergScanNode> {
    let codec = DefaultLogicalExtensionCodec {};
    let filters = scan
        .predicates()
        .map(predicate_to_filters)
        .unwrap_or_default()
        .iter()
        .map(|f| serialize_expr(f, &codec))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(IcebergScanNode {
        table: Some(snapshot_node(scan.table(), scan.snapshot_id())?),
        projection: scan
            .projection()
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        has_projection: scan.projection().is_some(),
        filters,
        limit: scan.limit().map(|l| l as u64),
    })
}

/// The scan `node` describes: the same table version, columns, pushed-down
/// predicate and limit, planned by the same provider.
pub fn decode_scan(
    node: &IcebergScanNode,
    wh: &Warehouse,
    ctx: &TaskContext,
) -> Result<Arc<dyn ExecutionPlan>> {
    let table = node
        .table
        .as_ref()
        .ok_or_else(|| codec_err("an Iceberg scan without its table"))?;
    let provider = snapshot_table(table, wh)?;
    let schema = provider.schema();
    let projection = if node.has_projection {
        Some(
            node.projection
                .iter()
                .map(|c| schema.index_of(c))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        )
    } else {
        None
    };
    let codec = DefaultLogicalExtensionCodec {};
    let filters = node
        .filters
        .iter()
        .map(|f| parse_expr(f, ctx, &codec))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let state = SessionStateBuilder::new()
        .with_config(ctx.session_config().clone())
        .with_runtime_env(ctx.runtime_env())
        .build();
    let limit = node.limit.map(|l| l as usize);
    // The static provider's scan only builds the operator: it never waits.
    provider
        .scan(&state, projection.as_ref(), &filters, limit)
        .now_or_never()
        .ok_or_else(|| codec_err("planning an Iceberg scan would wait"))?
}
