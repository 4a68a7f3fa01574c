//! The PIT join's distribution contract, as a distributed planner sees it:
//! each strategy states what it needs of its inputs
//! (`required_input_distribution`, `required_input_ordering`), DataFusion's
//! own enforcement rules place the exchanges and sorts from that alone, and
//! the result has the rows of DataFusion's built-in join. The enforced plan
//! also travels through the plan codec and gives the same rows.

mod pit;

use std::sync::Arc;

use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{Partitioning, PhysicalExprRef};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::enforce_distribution::EnforceDistribution;
use datafusion::physical_optimizer::enforce_sorting::EnforceSorting;
use datafusion::physical_plan::{
    Distribution, ExecutionPlan, ExecutionPlanProperties, collect, displayable,
};
use lakehouse::codec::{PlanCodec, physical_from_bytes, physical_to_bytes};
use lakehouse::join::{PhysicalRange, PitJoinExec, PitJoinStrategy, PitJoinType, RangeKind};
use pit::{Row, contexts, register, render};

/// Deterministic rows: keys 0..40 (and some NULL keys and bounds), several
/// versions per key with gaps and overlaps.
fn rows(seed: u64, n: i64) -> Vec<Row> {
    let mut x = seed;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m) as i64
    };
    (0..n)
        .map(|id| {
            let k = (next(9) != 0).then(|| next(40));
            let from = next(1_000);
            let to = from + 1 + next(200);
            let (from, to) = if next(25) == 0 {
                (None, Some(to))
            } else {
                (Some(from), Some(to))
            };
            (k, id, from, to, Some(next(5)))
        })
        .collect()
}

fn col(name: &str, index: usize) -> PhysicalExprRef {
    Arc::new(Column::new(name, index))
}

/// Names of the operators from `plan` down its first child.
fn spine(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut out = vec![plan.name().to_string()];
    let mut at = Arc::clone(plan);
    while let Some(c) = at.children().first().map(|c| Arc::clone(c)) {
        out.push(c.name().to_string());
        at = c;
    }
    out
}

fn hash_keys(plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<String>> {
    match plan.output_partitioning() {
        Partitioning::Hash(exprs, _) => Some(exprs.iter().map(|e| e.to_string()).collect()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_gets_its_exchanges_from_datafusion_and_the_same_rows() {
    // Inputs of 3 partitions in no particular distribution; 4 target
    // partitions, so every exchange is visible.
    let (ctx, plain) = contexts(4, 64);
    let (left, right) = (rows(7, 900), rows(11, 1_500));
    for c in [&ctx, &plain] {
        register(c, "l", &left, 50, 3);
        register(c, "r", &right, 70, 3);
    }
    let (_, expected) = pit::run(
        &plain,
        "SELECT * FROM l LEFT JOIN r ON l.k = r.k AND r.vf < l.vt AND l.vf < r.vt",
    )
    .await;
    assert!(expected.len() > 900, "matches: {}", expected.len());
    let config = ctx.state().config_options().clone();
    let dir = tempfile::tempdir().unwrap();
    let codec =
        PlanCodec::new(lakehouse::storage::Warehouse::open(dir.path().to_str().unwrap()).unwrap());
    for strategy in PitJoinStrategy::ALL {
        // The scans alone, before any optimizer rule.
        let state = ctx.state();
        let l = ctx.table_provider("l").await.unwrap();
        let l = l.scan(&state, None, &[], None).await.unwrap();
        let r = ctx.table_provider("r").await.unwrap();
        let r = r.scan(&state, None, &[], None).await.unwrap();
        assert_eq!(l.output_partitioning().partition_count(), 3);
        let range = PhysicalRange {
            kind: RangeKind::Overlap,
            left_start: col("vf", 2),
            left_end: col("vt", 3),
            right_start: col("vf", 2),
            right_end: col("vt", 3),
            start_inclusive: false,
            end_inclusive: false,
        };
        let join = PitJoinExec::try_new(
            l,
            r,
            vec![(col("k", 0), col("k", 0))],
            range,
            None,
            PitJoinType::Left,
            None,
        )
        .unwrap()
        .with_strategy(strategy);

        // The contract, stated by the operator.
        let required = join.required_input_distribution();
        let ordering = join.required_input_ordering();
        match strategy {
            PitJoinStrategy::Hash => {
                assert!(matches!(required[0], Distribution::UnspecifiedDistribution));
                assert!(matches!(required[1], Distribution::SinglePartition));
                assert!(ordering.iter().all(Option::is_none));
            }
            PitJoinStrategy::PartitionedHash | PitJoinStrategy::Sort => {
                for side in &required {
                    let Distribution::HashPartitioned(keys) = side else {
                        panic!("{strategy}: {side:?}");
                    };
                    assert_eq!(keys.len(), 1);
                    assert_eq!(keys[0].to_string(), "k@0");
                }
                assert_eq!(
                    ordering.iter().all(Option::is_some),
                    strategy == PitJoinStrategy::Sort,
                    "{strategy}: ordering {ordering:?}"
                );
            }
            PitJoinStrategy::Auto => unreachable!("not executable"),
        }

        // DataFusion's rules place what the contract asks for.
        let plan: Arc<dyn ExecutionPlan> = Arc::new(join);
        let plan = EnforceDistribution::new().optimize(plan, &config).unwrap();
        let plan = EnforceSorting::new().optimize(plan, &config).unwrap();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let kids = plan.children();
        let (l, r) = (kids[0], kids[1]);
        match strategy {
            PitJoinStrategy::Hash => {
                assert!(!spine(l).iter().any(|n| n == "SortExec"), "{shown}");
                assert_eq!(hash_keys(l), None, "{shown}");
                assert_eq!(r.output_partitioning().partition_count(), 1, "{shown}");
                assert_eq!(r.name(), "CoalescePartitionsExec", "{shown}");
            }
            PitJoinStrategy::PartitionedHash => {
                for side in [l, r] {
                    assert_eq!(side.name(), "RepartitionExec", "{shown}");
                    assert_eq!(hash_keys(side), Some(vec!["k@0".to_string()]), "{shown}");
                }
            }
            PitJoinStrategy::Sort => {
                for side in [l, r] {
                    assert_eq!(side.name(), "SortExec", "{shown}");
                    assert_eq!(hash_keys(side), Some(vec!["k@0".to_string()]), "{shown}");
                    assert!(side.output_ordering().is_some(), "{shown}");
                }
            }
            PitJoinStrategy::Auto => unreachable!(),
        }
        assert!(shown.contains(&format!("strategy={strategy}")), "{shown}");
        let got = render(&collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap());
        assert_eq!(got, expected, "{strategy}");

        // The enforced plan, exchanges included, travels and runs alike.
        let bytes = physical_to_bytes(Arc::clone(&plan), &codec).unwrap();
        let decoded = physical_from_bytes(&bytes, &ctx, &codec).unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            shown
        );
        let got = render(&collect(decoded, ctx.task_ctx()).await.unwrap());
        assert_eq!(got, expected, "{strategy} after the round trip");
    }
}
