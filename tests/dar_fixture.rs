//! DAR on a hand-written fixture: product categories -> subcategories ->
//! products, order headers -> order lines, with versions at known load
//! times. Every bridge row of one order line, its intersected validity and
//! every inherited PIT hook are asserted exactly; then its event rows and
//! measures, the peripherals' ghost records and the calendar.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use lakehouse::config::SourceConfig;
use lakehouse::model::Project;
use lakehouse::model::build::BuildMode;
use lakehouse::model::config::ModelConfig;
use lakehouse::model::measures::MeasureConfig;
use lakehouse::storage::{AsOf, TableName, Warehouse, Write};
use serde_json::{Value, json};

const ENTITIES: [&str; 5] = [
    "product_categories",
    "product_subcategories",
    "products",
    "sales_order_headers",
    "sales_order_details",
];

fn fixture_project() -> Project {
    let mut source = SourceConfig::adventure_works().unwrap();
    let mut model = ModelConfig::adventure_works().unwrap();
    let tables: Vec<String> = ENTITIES
        .iter()
        .map(|e| format!("raw__adventure_works__{e}"))
        .collect();
    source.resources.retain(|r| tables.contains(&r.table));
    model.frames.retain(|f| tables.contains(&f.source_table));
    assert_eq!(model.frames.len(), 5);
    Project::new(vec![source], model)
        .unwrap()
        .with_measures(MeasureConfig::adventure_works().unwrap())
        .unwrap()
}

async fn land(wh: &Warehouse, project: &Project, entity: &str, day: u32, rows: Vec<Value>) {
    let table = format!("raw__adventure_works__{entity}");
    let resource = project.resource_by_table(&table).unwrap();
    let schema = lakehouse::das::table_schema(resource);
    let mut text = String::new();
    for (i, mut r) in rows.into_iter().enumerate() {
        let o = r.as_object_mut().unwrap();
        o.insert("_load_id".into(), json!(format!("load-{day}")));
        o.insert(
            "_loaded_at".into(),
            json!(format!("2026-01-{day:02}T00:00:00Z")),
        );
        o.insert("_load_sequence".into(), json!(i));
        text.push_str(&r.to_string());
        text.push('\n');
    }
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .build(Cursor::new(text))
        .unwrap();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    wh.write(
        &TableName::new("das", table).unwrap(),
        schema,
        batches,
        Write::append(),
    )
    .await
    .unwrap();
}

/// Rows of a table as column -> text maps.
async fn rows(wh: &Warehouse, ns: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in wh
        .scan(&TableName::new(ns, name).unwrap(), AsOf::Latest)
        .await
        .unwrap()
    {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                b.schema()
                    .fields()
                    .iter()
                    .zip(&f)
                    .map(|(field, x)| (field.name().clone(), x.value(i).to_string()))
                    .collect(),
            );
        }
    }
    out
}

const V0: &str = "1970-01-01T00:00:00Z";

fn pit(keyset: &str, id: u32, from: &str) -> String {
    format!("{keyset}__adventure_works|{id}~epoch__valid_from|{from}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_rows_of_one_order_line_are_exact() {
    let project = fixture_project();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();

    // Day 1: everything; day 2: the category changes; day 3: the product
    // changes; day 4: the order line changes.
    let category =
        |name: &str| json!({"product_category_id": 1, "name": name, "modified_date": "2013-04-05"});
    let line = |qty: i64| {
        json!({"sales_order_id": 1000, "sales_order_detail_id": 5000, "order_qty": qty,
               "product_id": 100, "line_total": 10.5 * qty as f64, "modified_date": "2014-01-02"})
    };
    let product = |color: &str| json!({"product_id": 100, "name": "Bike", "color": color, "product_subcategory_id": 10, "modified_date": "2013-04-05"});
    land(
        &wh,
        &project,
        "product_categories",
        1,
        vec![category("Bikes")],
    )
    .await;
    land(
        &wh,
        &project,
        "product_subcategories",
        1,
        vec![json!({"product_subcategory_id": 10, "product_category_id": 1, "name": "Road", "modified_date": "2013-04-05"})],
    )
    .await;
    land(&wh, &project, "products", 1, vec![product("Red")]).await;
    land(
        &wh,
        &project,
        "sales_order_headers",
        1,
        vec![
            json!({"sales_order_id": 1000, "order_date": "2014-01-01", "due_date": "2014-01-10",
                   "ship_date": "2014-01-05", "modified_date": "2014-01-01", "customer_id": 7}),
            // The same customer's second order.
            json!({"sales_order_id": 1001, "order_date": "2014-02-01", "modified_date": "2014-02-01",
                   "customer_id": 7}),
        ],
    )
    .await;
    // Line 5001 has no product: its product PIT hooks stay NULL.
    land(
        &wh,
        &project,
        "sales_order_details",
        1,
        vec![
            line(1),
            json!({"sales_order_id": 1000, "sales_order_detail_id": 5001, "order_qty": 3,
                   "line_total": 1.0, "modified_date": "2014-01-01"}),
        ],
    )
    .await;
    land(
        &wh,
        &project,
        "product_categories",
        2,
        vec![category("Cycles")],
    )
    .await;
    land(&wh, &project, "products", 3, vec![product("Blue")]).await;
    land(&wh, &project, "sales_order_details", 4, vec![line(2)]).await;

    common::frames(&wh, &project, BuildMode::Full).await;
    let reports = common::dar(&wh, &project).await;
    assert_eq!(reports.len(), 5 * 3 + 2);

    let (t1, t2, t3, t4) = (
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
        "2026-01-03T00:00:00Z",
        "2026-01-04T00:00:00Z",
    );
    let _ = t1;
    let max = "9999-12-31T23:59:59Z";
    let bridge = rows(
        &wh,
        "dar__staging",
        "bridge__adventure_works__sales_order_details",
    )
    .await;
    let mut line_rows: Vec<_> = bridge
        .iter()
        .filter(|r| r["_hook__order_line__sales"] == "order_line__sales__adventure_works|5000")
        .cloned()
        .collect();
    line_rows.sort_by(|a, b| a["bridge__record_valid_from"].cmp(&b["bridge__record_valid_from"]));
    // (line version from, bridge from, bridge to, product version, category version)
    let expected = [
        (V0, V0, t2, V0, V0),
        (V0, t2, t3, V0, t2),
        (V0, t3, t4, t3, t2),
        (t4, t4, max, t3, t2),
    ];
    assert_eq!(line_rows.len(), expected.len(), "{line_rows:#?}");
    for (r, (line_from, from, to, product_from, category_from)) in line_rows.iter().zip(expected) {
        let own = pit("order_line__sales", 5000, line_from);
        assert_eq!(r["peripheral"], "adventure_works__sales_order_details");
        assert_eq!(r["_pit_hook__order_line__sales"], own);
        assert_eq!(
            r["_pit_hook__bridge"],
            format!(
                "peripheral|adventure_works__sales_order_details~{own}~epoch__valid_from|{from}"
            )
        );
        assert_eq!(r["bridge__record_valid_from"], from);
        assert_eq!(r["bridge__record_valid_to"], to);
        assert_eq!(r["bridge__is_current_record"], (to == max).to_string());
        assert_eq!(r["_pit_hook__order__sales"], pit("order__sales", 1000, V0));
        assert_eq!(r["_pit_hook__product"], pit("product", 100, product_from));
        assert_eq!(
            r["_pit_hook__product_subcategory"],
            pit("product_subcategory", 10, V0)
        );
        assert_eq!(
            r["_pit_hook__product_category"],
            pit("product_category", 1, category_from)
        );
        // product_models is not in the fixture: no provider, no column.
        assert!(!r.contains_key("_pit_hook__reference__product_model"));
    }
    // The latest load among the combined versions.
    assert_eq!(
        line_rows[1]["bridge__record_loaded_at"],
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        line_rows[3]["bridge__record_loaded_at"],
        "2026-01-04T00:00:00Z"
    );
    assert_eq!(
        line_rows[0]["bridge__record_updated_at"],
        "2026-01-02T00:00:00Z"
    );

    // Left join: the line without a product has one row, product hooks NULL.
    let other: Vec<_> = bridge
        .iter()
        .filter(|r| r["_hook__order_line__sales"] == "order_line__sales__adventure_works|5001")
        .collect();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["_pit_hook__product"], "NULL");
    assert_eq!(other[0]["_pit_hook__product_category"], "NULL");
    assert_eq!(other[0]["bridge__record_valid_to"], "9999-12-31T23:59:59Z");

    // Events of the current bridge row of line 5000: its own modified date
    // plus the header's order, due and ship dates carrying the measures.
    let events = rows(
        &wh,
        "dar__staging",
        "event__adventure_works__sales_order_details",
    )
    .await;
    let current_key = &line_rows[3]["_pit_hook__bridge"];
    let mut mine: Vec<_> = events
        .iter()
        .filter(|r| r["_pit_hook__bridge"].starts_with(current_key.as_str()))
        .collect();
    mine.sort_by(|a, b| a["_hook__epoch__date"].cmp(&b["_hook__epoch__date"]));
    let got: Vec<(&str, &str, &str, &str, &str, &str)> = mine
        .iter()
        .map(|r| {
            (
                r["_hook__epoch__date"].as_str(),
                r["event__sales_order_detail__modified"].as_str(),
                r["measure__sales_order_line_total_placed"].as_str(),
                r["measure__sales_order_line_total_shipped"].as_str(),
                r["measure__sales_order_line_qty_due"].as_str(),
                r["measure__sales_order_line_qty_placed"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "epoch__date|2014-01-01",
                "false",
                "21.000000",
                "NULL",
                "NULL",
                "2"
            ),
            (
                "epoch__date|2014-01-02",
                "true",
                "NULL",
                "NULL",
                "NULL",
                "NULL"
            ),
            (
                "epoch__date|2014-01-05",
                "false",
                "NULL",
                "21.000000",
                "NULL",
                "NULL"
            ),
            (
                "epoch__date|2014-01-10",
                "false",
                "NULL",
                "NULL",
                "2",
                "NULL"
            ),
        ]
    );
    assert_eq!(
        mine[0]["_pit_hook__bridge"],
        format!("{current_key}~epoch__date|2014-01-01")
    );

    // Orders from new and returning customers, on the order date.
    let headers = rows(
        &wh,
        "dar__staging",
        "event__adventure_works__sales_order_headers",
    )
    .await;
    let mut customer: Vec<(&str, &str, &str, &str)> = headers
        .iter()
        .filter(|r| r["event__sales_order_header__order"] == "true")
        .map(|r| {
            (
                r["_hook__order__sales"].as_str(),
                r["_hook__epoch__date"].as_str(),
                r["measure__sales_order_headers_from_new_customers"].as_str(),
                r["measure__sales_order_headers_from_returning_customers"].as_str(),
            )
        })
        .collect();
    customer.sort();
    assert_eq!(
        customer,
        vec![
            (
                "order__sales__adventure_works|1000",
                "epoch__date|2014-01-01",
                "1",
                "NULL"
            ),
            (
                "order__sales__adventure_works|1001",
                "epoch__date|2014-02-01",
                "NULL",
                "1"
            ),
        ]
    );
    assert!(
        headers
            .iter()
            .filter(|r| r["event__sales_order_header__order"] != "true")
            .all(|r| r["measure__sales_order_headers_from_new_customers"] == "NULL")
    );

    // Peripherals: all versions plus one ghost record.
    let categories = rows(&wh, "dar", "adventure_works__product_categories").await;
    assert_eq!(categories.len(), 3);
    let ghost: Vec<_> = categories
        .iter()
        .filter(|r| r["_pit_hook__product_category"] == "ghost_record")
        .collect();
    assert_eq!(ghost.len(), 1);
    assert_eq!(ghost[0]["product_category__name"], "N/A");
    assert_eq!(ghost[0]["product_category__rowguid"], "N/A");
    assert_eq!(ghost[0]["product_category__modified_date"], "NULL");
    assert_eq!(ghost[0]["product_category__record_version"], "0");
    assert_eq!(ghost[0]["product_category__is_current_record"], "true");
    assert_eq!(
        ghost[0]["product_category__record_valid_to"],
        "9999-12-31T23:59:59Z"
    );
    assert!(categories[0].keys().all(|k| !k.starts_with("_hook__")));

    // Unified bridge: missing PIT hooks are ghost records.
    let unified = rows(&wh, "dar", "_bridge__as_of").await;
    let category_rows: Vec<_> = unified
        .iter()
        .filter(|r| r["peripheral"] == "adventure_works__product_categories")
        .collect();
    assert!(!category_rows.is_empty());
    assert!(
        category_rows
            .iter()
            .all(|r| r["_pit_hook__order_line__sales"] == "ghost_record")
    );
    let no_product = unified
        .iter()
        .filter(|r| r["_pit_hook__order_line__sales"].contains("|5001~"))
        .all(|r| r["_pit_hook__product"] == "ghost_record");
    assert!(no_product);

    // Calendar: 2013-01-01 .. 2014-12-31, with the documented columns.
    let calendar = rows(&wh, "dar", "calendar").await;
    assert_eq!(calendar.len(), 365 * 2);
    let day = calendar.iter().find(|r| r["date"] == "2013-04-05").unwrap();
    let expect = [
        ("_hook__epoch__date", "epoch__date|2013-04-05"),
        ("year", "2013"),
        ("iso_year", "2013"),
        ("quarter", "2"),
        ("month", "4"),
        ("month__name", "Apr"),
        ("week", "14"),
        ("weekday", "5"),
        ("weekday__name", "Fri"),
        ("year_quarter", "2013-2"),
        ("year_month", "2013-04"),
        ("year_month__name", "2013-Apr"),
        ("year_week", "2013-W14"),
        ("iso_week_date", "2013-W14-5"),
        ("ordinal_date", "2013-095"),
        ("is_leap_year", "false"),
    ];
    for (c, v) in expect {
        assert_eq!(day[c], v, "calendar column {c}");
    }
}
