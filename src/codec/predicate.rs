//! An Iceberg scan's pushed-down predicate back as DataFusion filters.
//!
//! iceberg-datafusion turns a scan's DataFusion filters into one Iceberg
//! [`Predicate`] and keeps only that; rebuilding the scan on the receiving
//! side goes through the provider again, which takes filters. So the codec
//! turns the predicate back into filters that convert to the same
//! predicate: `col <op> literal`, `IN`/`NOT IN` lists, `IS [NOT] NULL`,
//! `isnan`, `LIKE 'prefix%'`, `NOT`, `AND`, `OR`.
//!
//! Invariant: the filters never select fewer rows than the predicate. A
//! part that cannot be expressed is left out only where leaving it out
//! widens the filter (a conjunct at the top level); anywhere else the
//! enclosing top-level conjunct goes. That is safe because the provider
//! declares its filtering inexact: DataFusion re-applies the model's own
//! filters above the scan, so the predicate only prunes files and rows.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, col, lit};
use iceberg::expr::{Predicate, PredicateOperator};
use iceberg::spec::{Datum, PrimitiveLiteral, PrimitiveType};

/// The predicate as a list of conjuncts (empty: no pushed-down filter).
pub fn predicate_to_filters(predicate: &Predicate) -> Vec<Expr> {
    let mut conjuncts = Vec::new();
    split_and(predicate, &mut conjuncts);
    conjuncts.into_iter().filter_map(to_expr).collect()
}

fn split_and<'a>(p: &'a Predicate, out: &mut Vec<&'a Predicate>) {
    match p {
        Predicate::And(e) => {
            for input in e.inputs() {
                split_and(input, out);
            }
        }
        other => out.push(other),
    }
}

/// The exact filter of `p`, or `None` when some part has no filter form.
fn to_expr(p: &Predicate) -> Option<Expr> {
    match p {
        Predicate::AlwaysTrue => Some(lit(true)),
        Predicate::AlwaysFalse => Some(lit(false)),
        Predicate::And(e) => {
            let [a, b] = e.inputs();
            Some(to_expr(a)?.and(to_expr(b)?))
        }
        Predicate::Or(e) => {
            let [a, b] = e.inputs();
            Some(to_expr(a)?.or(to_expr(b)?))
        }
        Predicate::Not(e) => {
            let [a] = e.inputs();
            Some(Expr::Not(Box::new(to_expr(a)?)))
        }
        Predicate::Unary(u) => {
            let c = col(datafusion::common::Column::from_name(u.term().name()));
            match u.op() {
                PredicateOperator::IsNull => Some(c.is_null()),
                PredicateOperator::NotNull => Some(c.is_not_null()),
                PredicateOperator::IsNan => Some(datafusion::functions::math::expr_fn::isnan(c)),
                PredicateOperator::NotNan => Some(Expr::Not(Box::new(
                    datafusion::functions::math::expr_fn::isnan(c),
                ))),
                _ => None,
            }
        }
        Predicate::Binary(b) => {
            let c = col(datafusion::common::Column::from_name(b.term().name()));
            let value = b.literal();
            match b.op() {
                PredicateOperator::StartsWith | PredicateOperator::NotStartsWith => {
                    let PrimitiveLiteral::String(prefix) = value.literal() else {
                        return None;
                    };
                    if prefix.contains(['%', '_', '\\']) {
                        return None;
                    }
                    let pattern = lit(format!("{prefix}%"));
                    Some(if b.op() == PredicateOperator::StartsWith {
                        c.like(pattern)
                    } else {
                        c.not_like(pattern)
                    })
                }
                op => {
                    let v = lit(scalar(value)?);
                    Some(match op {
                        PredicateOperator::LessThan => c.lt(v),
                        PredicateOperator::LessThanOrEq => c.lt_eq(v),
                        PredicateOperator::GreaterThan => c.gt(v),
                        PredicateOperator::GreaterThanOrEq => c.gt_eq(v),
                        PredicateOperator::Eq => c.eq(v),
                        PredicateOperator::NotEq => c.not_eq(v),
                        _ => return None,
                    })
                }
            }
        }
        Predicate::Set(s) => {
            let c = col(datafusion::common::Column::from_name(s.term().name()));
            let mut values = s
                .literals()
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()?;
            // A set has no order; a stable list keeps encodings reproducible.
            values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            let list = values.into_iter().map(lit).collect();
            match s.op() {
                PredicateOperator::In => Some(c.in_list(list, false)),
                PredicateOperator::NotIn => Some(c.in_list(list, true)),
                _ => None,
            }
        }
    }
}

/// The scalar iceberg-datafusion converts into `d` (the inverse of its
/// conversion for the types it converts).
fn scalar(d: &Datum) -> Option<ScalarValue> {
    Some(match (d.data_type(), d.literal()) {
        (PrimitiveType::Boolean, PrimitiveLiteral::Boolean(v)) => ScalarValue::Boolean(Some(*v)),
        (PrimitiveType::Int, PrimitiveLiteral::Int(v)) => ScalarValue::Int32(Some(*v)),
        (PrimitiveType::Long, PrimitiveLiteral::Long(v)) => ScalarValue::Int64(Some(*v)),
        (PrimitiveType::Float, PrimitiveLiteral::Float(v)) => ScalarValue::Float32(Some(v.0)),
        (PrimitiveType::Double, PrimitiveLiteral::Double(v)) => ScalarValue::Float64(Some(v.0)),
        (PrimitiveType::String, PrimitiveLiteral::String(v)) => ScalarValue::Utf8(Some(v.clone())),
        (PrimitiveType::Binary, PrimitiveLiteral::Binary(v)) => {
            ScalarValue::Binary(Some(v.clone()))
        }
        (PrimitiveType::Date, PrimitiveLiteral::Int(v)) => ScalarValue::Date32(Some(*v)),
        (PrimitiveType::Timestamp, PrimitiveLiteral::Long(v)) => {
            ScalarValue::TimestampMicrosecond(Some(*v), None)
        }
        (PrimitiveType::Timestamptz, PrimitiveLiteral::Long(v)) => {
            ScalarValue::TimestampMicrosecond(Some(*v), Some("+00:00".into()))
        }
        (PrimitiveType::TimestampNs, PrimitiveLiteral::Long(v)) => {
            ScalarValue::TimestampNanosecond(Some(*v), None)
        }
        (PrimitiveType::TimestamptzNs, PrimitiveLiteral::Long(v)) => {
            ScalarValue::TimestampNanosecond(Some(*v), Some("+00:00".into()))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::expr::Reference;
    use iceberg_datafusion::physical_plan::convert_filters_to_predicate;

    #[test]
    fn every_supported_shape_converts_back_to_the_same_predicate() {
        let cases = vec![
            Reference::new("id").less_than(Datum::long(10)),
            Reference::new("id")
                .greater_than_or_equal_to(Datum::long(3))
                .and(Reference::new("name").equal_to(Datum::string("bike"))),
            Reference::new("id")
                .equal_to(Datum::long(1))
                .or(Reference::new("id").not_equal_to(Datum::long(2))),
            Reference::new("id").is_in([Datum::long(1), Datum::long(5), Datum::long(9)]),
            Reference::new("id").is_not_in([Datum::long(4), Datum::long(6)]),
            Reference::new("name").is_null(),
            Reference::new("name").is_not_null(),
            !Reference::new("price").less_than_or_equal_to(Datum::double(2.5)),
            Reference::new("name").starts_with(Datum::string("hel")),
            Reference::new("name").not_starts_with(Datum::string("x")),
            Reference::new("price").is_nan(),
            Reference::new("sold_on").greater_than(Datum::date(19000)),
            Reference::new("loaded_at").less_than(Datum::timestamp_micros(1_700_000_000_000_000)),
            Reference::new("active").equal_to(Datum::bool(true)),
            Reference::new("n").less_than(Datum::int(7)),
            Reference::new("photo").equal_to(Datum::binary(vec![1, 2])),
        ];
        for p in cases {
            let filters = predicate_to_filters(&p);
            assert_eq!(
                convert_filters_to_predicate(&filters),
                Some(p.clone()),
                "{p} via {filters:?}"
            );
        }
        assert!(predicate_to_filters(&Predicate::AlwaysTrue) == vec![lit(true)]);
    }

    #[test]
    fn an_inexpressible_part_widens_never_narrows() {
        let odd = Reference::new("id").equal_to(Datum::uuid(uuid::Uuid::nil()));
        let small = Reference::new("id").less_than(Datum::long(10));
        // A top-level conjunct goes alone; the rest still prunes.
        assert_eq!(
            predicate_to_filters(&small.clone().and(odd.clone())),
            vec![col("id").lt(lit(10i64))]
        );
        // Inside OR or NOT, the whole conjunct goes.
        assert!(predicate_to_filters(&small.clone().or(odd.clone())).is_empty());
        assert!(predicate_to_filters(&!(small.and(odd))).is_empty());
        // A prefix with a wildcard has no LIKE form.
        let wild = Reference::new("name").starts_with(Datum::string("a%b"));
        assert!(predicate_to_filters(&wild).is_empty());
    }
}
