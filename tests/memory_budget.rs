//! Builds under a memory budget: a small budget spills and builds exactly
//! the tables an unbounded one builds (init, an elt day, and incremental ==
//! full under the budget); a budget too small for an operator that cannot
//! spill fails with one error naming the model, the operator and the limit,
//! commits nothing of that model, and a re-run with more memory converges.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use lakehouse::budget::MemoryBudget;
use lakehouse::dag::Dag;
use lakehouse::dag::plan::plan;
use lakehouse::dag::run::{PipelineOptions, RunOptions, SourceSpec, elt, init, run_models};
use lakehouse::error::ErrorKind;
use lakehouse::model::Project;
use lakehouse::storage::Warehouse;

/// A budget small enough that scale 0.03's sorts spill.
const SMALL: u64 = 48 << 20;

fn options(budget: MemoryBudget) -> PipelineOptions {
    PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.03), Some(5)),
        run: RunOptions {
            budget,
            ..RunOptions::default()
        },
        ..PipelineOptions::default()
    }
}

fn elt_options(budget: MemoryBudget) -> PipelineOptions {
    PipelineOptions {
        run: RunOptions {
            budget,
            ..RunOptions::default()
        },
        ..PipelineOptions::default()
    }
}

/// Every table but the run log, as sets of rows.
async fn tables(wh: &Warehouse) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        if t.namespace != "lakehouse" {
            out.insert(t.to_string(), common::rows_as_text(wh, &t).await);
        }
    }
    out
}

fn assert_same(a: &BTreeMap<String, BTreeSet<String>>, b: &BTreeMap<String, BTreeSet<String>>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (t, rows) in a {
        assert!(
            rows == &b[t],
            "{t}: {} rows unbounded, {} under the budget",
            rows.len(),
            b[t].len()
        );
    }
}

/// Rebuild every model in full under `budget` from the current DAS
/// snapshot; the tables after.
async fn full_rebuild(
    wh: &Warehouse,
    project: &Project,
    budget: MemoryBudget,
) -> BTreeMap<String, BTreeSet<String>> {
    let dag = Dag::build(project).unwrap();
    let planned = plan(wh, &dag, true).await.unwrap();
    let run = RunOptions {
        budget,
        ..RunOptions::default()
    };
    run_models(wh, project, &dag, &planned, &run, None)
        .await
        .unwrap();
    tables(wh).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_spills_and_builds_the_same_tables() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let small = || MemoryBudget::limited(SMALL);

    let r = init(&wh, &project, &options(small())).await.unwrap();
    let spilled: u64 = r.models.iter().map(|m| m.spilled_bytes).sum();
    assert!(spilled > 0, "the small budget made the builds spill");
    assert!(
        r.models
            .iter()
            .filter(|m| m.spilled_bytes > 0)
            .any(|m| m.model.starts_with("dar")),
        "DAR models spilled too"
    );
    let under_budget = tables(&wh).await;
    // The same models built without a limit, from the same DAS snapshot.
    assert_same(
        &full_rebuild(&wh, &project, MemoryBudget::unbounded()).await,
        &under_budget,
    );

    // An elt day under the budget (incremental) equals a full build under
    // the budget and one without a limit.
    let r = elt(&wh, &project, &elt_options(small())).await.unwrap();
    assert_eq!(r.day, Some(1));
    let incremental = tables(&wh).await;
    assert_same(&incremental, &full_rebuild(&wh, &project, small()).await);
    assert_same(
        &incremental,
        &full_rebuild(&wh, &project, MemoryBudget::unbounded()).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_too_small_fails_clearly_commits_nothing_and_a_rerun_converges() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();

    // Far too little for a bridge's sort to hold one batch of its rows.
    let mut opts = options(MemoryBudget::limited(4 << 20));
    opts.run.concurrency = 1;
    let err = init(&wh, &project, &opts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    let text = format!("{err:#}");
    let model = text
        .split("building ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no model named: {text}"))
        .to_string();
    assert!(model.starts_with("dar"), "{model}: {text}");
    assert!(text.contains("4.0 MiB"), "the limit: {text}");
    assert!(
        regex::Regex::new(r"[A-Za-z]+\[\d+\] needs more memory")
            .unwrap()
            .is_match(&text),
        "the operator: {text}"
    );
    let (ns, name) = model.split_once('.').unwrap();
    let t = lakehouse::storage::TableName::new(ns, name).unwrap();
    // Streaming created the table's shell before its rows; no snapshot of
    // it was committed, so it has no rows.
    if let Some(t) = wh.try_load_table(&t).await.unwrap() {
        assert!(
            t.metadata().current_snapshot().is_none(),
            "nothing of {model} was committed"
        );
    }
    // The models committed before the failure.
    let mut committed = BTreeSet::new();
    for t in wh.list_all_tables().await.unwrap() {
        let loaded = wh.load_table(&t).await.unwrap();
        if t.namespace != "das" && loaded.metadata().current_snapshot().is_some() {
            committed.insert(t.to_string());
        }
    }
    assert!(
        committed.iter().any(|t| t.starts_with("dab.")),
        "frames built"
    );

    // The re-run with the default budget finishes day 0, builds only what
    // was left, and converges to a full build.
    let r = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(r.day, Some(0), "the interrupted init is finished");
    assert!(r.models.iter().any(|m| m.model == model));
    let redone: Vec<&String> = r
        .models
        .iter()
        .map(|m| &m.model)
        .filter(|m| committed.contains(*m))
        .collect();
    assert!(redone.is_empty(), "committed models not redone: {redone:?}");
    let converged = tables(&wh).await;
    let dag = Dag::build(&project).unwrap();
    let planned = plan(&wh, &dag, true).await.unwrap();
    run_models(&wh, &project, &dag, &planned, &RunOptions::default(), None)
        .await
        .unwrap();
    assert_same(&converged, &tables(&wh).await);
}
