//! Every frame of the scale-0.01 demo data: builds, unique PIT hooks, one
//! current row per true key, and incremental after a simulated day equals a
//! full rebuild on every frame.

mod common;

use arrow::array::Int64Array;
use lakehouse::extract::land::{ExtractOptions, extract};
use lakehouse::extract::{ODataClient, RetryPolicy, SourceClient};
use lakehouse::model::Project;
use lakehouse::model::build::BuildMode;
use lakehouse::source::{GeneratorOptions, ServerOptions, serve};
use lakehouse::storage::{TableName, Warehouse};

async fn scalar(ctx: &datafusion::prelude::SessionContext, sql: &str) -> i64 {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    b[0].column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_frames_build_and_incremental_equals_full() {
    let project = Project::adventure_works().unwrap();
    let server = serve(
        &project.sources[0],
        ServerOptions {
            generator: GeneratorOptions {
                seed: 42,
                scale: 0.01,
            },
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let client: SourceClient = ODataClient::new(server.base_url(), RetryPolicy::default())
        .unwrap()
        .into();
    let report = extract(
        &wh,
        &project.sources[0],
        &client,
        &ExtractOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.failures().is_empty());

    let reports = common::frames(&wh, &project, BuildMode::Full).await;
    assert_eq!(reports.len(), 58);
    let ctx = lakehouse::query::session_context();
    wh.register_all(&ctx).await.unwrap();
    for frame in &project.model.frames {
        let resource = project.resource_of(frame).unwrap();
        let pit = frame.primary().pit_name();
        let t = format!("dab.{}", frame.name);
        let (rows, distinct) = (
            scalar(&ctx, &format!("SELECT count(*) FROM {t}")).await,
            scalar(&ctx, &format!("SELECT count(DISTINCT \"{pit}\") FROM {t}")).await,
        );
        assert!(rows > 0, "{t} is empty");
        assert_eq!(rows, distinct, "{t}: PIT hook is unique");
        let current = scalar(
            &ctx,
            &format!(
                "SELECT count(*) FROM {t} WHERE \"{}__is_current_record\"",
                frame.column_prefix
            ),
        )
        .await;
        let keys = resource
            .primary_key
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let true_keys = scalar(
            &ctx,
            &format!(
                "SELECT count(*) FROM (SELECT DISTINCT {keys} FROM das.{})",
                resource.table
            ),
        )
        .await;
        assert_eq!(current, true_keys, "{t}: one current row per true key");
    }

    // A simulated day, then incremental; it must equal a full rebuild.
    server.set_day(1).unwrap();
    extract(
        &wh,
        &project.sources[0],
        &client,
        &ExtractOptions::default(),
    )
    .await
    .unwrap();
    let inc = common::frames(&wh, &project, BuildMode::Incremental).await;
    assert!(inc.iter().all(|r| r.mode == BuildMode::Incremental));
    assert!(inc.iter().any(|r| r.rows > 0), "day 1 changes some frames");
    let mut incremental = Vec::new();
    for frame in &project.model.frames {
        let t = TableName::new("dab", frame.name.clone()).unwrap();
        incremental.push((t.clone(), common::rows_as_text(&wh, &t).await));
    }
    common::frames(&wh, &project, BuildMode::Full).await;
    for (t, inc_rows) in incremental {
        let full_rows = common::rows_as_text(&wh, &t).await;
        assert_eq!(inc_rows.len(), full_rows.len(), "{t}: row count");
        assert!(inc_rows == full_rows, "{t}: incremental differs from full");
    }
    server.shutdown().await.unwrap();
}
