//! Criterion benches: our PIT join vs DataFusion's built-in plan of the same
//! query (`BENCH_SQL`: left join, count and sum), on a skewed shape (few keys,
//! many versions per key) and a uniform shape (many keys, few versions).
//! Our operator runs with each strategy (`hash`, `partitioned_hash`,
//! `sort`). Sizes are small so the suite finishes quickly;
//! `lakehouse bench pit-join` runs the large comparisons.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lakehouse::bench::pit_join::{
    PitBenchConfig, builtin_context, generate, pit_context, run_query,
};
use lakehouse::join::PitJoinStrategy;

fn shapes() -> Vec<(&'static str, PitBenchConfig)> {
    let base = PitBenchConfig {
        threads: 2,
        ..PitBenchConfig::default()
    };
    vec![
        (
            "skewed",
            PitBenchConfig {
                left_rows: 20_000,
                keys: 20,
                versions: 500,
                ..base.clone()
            },
        ),
        (
            "hot_key",
            PitBenchConfig {
                left_rows: 20_000,
                keys: 20,
                versions: 500,
                hot_share: 0.5,
                ..base.clone()
            },
        ),
        (
            "uniform",
            PitBenchConfig {
                left_rows: 50_000,
                keys: 5_000,
                versions: 10,
                ..base
            },
        ),
    ]
}

fn bench_pit_join(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("pit_join");
    group.sample_size(10);
    for (name, config) in shapes() {
        let data = generate(&config).expect("generate data");
        let builtin = builtin_context(&data, &config).expect("builtin context");
        group.throughput(Throughput::Elements(
            (config.left_rows + config.right_rows()) as u64,
        ));
        for strategy in PitJoinStrategy::ALL {
            let pit = pit_context(&data, &config, strategy).expect("pit context");
            let id = BenchmarkId::new(format!("pit_{strategy}"), name);
            group.bench_with_input(id, &pit, |b, ctx| {
                b.to_async(&runtime)
                    .iter(|| async { run_query(ctx).await.expect("pit run") })
            });
        }
        group.bench_with_input(BenchmarkId::new("builtin", name), &builtin, |b, ctx| {
            b.to_async(&runtime)
                .iter(|| async { run_query(ctx).await.expect("builtin run") })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pit_join);
criterion_main!(benches);
