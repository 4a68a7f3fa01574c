//! Other engines read every table of a warehouse we built with our rows:
//! pyiceberg (`StaticTable.scan().to_arrow()`), polars (`scan_iceberg`) and
//! daft (`read_iceberg`) each open every table, all namespaces, from its
//! newest metadata file, read it whole, and must produce our row count and
//! the same sorted values of its first text column. The warehouse is
//! Adventure Works after `init` and two `elt` days without upkeep, so the
//! upserted tables keep their position-delete files (merge-on-read); the
//! test asserts that several do and that their live rows differ from the
//! rows of their data files, so an engine that ignored the deletes fails.
//!
//! How the engines apply our position deletes (polars 2.1, daft 0.7):
//! daft passes them to its native Parquet reader. Polars' native reader
//! takes only delete files whose manifest entry bounds `file_path` to one
//! data file (ours record those bounds); a table with a delete file
//! spanning several data files it reads through its PyIceberg-planned
//! pyarrow scan instead. Either way the rows are ours.
//!
//! Needs `python3` (or `$LAKEHOUSE_PYTHON`) with `pyiceberg[pyarrow]`,
//! `polars` and `daft` (`scripts/test.sh` installs them); a missing package
//! fails the test with the command that installs it.

mod readers;

use std::collections::BTreeMap;

use lakehouse::dag::run::{PipelineOptions, SourceSpec, elt, init};
use lakehouse::storage::{AsOf, Warehouse};
use readers::{read_with, sorted_values, text_column};

/// The engines `tests/py/read_all_iceberg.py` reads with.
const ENGINES: [&str; 3] = ["pyiceberg", "polars", "daft"];

/// What we read from one table.
struct Ours {
    table: String,
    column: Option<String>,
    /// Live rows of our scan.
    rows: u64,
    /// Rows of the data files (`total-records`), deleted ones included.
    file_rows: u64,
    position_deletes: u64,
    /// Sorted non-null values of `column`.
    values: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_engines_read_every_table_with_our_rows() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let project = lakehouse::model::Project::adventure_works().unwrap();
    let day0 = PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.01), Some(3)),
        ..PipelineOptions::default()
    };
    init(&wh, &project, &day0).await.unwrap();
    // No upkeep: upserts leave their position-delete files uncompacted.
    let no_upkeep = PipelineOptions {
        upkeep: None,
        ..PipelineOptions::default()
    };
    for _ in 0..2 {
        elt(&wh, &project, &no_upkeep).await.unwrap();
    }

    let mut input = String::new();
    let mut ours: BTreeMap<String, Ours> = BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        let loaded = wh.load_table(&t).await.unwrap();
        let summary = loaded.current_properties();
        let total = |k: &str| summary.get(k).map_or(0, |v| v.parse::<u64>().unwrap());
        assert_eq!(total("total-equality-deletes"), 0, "{t}: equality deletes");
        let batches = wh.scan(&t, AsOf::Latest).await.unwrap();
        let column = text_column(&loaded);
        let location = loaded.table.metadata_location().unwrap().to_string();
        input.push_str(&format!(
            "{location}\t{}\n",
            column.clone().unwrap_or_default()
        ));
        let values = column
            .as_deref()
            .map(|c| sorted_values(&batches, c))
            .unwrap_or_default();
        ours.insert(
            location,
            Ours {
                table: t.to_string(),
                column,
                rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
                file_rows: total("total-records"),
                position_deletes: total("total-position-deletes"),
                values,
            },
        );
    }
    assert!(ours.len() > 100, "tables in the warehouse: {}", ours.len());
    let with_deletes: Vec<&Ours> = ours.values().filter(|o| o.position_deletes > 0).collect();
    assert!(
        with_deletes.len() >= 20,
        "tables with position deletes: {:?}",
        with_deletes.iter().map(|o| &o.table).collect::<Vec<_>>()
    );
    for o in ours.values() {
        // Our scan applies the deletes: each deleted position removes a row.
        assert_eq!(
            o.rows + o.position_deletes,
            o.file_rows,
            "{}: our rows + position deletes = rows of the data files",
            o.table
        );
    }
    assert!(ours.values().any(|o| o.rows > 0 && o.column.is_some()));

    for engine in ENGINES {
        let theirs = read_with(engine, &input);
        for (location, o) in &ours {
            let got = &theirs[location];
            assert!(
                got.get("error").is_none(),
                "{engine} failed to read {}: {}",
                o.table,
                got["error"]
            );
            assert_eq!(
                got["rows"].as_u64(),
                Some(o.rows),
                "{engine} reads {} with another row count ({} data-file rows, {} position \
                 deletes)",
                o.table,
                o.file_rows,
                o.position_deletes
            );
            let values: Vec<&str> = got["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                values == o.values,
                "{engine} reads other values of {}.{}",
                o.table,
                o.column.as_deref().unwrap_or("")
            );
        }
    }
    eprintln!(
        "{} tables read by {ENGINES:?} with our rows; {} with position deletes",
        ours.len(),
        with_deletes.len()
    );
}
