//! The protobuf messages of our plan nodes, declared with `prost` derives
//! (as DataFusion's own extension examples do, no `.proto` build step).
//! Expressions, scalars and schemas reuse datafusion-proto's messages.
//!
//! Tags are part of the wire format: never renumber a field, only add.

use datafusion_proto::protobuf::{LogicalExprNode, PhysicalExprNode, ScalarValue, Schema};

/// What our logical codec encodes: an extension node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogicalNode {
    #[prost(oneof = "LogicalKind", tags = "1")]
    pub kind: Option<LogicalKind>,
}

/// The logical extension nodes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum LogicalKind {
    #[prost(message, tag = "1")]
    PitJoin(PitJoinNode),
}

/// A logical `PitJoin` (its inputs travel as the node's inputs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PitJoinNode {
    #[prost(message, repeated, tag = "1")]
    pub left_keys: Vec<LogicalExprNode>,
    #[prost(message, repeated, tag = "2")]
    pub right_keys: Vec<LogicalExprNode>,
    #[prost(message, optional, tag = "3")]
    pub left_start: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "4")]
    pub left_end: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "5")]
    pub right_start: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "6")]
    pub right_end: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "7")]
    pub filter: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "8")]
    pub shape: Option<JoinShape>,
}

/// What the logical node and the operator share beyond expressions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinShape {
    /// 0 overlap, 1 point.
    #[prost(uint32, tag = "1")]
    pub range_kind: u32,
    #[prost(bool, tag = "2")]
    pub start_inclusive: bool,
    #[prost(bool, tag = "3")]
    pub end_inclusive: bool,
    /// 0 inner, 1 left.
    #[prost(uint32, tag = "4")]
    pub join_type: u32,
    #[prost(string, optional, tag = "5")]
    pub intersection_from: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub intersection_to: Option<String>,
}

/// What our codecs encode as a table provider.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TableNode {
    #[prost(oneof = "TableKind", tags = "1, 2, 3")]
    pub kind: Option<TableKind>,
}

/// The table providers.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum TableKind {
    #[prost(message, tag = "1")]
    Snapshot(SnapshotTableNode),
    #[prost(message, tag = "2")]
    Restricted(Box<RestrictedTableNode>),
    #[prost(message, tag = "3")]
    Memory(MemoryTableNode),
}

/// One Iceberg table at one snapshot. The metadata travels whole, so a
/// receiver needs no catalog round trip and sees exactly the sender's
/// version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotTableNode {
    #[prost(string, repeated, tag = "1")]
    pub namespace: Vec<String>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub metadata_location: String,
    /// The table metadata as its JSON file holds it.
    #[prost(bytes = "vec", tag = "4")]
    pub metadata_json: Vec<u8>,
    #[prost(int64, optional, tag = "5")]
    pub snapshot_id: Option<i64>,
}

/// A table restricted to rows whose `column` holds one of `values`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RestrictedTableNode {
    #[prost(message, optional, boxed, tag = "1")]
    pub inner: Option<Box<TableNode>>,
    #[prost(string, tag = "2")]
    pub column: String,
    #[prost(message, repeated, tag = "3")]
    pub values: Vec<ScalarValue>,
}

/// In-memory partitions of record batches (Arrow IPC per partition).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemoryTableNode {
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub partitions: Vec<Vec<u8>>,
}

/// What our physical codec encodes: an operator.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PhysicalNode {
    #[prost(oneof = "PhysicalKind", tags = "1, 2")]
    pub kind: Option<PhysicalKind>,
}

/// The physical operators.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PhysicalKind {
    #[prost(message, tag = "1")]
    PitJoin(Box<PitJoinExecNode>),
    #[prost(message, tag = "2")]
    IcebergScan(IcebergScanNode),
}

/// A `PitJoinExec` (its inputs travel as the node's inputs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PitJoinExecNode {
    #[prost(message, repeated, tag = "1")]
    pub left_keys: Vec<PhysicalExprNode>,
    #[prost(message, repeated, tag = "2")]
    pub right_keys: Vec<PhysicalExprNode>,
    #[prost(message, optional, tag = "3")]
    pub left_start: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "4")]
    pub left_end: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "5")]
    pub right_start: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "6")]
    pub right_end: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "7")]
    pub filter: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "8")]
    pub shape: Option<JoinShape>,
    /// The resolved strategy (never `auto`), by its option value.
    #[prost(string, tag = "9")]
    pub strategy: String,
    /// The embedded output projection, when `has_projection`.
    #[prost(uint32, repeated, tag = "10")]
    pub projection: Vec<u32>,
    #[prost(bool, tag = "11")]
    pub has_projection: bool,
}

/// iceberg-datafusion's `IcebergTableScan`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IcebergScanNode {
    #[prost(message, optional, tag = "1")]
    pub table: Option<SnapshotTableNode>,
    /// Column names read, when `has_projection`.
    #[prost(string, repeated, tag = "2")]
    pub projection: Vec<String>,
    #[prost(bool, tag = "3")]
    pub has_projection: bool,
    /// The pushed-down predicate as DataFusion filters (conjuncts).
    #[prost(message, repeated, tag = "4")]
    pub filters: Vec<LogicalExprNode>,
    #[prost(uint64, optional, tag = "5")]
    pub limit: Option<u64>,
}
