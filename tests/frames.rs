//! HOOK frames on a hand-written DAS fixture: exact hooks, PIT hooks and SCD2
//! intervals; incremental equals full; identical under two time zones.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use lakehouse::model::build::{BuildMode, build_frame};
use lakehouse::model::config::ModelConfig;
use lakehouse::storage::{AsOf, TableName, Warehouse, Write};

const CONCEPTS: &str = "
concepts:
  - name: order
    keysets: [order__test]
  - name: customer
    keysets: [customer__test]
  - name: epoch
    keysets: [epoch__date]
";

const FRAMES: &str = "
frames:
  - name: frame__test__orders
    source_table: raw__test__orders
    column_prefix: order
    hooks:
      - { name: _hook__order, keyset: order__test, business_key: order_id, primary: true }
      - { name: _hook__customer, keyset: customer__test, business_key: customer_id }
      - { name: _hook__epoch__placed, keyset: epoch__date, business_key: placed_at }
      - { name: _hook__order__customer, composite: [_hook__order, _hook__customer] }
";

fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
        .timestamp_micros()
}

fn das_schema() -> SchemaRef {
    let t = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("placed_at", t.clone(), true),
        Field::new("_load_id", DataType::Utf8, false),
        Field::new("_loaded_at", t, false),
        Field::new("_load_sequence", DataType::Int64, false),
    ]))
}

/// One load: (order_id, customer_id, status, placed_at).
fn load(load_id: &str, at: &str, rows: &[(i64, Option<i64>, &str, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        das_schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| ts(r.3)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![load_id; rows.len()])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ts(at); rows.len()]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from((0..rows.len() as i64).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn config() -> ModelConfig {
    let c = ModelConfig::from_yaml(CONCEPTS, "concepts.yaml", FRAMES, "frames.yaml").unwrap();
    c.validate(|t| {
        (t == "raw__test__orders").then(|| {
            vec![
                "order_id".into(),
                "customer_id".into(),
                "status".into(),
                "placed_at".into(),
            ]
        })
    })
    .unwrap();
    c
}

/// Every row of a table rendered as text, sorted (a set of rows, for equality).
async fn table_text(wh: &Warehouse, name: &str) -> Vec<Vec<String>> {
    let batches = wh
        .scan(&TableName::parse(name).unwrap(), AsOf::Latest)
        .await
        .unwrap();
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in &batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            let mut row: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for (j, f) in fmts.iter().enumerate() {
                row[j] = format!("{}={}", row[j], f.value(i));
            }
            rows.push(row);
        }
    }
    rows.sort();
    rows
}

fn col<'a>(row: &'a [String], name: &str) -> &'a str {
    row.iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}

async fn seeded() -> (Warehouse, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let das = TableName::parse("das.raw__test__orders").unwrap();
    for b in [
        load(
            "L1",
            "2024-01-01T00:00:00Z",
            &[
                (1, Some(10), "new", "2024-01-01T08:30:00Z"),
                (2, None, "new", "2024-01-02T00:00:00.5Z"),
            ],
        ),
        load(
            "L2",
            "2024-01-02T12:00:00Z",
            &[(1, Some(10), "paid", "2024-01-01T08:30:00Z")],
        ),
        load(
            "L3",
            "2024-01-03T12:00:00.25Z",
            &[(1, Some(10), "shipped", "2024-01-01T08:30:00Z")],
        ),
    ] {
        wh.write(&das, das_schema(), vec![b], Write::append())
            .await
            .unwrap();
    }
    (wh, dir)
}

#[tokio::test]
async fn hooks_pit_hooks_and_scd2_intervals() {
    let (wh, _dir) = seeded().await;
    let cfg = config();
    let frame = cfg.frame("frame__test__orders").unwrap();
    let report = build_frame(
        &wh,
        &SessionContext::new(),
        frame,
        &["order_id".into()],
        BuildMode::Full,
    )
    .await
    .unwrap();
    assert_eq!(report.rows, 4);
    let rows = table_text(&wh, "dab.frame__test__orders").await;
    // Column order: PIT hook, hooks in config order, prefixed source columns, record columns.
    let names: Vec<&str> = rows[0]
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "_pit_hook__order",
            "_hook__order",
            "_hook__customer",
            "_hook__epoch__placed",
            "_hook__order__customer",
            "order__order_id",
            "order__customer_id",
            "order__status",
            "order__placed_at",
            "order__record_loaded_at",
            "order__record_updated_at",
            "order__record_version",
            "order__record_valid_from",
            "order__record_valid_to",
            "order__is_current_record",
        ]
    );
    let mut v: Vec<_> = rows
        .iter()
        .filter(|r| col(r, "order__order_id") == "1")
        .collect();
    v.sort_by_key(|r| col(r, "order__record_version").parse::<i64>().unwrap());
    let expect = [
        (
            "order__test|1~epoch__valid_from|1970-01-01T00:00:00Z",
            "1",
            "new",
            "1970-01-01T00:00:00Z",
            "2024-01-02T12:00:00Z",
            "false",
            "2024-01-02T12:00:00Z",
        ),
        (
            "order__test|1~epoch__valid_from|2024-01-02T12:00:00Z",
            "2",
            "paid",
            "2024-01-02T12:00:00Z",
            "2024-01-03T12:00:00.250Z",
            "false",
            "2024-01-03T12:00:00.250Z",
        ),
        (
            "order__test|1~epoch__valid_from|2024-01-03T12:00:00.250Z",
            "3",
            "shipped",
            "2024-01-03T12:00:00.250Z",
            "9999-12-31T23:59:59Z",
            "true",
            "2024-01-03T12:00:00.250Z",
        ),
    ];
    assert_eq!(v.len(), 3);
    for (r, e) in v.iter().zip(expect) {
        assert_eq!(col(r, "_pit_hook__order"), e.0);
        assert_eq!(col(r, "order__record_version"), e.1);
        assert_eq!(col(r, "order__status"), e.2);
        assert_eq!(render_ts(col(r, "order__record_valid_from")), e.3);
        assert_eq!(render_ts(col(r, "order__record_valid_to")), e.4);
        assert_eq!(col(r, "order__is_current_record"), e.5);
        assert_eq!(render_ts(col(r, "order__record_updated_at")), e.6);
        assert_eq!(col(r, "_hook__order"), "order__test|1");
        assert_eq!(col(r, "_hook__customer"), "customer__test|10");
        assert_eq!(
            col(r, "_hook__epoch__placed"),
            "epoch__date|2024-01-01T08:30:00Z"
        );
        assert_eq!(
            col(r, "_hook__order__customer"),
            "order__test|1~customer__test|10"
        );
    }
    let o2 = rows
        .iter()
        .find(|r| col(r, "order__order_id") == "2")
        .unwrap();
    assert_eq!(
        col(o2, "_hook__customer"),
        "NULL",
        "NULL business key gives a NULL hook"
    );
    assert_eq!(
        col(o2, "_hook__order__customer"),
        "NULL",
        "a composite with a NULL part is NULL"
    );
    assert_eq!(
        col(o2, "_hook__epoch__placed"),
        "epoch__date|2024-01-02T00:00:00.500Z"
    );
    assert_eq!(
        col(o2, "_pit_hook__order"),
        "order__test|2~epoch__valid_from|1970-01-01T00:00:00Z"
    );
    assert_eq!(col(o2, "order__is_current_record"), "true");
}

/// Arrow renders UTC timestamps as `2024-01-02T12:00:00Z` / `...00.250Z`; normalise
/// the microsecond padding so expectations read naturally.
fn render_ts(s: &str) -> String {
    let dt = DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    dt.with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%S%.fZ")
        .to_string()
}

#[tokio::test]
async fn incremental_equals_full() {
    let (wh, _dir) = seeded().await;
    let cfg = config();
    let frame = cfg.frame("frame__test__orders").unwrap();
    let ctx = SessionContext::new();
    let key = ["order_id".to_string()];
    build_frame(&wh, &ctx, frame, &key, BuildMode::Full)
        .await
        .unwrap();
    let das = TableName::parse("das.raw__test__orders").unwrap();
    wh.write(
        &das,
        das_schema(),
        vec![load(
            "L4",
            "2024-01-05T00:00:00Z",
            &[
                (2, Some(11), "paid", "2024-01-02T00:00:00.5Z"),
                (3, Some(12), "new", "2024-01-04T00:00:00Z"),
            ],
        )],
        Write::append(),
    )
    .await
    .unwrap();
    let inc = build_frame(&wh, &ctx, frame, &key, BuildMode::Incremental)
        .await
        .unwrap();
    assert_eq!(inc.mode, BuildMode::Incremental);
    assert_eq!(inc.rows, 3, "order 2's closed v1, its new v2, and order 3");
    assert_eq!(
        inc.commit.as_ref().unwrap().removed_rows,
        1,
        "only order 2's old v1 is replaced"
    );
    let incremental = table_text(&wh, "dab.frame__test__orders").await;
    build_frame(&wh, &ctx, frame, &key, BuildMode::Full)
        .await
        .unwrap();
    let full = table_text(&wh, "dab.frame__test__orders").await;
    assert_eq!(incremental.len(), 6);
    assert_eq!(
        incremental.iter().collect::<BTreeSet<_>>(),
        full.iter().collect::<BTreeSet<_>>(),
        "incremental equals full"
    );
    // Nothing new: an incremental build commits nothing.
    let again = build_frame(&wh, &ctx, frame, &key, BuildMode::Incremental)
        .await
        .unwrap();
    assert_eq!((again.rows, again.commit), (0, None));
}

/// Prints the fixture's frame; used by the time-zone test in a child process.
#[tokio::test]
async fn print_fixture_frame() {
    if std::env::var("LAKEHOUSE_PRINT_FIXTURE").is_err() {
        return;
    }
    let (wh, _dir) = seeded().await;
    let cfg = config();
    let frame = cfg.frame("frame__test__orders").unwrap();
    build_frame(
        &wh,
        &SessionContext::new(),
        frame,
        &["order_id".into()],
        BuildMode::Full,
    )
    .await
    .unwrap();
    for r in table_text(&wh, "dab.frame__test__orders").await {
        println!("ROW {}", r.join(" | "));
    }
}

#[test]
fn output_is_identical_under_two_time_zones() {
    let run = |tz: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "print_fixture_frame",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TZ", tz)
            .env("LAKEHOUSE_PRINT_FIXTURE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<String> = text
            .lines()
            .filter_map(|l| l.find("ROW ").map(|i| l[i..].to_string()))
            .collect();
        assert_eq!(rows.len(), 4, "{text}");
        rows
    };
    assert_eq!(run("UTC"), run("Asia/Kolkata"));
}

#[test]
fn config_errors_name_file_frame_and_field() {
    let check = |frames: &str, expect: &[&str]| {
        let err = ModelConfig::from_yaml(CONCEPTS, "concepts.yaml", frames, "frames.yaml")
            .and_then(|c| {
                c.validate(|t| {
                    (t == "raw__test__orders")
                        .then(|| vec!["order_id".into(), "customer_id".into()])
                })
                .map(|_| c)
            })
            .unwrap_err()
            .to_string();
        for e in expect {
            assert!(err.contains(e), "expected '{e}' in: {err}");
        }
    };
    let frame = |hooks: &str, table: &str| {
        format!(
            "frames:\n  - name: frame__test__orders\n    source_table: {table}\n    column_prefix: order\n    hooks:\n{hooks}"
        )
    };
    let ok_hook = "      - { name: _hook__order, keyset: order__test, business_key: order_id, primary: true }\n";
    // Unknown source table.
    check(
        &frame(ok_hook, "raw__test__nope"),
        &[
            "frames.yaml",
            "frame__test__orders",
            "`source_table`",
            "raw__test__nope",
        ],
    );
    // Unknown column.
    check(
        &frame(
            "      - { name: _hook__order, keyset: order__test, business_key: nope, primary: true }\n",
            "raw__test__orders",
        ),
        &[
            "frames.yaml",
            "frame__test__orders",
            "_hook__order",
            "`business_key`",
            "nope",
        ],
    );
    // Unknown keyset.
    check(
        &frame(
            "      - { name: _hook__order, keyset: order__other, business_key: order_id, primary: true }\n",
            "raw__test__orders",
        ),
        &[
            "frame__test__orders",
            "`keyset`",
            "order__other",
            "concepts.yaml",
        ],
    );
    // No primary hook.
    check(
        &frame(
            "      - { name: _hook__order, keyset: order__test, business_key: order_id }\n",
            "raw__test__orders",
        ),
        &[
            "frame__test__orders",
            "`hooks`",
            "no hook is marked primary",
        ],
    );
    // Two primary hooks.
    check(
        &frame(
            &format!(
                "{ok_hook}      - {{ name: _hook__customer, keyset: customer__test, business_key: customer_id, primary: true }}\n"
            ),
            "raw__test__orders",
        ),
        &[
            "frame__test__orders",
            "2 hooks are marked primary",
            "_hook__order, _hook__customer",
        ],
    );
    // Composite part that is not a hook of the frame.
    check(
        &frame(
            &format!(
                "{ok_hook}      - {{ name: _hook__x, composite: [_hook__order, _hook__missing] }}\n"
            ),
            "raw__test__orders",
        ),
        &[
            "frame__test__orders",
            "_hook__x",
            "`composite`",
            "_hook__missing is not a hook",
        ],
    );
    // Duplicate hook name.
    check(
        &frame(
            &format!(
                "{ok_hook}      - {{ name: _hook__order, keyset: order__test, business_key: order_id }}\n"
            ),
            "raw__test__orders",
        ),
        &["frame__test__orders", "duplicate hook name _hook__order"],
    );
    // Duplicate frame name.
    let twice = format!(
        "{}{}",
        frame(ok_hook, "raw__test__orders"),
        frame(ok_hook, "raw__test__other").replace("frames:\n", "")
    );
    check(&twice, &["frame__test__orders is declared twice"]);
}

#[test]
fn adventure_works_model_config_is_valid() {
    let cfg = ModelConfig::adventure_works().unwrap();
    assert_eq!(cfg.frames.len(), 58);
    let primaries: BTreeSet<_> = cfg
        .frames
        .iter()
        .map(|f| f.primary().name.clone())
        .collect();
    assert_eq!(
        primaries.len(),
        58,
        "primary hooks are unique across frames"
    );
}
