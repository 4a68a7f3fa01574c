//! Property tests: on random inputs (NULL and hot keys, NULL bounds, empty,
//! touching, inverted and open-ended intervals, SCD2-like and arbitrary
//! right sides, tiny batches, several partitions) the PIT join returns
//! exactly the multiset of rows DataFusion's built-in plan returns, for
//! inner and left joins, both predicate shapes and every execution strategy
//! (each case runs with each strategy against one built-in result).

mod pit;

use datafusion::prelude::{SessionConfig, SessionContext};
use lakehouse::join::PitJoinStrategy;
use pit::{Row, pit_context, register, run};
use proptest::prelude::*;

const FAR: i64 = 253_402_214_400;

/// Cases per property: `default`, or `PROPTEST_CASES` if set (e.g. to run
/// many more on a quiet machine).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        1 => Just(None),
        4 => Just(Some(0)),
        5 => (1i64..6).prop_map(Some),
    ]
}

fn bound() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(None), 19 => (0i64..30).prop_map(Some)]
}

/// Random intervals: mostly short, some empty (length 0), some inverted,
/// some open-ended.
fn interval() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    (
        bound(),
        prop_oneof![
            3 => (0i64..6).prop_map(Some),
            1 => (-3i64..0).prop_map(Some),
            1 => Just(Some(FAR)),
            1 => Just(None),
        ],
    )
        .prop_map(|(from, len)| match (from, len) {
            (Some(f), Some(FAR)) => (Some(f), Some(FAR)),
            (Some(f), Some(l)) => (Some(f), Some(f + l)),
            (f, _) => (f, None),
        })
}

fn extra() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(None), 4 => (0i64..3).prop_map(Some)]
}

fn random_rows(max: usize, id_base: i64) -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((key(), interval(), extra()), 0..max).prop_map(move |v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, (f, t), x))| (k, id_base + i as i64, f, t, x))
            .collect()
    })
}

/// SCD2-like right side: per key contiguous versions, the last open-ended.
fn scd2_rows(id_base: i64) -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (key(), prop::collection::vec((0i64..5, extra()), 1..6)),
        0..6,
    )
    .prop_map(move |keys| {
        let mut rows = Vec::new();
        for (k, versions) in keys {
            let mut t = 0;
            let n = versions.len();
            for (i, (len, x)) in versions.into_iter().enumerate() {
                let from = t;
                t += len;
                let to = if i + 1 == n { FAR } else { t };
                rows.push((k, id_base + rows.len() as i64, Some(from), Some(to), x));
            }
        }
        rows
    })
}

fn right_rows() -> impl Strategy<Value = Vec<Row>> {
    prop_oneof![random_rows(25, 1000), scd2_rows(1000)]
}

const PREDICATES: &[&str] = &[
    // interval overlap, both orders and strictness variants
    "l.k = r.k AND l.vf < r.vt AND l.vt > r.vf",
    "r.k = l.k AND r.vt > l.vf AND r.vf < l.vt",
    "l.k = r.k AND l.vf <= r.vt AND r.vf <= l.vt",
    "l.k = r.k AND r.vf < l.vt AND l.vf <= r.vt",
    // point forms
    "l.k = r.k AND l.vf >= r.vf AND l.vf < r.vt",
    "l.k = r.k AND r.vt > l.vf AND r.vf <= l.vf",
    "l.k = r.k AND l.vf BETWEEN r.vf AND r.vt",
    "l.k = r.k AND r.vf BETWEEN l.vf AND l.vt",
    // residual filters and several keys
    "l.k = r.k AND l.vf < r.vt AND l.vt > r.vf AND l.x <> r.x",
    "l.k = r.k AND l.vf >= r.vf AND l.vf < r.vt AND (r.x > l.x OR l.x IS NULL)",
    "l.k = r.k AND l.x = r.x AND l.vf < r.vt AND l.vt > r.vf",
    "l.k = r.k AND l.vf < r.vt AND l.vt > r.vf AND l.x > 0",
];

#[derive(Debug, Clone)]
struct Case {
    left: Vec<Row>,
    right: Vec<Row>,
    predicate: usize,
    left_join: bool,
    partitions: usize,
    batch_size: usize,
    chunk: usize,
    /// Index into [`BOUND_TYPES`].
    bound_type: usize,
    /// Index into [`KEY_TYPES`].
    key_type: usize,
}

/// Key columns as the views expose them (`k` is NULL or in 0..6): the hash
/// strategies index one integer key directly when its values are dense,
/// hash its value when they are sparse, and use arrow's row format for
/// other types (and for several keys).
const KEY_TYPES: &[&str] = &[
    "k",
    "arrow_cast(k, 'Int32')",
    "arrow_cast(k, 'UInt8')",
    // Sparse: no dense index.
    "k * 1000000000000 - 3000000000000",
    "arrow_cast(k, 'Utf8')",
];

/// Bound types the columns are cast to (values are clamped to [0, 1e6] first
/// so every type can hold them; the open end then becomes 1e6).
const BOUND_TYPES: &[&str] = &[
    "Int64",
    "Int32",
    "UInt32",
    "Float64",
    "Timestamp(Second, None)",
    "Timestamp(Millisecond, Some(\"+01:00\"))",
    "Date32",
];

fn typed(col: &str, ty: &str) -> String {
    if ty == "Int64" {
        return col.to_string();
    }
    let clamped =
        format!("CASE WHEN {col} > 1000000 THEN 1000000 WHEN {col} < 0 THEN 0 ELSE {col} END");
    match ty {
        "Date32" => format!("arrow_cast(arrow_cast({clamped}, 'Int32'), 'Date32')"),
        _ => format!("arrow_cast({clamped}, '{ty}')"),
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        random_rows(25, 0),
        right_rows(),
        0..PREDICATES.len(),
        any::<bool>(),
        prop_oneof![Just(1usize), Just(3usize)],
        prop_oneof![
            Just(1usize),
            Just(2usize),
            Just(3usize),
            Just(7usize),
            Just(1024usize)
        ],
        1usize..6,
        0..BOUND_TYPES.len(),
        0..KEY_TYPES.len(),
    )
        .prop_map(
            |(
                left,
                right,
                predicate,
                left_join,
                partitions,
                batch_size,
                chunk,
                bound_type,
                key_type,
            )| Case {
                left,
                right,
                predicate,
                left_join,
                partitions,
                batch_size,
                chunk,
                bound_type,
                key_type,
            },
        )
}

/// One context with DataFusion's built-in plan and one with our operator per
/// strategy.
fn all_contexts(
    partitions: usize,
    batch_size: usize,
) -> (SessionContext, Vec<(PitJoinStrategy, SessionContext)>) {
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    let ours = PitJoinStrategy::ALL
        .iter()
        .map(|&s| (s, pit_context(s, config.clone())))
        .collect();
    (SessionContext::new_with_config(config), ours)
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (builtin, ours) = all_contexts(case.partitions, case.batch_size);
        let ctxs: Vec<&SessionContext> = std::iter::once(&builtin)
            .chain(ours.iter().map(|(_, c)| c))
            .collect();
        for ctx in &ctxs {
            register(ctx, "l", &case.left, case.chunk, case.partitions);
            register(ctx, "r", &case.right, case.chunk, case.partitions);
        }
        let ty = BOUND_TYPES[case.bound_type];
        for ctx in &ctxs {
            for (view, table) in [("lv", "l"), ("rv", "r")] {
                let ddl = format!(
                    "CREATE VIEW {view} AS SELECT {} AS k, id, {} AS vf, {} AS vt, x FROM {table}",
                    KEY_TYPES[case.key_type],
                    typed("vf", ty),
                    typed("vt", ty)
                );
                ctx.sql(&ddl).await.expect("create view");
            }
        }
        let join = if case.left_join { "LEFT JOIN" } else { "JOIN" };
        let sql = format!(
            "SELECT l.id, r.id FROM lv AS l {join} rv AS r ON {}",
            PREDICATES[case.predicate]
        );
        let (plan, theirs) = run(&builtin, &sql).await;
        prop_assert!(!plan.contains("PitJoinExec"));
        for (strategy, ctx) in &ours {
            let (plan, rows) = run(ctx, &sql).await;
            let expected = format!("PitJoinExec: strategy={strategy},");
            prop_assert!(
                plan.contains(&expected),
                "rule did not fire with strategy {} for {}:\n{}",
                strategy,
                sql,
                plan
            );
            prop_assert_eq!(&rows, &theirs, "strategy={} {}", strategy, sql);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(700)))]

    #[test]
    fn pit_join_equals_builtin_plan(case in case()) {
        check(&case)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(700)))]

    /// Many versions of few keys (hot keys) and larger left sides; right
    /// sides of up to 150 rows over at most 6 keys also reach the hash
    /// probe's sorted order (groups of 16 rows and more on average).
    #[test]
    fn pit_join_equals_builtin_plan_hot_keys(
        left in random_rows(80, 0),
        right in prop_oneof![random_rows(150, 1000), scd2_rows(1000)],
        predicate in 0..PREDICATES.len(),
        left_join in any::<bool>(),
        batch_size in 1usize..40,
        key_type in 0..KEY_TYPES.len(),
    ) {
        check(&Case {
            left, right, predicate, left_join, partitions: 2, batch_size, chunk: 7, bound_type: 0,
            key_type,
        })?;
    }
}

/// Plans built with the API (as models do), with intersection columns and
/// optional residual filter, against the equivalent SQL on the built-in plan.
#[allow(clippy::too_many_arguments)]
fn check_api(
    left: &[Row],
    right: &[Row],
    point: bool,
    start_inclusive: bool,
    end_inclusive: bool,
    left_join: bool,
    residual: bool,
    batch_size: usize,
) -> Result<(), TestCaseError> {
    use datafusion::logical_expr::col;
    use datafusion::prelude::DataFrame;
    use lakehouse::join::{PitJoinType, RangeSpec, pit_join_plan};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (builtin, ours) = all_contexts(2, batch_size);
        register(&builtin, "l", left, 3, 2);
        register(&builtin, "r", right, 3, 2);
        let op = |inclusive: bool| if inclusive { "<=" } else { "<" };
        let left_end = if point { "vf" } else { "vt" };
        let sql = format!(
            "SELECT l.id, r.id, \
               CASE WHEN r.id IS NULL THEN NULL ELSE greatest(l.vf, r.vf) END, \
               CASE WHEN r.id IS NULL THEN NULL ELSE least(l.{left_end}, r.vt) END \
             FROM l {} r ON l.k = r.k AND r.vf {} l.{left_end} AND l.vf {} r.vt {}",
            if left_join { "LEFT JOIN" } else { "JOIN" },
            op(start_inclusive),
            op(end_inclusive),
            if residual { "AND l.x <> r.x" } else { "" },
        );
        let (plan, theirs) = run(&builtin, &sql).await;
        prop_assert!(!plan.contains("PitJoinExec"));
        for (strategy, pit) in &ours {
            register(pit, "l", left, 3, 2);
            register(pit, "r", right, 3, 2);
            let range = if point {
                RangeSpec::point(col("l.vf"), col("r.vf"), col("r.vt"))
            } else {
                RangeSpec::overlap(col("l.vf"), col("l.vt"), col("r.vf"), col("r.vt"))
            }
            .with_inclusive(start_inclusive, end_inclusive);
            let plan = pit_join_plan(
                pit.table("l").await.expect("l").into_unoptimized_plan(),
                pit.table("r").await.expect("r").into_unoptimized_plan(),
                vec![(col("l.k"), col("r.k"))],
                range,
                residual.then(|| col("l.x").not_eq(col("r.x"))),
                if left_join {
                    PitJoinType::Left
                } else {
                    PitJoinType::Inner
                },
                Some(("i_from".into(), "i_to".into())),
            )
            .expect("pit plan");
            let ours = DataFrame::new(pit.state(), plan)
                .select(vec![col("l.id"), col("r.id"), col("i_from"), col("i_to")])
                .expect("select")
                .collect()
                .await
                .expect("run pit");
            prop_assert_eq!(
                pit::render(&ours),
                theirs.clone(),
                "strategy={} {}",
                strategy,
                sql
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(500)))]

    #[test]
    fn plan_api_with_intersection_equals_builtin(
        left in random_rows(30, 0),
        right in right_rows(),
        point in any::<bool>(),
        start_inclusive in any::<bool>(),
        end_inclusive in any::<bool>(),
        left_join in any::<bool>(),
        residual in any::<bool>(),
        batch_size in 1usize..20,
    ) {
        check_api(
            &left, &right, point, start_inclusive, end_inclusive, left_join, residual, batch_size,
        )?;
    }
}
