//! Plans travel through bytes (datafusion-proto with our codec) and give the
//! same rows: every model of the built-in project, logical and physical,
//! and the scans incremental builds use (key-restricted, in memory).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;
use lakehouse::codec::{
    PlanCodec, logical_from_bytes, logical_to_bytes, physical_from_bytes, physical_to_bytes,
};
use lakehouse::dag::run::{PipelineOptions, SourceSpec, init};
use lakehouse::model::Project;
use lakehouse::model::full::full_plans;
use lakehouse::storage::Warehouse;

/// The rows of `plan` as sorted text.
async fn rows(plan: Arc<dyn ExecutionPlan>, ctx: &SessionContext) -> Vec<String> {
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    let mut rows = common::text_rows(&batches);
    rows.sort();
    rows
}

fn text(plan: &Arc<dyn ExecutionPlan>) -> String {
    displayable(plan.as_ref()).indent(true).to_string()
}

/// Two plan texts are equal; otherwise fail showing the first line that
/// differs.
fn same_text(got: &str, want: &str, what: &str) {
    if let Some((g, w)) = got.lines().zip(want.lines()).find(|(g, w)| g != w) {
        panic!("{what} differs:\n got: {g}\nwant: {w}");
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{what}: line count"
    );
}

/// Count operators by name in a physical plan.
fn operators(plan: &Arc<dyn ExecutionPlan>, out: &mut BTreeMap<String, usize>) {
    *out.entry(plan.name().to_string()).or_default() += 1;
    for c in plan.children() {
        operators(c, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_round_trips_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let project = Project::adventure_works().unwrap();
    let options = PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.01), Some(3)),
        ..PipelineOptions::default()
    };
    init(&wh, &project, &options).await.unwrap();
    let ctx = lakehouse::budget::MemoryBudget::unbounded()
        .context()
        .unwrap();
    // The receiving side: its own warehouse handle and context.
    let codec = PlanCodec::new(Warehouse::open(dir.path().to_str().unwrap()).unwrap());
    let receiver = lakehouse::budget::MemoryBudget::unbounded()
        .context()
        .unwrap();
    let plans = full_plans(&wh, &project).await.unwrap();
    assert_eq!(
        plans.len(),
        wh.list_all_tables().await.unwrap().len() - plans_not_models(&wh).await
    );
    let mut seen = BTreeMap::new();
    let mut logical_bytes = 0;
    let mut physical_bytes = 0;
    let mut largest = (0, String::new());
    let mut codec_time = std::time::Duration::ZERO;
    for model in &plans {
        let name = model.table.to_string();
        // Logical: plan -> bytes -> plan, the same plan text and rows.
        let started = std::time::Instant::now();
        let bytes = logical_to_bytes(&model.plan, &codec).unwrap();
        logical_bytes += bytes.len();
        let decoded: LogicalPlan = logical_from_bytes(&bytes, &receiver, &codec).unwrap();
        codec_time += started.elapsed();
        same_text(
            &decoded.display_indent_schema().to_string(),
            &model.plan.display_indent_schema().to_string(),
            &format!("{name}: logical plan"),
        );
        let original = ctx.state().create_physical_plan(&model.plan).await.unwrap();
        operators(&original, &mut seen);
        let expected = rows(Arc::clone(&original), &ctx).await;
        assert!(!expected.is_empty(), "{name} has rows");
        let via_logical = receiver
            .state()
            .create_physical_plan(&decoded)
            .await
            .unwrap();
        assert_eq!(
            rows(via_logical, &receiver).await,
            expected,
            "{name}: rows of the decoded logical plan"
        );
        // Physical: the planned operators (strategy, projection, pushed-down
        // predicates) -> bytes -> the same operators and rows.
        let started = std::time::Instant::now();
        let bytes = physical_to_bytes(Arc::clone(&original), &codec).unwrap();
        physical_bytes += bytes.len();
        largest = largest.max((bytes.len(), name.clone()));
        let decoded = physical_from_bytes(&bytes, &receiver, &codec).unwrap();
        codec_time += started.elapsed();
        same_text(
            &text(&decoded),
            &text(&original),
            &format!("{name}: physical plan"),
        );
        assert_eq!(
            rows(decoded, &receiver).await,
            expected,
            "{name}: rows of the decoded physical plan"
        );
    }
    // The codec's own nodes were all exercised.
    assert!(
        seen.get("PitJoinExec").copied().unwrap_or(0) > 10,
        "{seen:?}"
    );
    assert!(
        seen.get("IcebergTableScan").copied().unwrap_or(0) > 100,
        "{seen:?}"
    );
    eprintln!(
        "{} models: {logical_bytes} logical bytes, {physical_bytes} physical bytes, \
         largest {} ({} bytes), encoding and decoding both {:?}",
        plans.len(),
        largest.1,
        largest.0,
        codec_time
    );
}

/// Tables of a built warehouse that are not models: the DAS layer and the
/// run log.
async fn plans_not_models(wh: &Warehouse) -> usize {
    wh.list_all_tables()
        .await
        .unwrap()
        .iter()
        .filter(|t| t.namespace == "das" || t.namespace == "lakehouse")
        .count()
}

/// The scans incremental builds use travel too: a table restricted to key
/// values (its pushed-down `IN` predicate included), an older snapshot of
/// a table, and rows held in memory, joined in one plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_historic_and_in_memory_scans_round_trip() {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::ScalarValue;
    use datafusion::datasource::{MemTable, provider_as_source};
    use datafusion::logical_expr::{JoinType, LogicalPlanBuilder, col};
    use lakehouse::model::tables::{loaded_scan_plan, restricted_scan_plan};
    use lakehouse::storage::{AsOf, TableName, Write};

    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = |ids: std::ops::Range<i64>| {
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(ids.clone())),
                Arc::new(StringArray::from_iter_values(ids.map(|i| format!("n{i}")))),
            ],
        )
        .unwrap()
    };
    let t = TableName::new("dab", "things").unwrap();
    wh.write(
        &t,
        Arc::clone(&schema),
        vec![batch(0..500)],
        Write::append(),
    )
    .await
    .unwrap();
    let first = wh.load_table(&t).await.unwrap();
    let first_snapshot = first.metadata().current_snapshot_id().unwrap();
    wh.write(
        &t,
        Arc::clone(&schema),
        vec![batch(500..900)],
        Write::append(),
    )
    .await
    .unwrap();
    let loaded = wh.load_table(&t).await.unwrap();

    let keys: Vec<ScalarValue> = [3i64, 250, 499, 650, 899, 5000]
        .iter()
        .map(|&i| ScalarValue::Int64(Some(i)))
        .collect();
    let restricted = restricted_scan_plan(&loaded, AsOf::Latest, "id", keys)
        .await
        .unwrap();
    let (historic, _) = loaded_scan_plan(&loaded, AsOf::Snapshot(first_snapshot))
        .await
        .unwrap();
    let memory = MemTable::try_new(
        Arc::clone(&schema),
        vec![vec![batch(240..260)], vec![batch(640..660)]],
    )
    .unwrap();
    let memory = LogicalPlanBuilder::scan("kept", provider_as_source(Arc::new(memory)), None)
        .unwrap()
        .project(vec![col("id").alias("kept_id")])
        .unwrap()
        .build()
        .unwrap();
    let historic = LogicalPlanBuilder::from(historic)
        .project(vec![col("id").alias("old_id")])
        .unwrap()
        .build()
        .unwrap();
    // Restricted rows, those also in memory, and those the first snapshot had.
    let plan = LogicalPlanBuilder::from(restricted)
        .join(memory, JoinType::Left, (vec!["id"], vec!["kept_id"]), None)
        .unwrap()
        .join(historic, JoinType::Left, (vec!["id"], vec!["old_id"]), None)
        .unwrap()
        .build()
        .unwrap();

    let ctx = lakehouse::query::session_context();
    let codec = PlanCodec::new(wh.clone());
    let physical = ctx.state().create_physical_plan(&plan).await.unwrap();
    let expected = rows(Arc::clone(&physical), &ctx).await;
    assert_eq!(
        expected,
        vec![
            "250|n250|250|250",
            "3|n3|NULL|3",
            "499|n499|NULL|499",
            "650|n650|650|NULL",
            "899|n899|NULL|NULL",
        ]
    );
    assert!(
        text(&physical).contains("predicate:[id IN ("),
        "{}",
        text(&physical)
    );

    let bytes = logical_to_bytes(&plan, &codec).unwrap();
    let decoded = logical_from_bytes(&bytes, &ctx, &codec).unwrap();
    same_text(
        &decoded.display_indent_schema().to_string(),
        &plan.display_indent_schema().to_string(),
        "logical plan",
    );
    let replanned = ctx.state().create_physical_plan(&decoded).await.unwrap();
    same_text(
        &text(&replanned),
        &text(&physical),
        "replanned physical plan",
    );
    assert_eq!(rows(replanned, &ctx).await, expected);

    let bytes = physical_to_bytes(Arc::clone(&physical), &codec).unwrap();
    let decoded = physical_from_bytes(&bytes, &ctx, &codec).unwrap();
    same_text(&text(&decoded), &text(&physical), "physical plan");
    assert_eq!(rows(decoded, &ctx).await, expected);

    // A plan over a provider the codec does not know is refused, naming it.
    let foreign = datafusion::datasource::empty::EmptyTable::new(Arc::clone(&schema));
    let plan = LogicalPlanBuilder::scan("elsewhere", provider_as_source(Arc::new(foreign)), None)
        .unwrap()
        .build()
        .unwrap();
    let err = format!("{:#}", logical_to_bytes(&plan, &codec).unwrap_err());
    assert!(
        err.contains("elsewhere") && err.contains("EmptyTable"),
        "{err}"
    );
}
