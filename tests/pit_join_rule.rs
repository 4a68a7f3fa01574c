//! The PIT join rule fires for the supported SQL shapes (the physical plan
//! contains `PitJoinExec`) and leaves every other join alone.

mod pit;

use datafusion::prelude::SessionContext;
use pit::{contexts, physical_plan, register};

const FAR: i64 = 253_402_214_400;

async fn ctx() -> SessionContext {
    let (ctx, _) = contexts(2, 64);
    let rows = vec![
        (Some(1), 1, Some(0), Some(10), Some(1)),
        (Some(1), 2, Some(10), Some(FAR), Some(2)),
        (None, 3, Some(0), Some(5), None),
    ];
    register(&ctx, "l", &rows, 2, 1);
    register(&ctx, "r", &rows, 2, 1);
    ctx.sql(
        "CREATE TABLE ts_l(k INT, ts DATE) AS VALUES \
         (1, DATE '2024-01-01')",
    )
    .await
    .expect("ddl")
    .collect()
    .await
    .expect("ddl");
    ctx.sql(
        "CREATE TABLE ts_r(k INT, vf DATE, vt DATE, s VARCHAR) AS VALUES \
         (1, DATE '2023-01-01', DATE '9999-12-31', 'a')",
    )
    .await
    .expect("ddl")
    .collect()
    .await
    .expect("ddl");
    ctx
}

async fn fires(sql: &str) -> String {
    let plan = physical_plan(&ctx().await, sql).await;
    assert!(
        plan.contains("PitJoinExec"),
        "expected PitJoinExec for {sql}:\n{plan}"
    );
    assert!(
        !plan.contains("HashJoinExec"),
        "unexpected hash join for {sql}:\n{plan}"
    );
    plan
}

async fn does_not_fire(sql: &str) {
    let plan = physical_plan(&ctx().await, sql).await;
    assert!(
        !plan.contains("PitJoinExec"),
        "unexpected PitJoinExec for {sql}:\n{plan}"
    );
}

#[tokio::test]
async fn fires_for_interval_overlap_in_both_orders_and_strictness() {
    for on in [
        "l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
        "r.k = l.k AND r.vt > l.vf AND r.vf < l.vt",
        "l.k = r.k AND l.vf <= r.vt AND l.vt >= r.vf",
        "l.vt > r.vf AND l.k = r.k AND r.vt > l.vf",
    ] {
        for join in ["JOIN", "LEFT JOIN", "INNER JOIN", "LEFT OUTER JOIN"] {
            let plan = fires(&format!("SELECT l.id, r.id FROM l {join} r ON {on}")).await;
            let expected = if join.starts_with("LEFT") {
                "join_type=Left"
            } else {
                "join_type=Inner"
            };
            assert!(plan.contains(expected), "{plan}");
        }
    }
}

#[tokio::test]
async fn strictness_is_recorded() {
    let plan = fires("SELECT * FROM l JOIN r ON l.k = r.k AND l.vf <= r.vt AND l.vt > r.vf").await;
    assert!(
        plan.contains("range=Overlap(right.vf@2 < left.vt@3 AND left.vf@2 <= right.vt@3)"),
        "{plan}"
    );
}

#[tokio::test]
async fn fires_for_point_forms_and_between() {
    for on in [
        "l.k = r.k AND l.vf >= r.vf AND l.vf < r.vt",
        "l.k = r.k AND r.vf <= l.vf AND r.vt > l.vf",
        "l.k = r.k AND l.vf BETWEEN r.vf AND r.vt",
        "l.k = r.k AND r.vf BETWEEN l.vf AND l.vt",
    ] {
        let plan = fires(&format!("SELECT l.id, r.id FROM l LEFT JOIN r ON {on}")).await;
        assert!(plan.contains("range=Point"), "{on}: {plan}");
    }
    let plan = fires("SELECT * FROM l JOIN r ON l.k = r.k AND l.vf BETWEEN r.vf AND r.vt").await;
    assert!(
        plan.contains("right.vf@2 <= left.vf@2 AND left.vf@2 <= right.vt@3"),
        "{plan}"
    );
}

#[tokio::test]
async fn fires_with_several_keys_and_keeps_residual_filters() {
    let plan =
        fires("SELECT * FROM l JOIN r ON l.k = r.k AND l.x = r.x AND l.vf < r.vt AND l.vt > r.vf")
            .await;
    assert!(plan.contains("on=[(k@0, k@0), (x@4, x@4)]"), "{plan}");
    let plan = fires(
        "SELECT * FROM l LEFT JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf AND l.x <> r.x",
    )
    .await;
    assert!(plan.contains("filter="), "{plan}");
    // Three range comparisons: two form the range, the third is residual.
    let plan = fires(
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf AND l.vf < r.vf",
    )
    .await;
    assert!(plan.contains("filter="), "{plan}");
}

#[tokio::test]
async fn fires_for_where_clause_joins_ctes_and_aggregates() {
    fires("SELECT l.id, r.id FROM l, r WHERE l.k = r.k AND l.vf < r.vt AND l.vt > r.vf").await;
    fires(
        "WITH lx AS (SELECT * FROM l WHERE x > 0) \
         SELECT lx.id, r.id FROM lx JOIN r ON lx.k = r.k AND lx.vf < r.vt AND lx.vt > r.vf",
    )
    .await;
    fires(
        "SELECT count(*), sum(r.id) FROM l LEFT JOIN r \
         ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
    )
    .await;
}

#[tokio::test]
async fn fires_for_date_bounds_and_coerced_keys() {
    let plan = fires(
        "SELECT * FROM ts_l LEFT JOIN ts_r ON ts_l.k = ts_r.k \
         AND ts_l.ts >= ts_r.vf AND ts_l.ts < ts_r.vt",
    )
    .await;
    assert!(plan.contains("range=Point"), "{plan}");
    // Int32 key against Int64 key: type coercion casts, the rule still fires.
    fires("SELECT * FROM ts_l JOIN l ON ts_l.k = l.k AND ts_l.k < l.vt AND l.vf <= ts_l.k").await;
}

#[tokio::test]
async fn does_not_fire_for_other_shapes() {
    for sql in [
        // no equality key
        "SELECT * FROM l JOIN r ON l.vf < r.vt AND l.vt > r.vf",
        // only one range comparison
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf < r.vt",
        // two comparisons in the same direction
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt < r.vf",
        // disjunction
        "SELECT * FROM l JOIN r ON l.k = r.k AND (l.vf < r.vt OR l.vt > r.vf)",
        // an operand mixing both sides
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf + r.x < r.vt AND l.vt > r.vf",
        // NOT BETWEEN
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf NOT BETWEEN r.vf AND r.vt",
        // unsupported join types
        "SELECT * FROM l RIGHT JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
        "SELECT * FROM l FULL JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
        // plain equi-join
        "SELECT * FROM l JOIN r ON l.k = r.k",
        // unsupported bound type (strings)
        "SELECT * FROM ts_r a JOIN ts_r b ON a.k = b.k AND a.s < b.s AND b.s < a.s",
    ] {
        does_not_fire(sql).await;
    }
}

#[tokio::test]
async fn builtin_context_never_uses_the_operator() {
    let (_, builtin) = contexts(2, 64);
    let rows = vec![(Some(1), 1, Some(0), Some(10), None)];
    register(&builtin, "l", &rows, 1, 1);
    register(&builtin, "r", &rows, 1, 1);
    let plan = physical_plan(
        &builtin,
        "SELECT * FROM l JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
    )
    .await;
    assert!(plan.contains("HashJoinExec"), "{plan}");
}

#[tokio::test]
async fn fires_for_plans_built_with_the_logical_plan_builder() {
    use datafusion::common::JoinType;
    use datafusion::logical_expr::{LogicalPlanBuilder, col};
    use datafusion::prelude::DataFrame;

    let ctx = ctx().await;
    let l = ctx.table("l").await.expect("l").into_unoptimized_plan();
    let r = ctx.table("r").await.expect("r").into_unoptimized_plan();
    let plan = LogicalPlanBuilder::from(l)
        .join_on(
            r,
            JoinType::Left,
            [
                col("l.k").eq(col("r.k")),
                col("l.vf").lt(col("r.vt")),
                col("l.vt").gt(col("r.vf")),
            ],
        )
        .expect("join")
        .build()
        .expect("plan");
    let df = DataFrame::new(ctx.state(), plan);
    let optimized = df.clone().into_optimized_plan().expect("optimize");
    let text = optimized.display_indent().to_string();
    assert!(text.contains("PitJoin: type=Left"), "{text}");
    let physical = df.create_physical_plan().await.expect("physical");
    let text = datafusion::physical_plan::displayable(physical.as_ref())
        .indent(true)
        .to_string();
    assert!(text.contains("PitJoinExec"), "{text}");
}

/// The physical plan around the operator depends on the strategy: `hash`
/// needs neither sorts nor a hash repartition of the left side (the right
/// side is coalesced into the one shared table), `partitioned_hash` hash-
/// partitions both sides without sorting, `sort` also sorts both by key.
#[tokio::test]
async fn each_strategy_plans_its_own_input_contract() {
    use lakehouse::join::PitJoinStrategy;
    use lakehouse::query::run_sql;

    let sql = "SELECT l.id, r.id FROM l LEFT JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf";
    let rows = vec![
        (Some(1), 1, Some(0), Some(10), Some(1)),
        (Some(1), 2, Some(10), Some(FAR), Some(2)),
        (Some(2), 3, Some(0), Some(5), None),
        (Some(3), 4, Some(0), Some(5), None),
    ];
    for strategy in PitJoinStrategy::ALL {
        let (ctx, _) = contexts(2, 64);
        run_sql(
            &ctx,
            &format!("SET lakehouse.pit_join.strategy = '{strategy}'"),
        )
        .await
        .expect("set strategy");
        register(&ctx, "l", &rows, 1, 2);
        register(&ctx, "r", &rows, 1, 2);
        let plan = physical_plan(&ctx, sql).await;
        assert!(
            plan.contains(&format!("PitJoinExec: strategy={strategy}, join_type=Left")),
            "{plan}"
        );
        let sorts = plan.matches("SortExec").count();
        let hash_repartitions = plan.matches("RepartitionExec: partitioning=Hash").count();
        match strategy {
            PitJoinStrategy::Hash => {
                assert_eq!((sorts, hash_repartitions), (0, 0), "{plan}");
                assert!(plan.contains("CoalescePartitionsExec"), "{plan}");
            }
            PitJoinStrategy::PartitionedHash => {
                assert_eq!((sorts, hash_repartitions), (0, 2), "{plan}");
            }
            PitJoinStrategy::Sort => {
                assert_eq!((sorts, hash_repartitions), (2, 2), "{plan}");
            }
            PitJoinStrategy::Auto => panic!("ALL lists executable strategies only"),
        }
    }
    // The default is `auto`: `partitioned_hash` for this right side, whose statistics
    // (exact, in memory) show it is tiny...
    let (ctx, _) = contexts(2, 64);
    register(&ctx, "l", &rows, 1, 2);
    register(&ctx, "r", &rows, 1, 2);
    let plan = physical_plan(&ctx, sql).await;
    assert!(
        plan.contains("PitJoinExec: strategy=partitioned_hash,"),
        "{plan}"
    );
    // ...but `sort` when the memory pool is too small to hold it.
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(1024, 1.0)
        .build_arc()
        .expect("runtime");
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_runtime_env(runtime)
        .build();
    let small = datafusion::prelude::SessionContext::new_with_state(state);
    let plan = physical_plan(&small, sql).await;
    assert!(plan.contains("PitJoinExec: strategy=sort,"), "{plan}");
    let err = run_sql(&ctx, "SET lakehouse.pit_join.strategy = 'merge'")
        .await
        .expect_err("unknown strategy");
    assert!(
        format!("{err:?}").contains("unknown PIT join strategy 'merge'"),
        "{err:?}"
    );
}
