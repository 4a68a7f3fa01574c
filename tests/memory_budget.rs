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
const SMALL: u64 = 96 << 20;

fn options(budget: MemoryBudget) -> PipelineOptions {
    PipelineOptions {
        source: SourceSpec::Embedded {
            day: None,
            scale: Some(0.03),
            seed: Some(5),
        },
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_spills_and_builds_the_same_tables() {
    let project = Project::adventure_works().unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let unbounded = Warehouse::open(da.path().to_str().unwrap()).unwrap();
    let small = Warehouse::open(db.path().to_str().unwrap()).unwrap();

    init(&unbounded, &project, &options(MemoryBudget::unbounded()))
        .await
        .unwrap();
    let r = init(&small, &project, &options(MemoryBudget::limited(SMALL)))
        .await
        .unwrap();
    let spilled: u64 = r.models.iter().map(|m| m.spilled_bytes).sum();
    assert!(spilled > 0, "the small budget made the builds spill");
    assert!(
        r.models
            .iter()
            .filter(|m| m.spilled_bytes > 0)
            .any(|m| m.model.starts_with("dar")),
        "DAR models spilled too"
    );
    assert_same(&tables(&unbounded).await, &tables(&small).await);

    // One elt day each: the same again.
    elt(&unbounded, &project, &elt_options(MemoryBudget::unbounded()))
        .await
        .unwrap();
    let r = elt(&small, &project, &elt_options(MemoryBudget::limited(SMALL)))
        .await
        .unwrap();
    assert_eq!(r.day, Some(1));
    let incremental = tables(&small).await;
    assert_same(&tables(&unbounded).await, &incremental);

    // Incremental == full under the budget: rebuild every model in full.
    let dag = Dag::build(&project).unwrap();
    let planned = plan(&small, &dag, true).await.unwrap();
    let run = RunOptions {
        budget: MemoryBudget::limited(SMALL),
        ..RunOptions::default()
    };
    run_models(&small, &project, &dag, &planned, &run, None)
        .await
        .unwrap();
    assert_same(&incremental, &tables(&small).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_too_small_fails_clearly_commits_nothing_and_a_rerun_converges() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let day0 = init(&wh, &project, &options(MemoryBudget::unbounded()))
        .await
        .unwrap();
    assert!(day0.models.len() > 200);

    // Far too little for a model's sort to hold one batch of its rows.
    let tiny = MemoryBudget::limited(4 << 20);
    let before = versions(&wh).await;
    let mut opts = elt_options(tiny);
    opts.run.concurrency = 1;
    let err = elt(&wh, &project, &opts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    let text = err.to_string();
    let model = text
        .split("building ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no model named: {text}"))
        .to_string();
    assert!(before.contains_key(&model), "{model} is a table: {text}");
    assert!(text.contains("4.0 MiB"), "the limit: {text}");
    assert!(
        regex::Regex::new(r"[A-Za-z]+\[\d+\] needs more memory")
            .unwrap()
            .is_match(&text),
        "the operator: {text}"
    );
    assert_eq!(
        versions(&wh).await[&model],
        before[&model],
        "nothing of {model} was committed"
    );

    // The re-run with the default budget finishes the day and converges.
    let r = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(r.day, Some(1));
    let converged = tables(&wh).await;
    let dag = Dag::build(&project).unwrap();
    let planned = plan(&wh, &dag, true).await.unwrap();
    run_models(&wh, &project, &dag, &planned, &RunOptions::default(), None)
        .await
        .unwrap();
    assert_same(&converged, &tables(&wh).await);
}

async fn versions(wh: &Warehouse) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        out.insert(t.to_string(), wh.load_table(&t).await.unwrap().version);
    }
    out
}
