//! The PIT join's range condition with physical expressions: what the
//! planner builds, the operator holds and its streams evaluate. Below
//! [`super::exec`], [`super::stream`] and [`super::output`], which all use it.

use datafusion::physical_expr::PhysicalExprRef;

use super::logical::RangeKind;

/// The range condition with physical expressions; see
/// [`super::logical::RangeSpec`] for the semantics.
#[derive(Debug, Clone)]
pub struct PhysicalRange {
    /// Display hint.
    pub kind: RangeKind,
    /// Left expression compared with `right_end`.
    pub left_start: PhysicalExprRef,
    /// Left expression compared with `right_start`.
    pub left_end: PhysicalExprRef,
    /// Right expression compared with `left_end`.
    pub right_start: PhysicalExprRef,
    /// Right expression compared with `left_start`.
    pub right_end: PhysicalExprRef,
    /// `right_start <= left_end` when true, `<` when false.
    pub start_inclusive: bool,
    /// `left_start <= right_end` when true, `<` when false.
    pub end_inclusive: bool,
}
