//! The dashboard end to end on a hand-written DAR fixture: a unified bridge
//! (`dar._bridge__as_of`), a calendar and two peripherals with ghost rows,
//! written with `Warehouse::write` so these tests do not depend on the DAR
//! build.
//!
//! - `api_matches_sql_and_slices_are_consistent`: the JSON endpoint's
//!   default window, metric set, values and XmR limits agree with
//!   `lakehouse query` and with the fixture's own arithmetic; a slice by
//!   territory agrees with the same slice in SQL and slices partition the
//!   whole; SQL in parameters is refused with 400 and changes nothing.
//! - `chromium_renders_one_card_per_metric`: headless Chromium (Debian
//!   package `chromium`) loads the page; the card count and a card's value
//!   are checked against `lakehouse query`; a screenshot is saved to
//!   `$LAKEHOUSE_ARTIFACTS/dashboard.png` (default `target/artifacts/`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use chrono::{Datelike, Duration, NaiveDate};
use lakehouse::dashboard::{self, DashboardServer, xmr::xmr};
use lakehouse::storage::{TableName, Warehouse, Write};
use serde_json::Value;

mod browser;

use browser::{artifacts_dir, chromium, lakehouse_query, parse_cards, run_chromium};

const TERRITORY_HOOK: &str = "_pit_hook__territory__sales";
const CATEGORY_HOOK: &str = "_pit_hook__product_category__adventure_works";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid fixture date")
}

fn first_day() -> NaiveDate {
    day("2012-01-01")
}

fn last_day() -> NaiveDate {
    day("2013-06-30")
}

fn territory_pit(id: u32) -> String {
    format!("territory__sales|{id}~epoch__valid_from|1970-01-01T00:00:00Z")
}

fn category_pit(id: u32) -> String {
    format!("product_category__adventure_works|{id}~epoch__valid_from|1970-01-01T00:00:00Z")
}

/// Orders of territory `t` (1, 2, or 0 = unknown/ghost) on day index `k`.
fn orders(t: u32, k: i64, last: bool) -> i64 {
    match t {
        1 if last => 25,
        1 => 3 + k % 4,
        2 => 1 + k % 3,
        _ => i64::from(k % 5 == 0),
    }
}

/// Orders per territory (1, 2, ghost) on the last day.
fn last_day_orders() -> [i64; 3] {
    let k = (last_day() - first_day()).num_days();
    [orders(1, k, true), orders(2, k, true), orders(0, k, true)]
}

/// Line total of the `j`-th order of a day.
fn line_total(j: i64, k: i64) -> f64 {
    100.5 * (j + 1) as f64 + k as f64 * 0.25
}

#[derive(Default)]
struct BridgeRows {
    peripheral: Vec<String>,
    pit_bridge: Vec<String>,
    territory: Vec<String>,
    category: Vec<String>,
    date_hook: Vec<String>,
    ordered: Vec<Option<bool>>,
    shipped: Vec<Option<bool>>,
    modified: Vec<Option<bool>>,
    total: Vec<Option<f64>>,
    new_customers: Vec<Option<f64>>,
    returning_customers: Vec<Option<f64>>,
    current: Vec<bool>,
}

impl BridgeRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        territory: String,
        category: String,
        date_hook: String,
        j: i64,
        current: bool,
        total: f64,
    ) {
        let n = self.peripheral.len();
        self.peripheral
            .push("adventure_works__sales_order_headers".into());
        self.pit_bridge.push(format!("bridge|{n}"));
        self.territory.push(territory);
        self.category.push(category);
        self.date_hook.push(date_hook);
        self.ordered.push(Some(true));
        // Ship flags: every other order; the rest NULL, as flags of other
        // events are in the unified bridge.
        self.shipped.push((j % 2 == 0).then_some(true));
        self.modified.push(Some(true));
        self.total.push(Some(total));
        self.new_customers
            .push(Some(if j == 0 { 1.0 } else { 0.0 }));
        self.returning_customers
            .push(Some(if j == 0 { 0.0 } else { 1.0 }));
        self.current.push(current);
    }
}

fn text(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

async fn write(wh: &Warehouse, table: &str, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("fixture batch");
    wh.write(
        &TableName::new("dar", table).expect("table name"),
        schema,
        vec![batch],
        Write::overwrite(),
    )
    .await
    .expect("write fixture table");
}

/// The fixture warehouse: 547 days of orders in two territories (and some
/// without territory, i.e. `ghost_record`), non-current rows and a row
/// without date that must not count.
async fn fixture(dir: &Path) -> Warehouse {
    let wh = Warehouse::open(dir.to_str().expect("utf-8 temp path")).expect("open warehouse");
    let mut rows = BridgeRows::default();
    let days = (last_day() - first_day()).num_days();
    for k in 0..=days {
        let d = first_day() + Duration::days(k);
        let hook = format!("epoch__date|{d}");
        for t in [1u32, 2, 0] {
            let territory = if t == 0 {
                "ghost_record".to_string()
            } else {
                territory_pit(t)
            };
            for j in 0..orders(t, k, k == days) {
                let category = category_pit(1 + (j % 2) as u32);
                rows.push(
                    territory.clone(),
                    category,
                    hook.clone(),
                    j,
                    true,
                    line_total(j, k),
                );
            }
        }
        // A superseded version: never counted.
        rows.push(
            territory_pit(1),
            category_pit(1),
            hook.clone(),
            0,
            false,
            1e6,
        );
    }
    // An event row without a date: dropped by the calendar join.
    rows.push(
        territory_pit(2),
        category_pit(2),
        "ghost_record".into(),
        0,
        true,
        1e6,
    );
    // A customer's address changes months after the last order: a
    // modification with no measure. The default window still ends on the
    // measures' newest day, not on months of zeros.
    rows.push(
        territory_pit(1),
        category_pit(1),
        "epoch__date|2013-12-20".into(),
        1,
        true,
        0.0,
    );
    let n = rows.peripheral.len() - 1;
    rows.ordered[n] = None;
    rows.shipped[n] = None;
    rows.total[n] = None;
    rows.new_customers[n] = None;
    rows.returning_customers[n] = None;
    let BridgeRows {
        peripheral,
        pit_bridge,
        territory,
        category,
        date_hook,
        ordered,
        shipped,
        modified,
        total,
        new_customers,
        returning_customers,
        current,
    } = rows;
    write(
        &wh,
        "_bridge__as_of",
        vec![
            ("peripheral", text(peripheral)),
            ("_pit_hook__bridge", text(pit_bridge)),
            (CATEGORY_HOOK, text(category)),
            (TERRITORY_HOOK, text(territory)),
            ("_hook__epoch__date", text(date_hook)),
            (
                "event__sales_order_header__modified",
                Arc::new(BooleanArray::from(modified)),
            ),
            (
                "event__sales_order_header__order",
                Arc::new(BooleanArray::from(ordered)),
            ),
            (
                "event__sales_order_header__ship",
                Arc::new(BooleanArray::from(shipped)),
            ),
            (
                "measure__sales_order_headers_from_new_customers",
                Arc::new(Float64Array::from(new_customers)),
            ),
            (
                "measure__sales_order_headers_from_returning_customers",
                Arc::new(Float64Array::from(returning_customers)),
            ),
            (
                "measure__sales_order_line_total_placed",
                Arc::new(Float64Array::from(total)),
            ),
            (
                "bridge__is_current_record",
                Arc::new(BooleanArray::from(current)),
            ),
        ],
    )
    .await;

    let mut hooks = Vec::new();
    let mut dates = Vec::new();
    let (mut year, mut quarter, mut month, mut week) = (vec![], vec![], vec![], vec![]);
    let mut d = day("2012-01-01");
    while d <= day("2013-12-31") {
        hooks.push(format!("epoch__date|{d}"));
        dates.push(d.to_string());
        year.push(i64::from(d.year()));
        quarter.push(i64::from(d.month0() / 3 + 1));
        month.push(i64::from(d.month()));
        week.push(i64::from(d.iso_week().week()));
        d += Duration::days(1);
    }
    write(
        &wh,
        "calendar",
        vec![
            ("_hook__epoch__date", text(hooks)),
            ("date", text(dates)),
            ("year", Arc::new(Int64Array::from(year))),
            ("quarter", Arc::new(Int64Array::from(quarter))),
            ("month", Arc::new(Int64Array::from(month))),
            ("week", Arc::new(Int64Array::from(week))),
        ],
    )
    .await;

    let s = |v: &[&str]| text(v.iter().map(|x| x.to_string()).collect());
    write(
        &wh,
        "adventure_works__sales_territories",
        vec![
            (
                TERRITORY_HOOK,
                text(vec![
                    territory_pit(1),
                    territory_pit(2),
                    "ghost_record".into(),
                ]),
            ),
            ("sales_territory__name", s(&["Northwest", "Canada", "N/A"])),
            (
                "sales_territory__country_region_code",
                s(&["US", "CA", "N/A"]),
            ),
            (
                "sales_territory__group",
                s(&["North America", "North America", "N/A"]),
            ),
            (
                "sales_territory__record_version",
                Arc::new(Int64Array::from(vec![Some(1), Some(1), Some(0)])),
            ),
        ],
    )
    .await;
    write(
        &wh,
        "adventure_works__product_categories",
        vec![
            (
                CATEGORY_HOOK,
                text(vec![
                    category_pit(1),
                    category_pit(2),
                    "ghost_record".into(),
                ]),
            ),
            (
                "product_category__name",
                s(&["Bikes", "Accessories", "N/A"]),
            ),
        ],
    )
    .await;
    wh
}

async fn start(dir: &Path) -> (Warehouse, DashboardServer) {
    let wh = fixture(dir).await;
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
    let server = dashboard::serve(&wh, addr).await.expect("serve dashboard");
    (wh, server)
}

async fn get(base: &str, path_and_query: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}{path_and_query}"))
        .await
        .expect("HTTP request to the dashboard");
    let status = r.status().as_u16();
    (status, r.text().await.expect("response body"))
}

async fn get_json(base: &str, path_and_query: &str) -> Value {
    let (status, body) = get(base, path_and_query).await;
    assert_eq!(status, 200, "{path_and_query}: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

/// `lakehouse --warehouse dir query sql --format csv`, as rows of fields.
/// `(date, value)` of a metric per day from SQL, optional territory slice.
fn sql_series(dir: &Path, column: &str, territory: Option<&str>) -> BTreeMap<String, f64> {
    let (join, filter) = match territory {
        Some(name) => (
            format!(
                "JOIN dar.adventure_works__sales_territories t ON b.{TERRITORY_HOOK} = t.{TERRITORY_HOOK}"
            ),
            format!("AND t.sales_territory__name = '{name}'"),
        ),
        None => (String::new(), String::new()),
    };
    let sql = format!(
        "SELECT c.date, SUM(CAST(b.{column} AS DOUBLE)) AS v FROM dar._bridge__as_of b \
         JOIN dar.calendar c ON b._hook__epoch__date = c._hook__epoch__date {join} \
         WHERE b.bridge__is_current_record {filter} GROUP BY c.date ORDER BY c.date"
    );
    lakehouse_query(dir, &sql)
        .into_iter()
        .map(|r| {
            let v = if r[1].is_empty() {
                0.0
            } else {
                r[1].parse().expect("numeric SQL value")
            };
            (r[0].clone(), v)
        })
        .collect()
}

fn metric<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["metrics"]
        .as_array()
        .expect("metrics array")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

fn points(m: &Value) -> Vec<(String, f64)> {
    m["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["date"].as_str().expect("date").to_string(),
                p["value"].as_f64().expect("value"),
            )
        })
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} != {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_matches_sql_and_slices_are_consistent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_wh, server) = start(tmp.path()).await;
    let base = server.base_url().to_string();

    // Default window: the 52 weeks ending on the last day with data.
    let all = get_json(&base, "/api/metrics").await;
    assert_eq!(all["to"], "2013-06-30");
    assert_eq!(all["from"], "2012-07-01");
    let names: BTreeSet<&str> = all["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    let expected: BTreeSet<&str> = [
        "metric__sales_order_header__order",
        "metric__sales_order_header__ship",
        "metric__sales_order_headers_from_new_customers",
        "metric__sales_order_headers_from_returning_customers",
        "metric__sales_order_line_total_placed",
        "metric__sales_order_headers_from_new_customers__percentage",
        "metric__sales_order_headers_from_returning_customers__percentage",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected);
    // Ordered by the latest value, descending.
    let latest: Vec<f64> = all["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["value"].as_f64().expect("value"))
        .collect();
    assert!(latest.windows(2).all(|w| w[0] >= w[1]), "{latest:?}");

    // The order count per day equals SQL and the fixture arithmetic; the
    // last day is a spike (hot).
    let order = metric(&all, "metric__sales_order_header__order");
    let series = points(order);
    assert_eq!(series.len(), 365);
    assert_eq!(series[0].0, "2013-06-30");
    let sql = sql_series(tmp.path(), "event__sales_order_header__order", None);
    let last_k = (last_day() - first_day()).num_days();
    for (date, v) in &series {
        close(*v, sql[date], date);
        let k = (day(date) - first_day()).num_days();
        let want: i64 = [1, 2, 0].iter().map(|t| orders(*t, k, k == last_k)).sum();
        close(*v, want as f64, date);
    }
    assert_eq!(order["status"], "hot");
    // The limits are the XmR function over the same series.
    let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
    let limits = xmr(&values)[0].limits;
    close(order["cl"].as_f64().expect("cl"), limits.cl, "cl");
    close(order["ucl"].as_f64().expect("ucl"), limits.ucl, "ucl");
    close(order["lcl"].as_f64().expect("lcl"), limits.lcl, "lcl");

    // Percentages: new / (new + returning) on the last day: the first
    // order of each territory group with orders is from a new customer.
    let counts = last_day_orders();
    let total: i64 = counts.iter().sum();
    let new = counts.iter().filter(|n| **n > 0).count() as f64;
    let pct = metric(
        &all,
        "metric__sales_order_headers_from_new_customers__percentage",
    );
    close(
        pct["value"].as_f64().expect("pct"),
        new / total as f64 * 100.0,
        "new %",
    );
    let pct = metric(
        &all,
        "metric__sales_order_headers_from_returning_customers__percentage",
    );
    close(
        pct["value"].as_f64().expect("pct"),
        (total as f64 - new) / total as f64 * 100.0,
        "returning %",
    );

    // Slices: the dimensions come from the peripherals.
    let slices = get_json(&base, "/api/slices").await;
    let keys: BTreeSet<&str> = slices["slices"]
        .as_array()
        .expect("slices")
        .iter()
        .map(|s| s["key"].as_str().expect("key"))
        .collect();
    let want: BTreeSet<&str> = [
        "adventure_works__product_categories.product_category__name",
        "adventure_works__sales_territories.sales_territory__country_region_code",
        "adventure_works__sales_territories.sales_territory__group",
        "adventure_works__sales_territories.sales_territory__name",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    let values = get_json(
        &base,
        "/api/values?slice=adventure_works__sales_territories.sales_territory__name",
    )
    .await;
    assert_eq!(
        values["values"],
        serde_json::json!(["Canada", "N/A", "Northwest"])
    );

    // A territory slice agrees with SQL; the three territories (ghost
    // included) add up to the whole, day by day, for every summed metric.
    let slice_key = "adventure_works__sales_territories.sales_territory__name";
    let mut parts = Vec::new();
    for name in ["Northwest", "Canada", "N/A"] {
        let q = format!(
            "/api/metrics?slice={slice_key}&value={}",
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        parts.push(get_json(&base, &q).await);
    }
    let nw = &parts[0];
    assert_eq!(nw["slice"]["value"], "Northwest");
    let total_sql = sql_series(
        tmp.path(),
        "measure__sales_order_line_total_placed",
        Some("Northwest"),
    );
    let total_nw = points(metric(nw, "metric__sales_order_line_total_placed"));
    assert_eq!(total_nw.len(), 365);
    for (date, v) in &total_nw {
        close(*v, total_sql.get(date).copied().unwrap_or(0.0), date);
    }
    let nw_latest = metric(nw, "metric__sales_order_header__order")["value"]
        .as_f64()
        .expect("value");
    close(nw_latest, 25.0, "Northwest orders on the last day");
    for name in [
        "metric__sales_order_header__order",
        "metric__sales_order_header__ship",
        "metric__sales_order_line_total_placed",
        "metric__sales_order_headers_from_new_customers",
    ] {
        let whole = points(metric(&all, name));
        let sliced: Vec<Vec<(String, f64)>> =
            parts.iter().map(|p| points(metric(p, name))).collect();
        for (i, (date, v)) in whole.iter().enumerate() {
            let sum: f64 = sliced.iter().map(|s| s[i].1).sum();
            assert!(sliced.iter().all(|s| &s[i].0 == date));
            close(sum, *v, &format!("{name} on {date}"));
        }
    }
    // A slice through the second peripheral, same bridge.
    let bikes = get_json(
        &base,
        "/api/metrics?slice=adventure_works__product_categories.product_category__name&value=Bikes",
    )
    .await;
    let bikes_latest = metric(&bikes, "metric__sales_order_header__order")["value"]
        .as_f64()
        .expect("value");
    // Even-numbered orders of each group are bikes.
    let bikes_want: i64 = last_day_orders().iter().map(|n| (n + 1) / 2).sum();
    close(bikes_latest, bikes_want as f64, "bikes on the last day");

    // A date window.
    let w = get_json(&base, "/api/metrics?from=2013-01-01&to=2013-01-31").await;
    let jan = points(metric(&w, "metric__sales_order_header__order"));
    assert_eq!(jan.len(), 31);
    assert_eq!(jan[0].0, "2013-01-31");
    assert_eq!(jan[30].0, "2013-01-01");

    // Refusals: 400 with a clear message, nothing changes.
    let refusals = [
        (
            "/api/metrics?slice=%27%20OR%201%3D1%20--&value=x",
            "unknown slice",
        ),
        (
            "/api/metrics?slice=adventure_works__sales_territories.sales_territory__name%27%20OR%201%3D1%20--&value=Canada",
            "unknown slice",
        ),
        (
            "/api/metrics?slice=adventure_works__sales_territories.sales_territory__name&value=%27%20OR%201%3D1%20--",
            "has no value",
        ),
        (
            "/api/metrics?slice=dar.calendar.date&value=2013-01-01",
            "unknown slice",
        ),
        (
            "/api/metrics?slice=adventure_works__sales_territories._pit_hook__territory__sales&value=ghost_record",
            "unknown slice",
        ),
        (
            "/api/metrics?from=2013-01-01%27%20OR%201%3D1%20--",
            "must be a date",
        ),
        ("/api/metrics?from=2013-02-01&to=2013-01-01", "is after"),
        ("/api/metrics?region=1", "unknown parameter `region`"),
        ("/api/metrics?value=Canada", "needs a `slice`"),
        (
            "/api/metrics?slice=adventure_works__sales_territories.sales_territory__name",
            "needs a `value`",
        ),
        ("/api/metrics?to=2013-01-01&to=2013-01-02", "given twice"),
        ("/?slice=%27%20OR%201%3D1%20--&value=x", "unknown slice"),
    ];
    for (q, message) in refusals {
        let (status, body) = get(&base, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(message), "{q}: {body}");
    }
    // The page forbids loading anything from elsewhere.
    let r = reqwest::get(format!("{base}/")).await.expect("page");
    assert_eq!(r.status().as_u16(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = r.text().await.expect("page body");
    assert!(html.contains("<main data-cards=\"7\">"));

    // The form's first step: a dimension without value shows the whole
    // and offers that dimension's values.
    let (status, html) = get(
        &base,
        "/?slice=adventure_works__sales_territories.sales_territory__name&value=",
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<option value=\"Northwest\">"));
    assert!(html.contains(
        "<option value=\"adventure_works__sales_territories.sales_territory__name\" selected>"
    ));
    assert!(html.contains("<main data-cards=\"7\">"));

    let again = get_json(&base, "/api/metrics").await;
    assert_eq!(again, all);

    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_one_card_per_metric() {
    let bin = chromium();
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_wh, server) = start(tmp.path()).await;
    let url = format!("{}/", server.base_url());
    let profile = tmp.path().join("chromium-profile");

    let dom = {
        let (bin, profile, url) = (bin.clone(), profile.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(&bin, &profile, &["--dump-dom".to_string()], &url)
        })
        .await
        .expect("chromium task")
    };
    let cards = parse_cards(&dom);
    assert_eq!(cards.len(), 7, "cards in {dom:.2000}");
    assert!(dom.contains("data-cards=\"7\""));
    assert!(dom.contains("2012-07-01 to 2013-06-30"));
    // The first card is the line total (largest value); its value equals
    // the same metric computed by `lakehouse query`.
    assert_eq!(cards[0].0, "metric__sales_order_line_total_placed");
    let sql = lakehouse_query(
        tmp.path(),
        "SELECT SUM(b.measure__sales_order_line_total_placed) FROM dar._bridge__as_of b \
         JOIN dar.calendar c ON b._hook__epoch__date = c._hook__epoch__date \
         WHERE b.bridge__is_current_record AND c.date = '2013-06-30'",
    );
    let want: f64 = sql[0][0].parse().expect("SQL value");
    let got: f64 = cards[0].1.parse().expect("data-value");
    close(got, want, "line total card");
    let order = cards
        .iter()
        .find(|c| c.0 == "metric__sales_order_header__order")
        .expect("order card");
    let total: i64 = last_day_orders().iter().sum();
    assert_eq!(order.1, total.to_string());
    assert_eq!(order.2, "hot");
    // Rendered charts: one SVG per card, no external resource.
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 7);
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!dom.contains(external), "page references `{external}`");
    }

    // The page sliced by territory: the order card equals the same slice
    // in SQL, and differs from the whole.
    let sliced_url = format!(
        "{url}?slice=adventure_works__sales_territories.sales_territory__name&value=Canada"
    );
    let sliced_dom = {
        let (bin, profile) = (bin.clone(), profile.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(&bin, &profile, &["--dump-dom".to_string()], &sliced_url)
        })
        .await
        .expect("chromium task")
    };
    let sliced = parse_cards(&sliced_dom);
    assert_eq!(sliced.len(), 7);
    let canada = sliced
        .iter()
        .find(|c| c.0 == "metric__sales_order_header__order")
        .expect("order card");
    let sql = lakehouse_query(
        tmp.path(),
        &format!(
            "SELECT SUM(CAST(b.event__sales_order_header__order AS DOUBLE)) FROM dar._bridge__as_of b \
             JOIN dar.calendar c ON b._hook__epoch__date = c._hook__epoch__date \
             JOIN dar.adventure_works__sales_territories t ON b.{TERRITORY_HOOK} = t.{TERRITORY_HOOK} \
             WHERE b.bridge__is_current_record AND c.date = '2013-06-30' \
             AND t.sales_territory__name = 'Canada'"
        ),
    );
    let want: f64 = sql[0][0].parse().expect("SQL value");
    close(
        canada.1.parse().expect("data-value"),
        want,
        "Canada orders card",
    );
    assert_ne!(canada.1, order.1);
    assert!(sliced_dom.contains("sales_territory__name = Canada"));

    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("create artifacts dir");
    let png = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    {
        let (bin, profile, url, png) = (bin.clone(), profile.clone(), url.clone(), png.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(
                &bin,
                &profile,
                &[
                    format!("--screenshot={}", png.display()),
                    "--window-size=1400,2000".to_string(),
                ],
                &url,
            )
        })
        .await
        .expect("chromium task");
    }
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.len() > 10_000,
        "screenshot too small: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_dar_tables_give_an_empty_dashboard_and_missing_ones_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let wh = Warehouse::open(tmp.path().to_str().expect("utf-8 temp path")).expect("open");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
    let missing = dashboard::serve(&wh, addr)
        .await
        .err()
        .expect("no DAR tables");
    assert!(
        missing.message().contains("dar._bridge__as_of is missing"),
        "{missing}"
    );

    let empty = |name: &'static str, t: arrow::datatypes::DataType| -> (&'static str, ArrayRef) {
        (name, arrow::array::new_empty_array(&t))
    };
    use arrow::datatypes::DataType as T;
    write(
        &wh,
        "_bridge__as_of",
        vec![
            empty("_hook__epoch__date", T::Utf8),
            empty("event__x__order", T::Boolean),
            empty("bridge__is_current_record", T::Boolean),
        ],
    )
    .await;
    write(
        &wh,
        "calendar",
        vec![empty("_hook__epoch__date", T::Utf8), empty("date", T::Utf8)],
    )
    .await;
    let server = dashboard::serve(&wh, addr).await.expect("serve");
    let base = server.base_url().to_string();
    let doc = get_json(&base, "/api/metrics").await;
    assert_eq!(doc["metrics"], serde_json::json!([]));
    assert_eq!(doc["from"], Value::Null);
    let (status, html) = get(&base, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("No current rows in dar._bridge__as_of"));
    assert!(html.contains("<main data-cards=\"0\">"));
    // An explicit window over no data: one zero per day.
    let doc = get_json(&base, "/api/metrics?from=2013-01-01&to=2013-01-03").await;
    let order = metric(&doc, "metric__x__order");
    assert_eq!(
        points(order),
        vec![
            ("2013-01-03".to_string(), 0.0),
            ("2013-01-02".to_string(), 0.0),
            ("2013-01-01".to_string(), 0.0)
        ]
    );
    server.shutdown().await.expect("shutdown");
}
