//! The DAR layer on the scale-0.01 demo data after several simulated days:
//! unique bridge keys everywhere, exactly one bridge row per child key at
//! random instants, every PIT hook of the unified bridge joins exactly one
//! peripheral row, and the placed line totals add up to the DAS line totals.

mod common;

use arrow::array::{Array, Int64Array, StringArray};
use datafusion::prelude::SessionContext;
use lakehouse::extract::land::{ExtractOptions, extract};
use lakehouse::extract::{ODataClient, RetryPolicy, SourceClient};
use lakehouse::model::Project;
use lakehouse::model::build::BuildMode;
use lakehouse::model::dar::entity;
use lakehouse::source::{GeneratorOptions, ServerOptions, serve};
use lakehouse::storage::Warehouse;
use rand::{Rng, SeedableRng};

async fn int(ctx: &SessionContext, sql: &str) -> i64 {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    b[0].column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap_or_else(|| panic!("not an integer: {sql}"))
        .value(0)
}

/// The first row of a query's integer columns.
async fn ints(ctx: &SessionContext, sql: &str) -> Vec<i64> {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    b[0].columns()
        .iter()
        .map(|c| {
            c.as_any()
                .downcast_ref::<Int64Array>()
                .unwrap_or_else(|| panic!("not an integer: {sql}"))
                .value(0)
        })
        .collect()
}

async fn text(ctx: &SessionContext, sql: &str) -> String {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let a = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    let a = a.as_any().downcast_ref::<StringArray>().unwrap();
    assert!(!a.is_null(0), "{sql} is NULL");
    a.value(0).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_dar_is_temporally_exact() {
    let project = Project::adventure_works().unwrap();
    let server = serve(
        &project.sources[0],
        ServerOptions {
            generator: GeneratorOptions {
                seed: 7,
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
    let t0 = std::time::Instant::now();
    for day in 0..3 {
        server.set_day(day).unwrap();
        let r = extract(
            &wh,
            &project.sources[0],
            &client,
            &ExtractOptions::default(),
        )
        .await
        .unwrap();
        assert!(r.failures().is_empty());
    }
    common::frames(&wh, &project, BuildMode::Full).await;
    eprintln!("extract + frames: {:.1}s", t0.elapsed().as_secs_f64());
    let t0 = std::time::Instant::now();
    let reports = common::dar(&wh, &project).await;
    eprintln!("DAR build: {:.1}s", t0.elapsed().as_secs_f64());
    assert_eq!(reports.len(), 58 * 3 + 2);

    let t0 = std::time::Instant::now();
    let ctx = lakehouse::query::session_context();
    wh.register_all(&ctx).await.unwrap();

    // Load times, to pick instants on and between version boundaries.
    let loads: Vec<i64> = {
        let b = ctx
            .sql("SELECT DISTINCT CAST(_loaded_at AS BIGINT) FROM das.raw__adventure_works__sales_order_details ORDER BY 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        b.iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                a.values().to_vec()
            })
            .collect()
    };
    assert!(loads.len() >= 3, "several loads: {loads:?}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (lo, hi) = (
        loads[0] - 86_400_000_000,
        loads[loads.len() - 1] + 86_400_000_000,
    );
    // Every load time (version boundaries), then random instants up to 20.
    let mut instants: Vec<i64> = loads.clone();
    while instants.len() < 20 {
        instants.push(rng.random_range(lo..hi));
    }
    instants.sort_unstable();
    instants.dedup();
    assert_eq!(instants.len(), 20);
    let values = instants
        .iter()
        .map(|t| format!("(to_timestamp_micros({t}))"))
        .collect::<Vec<_>>()
        .join(", ");

    for frame in &project.model.frames {
        let e = entity(frame).unwrap();
        let (bridge, event) = (
            format!("dar__staging.bridge__{e}"),
            format!("dar__staging.event__{e}"),
        );
        for t in [&bridge, &event] {
            let r = ints(
                &ctx,
                &format!("SELECT count(*) AS n, count(DISTINCT _pit_hook__bridge) AS k FROM {t}"),
            )
            .await;
            assert!(r[0] > 0, "{t} is empty");
            assert_eq!(r[0], r[1], "{t}: _pit_hook__bridge is unique");
        }
        // Exactly one bridge row per child key at each instant, and every
        // key of the frame has one.
        let hook = &frame.primary().name;
        let r = ints(
            &ctx,
            &format!(
                "SELECT CAST(sum(CASE WHEN n <> 1 THEN 1 ELSE 0 END) AS BIGINT) AS wrong, count(*) AS covered, \
                 (SELECT count(DISTINCT \"{hook}\") FROM dab.{frame}) AS keys FROM \
                 (SELECT i.t, b.\"{hook}\" AS k, count(*) AS n FROM {bridge} b \
                  JOIN (VALUES {values}) AS i(t) \
                  ON b.bridge__record_valid_from <= i.t AND i.t < b.bridge__record_valid_to \
                  GROUP BY i.t, b.\"{hook}\")",
                frame = frame.name
            ),
        )
        .await;
        assert_eq!(r[0], 0, "{bridge}: keys with several rows at one instant");
        assert_eq!(
            r[1],
            r[2] * instants.len() as i64,
            "{bridge}: every key has a row at every instant"
        );
    }

    let unified = "dar._bridge__as_of";
    let rows = int(&ctx, &format!("SELECT count(*) FROM {unified}")).await;
    let keys = int(
        &ctx,
        &format!("SELECT count(DISTINCT _pit_hook__bridge) FROM {unified}"),
    )
    .await;
    assert_eq!(rows, keys, "{unified}: _pit_hook__bridge is unique");

    // Every PIT hook joins exactly one peripheral row (ghost included).
    let schema = ctx.table(unified).await.unwrap().schema().clone();
    let mut pit_columns = 0;
    for f in schema.fields() {
        let c = f.name();
        if !c.starts_with("_pit_hook__") || c == "_pit_hook__bridge" {
            continue;
        }
        let frame = project
            .model
            .frames
            .iter()
            .find(|fr| &fr.primary().pit_name() == c)
            .unwrap_or_else(|| panic!("no frame owns {c}"));
        let peripheral = format!("dar.{}", entity(frame).unwrap());
        let r = ints(
            &ctx,
            &format!(
                "SELECT count(*) AS bad, (SELECT count(*) FROM {peripheral} WHERE \"{c}\" = 'ghost_record') AS ghosts \
                 FROM {unified} u LEFT JOIN \
                 (SELECT \"{c}\" AS k, count(*) AS n FROM {peripheral} GROUP BY \"{c}\") p \
                 ON u.\"{c}\" = p.k WHERE p.n IS NULL OR p.n <> 1"
            ),
        )
        .await;
        assert_eq!(r[0], 0, "{unified}.{c} -> {peripheral}");
        assert_eq!(r[1], 1, "{peripheral}: one ghost record");
        pit_columns += 1;
    }
    assert!(pit_columns >= 50, "{pit_columns} PIT hook columns");

    // Placed line totals (current rows) = line totals of current DAS lines,
    // exactly: money lands as decimal(38,6), so sums agree to the last digit.
    let placed = text(
        &ctx,
        &format!(
            "SELECT sum(measure__sales_order_line_total_placed) FROM {unified} \
             WHERE bridge__is_current_record"
        ),
    )
    .await;
    let das = text(
        &ctx,
        "SELECT sum(line_total) FROM (SELECT line_total, row_number() OVER \
         (PARTITION BY sales_order_detail_id ORDER BY _loaded_at DESC, _load_sequence DESC) AS r \
         FROM das.raw__adventure_works__sales_order_details) WHERE r = 1",
    )
    .await;
    assert!(
        das.parse::<f64>().unwrap() > 0.0,
        "a positive total of line totals: {das}"
    );
    assert_eq!(placed, das, "placed line totals vs DAS line totals");
    let scale = das.split_once('.').map(|(_, f)| f.len());
    assert_eq!(
        scale,
        Some(6),
        "the sum keeps the six decimals of decimal(38,6): {das}"
    );
    // The calendar covers whole years of event dates.
    let days = int(&ctx, "SELECT count(*) FROM dar.calendar").await;
    assert!(days >= 365, "{days} calendar days");
    let firsts = int(
        &ctx,
        "SELECT count(*) FROM dar.calendar WHERE date LIKE '%-01-01'",
    )
    .await;
    assert_eq!(
        days,
        (0..firsts).map(|_| 365).sum::<i64>()
            + int(
                &ctx,
                "SELECT count(*) FROM dar.calendar WHERE is_leap_year AND date LIKE '%-12-31'"
            )
            .await
    );
    eprintln!("checks: {:.1}s", t0.elapsed().as_secs_f64());
    server.shutdown().await.unwrap();
}
