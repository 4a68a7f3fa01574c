//! Two source systems in one project, through the real binary, with no Rust
//! change: Adventure Works (the embedded source, trimmed to its product
//! tables) and a small shop served over HTTP by this test (customers,
//! products, orders and order lines, paged with `@odata.nextLink` and
//! filtered by a `ModifiedDate` cursor). The shop sells Adventure Works
//! products under their ids, so its frames meet Adventure Works' where they
//! share the hook `_hook__product`: a shop order line's bridge row carries the
//! PIT hooks of the Adventure Works product, subcategory and category valid
//! at its time.
//!
//! `init` builds every layer of both; the shop changes (a customer moves, an
//! order is added, a line's amount is corrected), `elt` lands only those rows
//! and builds incrementally to the same tables as a full rebuild; events carry
//! the shop's decimal amounts exactly, and the dashboard shows the shop's
//! measure.

mod common;

use common::shop::*;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use lakehouse::storage::Warehouse;

/// `GET /shop/<Entity>`: the rows passing `$filter=ModifiedDate ge|gt X`, in
/// cursor order, one page at `$skiptoken`, with a next link while more remain.
async fn entity_set(
    State((shop, base)): State<(Shop, String)>,
    UrlPath(entity): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(rows) = shop.lock().unwrap().get(&entity).cloned() else {
        return (axum::http::StatusCode::NOT_FOUND, "no such entity set").into_response();
    };
    let filter = q.get("$filter").cloned().unwrap_or_default();
    let (op, literal) = match filter.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["ModifiedDate", op, lit] => (op.to_string(), instant(lit)),
        [] => ("ge".to_string(), instant("1970-01-01")),
        other => panic!("unexpected $filter {other:?}"),
    };
    let mut rows: Vec<Value> = rows
        .into_iter()
        .filter(|r| {
            let m = instant(r["ModifiedDate"].as_str().unwrap());
            if op == "gt" {
                m > literal
            } else {
                m >= literal
            }
        })
        .collect();
    rows.sort_by_key(|r| instant(r["ModifiedDate"].as_str().unwrap()));
    let skip: usize = q.get("$skiptoken").map_or(0, |s| s.parse().unwrap());
    let page: Vec<Value> = rows.iter().skip(skip).take(PAGE).cloned().collect();
    let mut body = json!({"@odata.context": format!("{base}$metadata#{entity}"), "value": page});
    if skip + PAGE < rows.len() {
        let mut next = url::Url::parse(&format!("{base}{entity}")).unwrap();
        next.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$skiptoken", &(skip + PAGE).to_string());
        body["@odata.nextLink"] = json!(next.to_string());
    }
    axum::Json(body).into_response()
}

/// Serve the shop on a free port; returns its base URL (ending in `/`).
async fn serve_shop(shop: Shop) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}/shop/", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/shop/{entity}", axum::routing::get(entity_set))
        .with_state((shop, base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

use common::lakehouse_in as lakehouse;

/// One query's rows as text lines.
async fn rows(wh: &Warehouse, sql: &str) -> Vec<String> {
    let ctx = datafusion::prelude::SessionContext::new();
    wh.register_all(&ctx).await.unwrap();
    common::text_rows(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}

async fn one(wh: &Warehouse, sql: &str) -> String {
    let r = rows(wh, sql).await;
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_source_systems_meet_at_their_shared_hooks_from_init_to_dashboard() {
    let shop: Shop = Arc::new(Mutex::new(first_day()));
    let base = serve_shop(Arc::clone(&shop)).await;
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "two"]);
    assert!(ok, "{err}");
    let dir = tmp.path().join("two");
    make_project(&dir, &SHOP_SOURCE.replace("BASE", &base));

    let (ok, out, err) = lakehouse(&dir, &["init", "--scale", "0.005", "--seed", "3"]);
    assert!(ok, "init: {err}\n{out}");
    let wh = Warehouse::open(dir.join("lakehouse").to_str().unwrap()).unwrap();

    // Both systems landed, each into its own tables.
    for (table, n) in [
        ("raw__shop__customers", 3),
        ("raw__shop__products", 3),
        ("raw__shop__orders", 3),
        ("raw__shop__order_lines", 5),
    ] {
        let c = one(&wh, &format!("SELECT count(*) FROM das.{table}")).await;
        assert_eq!(c, n.to_string(), "{table}");
    }
    let aw_products: i64 = one(
        &wh,
        "SELECT count(*) FROM das.raw__adventure_works__products",
    )
    .await
    .parse()
    .unwrap();
    assert_eq!(aw_products, 504);

    // The shop's frames: exact hooks; amounts exact decimals.
    assert_eq!(
        rows(
            &wh,
            "SELECT _hook__order_line__shop, _hook__order__shop, _hook__product__shop, \
             shop_order_line__amount FROM dab.frame__shop__order_lines ORDER BY shop_order_line__order_line_id"
        )
        .await,
        vec![
            "order_line__shop|100|order__shop|10|product__shop|300|39.98",
            "order_line__shop|101|order__shop|10|product__shop|450|1024.50",
            "order_line__shop|102|order__shop|11|product__shop|300|59.97",
            "order_line__shop|103|order__shop|11|product__shop|9999|0.70",
            "order_line__shop|104|order__shop|12|product__shop|450|1000.01",
        ]
    );

    // Where the systems meet: a shop line's bridge row carries the Adventure
    // Works product's PIT hook (and its category's, cascaded); the shop's own
    // product 9999 has none.
    let bridge = "dar__staging.bridge__shop__order_lines";
    let of_line = |line: i64, column: &str| {
        format!(
            "SELECT {column} FROM {bridge} \
             WHERE _pit_hook__order_line__shop LIKE 'order_line__shop|{line}~%'"
        )
    };
    let aw_product_300 = one(
        &wh,
        "SELECT _pit_hook__product FROM dab.frame__adventure_works__products \
         WHERE product__product_id = 300",
    )
    .await;
    assert!(aw_product_300.starts_with("product__adventure_works|300~epoch__valid_from|"));
    assert_eq!(
        one(&wh, &of_line(100, "_pit_hook__product")).await,
        aw_product_300
    );
    let aw_category = one(
        &wh,
        "SELECT c._pit_hook__product_category FROM dab.frame__adventure_works__products p \
         JOIN dab.frame__adventure_works__product_subcategories s \
           ON p._hook__product_subcategory = s._hook__product_subcategory \
         JOIN dab.frame__adventure_works__product_categories c \
           ON s._hook__product_category = c._hook__product_category \
         WHERE p.product__product_id = 300",
    )
    .await;
    assert_eq!(
        one(&wh, &of_line(100, "_pit_hook__product_category")).await,
        aw_category,
        "the category is reached through Adventure Works' frames"
    );
    assert_eq!(
        one(&wh, &of_line(100, "_pit_hook__customer__shop")).await,
        "customer__shop|1~epoch__valid_from|1970-01-01T00:00:00Z",
        "the order's customer, cascaded"
    );
    let line_103 = one(&wh, &of_line(103, "_pit_hook__product")).await;
    assert_eq!(line_103, "NULL", "no Adventure Works product 9999");
    assert_eq!(
        one(
            &wh,
            "SELECT _pit_hook__product FROM dar._bridge__as_of \
             WHERE peripheral = 'shop__order_lines' AND _pit_hook__order_line__shop LIKE 'order_line__shop|103~%'"
        )
        .await,
        "ghost_record"
    );

    // The events carry the amounts on the order dates, exactly.
    assert_eq!(
        rows(
            &wh,
            "SELECT _hook__epoch__date, sum(measure__shop_line_amount_ordered) \
             FROM dar__staging.event__shop__order_lines \
             WHERE measure__shop_line_amount_ordered IS NOT NULL \
             GROUP BY _hook__epoch__date ORDER BY _hook__epoch__date"
        )
        .await,
        vec![
            "epoch__date|2014-06-22|1064.48",
            "epoch__date|2014-06-23|60.67",
            "epoch__date|2014-06-25|1000.01",
        ]
    );
    let peripherals = rows(
        &wh,
        "SELECT DISTINCT peripheral FROM dar._bridge__as_of ORDER BY peripheral",
    )
    .await;
    for p in [
        "adventure_works__products",
        "shop__customers",
        "shop__order_lines",
        "shop__orders",
        "shop__products",
    ] {
        assert!(
            peripherals.iter().any(|x| x == p),
            "{p} in the unified bridge: {peripherals:?}"
        );
    }

    // The shop changes: a customer moves, an order with a line is added, and
    // an amount is corrected.
    second_day(&shop);
    let (ok, out, err) = lakehouse(&dir, &["elt"]);
    assert!(ok, "elt: {err}\n{out}");
    // Only the new and changed shop rows were landed.
    for (table, n) in [
        ("raw__shop__customers", 4),
        ("raw__shop__orders", 4),
        ("raw__shop__order_lines", 7),
        ("raw__shop__products", 3),
    ] {
        let c = one(&wh, &format!("SELECT count(*) FROM das.{table}")).await;
        assert_eq!(c, n.to_string(), "{table} after elt");
    }
    // Customer 2 has two versions.
    assert_eq!(
        rows(&wh, CUSTOMER_2_VERSIONS).await,
        vec!["Gent|1|false", "Antwerpen|2|true"]
    );
    assert_eq!(
        rows(
            &wh,
            "SELECT _hook__epoch__date, sum(measure__shop_line_amount_ordered) \
             FROM dar__staging.event__shop__order_lines \
             WHERE measure__shop_line_amount_ordered IS NOT NULL AND bridge__is_current_record \
             GROUP BY _hook__epoch__date ORDER BY _hook__epoch__date"
        )
        .await,
        vec![
            "epoch__date|2014-06-22|1064.48",
            "epoch__date|2014-06-23|60.67",
            "epoch__date|2014-06-25|1000.00",
            "epoch__date|2014-06-26|19.99",
        ]
    );

    // Incremental == full: rebuilding every model from scratch gives the
    // same rows.
    let incremental = common::model_tables(&wh).await;
    let (ok, out, err) = lakehouse(&dir, &["transform", "--layer", "all", "--full"]);
    assert!(ok, "transform --full: {err}\n{out}");
    let full = common::model_tables(&wh).await;
    let differ: Vec<&String> = full
        .iter()
        .filter(|(t, r)| incremental.get(*t) != Some(r))
        .map(|(t, _)| t)
        .collect();
    assert!(differ.is_empty(), "incremental != full for {differ:?}");
    assert!(full.contains_key("dar.shop__order_lines"));

    // The dashboard shows the shop's measure, summed per day.
    let server = lakehouse::dashboard::serve(&wh, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let api: Value = reqwest::get(format!(
        "{}/api/metrics?from=2014-06-01&to=2014-06-30",
        server.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let metric = api["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "metric__shop_line_amount_ordered")
        .unwrap_or_else(|| panic!("the shop's metric: {api}"));
    let total: f64 = metric["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    assert!(
        (total - 2145.14).abs() < 1e-6,
        "the month's shop amounts (current lines): {total}"
    );
}
