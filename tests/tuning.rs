//! The speed tunings (`lakehouse::tuning`): each does what its name says,
//! and a run with it off gives the same results as with it on.
//!
//! The runs compared are `init` then one `elt` day at scale 0.005, each in a
//! warehouse of its own: the baseline with every tuning on (made once, shared
//! by the tests) against one with a tuning off. Load times differ between
//! two warehouses, so tables are compared on the columns they do not reach:
//! every column but timestamps and PIT hooks (which embed load times), as
//! sorted rows; and the runs on what each model build did (mode, rows,
//! rows added and removed).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use lakehouse::dag::Dag;
use lakehouse::dag::run::{PipelineOptions, PipelineReport, SourceSpec, elt, init};
use lakehouse::dag::sources::Served;
use lakehouse::das::is_load_column;
use lakehouse::model::Project;
use lakehouse::storage::{AsOf, LocalReads, Warehouse};
use lakehouse::tuning::Tuning;

/// What a run did per model: (model, full, rows, commit mode, rows added,
/// rows removed).
type Builds = Vec<(String, bool, u64, String, u64, u64)>;

/// What the tests compare of two runs.
#[derive(Debug, PartialEq)]
struct Results {
    init: Builds,
    elt: Builds,
    /// Every table but the run log: its rows on the columns load times do
    /// not reach, sorted.
    tables: BTreeMap<String, Vec<String>>,
}

fn options(tuning: Tuning) -> PipelineOptions {
    let mut options = PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.005), Some(7)),
        ..PipelineOptions::default()
    };
    options.run.tuning = tuning;
    options
}

fn builds(r: &PipelineReport) -> Builds {
    r.models
        .iter()
        .map(|m| {
            let c = m.commit.as_ref();
            (
                m.model.clone(),
                m.full,
                m.rows,
                c.map(|c| c.mode.to_string()).unwrap_or_default(),
                c.map_or(0, |c| c.added_rows),
                c.map_or(0, |c| c.removed_rows),
            )
        })
        .collect()
}

/// `b` without timestamp columns, PIT hooks and DAS load columns.
fn without_load_times(b: &RecordBatch) -> RecordBatch {
    let keep: Vec<usize> = b
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            !matches!(f.data_type(), DataType::Timestamp(..))
                && !f.name().contains("pit_hook")
                && !is_load_column(f.name())
        })
        .map(|(i, _)| i)
        .collect();
    let fields: Vec<_> = keep.iter().map(|&i| b.schema().field(i).clone()).collect();
    let columns = keep.iter().map(|&i| Arc::clone(b.column(i))).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

async fn tables(wh: &Warehouse) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        if t.namespace == "lakehouse" {
            continue;
        }
        let batches: Vec<RecordBatch> = wh
            .scan(&t, AsOf::Latest)
            .await
            .unwrap()
            .iter()
            .map(without_load_times)
            .collect();
        let mut rows = common::text_rows(&batches);
        rows.sort();
        out.insert(t.to_string(), rows);
    }
    out
}

/// `init` and one `elt` day with `tuning` in `wh`.
async fn run(wh: &Warehouse, tuning: Tuning) -> Results {
    let project = Project::adventure_works().unwrap();
    let init = init(wh, &project, &options(tuning)).await.unwrap();
    let elt = elt(wh, &project, &options(tuning)).await.unwrap();
    assert_eq!(elt.day, Some(1));
    Results {
        init: builds(&init),
        elt: builds(&elt),
        tables: tables(wh).await,
    }
}

/// The results with every tuning on, made once.
fn baseline() -> &'static Results {
    static BASELINE: OnceLock<Results> = OnceLock::new();
    tokio::task::block_in_place(|| {
        BASELINE.get_or_init(|| {
            std::thread::spawn(|| {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let dir = tempfile::tempdir().unwrap();
                    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
                    run(&wh, Tuning::default()).await
                })
            })
            .join()
            .unwrap()
        })
    })
}

/// `results` equal the baseline's, and are not trivially so.
fn assert_same_as_baseline(results: &Results, off: &str) {
    let base = baseline();
    assert_eq!(base.tables.len(), 58 * 5 + 2, "DAS tables and models");
    assert!(
        base.elt.iter().any(|b| !b.1 && b.5 > 0),
        "the elt day replaces rows incrementally"
    );
    assert_eq!(results.init, base.init, "init with {off} off");
    assert_eq!(results.elt, base.elt, "elt with {off} off");
    assert_eq!(
        results.tables.keys().collect::<Vec<_>>(),
        base.tables.keys().collect::<Vec<_>>()
    );
    for (t, rows) in &base.tables {
        assert!(
            &results.tables[t] == rows,
            "{t} with {off} off: {} rows, with it on {}",
            results.tables[t].len(),
            rows.len()
        );
    }
}

fn off(name: &str) -> Tuning {
    Tuning::parse(&format!("no-{name}")).unwrap()
}

/// `skip-landed`: an `elt` run's embedded source gets the landed cursors
/// as horizons only with it on (never in `init`); off, the run lands and
/// builds the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_landed_off_serves_every_row_and_changes_no_result() {
    let project = Project::adventure_works().unwrap();
    let source = &project.sources[0];
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let horizons = |full: bool, tuning: Tuning| {
        let wh = wh.clone();
        async move {
            lakehouse::dag::run::horizons(&wh, source, &Served::Embedded, full, &tuning)
                .await
                .unwrap()
        }
    };
    assert!(horizons(false, Tuning::default()).await.is_empty());
    init(&wh, &project, &options(Tuning::default()))
        .await
        .unwrap();
    let on = horizons(false, Tuning::default()).await;
    assert!(
        on.contains_key("/SalesOrderDetails") && on.len() >= 5,
        "landed cursors: {on:?}"
    );
    assert!(horizons(false, off("skip-landed")).await.is_empty());
    assert!(horizons(true, Tuning::default()).await.is_empty());
    let url = Served::Url("http://127.0.0.1:9/".into());
    assert!(
        lakehouse::dag::run::horizons(&wh, source, &url, false, &Tuning::default())
            .await
            .unwrap()
            .is_empty()
    );

    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    assert_same_as_baseline(&run(&wh, off("skip-landed")).await, "skip-landed");
}

/// `lean-incremental-plans` (its contexts: the unit test
/// `lean_incremental_plans_switch_the_incremental_context`): off, the
/// incremental builds give the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_incremental_plans_off_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let tuning = off("lean-incremental-plans");
    assert!(!tuning.lean_incremental_plans && tuning.skip_landed);
    assert_same_as_baseline(&run(&wh, tuning).await, "lean-incremental-plans");
}

/// `direct-local-reads`: off, a local warehouse's store is plain
/// `LocalFileSystem`, and a run through it gives the same results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_local_reads_off_is_plain_local_file_system_and_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let direct = Warehouse::open(path).unwrap();
    assert!(
        direct
            .store()
            .to_string()
            .starts_with("InPlaceReads(LocalFileSystem("),
        "{}",
        direct.store()
    );
    let pooled = Warehouse::open_reading(path, &[], LocalReads::Pooled).unwrap();
    assert!(
        pooled.store().to_string().starts_with("LocalFileSystem("),
        "{}",
        pooled.store()
    );
    let results = run(&pooled, off("direct-local-reads")).await;
    assert_same_as_baseline(&results, "direct-local-reads");
    // The same files read both ways.
    assert_eq!(tables(&direct).await, results.tables);
}

/// `plan-cache` (what is read and written: `tests/cli_warehouse.rs`,
/// `plan_cache_off_neither_reads_nor_writes_the_cache`): off, the DAG and
/// every fingerprint are the same.
#[test]
fn plan_cache_off_builds_the_same_dag() {
    let project = Project::adventure_works().unwrap();
    let cached = Dag::build(&project).unwrap();
    let rendered = Dag::build_with(&project, false).unwrap();
    assert_eq!(cached.nodes, rendered.nodes);
    assert!(
        rendered
            .nodes
            .iter()
            .filter(|n| !n.fingerprint.is_empty())
            .count()
            > 200
    );
}
