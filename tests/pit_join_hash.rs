//! Cases aimed at the hash strategies (and run with every strategy): a hot
//! key with thousands of versions, overlapping versions within a key (the
//! tree path), two-column keys, NULL keys and bounds, unmatched left rows,
//! the output batch size bound, and the shared table being built once. The
//! expected rows come from a brute-force evaluation of the predicate.

mod pit;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakehouse::join::{PitJoinExec, PitJoinStrategy};
use pit::pit_context;

/// key part 1, key part 2, id, valid_from, valid_to.
type Row = (
    Option<i64>,
    Option<&'static str>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("id", DataType::Int64, false),
        Field::new("vf", DataType::Int64, true),
        Field::new("vt", DataType::Int64, true),
    ]))
}

fn register(ctx: &SessionContext, name: &str, rows: &[Row], chunk: usize, partitions: usize) {
    let mut parts = vec![Vec::new(); partitions];
    for (i, c) in rows.chunks(chunk).enumerate() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(c.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(c.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.3).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.iter().map(|r| r.4).collect::<Vec<_>>())),
        ];
        parts[i % partitions].push(RecordBatch::try_new(schema(), cols).expect("batch"));
    }
    let table = MemTable::try_new(schema(), parts).expect("memtable");
    ctx.register_table(name, Arc::new(table)).expect("register");
}

/// Deterministic pseudo-random numbers (xorshift), so the data needs no RNG
/// crate and is the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Right side: key (1, "a") is hot with 3,000 contiguous versions; key
/// (2, "a") has 200 overlapping (nested and crossing) versions; key (2, "b")
/// shares its first column with (2, "a"); NULLs in either key column and in
/// the bounds.
fn right_rows() -> Vec<Row> {
    let mut rng = Xorshift(0x5eed);
    let mut rows = Vec::new();
    let mut t = 0;
    for i in 0..3000 {
        let len = 1 + rng.below(5) as i64;
        rows.push((Some(1), Some("a"), 10_000 + i, Some(t), Some(t + len)));
        t += len;
    }
    for i in 0..200 {
        let from = rng.below(2000) as i64;
        let len = rng.below(400) as i64;
        rows.push((Some(2), Some("a"), 20_000 + i, Some(from), Some(from + len)));
    }
    rows.push((Some(2), Some("b"), 30_000, Some(0), Some(5000)));
    rows.push((None, Some("a"), 30_001, Some(0), Some(5000)));
    rows.push((Some(1), None, 30_002, Some(0), Some(5000)));
    rows.push((Some(1), Some("a"), 30_003, None, Some(5000)));
    rows.push((Some(2), Some("a"), 30_004, Some(100), None));
    rows
}

/// Left side: long intervals on the hot key (hundreds of candidates each),
/// points and short intervals on the overlapping key, keys without right
/// rows, NULLs.
fn left_rows() -> Vec<Row> {
    let mut rng = Xorshift(0xfeed);
    let mut rows = Vec::new();
    for i in 0..300 {
        let (k, s) = match rng.below(6) {
            0 | 1 => (Some(1), Some("a")),
            2 | 3 => (Some(2), Some("a")),
            4 => (Some(2), Some("b")),
            _ => (Some(3), Some("a")),
        };
        let from = rng.below(9000) as i64;
        let len = match rng.below(3) {
            0 => 0,
            1 => rng.below(20) as i64,
            _ => rng.below(1500) as i64,
        };
        rows.push((k, s, i, Some(from), Some(from + len)));
    }
    rows.push((None, Some("a"), 1000, Some(0), Some(100)));
    rows.push((Some(1), None, 1001, Some(0), Some(100)));
    rows.push((Some(1), Some("a"), 1002, None, Some(100)));
    rows.push((Some(2), Some("a"), 1003, Some(150), None));
    rows
}

/// `l.id|r.id` of `l LEFT JOIN r ON l.k = r.k AND l.s = r.s AND l.vf < r.vt
/// AND l.vt > r.vf` (or the inner join), by brute force.
fn expected(left: &[Row], right: &[Row], left_join: bool) -> Vec<String> {
    let mut out = Vec::new();
    for l in left {
        let mut matched = false;
        for r in right {
            let keys = matches!((l.0, r.0), (Some(a), Some(b)) if a == b)
                && matches!((l.1, r.1), (Some(a), Some(b)) if a == b);
            let range = matches!((l.3, r.4), (Some(a), Some(b)) if a < b)
                && matches!((l.4, r.3), (Some(a), Some(b)) if a > b);
            if keys && range {
                matched = true;
                out.push(format!("{}|{}", l.2, r.2));
            }
        }
        if left_join && !matched {
            out.push(format!("{}|NULL", l.2));
        }
    }
    out.sort();
    out
}

fn render(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let l = b.column(0).as_primitive::<Int64Type>();
        let r = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let rv = if r.is_valid(i) {
                r.value(i).to_string()
            } else {
                "NULL".to_string()
            };
            out.push(format!("{}|{rv}", l.value(i)));
        }
    }
    out.sort();
    out
}

async fn create_plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    ctx.sql(sql)
        .await
        .expect("sql")
        .create_physical_plan()
        .await
        .expect("plan")
}

/// The `PitJoinExec` of a plan.
fn find_pit(plan: &Arc<dyn ExecutionPlan>) -> Option<&PitJoinExec> {
    if let Some(p) = plan.as_any().downcast_ref::<PitJoinExec>() {
        return Some(p);
    }
    plan.children().into_iter().find_map(find_pit)
}

#[tokio::test]
async fn hot_and_overlapping_keys_with_bounded_output_batches() {
    let (left, right) = (left_rows(), right_rows());
    const BATCH: usize = 64;
    for strategy in PitJoinStrategy::ALL {
        for left_join in [false, true] {
            let config = SessionConfig::new()
                .with_target_partitions(3)
                .with_batch_size(BATCH);
            let ctx = pit_context(strategy, config);
            register(&ctx, "l", &left, 37, 2);
            register(&ctx, "r", &right, 500, 3);
            let join = if left_join { "LEFT JOIN" } else { "JOIN" };
            let sql = format!(
                "SELECT l.id, r.id FROM l {join} r \
                 ON l.k = r.k AND l.s = r.s AND l.vf < r.vt AND l.vt > r.vf"
            );
            let plan = create_plan(&ctx, &sql).await;
            let text = displayable(plan.as_ref()).indent(true).to_string();
            assert!(
                text.contains(&format!("PitJoinExec: strategy={strategy}")),
                "{text}"
            );
            // Collect the join's own output batches (below any projection).
            let Some(pit) = find_pit(&plan) else {
                panic!("no PitJoinExec in {text}");
            };
            let pit: Arc<dyn ExecutionPlan> =
                Arc::new(pit.with_projection(None).expect("unprojected"));
            let join_batches = collect(Arc::clone(&pit), ctx.task_ctx())
                .await
                .expect("run join");
            assert!(
                join_batches.iter().all(|b| b.num_rows() <= BATCH),
                "{strategy}: output batch above {BATCH} rows: {:?}",
                join_batches
                    .iter()
                    .map(|b| b.num_rows())
                    .collect::<Vec<_>>()
            );
            assert!(
                join_batches.iter().any(|b| b.num_rows() == BATCH),
                "{strategy}: hot keys should fill whole batches"
            );
            // A fresh plan: repartitioning inputs run once per plan.
            let plan = create_plan(&ctx, &sql).await;
            let out = collect(plan, ctx.task_ctx()).await.expect("run");
            let want = expected(&left, &right, left_join);
            // Sanity of the data: the hot key produces hundreds of pairs per
            // left row, left joins keep the unmatched rows.
            assert!(want.len() > 10_000, "{}", want.len());
            assert_eq!(render(&out), want, "strategy={strategy} {sql}");
        }
    }
}

#[tokio::test]
async fn the_shared_table_is_built_once_and_reported_in_metrics() {
    let (left, right) = (left_rows(), right_rows());
    let config = SessionConfig::new()
        .with_target_partitions(3)
        .with_batch_size(128);
    let ctx = pit_context(PitJoinStrategy::Hash, config);
    register(&ctx, "l", &left, 37, 3);
    register(&ctx, "r", &right, 500, 3);
    let sql = "SELECT l.id, r.id FROM l LEFT JOIN r \
               ON l.k = r.k AND l.s = r.s AND l.vf < r.vt AND l.vt > r.vf";
    let plan = create_plan(&ctx, sql).await;
    let out = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .expect("run");
    assert_eq!(render(&out), expected(&left, &right, true));
    let Some(pit) = find_pit(&plan) else {
        panic!("no PitJoinExec");
    };
    assert_eq!(pit.properties().partitioning.partition_count(), 3);
    let metrics = pit.metrics().expect("metrics").aggregate_by_name();
    let value = |name: &str| {
        metrics
            .sum_by_name(name)
            .map(|v| v.as_usize())
            .unwrap_or_else(|| panic!("no metric {name}: {metrics}"))
    };
    // Three partitions probe, the right side is read and built once.
    assert_eq!(value("right_input_rows"), right.len());
    assert_eq!(value("left_input_rows"), left.len());
    let inner_pairs = expected(&left, &right, false).len();
    assert_eq!(value("candidate_pairs"), inner_pairs);
    assert!(value("peak_mem_used") > 0);
    for time in ["build_time", "probe_time", "build_output_time"] {
        assert!(metrics.sum_by_name(time).is_some(), "{time}: {metrics}");
    }
}
