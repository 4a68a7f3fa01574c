//! Plans that travel: datafusion-proto codecs for what our plans hold
//! beyond DataFusion's own nodes, so a model's logical and physical plans
//! round-trip through bytes, as a distributed engine on DataFusion
//! (Ballista, datafusion-distributed) ships them from scheduler to
//! executors.
//!
//! [`PlanCodec`] is both a `LogicalExtensionCodec` and a
//! `PhysicalExtensionCodec` for:
//! - the PIT join: the logical `PitJoin` node and the `PitJoinExec`
//!   operator (keys, range, join type, residual filter, intersection
//!   columns, and for the operator its resolved strategy and embedded
//!   projection), rebuilt through their validating `try_new` ([`pit`]);
//! - what plans read ([`tables`]): a warehouse table at a snapshot
//!   (`SnapshotTable`), a key-restricted table (`RestrictedTable`), an
//!   in-memory table (`MemTable`, the rows of an incremental build), and
//!   iceberg-datafusion's `IcebergTableScan` with its columns, pushed-down
//!   predicate ([`predicate`]) and limit.
//!
//! Everything else (projections, joins, windows, sorts, repartitions,
//! Parquet and memory scans, expressions) is datafusion-proto's own.
//!
//! Invariants: a decoded plan computes the same rows as the original
//! (tests run both); decoding does no I/O (a table's metadata travels in
//! the plan) but needs a Tokio runtime in context, which iceberg binds its
//! file IO to; the decoding side reads data files through its own
//! [`Warehouse`] handle, so it needs the same warehouse location and its
//! own credentials. The wire format is prost messages ([`messages`]) whose
//! tags never change meaning.

pub mod messages;
pub mod pit;
pub mod predicate;
pub mod tables;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result as DFResult, TableReference};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use iceberg_datafusion::physical_plan::IcebergTableScan;
use prost::Message;

use crate::error::{Error, Result};
use crate::join::{PitJoin, PitJoinExec};
use crate::storage::Warehouse;
use messages::{LogicalKind, LogicalNode, PhysicalKind, PhysicalNode, TableNode};
use tables::codec_err;

pub use predicate::predicate_to_filters;

/// The codec of our plan nodes; decoded tables read through `warehouse`.
#[derive(Debug, Clone)]
pub struct PlanCodec {
    warehouse: Warehouse,
}

impl PlanCodec {
    /// A codec whose decoded scans read through `warehouse`.
    pub fn new(warehouse: Warehouse) -> Self {
        Self { warehouse }
    }
}

fn decode_message<M: Message + Default>(buf: &[u8], what: &str) -> DFResult<M> {
    M::decode(buf).map_err(|e| codec_err(format!("cannot decode {what}: {e}")))
}

impl LogicalExtensionCodec for PlanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DFResult<Extension> {
        let node: LogicalNode = decode_message(buf, "a logical node")?;
        match node.kind {
            Some(LogicalKind::PitJoin(join)) => pit::decode_logical(&join, inputs, ctx, self),
            None => Err(codec_err("an empty logical node")),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DFResult<()> {
        let Some(join) = node.node.as_any().downcast_ref::<PitJoin>() else {
            return Err(codec_err(format!(
                "cannot encode logical node {}",
                node.node.name()
            )));
        };
        let message = LogicalNode {
            kind: Some(LogicalKind::PitJoin(pit::encode_logical(join, self)?)),
        };
        message.encode(buf).map_err(|e| codec_err(e.to_string()))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        _table_ref: &TableReference,
        _schema: arrow::datatypes::SchemaRef,
        _ctx: &TaskContext,
    ) -> DFResult<Arc<dyn TableProvider>> {
        let node: TableNode = decode_message(buf, "a table")?;
        tables::decode_table(&node, &self.warehouse)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DFResult<()> {
        let message = tables::encode_table(&node, &table_ref.to_string())?;
        message.encode(buf).map_err(|e| codec_err(e.to_string()))
    }
}

impl PhysicalExtensionCodec for PlanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let node: PhysicalNode = decode_message(buf, "an operator")?;
        match node.kind {
            Some(PhysicalKind::PitJoin(join)) => pit::decode_physical(&join, inputs, ctx, self),
            Some(PhysicalKind::IcebergScan(scan)) => {
                tables::decode_scan(&scan, &self.warehouse, ctx)
            }
            None => Err(codec_err("an empty operator")),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> DFResult<()> {
        let any = node.as_any();
        let kind = if let Some(join) = any.downcast_ref::<PitJoinExec>() {
            PhysicalKind::PitJoin(Box::new(pit::encode_physical(join, self)?))
        } else if let Some(scan) = any.downcast_ref::<IcebergTableScan>() {
            PhysicalKind::IcebergScan(tables::encode_scan(scan)?)
        } else {
            return Err(codec_err(format!("cannot encode operator {}", node.name())));
        };
        PhysicalNode { kind: Some(kind) }
            .encode(buf)
            .map_err(|e| codec_err(e.to_string()))
    }
}

/// Stack for encoding and decoding: datafusion-proto converts plans and
/// expressions recursively, with frames large enough (in debug builds
/// especially) that a model with a few cascaded joins exceeds a 2 MiB
/// thread stack.
const CODEC_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Run `f` on a thread with [`CODEC_STACK_BYTES`] of stack (reserved
/// address space, committed only as used), inside the caller's Tokio
/// runtime if there is one.
fn with_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("plan-codec".into())
            .stack_size(CODEC_STACK_BYTES)
            .spawn_scoped(scope, || {
                let _entered = runtime.as_ref().map(|r| r.enter());
                f()
            })
            .map_err(|e| Error::internal(format!("cannot start the plan codec thread: {e}")))?
            .join()
            .map_err(|_| Error::internal("the plan codec thread panicked"))?
    })
}

/// `plan` as bytes.
pub fn logical_to_bytes(plan: &LogicalPlan, codec: &PlanCodec) -> Result<Bytes> {
    with_stack(|| {
        logical_plan_to_bytes_with_extension_codec(plan, codec)
            .map_err(|e| Error::from(e).context("cannot encode a logical plan"))
    })
}

/// The logical plan of `bytes`, resolving functions in `ctx`.
pub fn logical_from_bytes(
    bytes: &[u8],
    ctx: &SessionContext,
    codec: &PlanCodec,
) -> Result<LogicalPlan> {
    let task = ctx.task_ctx();
    with_stack(|| {
        let plan = logical_plan_from_bytes_with_extension_codec(bytes, &task, codec)
            .map_err(|e| Error::from(e).context("cannot decode a logical plan"))?;
        flatten_unions(plan)
    })
}

/// `plan` as bytes.
pub fn physical_to_bytes(plan: Arc<dyn ExecutionPlan>, codec: &PlanCodec) -> Result<Bytes> {
    with_stack(|| {
        physical_plan_to_bytes_with_extension_codec(plan, codec)
            .map_err(|e| Error::from(e).context("cannot encode a physical plan"))
    })
}

/// The physical plan of `bytes`, executing in `ctx`'s runtime.
pub fn physical_from_bytes(
    bytes: &[u8],
    ctx: &SessionContext,
    codec: &PlanCodec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let task = ctx.task_ctx();
    with_stack(|| {
        physical_plan_from_bytes_with_extension_codec(bytes, &task, codec)
            .map_err(|e| Error::from(e).context("cannot decode a physical plan"))
    })
}

/// `plan` with every chain of nested unions made one n-ary union again.
/// datafusion-proto decodes an n-ary union as a left-deep chain of binary
/// ones, which the unified bridge (one branch per event bridge) would turn
/// into a plan as deep as it has branches.
fn flatten_unions(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::optimizer::{OptimizerContext, OptimizerRule, optimize_unions::OptimizeUnions};
    let rule = OptimizeUnions::new();
    let config = OptimizerContext::new();
    let plan = plan.transform_up(|p| match p {
        LogicalPlan::Union(_) => rule.rewrite(p, &config),
        other => Ok(Transformed::no(other)),
    })?;
    Ok(plan.data)
}
