//! The logical `PitJoin` node.
//!
//! A `PitJoin` joins `left` and `right` on equality keys `on` plus a range
//! condition in canonical form (see [`RangeSpec`]):
//!
//! ```text
//!   l.on_i = r.on_i (for all i)
//!   AND right_start <(=) left_end
//!   AND left_start  <(=) right_end
//!   AND filter (residual, optional)
//! ```
//!
//! Output schema: left columns, then right columns (nullable for a left
//! join), then, if requested, the two intersection columns
//! `max(left_start, right_start)` and `min(left_end, right_end)`.
//!
//! Invariants (checked by [`PitJoin::try_new`]): at least one key pair; each
//! key pair has one Arrow type; each range comparison compares two operands
//! of the same supported bound type ([`super::bounds`]); left expressions only
//! reference the left input, right expressions only the right input; with
//! intersection columns, all four bounds share one type.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::{DFSchema, DFSchemaRef, JoinType, Result, plan_err};
use datafusion::logical_expr::{
    Expr, ExprSchemable, Extension, LogicalPlan, UserDefinedLogicalNodeCore, build_join_schema,
};

use super::bounds::is_supported_bound_type;

/// Join types the PIT join supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PitJoinType {
    /// Only matching pairs.
    Inner,
    /// Matching pairs, plus every left row without a match once, NULL-padded.
    Left,
}

impl PitJoinType {
    /// The DataFusion join type with the same semantics.
    pub fn as_join_type(self) -> JoinType {
        match self {
            PitJoinType::Inner => JoinType::Inner,
            PitJoinType::Left => JoinType::Left,
        }
    }
}

impl fmt::Display for PitJoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PitJoinType::Inner => "Inner",
            PitJoinType::Left => "Left",
        })
    }
}

/// Which predicate shape the range came from (for display; the semantics are
/// fully described by the bounds and flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RangeKind {
    /// Interval overlap: `l.from < r.to AND l.to > r.from`.
    Overlap,
    /// Point in interval: `l.ts >= r.from AND l.ts < r.to` (or `BETWEEN`);
    /// one side's start and end are the same expression.
    Point,
}

/// The canonical range condition:
/// `right_start (< or <=) left_end AND left_start (< or <=) right_end`.
///
/// * interval overlap `l.vf < r.vt AND l.vt > r.vf`: `left_start = l.vf`,
///   `left_end = l.vt`, `right_start = r.vf`, `right_end = r.vt`, both strict;
/// * point `l.ts >= r.vf AND l.ts < r.vt`: `left_start = left_end = l.ts`,
///   `start_inclusive = true`, `end_inclusive = false`;
/// * `l.ts BETWEEN r.vf AND r.vt`: as the point form, both inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct RangeSpec {
    /// Display hint.
    pub kind: RangeKind,
    /// Left expression compared with `right_end`.
    pub left_start: Expr,
    /// Left expression compared with `right_start`.
    pub left_end: Expr,
    /// Right expression compared with `left_end`.
    pub right_start: Expr,
    /// Right expression compared with `left_start`.
    pub right_end: Expr,
    /// `right_start <= left_end` when true, `<` when false.
    pub start_inclusive: bool,
    /// `left_start <= right_end` when true, `<` when false.
    pub end_inclusive: bool,
}

impl RangeSpec {
    /// Interval overlap of left `[lf, lt)` with right `[rf, rt)` (strict on
    /// both comparisons: touching intervals do not overlap).
    pub fn overlap(lf: Expr, lt: Expr, rf: Expr, rt: Expr) -> Self {
        Self {
            kind: RangeKind::Overlap,
            left_start: lf,
            left_end: lt,
            right_start: rf,
            right_end: rt,
            start_inclusive: false,
            end_inclusive: false,
        }
    }

    /// Point form: `rf <= ts AND ts < rt`.
    pub fn point(ts: Expr, rf: Expr, rt: Expr) -> Self {
        Self {
            kind: RangeKind::Point,
            left_start: ts.clone(),
            left_end: ts,
            right_start: rf,
            right_end: rt,
            start_inclusive: true,
            end_inclusive: false,
        }
    }

    /// Override the strictness flags.
    pub fn with_inclusive(mut self, start_inclusive: bool, end_inclusive: bool) -> Self {
        self.start_inclusive = start_inclusive;
        self.end_inclusive = end_inclusive;
        self
    }

    /// The range as an SQL-like predicate.
    pub fn to_predicate_string(&self) -> String {
        let op = |inclusive: bool| if inclusive { "<=" } else { "<" };
        format!(
            "{} {} {} AND {} {} {}",
            self.right_start,
            op(self.start_inclusive),
            self.left_end,
            self.left_start,
            op(self.end_inclusive),
            self.right_end
        )
    }
}

/// The logical PIT join node. Build with [`PitJoin::try_new`] and wrap with
/// [`PitJoin::into_plan`].
#[derive(Debug, Clone)]
pub struct PitJoin {
    /// Left input (all its rows survive in a left join).
    pub left: Arc<LogicalPlan>,
    /// Right input (the versioned side).
    pub right: Arc<LogicalPlan>,
    /// Equality keys `(left expr, right expr)`; NULL never equals NULL.
    pub on: Vec<(Expr, Expr)>,
    /// The range condition.
    pub range: RangeSpec,
    /// Residual predicate over left ++ right columns.
    pub filter: Option<Expr>,
    /// Inner or left.
    pub join_type: PitJoinType,
    /// Names of the appended intersection columns `(from, to)`, if any.
    pub intersection: Option<(String, String)>,
    join_schema: DFSchemaRef,
    schema: DFSchemaRef,
}

impl PartialEq for PitJoin {
    fn eq(&self, other: &Self) -> bool {
        self.left == other.left
            && self.right == other.right
            && self.on == other.on
            && self.range == other.range
            && self.filter == other.filter
            && self.join_type == other.join_type
            && self.intersection == other.intersection
    }
}

impl Eq for PitJoin {}

impl Hash for PitJoin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.left.hash(state);
        self.right.hash(state);
        self.on.hash(state);
        self.range.hash(state);
        self.filter.hash(state);
        self.join_type.hash(state);
        self.intersection.hash(state);
    }
}

impl PartialOrd for PitJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.left.partial_cmp(&other.left) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        match self.right.partial_cmp(&other.right) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        match self.on.partial_cmp(&other.on) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        match self.range.partial_cmp(&other.range) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        match self.filter.partial_cmp(&other.filter) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        match self.join_type.partial_cmp(&other.join_type) {
            Some(Ordering::Equal) => {}
            ord => return ord,
        }
        self.intersection.partial_cmp(&other.intersection)
    }
}

/// Check that every column `expr` references resolves in `schema`.
fn check_side(expr: &Expr, schema: &DFSchema, what: &str) -> Result<()> {
    for col in expr.column_refs() {
        if schema.index_of_column(col).is_err() {
            return plan_err!("PitJoin: {what} `{expr}` references `{col}` from the wrong side");
        }
    }
    Ok(())
}

fn bound_type(expr: &Expr, schema: &DFSchema, what: &str) -> Result<DataType> {
    check_side(expr, schema, what)?;
    let data_type = expr.get_type(schema)?;
    if !is_supported_bound_type(&data_type) {
        return plan_err!("PitJoin: {what} `{expr}` has unsupported type {data_type}");
    }
    Ok(data_type)
}

impl PitJoin {
    /// Validate and build the node.
    pub fn try_new(
        left: Arc<LogicalPlan>,
        right: Arc<LogicalPlan>,
        on: Vec<(Expr, Expr)>,
        range: RangeSpec,
        filter: Option<Expr>,
        join_type: PitJoinType,
        intersection: Option<(String, String)>,
    ) -> Result<Self> {
        let ls = left.schema();
        let rs = right.schema();
        if on.is_empty() {
            return plan_err!("PitJoin needs at least one equality key");
        }
        for (l, r) in &on {
            check_side(l, ls, "left key")?;
            check_side(r, rs, "right key")?;
            let lt = l.get_type(ls)?;
            let rt = r.get_type(rs)?;
            if lt != rt {
                return plan_err!("PitJoin: key `{l}` ({lt}) and `{r}` ({rt}) differ in type");
            }
        }
        let t_ls = bound_type(&range.left_start, ls, "left start")?;
        let t_le = bound_type(&range.left_end, ls, "left end")?;
        let t_rs = bound_type(&range.right_start, rs, "right start")?;
        let t_re = bound_type(&range.right_end, rs, "right end")?;
        if t_ls != t_re {
            return plan_err!(
                "PitJoin: left start ({t_ls}) and right end ({t_re}) must have the same type"
            );
        }
        if t_rs != t_le {
            return plan_err!(
                "PitJoin: right start ({t_rs}) and left end ({t_le}) must have the same type"
            );
        }
        let join_schema = Arc::new(build_join_schema(ls, rs, &join_type.as_join_type())?);
        if let Some(f) = &filter {
            check_side(f, &join_schema, "filter")?;
            let t = f.get_type(&join_schema)?;
            if t != DataType::Boolean && t != DataType::Null {
                return plan_err!("PitJoin: filter `{f}` is {t}, not boolean");
            }
        }
        let schema = match &intersection {
            None => Arc::clone(&join_schema),
            Some((from, to)) => {
                if t_ls != t_rs {
                    return plan_err!(
                        "PitJoin: intersection columns need all bounds of one type, got {t_ls} and {t_rs}"
                    );
                }
                let extra = DFSchema::from_unqualified_fields(
                    vec![
                        Field::new(from, t_ls.clone(), true),
                        Field::new(to, t_ls, true),
                    ]
                    .into(),
                    Default::default(),
                )?;
                Arc::new(join_schema.join(&extra)?)
            }
        };
        Ok(Self {
            left,
            right,
            on,
            range,
            filter,
            join_type,
            intersection,
            join_schema,
            schema,
        })
    }

    /// Wrap into a `LogicalPlan::Extension`.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }

    /// Schema of left ++ right (without intersection columns): the schema the
    /// residual filter is evaluated against.
    pub fn join_schema(&self) -> &DFSchemaRef {
        &self.join_schema
    }

    fn required_columns(
        &self,
        expr: &Expr,
        schema: &DFSchema,
        out: &mut BTreeSet<usize>,
    ) -> Option<()> {
        for col in expr.column_refs() {
            out.insert(schema.index_of_column(col).ok()?);
        }
        Some(())
    }
}

impl UserDefinedLogicalNodeCore for PitJoin {
    fn name(&self) -> &str {
        "PitJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![self.left.as_ref(), self.right.as_ref()]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// Order: left keys, right keys, left_start, left_end, right_start,
    /// right_end, then the filter if any.
    fn expressions(&self) -> Vec<Expr> {
        let mut exprs: Vec<Expr> = self.on.iter().map(|(l, _)| l.clone()).collect();
        exprs.extend(self.on.iter().map(|(_, r)| r.clone()));
        exprs.push(self.range.left_start.clone());
        exprs.push(self.range.left_end.clone());
        exprs.push(self.range.right_start.clone());
        exprs.push(self.range.right_end.clone());
        if let Some(f) = &self.filter {
            exprs.push(f.clone());
        }
        exprs
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let on = self
            .on
            .iter()
            .map(|(l, r)| format!("{l} = {r}"))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "PitJoin: type={}, on=[{on}], range={:?}({})",
            self.join_type,
            self.range.kind,
            self.range.to_predicate_string()
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter={filter}")?;
        }
        if let Some((from, to)) = &self.intersection {
            write!(f, ", intersection=[{from}, {to}]")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let n = self.on.len();
        let expected = 2 * n + 4 + usize::from(self.filter.is_some());
        if exprs.len() != expected || inputs.len() != 2 {
            return plan_err!(
                "PitJoin: expected {expected} expressions and 2 inputs, got {} and {}",
                exprs.len(),
                inputs.len()
            );
        }
        let mut exprs = exprs.into_iter();
        let lefts: Vec<Expr> = exprs.by_ref().take(n).collect();
        let rights: Vec<Expr> = exprs.by_ref().take(n).collect();
        let mut next = || exprs.next();
        let (Some(left_start), Some(left_end), Some(right_start), Some(right_end)) =
            (next(), next(), next(), next())
        else {
            return plan_err!("PitJoin: missing range expressions");
        };
        let filter = if self.filter.is_some() { next() } else { None };
        let range = RangeSpec {
            kind: self.range.kind,
            left_start,
            left_end,
            right_start,
            right_end,
            start_inclusive: self.range.start_inclusive,
            end_inclusive: self.range.end_inclusive,
        };
        let mut inputs = inputs.into_iter();
        let (Some(left), Some(right)) = (inputs.next(), inputs.next()) else {
            return plan_err!("PitJoin: missing inputs");
        };
        Self::try_new(
            Arc::new(left),
            Arc::new(right),
            lefts.into_iter().zip(rights).collect(),
            range,
            filter,
            self.join_type,
            self.intersection.clone(),
        )
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let n_left = self.left.schema().fields().len();
        let n_join = self.join_schema.fields().len();
        let ls = self.left.schema();
        let rs = self.right.schema();
        let mut left = BTreeSet::new();
        let mut right = BTreeSet::new();
        for &i in output_columns {
            if i < n_left {
                left.insert(i);
            } else if i < n_join {
                right.insert(i - n_left);
            }
            // Intersection columns only need the bounds, added below.
        }
        for (l, r) in &self.on {
            self.required_columns(l, ls, &mut left)?;
            self.required_columns(r, rs, &mut right)?;
        }
        self.required_columns(&self.range.left_start, ls, &mut left)?;
        self.required_columns(&self.range.left_end, ls, &mut left)?;
        self.required_columns(&self.range.right_start, rs, &mut right)?;
        self.required_columns(&self.range.right_end, rs, &mut right)?;
        if let Some(f) = &self.filter {
            let mut both = BTreeSet::new();
            self.required_columns(f, &self.join_schema, &mut both)?;
            for i in both {
                if i < n_left {
                    left.insert(i);
                } else {
                    right.insert(i - n_left);
                }
            }
        }
        Some(vec![
            left.into_iter().collect(),
            right.into_iter().collect(),
        ])
    }
}
