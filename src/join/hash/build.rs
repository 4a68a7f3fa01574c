//! The build side: collect the right input under a memory reservation and
//! lay it out as a [`HashTable`] (see the [hash](super) docs). Fails with
//! `ResourcesExhausted`, naming the `sort` strategy, when it does not fit;
//! a failed build releases everything it reserved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::compute::concat_batches;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use super::super::search::{is_monotone, push_max_tree};
use super::keys::{JoinColumns, KeyEncoder, KeyMode, Keys, SideExprs};
use super::metrics::BuildMetrics;
use super::table::{EMPTY, HEADER, HashTable, KeyIndex, NO_SLOT, Slots, dense_range, dense_slot};

/// The error of a failed reservation, saying what to do about it.
fn out_of_memory(e: DataFusionError) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "PIT join (hash strategy) cannot hold its right input in memory: {e}. \
         Use SET lakehouse.pit_join.strategy = 'sort' (its sorts spill to disk), \
         or raise the memory limit"
    ))
}

/// Grow `reservation` by `bytes`.
fn reserve(reservation: &mut MemoryReservation, bytes: usize) -> Result<()> {
    reservation.try_grow(bytes).map_err(out_of_memory)
}

/// Set `reservation` to `bytes`.
fn resize(reservation: &mut MemoryReservation, bytes: usize) -> Result<()> {
    reservation.try_resize(bytes).map_err(out_of_memory)
}

/// Collect `input` and build its [`HashTable`]; see the module docs.
pub(crate) async fn build_table(
    mut input: SendableRecordBatchStream,
    exprs: SideExprs,
    key_mode: KeyMode,
    pool: Arc<dyn MemoryPool>,
    partition: usize,
    metrics: BuildMetrics,
) -> Result<HashTable> {
    let schema = input.schema();
    let mut reservation =
        MemoryConsumer::new(format!("PitJoinHashBuild[{partition}]")).register(&pool);
    let mut compute = Duration::ZERO;
    let mut batches = Vec::new();
    let mut collected = 0;
    loop {
        let next = input.next().await;
        let t = Instant::now();
        let Some(batch) = next else { break };
        let batch = batch?;
        if batch.num_rows() > 0 {
            let size = batch.get_array_memory_size();
            reserve(&mut reservation, size)?;
            collected += size;
            metrics.right_rows.add(batch.num_rows());
            batches.push(batch);
        }
        compute += t.elapsed();
    }
    let t = Instant::now();
    let batch = if batches.len() == 1 {
        batches.swap_remove(0)
    } else {
        // The concatenated copy coexists with the collected batches.
        reserve(&mut reservation, collected)?;
        let out = concat_batches(&schema, &batches)?;
        drop(batches);
        out
    };
    let batch_mem = batch.get_array_memory_size();
    resize(&mut reservation, batch_mem)?;

    let n = batch.num_rows();
    if u32::try_from(n).is_err() {
        return Err(DataFusionError::ResourcesExhausted(
            "PIT join (hash strategy): more than 2^32 - 1 right rows in one table".into(),
        ));
    }
    let encoder = KeyEncoder::new(&key_mode)?;
    let cols = JoinColumns::evaluate(&batch, &exprs, &encoder)?;
    // Transient: the evaluated columns and the group id of every row.
    reserve(&mut reservation, cols.mem() + n * 4)?;

    let mut index = match dense_range(&cols, n) {
        Some((min, len)) => {
            reserve(&mut reservation, len * 4)?;
            KeyIndex::Dense {
                min,
                slots: vec![NO_SLOT; len],
            }
        }
        None => KeyIndex::Hashed(Slots::with_capacity(n.min(1024))),
    };
    // Group ids, in order of first appearance; `reps[g]` is a row of group g.
    let mut group_of = vec![u32::MAX; n];
    let mut counts: Vec<usize> = Vec::new();
    let mut reps: Vec<usize> = Vec::new();
    let mut prev: Option<(u32, usize)> = None;
    let keys = &cols.keys;
    for (i, slot) in group_of.iter_mut().enumerate() {
        if !cols.joinable(i) {
            continue;
        }
        // Consecutive rows of one key (common: histories are stored by key)
        // skip the lookup.
        let g = match prev {
            Some((g, p)) if keys.eq(p, i) => g,
            _ => {
                // `n < u32::MAX`, so a group id is below `NO_SLOT`.
                let new = counts.len() as u32;
                let g = match (&mut index, keys) {
                    (KeyIndex::Hashed(slots), _) => slots.get_or_insert(
                        keys.hash(i),
                        |g| keys.eq(reps[g as usize], i),
                        u64::from(new),
                    ) as u32,
                    (KeyIndex::Dense { min, slots }, Keys::Int(values)) => {
                        let d = dense_slot(values[i], *min, slots.len()).ok_or_else(|| {
                            DataFusionError::Internal("PitJoin: key outside its dense index".into())
                        })?;
                        if slots[d] == NO_SLOT {
                            slots[d] = new;
                        }
                        slots[d]
                    }
                    (KeyIndex::Dense { .. }, Keys::Rows(_)) => {
                        return Err(DataFusionError::Internal(
                            "PitJoin: dense index over row-format keys".into(),
                        ));
                    }
                };
                if g == new {
                    counts.push(0);
                    reps.push(i);
                }
                g
            }
        };
        *slot = g;
        counts[g as usize] += 1;
        prev = Some((g, i));
    }

    // Counting sort of the joinable rows by group id.
    let n_groups = counts.len();
    let mut next = Vec::with_capacity(n_groups);
    let mut total = 0usize;
    for &c in &counts {
        next.push(total);
        total += c;
    }
    let mut grouped = vec![0u32; total];
    for (i, &g) in group_of.iter().enumerate() {
        if g != u32::MAX {
            let at = &mut next[g as usize];
            grouped[*at] = i as u32;
            *at += 1;
        }
    }
    drop(group_of);

    // One arena record per group: rows sorted by (start, end), a tree when
    // the ends are not monotone.
    let key_words: usize = reps.iter().map(|&r| keys.len_of(r).div_ceil(8)).sum();
    let arena_len = n_groups * HEADER + key_words + 3 * total;
    reserve(&mut reservation, arena_len * 8 + total * 4)?;
    let (start, end) = (&cols.start, &cols.end);
    let mut arena: Vec<i64> = Vec::with_capacity(arena_len);
    let mut trees = Vec::new();
    let mut offsets = Vec::with_capacity(n_groups);
    let mut words = Vec::new();
    let mut ends = Vec::new();
    let mut group_start = 0;
    for (g, &count) in counts.iter().enumerate() {
        let slice = &mut grouped[group_start..group_start + count];
        group_start += count;
        let key = |&r: &u32| (start[r as usize], end[r as usize]);
        if !slice.windows(2).all(|p| key(&p[0]) <= key(&p[1])) {
            slice.sort_unstable_by_key(key);
        }
        let off = arena.len();
        offsets.push(off as u64);
        let key_len = keys.pack(reps[g], &mut words);
        arena.extend_from_slice(&[count as i64, -1, key_len as i64]);
        arena.extend_from_slice(&words);
        arena.extend(slice.iter().map(|&r| start[r as usize]));
        ends.clear();
        ends.extend(slice.iter().map(|&r| end[r as usize]));
        arena.extend_from_slice(&ends);
        arena.extend(slice.iter().map(|&r| i64::from(r)));
        if !is_monotone(&ends) {
            let base = trees.len();
            push_max_tree(&ends, &mut trees);
            arena[off + 1] = base as i64;
        }
    }
    drop(grouped);
    drop(cols);
    // The index now maps to arena offsets.
    match &mut index {
        KeyIndex::Hashed(slots) => {
            for slot in slots.slots.iter_mut().filter(|s| s.1 != EMPTY) {
                slot.1 = offsets[slot.1 as usize];
            }
        }
        KeyIndex::Dense { slots, .. } => {
            if arena.len() >= NO_SLOT as usize {
                return Err(DataFusionError::ResourcesExhausted(
                    "PIT join (hash strategy): right input too large for one table".into(),
                ));
            }
            for slot in slots.iter_mut().filter(|s| **s != NO_SLOT) {
                *slot = offsets[*slot as usize] as u32;
            }
        }
    }
    let mem = batch_mem + index.mem() + (arena.capacity() + trees.capacity()) * 8;
    resize(&mut reservation, mem)?;
    compute += t.elapsed();
    metrics.build_time.add_duration(compute);
    metrics.elapsed_compute.add_duration(compute);
    metrics.peak_mem.set_max(mem);
    Ok(HashTable {
        batch,
        index,
        arena,
        trees,
        groups: n_groups,
        joinable_rows: total,
        mem,
        built_by: partition,
        _reservation: reservation,
    })
}

#[cfg(test)]
mod tests {
    use super::super::keys::{hash_key, pack_key};
    use super::super::metrics::hash_metrics;
    use super::*;
    use arrow::array::{ArrayRef, RecordBatch};
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::SchemaRef;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::row::{RowConverter, SortField};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, UnboundedMemoryPool};
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use std::collections::BTreeMap;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("vf", DataType::Int64, true),
            Field::new("vt", DataType::Int64, true),
        ]))
    }

    type Row = (Option<i64>, Option<&'static str>, Option<i64>, Option<i64>);

    fn batches(rows: &[Row], chunk: usize) -> Vec<RecordBatch> {
        rows.chunks(chunk)
            .map(|c| {
                let cols: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(c.iter().map(|r| r.0).collect::<Vec<_>>())),
                    Arc::new(StringArray::from(c.iter().map(|r| r.1).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(c.iter().map(|r| r.2).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(c.iter().map(|r| r.3).collect::<Vec<_>>())),
                ];
                RecordBatch::try_new(schema(), cols).expect("batch")
            })
            .collect()
    }

    fn exprs() -> SideExprs {
        let s = schema();
        SideExprs {
            keys: vec![col("k", &s).expect("k"), col("s", &s).expect("s")],
            start: col("vf", &s).expect("vf"),
            end: col("vt", &s).expect("vt"),
        }
    }

    fn fields() -> Vec<SortField> {
        vec![
            SortField::new(DataType::Int64),
            SortField::new(DataType::Utf8),
        ]
    }

    async fn build(rows: &[Row], pool: Arc<dyn MemoryPool>) -> Result<HashTable> {
        let stream = futures::stream::iter(batches(rows, 7).into_iter().map(Ok));
        let input: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(schema(), stream));
        let metrics = ExecutionPlanMetricsSet::new();
        let (build_metrics, ..) = hash_metrics(&metrics, 0);
        build_table(
            input,
            exprs(),
            KeyMode::Rows(fields()),
            pool,
            0,
            build_metrics,
        )
        .await
    }

    /// Many keys over few hash values (2 bits in unit tests): every group
    /// is found through its chain, holds exactly its joinable rows sorted by
    /// (start, end), and has a tree exactly when its ends are not monotone.
    #[tokio::test]
    async fn groups_hold_exactly_their_rows_despite_hash_collisions() {
        let names = ["a", "b", "ccc", "a longer string key"];
        let mut rows: Vec<Row> = Vec::new();
        for i in 0..400i64 {
            let k = (i * 7) % 23;
            let s = names[(i % 4) as usize];
            let vf = (i * 37) % 101;
            let len = (i * 13) % 17 - 3;
            rows.push((Some(k), Some(s), Some(vf), Some(vf + len)));
        }
        rows.push((None, Some("a"), Some(0), Some(1)));
        rows.push((Some(1), None, Some(0), Some(1)));
        rows.push((Some(1), Some("a"), None, Some(1)));
        rows.push((Some(1), Some("a"), Some(0), None));
        let table = build(&rows, Arc::new(UnboundedMemoryPool::default()))
            .await
            .expect("build");
        // (start, end, right row) per key.
        type Versions = Vec<(i64, i64, u32)>;
        let mut expected: BTreeMap<(i64, &str), Versions> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let (Some(k), Some(s), Some(vf), Some(vt)) = *r {
                expected.entry((k, s)).or_default().push((vf, vt, i as u32));
            }
        }
        assert_eq!(table.groups, expected.len());
        assert_eq!(table.joinable_rows, 400);
        let converter = RowConverter::new(fields()).expect("converter");
        let find = |k: i64, s: &str| {
            let keys: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![k])),
                Arc::new(StringArray::from(vec![s])),
            ];
            let key_rows = converter.convert_columns(&keys).expect("rows");
            let key = key_rows.row(0);
            let mut words = Vec::new();
            pack_key(key.as_ref(), &mut words);
            table.find(hash_key(key.as_ref()), key.as_ref().len(), &words)
        };
        let mut trees = 0;
        for ((k, s), mut want) in expected {
            let off = find(k, s).expect("group of an existing key");
            let g = table.group(off);
            let (d, m) = (g.data, g.len);
            let got: Vec<(i64, i64, u32)> = (0..m)
                .map(|j| {
                    let a = &table.arena;
                    (a[d + j], a[d + m + j], a[d + 2 * m + j] as u32)
                })
                .collect();
            want.sort_by_key(|&(vf, vt, _)| (vf, vt));
            let bounds = |v: &[(i64, i64, u32)]| v.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>();
            assert_eq!(bounds(&got), bounds(&want), "key ({k}, {s})");
            let mut got_rows: Vec<u32> = got.iter().map(|x| x.2).collect();
            let mut want_rows: Vec<u32> = want.iter().map(|x| x.2).collect();
            got_rows.sort_unstable();
            want_rows.sort_unstable();
            assert_eq!(got_rows, want_rows, "key ({k}, {s})");
            let ends: Vec<i64> = got.iter().map(|x| x.1).collect();
            assert_eq!(g.tree.is_none(), is_monotone(&ends), "key ({k}, {s})");
            trees += usize::from(g.tree.is_some());
        }
        assert!(
            trees > 0,
            "the data should have groups with nested intervals"
        );
        // Absent keys (with colliding hashes: only 4 exist here) are not found.
        assert!(find(1000, "a").is_none());
        assert!(find(1, "zz").is_none());
        assert!(find(1, "a longer string key, longer").is_none());
    }

    /// One integer key: a dense index when the values are dense (exact
    /// lookups, no hashing), the hashed index over the values otherwise;
    /// either way each group holds exactly its key's joinable rows.
    #[tokio::test]
    async fn integer_keys_use_a_dense_index_only_when_dense() {
        for (scale, dense) in [(1i64, true), (1_000_000_007, false)] {
            let mut rows: Vec<Row> = (0..300i64)
                .map(|i| (Some((i % 50 - 20) * scale), Some("x"), Some(i), Some(i + 5)))
                .collect();
            rows.push((None, Some("x"), Some(0), Some(1)));
            rows.push((Some(3 * scale), Some("x"), None, Some(1)));
            let s = schema();
            let int_exprs = SideExprs {
                keys: vec![col("k", &s).expect("k")],
                start: col("vf", &s).expect("vf"),
                end: col("vt", &s).expect("vt"),
            };
            let stream = futures::stream::iter(batches(&rows, 7).into_iter().map(Ok));
            let input: SendableRecordBatchStream =
                Box::pin(RecordBatchStreamAdapter::new(schema(), stream));
            let metrics = ExecutionPlanMetricsSet::new();
            let (build_metrics, ..) = hash_metrics(&metrics, 0);
            let pool: Arc<dyn MemoryPool> = Arc::new(UnboundedMemoryPool::default());
            let table = build_table(input, int_exprs, KeyMode::Int, pool, 0, build_metrics)
                .await
                .expect("build");
            assert_eq!(
                matches!(table.index, KeyIndex::Dense { .. }),
                dense,
                "scale {scale}"
            );
            assert_eq!(table.groups, 50);
            assert_eq!(table.joinable_rows, 300);
            let find = |k: i64| match &table.index {
                KeyIndex::Dense { min, slots } => dense_slot(k, *min, slots.len())
                    .map(|d| slots[d])
                    .filter(|&o| o != NO_SLOT)
                    .map(|o| o as usize),
                KeyIndex::Hashed(_) => table.find(hash_key(&k.to_le_bytes()), 8, &[k]),
            };
            for g in 0..50i64 {
                let k = (g - 20) * scale;
                let off = find(k).expect("present key");
                let view = table.group(off);
                let mut got: Vec<u32> = (0..view.len)
                    .map(|j| table.arena[view.data + 2 * view.len + j] as u32)
                    .collect();
                got.sort_unstable();
                let want: Vec<u32> = (0..300u32).filter(|&i| i64::from(i) % 50 == g).collect();
                assert_eq!(got, want, "key {k}");
            }
            for absent in [-21 * scale, 30 * scale, 30 * scale + 7, i64::MIN, i64::MAX] {
                assert!(find(absent).is_none(), "key {absent}");
            }
        }
    }

    #[tokio::test]
    async fn build_fails_with_a_resources_error_over_the_pool_limit() {
        let rows: Vec<Row> = (0..5000)
            .map(|i| (Some(i), Some("key"), Some(0), Some(1)))
            .collect();
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(16 * 1024));
        let err = build(&rows, Arc::clone(&pool))
            .await
            .expect_err("5000 rows do not fit in 16 KiB");
        assert!(
            matches!(err, DataFusionError::ResourcesExhausted(_)),
            "{err}"
        );
        assert!(
            err.to_string().contains("lakehouse.pit_join.strategy"),
            "{err}"
        );
        assert_eq!(pool.reserved(), 0, "a failed build releases its memory");
        let table = build(&rows[..10], Arc::clone(&pool)).await.expect("fits");
        assert_eq!(pool.reserved(), table.mem());
        drop(table);
        assert_eq!(pool.reserved(), 0);
    }
}
