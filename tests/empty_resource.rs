//! Real services have empty entity sets (four of Adventure Works' are empty
//! in the real data). An empty resource lands an empty table with its
//! configured schema, and every model over it builds: an empty frame,
//! bridges and events without its rows (a child's PIT hook to it is the
//! ghost record in the unified bridge), the peripheral with only its ghost
//! record. When the rows arrive later, `elt` builds them incrementally to
//! the same tables as a run that had them from the start.

mod common;

use lakehouse::config::SourceConfig;
use lakehouse::dag::Dag;
use lakehouse::dag::plan::plan;
use lakehouse::dag::run::{PipelineOptions, RunOptions, SourceSpec, elt, init, run_models};
use lakehouse::model::Project;
use lakehouse::source::{Fault, GeneratorOptions, ServerOptions, serve};
use lakehouse::storage::{TableName, Warehouse};

/// One integer from a one-row, one-column query.
async fn count(wh: &Warehouse, sql: &str) -> i64 {
    let ctx = datafusion::prelude::SessionContext::new();
    wh.register_all(&ctx).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let c = batches[0].column(0);
    arrow::compute::cast(c, &arrow::datatypes::DataType::Int64)
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_resources_land_empty_tables_and_every_model_builds() {
    let config = SourceConfig::adventure_works().unwrap();
    let project = Project::adventure_works().unwrap();
    let server = serve(
        &config,
        ServerOptions {
            page_size: 500,
            generator: GeneratorOptions {
                seed: 7,
                scale: 0.01,
            },
            day: 0,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    // Work orders are empty but their routings are not: a child whose
    // parent never arrives.
    for path in ["/WorkOrders", "/TransactionHistories"] {
        server.faults().inject(path, Fault::Empty);
    }
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let options = PipelineOptions {
        source: SourceSpec::url(server.base_url().to_string()),
        ..PipelineOptions::default()
    };
    let report = init(&wh, &project, &options).await.unwrap();
    assert_eq!(report.models.len(), 234, "every model builds");

    // The empty tables exist, with the configured columns and no rows.
    let resource = config
        .resource_by_table("raw__adventure_works__work_orders")
        .unwrap();
    let t = wh
        .load_table(&TableName::parse("das.raw__adventure_works__work_orders").unwrap())
        .await
        .unwrap();
    assert_eq!(t.row_count(), 0);
    let schema = t.metadata().current_schema();
    for c in &resource.columns {
        assert!(
            schema.field_by_name(&c.name).is_some(),
            "column {} landed",
            c.name
        );
    }
    let routings = count(
        &wh,
        "SELECT count(*) FROM das.raw__adventure_works__work_order_routings",
    )
    .await;
    assert!(routings > 0);

    for (sql, want) in [
        (
            "SELECT count(*) FROM dab.frame__adventure_works__work_orders",
            0,
        ),
        (
            "SELECT count(*) FROM dab.frame__adventure_works__transaction_histories",
            0,
        ),
        (
            "SELECT count(*) FROM dar__staging.bridge__adventure_works__work_orders",
            0,
        ),
        (
            "SELECT count(*) FROM dar__staging.event__adventure_works__work_orders",
            0,
        ),
        // The peripheral: its ghost record only.
        ("SELECT count(*) FROM dar.adventure_works__work_orders", 1),
        (
            "SELECT count(*) FROM dar._bridge__as_of WHERE peripheral = 'adventure_works__work_orders'",
            0,
        ),
    ] {
        assert_eq!(count(&wh, sql).await, want, "{sql}");
    }
    // The routings' bridge keeps every routing; its work order hook is
    // the ghost record in the unified bridge.
    assert_eq!(
        count(
            &wh,
            "SELECT count(*) FROM dar__staging.bridge__adventure_works__work_order_routings"
        )
        .await,
        routings
    );
    let unified =
        "FROM dar._bridge__as_of WHERE peripheral = 'adventure_works__work_order_routings'";
    let all = count(&wh, &format!("SELECT count(*) {unified}")).await;
    assert!(all > 0);
    assert_eq!(
        count(
            &wh,
            &format!("SELECT count(*) {unified} AND _pit_hook__order__work = 'ghost_record'")
        )
        .await,
        all
    );

    // The rows arrive: `elt` lands them and builds incrementally, to the
    // same tables as a run that had them from the start.
    server.faults().clear_all();
    let report = elt(&wh, &project, &options).await.unwrap();
    assert!(report.extract.landed() > 0);
    assert!(
        count(
            &wh,
            "SELECT count(*) FROM dab.frame__adventure_works__work_orders"
        )
        .await
            > 0
    );
    let incremental = common::model_tables(&wh).await;
    let dag = Dag::build(&project).unwrap();
    let planned = plan(&wh, &dag, true).await.unwrap();
    run_models(&wh, &project, &dag, &planned, &RunOptions::default(), None)
        .await
        .unwrap();
    let full = common::model_tables(&wh).await;
    let differ: Vec<&String> = full
        .iter()
        .filter(|(t, rows)| incremental.get(*t) != Some(rows))
        .map(|(t, _)| t)
        .collect();
    assert!(differ.is_empty(), "incremental != full for {differ:?}");
    server.shutdown().await.unwrap();
}
