//! Warehouse acceptance tests, run on local disk and on S3 (moto).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use lakehouse::ErrorKind;
use lakehouse::storage::commit::{FailPoint, KeyMatch, live_data_files};
use lakehouse::storage::{AsOf, CommitOutcome, TableName, Warehouse, Write};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]))
}

fn batch(rows: &[(i64, Option<&str>, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// All rows of a table, sorted, as (id, name, price).
async fn rows(wh: &Warehouse, t: &TableName, as_of: AsOf) -> Vec<(i64, Option<String>, f64)> {
    let batches = wh.scan(t, as_of).await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let id = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        let name =
            arrow::compute::cast(b.column_by_name("name").unwrap(), &DataType::Utf8).unwrap();
        let name = name.as_any().downcast_ref::<StringArray>().unwrap().clone();
        let price = b
            .column_by_name("price")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        for i in 0..b.num_rows() {
            out.push((
                id.value(i),
                (!name.is_null(i)).then(|| name.value(i).to_string()),
                price.value(i),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

/// The `id` column of `batches`, sorted.
fn sorted_ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    out.sort();
    out
}

/// Replace keys: the values of one text column.
fn text_keys(column: &str, values: StringArray) -> KeyMatch {
    let field = Field::new(column, DataType::Utf8, true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![Arc::new(values)]);
    KeyMatch::Values(batch.unwrap())
}

/// Replace `keys` (no new rows): `removed` rows go, and the ids left are
/// `kept`, in order.
async fn replace_leaves(
    wh: &Warehouse,
    t: &TableName,
    keys: KeyMatch,
    removed: usize,
    kept: impl Iterator<Item = i64>,
) {
    let o = wh
        .write(t, schema(), vec![], Write::replace(vec![keys]))
        .await
        .unwrap();
    assert_eq!(o.removed_rows, removed as u64);
    let left: Vec<i64> = rows(wh, t, AsOf::Latest)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(left, kept.collect::<Vec<_>>());
}

fn owned(rows: &[(i64, Option<&str>, f64)]) -> Vec<(i64, Option<String>, f64)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| (r.0, r.1.map(str::to_string), r.2))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

async fn append_overwrite_upsert_round_trip(wh: Warehouse) {
    let t = TableName::parse("das.products").unwrap();
    let first = [
        (1, Some("bike"), 100.0),
        (2, Some("helmet"), 20.5),
        (3, None, 3.0),
    ];
    let o1 = wh
        .write(&t, schema(), vec![batch(&first)], Write::append())
        .await
        .unwrap();
    assert_eq!((o1.added_rows, o1.removed_rows, o1.version), (3, 0, 2));
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&first));

    let second = [(4, Some("chain"), 9.99)];
    wh.write(&t, schema(), vec![batch(&second)], Write::append())
        .await
        .unwrap();
    let after_append: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&after_append));

    // Upsert: id 2 changes, id 5 is new; files without ids 2/5 stay untouched.
    let files_before: BTreeSet<String> = live_data_files(&wh.load_table(&t).await.unwrap())
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().to_string())
        .collect();
    let up = [(2, Some("helmet pro"), 25.0), (5, Some("pedal"), 7.0)];
    let o = wh
        .write(&t, schema(), vec![batch(&up)], Write::upsert(["id"]))
        .await
        .unwrap();
    assert_eq!(o.removed_rows, 1, "only the old row of id 2 is replaced");
    let expected = [
        (1, Some("bike"), 100.0),
        (2, Some("helmet pro"), 25.0),
        (3, None, 3.0),
        (4, Some("chain"), 9.99),
        (5, Some("pedal"), 7.0),
    ];
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&expected));
    let loaded = wh.load_table(&t).await.unwrap();
    let files_after: BTreeSet<String> = live_data_files(&loaded)
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().to_string())
        .collect();
    // The file of the second append (id 4 only) is untouched; the first file was rewritten.
    assert_eq!(files_before.intersection(&files_after).count(), 1);
    assert_eq!(loaded.row_count(), 5);

    // Time travel: by snapshot id and by timestamp.
    let history = loaded.history();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history
            .iter()
            .map(|h| h.operation.as_str())
            .collect::<Vec<_>>(),
        ["append", "append", "overwrite"]
    );
    assert_eq!(
        rows(&wh, &t, AsOf::Snapshot(history[0].snapshot_id)).await,
        owned(&first)
    );
    assert_eq!(
        rows(&wh, &t, AsOf::Timestamp(history[1].committed_at)).await,
        owned(&after_append)
    );

    // Overwrite replaces everything.
    let fresh = [(10, Some("frame"), 500.0)];
    let o = wh
        .write(&t, schema(), vec![batch(&fresh)], Write::overwrite())
        .await
        .unwrap();
    assert_eq!((o.added_rows, o.removed_rows), (1, 5));
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&fresh));
    assert_eq!(
        rows(&wh, &t, AsOf::Snapshot(history[2].snapshot_id)).await,
        owned(&expected)
    );
}

async fn snapshot_properties_commit_with_rows(wh: Warehouse) {
    let t = TableName::parse("das.orders").unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(1, Some("a"), 1.0)])],
        Write::append().property("lakehouse.cursor", "2024-01-01"),
    )
    .await
    .unwrap();
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(
        loaded
            .current_properties()
            .get("lakehouse.cursor")
            .map(String::as_str),
        Some("2024-01-01")
    );
    // A property-only commit (no rows) still makes a snapshot.
    let o = wh
        .write(
            &t,
            schema(),
            vec![],
            Write::append().property("lakehouse.cursor", "2024-02-01"),
        )
        .await
        .unwrap();
    assert!(o.snapshot_id.is_some());
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(
        loaded
            .current_properties()
            .get("lakehouse.cursor")
            .map(String::as_str),
        Some("2024-02-01")
    );
    assert_eq!(loaded.row_count(), 1);
    // Nothing to do: no snapshot.
    let o = wh
        .write(&t, schema(), vec![], Write::append())
        .await
        .unwrap();
    assert_eq!(o.snapshot_id, None);
}

async fn eight_concurrent_writers(wh: Warehouse) {
    let t = TableName::parse("das.events").unwrap();
    wh.create_table(&t, &schema()).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let wh = wh.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let rows: Vec<_> = (0..50)
                .map(|i| (w * 1000 + i, Some("x"), i as f64))
                .collect();
            wh.write(&t, schema(), vec![batch(&rows)], Write::append())
                .await
                .unwrap()
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().version);
    }
    assert_eq!(
        versions,
        (2..=9).collect(),
        "each writer won exactly one version"
    );
    let got = rows(&wh, &t, AsOf::Latest).await;
    assert_eq!(got.len(), 400);
    let ids: BTreeSet<i64> = got.iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 400, "every row exactly once");
    let loaded = wh.load_table(&t).await.unwrap();
    let history = loaded.history();
    assert_eq!(history.len(), 8, "linear history of 8 snapshots");
    for pair in history.windows(2) {
        assert_eq!(pair[1].parent_id, Some(pair[0].snapshot_id));
        assert_eq!(pair[1].sequence_number, pair[0].sequence_number + 1);
    }
    assert_eq!(loaded.metadata().snapshots().count(), 8);
}

async fn crash_before_pointer_leaves_previous_state(wh: Warehouse) {
    let t = TableName::parse("dab.frames").unwrap();
    let first = [(1, Some("a"), 1.0), (2, Some("b"), 2.0)];
    wh.write(&t, schema(), vec![batch(&first)], Write::append())
        .await
        .unwrap();
    for (point, write) in [
        ("before-data", Write::append()),
        ("before-commit", Write::append()),
        ("before-commit", Write::overwrite()),
        ("before-commit", Write::upsert(["id"])),
    ] {
        let at = point.to_string();
        let fp: FailPoint = Arc::new(move |p: &str| {
            if p == at {
                Err(lakehouse::Error::internal(format!("injected crash at {p}")))
            } else {
                Ok(())
            }
        });
        let err = wh
            .write_with_failpoint(
                &t,
                schema(),
                vec![batch(&[(2, Some("z"), 9.0), (3, Some("c"), 3.0)])],
                write,
                Some(fp),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("injected crash"), "{err}");
        let loaded = wh.load_table(&t).await.unwrap();
        assert_eq!(loaded.version, 2, "no new version after a crash at {point}");
        assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&first));
    }
    // Orphans exist on storage but are not referenced.
    let live: BTreeSet<String> = live_data_files(&wh.load_table(&t).await.unwrap())
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().to_string())
        .collect();
    assert_eq!(live.len(), 1);
    // The next writer proceeds normally.
    wh.write(
        &t,
        schema(),
        vec![batch(&[(3, Some("c"), 3.0)])],
        Write::append(),
    )
    .await
    .unwrap();
    assert_eq!(rows(&wh, &t, AsOf::Latest).await.len(), 3);
}

async fn bad_batch_schema_is_refused_naming_the_column(wh: Warehouse) {
    let t = TableName::parse("das.strict").unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(1, Some("a"), 1.0)])],
        Write::append(),
    )
    .await
    .unwrap();
    // Wrong type for 'price'.
    let bad_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Utf8, true),
    ]));
    let bad = RecordBatch::try_new(
        bad_schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(StringArray::from(vec!["b"])),
            Arc::new(StringArray::from(vec!["cheap"])),
        ],
    )
    .unwrap();
    let err = wh
        .write(&t, bad_schema, vec![bad], Write::append())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
    assert!(err.to_string().contains("'price'"), "{err}");
    // An unknown column.
    let extra_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("colour", DataType::Utf8, true),
    ]));
    let extra = RecordBatch::try_new(
        extra_schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(StringArray::from(vec!["b"])),
            Arc::new(Float64Array::from(vec![1.0])),
            Arc::new(StringArray::from(vec!["red"])),
        ],
    )
    .unwrap();
    let err = wh
        .write(
            &t,
            extra_schema.clone(),
            vec![extra.clone()],
            Write::append(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'colour'"), "{err}");
    // NULL in a required column.
    let null_id = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![None])),
            Arc::new(StringArray::from(vec!["b"])),
            Arc::new(Float64Array::from(vec![1.0])),
        ],
    )
    .unwrap();
    let err = wh
        .write(&t, null_id.schema(), vec![null_id], Write::append())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("'id'") && err.to_string().contains("NULL"),
        "{err}"
    );
    // Nothing was committed by the refused writes.
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.row_count(), 1);

    // With schema evolution allowed, the new column is added and old rows read NULL.
    wh.write(
        &t,
        extra_schema,
        vec![extra],
        Write::append().schema_policy(lakehouse::storage::SchemaPolicy::AddColumns),
    )
    .await
    .unwrap();
    let batches = wh.scan(&t, AsOf::Latest).await.unwrap();
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 2);
    let colours: Vec<Option<String>> = batches
        .iter()
        .flat_map(|b| {
            let c =
                arrow::compute::cast(b.column_by_name("colour").unwrap(), &DataType::Utf8).unwrap();
            let c = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..c.len())
                .map(move |i| (!c.is_null(i)).then(|| c.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut colours = colours;
    colours.sort();
    assert_eq!(colours, vec![None, Some("red".to_string())]);

    // A replace keyed on the new column reads the older file (which has no
    // such column: NULL there) without error and deletes only the new row.
    let o = wh
        .write(
            &t,
            schema(),
            vec![],
            Write::replace(vec![text_keys("colour", StringArray::from(vec!["red"]))]),
        )
        .await
        .unwrap();
    assert_eq!(o.removed_rows, 1);
    assert_eq!(wh.load_table(&t).await.unwrap().row_count(), 1);
}

async fn corrupt_metadata_names_the_file(wh: Warehouse) {
    use object_store::ObjectStoreExt;
    let t = TableName::parse("dar.broken").unwrap();
    wh.write(
        &t,
        schema(),
        vec![batch(&[(1, Some("a"), 1.0)])],
        Write::append(),
    )
    .await
    .unwrap();
    let path = wh.url().store_path("dar/broken/metadata/v2.metadata.json");
    wh.store()
        .put(&path, bytes::Bytes::from_static(b"{ not json").into())
        .await
        .unwrap();
    let err = wh.load_table(&t).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("v2.metadata.json"), "{err}");
    // A write refuses too, and commits nothing.
    let err = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(2, Some("b"), 2.0)])],
            Write::append(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("v2.metadata.json"), "{err}");
    assert_eq!(wh.latest_version(&t).await.unwrap(), Some(2));
}

async fn create_only_put_refuses_the_second_writer(wh: Warehouse) {
    use object_store::{PutMode, PutOptions};
    let path = wh.url().store_path("das/race/metadata/v1.metadata.json");
    let opts = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    wh.store()
        .put_opts(&path, bytes::Bytes::from_static(b"first").into(), opts())
        .await
        .unwrap();
    let err = wh
        .store()
        .put_opts(&path, bytes::Bytes::from_static(b"second").into(), opts())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        ),
        "{err}"
    );
    use object_store::ObjectStoreExt;
    let kept = wh.store().get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&kept[..], b"first");
}

async fn catalog_listing_and_drop(wh: Warehouse) {
    for name in ["das.a", "das.b", "dab.c"] {
        let t = TableName::parse(name).unwrap();
        wh.write(
            &t,
            schema(),
            vec![batch(&[(1, Some("a"), 1.0)])],
            Write::append(),
        )
        .await
        .unwrap();
    }
    assert_eq!(wh.list_namespaces().await.unwrap(), vec!["dab", "das"]);
    let all: Vec<String> = wh
        .list_all_tables()
        .await
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(all, vec!["dab.c", "das.a", "das.b"]);
    let err = wh
        .create_table(&TableName::parse("das.a").unwrap(), &schema())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    wh.drop_table(&TableName::parse("das.a").unwrap())
        .await
        .unwrap();
    let all: Vec<String> = wh
        .list_all_tables()
        .await
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(all, vec!["dab.c", "das.b"]);
    // Loading many tables at once skips the dropped one and filters by name.
    let loaded = wh.load_all_tables(|t| t.namespace == "das").await.unwrap();
    let names: Vec<String> = loaded.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, vec!["das.b"]);
    assert_eq!(loaded[0].row_count(), 1);
    let err = wh
        .load_table(&TableName::parse("das.a").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // SQL over registered tables.
    let ctx = datafusion::prelude::SessionContext::new();
    wh.register_all(&ctx).await.unwrap();
    let out = ctx
        .sql("SELECT count(*) AS n FROM das.b")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = out[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 1);
}

/// Merge-on-read: replaced rows get position deletes, data files are never
/// rewritten, and every reader (ours, time travel) sees the live rows.
async fn merge_on_read_replace(wh: Warehouse) {
    let t = TableName::parse("dar.items").unwrap();
    let first = [
        (1, Some("a"), 1.0),
        (2, Some("b"), 2.0),
        (3, Some("c"), 3.0),
        (4, None, 4.0),
    ];
    wh.write(&t, schema(), vec![batch(&first)], Write::append())
        .await
        .unwrap();
    let files_before: BTreeSet<String> = live_data_files(&wh.load_table(&t).await.unwrap())
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().to_string())
        .collect();

    // merge: keys of the new rows (2 and 9) replace the old rows.
    let o = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(2, Some("b2"), 20.0), (9, Some("z"), 9.0)])],
            Write::merge(["id"]),
        )
        .await
        .unwrap();
    assert_eq!((o.added_rows, o.removed_rows), (2, 1));
    let after_merge = [
        (1, Some("a"), 1.0),
        (2, Some("b2"), 20.0),
        (3, Some("c"), 3.0),
        (4, None, 4.0),
        (9, Some("z"), 9.0),
    ];
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&after_merge));
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(loaded.row_count(), 5);
    let props = loaded.current_properties();
    assert_eq!(props["total-records"], "6");
    assert_eq!(props["total-position-deletes"], "1");
    assert_eq!(props["total-delete-files"], "1");
    let files_after: BTreeSet<String> = live_data_files(&loaded)
        .await
        .unwrap()
        .iter()
        .filter(|f| f.content_type() == iceberg::spec::DataContentType::Data)
        .map(|f| f.file_path().to_string())
        .collect();
    assert!(
        files_before.is_subset(&files_after),
        "no data file was rewritten"
    );

    // replace by explicit key tuples: delete names "a" and "b2" (and "b",
    // already deleted: not counted again), insert one row.
    let names = text_keys(
        "name",
        StringArray::from(vec![Some("a"), Some("b2"), Some("b"), None]),
    );
    let o = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(7, Some("new"), 7.0)])],
            Write::replace(vec![names]),
        )
        .await
        .unwrap();
    assert_eq!((o.added_rows, o.removed_rows), (1, 2), "NULL never matches");
    let after_replace = [
        (3, Some("c"), 3.0),
        (4, None, 4.0),
        (7, Some("new"), 7.0),
        (9, Some("z"), 9.0),
    ];
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&after_replace));
    let loaded = wh.load_table(&t).await.unwrap();
    assert_eq!(loaded.row_count(), 4);
    let history = loaded.history();
    assert_eq!(
        history.iter().map(|h| h.total_records).collect::<Vec<_>>(),
        [Some(4), Some(5), Some(4)]
    );
    // Time travel sees the deletes of its own snapshot only.
    assert_eq!(
        rows(&wh, &t, AsOf::Snapshot(history[1].snapshot_id)).await,
        owned(&after_merge)
    );

    // Copy-on-write upsert refuses a table with position deletes, naming it.
    let err = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(3, None, 0.0)])],
            Write::upsert(["id"]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("position deletes"), "{err}");
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, owned(&after_replace));

    // A key column missing from the batch is refused before anything is written.
    let err = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(5, None, 0.0)])],
            Write::merge(["nope"]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'nope'"), "{err}");
    let unknown = text_keys("nope", StringArray::from(vec!["a"]));
    let err = wh
        .write(&t, schema(), vec![], Write::replace(vec![unknown]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'nope' is not a column"), "{err}");

    // Overwrite drops data and delete files alike.
    let o = wh
        .write(
            &t,
            schema(),
            vec![batch(&[(1, Some("x"), 1.0)])],
            Write::overwrite(),
        )
        .await
        .unwrap();
    assert_eq!(o.removed_rows, 4, "the live rows");
    let loaded = wh.load_table(&t).await.unwrap();
    let props = loaded.current_properties();
    assert_eq!(
        (
            props["total-records"].as_str(),
            props["total-delete-files"].as_str(),
            props["total-position-deletes"].as_str()
        ),
        ("1", "0", "0")
    );
    assert_eq!(
        rows(&wh, &t, AsOf::Latest).await,
        owned(&[(1, Some("x"), 1.0)])
    );
}

/// Day `day` of a table growing by appends and replaces: two rows, one
/// named "old" (returned).
async fn append_day(
    wh: &Warehouse,
    t: &TableName,
    day: i64,
) -> [(i64, Option<&'static str>, f64); 2] {
    let new = [
        (10 * day, Some("old"), 1.0),
        (10 * day + 1, Some("keep"), 2.0),
    ];
    wh.write(t, schema(), vec![batch(&new)], Write::append())
        .await
        .unwrap();
    new
}

/// Replace the rows named "old" (one per earlier [`append_day`]) by a row
/// that is not named "old", so each replace deletes exactly one row.
async fn replace_old(wh: &Warehouse, t: &TableName, day: i64) -> CommitOutcome {
    wh.write(
        t,
        schema(),
        vec![batch(&[(10 * day + 5, Some("new"), 3.0)])],
        Write::replace(vec![text_keys("name", StringArray::from(vec!["old"]))]),
    )
    .await
    .unwrap()
}

/// Appends and replaces merge the manifests they keep: the table keeps one
/// data and one delete manifest however many commits it sees, the merged
/// entries keep their sequence numbers (a position delete still hides the
/// row it deleted in an older file, and only that row), and every older
/// snapshot still reads its own rows.
async fn appends_and_replaces_merge_manifests(wh: Warehouse) {
    use iceberg::spec::ManifestContentType;
    let t = TableName::parse("dar.merged").unwrap();
    let manifests = |loaded: &lakehouse::storage::LoadedTable| {
        let table = loaded.table.clone();
        async move {
            let current = table.metadata().current_snapshot().unwrap().clone();
            let list = table.manifest_list_reader(&current).load().await.unwrap();
            let count =
                |c: ManifestContentType| list.entries().iter().filter(|m| m.content == c).count();
            (
                count(ManifestContentType::Data),
                count(ManifestContentType::Deletes),
            )
        }
    };
    let mut expected: Vec<(i64, Option<&str>, f64)> = Vec::new();
    let mut history: Vec<Vec<(i64, Option<&str>, f64)>> = Vec::new();
    for day in 0..4i64 {
        expected.extend(append_day(&wh, &t, day).await);
        history.push(expected.clone());
        let o = replace_old(&wh, &t, day).await;
        assert_eq!((o.added_rows, o.removed_rows), (1, 1), "day {day}");
        expected.retain(|r| r.1 != Some("old"));
        expected.push((10 * day + 5, Some("new"), 3.0));
        history.push(expected.clone());
        let loaded = wh.load_table(&t).await.unwrap();
        assert_eq!(manifests(&loaded).await, (1, 1), "day {day}");
        assert_eq!(
            rows(&wh, &t, AsOf::Latest).await,
            owned(&expected),
            "day {day}"
        );
    }
    let loaded = wh.load_table(&t).await.unwrap();
    let props = loaded.current_properties();
    assert_eq!(props["total-records"], "12");
    assert_eq!(props["total-position-deletes"], "4");
    assert_eq!(loaded.row_count(), 8);
    let snapshots = loaded.history();
    assert_eq!(snapshots.len(), history.len());
    for (h, want) in snapshots.iter().zip(&history) {
        assert_eq!(
            rows(&wh, &t, AsOf::Snapshot(h.snapshot_id)).await,
            owned(want),
            "snapshot {}",
            h.snapshot_id
        );
    }
}

/// The vendored iceberg reads the manifests and manifest lists it writes
/// without apache_avro's container reader (see vendor/iceberg/PATCHED.md).
/// The manifest list and every manifest of a table with data and delete
/// manifests read the same through that fast path as through apache_avro's
/// reader, and a manifest re-encoded with another codec (which the fast
/// path leaves to apache_avro) gives the same manifest again.
async fn manifests_read_alike_through_both_paths(wh: Warehouse) {
    use apache_avro::types::Value;
    use iceberg::spec::{Manifest, ManifestStatus};
    let t = TableName::parse("dar.avro_paths").unwrap();
    for day in 0..3i64 {
        append_day(&wh, &t, day).await;
        replace_old(&wh, &t, day).await;
    }
    let loaded = wh.load_table(&t).await.unwrap();
    let table = loaded.table.clone();
    let current = table.metadata().current_snapshot().unwrap().clone();
    let list = table.manifest_list_reader(&current).load().await.unwrap();
    assert_eq!(list.entries().len(), 2, "one data and one delete manifest");
    // The manifest list reads the same through apache_avro's reader.
    let list_bytes = table
        .file_io()
        .new_input(current.manifest_list())
        .unwrap()
        .read()
        .await
        .unwrap();
    let listed: Vec<(String, i64)> = apache_avro::Reader::new(&list_bytes[..])
        .unwrap()
        .map(|v| {
            let v = v.unwrap();
            let Value::Record(fields) = v else {
                panic!("not a record")
            };
            let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
            match (get("manifest_path"), get("manifest_length")) {
                (Value::String(p), Value::Long(l)) => (p, l),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        listed,
        list.entries()
            .iter()
            .map(|m| (m.manifest_path.clone(), m.manifest_length))
            .collect::<Vec<_>>()
    );
    let field = |v: &Value, name: &str| -> Value {
        match v {
            Value::Record(fields) => fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no field {name}")),
            other => panic!("not a record: {other:?}"),
        }
    };
    let mut entries_seen = 0;
    for mf in list.entries() {
        let bytes = table
            .file_io()
            .new_input(&mf.manifest_path)
            .unwrap()
            .read()
            .await
            .unwrap();
        let fast = Manifest::parse_avro(&bytes).unwrap();
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        let writer_schema = reader.writer_schema().clone();
        let metadata = reader.user_metadata().clone();
        let values: Vec<Value> = reader.map(|v| v.unwrap()).collect();
        let slow: Vec<(i32, String, i64)> = values
            .iter()
            .map(|v| {
                let status = match field(v, "status") {
                    Value::Int(s) => s,
                    other => panic!("status {other:?}"),
                };
                let file = field(v, "data_file");
                let path = match field(&file, "file_path") {
                    Value::String(p) => p,
                    other => panic!("file_path {other:?}"),
                };
                let count = match field(&file, "record_count") {
                    Value::Long(c) => c,
                    other => panic!("record_count {other:?}"),
                };
                (status, path, count)
            })
            .collect();
        let of = |m: &Manifest| -> Vec<(i32, String, i64)> {
            m.entries()
                .iter()
                .map(|e| {
                    let status = match e.status() {
                        ManifestStatus::Existing => 0,
                        ManifestStatus::Added => 1,
                        ManifestStatus::Deleted => 2,
                    };
                    let f = e.data_file();
                    (status, f.file_path().to_string(), f.record_count() as i64)
                })
                .collect()
        };
        assert_eq!(of(&fast), slow, "{}", mf.manifest_path);
        assert!(!slow.is_empty());
        entries_seen += slow.len();
        // The same entries and metadata under the deflate codec.
        let mut writer = apache_avro::Writer::with_codec(
            &writer_schema,
            Vec::new(),
            apache_avro::Codec::Deflate(Default::default()),
        );
        for (k, v) in &metadata {
            writer.add_user_metadata(k.clone(), v).unwrap();
        }
        for v in values {
            writer.append(v).unwrap();
        }
        let deflated = writer.into_inner().unwrap();
        assert_ne!(deflated, bytes.to_vec());
        assert_eq!(Manifest::parse_avro(&deflated).unwrap(), fast);
    }
    // Three appends and three replaces: six data files (each write's new
    // rows) and three position delete files (one per replace).
    assert_eq!(entries_seen, 9);
}

/// Replace with a constant key part skips row groups by their statistics
/// and still finds every match (300,000 rows: three row groups).
async fn replace_prunes_row_groups_and_finds_every_match(wh: Warehouse) {
    let t = TableName::parse("dar.clustered").unwrap();
    let n = 300_000i64;
    let label = |i: i64| format!("g{}", i / 100_000);
    let ids: Vec<i64> = (0..n).collect();
    let names: Vec<String> = ids.iter().map(|&i| label(i)).collect();
    let prices: Vec<f64> = ids.iter().map(|&i| i as f64).collect();
    let all = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Float64Array::from(prices)),
        ],
    )
    .unwrap();
    wh.write(&t, schema(), vec![all], Write::append())
        .await
        .unwrap();
    // (name, id) tuples: two in g2 (rows in the 2nd and 3rd row groups),
    // one in g1, and one whose id exists only under another name.
    let tuples = |names: Vec<&str>, ids: Vec<i64>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("id", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(Int64Array::from(ids)),
            ],
        )
        .unwrap()
    };
    let keys = tuples(vec!["g2", "g2", "g2"], vec![200_001, 299_999, 5]);
    let g1 = tuples(vec!["g1"], vec![150_000]);
    // A constant id with varying names (the text column is probed as is):
    // only (250000, g2) exists.
    let by_name = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![250_000, 250_000, 250_000])),
            Arc::new(StringArray::from(vec![Some("g0"), Some("g2"), None])),
        ],
    )
    .unwrap();
    let o = wh
        .write(
            &t,
            schema(),
            vec![],
            Write::replace(vec![
                KeyMatch::Values(keys),
                KeyMatch::Values(g1),
                KeyMatch::Values(by_name),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(o.removed_rows, 4);
    let left = rows(&wh, &t, AsOf::Latest).await;
    assert_eq!(left.len() as i64, n - 4);
    let gone: Vec<i64> = [5i64, 150_000, 200_001, 250_000, 250_001, 299_999]
        .into_iter()
        .filter(|id| left.binary_search_by(|r| r.0.cmp(id)).is_err())
        .collect();
    assert_eq!(gone, [150_000, 200_001, 250_000, 299_999]);
}

/// A scan restricted to key values returns exactly the rows holding one of
/// them (text or integer key, projected with or without the key column,
/// NULLs never matching, position-deleted rows never returned), and the
/// values reach the Iceberg scan as its row filter.
async fn restricted_scans_return_exactly_the_matching_rows(wh: Warehouse) {
    use datafusion::catalog::TableProvider;
    use datafusion::common::ScalarValue;
    use datafusion::datasource::provider_as_source;
    use datafusion::logical_expr::LogicalPlanBuilder;
    use lakehouse::storage::restrict::RestrictedTable;

    let t = TableName::new("das", "restricted").unwrap();
    // Two files; ids 0..3000, names "n<id % 700>" (NULL for id % 7 == 0).
    let make = |ids: std::ops::Range<i64>| -> Vec<RecordBatch> {
        let rows: Vec<(i64, Option<String>, f64)> = ids
            .map(|i| (i, (i % 7 != 0).then(|| format!("n{}", i % 700)), i as f64))
            .collect();
        let refs: Vec<(i64, Option<&str>, f64)> =
            rows.iter().map(|r| (r.0, r.1.as_deref(), r.2)).collect();
        vec![batch(&refs)]
    };
    wh.write(&t, schema(), make(0..2000), Write::append())
        .await
        .unwrap();
    wh.write(&t, schema(), make(2000..3000), Write::append())
        .await
        .unwrap();
    // Delete id 1 (in the first file) with a position delete.
    let gone = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1i64]))],
    )
    .unwrap();
    wh.write(
        &t,
        schema(),
        vec![],
        Write::replace(vec![KeyMatch::Values(gone)]),
    )
    .await
    .unwrap();
    let table = wh.load_table(&t).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let scan = |column: &str, values: Vec<ScalarValue>, projection: Option<Vec<usize>>| {
        let (column, table, ctx) = (column.to_string(), table.clone(), ctx.clone());
        async move {
            let provider = RestrictedTable::try_new(
                table.provider(AsOf::Latest).await.unwrap(),
                &column,
                values,
            )
            .unwrap();
            let source = provider_as_source(Arc::new(provider));
            let plan = LogicalPlanBuilder::scan("r", source, projection)
                .unwrap()
                .build()
                .unwrap();
            ctx.execute_logical_plan(plan)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        }
    };
    let ids = sorted_ids;

    // Integer key, across both files; 1 is deleted, 5000 absent; NULL dropped.
    let by_id = scan(
        "id",
        vec![
            ScalarValue::Int64(Some(1)),
            ScalarValue::Int64(Some(2)),
            ScalarValue::Int64(Some(1999)),
            ScalarValue::Int64(Some(2500)),
            ScalarValue::Int64(Some(5000)),
            ScalarValue::Int64(None),
        ],
        None,
    )
    .await;
    assert_eq!(ids(&by_id), [2, 1999, 2500]);
    assert_eq!(by_id[0].num_columns(), 3);
    // Text comes back as the table's `Utf8`, though a filtered scan decodes
    // it as views (vendor/iceberg/PATCHED.md).
    for b in &by_id {
        assert_eq!(b.schema().field(1).data_type(), &DataType::Utf8);
        assert_eq!(b.column(1).data_type(), &DataType::Utf8);
    }
    let text: Vec<Option<&str>> = by_id
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
        })
        .collect();
    let mut text: Vec<Option<String>> = text.into_iter().map(|t| t.map(str::to_string)).collect();
    text.sort();
    // Names are `n<id % 700>`.
    assert_eq!(
        text,
        [
            Some("n2".to_string()),
            Some("n400".to_string()),
            Some("n599".to_string())
        ]
    );

    // Text key, more values than any IN list the optimizer would see, and
    // the key column not projected: only `id` comes back.
    let mut names: Vec<ScalarValue> = (0..500)
        .map(|i| ScalarValue::Utf8(Some(format!("n{}", 3 * i + 1000))))
        .collect();
    names.push(ScalarValue::Utf8(Some("n3".into())));
    names.push(ScalarValue::Utf8(Some("n14".into()))); // only NULL rows (id % 7 == 0)
    let by_name = scan("name", names, Some(vec![0])).await;
    assert!(by_name.iter().all(|b| b.num_columns() == 1));
    let expected: Vec<i64> = (0..3000)
        .filter(|i| i % 7 != 0 && *i != 1 && i % 700 == 3)
        .collect();
    assert_eq!(ids(&by_name), expected);
    assert_eq!(expected.len(), 5);

    // No value: no row, the projected schema kept.
    let none = scan("name", vec![], Some(vec![0, 2])).await;
    assert_eq!(ids(&none), Vec::<i64>::new());

    // A missing column is refused, naming it.
    let err = RestrictedTable::try_new(
        table.provider(AsOf::Latest).await.unwrap(),
        "nope",
        vec![ScalarValue::Int64(Some(1))],
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    // The restriction is the Iceberg scan's row filter.
    let provider = RestrictedTable::try_new(
        table.provider(AsOf::Latest).await.unwrap(),
        "id",
        vec![ScalarValue::Int64(Some(2))],
    )
    .unwrap();
    let plan = provider.scan(&ctx.state(), None, &[], None).await.unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert!(shown.contains("predicate:[id IN (2)]"), "{shown}");

    // The Iceberg scan alone (under the re-check) already returns exactly
    // the matching rows: its row filter probes the values in a hash set.
    let names: Vec<ScalarValue> = ["n3", "n10", "n699"]
        .iter()
        .map(|n| ScalarValue::Utf8(Some(n.to_string())))
        .collect();
    for (column, values, expected) in [
        (
            "name",
            names,
            (0..3000)
                .filter(|i| i % 7 != 0 && *i != 1 && [3, 10, 699].contains(&(i % 700)))
                .collect::<Vec<i64>>(),
        ),
        (
            "id",
            vec![
                ScalarValue::Int64(Some(0)),
                ScalarValue::Int64(Some(1)),
                ScalarValue::Int64(Some(2999)),
            ],
            vec![0, 2999],
        ),
    ] {
        let provider =
            RestrictedTable::try_new(table.provider(AsOf::Latest).await.unwrap(), column, values)
                .unwrap();
        let plan = provider.scan(&ctx.state(), None, &[], None).await.unwrap();
        let iceberg = plan.children()[0].clone();
        assert!(iceberg.name().contains("Iceberg"), "{}", iceberg.name());
        let batches = datafusion::physical_plan::collect(iceberg, ctx.task_ctx())
            .await
            .unwrap();
        assert_eq!(ids(&batches), expected, "restricted on {column}");
    }
}

/// A table written sorted by a text column (pages of 1,024 rows with min/max
/// statistics) is stored in that order, and scans restricted to hundreds of
/// its values and replaces of its keys skip pages by those statistics yet
/// find every match: keys on both sides of page boundaries, absent keys,
/// NULLs never matching.
async fn sorted_tables_skip_pages_and_find_every_match(wh: Warehouse) {
    use datafusion::common::ScalarValue;
    use lakehouse::storage::restrict::RestrictedTable;

    let t = TableName::parse("dar.sorted").unwrap();
    let n = 10_000i64;
    let name = |i: i64| (i % 997 != 0).then(|| format!("k{i:05}"));
    // Written in reverse order: the write sorts.
    let data: Vec<(i64, Option<String>, f64)> =
        (0..n).rev().map(|i| (i, name(i), i as f64)).collect();
    let refs: Vec<(i64, Option<&str>, f64)> =
        data.iter().map(|r| (r.0, r.1.as_deref(), r.2)).collect();
    wh.write(
        &t,
        schema(),
        vec![batch(&refs)],
        Write::append().sorted_by(["name"]),
    )
    .await
    .unwrap();
    // Stored sorted: the 11 NULL names first, then ascending names.
    let stored: Vec<Option<String>> = wh
        .scan(&t, AsOf::Latest)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("name").unwrap();
            let c = arrow::compute::cast(c, &DataType::Utf8).unwrap();
            let c = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..c.len())
                .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut expected: Vec<Option<String>> = (0..n).map(name).collect();
    expected.sort();
    assert_eq!(stored.len() as i64, n);
    assert_eq!(stored, expected);

    // A restricted scan with 280 values (more than the 200 up to which
    // Iceberg tests each literal against each page).
    let mut wanted: Vec<i64> = (0..n).step_by(37).collect();
    let mut values: Vec<ScalarValue> = wanted
        .iter()
        .map(|&i| ScalarValue::Utf8(Some(format!("k{i:05}"))))
        .collect();
    values.push(ScalarValue::Utf8(Some("k99999".into())));
    values.push(ScalarValue::Utf8(Some("a".into())));
    assert!(values.len() > 200);
    wanted.retain(|i| name(*i).is_some());
    let table = wh.load_table(&t).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let provider =
        RestrictedTable::try_new(table.provider(AsOf::Latest).await.unwrap(), "name", values)
            .unwrap();
    let plan = datafusion::catalog::TableProvider::scan(&provider, &ctx.state(), None, &[], None)
        .await
        .unwrap();
    let iceberg = plan.children()[0].clone();
    let batches = datafusion::physical_plan::collect(iceberg, ctx.task_ctx())
        .await
        .unwrap();
    assert_eq!(sorted_ids(&batches), wanted);

    // Replace keys around page boundaries (sorted positions 1,023/1,024 and
    // 2,047/2,048 hold ids 1,014/1,015 and 2,039/2,040, after the 11 NULLs
    // and with ids 997 and 1,994 NULL), one absent key, and every third id
    // from 6,000 on (1,334 keys).
    let mut gone: Vec<i64> = vec![1, 1014, 1015, 2039, 2040, 5000, 9999];
    gone.extend((6000..n).step_by(3));
    let mut keys: Vec<Option<String>> = gone.iter().map(|&i| name(i)).collect();
    keys.push(Some("k99999".into()));
    let keys = text_keys("name", StringArray::from(keys));
    gone.retain(|i| name(*i).is_some());
    gone.sort();
    gone.dedup();
    replace_leaves(
        &wh,
        &t,
        keys,
        gone.len(),
        (0..n).filter(|i| gone.binary_search(i).is_err()),
    )
    .await;
}

/// Many new rows are written as one file per core (at least 24,576 rows
/// each: 60,000 rows make two), each a contiguous run of the sorted rows,
/// and a replace finds keys in all of them.
async fn large_writes_split_into_sorted_files(wh: Warehouse) {
    let t = TableName::parse("dar.split").unwrap();
    let n = 60_000i64;
    let data: Vec<(i64, String, f64)> = (0..n)
        .rev()
        .map(|i| (i, format!("k{i:05}"), i as f64))
        .collect();
    // Several batches, written in reverse order: the write sorts.
    let batches: Vec<RecordBatch> = data
        .chunks(7_000)
        .map(|c| {
            let refs: Vec<(i64, Option<&str>, f64)> =
                c.iter().map(|r| (r.0, Some(r.1.as_str()), r.2)).collect();
            batch(&refs)
        })
        .collect();
    wh.write(&t, schema(), batches, Write::append().sorted_by(["name"]))
        .await
        .unwrap();
    let table = wh.load_table(&t).await.unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let files = live_data_files(&table).await.unwrap();
    assert_eq!(
        files.len(),
        cores.min(2),
        "one file per core, 24,576 rows or more each"
    );
    let field = table
        .metadata()
        .current_schema()
        .field_by_name("name")
        .unwrap()
        .id;
    let bounds = |f: &iceberg::spec::DataFile| {
        let text = |d: &iceberg::spec::Datum| d.to_string().trim_matches('"').to_string();
        (
            text(&f.lower_bounds()[&field]),
            text(&f.upper_bounds()[&field]),
        )
    };
    let mut runs: Vec<(String, String, u64)> = files
        .iter()
        .map(|f| {
            let (lo, hi) = bounds(f);
            (lo, hi, f.record_count())
        })
        .collect();
    runs.sort();
    assert_eq!(runs.iter().map(|r| r.2).sum::<u64>(), n as u64);
    if runs.len() == 2 {
        assert_eq!(
            runs,
            vec![
                ("k00000".into(), "k29999".into(), 30_000),
                ("k30000".into(), "k59999".into(), 30_000)
            ]
        );
    }
    // Every 7th id goes, in both files.
    let gone: Vec<i64> = (0..n).step_by(7).collect();
    let keys = text_keys(
        "name",
        StringArray::from(gone.iter().map(|i| format!("k{i:05}")).collect::<Vec<_>>()),
    );
    replace_leaves(&wh, &t, keys, gone.len(), (0..n).filter(|i| i % 7 != 0)).await;
}

/// A replace keyed on a constant text column and a varying one (the
/// unified bridge's peripheral and PIT hook) skips decoding the constant
/// only where page statistics prove it (min = max = the value, no NULL):
/// on a page shared with another value, or holding a NULL, it is tested.
async fn proven_constant_columns_are_not_decoded_elsewhere_tested(wh: Warehouse) {
    let t = TableName::parse("dar.peripherals").unwrap();
    let pair_schema = Arc::new(Schema::new(vec![
        Field::new("peripheral", DataType::Utf8, true),
        Field::new("pit", DataType::Utf8, false),
    ]));
    let mut rows: Vec<(Option<String>, String)> = (0..60_000)
        .map(|i| {
            let p = ["pa", "pb", "pc"][i / 20_000];
            (Some(p.to_string()), format!("k{i:06}"))
        })
        .collect();
    // The same PIT under pa (last of pa: on the page shared with pb) and
    // under pb (mid-pb: a page of pb only); a NULL peripheral (first, on
    // pa's first page) with a PIT pc also has.
    rows.push((Some("pa".into()), "k030000a".into()));
    rows.push((Some("pb".into()), "k030000a".into()));
    rows.push((None, "k050000".into()));
    let batch = |rows: &[(Option<String>, String)]| {
        RecordBatch::try_new(
            Arc::clone(&pair_schema),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    };
    // Sorted: pages of 1,024 rows, each peripheral's run over whole pages
    // but where two meet.
    wh.write(
        &t,
        Arc::clone(&pair_schema),
        vec![batch(&rows)],
        Write::append().sorted_by(["peripheral", "pit"]),
    )
    .await
    .unwrap();
    let keys = |p: &str, pits: &[&str]| {
        KeyMatch::Values(batch(
            &pits
                .iter()
                .map(|k| (Some(p.to_string()), k.to_string()))
                .collect::<Vec<_>>(),
        ))
    };
    let o = wh
        .write(
            &t,
            Arc::clone(&pair_schema),
            vec![],
            Write::replace(vec![
                keys("pa", &["k000000", "k050000"]),
                keys("pb", &["k030000a", "k020000"]),
                keys("pc", &["k059999"]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(o.removed_rows, 4);
    let mut left: Vec<(Option<String>, String)> = wh
        .scan(&t, AsOf::Latest)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let text = |c: &str| {
                let a =
                    arrow::compute::cast(b.column_by_name(c).unwrap(), &DataType::Utf8).unwrap();
                let a = a.as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                    .collect::<Vec<_>>()
            };
            text("peripheral")
                .into_iter()
                .zip(text("pit").into_iter().map(Option::unwrap))
                .collect::<Vec<_>>()
        })
        .collect();
    left.sort();
    let mut expected = rows.clone();
    expected.retain(|r| {
        !matches!(
            (r.0.as_deref(), r.1.as_str()),
            (Some("pa"), "k000000")
                | (Some("pb"), "k030000a")
                | (Some("pb"), "k020000")
                | (Some("pc"), "k059999")
        )
    });
    expected.sort();
    assert_eq!(left.len(), 59_999);
    assert_eq!(left, expected);
}

/// Each data file records how many NaNs each float column holds, counted
/// over every batch written to it (the vendored iceberg counts a flat
/// schema's float columns by position, see vendor/iceberg/PATCHED.md), and
/// nothing for other columns.
async fn nan_counts_cover_every_batch(wh: Warehouse) {
    let t = TableName::parse("dab.nan_counts").unwrap();
    let batches = vec![
        batch(&[
            (1, Some("a"), f64::NAN),
            (2, None, 1.0),
            (3, Some("c"), f64::NAN),
        ]),
        batch(&[(4, Some("d"), 2.0), (5, Some("e"), f64::NAN)]),
        batch(&[(6, Some("f"), 3.0)]),
    ];
    wh.write(&t, schema(), batches, Write::append())
        .await
        .unwrap();
    let table = wh.load_table(&t).await.unwrap();
    let price = table
        .metadata()
        .current_schema()
        .field_by_name("price")
        .unwrap()
        .id;
    let files = live_data_files(&table).await.unwrap();
    assert_eq!(files.len(), 1);
    let counts = files[0].nan_value_counts();
    assert_eq!(counts.len(), 1, "only the float column: {counts:?}");
    assert_eq!(counts[&price], 3);
    assert_eq!(files[0].record_count(), 6);
}

/// Every file under the table's `data/` folder.
async fn data_files_on_storage(wh: &Warehouse, t: &TableName) -> BTreeSet<String> {
    use futures::TryStreamExt;
    let table = wh.load_table(t).await.unwrap();
    let prefix = wh
        .url()
        .location_to_path(&format!("{}/data", table.metadata().location()))
        .unwrap();
    wh.store()
        .list(Some(&prefix))
        .map_ok(|m| m.location.filename().unwrap_or_default().to_string())
        .try_collect()
        .await
        .unwrap()
}

/// `n` batches of `rows` ids each, ascending from `from`, named `k<id>`.
fn sorted_batches(from: i64, n: i64, rows: i64) -> Vec<RecordBatch> {
    (0..n)
        .map(|b| {
            let ids: Vec<(i64, String, f64)> = (0..rows)
                .map(|r| {
                    let id = from + b * rows + r;
                    (id, format!("k{id:06}"), id as f64)
                })
                .collect();
            let refs: Vec<(i64, Option<&str>, f64)> =
                ids.iter().map(|r| (r.0, Some(r.1.as_str()), r.2)).collect();
            batch(&refs)
        })
        .collect()
}

async fn streamed_writes_roll_files_and_a_failed_stream_leaves_nothing_visible(wh: Warehouse) {
    use futures::StreamExt;
    let t = TableName::parse("dar.streamed").unwrap();
    // 60,000 rows arriving sorted, in 30 batches, into files of ~64 KiB.
    let parts =
        vec![futures::stream::iter(sorted_batches(0, 30, 2_000).into_iter().map(Ok)).boxed()];
    let outcome = wh
        .write_stream(
            &t,
            schema(),
            parts,
            Write::overwrite()
                .sorted_by(["name"])
                .target_file_size(64 * 1024),
        )
        .await
        .unwrap();
    assert_eq!(outcome.added_rows, 60_000);
    let table = wh.load_table(&t).await.unwrap();
    let files = live_data_files(&table).await.unwrap();
    assert!(
        files.len() > 4,
        "rolled over into many files: {}",
        files.len()
    );
    assert_eq!(files.iter().map(|f| f.record_count()).sum::<u64>(), 60_000);
    let ids: Vec<i64> = rows(&wh, &t, AsOf::Latest)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(ids, (0..60_000).collect::<Vec<_>>());

    // A merge whose keys come from the streamed rows: ids 59,000.. are
    // replaced (new prices), 60,000..61,000 added.
    let mut merged = sorted_batches(59_000, 1, 2_000);
    merged[0] = RecordBatch::try_new(
        schema(),
        vec![
            merged[0].column(0).clone(),
            merged[0].column(1).clone(),
            Arc::new(Float64Array::from(vec![-1.0; 2_000])),
        ],
    )
    .unwrap();
    let outcome = wh
        .write_stream(
            &t,
            schema(),
            vec![futures::stream::iter(merged.into_iter().map(Ok)).boxed()],
            Write::merge(["name"]).sorted_by(["name"]),
        )
        .await
        .unwrap();
    assert_eq!((outcome.added_rows, outcome.removed_rows), (2_000, 1_000));
    let after = rows(&wh, &t, AsOf::Latest).await;
    assert_eq!(after.len(), 61_000);
    assert!(after.iter().all(|r| (r.2 == -1.0) == (r.0 >= 59_000)));
    let version = wh.load_table(&t).await.unwrap().version;
    let live: BTreeSet<String> = live_data_files(&wh.load_table(&t).await.unwrap())
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().rsplit('/').next().unwrap().to_string())
        .collect();
    let on_storage = data_files_on_storage(&wh, &t).await;

    // A stream that fails after 20 batches (files already rolled over):
    // the write fails with the stream's error and nothing becomes visible.
    let failing = futures::stream::iter(sorted_batches(100_000, 20, 2_000).into_iter().map(Ok))
        .chain(futures::stream::once(async {
            Err(lakehouse::Error::internal(
                "the source went away mid-stream",
            ))
        }))
        .boxed();
    let err = wh
        .write_stream(
            &t,
            schema(),
            vec![failing],
            Write::append().target_file_size(64 * 1024),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("went away mid-stream"), "{err}");
    let table = wh.load_table(&t).await.unwrap();
    assert_eq!(table.version, version, "no new version");
    assert_eq!(rows(&wh, &t, AsOf::Latest).await, after, "no row visible");
    let live_now: BTreeSet<String> = live_data_files(&table)
        .await
        .unwrap()
        .iter()
        .map(|f| f.file_path().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(live_now, live, "no partial file referenced");
    let orphans: Vec<String> = data_files_on_storage(&wh, &t)
        .await
        .difference(&on_storage)
        .cloned()
        .collect();
    assert!(
        !orphans.is_empty() && orphans.iter().all(|f| !live_now.contains(f)),
        "the failed stream's files stay unreferenced: {orphans:?}"
    );
    // The re-run converges; its files roll over at the warehouse's size.
    let before = live_now.len();
    wh.clone()
        .with_target_file_size(64 * 1024)
        .write_stream(
            &t,
            schema(),
            vec![
                futures::stream::iter(sorted_batches(100_000, 20, 2_000).into_iter().map(Ok))
                    .boxed(),
            ],
            Write::append(),
        )
        .await
        .unwrap();
    assert_eq!(rows(&wh, &t, AsOf::Latest).await.len(), 101_000);
    let table = wh.load_table(&t).await.unwrap();
    assert!(live_data_files(&table).await.unwrap().len() > before + 2);
}

/// The rows a commit added, read back for a reader that follows the table
/// commit by commit: from the writer's memory when it kept them, else
/// lazily from the added data files (several, each read by DataFusion), with
/// the same rows either way; nothing when the current snapshot does not
/// directly follow the one given.
async fn rows_added_by_a_commit_are_read_from_memory_or_files(wh: Warehouse) {
    use lakehouse::storage::added::{AddedRows, rows_added_since};
    let t = TableName::parse("dar.followed").unwrap();
    let first: Vec<(i64, Option<String>, f64)> = (0..3_000)
        .map(|i| (i, Some(format!("n{i}")), i as f64))
        .collect();
    let first_rows: Vec<(i64, Option<&str>, f64)> = first
        .iter()
        .map(|(i, n, p)| (*i, n.as_deref(), *p))
        .collect();
    let base = wh
        .write(&t, schema(), vec![batch(&first_rows)], Write::overwrite())
        .await
        .unwrap()
        .snapshot_id
        .unwrap();
    // A replace of ids 0..20 by new versions, plus new ids, in small files.
    let new_rows: Vec<(i64, Option<String>, f64)> = (0..20)
        .chain(5_000..5_500)
        .map(|i| (i, Some(format!("v2-{i}")), i as f64 * 2.0))
        .collect();
    let new_ref: Vec<(i64, Option<&str>, f64)> = new_rows
        .iter()
        .map(|(i, n, p)| (*i, n.as_deref(), *p))
        .collect();
    let keys = KeyMatch::Values(
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from((0..20).collect::<Vec<i64>>()))],
        )
        .unwrap(),
    );
    let write = |keep: bool| {
        let w = Write::replace(vec![keys.clone()]).target_file_size(1024);
        if keep { w.keep_added() } else { w }
    };
    let batches = || new_ref.chunks(50).map(batch).collect::<Vec<_>>();
    let second = wh
        .write(&t, schema(), batches(), write(false))
        .await
        .unwrap()
        .snapshot_id
        .unwrap();
    let table = wh.load_table(&t).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let read = |added: AddedRows| {
        let ctx = ctx.clone();
        let wh = wh.clone();
        async move {
            let plan = added.plan(&ctx, &wh, "dar.followed", schema()).unwrap();
            let batches = ctx
                .execute_logical_plan(plan)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            sorted_ids(&batches)
        }
    };
    let mut want: Vec<i64> = new_rows.iter().map(|r| r.0).collect();
    want.sort();
    // Not kept by the writer: the added files, more than one.
    let added = rows_added_since(&wh, &table, base).await.unwrap().unwrap();
    match &added {
        AddedRows::Files(files) => assert!(files.len() > 1, "small files: {files:?}"),
        AddedRows::Kept(_) => panic!("rows kept without keep_added"),
    }
    assert_eq!(read(added).await, want);
    // The current snapshot itself: nothing added since.
    let none = rows_added_since(&wh, &table, second)
        .await
        .unwrap()
        .unwrap();
    assert!(read(none).await.is_empty());
    // Kept by the writer: the same rows, from memory.
    let third = wh
        .write(&t, schema(), batches(), write(true))
        .await
        .unwrap()
        .snapshot_id
        .unwrap();
    let table = wh.load_table(&t).await.unwrap();
    let kept = rows_added_since(&wh, &table, second)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(kept, AddedRows::Kept(_)), "kept in memory");
    assert_eq!(read(kept).await, want);
    // Two commits behind: unknown, the table must be read instead.
    assert!(rows_added_since(&wh, &table, base).await.unwrap().is_none());
    assert_ne!(third, second);
}

/// Decimal columns are stored as fixed-length byte arrays, whose page
/// statistics iceberg's page-index evaluator cannot decode: a filter on one
/// reads every page (no pruning) instead of failing the scan.
async fn filters_on_decimal_columns_read_every_matching_row(wh: Warehouse) {
    use arrow::array::Decimal128Array;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Decimal128(19, 4), true),
    ]));
    let ids: Vec<i64> = (0..20_000).collect();
    let amounts: Decimal128Array = ids
        .iter()
        .map(|i| (i % 7 != 0).then_some(i128::from(*i) * 125))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(19, 4)
        .unwrap();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(amounts)],
    )
    .unwrap();
    let t = TableName::parse("das.prices").unwrap();
    wh.write(
        &t,
        schema,
        vec![batch],
        Write::append().sorted_by(["id".to_string()]),
    )
    .await
    .unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    wh.register_all(&ctx).await.unwrap();
    for (sql, want) in [
        (
            "SELECT count(*) FROM das.prices WHERE amount IS NOT NULL",
            "17142",
        ),
        (
            "SELECT count(*) FROM das.prices WHERE amount > 200.0000",
            "3427",
        ),
        (
            "SELECT CAST(sum(amount) AS VARCHAR) FROM das.prices WHERE amount IS NOT NULL",
            "2142642.8625",
        ),
    ] {
        let out = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let got = arrow::compute::cast(out[0].column(0), &DataType::Utf8).unwrap();
        let got = got
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string();
        assert_eq!(got, want, "{sql}");
    }
}

on_every_backend! {
    decimal_filters => super::filters_on_decimal_columns_read_every_matching_row,
    nan_counts => super::nan_counts_cover_every_batch,
    append_overwrite_upsert => super::append_overwrite_upsert_round_trip,
    snapshot_properties => super::snapshot_properties_commit_with_rows,
    concurrent_writers => super::eight_concurrent_writers,
    crash_safety => super::crash_before_pointer_leaves_previous_state,
    bad_schema => super::bad_batch_schema_is_refused_naming_the_column,
    corrupt_metadata => super::corrupt_metadata_names_the_file,
    catalog => super::catalog_listing_and_drop,
    create_only_put => super::create_only_put_refuses_the_second_writer,
    merge_on_read => super::merge_on_read_replace,
    merged_manifests => super::appends_and_replaces_merge_manifests,
    avro_paths => super::manifests_read_alike_through_both_paths,
    replace_row_groups => super::replace_prunes_row_groups_and_finds_every_match,
    restricted_scans => super::restricted_scans_return_exactly_the_matching_rows,
    sorted_tables => super::sorted_tables_skip_pages_and_find_every_match,
    large_writes => super::large_writes_split_into_sorted_files,
    proven_constants => super::proven_constant_columns_are_not_decoded_elsewhere_tested,
    streamed_writes => super::streamed_writes_roll_files_and_a_failed_stream_leaves_nothing_visible,
    added_rows => super::rows_added_by_a_commit_are_read_from_memory_or_files,
}
