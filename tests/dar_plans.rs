//! DAR plans from config: every join of a bridge or event plan is our PIT
//! join (logical, optimized and physical), the dependency graph's shape and
//! its validation errors, and the measure config's validation.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use lakehouse::join::PitJoin;
use lakehouse::model::Project;
use lakehouse::model::config::ModelConfig;
use lakehouse::model::dar::DarKind;
use lakehouse::model::graph::DependencyGraph;
use lakehouse::model::measures::MeasureConfig;
use lakehouse::model::render::dar_plans;

/// (built-in joins, PIT joins) in a logical plan.
fn count_joins(plan: &LogicalPlan) -> (usize, usize) {
    let (mut builtin, mut pit) = (0, 0);
    plan.apply(|p| {
        match p {
            LogicalPlan::Join(_) => builtin += 1,
            LogicalPlan::Extension(e) if e.node.as_any().downcast_ref::<PitJoin>().is_some() => {
                pit += 1
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    (builtin, pit)
}

fn physical_joins(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<String>) {
    if plan.name().contains("Join") {
        out.push(plan.name().to_string());
    }
    for c in plan.children() {
        physical_joins(c, out);
    }
}

#[tokio::test]
async fn every_bridge_and_event_join_is_a_pit_join() {
    let project = Project::adventure_works().unwrap();
    let graph = DependencyGraph::new(&project.model).unwrap();
    let ctx = lakehouse::query::session_context();
    let state = ctx.state();
    let models = dar_plans(&project).unwrap();
    assert_eq!(models.len(), 58 * 3 + 2);
    let mut checked = 0;
    for (model, plan) in &models {
        let expected = match model.kind {
            DarKind::Bridge(i) => graph.nodes[i].dependencies.len(),
            DarKind::Event(i) => {
                let related = project
                    .measures
                    .of(&project.model.frames[i].name)
                    .iter()
                    .filter_map(|m| m.via.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                1 + related
            }
            _ => continue,
        };
        let name = model.qualified();
        assert_eq!(count_joins(plan), (0, expected), "{name}: logical plan");
        let optimized = state.optimize(plan).unwrap();
        assert_eq!(count_joins(&optimized), (0, expected), "{name}: optimized");
        let physical = state.create_physical_plan(plan).await.unwrap();
        let mut joins = Vec::new();
        physical_joins(&physical, &mut joins);
        assert_eq!(joins.len(), expected, "{name}: {joins:?}");
        assert!(
            joins.iter().all(|j| j == "PitJoinExec"),
            "{name}: {joins:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 116);
}

#[test]
fn adventure_works_graph_shape_and_precedence() {
    let project = Project::adventure_works().unwrap();
    let g = DependencyGraph::new(&project.model).unwrap();
    let idx = |n: &str| {
        project
            .model
            .frames
            .iter()
            .position(|f| f.name == format!("frame__adventure_works__{n}"))
            .unwrap()
    };
    // The longest chain: details -> headers -> customers -> stores ->
    // sales persons -> territories -> country regions.
    assert_eq!(g.nodes[idx("sales_order_details")].level, 6);
    assert_eq!(g.levels.len(), 7);
    assert_eq!(g.nodes[idx("country_regions")].level, 0);
    // Parents always sit in lower levels.
    for n in &g.nodes {
        for d in &n.dependencies {
            assert!(g.nodes[d.parent].level < n.level);
        }
    }
    let headers = &g.nodes[idx("sales_order_headers")];
    let hooks: Vec<&str> = headers
        .dependencies
        .iter()
        .map(|d| d.hook.as_str())
        .collect();
    assert_eq!(
        hooks,
        [
            "_hook__customer",
            "_hook__person__sales",
            "_hook__territory__sales",
            "_hook__ship_method",
            "_hook__credit_card",
            "_hook__currency_rate"
        ]
    );
    // The order's own sales person (one edge) beats the customer's store's
    // (three edges), even though customers come first in config order.
    let person = headers
        .columns
        .iter()
        .find(|c| c.name == "_pit_hook__person__sales")
        .unwrap();
    assert_eq!(person.distance, 1);
    assert_eq!(person.candidates[0].dependency, 1);
    assert_eq!(
        person
            .candidates
            .iter()
            .map(|c| c.distance)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    let territory = headers
        .columns
        .iter()
        .find(|c| c.name == "_pit_hook__territory__sales")
        .unwrap();
    assert_eq!(
        territory
            .candidates
            .iter()
            .map(|c| (c.dependency, c.distance))
            .collect::<Vec<_>>(),
        [(2, 1), (0, 2), (1, 2)]
    );
    // Own PIT hook first, every name once.
    assert_eq!(headers.columns[0].name, "_pit_hook__order__sales");
    let mut names: Vec<_> = headers.columns.iter().map(|c| &c.name).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
}

const CONCEPTS: &str = "concepts:\n  - { name: thing, keysets: [a__src, b__src, c__src] }\n";

/// A hook: (name, keyset, primary).
type HookSpec<'a> = (&'a str, &'a str, bool);

fn frames_yaml(hooks: &[(&str, &[HookSpec])]) -> String {
    let mut s = String::from("frames:\n");
    for (name, hs) in hooks {
        s.push_str(&format!(
            "  - name: frame__src__{name}\n    source_table: raw__src__{name}\n    column_prefix: {name}\n    hooks:\n"
        ));
        for (h, keyset, primary) in *hs {
            s.push_str(&format!(
                "      - {{ name: {h}, keyset: {keyset}, business_key: id, primary: {primary} }}\n"
            ));
        }
    }
    s
}

#[test]
fn cycles_are_reported_with_their_path() {
    let frames = frames_yaml(&[
        (
            "a",
            &[("_hook__a", "a__src", true), ("_hook__c", "c__src", false)],
        ),
        (
            "b",
            &[("_hook__b", "b__src", true), ("_hook__a", "a__src", false)],
        ),
        (
            "c",
            &[("_hook__c", "c__src", true), ("_hook__b", "b__src", false)],
        ),
    ]);
    let config = ModelConfig::from_yaml(CONCEPTS, "concepts.yaml", &frames, "frames.yaml").unwrap();
    let err = DependencyGraph::new(&config).unwrap_err().to_string();
    assert!(err.contains("frames.yaml"), "{err}");
    assert!(
        err.contains(
            "dependency cycle frame__src__a -> frame__src__c -> frame__src__b -> frame__src__a"
        ),
        "{err}"
    );
}

#[test]
fn ambiguous_providers_are_rejected() {
    let frames = frames_yaml(&[
        ("a", &[("_hook__a", "a__src", true)]),
        ("b", &[("_hook__a", "a__src", true)]),
    ]);
    // The model config rejects a shared primary hook itself...
    let err = ModelConfig::from_yaml(CONCEPTS, "concepts.yaml", &frames, "frames.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already the primary hook of frame frame__src__a"),
        "{err}"
    );
    // ...and so does the graph, for frames assembled in code.
    let ok = frames_yaml(&[("a", &[("_hook__a", "a__src", true)])]);
    let config = ModelConfig::from_yaml(CONCEPTS, "concepts.yaml", &ok, "frames.yaml").unwrap();
    let mut twice = config.frames.clone();
    let mut b = twice[0].clone();
    b.name = "frame__src__b".into();
    twice.push(b);
    let err = DependencyGraph::from_frames(&twice, "frames.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hook _hook__a has two providers, frames frame__src__a and frame__src__b"),
        "{err}"
    );
}

#[test]
fn measure_config_errors_name_the_field() {
    let project = Project::adventure_works().unwrap();
    let bad = |yaml: &str| {
        let m = MeasureConfig::from_yaml(yaml, "measures.yaml").unwrap();
        project.clone().with_measures(m).unwrap_err().to_string()
    };
    let line = "frame__adventure_works__sales_order_details";
    let err = bad(&format!(
        "frames:\n  - frame: {line}\n    measures:\n      - {{ name: measure__x, value: line_total, via: _hook__nope, date: order_date }}\n"
    ));
    assert!(err.contains("measure measure__x, field `via`"), "{err}");
    assert!(err.contains("_hook__nope"), "{err}");
    let err = bad(&format!(
        "frames:\n  - frame: {line}\n    measures:\n      - {{ name: measure__x, value: carrier_tracking_number, date: modified_date }}\n"
    ));
    assert!(
        err.contains("field `value`") && err.contains("not numeric"),
        "{err}"
    );
    let err = bad(&format!(
        "frames:\n  - frame: {line}\n    measures:\n      - {{ name: measure__x, value: line_total, via: _hook__order__sales, date: status }}\n"
    ));
    assert!(
        err.contains("field `date`") && err.contains("not date"),
        "{err}"
    );
    let err = bad("frames:\n  - frame: frame__nope\n    measures: []\n");
    assert!(err.contains("unknown frame frame__nope"), "{err}");
}

#[tokio::test]
async fn calendar_ignores_rows_without_a_date() {
    use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::{MemTable, provider_as_source};
    use datafusion::logical_expr::LogicalPlanBuilder;
    use lakehouse::model::calendar::calendar_plan;

    let schema = Arc::new(Schema::new(vec![Field::new(
        "_hook__epoch__date",
        DataType::Utf8,
        true,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![
            Some("ghost_record"),
            Some("epoch__date|2016-02-29"),
            None,
        ]))],
    )
    .unwrap();
    let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
    let scan = LogicalPlanBuilder::scan("u", provider_as_source(Arc::new(table)), None)
        .unwrap()
        .build()
        .unwrap();
    let ctx = lakehouse::query::session_context();
    let batches = ctx
        .execute_logical_plan(calendar_plan(scan).unwrap())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 366, "the whole leap year 2016");
    let mut leap_day = None;
    for b in &batches {
        let dates = b
            .column_by_name("date")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let leap = b
            .column_by_name("is_leap_year")
            .unwrap()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            assert!(leap.value(i) && !leap.is_null(i));
            if dates.value(i) == "2016-02-29" {
                leap_day = Some(
                    b.column_by_name("ordinal_date")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .value(i)
                        .to_string(),
                );
            }
        }
    }
    assert_eq!(leap_day.as_deref(), Some("2016-060"));
}
