//! Encoding the PIT join: the logical [`PitJoin`] node and the physical
//! [`PitJoinExec`] operator. Both travel without their inputs (DataFusion
//! encodes those as the node's children) and are rebuilt through their
//! `try_new`, so a decoded join is validated like a planned one.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::protobuf::{LogicalExprNode, PhysicalExprNode};

use super::messages::{JoinShape, PitJoinExecNode, PitJoinNode};
use super::tables::codec_err;
use crate::join::{PhysicalRange, PitJoin, PitJoinExec, PitJoinStrategy, PitJoinType, RangeKind};

fn shape(
    kind: RangeKind,
    start_inclusive: bool,
    end_inclusive: bool,
    join_type: PitJoinType,
    intersection: Option<&(String, String)>,
) -> JoinShape {
    JoinShape {
        range_kind: match kind {
            RangeKind::Overlap => 0,
            RangeKind::Point => 1,
        },
        start_inclusive,
        end_inclusive,
        join_type: match join_type {
            PitJoinType::Inner => 0,
            PitJoinType::Left => 1,
        },
        intersection_from: intersection.map(|(from, _)| from.clone()),
        intersection_to: intersection.map(|(_, to)| to.clone()),
    }
}

/// Names of the appended intersection columns `(from, to)`.
type Intersection = Option<(String, String)>;

/// Range kind, join type and intersection columns of a decoded shape.
fn unshape(s: &JoinShape) -> Result<(RangeKind, PitJoinType, Intersection)> {
    let kind = match s.range_kind {
        0 => RangeKind::Overlap,
        1 => RangeKind::Point,
        k => return Err(codec_err(format!("unknown PIT range kind {k}"))),
    };
    let join_type = match s.join_type {
        0 => PitJoinType::Inner,
        1 => PitJoinType::Left,
        t => return Err(codec_err(format!("unknown PIT join type {t}"))),
    };
    let intersection = match (&s.intersection_from, &s.intersection_to) {
        (Some(from), Some(to)) => Some((from.clone(), to.clone())),
        (None, None) => None,
        _ => return Err(codec_err("a PIT join with half its intersection columns")),
    };
    Ok((kind, join_type, intersection))
}

fn required<'a, T>(field: &'a Option<T>, what: &str) -> Result<&'a T> {
    field
        .as_ref()
        .ok_or_else(|| codec_err(format!("a PIT join without its {what}")))
}

/// Left keys, right keys and the four bounds (left start, left end, right
/// start, right end) of a join, as messages.
type Encoded<N> = (Vec<N>, Vec<N>, [Option<N>; 4]);

/// The messages of a join's left keys, right keys and four bounds, in the
/// order of [`PitJoinNode`] and [`PitJoinExecNode`], converted by `encode`.
fn keys_and_bounds<E, N>(
    on: &[(E, E)],
    bounds: [&E; 4],
    encode: impl Fn(&E) -> Result<N>,
) -> Result<Encoded<N>> {
    let lefts = on.iter().map(|(l, _)| encode(l)).collect::<Result<_>>()?;
    let rights = on.iter().map(|(_, r)| encode(r)).collect::<Result<_>>()?;
    let [a, b, c, d] = bounds;
    Ok((
        lefts,
        rights,
        [
            Some(encode(a)?),
            Some(encode(b)?),
            Some(encode(c)?),
            Some(encode(d)?),
        ],
    ))
}

/// The message of a logical PIT join.
pub fn encode_logical(join: &PitJoin, codec: &dyn LogicalExtensionCodec) -> Result<PitJoinNode> {
    let expr = |e: &Expr| serialize_expr(e, codec).map_err(Into::into);
    let r = &join.range;
    let bounds = [&r.left_start, &r.left_end, &r.right_start, &r.right_end];
    let (left_keys, right_keys, [left_start, left_end, right_start, right_end]) =
        keys_and_bounds(&join.on, bounds, expr)?;
    Ok(PitJoinNode {
        left_keys,
        right_keys,
        left_start,
        left_end,
        right_start,
        right_end,
        filter: join.filter.as_ref().map(expr).transpose()?,
        shape: Some(shape(
            r.kind,
            r.start_inclusive,
            r.end_inclusive,
            join.join_type,
            join.intersection.as_ref(),
        )),
    })
}

/// The logical PIT join of `node` over `inputs` (left, right).
pub fn decode_logical(
    node: &PitJoinNode,
    inputs: &[LogicalPlan],
    ctx: &TaskContext,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Extension> {
    let [left, right] = inputs else {
        return Err(codec_err(format!(
            "a PIT join needs 2 inputs, got {}",
            inputs.len()
        )));
    };
    let expr = |e: &LogicalExprNode| parse_expr(e, ctx, codec).map_err(Into::into);
    let exprs = |v: &[LogicalExprNode]| v.iter().map(expr).collect::<Result<Vec<_>>>();
    let (kind, join_type, intersection) = unshape(required(&node.shape, "shape")?)?;
    let range = crate::join::RangeSpec {
        kind,
        left_start: expr(required(&node.left_start, "left start")?)?,
        left_end: expr(required(&node.left_end, "left end")?)?,
        right_start: expr(required(&node.right_start, "right start")?)?,
        right_end: expr(required(&node.right_end, "right end")?)?,
        start_inclusive: required(&node.shape, "shape")?.start_inclusive,
        end_inclusive: required(&node.shape, "shape")?.end_inclusive,
    };
    let on = exprs(&node.left_keys)?
        .into_iter()
        .zip(exprs(&node.right_keys)?)
        .collect();
    let join = PitJoin::try_new(
        Arc::new(left.clone()),
        Arc::new(right.clone()),
        on,
        range,
        node.filter.as_ref().map(expr).transpose()?,
        join_type,
        intersection,
    )?;
    Ok(Extension {
        node: Arc::new(join),
    })
}

/// The message of a physical PIT join.
pub fn encode_physical(
    exec: &PitJoinExec,
    codec: &dyn PhysicalExtensionCodec,
) -> Result<PitJoinExecNode> {
    let expr = |e: &PhysicalExprRef| serialize_physical_expr(e, codec);
    let r = exec.range();
    let bounds = [&r.left_start, &r.left_end, &r.right_start, &r.right_end];
    let (left_keys, right_keys, [left_start, left_end, right_start, right_end]) =
        keys_and_bounds(exec.on(), bounds, expr)?;
    Ok(PitJoinExecNode {
        left_keys,
        right_keys,
        left_start,
        left_end,
        right_start,
        right_end,
        filter: exec.filter().map(expr).transpose()?,
        shape: Some(shape(
            r.kind,
            r.start_inclusive,
            r.end_inclusive,
            exec.join_type(),
            exec.intersection(),
        )),
        strategy: exec.strategy().as_str().to_string(),
        projection: exec
            .projection()
            .map(|p| p.iter().map(|&i| i as u32).collect())
            .unwrap_or_default(),
        has_projection: exec.projection().is_some(),
    })
}

/// The physical PIT join of `node` over `inputs` (left, right), with the
/// strategy it was planned with.
pub fn decode_physical(
    node: &PitJoinExecNode,
    inputs: &[Arc<dyn ExecutionPlan>],
    ctx: &TaskContext,
    codec: &dyn PhysicalExtensionCodec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let [left, right] = inputs else {
        return Err(codec_err(format!(
            "a PIT join needs 2 inputs, got {}",
            inputs.len()
        )));
    };
    let (ls, rs) = (left.schema(), right.schema());
    let on_side = |e: &PhysicalExprNode, schema: &arrow::datatypes::Schema| {
        parse_physical_expr(e, ctx, schema, codec)
    };
    let (kind, join_type, intersection) = unshape(required(&node.shape, "shape")?)?;
    let shape = required(&node.shape, "shape")?;
    let range = PhysicalRange {
        kind,
        left_start: on_side(required(&node.left_start, "left start")?, &ls)?,
        left_end: on_side(required(&node.left_end, "left end")?, &ls)?,
        right_start: on_side(required(&node.right_start, "right start")?, &rs)?,
        right_end: on_side(required(&node.right_end, "right end")?, &rs)?,
        start_inclusive: shape.start_inclusive,
        end_inclusive: shape.end_inclusive,
    };
    let lefts = node
        .left_keys
        .iter()
        .map(|e| on_side(e, &ls))
        .collect::<Result<Vec<_>>>()?;
    let rights = node
        .right_keys
        .iter()
        .map(|e| on_side(e, &rs))
        .collect::<Result<Vec<_>>>()?;
    let strategy = PitJoinStrategy::from_str(&node.strategy)?;
    if strategy == PitJoinStrategy::Auto {
        return Err(codec_err("a PIT join with an unresolved strategy"));
    }
    // The filter reads left ++ right, which `try_new` derives from the
    // inputs: build without it first to learn that schema.
    let unfiltered = PitJoinExec::try_new(
        Arc::clone(left),
        Arc::clone(right),
        lefts.iter().cloned().zip(rights.iter().cloned()).collect(),
        range.clone(),
        None,
        join_type,
        intersection.clone(),
    )?;
    let filter = node
        .filter
        .as_ref()
        .map(|f| on_side(f, unfiltered.join_schema()))
        .transpose()?;
    let exec = match filter {
        None => unfiltered,
        Some(filter) => PitJoinExec::try_new(
            Arc::clone(left),
            Arc::clone(right),
            lefts.into_iter().zip(rights).collect(),
            range,
            Some(filter),
            join_type,
            intersection,
        )?,
    };
    let projection = node
        .has_projection
        .then(|| node.projection.iter().map(|&i| i as usize).collect());
    Ok(Arc::new(
        exec.with_projection(projection)?.with_strategy(strategy),
    ))
}
