//! A REST JSON source (`kind: rest`) through the real binary, with no Rust
//! change: the shop of `two_sources.rs`, served by this test as a plain JSON
//! API behind a bearer token, each resource paged its own way (a next link
//! in the body, a `Link` header, offset/limit, page numbers, a cursor
//! token), one answering `429` once, with an `updated_since` cursor
//! parameter and a look-back.
//!
//! `init` lands every resource and builds the shop's frames beside Adventure
//! Works'; after the shop changes, `elt` lands only the new and changed rows
//! (rows the look-back or a whole read brings again land once). A missing
//! secret, a wrong record path and a next link to another host each fail
//! with one line naming the file or resource.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use common::lakehouse_in_with as lakehouse;
use common::shop::*;
use lakehouse::storage::Warehouse;

const TOKEN: &str = "t0ken-for-tests";

/// The API's state: the shop, the requests seen, and faults to inject.
struct Api {
    shop: Shop,
    base: String,
    requests: Mutex<Vec<String>>,
    /// Answer the next products request with 429 (once).
    throttle: AtomicBool,
    /// Send the customers' next link to another host.
    foreign_link: AtomicBool,
}

/// A resource's rows changed at or after `updated_since` (all without it),
/// in cursor then key order.
fn rows_since(api: &Api, entity: &str, q: &BTreeMap<String, String>) -> Vec<Value> {
    let rows = api
        .shop
        .lock()
        .unwrap()
        .get(entity)
        .cloned()
        .unwrap_or_default();
    let since = q.get("updated_since").map(|s| instant(s));
    let mut rows: Vec<Value> = rows
        .into_iter()
        .filter(|r| since.is_none_or(|s| instant(r["ModifiedDate"].as_str().unwrap()) >= s))
        .collect();
    rows.sort_by_key(|r| {
        (
            instant(r["ModifiedDate"].as_str().unwrap()),
            r.as_object().unwrap().values().next().unwrap().as_i64(),
        )
    });
    rows
}

fn number(q: &BTreeMap<String, String>, name: &str, default: usize) -> usize {
    q.get(name).map_or(default, |v| v.parse().unwrap())
}

async fn resource(
    State(api): State<Arc<Api>>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    api.requests.lock().unwrap().push(uri.to_string());
    let bearer = format!("Bearer {TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(bearer.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "bad token"})),
        )
            .into_response();
    }
    match name.as_str() {
        // A next link in the body, under `links.next`.
        "customers" => {
            let rows = rows_since(&api, "Customers", &q);
            let skip = number(&q, "skip", 0);
            let page: Vec<Value> = rows.iter().skip(skip).take(PAGE).cloned().collect();
            let host = if api.foreign_link.load(Ordering::SeqCst) {
                "http://elsewhere.example/api/".to_string()
            } else {
                api.base.clone()
            };
            let next = (skip + PAGE < rows.len()).then(|| {
                let mut u = url::Url::parse(&format!("{host}customers")).unwrap();
                if let Some(s) = q.get("updated_since") {
                    u.query_pairs_mut().append_pair("updated_since", s);
                }
                u.query_pairs_mut()
                    .append_pair("skip", &(skip + PAGE).to_string());
                u.to_string()
            });
            axum::Json(json!({"data": page, "links": {"next": next}})).into_response()
        }
        // Offset and limit, with a total; throttled once.
        "products" => {
            if api.throttle.swap(false, Ordering::SeqCst) {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "0")],
                    "slow down",
                )
                    .into_response();
            }
            let rows = rows_since(&api, "Products", &q);
            let (offset, limit) = (number(&q, "offset", 0), number(&q, "limit", 100));
            let page: Vec<Value> = rows.iter().skip(offset).take(limit).cloned().collect();
            axum::Json(json!({"products": page, "total": rows.len()})).into_response()
        }
        // Page numbers from 1, the records as the body itself.
        "orders" => {
            let rows = rows_since(&api, "Orders", &q);
            let (page, size) = (number(&q, "page", 1), number(&q, "per_page", 100));
            let out: Vec<Value> = rows
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .cloned()
                .collect();
            axum::Json(Value::Array(out)).into_response()
        }
        // A cursor token.
        "order_lines" => {
            let rows = rows_since(&api, "OrderLines", &q);
            let at = number(&q, "after", 0);
            let page: Vec<Value> = rows.iter().skip(at).take(PAGE).cloned().collect();
            let token = (at + PAGE < rows.len()).then(|| (at + PAGE).to_string());
            axum::Json(json!({"result": {"items": page}, "next_cursor": token})).into_response()
        }
        // A `Link` header.
        "stores" => {
            let stores: Vec<Value> = (1..=3)
                .map(|i| json!({"StoreId": i, "Name": format!("Store {i}"), "ModifiedDate": "2014-06-01T00:00:00Z"}))
                .collect();
            let at = number(&q, "from", 0);
            let page: Vec<Value> = stores.iter().skip(at).take(PAGE).cloned().collect();
            let mut resp = axum::Json(Value::Array(page)).into_response();
            if at + PAGE < stores.len() {
                let link = format!("</api/stores?from={}>; rel=\"next\"", at + PAGE);
                resp.headers_mut()
                    .insert(header::LINK, link.parse().unwrap());
            }
            resp
        }
        _ => (StatusCode::NOT_FOUND, "no such resource").into_response(),
    }
}

async fn serve(shop: Shop) -> Arc<Api> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let api = Arc::new(Api {
        shop,
        base: format!("http://{}/api/", listener.local_addr().unwrap()),
        requests: Mutex::new(Vec::new()),
        throttle: AtomicBool::new(true),
        foreign_link: AtomicBool::new(false),
    });
    let app = axum::Router::new()
        .route("/api/{name}", axum::routing::get(resource))
        .route("/api/", axum::routing::get(|| async { "shop api" }))
        .with_state(Arc::clone(&api));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    api
}

/// What makes the shop's OData source ([`SHOP_SOURCE`]) a REST one: the
/// source's kind, auth, paging and rate, each resource's path, records and
/// paging, and a fifth resource paged by `Link` headers.
const REST_KEYS: &str = r#"
source:
  kind: rest
  auth: { type: bearer, token_env: SHOP_TOKEN }
  paginator: { type: json_link, next_url_path: links.next }
  rate_limit: { requests_per_second: 200 }
resources:
  raw__shop__customers:
    { api_path: /customers, data_selector: data, cursor_param: updated_since, lookback: 1h }
  raw__shop__products:
    api_path: /products
    data_selector: products
    paginator: { type: offset, limit: 2, total_path: total }
  raw__shop__orders:
    api_path: /orders
    params: { per_page: "2" }
    paginator: { type: page_number }
    cursor_param: updated_since
  raw__shop__order_lines:
    api_path: /order_lines
    data_selector: result.items
    paginator: { type: cursor, cursor_path: next_cursor, cursor_param: after }
    cursor_param: updated_since
stores:
  table: raw__shop__stores
  api_path: /stores
  paginator: { type: header_link }
  primary_key: [store_id]
  cursor_field: ModifiedDate
  columns:
    - { name: store_id, source: StoreId, type: bigint }
    - { name: name, source: Name, type: text }
    - { name: modified_date, source: ModifiedDate, type: timestamp }
"#;

/// The shop's REST source file for the API at `base`.
fn rest_source(base: &str) -> String {
    use serde_yaml::Value as Yaml;
    let mut source: Yaml = serde_yaml::from_str(&SHOP_SOURCE.replace("BASE", base)).unwrap();
    let keys: Yaml = serde_yaml::from_str(REST_KEYS).unwrap();
    for (k, v) in keys["source"].as_mapping().unwrap() {
        source[k.as_str().unwrap()] = v.clone();
    }
    let resources = source["resources"].as_sequence_mut().unwrap();
    for r in resources.iter_mut() {
        let own = &keys["resources"][r["table"].as_str().unwrap()];
        for (k, v) in own.as_mapping().unwrap() {
            r[k.as_str().unwrap()] = v.clone();
        }
    }
    resources.push(keys["stores"].clone());
    serde_yaml::to_string(&source).unwrap()
}

async fn rows(wh: &Warehouse, sql: &str) -> Vec<String> {
    let ctx = datafusion::prelude::SessionContext::new();
    wh.register_all(&ctx).await.unwrap();
    common::text_rows(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}

async fn counts(wh: &Warehouse) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in ["customers", "products", "orders", "order_lines", "stores"] {
        let n = rows(wh, &format!("SELECT count(*) FROM das.raw__shop__{t}")).await;
        out.push((t.to_string(), n[0].clone()));
    }
    out
}

fn expect(counts: &[(&str, usize)]) -> Vec<(String, String)> {
    counts
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_source_lands_through_every_paginator_and_only_its_changes() {
    let shop: Shop = Arc::new(Mutex::new(first_day()));
    let api = serve(Arc::clone(&shop)).await;
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "rest"], &[]);
    assert!(ok, "{err}");
    let dir = tmp.path().join("rest");
    make_project(&dir, &rest_source(&api.base));
    let init = ["init", "--scale", "0.005", "--seed", "3"];

    // Without its secret the source fails in one line naming file and variable.
    let (ok, out, err) = lakehouse(&dir, &init, &[]);
    assert!(!ok, "no token: {out}");
    assert!(
        err.contains("sources/shop.yaml: auth: environment variable SHOP_TOKEN is not set"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));

    let env = [("SHOP_TOKEN", TOKEN)];
    let (ok, out, err) = lakehouse(&dir, &init, &env);
    assert!(ok, "init: {err}\n{out}");
    let wh = Warehouse::open(dir.join("lakehouse").to_str().unwrap()).unwrap();
    assert_eq!(
        counts(&wh).await,
        expect(&[
            ("customers", 3),
            ("products", 3),
            ("orders", 3),
            ("order_lines", 5),
            ("stores", 3)
        ])
    );
    let seen = api.requests.lock().unwrap().clone();
    let asked = |prefix: &str| -> Vec<String> {
        seen.iter()
            .filter(|u| u.starts_with(prefix))
            .cloned()
            .collect()
    };
    // Each paginator walked its pages; the 429 was retried.
    assert_eq!(
        asked("/api/customers"),
        ["/api/customers", "/api/customers?skip=2"]
    );
    assert_eq!(
        asked("/api/products"),
        [
            "/api/products?offset=0&limit=2",
            "/api/products?offset=0&limit=2",
            "/api/products?limit=2&offset=2"
        ]
    );
    assert_eq!(
        asked("/api/orders"),
        [
            "/api/orders?per_page=2&page=1",
            "/api/orders?per_page=2&page=2",
            "/api/orders?per_page=2&page=3"
        ]
    );
    assert_eq!(
        asked("/api/order_lines"),
        [
            "/api/order_lines",
            "/api/order_lines?after=2",
            "/api/order_lines?after=4"
        ]
    );
    assert_eq!(asked("/api/stores"), ["/api/stores", "/api/stores?from=2"]);

    // The frames over the REST tables: exact hooks and decimal amounts.
    assert_eq!(
        rows(
            &wh,
            "SELECT _hook__order_line__shop, _hook__product__shop, shop_order_line__amount \
             FROM dab.frame__shop__order_lines ORDER BY shop_order_line__order_line_id"
        )
        .await,
        vec![
            "order_line__shop|100|product__shop|300|39.98",
            "order_line__shop|101|product__shop|450|1024.50",
            "order_line__shop|102|product__shop|300|59.97",
            "order_line__shop|103|product__shop|9999|0.70",
            "order_line__shop|104|product__shop|450|1000.01",
        ]
    );

    // The next day: the cursor parameter asks only for what changed (the
    // customers one hour further back), products and stores are read whole,
    // and only new and changed rows land.
    second_day(&shop);
    api.requests.lock().unwrap().clear();
    let (ok, out, err) = lakehouse(&dir, &["elt"], &env);
    assert!(ok, "elt: {err}\n{out}");
    let after_elt = expect(&[
        ("customers", 4),
        ("products", 3),
        ("orders", 4),
        ("order_lines", 7),
        ("stores", 3),
    ]);
    assert_eq!(counts(&wh).await, after_elt);
    let seen = api.requests.lock().unwrap().clone();
    assert!(
        seen.contains(&"/api/customers?updated_since=2014-06-21T09%3A00%3A00Z".to_string()),
        "look-back of 1h before the landed cursor 2014-06-21T10:00:00Z: {seen:?}"
    );
    assert!(
        seen.contains(&"/api/order_lines?updated_since=2014-06-25T12%3A00%3A00Z".to_string()),
        "{seen:?}"
    );
    assert_eq!(
        rows(&wh, CUSTOMER_2_VERSIONS).await,
        vec!["Gent|1|false", "Antwerpen|2|true"]
    );

    // A wrong record path and a next link to another host fail their
    // resource with the cause; nothing of it lands, the others do.
    let broken = rest_source(&api.base).replace("data_selector: products", "data_selector: items");
    std::fs::write(dir.join("sources/shop.yaml"), broken).unwrap();
    api.foreign_link.store(true, Ordering::SeqCst);
    shop.lock().unwrap().get_mut("Customers").unwrap().extend([
        customer(4, "Di", "Hasselt", "2014-06-27T08:00:00Z"),
        customer(5, "Ed", "Mechelen", "2014-06-27T09:00:00Z"),
        customer(6, "Fi", "Aalst", "2014-06-27T10:00:00Z"),
    ]);
    let (ok, out, err) = lakehouse(&dir, &["extract"], &env);
    assert!(!ok, "{out}");
    assert!(
        err.contains("raw__shop__products")
            && err.contains(
                "the response has nothing at `data_selector: items` (arrays in it: products)"
            ),
        "{err}"
    );
    assert!(
        err.contains("raw__shop__customers")
            && err.contains("next link `http://elsewhere.example/api/customers")
            && err.contains("leads to another origin"),
        "{err}"
    );
    assert_eq!(counts(&wh).await, after_elt);
}

/// `source` with the products' price column of type `ty`.
fn price_typed(source: &str, ty: &str) -> String {
    let mut v: serde_yaml::Value = serde_yaml::from_str(source).unwrap();
    for r in v["resources"].as_sequence_mut().unwrap() {
        for c in r["columns"].as_sequence_mut().unwrap() {
            if c["name"] == "price" {
                c["type"] = ty.into();
            }
        }
    }
    serde_yaml::to_string(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_decimal_evolves_its_tables_and_a_changed_scale_stops_its_resource() {
    let shop: Shop = Arc::new(Mutex::new(first_day()));
    let api = serve(Arc::clone(&shop)).await;
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "widen"], &[]);
    assert!(ok, "{err}");
    let dir = tmp.path().join("widen");
    let source = rest_source(&api.base);
    make_project(&dir, &source);
    let env = [("SHOP_TOKEN", TOKEN)];
    let (ok, out, err) = lakehouse(&dir, &["init", "--scale", "0.005", "--seed", "3"], &env);
    assert!(ok, "init: {err}\n{out}");
    let wh = Warehouse::open(dir.join("lakehouse").to_str().unwrap()).unwrap();
    let price = "SELECT arrow_typeof(price), sum(price) FROM das.raw__shop__products GROUP BY 1";
    assert_eq!(rows(&wh, price).await, ["Decimal128(12, 2)|1044.59"]);

    // More digits for prices: no product changes, yet the table (and the
    // frame over it) take the wider type, and the old rows read exactly.
    let shop_yaml = dir.join("sources/shop.yaml");
    std::fs::write(&shop_yaml, price_typed(&source, "decimal(18,2)")).unwrap();
    second_day(&shop);
    let (ok, out, err) = lakehouse(&dir, &["elt"], &env);
    assert!(ok, "elt: {err}\n{out}");
    assert_eq!(rows(&wh, price).await, ["Decimal128(18, 2)|1044.59"]);
    assert_eq!(
        rows(
            &wh,
            "SELECT arrow_typeof(shop_product__price), count(*) FROM dab.frame__shop__products GROUP BY 1"
        )
        .await,
        ["Decimal128(18, 2)|3"]
    );
    // The widening kept the cursor: the next run lands nothing again.
    let (ok, out, err) = lakehouse(&dir, &["elt"], &env);
    assert!(ok, "elt: {err}\n{out}");
    assert_eq!(
        counts(&wh).await[1],
        ("products".to_string(), "3".to_string())
    );

    // Another scale is no widening: the resource stops, naming table and column.
    std::fs::write(&shop_yaml, price_typed(&source, "decimal(18,3)")).unwrap();
    let (ok, out, err) = lakehouse(&dir, &["elt"], &env);
    assert!(!ok, "{out}");
    assert!(
        err.contains(
            "column `price` of das.raw__shop__products is decimal(18,2) but the source config makes it decimal(18,3)"
        ),
        "{err}"
    );
}
