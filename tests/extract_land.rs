//! Extraction through real HTTP into the DAS layer: counts per table and per
//! simulated day, nothing on a re-run, convergence after a killed run, and a
//! failing resource that does not stop the others.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use iceberg::expr::{Predicate, Reference};
use iceberg::spec::Datum;
use lakehouse::config::SourceConfig;
use lakehouse::extract::land::{CURSOR, ExtractOptions, extract};
use lakehouse::extract::{ODataClient, RetryPolicy, SourceClient};
use lakehouse::source::{Fault, GeneratorOptions, ServerHandle, ServerOptions, serve};
use lakehouse::storage::{AsOf, TableName, Warehouse};

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(30),
    }
}

async fn start(config: &SourceConfig, page_size: usize) -> ServerHandle {
    serve(
        config,
        ServerOptions {
            page_size,
            generator: GeneratorOptions {
                seed: 7,
                scale: 0.01,
            },
            day: 0,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn das_counts(wh: &Warehouse) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in wh.list_tables("das").await.unwrap() {
        let n = wh.load_table(&t).await.unwrap().row_count() as usize;
        out.insert(t.name, n);
    }
    out
}

/// Every DAS row's configured columns rendered as text (true key + content).
async fn das_rows(wh: &Warehouse, config: &SourceConfig, table: &str) -> Vec<String> {
    let resource = config.resource_by_table(table).unwrap();
    let batches = wh
        .scan(&TableName::new("das", table).unwrap(), AsOf::Latest)
        .await
        .unwrap();
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in &batches {
        let cols: Vec<_> = resource
            .columns
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(b.column_by_name(&c.name).unwrap().as_ref(), &opts).unwrap()
            })
            .collect();
        for i in 0..b.num_rows() {
            rows.push(
                cols.iter()
                    .map(|f| f.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_every_table_then_each_day_then_nothing() {
    lands_every_table_then_each_day_then_nothing_holding(ExtractOptions::default()).await;
}

/// The same with every fetch streamed into its table page by page instead
/// of held in memory first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_fetches_land_every_table_then_each_day_then_nothing() {
    lands_every_table_then_each_day_then_nothing_holding(ExtractOptions {
        held_pages_bytes: 0,
        ..ExtractOptions::default()
    })
    .await;
}

async fn lands_every_table_then_each_day_then_nothing_holding(options: ExtractOptions) {
    let config = SourceConfig::adventure_works().unwrap();
    let server = start(&config, 250).await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let client: SourceClient = ODataClient::new(server.base_url(), quick_retries())
        .unwrap()
        .into();

    let report = extract(&wh, &config, &client, &options).await.unwrap();
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    let expected = server.with_generator(|g| g.row_counts());
    assert_eq!(expected.len(), 58);
    let counts = das_counts(&wh).await;
    assert_eq!(
        counts, expected,
        "every table lands exactly the generator's rows"
    );
    assert!(
        report.resources.iter().any(|r| r.pages > 1),
        "paging was exercised"
    );
    // The rows at the new cursor landed in a file of their own, so the next
    // run's lookup of landed rows at or after the cursor plans only that file.
    let soh_name = TableName::new("das", "raw__adventure_works__sales_order_headers").unwrap();
    let soh = wh.load_table(&soh_name).await.unwrap();
    let files = |filter: Option<Predicate>| {
        let mut scan = soh.table.scan();
        if let Some(f) = filter {
            scan = scan.with_filter(f);
        }
        async move {
            let tasks: Vec<_> = scan
                .build()
                .unwrap()
                .plan_files()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            tasks
                .iter()
                .map(|t| t.record_count.unwrap())
                .collect::<Vec<u64>>()
        }
    };
    let (last, at_cursor) = server.with_generator(|g| {
        let t = g
            .table("raw__adventure_works__sales_order_headers")
            .unwrap();
        let c = t.column_index("modified_date").unwrap();
        let last = t
            .rows()
            .map(|r| r.expect("row"))
            .filter_map(|r| r[c].date())
            .max()
            .unwrap();
        let at = t
            .rows()
            .map(|r| r.expect("row"))
            .filter(|r| r[c].date() == Some(last))
            .count();
        (last, at as u64)
    });
    let total = expected["raw__adventure_works__sales_order_headers"] as u64;
    assert!(at_cursor > 0 && at_cursor < total, "{at_cursor} of {total}");
    let mut all = files(None).await;
    all.sort();
    let mut want = vec![at_cursor, total - at_cursor];
    want.sort();
    assert_eq!(all, want);
    let since = Reference::new("modified_date")
        .greater_than_or_equal_to(Datum::date_from_str(last.to_string()).unwrap());
    assert_eq!(files(Some(since)).await, vec![at_cursor]);

    // Day 1: exactly the new and changed rows are appended.
    server.set_day(1).unwrap();
    let delta = server.with_generator(|g| g.delta(1).cloned().unwrap());
    let report = extract(&wh, &config, &client, &options).await.unwrap();
    assert!(report.failures().is_empty());
    let mut changed_total = 0;
    for r in &report.resources {
        assert_eq!(
            r.landed,
            delta.changed(&r.table),
            "day-1 rows landed in {}",
            r.table
        );
        changed_total += r.landed;
    }
    assert!(changed_total > 0, "day 1 changes something");
    let after = das_counts(&wh).await;
    for (t, n) in &expected {
        assert_eq!(after[t], n + delta.changed(t), "{t} after day 1");
    }
    // The cursor moved to day 1's date where something changed.
    let soh = wh
        .load_table(&TableName::new("das", "raw__adventure_works__sales_order_headers").unwrap())
        .await
        .unwrap();
    let cursor = soh.current_properties()[CURSOR].clone();
    assert!(
        cursor.starts_with(&delta.date.format("%Y-%m-%d").to_string()),
        "{cursor} vs {}",
        delta.date
    );

    // No change: nothing lands, no snapshot is made.
    let versions: BTreeMap<_, _> = {
        let mut m = BTreeMap::new();
        for t in wh.list_tables("das").await.unwrap() {
            m.insert(t.name.clone(), wh.load_table(&t).await.unwrap().version);
        }
        m
    };
    let report = extract(&wh, &config, &client, &options).await.unwrap();
    assert_eq!(report.landed(), 0);
    for t in wh.list_tables("das").await.unwrap() {
        assert_eq!(
            wh.load_table(&t).await.unwrap().version,
            versions[&t.name],
            "{t} unchanged"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_extraction_converges_without_loss_or_duplicates() {
    let config = SourceConfig::adventure_works().unwrap();
    let server = start(&config, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let client: SourceClient = ODataClient::new(server.base_url(), quick_retries())
        .unwrap()
        .into();
    let total_requests = |s: &ServerHandle| {
        config
            .resources
            .iter()
            .map(|r| s.request_count(&r.api_path))
            .sum::<usize>()
    };

    // Kill the run after some pages: the extraction future is dropped mid-flight.
    let options = ExtractOptions::default();
    let run = extract(&wh, &config, &client, &options);
    let watch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while total_requests(&server) < 60 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        _ = run => panic!("the extraction finished before it could be killed"),
        _ = watch => {}
    }
    // Rows landed so far, per table (a table created without rows holds
    // none: a create already handed to a blocking thread when the run was
    // dropped still completes, harmlessly).
    let landed = |counts: BTreeMap<String, usize>| {
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<BTreeMap<_, _>>()
    };
    // A commit whose final file write was already running on a blocking
    // thread when the run was dropped completes (whole, as a commit always
    // is); let those settle first (in a real kill the process is gone).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let partial = das_counts(&wh).await;
    // Nothing of the killed run goes on landing in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        landed(das_counts(&wh).await),
        landed(partial.clone()),
        "no landing after the kill"
    );
    let expected = server.with_generator(|g| g.row_counts());
    assert!(
        partial.values().sum::<usize>() < expected.values().sum::<usize>(),
        "the run was cut short"
    );

    // Day 1 happens meanwhile; re-run twice.
    server.set_day(1).unwrap();
    let expected = server.with_generator(|g| g.row_counts());
    let delta = server.with_generator(|g| g.delta(1).cloned().unwrap());
    for _ in 0..2 {
        let report = extract(&wh, &config, &client, &ExtractOptions::default())
            .await
            .unwrap();
        assert!(report.failures().is_empty());
    }
    let counts = das_counts(&wh).await;
    for r in &config.resources {
        // Rows landed = day-0 rows that day 1 did not touch... plus every version seen:
        // a row changed on day 1 lands once (day-1 state) if its day-0 state was
        // never landed, or twice (both states) if it was.
        let rows = das_rows(&wh, &config, &r.table).await;
        let distinct: HashSet<&String> = rows.iter().collect();
        assert_eq!(distinct.len(), rows.len(), "{}: no duplicate rows", r.table);
        let n = counts[&r.table];
        let lo = expected[&r.table];
        let hi = expected[&r.table] + delta.modified.get(&r.table).copied().unwrap_or(0);
        assert!(
            lo <= n && n <= hi,
            "{}: {n} rows, expected between {lo} and {hi}",
            r.table
        );
        // The cursor equals the newest modified_date landed.
        let t = wh
            .load_table(&TableName::new("das", r.table.clone()).unwrap())
            .await
            .unwrap();
        let cursor = t
            .current_properties()
            .get(CURSOR)
            .cloned()
            .unwrap_or_default();
        let ctx = datafusion::prelude::SessionContext::new();
        let max = ctx
            .read_table(t.provider(AsOf::Latest).await.unwrap())
            .unwrap()
            .aggregate(
                vec![],
                vec![datafusion::functions_aggregate::expr_fn::max(
                    datafusion::prelude::col("modified_date"),
                )],
            )
            .unwrap()
            .collect()
            .await
            .unwrap();
        let max = ArrayFormatter::try_new(max[0].column(0).as_ref(), &FormatOptions::default())
            .unwrap()
            .value(0)
            .to_string();
        assert!(
            cursor.starts_with(&max),
            "{}: cursor {cursor} vs newest row {max}",
            r.table
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_resource_does_not_stop_the_others() {
    let config = SourceConfig::adventure_works().unwrap();
    let server = start(&config, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let client: SourceClient = ODataClient::new(server.base_url(), quick_retries())
        .unwrap()
        .into();
    server.faults().inject(
        "/Customers",
        Fault::Status {
            status: 503,
            times: 100,
        },
    );
    let report = extract(&wh, &config, &client, &ExtractOptions::default())
        .await
        .unwrap();
    let failed = report.failures();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].table, "raw__adventure_works__customers");
    let msg = failed[0].error.as_deref().unwrap();
    assert!(msg.contains("Customers") && msg.contains("503"), "{msg}");
    let counts = das_counts(&wh).await;
    assert_eq!(counts.len(), 57, "the other 57 resources committed");
    assert!(!counts.contains_key("raw__adventure_works__customers"));
    // Transient 503s are retried.
    server.faults().clear_all();
    server.faults().inject(
        "/Customers",
        Fault::Status {
            status: 503,
            times: 2,
        },
    );
    let report = extract(&wh, &config, &client, &ExtractOptions::default())
        .await
        .unwrap();
    assert!(report.failures().is_empty());
    let expected = server.with_generator(|g| g.row_counts());
    assert_eq!(das_counts(&wh).await, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_source_field_becomes_a_new_column() {
    let full = SourceConfig::adventure_works().unwrap();
    let server = start(&full, 500).await;
    // A config that does not know `GroupName` of departments: the field is new to it.
    let mut config = full.clone();
    config
        .resources
        .retain(|r| r.table == "raw__adventure_works__departments");
    config.resources[0]
        .columns
        .retain(|c| c.name != "group_name");
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let client: SourceClient = ODataClient::new(server.base_url(), quick_retries())
        .unwrap()
        .into();
    let report = extract(&wh, &config, &client, &ExtractOptions::default())
        .await
        .unwrap();
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    let t = wh
        .load_table(&TableName::new("das", "raw__adventure_works__departments").unwrap())
        .await
        .unwrap();
    let schema = t.metadata().current_schema();
    let field = schema
        .field_by_name("group_name")
        .expect("the new field is kept as a column");
    assert!(!field.required);
    let rows = das_rows(&wh, &full, "raw__adventure_works__departments").await;
    let expected = server.with_generator(|g| g.row_counts())["raw__adventure_works__departments"];
    assert_eq!(rows.len(), expected);
    assert!(
        rows.iter().all(|r| !r.contains("|NULL|")),
        "group_name values landed: {:?}",
        &rows[..2]
    );
    server.shutdown().await.unwrap();
}
