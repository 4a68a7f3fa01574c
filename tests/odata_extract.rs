//! Extraction through real HTTP from the embedded OData server.

use std::time::Duration;

use arrow::array::{Array, Date32Array, Int64Array, StringArray};
use chrono::{NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use lakehouse::ErrorKind;
use lakehouse::config::SourceConfig;
use lakehouse::das::{EXTRA_COLUMN_KEY, is_extra};
use lakehouse::extract::{Cursor, ODataClient, RetryPolicy};
use lakehouse::source::generator::BASE_END;
use lakehouse::source::{Fault, Generator, GeneratorOptions, ServerHandle, ServerOptions, serve};

const SEED: u64 = 42;

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(10),
    }
}

/// The non-NULL values of an Int64 column of a page.
fn int_values(batch: &arrow::array::RecordBatch, column: &str) -> Vec<i64> {
    let c = batch.schema().index_of(column).expect("column");
    batch
        .column(c)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("i64")
        .iter()
        .flatten()
        .collect()
}

async fn start(page_size: usize, day: u32) -> (SourceConfig, ServerHandle) {
    let config = SourceConfig::adventure_works().expect("config");
    let server = serve(
        &config,
        ServerOptions {
            page_size,
            generator: GeneratorOptions {
                seed: SEED,
                scale: 0.01,
            },
            day,
            ..ServerOptions::default()
        },
    )
    .await
    .expect("server starts");
    (config, server)
}

#[tokio::test]
async fn all_resources_match_the_generator() {
    let (config, server) = start(1000, 0).await;
    let err =
        ODataClient::for_source(&config, None, fast_retry(0)).expect_err("embedded needs a URL");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let client =
        ODataClient::for_source(&config, Some(server.base_url()), fast_retry(0)).expect("client");
    let counts = server.with_generator(|g| g.row_counts());
    let mut total = 0;
    for r in &config.resources {
        let got = client.fetch_all(r, None).await.expect("extracts");
        assert_eq!(got.rows, counts[&r.table], "{}", r.table);
        assert!(
            got.extra_columns.is_empty(),
            "{}: {:?}",
            r.table,
            got.extra_columns
        );
        for b in &got.batches {
            assert_eq!(b.schema().fields().len(), r.columns.len(), "{}", r.table);
        }
        assert_eq!(
            got.max_cursor.map(|t| t.date_naive()),
            Some(server.with_generator(|g| max_date(g, &r.table))),
            "{}",
            r.table
        );
        total += got.rows;
    }
    assert!(total > 10_000, "only {total} rows");

    // Exact values of the first order, in cursor order.
    let soh = config
        .resource_by_path("/SalesOrderHeaders")
        .expect("resource");
    let got = client.fetch_all(soh, None).await.expect("orders");
    let b = &got.batches[0];
    let col = |name: &str| b.schema().index_of(name).expect("column");
    let ids = b
        .column(col("sales_order_id"))
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("i64");
    assert_eq!(ids.value(0), 43659);
    let numbers = b
        .column(col("sales_order_number"))
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8");
    assert_eq!(numbers.value(0), "SO43659");
    let dates = b
        .column(col("order_date"))
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("date");
    assert_eq!(dates.value_as_date(0), NaiveDate::from_ymd_opt(2011, 5, 31));
    server.shutdown().await.expect("shutdown");
}

fn max_date(g: &Generator, table: &str) -> NaiveDate {
    let t = g.table(table).expect("table");
    let c = t.column_index("modified_date").expect("modified_date");
    t.rows()
        .map(|r| r.expect("row"))
        .filter_map(|r| r[c].date())
        .max()
        .expect("a date")
}

#[tokio::test]
async fn small_pages_follow_next_links() {
    let (config, server) = start(37, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(0)).expect("client");
    let customers = config.resource_by_path("/Customers").expect("resource");
    let n = server.with_generator(|g| g.row_counts()["raw__adventure_works__customers"]);
    assert_eq!(n, 195);
    let pages: Vec<_> = client
        .pages(customers, None)
        .try_collect()
        .await
        .expect("pages");
    assert_eq!(pages.len(), n.div_ceil(37));
    assert_eq!(server.request_count("/Customers"), pages.len());
    let mut first_row = 0;
    let mut ids = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p.index, i);
        assert_eq!(p.first_row, first_row);
        first_row += p.batch.num_rows();
        assert_eq!(p.next_url.is_some(), i + 1 < pages.len());
        ids.extend(int_values(&p.batch, "customer_id"));
    }
    assert_eq!(first_row, n);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no row twice, none missing");
    // Page cursors never go backwards.
    let cursors: Vec<_> = pages
        .iter()
        .map(|p| p.max_cursor.expect("cursor"))
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        pages[1].url.as_str().contains("skiptoken"),
        "{}",
        pages[1].url
    );
    server.shutdown().await.expect("shutdown");
}

/// A filtered read is paged over the matching rows only: every row at or
/// after the cursor exactly once, in cursor order, and no other row.
#[tokio::test]
async fn filtered_pages_hold_exactly_the_matching_rows() {
    let (config, server) = start(7, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(0)).expect("client");
    let headers = config
        .resource_by_path("/SalesOrderHeaders")
        .expect("resource");
    let cutoff = NaiveDate::from_ymd_opt(2014, 1, 1).expect("date");
    let mut expected: Vec<i64> = server.with_generator(|g| {
        let t = g.table(&headers.table).expect("table");
        let (c, k) = (
            t.column_index("modified_date").expect("column"),
            t.column_index("sales_order_id").expect("column"),
        );
        t.rows()
            .map(|r| r.expect("row"))
            .filter(|r| r[c].date().is_some_and(|d| d >= cutoff))
            .map(|r| r[k].as_i64().expect("id"))
            .collect()
    });
    assert!(expected.len() > 20, "{} rows", expected.len());
    let since = Utc.from_utc_datetime(&cutoff.and_hms_opt(0, 0, 0).expect("midnight"));
    let pages: Vec<_> = client
        .pages(headers, Some(Cursor::AtOrAfter(since)))
        .try_collect()
        .await
        .expect("pages");
    assert_eq!(pages.len(), expected.len().div_ceil(7));
    let mut ids = Vec::new();
    for p in &pages {
        ids.extend(int_values(&p.batch, "sales_order_id"));
        assert!(p.max_cursor.expect("cursor") >= since);
    }
    let cursors: Vec<_> = pages
        .iter()
        .map(|p| p.max_cursor.expect("cursor"))
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected, "each matching row once, nothing else");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn cursor_after_day_zero_reads_only_day_one_changes() {
    let (config, server) = start(200, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(0)).expect("client");
    let mut cursors = Vec::new();
    for r in &config.resources {
        let got = client.fetch_all(r, None).await.expect("day 0");
        cursors.push(got.max_cursor.expect("cursor"));
    }
    server.set_day(1).expect("day 1");
    let delta = server
        .with_generator(|g| g.delta(1).cloned())
        .expect("delta");
    let day1 = Utc.from_utc_datetime(
        &Generator::date_of_day(1)
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    );
    let mut changed = 0;
    for (r, cursor) in config.resources.iter().zip(cursors) {
        let after = client
            .fetch_all(r, Some(Cursor::After(cursor)))
            .await
            .expect("day 1 changes");
        assert_eq!(after.rows, delta.changed(&r.table), "{}", r.table);
        let inclusive = client
            .fetch_all(r, Some(Cursor::AtOrAfter(day1)))
            .await
            .expect("ge");
        assert_eq!(inclusive.rows, after.rows, "{}", r.table);
        if after.rows > 0 {
            assert_eq!(after.max_cursor, Some(day1), "{}", r.table);
        }
        changed += after.rows;
    }
    assert!(changed > 30, "day 1 changed {changed} rows");
    let last_day0 = Utc.from_utc_datetime(&BASE_END.and_hms_opt(0, 0, 0).expect("midnight"));
    let inventories = config
        .resource_by_path("/ProductInventories")
        .expect("resource");
    let boundary = client
        .fetch_all(inventories, Some(Cursor::AtOrAfter(last_day0)))
        .await
        .expect("ge");
    let on_boundary = server.with_generator(|g| {
        let t = g.table(&inventories.table).expect("table");
        let c = t.column_index("modified_date").expect("column");
        t.rows()
            .map(|r| r.expect("row"))
            .filter(|r| r[c].date() == Some(BASE_END))
            .count()
    });
    assert!(on_boundary > 0);
    assert_eq!(
        boundary.rows,
        on_boundary + delta.changed(&inventories.table),
        "ge re-reads the boundary date"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn transient_errors_are_retried() {
    let (config, server) = start(100, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(3)).expect("client");
    let customers = config.resource_by_path("/Customers").expect("resource");
    server.faults().inject(
        "/Customers",
        Fault::Status {
            status: 503,
            times: 2,
        },
    );
    server.faults().inject(
        "/Customers",
        Fault::Status {
            status: 429,
            times: 1,
        },
    );
    let got = client
        .fetch_all(customers, None)
        .await
        .expect("succeeds after retries");
    assert_eq!(got.rows, 195);
    assert_eq!(got.pages, 2);
    assert_eq!(server.request_count("/Customers"), 2 + 3);

    // A slow answer times out and is retried.
    let quick = ODataClient::new(
        server.base_url(),
        RetryPolicy {
            request_timeout: Duration::from_millis(200),
            ..fast_retry(2)
        },
    )
    .expect("client");
    let shifts = config.resource_by_path("/Shifts").expect("resource");
    server.faults().inject(
        "/Shifts",
        Fault::Delay {
            delay: Duration::from_secs(2),
            times: 1,
        },
    );
    let got = quick
        .fetch_all(shifts, None)
        .await
        .expect("succeeds after a timeout");
    assert_eq!(got.rows, 3);
    assert_eq!(server.request_count("/Shifts"), 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn giving_up_names_the_resource_and_url() {
    let (config, server) = start(100, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(2)).expect("client");
    let stores = config.resource_by_path("/Stores").expect("resource");
    server.faults().inject(
        "/Stores",
        Fault::Status {
            status: 503,
            times: 10,
        },
    );
    let err = client.fetch_all(stores, None).await.expect_err("fails");
    assert_eq!(err.kind(), ErrorKind::Source);
    let msg = err.message();
    assert!(
        msg.starts_with("resource `raw__adventure_works__stores` (/Stores): GET http://"),
        "{msg}"
    );
    assert!(msg.contains("/Stores?%24count=false"), "{msg}");
    assert!(msg.contains("failed after 3 attempt(s): HTTP 503 Service Unavailable: injected failure for `/Stores`"), "{msg}");
    assert_eq!(server.request_count("/Stores"), 3);

    // A crash mid-extraction: two good pages, then errors.
    server.faults().clear_all();
    let lines = config
        .resource_by_path("/SalesOrderDetails")
        .expect("resource");
    server.faults().inject(
        "/SalesOrderDetails",
        Fault::FailAfterPages {
            pages: 2,
            status: 500,
        },
    );
    let mut pages = client.pages(lines, None);
    let mut good = 0;
    let err = loop {
        match pages.try_next().await {
            Ok(Some(p)) => {
                good += 1;
                assert_eq!(p.batch.num_rows(), 100);
            }
            Ok(None) => panic!("the extraction should fail"),
            Err(e) => break e,
        }
    };
    assert_eq!(good, 2);
    assert!(err.message().contains("HTTP 500"), "{}", err.message());

    // Client errors are not retried.
    server.faults().clear_all();
    let mut missing = stores.clone();
    missing.api_path = "/NoSuchThings".to_string();
    let err = client.fetch_all(&missing, None).await.expect_err("404");
    assert!(
        err.message()
            .contains("HTTP 404 Not Found: resource `/NoSuchThings` not found"),
        "{}",
        err.message()
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unknown_fields_become_extra_columns() {
    let (mut config, server) = start(1000, 0).await;
    let client = ODataClient::new(server.base_url(), fast_retry(0)).expect("client");
    let addresses = config
        .resources
        .iter_mut()
        .find(|r| r.api_path == "/Addresses")
        .expect("resource");
    addresses.columns.retain(|c| c.name != "address_line2");
    let got = client.fetch_all(addresses, None).await.expect("extracts");
    assert_eq!(
        got.extra_columns.iter().cloned().collect::<Vec<_>>(),
        vec![("address_line2".to_string(), "AddressLine2".to_string())]
    );
    let b = &got.batches[0];
    let schema = b.schema();
    let field = schema.field(schema.fields().len() - 1);
    assert_eq!(field.name(), "address_line2");
    assert!(is_extra(field));
    assert_eq!(
        field.metadata().get(EXTRA_COLUMN_KEY).map(String::as_str),
        Some("true")
    );
    let values = b
        .column(schema.fields().len() - 1)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8");
    let non_null = values.iter().flatten().count();
    assert!(non_null < values.len(), "mostly NULL");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn server_query_options_and_errors() {
    let (_, server) = start(1000, 0).await;
    let http = reqwest::Client::new();
    let get = |q: &str| {
        let url = format!("{}/Departments{q}", server.base_url());
        let http = http.clone();
        async move {
            let resp = http.get(&url).send().await.expect("request");
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.expect("json");
            (status, body)
        }
    };
    let (status, body) = get("?$top=3&$skip=2&$count=true").await;
    assert_eq!(status, 200);
    assert_eq!(body["@odata.count"], 16);
    let ids: Vec<i64> = body["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|r| r["DepartmentId"].as_i64())
        .collect();
    assert_eq!(ids, vec![3, 4, 5]);
    assert_eq!(body["value"][0]["Name"], "Sales");
    assert_eq!(body["value"][0]["ModifiedDate"], "2008-04-30");
    assert!(
        body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/$metadata#Departments")
    );
    let (status, body) = get("?$filter=ModifiedDate%20gt%202008-04-30").await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().expect("value").len(), 0);
    let (status, body) = get("?$filter=Name%20eq%20Sales").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "unsupported $filter field `Name`: only `ModifiedDate` can be filtered"
    );
    let (status, _) = get("?$orderby=Name").await;
    assert_eq!(status, 400);
    let resp = http
        .get(format!("{}/Nope", server.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 404);

    // A next link from another day is refused, not silently mixed.
    let url = format!("{}/Persons?$top=5", server.base_url());
    let first: serde_json::Value = http
        .get(&url)
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert!(
        first.get("@odata.nextLink").is_none(),
        "$top within one page"
    );
    server.set_day(1).expect("day 1");
    let stale = format!("{}/Persons?$skiptoken=0-10", server.base_url());
    let resp = http.get(&stale).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 410);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn resuming_after_a_crash_leaves_no_gap() {
    let (config, server) = start(60, 2).await;
    let client = ODataClient::new(server.base_url(), fast_retry(0)).expect("client");
    let lines = config
        .resource_by_path("/SalesOrderDetails")
        .expect("resource");
    let all: Vec<i64> = ids_of(
        &client.fetch_all(lines, None).await.expect("full").batches,
        "sales_order_detail_id",
    );
    server.faults().inject(
        "/SalesOrderDetails",
        Fault::FailAfterPages {
            pages: 3,
            status: 503,
        },
    );
    let mut committed = Vec::new();
    let mut last_cursor = None;
    let mut pages = client.pages(lines, None);
    while let Ok(Some(p)) = pages.try_next().await {
        committed.extend(ids_of(
            std::slice::from_ref(&p.batch),
            "sales_order_detail_id",
        ));
        last_cursor = p.max_cursor;
    }
    drop(pages);
    assert_eq!(committed.len(), 180, "three pages before the crash");
    server.faults().clear_all();
    let resumed = client
        .fetch_all(lines, last_cursor.map(Cursor::AtOrAfter))
        .await
        .expect("resumed");
    committed.extend(ids_of(&resumed.batches, "sales_order_detail_id"));
    committed.sort_unstable();
    committed.dedup();
    let mut expected = all.clone();
    expected.sort_unstable();
    assert_eq!(committed, expected, "duplicates are possible, gaps are not");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn same_options_serve_identical_bytes() {
    let (_, a) = start(500, 2).await;
    let (_, b) = start(500, 2).await;
    let http = reqwest::Client::new();
    for path in [
        "/SalesOrderHeaders",
        "/Persons",
        "/ProductPhotos",
        "/EmployeePayHistories",
    ] {
        let body = |base: &str| {
            let url = format!("{base}{path}?$filter=ModifiedDate%20ge%201970-01-01");
            let http = http.clone();
            async move {
                http.get(url)
                    .send()
                    .await
                    .expect("request")
                    .bytes()
                    .await
                    .expect("body")
            }
        };
        let (x, y) = (body(a.base_url()).await, body(b.base_url()).await);
        // Only the host in @odata.context and @odata.nextLink differs.
        let strip = |s: &[u8], base: &str| String::from_utf8_lossy(s).replace(base, "BASE");
        assert_eq!(strip(&x, a.base_url()), strip(&y, b.base_url()), "{path}");
    }
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

fn ids_of(batches: &[arrow::record_batch::RecordBatch], column: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.schema().index_of(column).expect("column");
        let a = b
            .column(c)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        out.extend(a.iter().flatten());
    }
    out
}

#[tokio::test]
async fn a_server_with_horizons_answers_from_them_as_the_full_one() {
    let config = SourceConfig::adventure_works().expect("config");
    let day2 = Generator::date_of_day(2);
    let options = |horizons: Vec<(&str, NaiveDate)>| ServerOptions {
        page_size: 500,
        generator: GeneratorOptions {
            seed: SEED,
            scale: 0.01,
        },
        day: 3,
        horizons: horizons
            .into_iter()
            .map(|(p, d)| (p.to_string(), d))
            .collect(),
        ..ServerOptions::default()
    };
    let full = serve(&config, options(vec![])).await.expect("full server");
    let pruned = serve(
        &config,
        options(vec![("/SalesOrderDetails", day2), ("/Persons", day2)]),
    )
    .await
    .expect("server with horizons");
    assert!(
        pruned.with_generator(|g| {
            let t = g.table_by_path("/SalesOrderDetails").expect("lines");
            t.pruned() > 0
                && t.len()
                    < full.with_generator(|f| {
                        f.table_by_path("/SalesOrderDetails").expect("lines").len()
                    })
        }),
        "older order lines are left out"
    );
    let http = reqwest::Client::new();
    let get = |base: &str, path: &str, query: &str| {
        let url = format!("{base}{path}?{query}");
        let http = http.clone();
        async move {
            let resp = http.get(url).send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.bytes().await.expect("body"))
        }
    };
    let strip = |s: &[u8], base: &str| String::from_utf8_lossy(s).replace(base, "BASE");
    // From the horizon on (and for tables whose rows are read back, from
    // any date) both answer the same bytes.
    for (path, query) in [
        (
            "/SalesOrderDetails",
            "$filter=ModifiedDate%20ge%202014-07-02",
        ),
        (
            "/SalesOrderDetails",
            "$filter=ModifiedDate%20gt%202014-07-02",
        ),
        (
            "/SalesOrderDetails",
            "$filter=ModifiedDate%20eq%202014-07-03",
        ),
        ("/Persons", "$filter=ModifiedDate%20ge%201970-01-01"),
        (
            "/TransactionHistories",
            "$filter=ModifiedDate%20ge%201970-01-01",
        ),
    ] {
        let (s1, a) = get(full.base_url(), path, query).await;
        let (s2, b) = get(pruned.base_url(), path, query).await;
        assert_eq!((s1, s2), (200, 200), "{path}?{query}");
        assert_eq!(
            strip(&a, full.base_url()),
            strip(&b, pruned.base_url()),
            "{path}?{query}"
        );
    }
    // Before the horizon, or without a lower bound, it refuses.
    for query in [
        "$filter=ModifiedDate%20ge%202014-07-01",
        "$filter=ModifiedDate%20le%202014-07-05",
        "$top=10",
    ] {
        let (status, body) = get(pruned.base_url(), "/SalesOrderDetails", query).await;
        assert_eq!(status, 409, "{query}");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"]["code"], "Conflict");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("/SalesOrderDetails") && message.contains("2014-07-02"),
            "{message}"
        );
    }
    full.shutdown().await.expect("shutdown");
    pruned.shutdown().await.expect("shutdown");
}
