//! A faulty source never lands wrong data silently, and says what and where
//! in one line per failed resource: through the binary (`lakehouse extract`)
//! against a local service whose entity set `/Bad` misbehaves in one way per
//! case, beside a well-behaved `/Good`. The faulty resource fails with its
//! cause, nothing of it is committed and its cursor does not move; the good
//! one lands; the exit code is non-zero. The service offers `$count`, so a
//! page that silently drops a row is caught too. A dead service fails
//! within seconds.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use common::lakehouse_in;

/// How `/Bad` misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    RepeatPage,
    ForeignLink,
    SelfLink,
    NullKey,
    MissingKey,
    WrongType,
    InvalidJson,
    Html,
    NotFound,
    DropsRow,
}

#[derive(Clone)]
struct Service {
    fault: Arc<Mutex<Fault>>,
    base: String,
}

fn row(id: i64) -> Value {
    json!({"ThingId": id, "Name": format!("thing {id}"), "Price": "1.50",
           "ModifiedDate": format!("2014-01-{:02}", id)})
}

/// Whether `r` passes the cursor filter `ModifiedDate ge|gt <date>`.
fn passes(filter: &str, r: &Value) -> bool {
    let m = r["ModifiedDate"].as_str().unwrap();
    match filter.split_whitespace().collect::<Vec<_>>().as_slice() {
        [_, "gt", d] => m > &d[..10],
        [_, "ge", d] => m >= &d[..10],
        _ => true,
    }
}

/// Six rows, two per page; the fault bends page 1 (the second page).
async fn entity_set(
    State(s): State<Service>,
    UrlPath(entity): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let fault = if entity == "Bad" {
        *s.fault.lock().unwrap()
    } else {
        Fault::None
    };
    // The cursor filter (`ModifiedDate ge|gt <date>`), kept in next links.
    let filter = q.get("$filter").cloned().unwrap_or_default();
    let all: Vec<Value> = (1..=6).map(row).filter(|r| passes(&filter, r)).collect();
    let page: usize = q.get("$skiptoken").map_or(0, |t| t.parse().unwrap());
    let link = |p: usize| {
        let mut u = url::Url::parse(&format!("{}{entity}", s.base)).unwrap();
        u.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$skiptoken", &p.to_string());
        u.to_string()
    };
    let mut rows: Vec<Value> = all.iter().skip(page * 2).take(2).cloned().collect();
    let mut next = (page * 2 + 2 < all.len()).then(|| link(page + 1));
    if page == 1 {
        match fault {
            Fault::None => {}
            Fault::RepeatPage => rows = (1..=2).map(row).collect(),
            Fault::ForeignLink => next = Some(format!("http://192.0.2.1:9/{entity}?$skiptoken=2")),
            Fault::SelfLink => next = Some(link(1)),
            Fault::NullKey => rows[1]["ThingId"] = Value::Null,
            Fault::MissingKey => {
                rows[1].as_object_mut().unwrap().remove("ThingId");
            }
            Fault::WrongType => rows[0]["Price"] = json!("lots"),
            Fault::InvalidJson => return "{\"value\": [".into_response(),
            Fault::Html => {
                return (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<!DOCTYPE html><html><body>Sign in</body></html>",
                )
                    .into_response();
            }
            Fault::NotFound => return (StatusCode::NOT_FOUND, "no such page").into_response(),
            Fault::DropsRow => rows.truncate(1),
        }
    }
    let mut body = json!({"value": rows});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    axum::Json(body).into_response()
}

/// `GET /<Entity>/$count`: the rows an entity set has under the filter
/// (six from scratch).
async fn count(Query(q): Query<BTreeMap<String, String>>) -> String {
    let filter = q.get("$filter").cloned().unwrap_or_default();
    (1..=6)
        .map(row)
        .filter(|r| passes(&filter, r))
        .count()
        .to_string()
}

async fn serve(fault: Arc<Mutex<Fault>>) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/{entity}", axum::routing::get(entity_set))
        .route("/{entity}/$count", axum::routing::get(count))
        .with_state(Service {
            fault,
            base: base.clone(),
        });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

const SOURCE: &str = r#"name: things
base_url: BASE
resources:
  - table: raw__things__good
    api_path: /Good
    primary_key: [thing_id]
    cursor_field: ModifiedDate
    columns: &columns
      - { name: thing_id, source: ThingId, type: bigint }
      - { name: name, source: Name, type: text }
      - { name: price, source: Price, type: "decimal(9,2)" }
      - { name: modified_date, source: ModifiedDate, type: date }
  - table: raw__things__bad
    api_path: /Bad
    primary_key: [thing_id]
    cursor_field: ModifiedDate
    columns: *columns
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_its_resource_with_the_cause_and_lands_nothing_of_it() {
    let fault = Arc::new(Mutex::new(Fault::None));
    let base = serve(Arc::clone(&fault)).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("things.yaml");
    std::fs::write(&config, SOURCE.replace("BASE", &base)).unwrap();
    let wh = tmp.path().join("wh");
    let extract = |dir: &std::path::Path| {
        lakehouse_in(
            dir,
            &[
                "--warehouse",
                wh.to_str().unwrap(),
                "extract",
                "--config",
                config.to_str().unwrap(),
            ],
        )
    };
    // One CSV query over the warehouse: (success, first data row, stderr).
    let query = |sql: &str| {
        let (ok, out, err) = lakehouse_in(
            tmp.path(),
            &[
                "--warehouse",
                wh.to_str().unwrap(),
                "query",
                "--format",
                "csv",
                sql,
            ],
        );
        (ok, out.lines().nth(1).unwrap_or_default().to_string(), err)
    };
    let bad_rows = || {
        let (ok, row, err) = query("SELECT count(*) AS n FROM das.raw__things__bad");
        if ok {
            row
        } else {
            assert!(
                err.contains("not found") || err.contains("not exist"),
                "{err}"
            );
            "no table".to_string()
        }
    };

    for (case, want) in [
        (
            Fault::RepeatPage,
            "page 1 repeats rows of page 0 (2 rows, no new key)",
        ),
        (
            Fault::ForeignLink,
            "leads to another origin than the service",
        ),
        (Fault::SelfLink, "leads back to a page already read"),
        (Fault::NullKey, "row 3: key field `ThingId` is null"),
        (Fault::MissingKey, "row 3: key field `ThingId` is missing"),
        (
            Fault::WrongType,
            "row 2: field `Price` (decimal(9,2)): lots is not a decimal(9,2)",
        ),
        (Fault::InvalidJson, "the response is not JSON"),
        (Fault::Html, "it begins `<!DOCTYPE html><html><body>Sign in"),
        (
            Fault::NotFound,
            "failed with HTTP 404 Not Found: no such page",
        ),
        (
            Fault::DropsRow,
            "read 5 rows over 3 page(s), but the service's $count for `ModifiedDate ge 1970-01-01` is 6: rows were lost",
        ),
    ] {
        *fault.lock().unwrap() = case;
        let started = Instant::now();
        let (ok, out, err) = extract(tmp.path());
        assert!(!ok, "{case:?}: the run fails\n{out}");
        let line = err
            .lines()
            .find(|l| l.trim_start().starts_with("raw__things__bad:"))
            .unwrap_or_else(|| panic!("{case:?}: a line naming the resource in\n{err}"));
        assert!(line.contains(want), "{case:?}: {line}");
        assert!(
            line.contains("/Bad"),
            "{case:?}: the resource's path is named: {line}"
        );
        assert!(
            !err.contains("raw__things__good:"),
            "{case:?}: only the faulty resource fails: {err}"
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "{case:?}: fails without a long wait"
        );
        assert_eq!(bad_rows(), "no table", "{case:?}: nothing of /Bad landed");
    }
    // The good resource landed all its rows, once, however often it ran.
    let (ok, row, err) = query(
        "SELECT count(*) AS n, count(DISTINCT thing_id) AS k, sum(price) AS p FROM das.raw__things__good",
    );
    assert!(ok, "{err}");
    assert_eq!(row, "6,6,9.00");

    // Once the service behaves, the bad resource lands everything.
    *fault.lock().unwrap() = Fault::None;
    let (ok, out, err) = extract(tmp.path());
    assert!(ok, "{err}\n{out}");
    assert_eq!(bad_rows(), "6");
}

#[test]
fn a_dead_source_fails_within_seconds_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("things.yaml");
    std::fs::write(&config, SOURCE.replace("BASE", "http://127.0.0.1:1/")).unwrap();
    let wh = tmp.path().join("wh");
    let started = Instant::now();
    let (ok, out, err) = lakehouse_in(
        tmp.path(),
        &[
            "--warehouse",
            wh.to_str().unwrap(),
            "extract",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        started.elapsed().as_secs() < 15,
        "failed after {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("the source at http://127.0.0.1:1/ cannot be reached"),
        "{err}"
    );
    assert!(err.lines().count() <= 3, "a short message: {err}");
}
