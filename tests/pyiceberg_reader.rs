//! Tables we write are read back with identical rows by pyiceberg, an
//! independent Iceberg reader, opening them from their newest metadata file.
//!
//! Needs `python3` with `pyiceberg[pyarrow]` (installed by `.ci/run`).

mod readers;

use std::process::Command;
use std::sync::Arc;

use arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use lakehouse::storage::{TableName, Warehouse, Write};
use serde_json::{Value, json};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("active", DataType::Boolean, true),
        Field::new("sold_on", DataType::Date32, true),
        Field::new(
            "loaded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("photo", DataType::Binary, true),
    ]))
}

type Row = (
    i64,
    Option<&'static str>,
    f64,
    bool,
    i32,
    i64,
    &'static [u8],
);

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(BinaryArray::from(
                rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn pyiceberg(metadata: &str, snapshot: Option<i64>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/read_iceberg.py");
    let python = std::env::var("LAKEHOUSE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.arg(script).arg(metadata);
    if let Some(s) = snapshot {
        cmd.arg(s.to_string());
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "pyiceberg failed (install it with pip install \"pyiceberg[pyarrow]\"): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_reads_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let t = TableName::parse("das.products").unwrap();
    // 2024-03-01 = day 19783; 2024-03-01T12:00:00Z = 1709294400 s.
    wh.write(
        &t,
        schema(),
        vec![batch(&[
            (
                1,
                Some("bike"),
                100.5,
                true,
                19783,
                1_709_294_400_000_000,
                b"\x01\x02",
            ),
            (2, None, 20.0, false, 19784, 1_709_294_400_123_456, b""),
        ])],
        Write::append(),
    )
    .await
    .unwrap();
    let first = wh.load_table(&t).await.unwrap();
    let first_snapshot = first.metadata().current_snapshot_id().unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(2, Some("helmet"), 21.0, true, 19790, 0, b"\xff")])],
        Write::upsert(["id"]),
    )
    .await
    .unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(
            3,
            Some("chain"),
            9.0,
            false,
            0,
            86_400_000_000,
            b"x",
        )])],
        Write::append(),
    )
    .await
    .unwrap();
    let latest = wh.load_table(&t).await.unwrap();
    let metadata = wh.metadata_location(&t, latest.version);

    let got = pyiceberg(&metadata, None);
    assert_eq!(got["format_version"], json!(2));
    assert_eq!(
        got["rows"],
        json!([
            {"active": true, "id": 1, "loaded_at": "2024-03-01T12:00:00+00:00", "name": "bike", "photo": "0102", "price": 100.5, "sold_on": "2024-03-01"},
            {"active": true, "id": 2, "loaded_at": "1970-01-01T00:00:00+00:00", "name": "helmet", "photo": "ff", "price": 21.0, "sold_on": "2024-03-08"},
            {"active": false, "id": 3, "loaded_at": "1970-01-02T00:00:00+00:00", "name": "chain", "photo": "78", "price": 9.0, "sold_on": "1970-01-01"},
        ])
    );
    // Time travel through pyiceberg agrees with ours.
    let old = pyiceberg(&metadata, Some(first_snapshot));
    assert_eq!(old["rows"].as_array().unwrap().len(), 2);
    assert_eq!(old["rows"][1]["name"], Value::Null);
    assert_eq!(
        old["rows"][1]["loaded_at"],
        json!("2024-03-01T12:00:00.123456+00:00")
    );
}

/// pyiceberg applies our position deletes (merge-on-read replace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_applies_position_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let t = TableName::parse("dar.products").unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[
            (1, Some("bike"), 1.0, true, 0, 0, b""),
            (2, Some("helmet"), 2.0, true, 0, 0, b""),
            (3, Some("chain"), 3.0, true, 0, 0, b""),
        ])],
        Write::append(),
    )
    .await
    .unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(2, Some("helmet pro"), 25.0, false, 0, 0, b"")])],
        Write::merge(["id"]),
    )
    .await
    .unwrap();
    let latest = wh.load_table(&t).await.unwrap();
    assert_eq!(latest.current_properties()["total-position-deletes"], "1");
    let got = pyiceberg(&wh.metadata_location(&t, latest.version), None);
    let names: Vec<(i64, String)> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (1, "bike".to_string()),
            (2, "helmet pro".to_string()),
            (3, "chain".to_string())
        ]
    );
}

/// Every table a few `elt` days with aggressive upkeep compacted is read by
/// pyiceberg with our rows: the same count, and the same values of its
/// first text column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_reads_every_compacted_table() {
    use lakehouse::dag::run::{PipelineOptions, SourceSpec, elt, init};
    use lakehouse::storage::upkeep::UpkeepPolicy;

    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let project = lakehouse::model::Project::adventure_works().unwrap();
    let day0 = PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.01), Some(3)),
        ..PipelineOptions::default()
    };
    init(&wh, &project, &day0).await.unwrap();
    let with_upkeep = PipelineOptions {
        upkeep: Some(UpkeepPolicy {
            retain: std::time::Duration::ZERO,
            keep_last: 2,
            min_files: 2,
            ..UpkeepPolicy::default()
        }),
        ..PipelineOptions::default()
    };
    for _ in 0..2 {
        elt(&wh, &project, &with_upkeep).await.unwrap();
    }
    let mut input = String::new();
    let mut ours = std::collections::BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        let loaded = wh.load_table(&t).await.unwrap();
        if !loaded.history().iter().any(|s| s.operation == "replace") {
            continue;
        }
        let batches = wh.scan(&t, lakehouse::storage::AsOf::Latest).await.unwrap();
        let column = readers::text_column(&loaded);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let values = column
            .as_deref()
            .map(|c| readers::sorted_values(&batches, c))
            .unwrap_or_default();
        let location = loaded.table.metadata_location().unwrap().to_string();
        input.push_str(&format!("{location}\t{}\n", column.unwrap_or_default()));
        ours.insert(location, (t.to_string(), rows, values));
    }
    assert!(ours.len() > 20, "many tables compacted: {}", ours.len());
    let theirs = readers::read_with("pyiceberg", &input);
    for (location, (table, rows, values)) in &ours {
        let t = &theirs[location];
        assert_eq!(t["rows"].as_u64(), Some(*rows as u64), "{table}: row count");
        let got: Vec<String> = t["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(
            &got == values,
            "{table}: values of its first text column differ"
        );
    }
}
