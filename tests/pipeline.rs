//! init / elt over several simulated days: incremental equals a full build,
//! a failed run converges without redoing committed work, plan lists exactly
//! what a config change affects, lineage is a valid Mermaid flowchart, and
//! the run lock keeps runs apart (on local disk and on S3).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lakehouse::dag::Dag;
use lakehouse::dag::lineage::{Level, mermaid};
use lakehouse::dag::lock::RunLock;
use lakehouse::dag::plan::{Status, plan};
use lakehouse::dag::run::{PipelineOptions, RunOptions, SourceSpec, elt, init, run_models};
use lakehouse::dag::upkeep::{MaintainOptions, maintain};
use lakehouse::model::Project;
use lakehouse::storage::upkeep::UpkeepPolicy;
use lakehouse::storage::{TableName, Warehouse};

fn options(day: Option<u32>) -> PipelineOptions {
    PipelineOptions {
        source: SourceSpec::embedded(day, Some(0.01), Some(11)),
        ..PipelineOptions::default()
    }
}

async fn versions(wh: &Warehouse) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        out.insert(t.to_string(), wh.load_table(&t).await.unwrap().version);
    }
    out
}

/// The models a run built in full.
fn built_in_full(r: &lakehouse::dag::run::PipelineReport) -> Vec<&str> {
    r.models
        .iter()
        .filter(|m| m.full)
        .map(|m| m.model.as_str())
        .collect()
}

/// Rebuild every model in full from the current DAS snapshot and return the tables.
async fn full_rebuild(wh: &Warehouse, project: &Project) -> BTreeMap<String, BTreeSet<String>> {
    let dag = Dag::build(project).unwrap();
    let planned = plan(wh, &dag, true).await.unwrap();
    run_models(wh, project, &dag, &planned, &RunOptions::default(), None)
        .await
        .unwrap();
    common::model_tables(wh).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_elt_equal_a_fresh_full_build() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let r0 = init(&wh, &project, &options(None)).await.unwrap();
    assert_eq!(r0.day, Some(0));
    let built = Dag::build(&project)
        .unwrap()
        .nodes
        .iter()
        .filter(|n| n.layer != lakehouse::dag::Layer::Das)
        .count();
    assert_eq!(
        built,
        58 * 4 + 2,
        "frames, bridges, events, peripherals, unified bridge, calendar"
    );
    assert_eq!(r0.models.len(), built);
    // init refuses a non-empty warehouse.
    let err = init(&wh, &project, &options(None)).await.unwrap_err();
    assert!(err.to_string().contains("lakehouse elt"), "{err}");

    let r1 = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r1.day,
        Some(1),
        "elt advances one simulated day, remembered in the warehouse"
    );
    assert!(
        !r1.models.is_empty() && r1.models.len() < built,
        "only affected models: {}",
        r1.models.len()
    );
    let full_in_elt = built_in_full(&r1);
    assert!(
        full_in_elt.is_empty(),
        "elt builds every model incrementally: {full_in_elt:?}"
    );
    assert!(
        r1.models
            .iter()
            .filter(|m| m.model.starts_with("dar"))
            .any(|m| m.commit.as_ref().is_some_and(|c| c.removed_rows > 0)),
        "some DAR rows are replaced, not only appended"
    );
    let r2 = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(r2.day, Some(2));

    let incremental = common::model_tables(&wh).await;
    assert_eq!(incremental.len(), built);
    let dag = Dag::build(&project).unwrap();
    assert!(
        plan(&wh, &dag, false)
            .await
            .unwrap()
            .iter()
            .all(|p| p.status == Status::UpToDate)
    );
    let full = full_rebuild(&wh, &project).await;
    for (t, rows) in &incremental {
        assert!(
            rows == &full[t],
            "{t}: incremental ({}) differs from full ({})",
            rows.len(),
            full[t].len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_converges_without_redoing_committed_work() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    init(&wh, &project, &options(None)).await.unwrap();

    // Day 1 fails at one model (chosen from the day's work).
    let failing = "dab.frame__adventure_works__sales_order_headers";
    let mut opts = PipelineOptions::default();
    opts.run.fail_at = Some(failing.to_string());
    opts.run.concurrency = 1;
    let err = elt(&wh, &project, &opts).await.unwrap_err();
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    let after_failure = versions(&wh).await;
    let dag = Dag::build(&project).unwrap();
    let pending: BTreeSet<String> = plan(&wh, &dag, false)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.status != Status::UpToDate)
        .map(|p| dag.nodes[p.node].name.to_string())
        .collect();
    assert!(pending.contains(failing));
    // Only the failed model and the models reading it were left: every
    // other model of the day was built despite the failure.
    let failed = dag.index_of(&TableName::parse(failing).unwrap()).unwrap();
    let readers = dag.descendants(&BTreeSet::from([failed]));
    for m in &pending {
        let i = dag.index_of(&TableName::parse(m).unwrap()).unwrap();
        assert!(
            i == failed || readers.contains(&i),
            "{m} does not read {failing} yet was not built"
        );
    }
    assert!(err.to_string().contains("were not built"), "{err}");

    // The re-run finishes day 1 (not day 2) and builds only what was left.
    let r = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r.day,
        Some(1),
        "an interrupted run is finished on the same day"
    );
    let rebuilt: BTreeSet<String> = r.models.iter().map(|m| m.model.clone()).collect();
    assert_eq!(rebuilt, pending, "only the models left over are built");
    let after_rerun = versions(&wh).await;
    for (t, v) in &after_failure {
        if t.starts_with("dab.") && !pending.contains(t) {
            assert_eq!(
                after_rerun[t], *v,
                "{t} was committed before the failure and not redone"
            );
        }
    }
    // Converged: equal to a full build over the same DAS.
    let converged = common::model_tables(&wh).await;
    let full = full_rebuild(&wh, &project).await;
    assert_eq!(converged, full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_frame_plans_exactly_that_frame_and_its_descendants() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    init(&wh, &project, &options(None)).await.unwrap();
    let mut edited = project.clone();
    let f = edited
        .model
        .frames
        .iter_mut()
        .find(|f| f.name == "frame__adventure_works__products")
        .unwrap();
    f.column_prefix = "item".into();
    // (The measures config is kept: it names frames, not their prefixes.)
    let dag = Dag::build(&edited).unwrap();
    let planned = plan(&wh, &dag, false).await.unwrap();
    let changed: BTreeSet<String> = planned
        .iter()
        .filter(|p| p.status != Status::UpToDate)
        .map(|p| dag.nodes[p.node].name.to_string())
        .collect();
    let root = dag
        .index_of(&TableName::parse("dab.frame__adventure_works__products").unwrap())
        .unwrap();
    let mut expected: BTreeSet<String> = dag
        .descendants(&BTreeSet::from([root]))
        .iter()
        .map(|&i| dag.nodes[i].name.to_string())
        .collect();
    expected.insert("dab.frame__adventure_works__products".into());
    assert_eq!(changed, expected);
    assert!(
        planned
            .iter()
            .filter(|p| p.status != Status::UpToDate)
            .all(|p| p.full())
    );

    // Same config, but the frame alone is rebuilt in full (as by a run that
    // failed right after it): its new epoch forces its consumers to rebuild
    // in full too, although their inputs' snapshots merely moved.
    let dag = Dag::build(&project).unwrap();
    let root = dag
        .index_of(&TableName::parse("dab.frame__adventure_works__products").unwrap())
        .unwrap();
    let only_frame: Vec<_> = plan(&wh, &dag, true)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.node == root)
        .collect();
    run_models(
        &wh,
        &project,
        &dag,
        &only_frame,
        &RunOptions::default(),
        None,
    )
    .await
    .unwrap();
    let planned = plan(&wh, &dag, false).await.unwrap();
    let bridge = dag
        .index_of(&TableName::parse("dar__staging.bridge__adventure_works__products").unwrap())
        .unwrap();
    let status = |i: usize| planned.iter().find(|p| p.node == i).unwrap();
    assert_eq!(status(root).status, Status::UpToDate);
    assert_eq!(status(bridge).status, Status::Changed);
    assert!(
        status(bridge).reason.contains("rebuilt in full since"),
        "{}",
        status(bridge).reason
    );
    let rebuilt: BTreeSet<usize> = planned
        .iter()
        .filter(|p| p.status != Status::UpToDate)
        .map(|p| p.node)
        .collect();
    assert_eq!(rebuilt, dag.descendants(&BTreeSet::from([root])));
    assert!(
        planned
            .iter()
            .filter(|p| rebuilt.contains(&p.node))
            .all(|p| p.full())
    );
}

#[test]
fn lineage_is_a_mermaid_flowchart_of_the_dag() {
    let project = Project::adventure_works().unwrap();
    let dag = Dag::build(&project).unwrap();
    let text = mermaid(&dag, None, Level::Model).unwrap();
    let (nodes, edges) = parse_mermaid_flowchart(&text);
    assert_eq!(nodes.len(), dag.nodes.len());
    assert_eq!(edges.len(), dag.edges().len());
    for (a, b) in &edges {
        assert!(
            nodes.contains(a) && nodes.contains(b),
            "edge {a} --> {b} names undeclared nodes"
        );
    }
    let layer = mermaid(&dag, None, Level::Layer).unwrap();
    let (nodes, edges) = parse_mermaid_flowchart(&layer);
    let layers: BTreeSet<_> = dag.nodes.iter().map(|n| n.layer).collect();
    let layer_edges: BTreeSet<_> = dag
        .edges()
        .into_iter()
        .map(|(a, b)| (dag.nodes[a].layer, dag.nodes[b].layer))
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(nodes.len(), layers.len());
    assert_eq!(edges.len(), layer_edges.len());
    assert_eq!(
        layer_edges.len(),
        4,
        "das->dab, dab->dar__staging, dab->dar, dar__staging->dar"
    );
    let filtered = mermaid(&dag, Some("*sales_order*"), Level::Model).unwrap();
    let (nodes, edges) = parse_mermaid_flowchart(&filtered);
    let kept: BTreeSet<usize> = (0..dag.nodes.len())
        .filter(|&i| dag.nodes[i].name.name.contains("sales_order"))
        .collect();
    let kept_edges = dag
        .edges()
        .into_iter()
        .filter(|(a, b)| kept.contains(a) && kept.contains(b))
        .count();
    assert_eq!((nodes.len(), edges.len()), (kept.len(), kept_edges));
    assert_eq!(
        kept.len(),
        2 * 5,
        "sales order headers and details: raw, frame, bridge, event, peripheral"
    );
}

/// A strict reader of the Mermaid flowchart subset `lineage` emits: every
/// line must be one of the known statement forms. Returns node ids and edges.
fn parse_mermaid_flowchart(text: &str) -> (BTreeSet<String>, Vec<(String, String)>) {
    let id = regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap();
    let node =
        regex::Regex::new(r#"^([A-Za-z_][A-Za-z0-9_]*)\["[^"]*"\](:::(bronze|silver|gold))?$"#)
            .unwrap();
    let subgraph = regex::Regex::new(r#"^subgraph ([A-Za-z_][A-Za-z0-9_]*) \["[^"]*"\]$"#).unwrap();
    let edge =
        regex::Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*) --> ([A-Za-z_][A-Za-z0-9_]*)$").unwrap();
    let class_def = regex::Regex::new(
        r"^classDef (bronze|silver|gold) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6},color:#[0-9a-f]{6}$",
    )
    .unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    let (mut nodes, mut edges, mut depth) = (BTreeSet::new(), Vec::new(), 0);
    for l in lines {
        let l = l.trim();
        if let Some(c) = node.captures(l) {
            assert!(
                nodes.insert(c[1].to_string()),
                "node {} declared twice",
                &c[1]
            );
        } else if let Some(c) = edge.captures(l) {
            edges.push((c[1].to_string(), c[2].to_string()));
        } else if let Some(c) = subgraph.captures(l) {
            assert!(id.is_match(&c[1]));
            depth += 1;
        } else if l == "end" {
            depth -= 1;
            assert!(depth >= 0, "unbalanced end");
        } else {
            assert!(
                class_def.is_match(l),
                "not a Mermaid flowchart statement: {l}"
            );
        }
    }
    assert_eq!(depth, 0, "unclosed subgraph");
    (nodes, edges)
}

async fn the_run_lock_keeps_runs_apart_and_a_stale_lock_is_taken_over(wh: Warehouse) {
    let a = RunLock::acquire(&wh, "elt", Duration::from_millis(1500))
        .await
        .unwrap();
    let err = RunLock::acquire(&wh, "elt", Duration::from_secs(60))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("locked by `elt`"), "{err}");
    // A held lock is renewed in the background: still held after its ttl.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        RunLock::acquire(&wh, "elt", Duration::from_secs(60))
            .await
            .is_err()
    );
    a.check().unwrap();
    // A killed holder stops renewing; after the ttl the next run takes over.
    drop(a);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let b = RunLock::acquire(&wh, "elt", Duration::from_secs(60))
        .await
        .unwrap();
    b.release().await.unwrap();
    // Released: free at once.
    let c = RunLock::acquire(&wh, "init", Duration::from_secs(60))
        .await
        .unwrap();
    c.release().await.unwrap();
    // Two runs racing: exactly one wins.
    let (x, y) = tokio::join!(
        RunLock::acquire(&wh, "elt", Duration::from_secs(60)),
        RunLock::acquire(&wh, "elt", Duration::from_secs(60))
    );
    assert_eq!(x.is_ok() as u8 + y.is_ok() as u8, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elt_on_an_empty_warehouse_asks_for_init() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let err = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lakehouse init"), "{err}");
}

on_every_backend! {
    run_lock => super::the_run_lock_keeps_runs_apart_and_a_stale_lock_is_taken_over,
    elt_continues_from_the_warehouse_state => super::elt_continues_where_the_warehouse_left_off,
}

/// A fresh process (a new `Warehouse` handle) pointed at an existing
/// warehouse continues where it was: next day, same scale and seed.
async fn elt_continues_where_the_warehouse_left_off(wh: Warehouse) {
    let project = Project::adventure_works().unwrap();
    let opts = PipelineOptions {
        source: SourceSpec::embedded(Some(3), Some(0.005), Some(5)),
        ..PipelineOptions::default()
    };
    init(&wh, &project, &opts).await.unwrap();
    let reopened = Warehouse::with_store(wh.url().clone(), wh.store().clone());
    let r = elt(&reopened, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(r.day, Some(4));
    assert!(r.extract.landed() > 0);
    let dag = Dag::build(&project).unwrap();
    assert!(
        plan(&reopened, &dag, false)
            .await
            .unwrap()
            .iter()
            .all(|p| p.status == Status::UpToDate)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_out_of_memory_beside_others_is_built_again_alone() {
    let project = Project::adventure_works().unwrap();
    let frame = "dab.frame__adventure_works__addresses";
    // Beside other builds: built again alone, and the run succeeds.
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let mut opts = options(None);
    opts.run.out_of_memory_once_at = Some(frame.to_string());
    opts.run.concurrency = 4;
    let r = init(&wh, &project, &opts).await.unwrap();
    assert_eq!(r.models.len(), 58 * 4 + 2, "every model built");
    assert!(r.models.iter().any(|m| m.model == frame && m.rows > 0));
    // Alone from the start (one model at a time): no retry, the run fails
    // naming the model, and its readers are not built.
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    opts.run.concurrency = 1;
    let err = init(&wh, &project, &opts).await.unwrap_err();
    assert_eq!(err.kind(), lakehouse::ErrorKind::OutOfMemory, "{err}");
    assert!(err.to_string().contains(frame), "{err}");
}

/// Upkeep as aggressive as it gets: history kept by count only, orphans
/// taken at once, every table with two small files compacted.
fn aggressive_upkeep() -> UpkeepPolicy {
    UpkeepPolicy {
        retain: Duration::ZERO,
        keep_last: 2,
        orphan_age: Duration::ZERO,
        min_files: 2,
        ..UpkeepPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upkeep_between_elt_days_changes_nothing_the_next_day_reads() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    init(&wh, &project, &options(None)).await.unwrap();
    let dag = Dag::build(&project).unwrap();
    let with_upkeep = PipelineOptions {
        upkeep: Some(aggressive_upkeep()),
        ..PipelineOptions::default()
    };
    let (mut compacted, mut expired) = (0, 0);
    for day in 1..=3 {
        let r = elt(&wh, &project, &with_upkeep).await.unwrap();
        assert_eq!(r.day, Some(day));
        let full = built_in_full(&r);
        assert!(
            full.is_empty(),
            "day {day}: compactions force no full build: {full:?}"
        );
        let u = r.upkeep.expect("upkeep ran").expect("upkeep succeeded");
        assert_eq!(
            u.tables.len(),
            58 * 5 + 2 + 1,
            "every table, and the run log"
        );
        compacted += u.tables.iter().filter(|t| t.compaction.is_some()).count();
        expired += u.tables.iter().map(|t| t.expired_snapshots).sum::<usize>();
        // A compaction is not new data: nothing is stale after upkeep.
        let stale: Vec<String> = plan(&wh, &dag, false)
            .await
            .unwrap()
            .iter()
            .filter(|p| p.status != Status::UpToDate)
            .map(|p| format!("{} ({})", dag.nodes[p.node].name, p.reason))
            .collect();
        assert!(stale.is_empty(), "day {day}: {stale:?}");
    }
    assert!(
        compacted > 0 && expired > 0,
        "{compacted} compacted, {expired} expired"
    );
    let incremental = common::model_tables(&wh).await;
    let full = full_rebuild(&wh, &project).await;
    for (t, rows) in &incremental {
        assert!(
            rows == &full[t],
            "{t}: incremental differs from full after upkeep"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_respects_the_run_lock_and_keeps_a_killed_runs_commits() {
    let project = Project::adventure_works().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    init(&wh, &project, &options(None)).await.unwrap();
    let maintain_now = MaintainOptions {
        policy: aggressive_upkeep(),
        ..MaintainOptions::default()
    };
    // A run in progress: maintain waits for it (fails naming it).
    let held = RunLock::acquire(&wh, "elt", Duration::from_secs(60))
        .await
        .unwrap();
    let err = maintain(&wh, &maintain_now, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("locked by `elt`"), "{err}");
    held.release().await.unwrap();

    // A run killed part-way (its future dropped: nothing of it runs on),
    // whose lock expires.
    let killed = PipelineOptions {
        lock_ttl: Duration::from_millis(600),
        ..PipelineOptions::default()
    };
    let run = elt(&wh, &project, &killed);
    if tokio::time::timeout(Duration::from_millis(1500), run)
        .await
        .is_ok()
    {
        eprintln!(
            "the elt finished before it could be killed; maintain still must keep its commits"
        );
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = maintain(&wh, &maintain_now, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(r.tables.iter().any(|t| t.did_anything()));
    // Every table reads whole (no file of a live snapshot went), the next
    // run finishes the killed day, and it all equals a full build.
    let after_maintain = common::model_tables(&wh).await;
    assert_eq!(after_maintain.len(), 58 * 4 + 2);
    let r = elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();
    assert_eq!(r.day, Some(1), "the killed day is run again");
    let incremental = common::model_tables(&wh).await;
    let full = full_rebuild(&wh, &project).await;
    for (t, rows) in &incremental {
        assert!(rows == &full[t], "{t}: differs from a full build");
    }
}
