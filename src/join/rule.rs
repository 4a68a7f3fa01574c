//! The optimizer rule that turns matching equi-joins into [`PitJoin`].
//!
//! It matches `LogicalPlan::Join` nodes after DataFusion's own rules have
//! moved equality predicates into `on` (`ExtractEquijoinPredicate`) and
//! pushed `WHERE` conjuncts of inner joins into the join
//! (`PushDownFilter`); being appended to the rule list it runs after them in
//! every optimizer pass. It fires when all of these hold:
//!
//! * join type `Inner` or `Left`, at least one equality key, NULL never
//!   equal to NULL;
//! * the filter, split into conjuncts (`BETWEEN` expanded into its two
//!   inclusive comparisons), contains a comparison `L (<|<=) R` and a
//!   comparison `R' (<|<=) L'` (`>`/`>=` are flipped), where `L`, `L'` only
//!   reference left columns, `R`, `R'` only right columns, the operands of
//!   each comparison share a supported bound type, and none is volatile.
//!
//! The first such pair becomes the canonical range (`left_start = L`,
//! `right_end = R`, `right_start = R'`, `left_end = L'`); every other
//! conjunct is kept, unchanged in meaning, as the residual filter.
//! Nothing else is rewritten, so the rule is idempotent: a `PitJoin` is not a
//! `Join`.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, JoinType, NullEquality, Result};
use datafusion::logical_expr::expr::Between;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, logical_plan::Join,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::bounds::is_supported_bound_type;
use super::logical::{PitJoin, PitJoinType, RangeKind, RangeSpec};

/// Rewrites range-predicate equi-joins into [`PitJoin`] nodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct PitJoinRule;

impl PitJoinRule {
    /// A new rule.
    pub fn new() -> Self {
        Self
    }
}

impl OptimizerRule for PitJoinRule {
    fn name(&self) -> &str {
        "pit_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = plan else {
            return Ok(Transformed::no(plan));
        };
        match match_join(&join)? {
            Some(node) => Ok(Transformed::yes(node.into_plan())),
            None => Ok(Transformed::no(LogicalPlan::Join(join))),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Which input `expr` draws from, if exactly one (and it uses some column).
fn side_of(expr: &Expr, left: &DFSchema, right: &DFSchema) -> Option<Side> {
    let cols = expr.column_refs();
    if cols.is_empty() || expr.is_volatile() {
        return None;
    }
    if cols.iter().all(|c| left.has_column(c)) {
        Some(Side::Left)
    } else if cols.iter().all(|c| right.has_column(c)) {
        Some(Side::Right)
    } else {
        None
    }
}

/// A comparison `lo (<|<=) hi`, kept with the expression it came from.
struct Cmp {
    lo: Expr,
    hi: Expr,
    inclusive: bool,
    /// `lo` is on the left side (then `hi` is on the right), or vice versa.
    lo_side: Side,
}

fn as_cmp(lhs: &Expr, op: Operator, rhs: &Expr, left: &DFSchema, right: &DFSchema) -> Option<Cmp> {
    let (lo, hi, inclusive) = match op {
        Operator::Lt => (lhs, rhs, false),
        Operator::LtEq => (lhs, rhs, true),
        Operator::Gt => (rhs, lhs, false),
        Operator::GtEq => (rhs, lhs, true),
        _ => return None,
    };
    let lo_side = side_of(lo, left, right)?;
    let hi_side = side_of(hi, left, right)?;
    if lo_side == hi_side {
        return None;
    }
    let (lo_schema, hi_schema) = match lo_side {
        Side::Left => (left, right),
        Side::Right => (right, left),
    };
    let lt = lo.get_type(lo_schema).ok()?;
    let ht = hi.get_type(hi_schema).ok()?;
    if lt != ht || !is_supported_bound_type(&lt) {
        return None;
    }
    Some(Cmp {
        lo: lo.clone(),
        hi: hi.clone(),
        inclusive,
        lo_side,
    })
}

/// A conjunct: either a usable comparison or anything else.
enum Atom {
    Cmp(Box<Cmp>, Expr),
    Other(Expr),
}

fn atoms(expr: &Expr, left: &DFSchema, right: &DFSchema, out: &mut Vec<Atom>) {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left: l,
            op,
            right: r,
        }) => match as_cmp(l, *op, r, left, right) {
            Some(c) => out.push(Atom::Cmp(Box::new(c), expr.clone())),
            None => out.push(Atom::Other(expr.clone())),
        },
        Expr::Between(Between {
            expr: e,
            negated: false,
            low,
            high,
        }) => {
            let ge = Expr::BinaryExpr(BinaryExpr::new(e.clone(), Operator::GtEq, low.clone()));
            let le = Expr::BinaryExpr(BinaryExpr::new(e.clone(), Operator::LtEq, high.clone()));
            let a = as_cmp(e, Operator::GtEq, low, left, right);
            let b = as_cmp(e, Operator::LtEq, high, left, right);
            if a.is_none() && b.is_none() {
                out.push(Atom::Other(expr.clone()));
                return;
            }
            for (c, e) in [(a, ge), (b, le)] {
                match c {
                    Some(c) => out.push(Atom::Cmp(Box::new(c), e)),
                    None => out.push(Atom::Other(e)),
                }
            }
        }
        _ => out.push(Atom::Other(expr.clone())),
    }
}

/// Try to express `join` as a [`PitJoin`]; `None` when the shape does not match.
pub fn match_join(join: &Join) -> Result<Option<PitJoin>> {
    let join_type = match join.join_type {
        JoinType::Inner => PitJoinType::Inner,
        JoinType::Left => PitJoinType::Left,
        _ => return Ok(None),
    };
    if join.on.is_empty()
        || join.null_equality != NullEquality::NullEqualsNothing
        || join.null_aware
    {
        return Ok(None);
    }
    let Some(filter) = &join.filter else {
        return Ok(None);
    };
    let ls = join.left.schema();
    let rs = join.right.schema();
    // Key pairs must have one type each (type coercion normally ensures it).
    for (l, r) in &join.on {
        match (l.get_type(ls), r.get_type(rs)) {
            (Ok(a), Ok(b)) if a == b => {}
            _ => return Ok(None),
        }
    }
    let mut all = Vec::new();
    for c in split_conjunction(filter) {
        atoms(c, ls, rs, &mut all);
    }
    let lr = all
        .iter()
        .position(|a| matches!(a, Atom::Cmp(c, _) if c.lo_side == Side::Left));
    let rl = all
        .iter()
        .position(|a| matches!(a, Atom::Cmp(c, _) if c.lo_side == Side::Right));
    let (Some(lr), Some(rl)) = (lr, rl) else {
        return Ok(None);
    };
    let (Atom::Cmp(lr_cmp, _), Atom::Cmp(rl_cmp, _)) = (&all[lr], &all[rl]) else {
        return Ok(None);
    };
    let (left_start, right_end, end_inclusive) =
        (lr_cmp.lo.clone(), lr_cmp.hi.clone(), lr_cmp.inclusive);
    let (right_start, left_end, start_inclusive) =
        (rl_cmp.lo.clone(), rl_cmp.hi.clone(), rl_cmp.inclusive);
    let kind = if left_start == left_end || right_start == right_end {
        RangeKind::Point
    } else {
        RangeKind::Overlap
    };
    let range = RangeSpec {
        kind,
        left_start,
        left_end,
        right_start,
        right_end,
        start_inclusive,
        end_inclusive,
    };
    let residual = conjunction(all.into_iter().enumerate().filter_map(|(i, a)| {
        if i == lr || i == rl {
            return None;
        }
        Some(match a {
            Atom::Cmp(_, e) | Atom::Other(e) => e,
        })
    }));
    match PitJoin::try_new(
        Arc::clone(&join.left),
        Arc::clone(&join.right),
        join.on.clone(),
        range,
        residual,
        join_type,
        None,
    ) {
        Ok(node) => Ok(Some(node)),
        // The shape looked right but something (e.g. a type) is not
        // supported: leave the join to DataFusion.
        Err(_) => Ok(None),
    }
}
