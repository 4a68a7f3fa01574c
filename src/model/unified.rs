//! The unified bridge `dar._bridge__as_of`: every event bridge stacked into
//! one table (UNION ALL by name).
//!
//! Columns: `peripheral`, `_pit_hook__bridge`, every `_pit_hook__*` column of
//! any event bridge (sorted), `_hook__epoch__date`, every `event__*` flag
//! (sorted), every `measure__*` column (sorted), then the five
//! `bridge__record_*` columns. Frames' own `_hook__*` columns are dropped.
//! A PIT hook column an event bridge lacks, or holds NULL in, becomes
//! `ghost_record`, and so does a missing date hook, so every PIT hook joins
//! exactly one peripheral row. Flags and measures of other peripherals stay
//! NULL.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Union, col, lit};

use super::bridge::{PERIPHERAL, PIT_BRIDGE, record_columns};
use super::event::EPOCH_DATE;
use super::peripheral::GHOST_RECORD;
use crate::error::{Error, Result};

/// The unified bridge's table name (namespace `dar`).
pub const UNIFIED: &str = "_bridge__as_of";

/// The unified bridge over the event bridges (`(name, plan)` pairs).
pub fn unified_plan(events: Vec<(String, LogicalPlan)>) -> Result<LogicalPlan> {
    let mut pits = BTreeSet::new();
    let mut flags: BTreeSet<(String, DataType)> = BTreeSet::new();
    let mut measures: BTreeSet<(String, DataType)> = BTreeSet::new();
    for (_, p) in &events {
        for (_, f) in p.schema().iter() {
            let n = f.name();
            if n.starts_with("_pit_hook__") && n != PIT_BRIDGE {
                pits.insert(n.clone());
            } else if n.starts_with("event__") {
                flags.insert((n.clone(), f.data_type().clone()));
            } else if n.starts_with("measure__") {
                measures.insert((n.clone(), f.data_type().clone()));
            }
        }
    }
    for set in [&flags, &measures] {
        let names: Vec<&String> = set.iter().map(|(n, _)| n).collect();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(format!(
                "unified bridge: column {} has different types in different event bridges",
                w[0]
            )));
        }
    }
    // Branches known to be empty (an incremental build restricts unchanged
    // event bridges to nothing) add no rows, only planning work: 58 wide
    // projections. They are left out once the columns are known; one is
    // kept when all are empty, for the schema.
    let n = events.len();
    let mut empty = 0;
    let mut branches: Vec<Arc<LogicalPlan>> = Vec::new();
    for (name, plan) in events {
        if is_empty(&plan) {
            empty += 1;
            if !branches.is_empty() || empty < n {
                continue;
            }
        }
        let has = |c: &str| plan.schema().fields().iter().any(|f| f.name() == c);
        let ghost_or = |c: &str| {
            if has(c) {
                coalesce(vec![col(c), lit(GHOST_RECORD)]).alias(c)
            } else {
                lit(GHOST_RECORD).alias(c)
            }
        };
        let typed = |c: &str, t: &DataType| -> Result<Expr> {
            Ok(if has(c) {
                col(c)
            } else {
                lit(ScalarValue::try_from(t)?).alias(c)
            })
        };
        let mut e: Vec<Expr> = vec![col(PERIPHERAL), col(PIT_BRIDGE)];
        e.extend(pits.iter().map(|c| ghost_or(c)));
        e.push(ghost_or(EPOCH_DATE));
        for (c, t) in flags.iter().chain(measures.iter()) {
            e.push(typed(c, t)?);
        }
        e.extend(record_columns().iter().map(|c| col(c.as_str())));
        let p = LogicalPlanBuilder::from(plan)
            .project(e)
            .map_err(|e| Error::from(e).context(format!("unified bridge: event bridge {name}")))?
            .build()?;
        branches.push(Arc::new(p));
    }
    // One n-ary union: nested binary unions cost the optimizer a
    // re-coercion of every wide branch per level when it flattens them.
    match branches.len() {
        0 => Err(Error::invalid("unified bridge: no event bridges")),
        1 => Ok(Arc::unwrap_or_clone(branches.remove(0))),
        _ => Ok(LogicalPlan::Union(Union::try_new_with_loose_types(
            branches,
        )?)),
    }
}

/// The unified bridge's rows of one batch `b` of event bridge `name`,
/// computed directly on the batch: what [`unified_plan`] gives over a scan
/// of it, with `schema` its output schema (built over all event bridges).
/// An incremental build recomputes a few thousand rows of ~160 columns,
/// which the plan took longer to plan than to run; batches are
/// independent, so a large recompute streams through here one at a time.
pub fn unified_batch(
    schema: &arrow::datatypes::SchemaRef,
    name: &str,
    b: &arrow::array::RecordBatch,
) -> Result<arrow::array::RecordBatch> {
    use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
    let records = record_columns();
    let n = b.num_rows();
    let column = |c: &str| b.column_by_name(c);
    // One array of ghost records, shared by every hook column the
    // event bridge lacks (~150 of them): building one per column was
    // most of this function's time and memory.
    let ghosts: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
        GHOST_RECORD,
        n,
    )));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let c = f.name().as_str();
        let array: ArrayRef =
            if c == PERIPHERAL || c == PIT_BRIDGE || records.iter().any(|r| r == c) {
                column(c).cloned().ok_or_else(|| {
                    Error::invalid(format!(
                        "unified bridge: event bridge {name} has no column {c}"
                    ))
                })?
            } else if (c.starts_with("_pit_hook__") && c != PIT_BRIDGE) || c == EPOCH_DATE {
                // A missing or NULL hook joins the ghost record.
                match column(c) {
                    None => Arc::clone(&ghosts),
                    Some(a) if a.null_count() == 0 => arrow::compute::cast(a, &DataType::Utf8)?,
                    Some(a) => {
                        let a = arrow::compute::cast(a, &DataType::Utf8)?;
                        let a = a
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .ok_or_else(|| Error::internal("a hook column is not text"))?;
                        Arc::new(
                            a.iter()
                                .map(|v| Some(v.unwrap_or(GHOST_RECORD)))
                                .collect::<StringArray>(),
                        )
                    }
                }
            } else if c.starts_with("event__") || c.starts_with("measure__") {
                match column(c) {
                    None => new_null_array(f.data_type(), n),
                    Some(a) => a.clone(),
                }
            } else {
                return Err(Error::internal(format!(
                    "unified bridge: column {c} of no known kind"
                )));
            };
        let array = if array.data_type() == f.data_type() {
            array
        } else {
            arrow::compute::cast(&array, f.data_type())?
        };
        columns.push(array);
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| Error::from(e).context(format!("unified bridge rows of event bridge {name}")))
}

/// A plan that returns no rows by construction: an empty relation, or a
/// filter on the literal `false`.
fn is_empty(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::EmptyRelation(e) => !e.produce_one_row,
        LogicalPlan::Filter(f) => matches!(
            &f.predicate,
            Expr::Literal(ScalarValue::Boolean(Some(false)), _)
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::table_scan;

    /// [`unified_batch`] of every batch of the given event bridges.
    fn unified_rows(
        schema: &arrow::datatypes::SchemaRef,
        events: &[(String, Vec<arrow::array::RecordBatch>)],
    ) -> Result<Vec<arrow::array::RecordBatch>> {
        let mut out = Vec::new();
        for (name, batches) in events {
            for b in batches {
                out.push(unified_batch(schema, name, b)?);
            }
        }
        Ok(out)
    }

    fn event(name: &str, pit: &str, flag: &str) -> LogicalPlan {
        let mut fields = vec![
            Field::new(PERIPHERAL, DataType::Utf8, false),
            Field::new(PIT_BRIDGE, DataType::Utf8, true),
            Field::new(pit, DataType::Utf8, true),
            Field::new(flag, DataType::Boolean, true),
        ];
        fields.extend(
            record_columns()
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true)),
        );
        table_scan(Some(name), &Schema::new(fields), None)
            .and_then(|b| b.build())
            .expect("scan plan")
    }

    fn events(empty: &[bool]) -> Vec<(String, LogicalPlan)> {
        ["a", "b", "c"]
            .iter()
            .zip(empty)
            .map(|(n, e)| {
                let p = event(
                    n,
                    &format!("_pit_hook__{n}"),
                    &format!("event__{n}__modified"),
                );
                let p = if *e {
                    LogicalPlanBuilder::from(p)
                        .filter(lit(false))
                        .and_then(|b| b.build())
                        .expect("filter")
                } else {
                    p
                };
                (n.to_string(), p)
            })
            .collect()
    }

    fn unions(plan: &LogicalPlan) -> usize {
        let own = usize::from(matches!(plan, LogicalPlan::Union(_)));
        own + plan.inputs().into_iter().map(unions).sum::<usize>()
    }

    /// Rows of an event bridge with the schema of `event(name, pit, flag)`:
    /// (bridge hook, own PIT hook or NULL, flag).
    fn event_rows(
        name: &str,
        rows: &[(&str, Option<&str>, Option<bool>)],
    ) -> arrow::array::RecordBatch {
        use arrow::array::{ArrayRef, BooleanArray, StringArray};
        let plan = event(
            name,
            &format!("_pit_hook__{name}"),
            &format!("event__{name}__modified"),
        );
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let text = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let n = rows.len();
        let mut columns = vec![
            text(vec![Some(format!("adventure_works__{name}")); n]),
            text(rows.iter().map(|r| Some(r.0.to_string())).collect()),
            text(rows.iter().map(|r| r.1.map(str::to_string)).collect()),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as ArrayRef,
        ];
        for (i, _) in record_columns().iter().enumerate() {
            columns.push(text(vec![Some(format!("r{i}")); n]));
        }
        arrow::array::RecordBatch::try_new(schema, columns).expect("event rows")
    }

    #[tokio::test]
    async fn unified_rows_equal_the_plan_over_the_same_rows() {
        use datafusion::datasource::{MemTable, provider_as_source};
        let a = event_rows("a", &[("a1", Some("pa1"), Some(true)), ("a2", None, None)]);
        let b = event_rows("b", &[("b1", Some("pb1"), Some(false))]);
        let scan = |name: &str, batch: &arrow::array::RecordBatch| {
            let table =
                MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).expect("table");
            LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)
                .and_then(|b| b.build())
                .expect("scan")
        };
        let plan = unified_plan(vec![
            ("a".to_string(), scan("a", &a)),
            ("b".to_string(), scan("b", &b)),
        ])
        .expect("plan");
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let ctx = datafusion::prelude::SessionContext::new();
        let planned = ctx
            .execute_logical_plan(plan)
            .await
            .expect("execute")
            .collect()
            .await
            .expect("collect");
        let direct = unified_rows(
            &schema,
            &[("a".to_string(), vec![a]), ("b".to_string(), vec![b])],
        )
        .expect("rows");
        let lines = |batches: &[arrow::array::RecordBatch]| {
            let text = arrow::util::pretty::pretty_format_batches(batches)
                .expect("format")
                .to_string();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(direct[0].schema(), schema);
        assert_eq!(lines(&direct), lines(&planned));
        // The NULL own hook, the other peripheral's hook and the missing
        // date hook of every row became the ghost record: 1 + 3 + 3.
        let shown = lines(&direct).join("\n");
        assert_eq!(shown.matches(GHOST_RECORD).count(), 7, "{shown}");
    }

    #[test]
    fn known_empty_branches_are_left_out_with_the_same_schema() {
        let full = unified_plan(events(&[false, false, false])).expect("full");
        assert_eq!(unions(&full), 1, "one union of all branches");
        assert_eq!(full.inputs().len(), 3);
        let names: Vec<String> = full
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            &names[..5],
            [
                "peripheral",
                "_pit_hook__bridge",
                "_pit_hook__a",
                "_pit_hook__b",
                "_pit_hook__c"
            ]
        );
        let one = unified_plan(events(&[true, false, true])).expect("one branch");
        assert_eq!(unions(&one), 0);
        assert_eq!(one.schema().as_arrow(), full.schema().as_arrow());
        let none = unified_plan(events(&[true, true, true])).expect("no branch");
        assert_eq!(unions(&none), 0);
        assert_eq!(none.schema().as_arrow(), full.schema().as_arrow());
    }
}
