//! SQL-level tests: multi-statement scripts with Parquet DDL, exact results
//! for the edge cases (NULLs, empty and touching intervals, open ends,
//! timestamps), intersection columns, EXPLAIN [ANALYZE] and output formats.

mod pit;

use datafusion::logical_expr::col;
use datafusion::prelude::{DataFrame, SessionConfig};
use lakehouse::bench::pit_join::{
    BENCH_SQL, PitBenchConfig, generate, pit_context, run_comparison,
};
use lakehouse::join::{PitJoinOptions, PitJoinStrategy, PitJoinType, RangeSpec, pit_join_plan};
use lakehouse::query::{
    OutputFormat, explain_sql, format_batches, run_sql, session_context,
    session_context_with_config,
};
use pit::render;

const SETUP: &str = "
CREATE TABLE l(k BIGINT, id BIGINT, vf BIGINT, vt BIGINT) AS VALUES
  (1, 1, 0, 5),      -- overlaps r10 only: touches r11 at 5
  (1, 2, 5, 5),      -- empty interval at 5: no strict overlap
  (1, 3, 3, 12),     -- overlaps r10, r11, r12
  (2, 4, 0, 1),      -- key without right rows
  (NULL, 5, 0, 100), -- NULL key
  (1, 6, NULL, 4),   -- NULL bound
  (1, 7, 20, 9999999);  -- overlaps the open-ended version only
CREATE TABLE r(k BIGINT, id BIGINT, vf BIGINT, vt BIGINT) AS VALUES
  (1, 10, 0, 5),
  (1, 11, 5, 10),
  (1, 12, 10, 253402214400),
  (NULL, 13, 0, 100),
  (3, 14, 0, 100);
";

#[tokio::test]
async fn interval_overlap_edge_cases_left_and_inner() {
    let ctx = session_context();
    let out = run_sql(
        &ctx,
        &format!(
            "{SETUP}
             SELECT l.id, r.id FROM l LEFT JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf;
             SELECT l.id, r.id FROM l JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf;"
        ),
    )
    .await
    .expect("run");
    assert_eq!(out.len(), 4);
    assert!(out[0].0.starts_with("CREATE TABLE l"));
    assert_eq!(
        render(&out[2].1),
        [
            "1|10", "2|NULL", "3|10", "3|11", "3|12", "4|NULL", "5|NULL", "6|NULL", "7|12"
        ]
    );
    assert_eq!(render(&out[3].1), ["1|10", "3|10", "3|11", "3|12", "7|12"]);
}

#[tokio::test]
async fn point_and_between_forms_with_equal_boundaries() {
    let ctx = session_context();
    let out = run_sql(
        &ctx,
        &format!(
            "{SETUP}
             SELECT l.id, r.id FROM l LEFT JOIN r ON l.k = r.k AND l.vf >= r.vf AND l.vf < r.vt;
             SELECT l.id, r.id FROM l JOIN r ON l.k = r.k AND l.vf BETWEEN r.vf AND r.vt;"
        ),
    )
    .await
    .expect("run");
    // ts = vf: 0 -> r10, 5 -> r11 (half-open), 3 -> r10, 20 -> r12.
    assert_eq!(
        render(&out[2].1),
        ["1|10", "2|11", "3|10", "4|NULL", "5|NULL", "6|NULL", "7|12"]
    );
    // BETWEEN is inclusive: 5 is in [0,5] and [5,10].
    assert_eq!(render(&out[3].1), ["1|10", "2|10", "2|11", "3|10", "7|12"]);
}

#[tokio::test]
async fn residual_filter_in_left_join_keeps_unmatched_rows() {
    let ctx = session_context();
    let out = run_sql(
        &ctx,
        &format!(
            "{SETUP}
             SELECT l.id, r.id FROM l LEFT JOIN r
               ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf AND r.id <> 10 AND l.id + r.id <> 14;"
        ),
    )
    .await
    .expect("run");
    // l1 only matched r10 (filtered) -> NULL row; l3 keeps r12 (r11 filtered).
    assert_eq!(
        render(&out[2].1),
        [
            "1|NULL", "2|NULL", "3|12", "4|NULL", "5|NULL", "6|NULL", "7|12"
        ]
    );
}

#[tokio::test]
async fn timestamps_with_open_end_and_multiple_keys() {
    let ctx = session_context();
    let out = run_sql(
        &ctx,
        "CREATE TABLE ev(a INT, b VARCHAR, ts TIMESTAMP) AS VALUES
           (1, 'x', TIMESTAMP '2024-03-01 12:00:00'),
           (1, 'y', TIMESTAMP '2024-03-01 12:00:00'),
           (1, 'x', TIMESTAMP '2020-01-01 00:00:00');
         CREATE TABLE dim AS SELECT a, b, arrow_cast(vf, 'Timestamp(Microsecond, None)') AS vf,
             arrow_cast(vt, 'Timestamp(Microsecond, None)') AS vt, v FROM (VALUES
           (1, 'x', '2023-01-01T00:00:00', '2024-03-01T12:00:00', 'old'),
           (1, 'x', '2024-03-01T12:00:00', '9999-12-31T00:00:00', 'current'),
           (1, 'y', '2021-01-01T00:00:00', '9999-12-31T00:00:00', 'y-current')
         ) AS t(a, b, vf, vt, v);
         SELECT ev.b, ev.ts, dim.v FROM ev LEFT JOIN dim
           ON ev.a = dim.a AND ev.b = dim.b
          AND arrow_cast(ev.ts, 'Timestamp(Microsecond, None)') >= dim.vf
          AND arrow_cast(ev.ts, 'Timestamp(Microsecond, None)') < dim.vt;",
    )
    .await
    .expect("run");
    assert_eq!(
        render(&out[2].1),
        [
            "x|2020-01-01T00:00:00|NULL",
            "x|2024-03-01T12:00:00|current",
            "y|2024-03-01T12:00:00|y-current"
        ]
    );
    let plan = explain_sql(
        &ctx,
        "SELECT ev.b, dim.v FROM ev LEFT JOIN dim ON ev.a = dim.a AND ev.b = dim.b \
         AND arrow_cast(ev.ts, 'Timestamp(Microsecond, None)') >= dim.vf \
         AND arrow_cast(ev.ts, 'Timestamp(Microsecond, None)') < dim.vt",
        false,
    )
    .await
    .expect("explain");
    assert!(plan.contains("PitJoinExec"), "{plan}");
}

#[tokio::test]
async fn parquet_scripts_with_external_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = dir.path().join("l.parquet");
    let r = dir.path().join("r.parquet");
    let ctx = session_context_with_config(SessionConfig::new().with_target_partitions(3));
    let script = format!(
        "COPY (SELECT * FROM (VALUES (1, 1, 0, 5), (1, 2, 3, 12), (2, 3, 0, 1)) AS t(k, id, vf, vt))
           TO '{l}' STORED AS PARQUET;
         COPY (SELECT * FROM (VALUES (1, 10, 0, 5), (1, 11, 5, 10), (1, 12, 10, 99)) AS t(k, id, vf, vt))
           TO '{r}' STORED AS PARQUET;
         CREATE EXTERNAL TABLE lp STORED AS PARQUET LOCATION '{l}';
         CREATE EXTERNAL TABLE rp STORED AS PARQUET LOCATION '{r}';
         SELECT 'a;b' AS s, count(*) AS n, sum(rp.id) AS total FROM lp LEFT JOIN rp
           ON lp.k = rp.k AND lp.vf < rp.vt AND lp.vt > rp.vf;",
        l = l.display(),
        r = r.display()
    );
    let out = run_sql(&ctx, &script).await.expect("script");
    assert_eq!(
        out.len(),
        5,
        "the ';' inside the string literal must not split"
    );
    assert!(out[2].0.starts_with("CREATE EXTERNAL TABLE lp"));
    assert_eq!(render(&out[4].1), ["a;b|5|43"]);

    let plan = explain_sql(
        &ctx,
        "SELECT lp.id, rp.id FROM lp LEFT JOIN rp ON lp.k = rp.k AND lp.vf < rp.vt AND lp.vt > rp.vf",
        false,
    )
    .await
    .expect("explain");
    assert!(plan.contains("PitJoin: type=Left"), "{plan}");
    // The default, `auto`, takes `partitioned_hash`: the Parquet statistics
    // show a tiny right side. No sort.
    assert!(
        plan.contains("PitJoinExec: strategy=partitioned_hash"),
        "{plan}"
    );
    assert!(!plan.contains("SortExec"), "{plan}");
    let join = "SELECT lp.id, rp.id FROM lp LEFT JOIN rp \
                ON lp.k = rp.k AND lp.vf < rp.vt AND lp.vt > rp.vf";
    // `sort` sorts both sides and sweeps.
    run_sql(&ctx, "SET lakehouse.pit_join.strategy = 'sort'")
        .await
        .expect("set");
    let plan = explain_sql(&ctx, join, false).await.expect("explain");
    assert!(plan.contains("PitJoinExec: strategy=sort"), "{plan}");
    assert!(plan.contains("SortExec"), "{plan}");
    let analyzed = explain_sql(&ctx, join, true)
        .await
        .expect("explain analyze");
    for metric in [
        "output_rows=5",
        "left_input_rows=3",
        "right_input_rows=3",
        "candidate_pairs=4",
        "sweep_time=",
        "build_output_time=",
        "peak_mem_used=",
    ] {
        assert!(analyzed.contains(metric), "missing {metric} in\n{analyzed}");
    }

    // A hash strategy, chosen in SQL, needs no sort; each partition builds a
    // table of its right rows (3 in all).
    run_sql(&ctx, "SET lakehouse.pit_join.strategy = 'partitioned_hash'")
        .await
        .expect("set");
    let plan = explain_sql(&ctx, join, false).await.expect("explain");
    assert!(
        plan.contains("PitJoinExec: strategy=partitioned_hash"),
        "{plan}"
    );
    assert!(!plan.contains("SortExec"), "{plan}");
    let analyzed = explain_sql(&ctx, join, true)
        .await
        .expect("explain analyze");
    for metric in [
        "output_rows=5",
        "left_input_rows=3",
        "right_input_rows=3",
        "candidate_pairs=4",
        "build_time=",
        "probe_time=",
        "build_output_time=",
        "peak_mem_used=",
    ] {
        assert!(analyzed.contains(metric), "missing {metric} in\n{analyzed}");
    }
    let out = run_sql(&ctx, &format!("{join} ORDER BY 1, 2"))
        .await
        .expect("partitioned_hash strategy run");
    assert_eq!(
        render(&out[0].1),
        ["1|10", "2|10", "2|11", "2|12", "3|NULL"]
    );
}

#[tokio::test]
async fn intersection_columns_from_the_plan_api() {
    let ctx = session_context();
    run_sql(&ctx, SETUP).await.expect("setup");
    let left = ctx.table("l").await.expect("l").into_unoptimized_plan();
    let right = ctx.table("r").await.expect("r").into_unoptimized_plan();
    let plan = pit_join_plan(
        left,
        right,
        vec![(col("l.k"), col("r.k"))],
        RangeSpec::overlap(col("l.vf"), col("l.vt"), col("r.vf"), col("r.vt")),
        None,
        PitJoinType::Inner,
        Some(("valid_from".into(), "valid_to".into())),
    )
    .expect("plan");
    let df = DataFrame::new(ctx.state(), plan)
        .select(vec![
            col("l.id"),
            col("r.id"),
            col("valid_from"),
            col("valid_to"),
        ])
        .expect("select");
    let batches = df.collect().await.expect("collect");
    assert_eq!(
        render(&batches),
        [
            "1|10|0|5",
            "3|10|3|5",
            "3|11|5|10",
            "3|12|10|12",
            "7|12|20|9999999"
        ]
    );

    let bad = pit_join_plan(
        ctx.table("l").await.expect("l").into_unoptimized_plan(),
        ctx.table("r").await.expect("r").into_unoptimized_plan(),
        vec![],
        RangeSpec::overlap(col("l.vf"), col("l.vt"), col("r.vf"), col("r.vt")),
        None,
        PitJoinType::Inner,
        None,
    );
    assert!(bad.is_err(), "a PIT join without keys must be rejected");
}

#[tokio::test]
async fn bench_comparison_is_parallel_and_agrees_with_builtin() {
    let config = PitBenchConfig {
        left_rows: 20_000,
        keys: 10,
        versions: 200,
        hot_share: 0.3,
        seed: 7,
        threads: 3,
        batch_size: 1024,
        strategies: PitJoinStrategy::ALL.to_vec(),
        runs: 2,
    };
    let report = run_comparison(&config).await.expect("bench");
    assert_eq!(report.pit.len(), 3);
    assert!(!report.builtin.used_pit_join);
    for (strategy, run) in &report.pit {
        assert!(run.used_pit_join, "{strategy}");
        assert_eq!(run.count, report.builtin.count, "{strategy}");
        assert_eq!(run.sum, report.builtin.sum, "{strategy}");
    }
    assert!(
        report.builtin.count >= 20_000,
        "a left join keeps every left row"
    );
    assert!(report.render().contains("speedup"));
    // Two timed runs per plan (after a warm-up round), median reported.
    assert_eq!(report.builtin.times.len(), 2);
    assert!(report.pit.iter().all(|(_, r)| r.times.len() == 2));
    assert!(report.render().contains("(median of 2: "));

    // Every strategy runs on all 3 partitions: the left side keeps the
    // table's partitions (hash) or is hash-partitioned (the others).
    let data = generate(&config).expect("data");
    for strategy in PitJoinStrategy::ALL {
        let ctx = pit_context(&data, &config, strategy).expect("ctx");
        let plan = explain_sql(&ctx, BENCH_SQL, false).await.expect("explain");
        assert!(
            plan.contains(&format!("PitJoinExec: strategy={strategy}")),
            "{plan}"
        );
        let partitioned = plan.contains("RepartitionExec: partitioning=Hash");
        assert_eq!(
            partitioned,
            strategy != PitJoinStrategy::Hash,
            "{strategy}: {plan}"
        );
        assert!(plan.contains("partitions=3"), "{strategy}: {plan}");
    }
}

#[tokio::test]
async fn output_formats() {
    let ctx = session_context();
    let out = run_sql(
        &ctx,
        "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, NULL ORDER BY a",
    )
    .await
    .expect("run");
    let batches = &out[0].1;
    assert_eq!(
        format_batches(batches, OutputFormat::Csv).expect("csv"),
        "a,b\n1,x\n2,\n"
    );
    assert_eq!(
        format_batches(batches, OutputFormat::Json).expect("json"),
        r#"[{"a":1,"b":"x"},{"a":2}]"#
    );
    let table = format_batches(batches, OutputFormat::Table).expect("table");
    assert!(table.contains("| a | b |"), "{table}");
    assert_eq!(
        "JSON".parse::<OutputFormat>().expect("fmt"),
        OutputFormat::Json
    );
    assert!("xml".parse::<OutputFormat>().is_err());
    assert!(run_sql(&ctx, "   ").await.is_err());
}

#[tokio::test]
async fn sort_strategy_completes_under_a_small_memory_limit_by_spilling_sorts() {
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionContext;
    use lakehouse::bench::pit_join::{builtin_context, register, run_query};
    use lakehouse::query::session_state_builder;

    let config = PitBenchConfig {
        left_rows: 200_000,
        keys: 1_000,
        versions: 20,
        hot_share: 0.1,
        seed: 11,
        threads: 2,
        batch_size: 1024,
        strategies: vec![PitJoinStrategy::Sort],
        runs: 1,
    };
    let data = generate(&config).expect("data");
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(3 * 1024 * 1024, 1.0)
        .build_arc()
        .expect("runtime");
    let mut session_config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(1024)
        .with_option_extension(PitJoinOptions::with_strategy(PitJoinStrategy::Sort));
    session_config
        .options_mut()
        .execution
        .sort_spill_reservation_bytes = 128 * 1024;
    let state = session_state_builder()
        .with_config(session_config)
        .with_runtime_env(runtime)
        .build();
    let ctx = SessionContext::new_with_state(state);
    register(&ctx, &data, 2).expect("register");
    let limited = run_query(&ctx).await.expect("join under memory limit");
    assert!(limited.used_pit_join);
    let reference = run_query(&builtin_context(&data, &config).expect("ctx"))
        .await
        .expect("builtin");
    assert_eq!(
        (limited.count, limited.sum),
        (reference.count, reference.sum)
    );
    let analyzed = explain_sql(&ctx, BENCH_SQL, true).await.expect("analyze");
    assert!(
        analyzed
            .lines()
            .any(|l| l.contains("SortExec") && !l.contains("spill_count=0")),
        "expected the key sorts to spill:\n{analyzed}"
    );
}

/// The hash strategies hold the right side in memory: under a limit too
/// small for it the query fails with a resources error that names the sort
/// strategy, and does not fail (nor leak the reservation) when it fits.
#[tokio::test]
async fn hash_strategy_fails_clearly_when_the_right_side_does_not_fit() {
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionContext;
    use lakehouse::bench::pit_join::{register, run_query};
    use lakehouse::query::session_state_builder;

    let config = PitBenchConfig {
        left_rows: 20_000,
        keys: 2_000,
        versions: 50,
        threads: 2,
        batch_size: 1024,
        ..PitBenchConfig::default()
    };
    let data = generate(&config).expect("data");
    for strategy in [PitJoinStrategy::Hash, PitJoinStrategy::PartitionedHash] {
        let context = |limit: usize| {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_limit(limit, 1.0)
                .build_arc()
                .expect("runtime");
            let session_config = SessionConfig::new()
                .with_target_partitions(2)
                .with_batch_size(1024)
                .with_option_extension(PitJoinOptions::with_strategy(strategy));
            let ctx = SessionContext::new_with_state(
                session_state_builder()
                    .with_config(session_config)
                    .with_runtime_env(runtime)
                    .build(),
            );
            register(&ctx, &data, 2).expect("register");
            ctx
        };
        // 100,000 right rows of 4 Int64 columns need more than 3 MB.
        let err = run_query(&context(1024 * 1024))
            .await
            .expect_err("the right side cannot fit in 1 MB");
        let text = format!("{err:?}");
        assert!(text.contains("Resources exhausted"), "{strategy}: {text}");
        assert!(
            text.contains("lakehouse.pit_join.strategy = 'sort'"),
            "{strategy}: {text}"
        );
        let ok = run_query(&context(256 * 1024 * 1024))
            .await
            .expect("fits in 256 MB");
        assert!(ok.used_pit_join);
        assert!(ok.count >= 20_000);
    }
}
