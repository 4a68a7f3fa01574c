//! Table upkeep (compaction, snapshot expiry, orphan removal), on local
//! disk and on S3 (moto): no live row changes, every kept snapshot stays
//! readable, and only files nothing references are deleted.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use iceberg::spec::DataContentType;
use lakehouse::ErrorKind;
use lakehouse::storage::added::{AddedRows, rows_added_since};
use lakehouse::storage::commit::{FailPoint, live_data_files};
use lakehouse::storage::upkeep::UpkeepPolicy;
use lakehouse::storage::{AsOf, LoadedTable, TableName, Warehouse, Write, WriteMode};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]))
}

fn batch(ids: impl IntoIterator<Item = i64>, price: f64) -> RecordBatch {
    let ids: Vec<i64> = ids.into_iter().collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("n{i}")),
            )),
            Arc::new(Float64Array::from(vec![price; ids.len()])),
        ],
    )
    .unwrap()
}

/// Rows as (id, price), in the order the scan gives them.
async fn scan(wh: &Warehouse, t: &TableName, as_of: AsOf) -> lakehouse::Result<Vec<(i64, f64)>> {
    let mut out = Vec::new();
    for b in wh.scan(t, as_of).await? {
        let id = b.column_by_name("id").unwrap();
        let id = id.as_any().downcast_ref::<Int64Array>().unwrap();
        let price = b.column_by_name("price").unwrap();
        let price = price.as_any().downcast_ref::<Float64Array>().unwrap();
        out.extend((0..b.num_rows()).map(|i| (id.value(i), price.value(i))));
    }
    Ok(out)
}

async fn rows(wh: &Warehouse, t: &TableName, as_of: AsOf) -> Vec<(i64, f64)> {
    let mut r = scan(wh, t, as_of).await.unwrap();
    r.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    r
}

/// Every file under the table's directory (store paths).
async fn files(wh: &Warehouse, t: &TableName) -> BTreeSet<String> {
    wh.store()
        .list(Some(&wh.url().store_path(&t.dir())))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

fn policy() -> UpkeepPolicy {
    UpkeepPolicy {
        compact: false,
        orphans: false,
        ..UpkeepPolicy::default()
    }
}

async fn upkeep(
    wh: &Warehouse,
    t: &TableName,
    p: &UpkeepPolicy,
    protected: &[i64],
) -> lakehouse::storage::upkeep::TableUpkeep {
    let protected: HashSet<i64> = protected.iter().copied().collect();
    wh.upkeep_table(&SessionContext::new(), t, p, &protected)
        .await
        .unwrap()
}

/// (data files, delete files) live in the current snapshot.
async fn live_counts(t: &LoadedTable) -> (usize, usize) {
    let live = live_data_files(t).await.unwrap();
    let data = live
        .iter()
        .filter(|f| f.content_type() == DataContentType::Data)
        .count();
    (data, live.len() - data)
}

/// Ten appends of ten rows, then three merges replacing ids ending in 5
/// (position deletes); the last commit carries a cursor property.
async fn many_small_commits(wh: &Warehouse, t: &TableName) {
    for k in 0..10 {
        let w = Write::append().sorted_by(["id"]);
        wh.write(t, schema(), vec![batch(k * 10..k * 10 + 10, 1.0)], w)
            .await
            .unwrap();
    }
    for (round, price) in [(0, 2.0), (1, 3.0), (2, 4.0)] {
        let mut w = Write::merge(["id"]).sorted_by(["id"]);
        if round == 2 {
            w = w.property("lakehouse.cursor", "2026-12-07T00:00:00Z");
        }
        let ids = (0..10).map(|k| k * 10 + 5);
        wh.write(t, schema(), vec![batch(ids, price)], w)
            .await
            .unwrap();
    }
}

fn expected_rows() -> Vec<(i64, f64)> {
    (0..100)
        .map(|i| (i, if i % 10 == 5 { 4.0 } else { 1.0 }))
        .collect()
}

async fn compaction_changes_no_row_and_keeps_history(wh: Warehouse) {
    let t = TableName::parse("dar.compacted").unwrap();
    many_small_commits(&wh, &t).await;
    let before = wh.load_table(&t).await.unwrap();
    assert_eq!(live_counts(&before).await, (13, 3));
    let last_data = before.metadata().current_snapshot_id().unwrap();
    let previous = before
        .metadata()
        .current_snapshot()
        .unwrap()
        .parent_snapshot_id()
        .unwrap();
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected_rows());

    // Too few small files for min_files 20, but the merges' own files were
    // replaced whole by the next merge: those two go, and the three delete
    // files merge into one holding the positions of the files that stay.
    let p = UpkeepPolicy {
        compact: true,
        min_files: 20,
        ..policy()
    };
    let r = upkeep(&wh, &t, &p, &[]).await;
    let c = r.compaction.expect("compacted");
    assert_eq!((c.data_files, c.delete_files, c.rows), (2, 3, 0), "{c:?}");
    assert_eq!(c.files_out, 1, "the merged delete file");
    let mid = wh.load_table(&t).await.unwrap();
    assert_eq!(live_counts(&mid).await, (11, 1));
    assert_eq!(mid.current_properties()["total-position-deletes"], "10");
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected_rows());

    // Eleven small files (min_files 4): all rewritten into one, without
    // the deleted rows.
    let p = UpkeepPolicy {
        compact: true,
        min_files: 4,
        ..policy()
    };
    let r = upkeep(&wh, &t, &p, &[]).await;
    let c = r.compaction.expect("compacted");
    assert_eq!(
        (c.data_files, c.delete_files, c.rows),
        (11, 1, 100),
        "{c:?}"
    );
    assert_eq!(c.files_out, 1);

    let after = wh.load_table(&t).await.unwrap();
    assert_eq!(live_counts(&after).await, (1, 0));
    let current = after.metadata().current_snapshot().unwrap();
    assert_eq!(current.summary().operation.as_str(), "replace");
    assert_eq!(
        after.history().iter().rev().nth(2).map(|s| s.snapshot_id),
        Some(last_data)
    );
    // The run state stays with the rows; readers see no change.
    let props = after.current_properties();
    assert_eq!(props["lakehouse.cursor"], "2026-12-07T00:00:00Z");
    assert_eq!(props["lakehouse.sort-by"], "id");
    assert_eq!(props["total-records"], "100");
    assert_eq!(props["total-position-deletes"], "0");
    assert_eq!(after.data_snapshot_id(), Some(last_data));
    assert_eq!(after.row_count(), 100);
    // The rewritten file is sorted like the table's writes.
    let in_file_order: Vec<i64> = scan(&wh, &t, AsOf::Latest)
        .await
        .unwrap()
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(in_file_order, (0..100).collect::<Vec<_>>());
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected_rows());
    // The snapshot before the compaction still reads the same rows.
    assert_eq!(
        rows(&wh, &t, AsOf::Snapshot(last_data)).await,
        expected_rows()
    );
    // A reader that last read `previous` still finds the last merge's rows
    // (the compaction is not a change); one that read the last merge finds
    // nothing new.
    match rows_added_since(&wh, &after, previous).await.unwrap() {
        Some(AddedRows::Files(f)) => {
            assert_eq!(f.len(), 1, "{f:?}");
            let path = wh.url().location_to_path(&f[0]).unwrap();
            use object_store::ObjectStoreExt;
            assert!(wh.store().head(&path).await.is_ok(), "{} exists", f[0]);
        }
        other => panic!("the last merge's files, not {other:?}"),
    }
    match rows_added_since(&wh, &after, last_data).await.unwrap() {
        Some(AddedRows::Kept(k)) => assert!(k.is_empty()),
        other => panic!("no new rows, not {other:?}"),
    }

    // A compaction decided at a snapshot that is no longer current commits
    // nothing: a write that landed meanwhile is never lost.
    wh.write(&t, schema(), vec![batch([1000], 9.0)], Write::append())
        .await
        .unwrap();
    let stale = Write::new(WriteMode::Compact {
        base: last_data,
        remove: vec![],
        merged_deletes: Some(vec![]),
    });
    let err = wh.write(&t, schema(), vec![], stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommitConflict, "{err}");
    assert_eq!(rows(&wh, &t, AsOf::Latest).await.len(), 101);
}

async fn expiry_keeps_newest_protected_and_their_files(wh: Warehouse) {
    let t = TableName::parse("dab.expiring").unwrap();
    let mut ids = Vec::new();
    for k in 0..8 {
        let o = wh
            .write(
                &t,
                schema(),
                vec![batch(k * 5..k * 5 + 5, 1.0)],
                Write::append(),
            )
            .await
            .unwrap();
        ids.push(o.snapshot_id.unwrap());
    }
    let o = wh
        .write(&t, schema(), vec![batch(100..103, 2.0)], Write::overwrite())
        .await
        .unwrap();
    ids.push(o.snapshot_id.unwrap());
    for k in 0..2 {
        let o = wh
            .write(
                &t,
                schema(),
                vec![batch(200 + k..201 + k, 3.0)],
                Write::append(),
            )
            .await
            .unwrap();
        ids.push(o.snapshot_id.unwrap());
    }
    // Rows each snapshot reads: 5, 10, ..., 40, then 3, 4, 5.
    let counts: Vec<usize> = (1..=8).map(|k| k * 5).chain([3, 4, 5]).collect();

    // Nothing is older than a day: the default retention keeps everything.
    let r = upkeep(&wh, &t, &policy(), &[]).await;
    assert_eq!(r.expired_snapshots, 0);

    let aggressive = UpkeepPolicy {
        retain: Duration::ZERO,
        keep_last: 2,
        ..policy()
    };
    // Dry run: decided, reported, nothing changed.
    let before = files(&wh, &t).await;
    let dry = upkeep(
        &wh,
        &t,
        &UpkeepPolicy {
            dry_run: true,
            ..aggressive.clone()
        },
        &[ids[3]],
    )
    .await;
    assert_eq!(dry.expired_snapshots, 3);
    assert!(!dry.expired_files.is_empty());
    assert_eq!(files(&wh, &t).await, before, "a dry run deletes nothing");

    // The run state names the 4th snapshot: it and every newer one stay.
    let r = upkeep(&wh, &t, &aggressive, &[ids[3]]).await;
    assert_eq!(r.expired_snapshots, 3);
    assert_eq!(r.expired_files, dry.expired_files);
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(loaded.history().len(), 8);
    for (id, n) in ids.iter().zip(&counts).skip(3) {
        assert_eq!(rows(&wh, &t, AsOf::Snapshot(*id)).await.len(), *n);
    }
    let gone = scan(&wh, &t, AsOf::Snapshot(ids[0])).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    // Only the expired snapshots' own files went: every data file stays.
    let after = files(&wh, &t).await;
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(
        added.len() == 1 && added[0].ends_with(".metadata.json"),
        "only the expiry's metadata version is new: {added:?}"
    );
    let removed: BTreeSet<&String> = before.difference(&after).collect();
    assert!(
        removed
            .iter()
            .all(|f| f.ends_with(".avro") || f.ends_with(".json")),
        "{removed:?}"
    );

    // Without protection, the newest two stay; the files live only in the
    // older snapshots go with them.
    let r = upkeep(&wh, &t, &aggressive, &[]).await;
    assert_eq!(r.expired_snapshots, 6);
    let loaded = wh.load_table(&t).await.unwrap();
    let kept: Vec<i64> = loaded.history().iter().map(|s| s.snapshot_id).collect();
    assert_eq!(kept, ids[9..].to_vec());
    assert_eq!(rows(&wh, &t, AsOf::Snapshot(ids[9])).await.len(), 4);
    assert_eq!(rows(&wh, &t, AsOf::Latest).await.len(), 5);
    let after = files(&wh, &t).await;
    let data: Vec<&String> = after.iter().filter(|f| f.ends_with(".parquet")).collect();
    assert_eq!(
        data.len(),
        3,
        "the overwrite's file and two appends: {data:?}"
    );
    let versions = after
        .iter()
        .filter(|f| f.ends_with(".metadata.json"))
        .count();
    assert!(versions <= 3, "old metadata versions go: {versions}");
    // What expiry left is exactly what the table references.
    let sweep = UpkeepPolicy {
        orphans: true,
        orphan_age: Duration::ZERO,
        ..aggressive.clone()
    };
    let r = upkeep(&wh, &t, &sweep, &[]).await;
    assert!(r.orphan_files.is_empty(), "{:?}", r.orphan_files);
}

async fn orphans_go_only_when_old_and_unreferenced(wh: Warehouse) {
    let t = TableName::parse("das.orphaned").unwrap();
    for k in 0..3 {
        wh.write(
            &t,
            schema(),
            vec![batch(k * 3..k * 3 + 3, 1.0)],
            Write::append(),
        )
        .await
        .unwrap();
    }
    let committed = files(&wh, &t).await;
    // A run killed just before its metadata put: its data file, manifest
    // and manifest list exist, unreferenced.
    let crash: FailPoint = Arc::new(|p: &str| {
        if p == "before-commit" {
            Err(lakehouse::Error::internal("killed"))
        } else {
            Ok(())
        }
    });
    wh.write_with_failpoint(
        &t,
        schema(),
        vec![batch([50, 51], 5.0)],
        Write::append(),
        Some(crash),
    )
    .await
    .unwrap_err();
    let with_orphans = files(&wh, &t).await;
    let strays: BTreeSet<&String> = with_orphans.difference(&committed).collect();
    assert!(strays.len() >= 3, "{strays:?}");

    // Younger than the orphan age: a commit in flight might reference them.
    let young = UpkeepPolicy {
        orphans: true,
        orphan_age: Duration::from_secs(3600),
        ..policy()
    };
    assert!(upkeep(&wh, &t, &young, &[]).await.orphan_files.is_empty());
    assert_eq!(files(&wh, &t).await, with_orphans);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let old = UpkeepPolicy {
        orphan_age: Duration::ZERO,
        ..young
    };
    let r = upkeep(&wh, &t, &old, &[]).await;
    let found: BTreeSet<&String> = r.orphan_files.iter().map(|f| &f.0).collect();
    assert_eq!(found, strays);
    assert_eq!(files(&wh, &t).await, committed);
    assert_eq!(rows(&wh, &t, AsOf::Latest).await.len(), 9);
    assert!(upkeep(&wh, &t, &old, &[]).await.orphan_files.is_empty());
}

async fn readers_during_upkeep_see_whole_snapshots(wh: Warehouse) {
    let t = TableName::parse("dar.read_while_kept").unwrap();
    many_small_commits(&wh, &t).await;
    let reader = {
        let (wh, t) = (wh.clone(), t.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected_rows());
            }
        })
    };
    let p = UpkeepPolicy {
        compact: true,
        min_files: 4,
        orphans: true,
        ..UpkeepPolicy::default()
    };
    let r = upkeep(&wh, &t, &p, &[]).await;
    assert!(r.compaction.is_some());
    reader.await.unwrap();
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected_rows());
}

/// A sorted table whose only need is its delete files merged (eight merges,
/// none deleting much of any file): the delete files become one, no data
/// file is rewritten, no row changes.
async fn delete_files_alone_merge_in_a_sorted_table(wh: Warehouse) {
    let t = TableName::parse("dar.deletes_only").unwrap();
    for k in 0..3 {
        let w = Write::append().sorted_by(["id"]);
        wh.write(&t, schema(), vec![batch(k * 100..k * 100 + 100, 1.0)], w)
            .await
            .unwrap();
    }
    for round in 0..8 {
        let w = Write::merge(["id"]).sorted_by(["id"]);
        wh.write(&t, schema(), vec![batch([round * 37], 2.0)], w)
            .await
            .unwrap();
    }
    let before = wh.load_table(&t).await.unwrap();
    assert_eq!(live_counts(&before).await, (11, 8));
    // Each delete file names its one data file in its `file_path` bounds,
    // as readers that apply such files to that file alone expect.
    let live = live_data_files(&before).await.unwrap();
    let data: HashSet<String> = live
        .iter()
        .filter(|f| f.content_type() == DataContentType::Data)
        .map(|f| f.file_path().to_string())
        .collect();
    let path_bounds = |f: &iceberg::spec::DataFile| {
        let text = |d: Option<&iceberg::spec::Datum>| match d.map(|d| d.literal()) {
            Some(iceberg::spec::PrimitiveLiteral::String(s)) => s.clone(),
            other => panic!("file_path bound {other:?}"),
        };
        (
            text(f.lower_bounds().get(&2_147_483_546)),
            text(f.upper_bounds().get(&2_147_483_546)),
        )
    };
    for f in live
        .iter()
        .filter(|f| f.content_type() == DataContentType::PositionDeletes)
    {
        let (low, high) = path_bounds(f);
        assert_eq!(low, high, "{}", f.file_path());
        assert!(data.contains(&low), "{low} is a live data file");
    }
    let expected = rows(&wh, &t, AsOf::Latest).await;
    assert_eq!(expected.len(), 300);
    // Files count as small under a quarter of the target size: with a
    // 1 KiB target, none does, so no data file is due for rewriting.
    let p = UpkeepPolicy {
        compact: true,
        min_files: 8,
        ..policy()
    };
    let kept = wh.clone().with_target_file_size(1024);
    let c = upkeep(&kept, &t, &p, &[])
        .await
        .compaction
        .expect("compacted");
    assert_eq!((c.data_files, c.delete_files, c.rows), (0, 8, 0), "{c:?}");
    assert_eq!(c.files_out, 1, "one merged delete file");
    let after = wh.load_table(&t).await.unwrap();
    assert_eq!(live_counts(&after).await, (11, 1));
    // The merged file spans the three data files its positions are in.
    let merged = live_data_files(&after).await.unwrap();
    let merged = merged
        .iter()
        .find(|f| f.content_type() == DataContentType::PositionDeletes)
        .unwrap();
    let (low, high) = path_bounds(merged);
    assert!(low < high && data.contains(&low) && data.contains(&high));
    assert_eq!(after.current_properties()["lakehouse.sort-by"], "id");
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, expected);
}

on_every_backend! {
    compaction => super::compaction_changes_no_row_and_keeps_history,
    expiry => super::expiry_keeps_newest_protected_and_their_files,
    orphans => super::orphans_go_only_when_old_and_unreferenced,
    readers => super::readers_during_upkeep_see_whole_snapshots,
    deletes_only => super::delete_files_alone_merge_in_a_sorted_table,
}
