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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use lakehouse::storage::Warehouse;

/// The shop's rows by entity set, as JSON objects.
type Shop = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// Rows per page: small, so every resource takes several pages.
const PAGE: usize = 2;

fn customer(id: i64, name: &str, city: &str, modified: &str) -> Value {
    json!({"CustomerId": id, "Name": name, "City": city, "ModifiedDate": modified})
}

fn product(id: i64, price: &str, modified: &str) -> Value {
    json!({"ProductId": id, "Price": price, "ModifiedDate": modified})
}

fn order(id: i64, customer: i64, date: &str, modified: &str) -> Value {
    json!({"OrderId": id, "CustomerId": customer, "OrderDate": date, "ModifiedDate": modified})
}

fn line(id: i64, order: i64, product: i64, qty: i64, amount: &str, modified: &str) -> Value {
    json!({"OrderLineId": id, "OrderId": order, "ProductId": product, "Quantity": qty,
           "Amount": amount, "ModifiedDate": modified})
}

/// The shop on its first day. Products 300 and 450 are Adventure Works
/// finished goods (with a subcategory and category); 9999 is the shop's own.
fn first_day() -> BTreeMap<String, Vec<Value>> {
    BTreeMap::from([
        (
            "Customers".to_string(),
            vec![
                customer(1, "Ada", "Leuven", "2014-06-20T08:00:00Z"),
                customer(2, "Bo", "Gent", "2014-06-20T09:00:00Z"),
                customer(3, "Cy", "Brugge", "2014-06-21T10:00:00Z"),
            ],
        ),
        (
            "Products".to_string(),
            vec![
                product(300, "19.99", "2014-06-01T00:00:00Z"),
                product(450, "1024.50", "2014-06-01T00:00:00Z"),
                product(9999, "0.10", "2014-06-01T00:00:00Z"),
            ],
        ),
        (
            "Orders".to_string(),
            vec![
                order(10, 1, "2014-06-22", "2014-06-22T12:00:00Z"),
                order(11, 2, "2014-06-23", "2014-06-23T12:00:00Z"),
                order(12, 1, "2014-06-25", "2014-06-25T12:00:00Z"),
            ],
        ),
        (
            "OrderLines".to_string(),
            vec![
                line(100, 10, 300, 2, "39.98", "2014-06-22T12:00:00Z"),
                line(101, 10, 450, 1, "1024.50", "2014-06-22T12:00:00Z"),
                line(102, 11, 300, 3, "59.97", "2014-06-23T12:00:00Z"),
                line(103, 11, 9999, 7, "0.70", "2014-06-23T12:00:00Z"),
                line(104, 12, 450, 1, "1000.01", "2014-06-25T12:00:00Z"),
            ],
        ),
    ])
}

/// A cursor literal as the extractor writes it: a date, or a date-time.
fn instant(text: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("cursor literal {text:?}: {e}"))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
    }
}

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

const SHOP_SOURCE: &str = r#"name: shop
base_url: BASE
resources:
  - table: raw__shop__customers
    api_path: /Customers
    primary_key: [customer_id]
    cursor_field: ModifiedDate
    columns:
      - { name: customer_id, source: CustomerId, type: bigint }
      - { name: name, source: Name, type: text }
      - { name: city, source: City, type: text }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__products
    api_path: /Products
    primary_key: [product_id]
    cursor_field: ModifiedDate
    columns:
      - { name: product_id, source: ProductId, type: bigint }
      - { name: price, source: Price, type: "decimal(12,2)" }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__orders
    api_path: /Orders
    primary_key: [order_id]
    cursor_field: ModifiedDate
    columns:
      - { name: order_id, source: OrderId, type: bigint }
      - { name: customer_id, source: CustomerId, type: bigint }
      - { name: order_date, source: OrderDate, type: date }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__order_lines
    api_path: /OrderLines
    primary_key: [order_line_id]
    cursor_field: ModifiedDate
    columns:
      - { name: order_line_id, source: OrderLineId, type: bigint }
      - { name: order_id, source: OrderId, type: bigint }
      - { name: product_id, source: ProductId, type: bigint }
      - { name: quantity, source: Quantity, type: bigint }
      - { name: amount, source: Amount, type: "decimal(12,2)" }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
"#;

const SHOP_FRAMES: &str = r#"
  - name: frame__shop__customers
    source_table: raw__shop__customers
    column_prefix: shop_customer
    hooks:
      - { name: _hook__customer__shop, keyset: customer__shop, business_key: customer_id, primary: true }
  - name: frame__shop__products
    source_table: raw__shop__products
    column_prefix: shop_product
    hooks:
      - { name: _hook__product__shop, keyset: product__shop, business_key: product_id, primary: true }
      - { name: _hook__product, keyset: product__adventure_works, business_key: product_id }
  - name: frame__shop__orders
    source_table: raw__shop__orders
    column_prefix: shop_order
    hooks:
      - { name: _hook__order__shop, keyset: order__shop, business_key: order_id, primary: true }
      - { name: _hook__customer__shop, keyset: customer__shop, business_key: customer_id }
  - name: frame__shop__order_lines
    source_table: raw__shop__order_lines
    column_prefix: shop_order_line
    hooks:
      - { name: _hook__order_line__shop, keyset: order_line__shop, business_key: order_line_id, primary: true }
      - { name: _hook__order__shop, keyset: order__shop, business_key: order_id }
      - { name: _hook__product__shop, keyset: product__shop, business_key: product_id }
"#;

const MEASURES: &str = r#"frames:
  - frame: frame__shop__order_lines
    measures:
      - { name: measure__shop_line_amount_ordered, value: amount, via: _hook__order__shop, date: order_date }
"#;

/// Adventure Works' product tables only (a quick build), plus the shop.
const AW_KEPT: &[&str] = &[
    "raw__adventure_works__products",
    "raw__adventure_works__product_subcategories",
    "raw__adventure_works__product_categories",
    "raw__adventure_works__product_models",
];

/// Write the two-source project into `dir` (made by `lakehouse new`).
fn make_project(dir: &Path, shop_base: &str) {
    let yaml = |p: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap()
    };
    let write = |p: &str, v: &serde_yaml::Value| {
        std::fs::write(dir.join(p), serde_yaml::to_string(v).unwrap()).unwrap()
    };
    let kept =
        |v: &serde_yaml::Value, key: &str| AW_KEPT.contains(&v[key].as_str().unwrap_or_default());
    let mut aw = yaml("sources/adventure_works.yaml");
    aw["resources"]
        .as_sequence_mut()
        .unwrap()
        .retain(|r| kept(r, "table"));
    write("sources/adventure_works.yaml", &aw);
    std::fs::write(
        dir.join("sources/shop.yaml"),
        SHOP_SOURCE.replace("BASE", shop_base),
    )
    .unwrap();
    let mut frames = yaml("models/frames.yaml");
    let list = frames["frames"].as_sequence_mut().unwrap();
    list.retain(|f| kept(f, "source_table"));
    let shop: Vec<serde_yaml::Value> = serde_yaml::from_str(SHOP_FRAMES).unwrap();
    list.extend(shop);
    write("models/frames.yaml", &frames);
    let mut concepts = yaml("models/concepts.yaml");
    let list = concepts["concepts"].as_sequence_mut().unwrap();
    for (concept, keyset) in [
        ("customer", "customer__shop"),
        ("product", "product__shop"),
        ("order", "order__shop"),
        ("order_line", "order_line__shop"),
    ] {
        let c = list
            .iter_mut()
            .find(|c| c["name"].as_str() == Some(concept))
            .unwrap_or_else(|| panic!("concept {concept}"));
        c["keysets"].as_sequence_mut().unwrap().push(keyset.into());
    }
    write("models/concepts.yaml", &concepts);
    std::fs::write(dir.join("models/measures.yaml"), MEASURES).unwrap();
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
    make_project(&dir, &base);

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
    {
        let mut s = shop.lock().unwrap();
        s.get_mut("Customers").unwrap().push(customer(
            2,
            "Bo",
            "Antwerpen",
            "2014-06-26T09:00:00Z",
        ));
        s.get_mut("Customers").unwrap().remove(1);
        s.get_mut("Orders")
            .unwrap()
            .push(order(13, 2, "2014-06-26", "2014-06-26T10:00:00Z"));
        let lines = s.get_mut("OrderLines").unwrap();
        lines.push(line(105, 13, 300, 1, "19.99", "2014-06-26T10:00:00Z"));
        lines.retain(|l| l["OrderLineId"] != 104);
        lines.push(line(104, 12, 450, 1, "1000.00", "2014-06-26T11:00:00Z"));
    }
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
        rows(
            &wh,
            "SELECT shop_customer__city, shop_customer__record_version, shop_customer__is_current_record \
             FROM dab.frame__shop__customers \
             WHERE shop_customer__customer_id = 2 ORDER BY shop_customer__record_valid_from"
        )
        .await,
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
