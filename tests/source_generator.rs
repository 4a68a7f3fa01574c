//! The embedded generator: determinism, sizes, integrity, simulated days.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use chrono::NaiveDate;
use lakehouse::config::SourceConfig;
use lakehouse::source::generator::{BASE_END, TABLES, table_defs};
use lakehouse::source::{Cell, Generator, GeneratorOptions, SpillOptions, TableData};

/// Every row of a table, read back (spilled chunks decoded).
trait AllRows {
    fn all_rows(&self) -> std::vec::IntoIter<Cow<'_, [Cell]>>;
}

impl AllRows for TableData {
    fn all_rows(&self) -> std::vec::IntoIter<Cow<'_, [Cell]>> {
        self.rows()
            .collect::<Result<Vec<_>, _>>()
            .expect("rows read back")
            .into_iter()
    }
}

fn opts(seed: u64) -> GeneratorOptions {
    GeneratorOptions { seed, scale: 0.01 }
}

fn table<'a>(g: &'a Generator, name: &str) -> &'a TableData {
    g.table(&format!("raw__adventure_works__{name}"))
        .unwrap_or_else(|| panic!("table {name} exists"))
}

/// The set of values of `column` in `name`.
fn ids(g: &Generator, name: &str, column: &str) -> HashSet<String> {
    let t = table(g, name);
    let c = t
        .column_index(column)
        .unwrap_or_else(|| panic!("{name}.{column}"));
    t.all_rows().map(|r| r[c].to_string()).collect()
}

/// Every non-null `child.column` value is among `parent.parent_column`.
fn assert_fk(g: &Generator, child: &str, column: &str, parent: &str, parent_column: &str) {
    let parents = ids(g, parent, parent_column);
    let t = table(g, child);
    let c = t
        .column_index(column)
        .unwrap_or_else(|| panic!("{child}.{column}"));
    let mut checked = 0;
    for (i, r) in t.all_rows().enumerate() {
        if r[c].is_null() {
            continue;
        }
        checked += 1;
        assert!(
            parents.contains(&r[c].to_string()),
            "{child} row {i}: {column} = {} not found in {parent}.{parent_column}",
            r[c]
        );
    }
    assert!(
        checked > 0,
        "{child}.{column} has no non-null values to check"
    );
}

fn key_of(t: &TableData, row: &[Cell]) -> String {
    t.def
        .key
        .iter()
        .map(|k| row[t.column_index(k).expect("key column")].to_string())
        .collect::<Vec<_>>()
        .join("|")
}

fn assert_keys_unique(g: &Generator) {
    for t in g.tables() {
        let mut seen = HashSet::new();
        for r in t.all_rows() {
            let k = key_of(t, &r);
            assert!(seen.insert(k.clone()), "{}: duplicate key {k}", t.def.table);
        }
    }
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = Generator::new(opts(7)).expect("generate");
    let b = Generator::new(opts(7)).expect("generate");
    let c = Generator::new(opts(8)).expect("generate");
    assert_eq!(a.tables(), b.tables());
    assert_ne!(
        table(&a, "persons").all_rows().collect::<Vec<_>>(),
        table(&c, "persons").all_rows().collect::<Vec<_>>(),
        "another seed gives other people"
    );
    let a3 = Generator::at_day(opts(7), 3).expect("day 3");
    let mut b3 = Generator::new(opts(7)).expect("day 0");
    for _ in 0..3 {
        b3.advance();
    }
    assert_eq!(a3.tables(), b3.tables());
    assert_eq!(a3.deltas(), b3.deltas());
    // Going back rebuilds the same day.
    b3.advance_to(1).expect("back to day 1");
    let a1 = Generator::at_day(opts(7), 1).expect("day 1");
    assert_eq!(b3.tables(), a1.tables());
    assert_eq!(b3.day(), 1);
}

#[test]
fn scale_is_validated() {
    for bad in [0.0, -1.0, f64::NAN, 101.0] {
        let err = Generator::new(GeneratorOptions {
            seed: 1,
            scale: bad,
        })
        .expect_err("rejected");
        assert!(err.to_string().contains("scale"), "{err}");
    }
}

#[test]
fn small_scale_is_fast_and_sized() {
    let t0 = Instant::now();
    let g = Generator::new(opts(42)).expect("generate");
    let elapsed = t0.elapsed();
    assert!(elapsed.as_secs_f64() < 3.0, "scale 0.01 took {elapsed:?}");
    let counts = g.row_counts();
    assert_eq!(counts.len(), 58);
    let expected: BTreeMap<&str, usize> = [
        ("products", 504),
        ("product_subcategories", 37),
        ("product_categories", 4),
        ("product_models", 128),
        ("product_descriptions", 762),
        ("product_photos", 101),
        ("departments", 16),
        ("shifts", 3),
        ("employees", 290),
        ("sales_persons", 17),
        ("sales_territories", 10),
        ("ship_methods", 5),
        ("special_offers", 16),
        ("vendors", 104),
        ("stores", 10),
        ("customers", 195),
        ("sales_order_headers", 315),
        ("purchase_order_headers", 40),
        ("work_orders", 726),
        ("job_candidates", 13),
        ("shopping_cart_items", 3),
        ("product_reviews", 4),
    ]
    .into_iter()
    .collect();
    for (name, n) in expected {
        assert_eq!(
            counts[&format!("raw__adventure_works__{name}")],
            n,
            "{name}"
        );
    }
    let lines = counts["raw__adventure_works__sales_order_details"];
    assert!((700..=2000).contains(&lines), "order lines: {lines}");
    for (t, n) in &counts {
        assert!(*n > 0, "{t} is empty");
    }
}

#[test]
fn generator_matches_the_source_config() {
    let config = SourceConfig::adventure_works().expect("config");
    let g = Generator::new(opts(1)).expect("generate");
    let defs = table_defs().expect("the generator's tables bind to the config");
    assert_eq!(config.resources.len(), defs.len());
    for (r, def) in config.resources.iter().zip(defs) {
        assert_eq!(r.table, def.table);
        assert_eq!(r.api_path, def.api_path);
        assert_eq!(r.primary_key, def.key, "{}", r.table);
        let t = g.table(&r.table).expect("generated");
        let configured: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(t.columns, configured, "{}", r.table);
    }
}

#[test]
fn keys_are_unique_and_references_resolve() {
    let mut g = Generator::new(opts(3)).expect("generate");
    for day in [0, 4] {
        g.advance_to(day).expect("advance");
        assert_keys_unique(&g);
        assert_fk(
            &g,
            "sales_order_details",
            "sales_order_id",
            "sales_order_headers",
            "sales_order_id",
        );
        assert_fk(
            &g,
            "sales_order_details",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "sales_order_details",
            "special_offer_id",
            "special_offers",
            "special_offer_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "customer_id",
            "customers",
            "customer_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "territory_id",
            "sales_territories",
            "territory_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "bill_to_address_id",
            "addresses",
            "address_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "ship_to_address_id",
            "addresses",
            "address_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "ship_method_id",
            "ship_methods",
            "ship_method_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "credit_card_id",
            "credit_cards",
            "credit_card_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "currency_rate_id",
            "currency_rates",
            "currency_rate_id",
        );
        assert_fk(
            &g,
            "sales_order_headers",
            "sales_person_id",
            "sales_persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "customers",
            "person_id",
            "persons",
            "business_entity_id",
        );
        assert_fk(&g, "customers", "store_id", "stores", "business_entity_id");
        assert_fk(
            &g,
            "customers",
            "territory_id",
            "sales_territories",
            "territory_id",
        );
        assert_fk(
            &g,
            "products",
            "product_subcategory_id",
            "product_subcategories",
            "product_subcategory_id",
        );
        assert_fk(
            &g,
            "products",
            "product_model_id",
            "product_models",
            "product_model_id",
        );
        assert_fk(
            &g,
            "product_subcategories",
            "product_category_id",
            "product_categories",
            "product_category_id",
        );
        assert_fk(
            &g,
            "employees",
            "business_entity_id",
            "persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "sales_persons",
            "business_entity_id",
            "employees",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "sales_persons",
            "territory_id",
            "sales_territories",
            "territory_id",
        );
        assert_fk(
            &g,
            "stores",
            "sales_person_id",
            "sales_persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "email_addresses",
            "business_entity_id",
            "persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "person_phones",
            "business_entity_id",
            "persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "person_phones",
            "phone_number_type_id",
            "phone_number_types",
            "phone_number_type_id",
        );
        assert_fk(
            &g,
            "business_entity_addresses",
            "address_id",
            "addresses",
            "address_id",
        );
        assert_fk(
            &g,
            "business_entity_addresses",
            "address_type_id",
            "address_types",
            "address_type_id",
        );
        assert_fk(
            &g,
            "business_entity_contacts",
            "person_id",
            "persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "business_entity_contacts",
            "contact_type_id",
            "contact_types",
            "contact_type_id",
        );
        assert_fk(
            &g,
            "addresses",
            "state_province_id",
            "state_provinces",
            "state_province_id",
        );
        assert_fk(
            &g,
            "state_provinces",
            "territory_id",
            "sales_territories",
            "territory_id",
        );
        assert_fk(
            &g,
            "state_provinces",
            "country_region_code",
            "country_regions",
            "country_region_code",
        );
        assert_fk(
            &g,
            "sales_territories",
            "country_region_code",
            "country_regions",
            "country_region_code",
        );
        assert_fk(
            &g,
            "currency_rates",
            "to_currency_code",
            "currencies",
            "currency_code",
        );
        assert_fk(
            &g,
            "employee_pay_histories",
            "business_entity_id",
            "employees",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "employee_department_histories",
            "department_id",
            "departments",
            "department_id",
        );
        assert_fk(
            &g,
            "employee_department_histories",
            "shift_id",
            "shifts",
            "shift_id",
        );
        assert_fk(
            &g,
            "job_candidates",
            "business_entity_id",
            "employees",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "sales_person_quota_histories",
            "business_entity_id",
            "sales_persons",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "sales_territory_histories",
            "territory_id",
            "sales_territories",
            "territory_id",
        );
        assert_fk(
            &g,
            "bill_of_materials",
            "product_assembly_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "bill_of_materials",
            "component_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "bill_of_materials",
            "unit_measure_code",
            "unit_measures",
            "unit_measure_code",
        );
        assert_fk(
            &g,
            "product_inventories",
            "location_id",
            "locations",
            "location_id",
        );
        assert_fk(
            &g,
            "product_list_price_histories",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "product_cost_histories",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "product_model_illustrations",
            "illustration_id",
            "illustrations",
            "illustration_id",
        );
        assert_fk(
            &g,
            "product_reviews",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "product_vendors",
            "business_entity_id",
            "vendors",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "product_vendors",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "purchase_order_headers",
            "vendor_id",
            "vendors",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "purchase_order_headers",
            "employee_id",
            "employees",
            "business_entity_id",
        );
        assert_fk(
            &g,
            "purchase_order_details",
            "purchase_order_id",
            "purchase_order_headers",
            "purchase_order_id",
        );
        assert_fk(&g, "work_orders", "product_id", "products", "product_id");
        assert_fk(
            &g,
            "work_orders",
            "scrap_reason_id",
            "scrap_reasons",
            "scrap_reason_id",
        );
        assert_fk(
            &g,
            "work_order_routings",
            "work_order_id",
            "work_orders",
            "work_order_id",
        );
        assert_fk(
            &g,
            "work_order_routings",
            "location_id",
            "locations",
            "location_id",
        );
        assert_fk(
            &g,
            "transaction_histories",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "transaction_history_archives",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "shopping_cart_items",
            "product_id",
            "products",
            "product_id",
        );
        assert_fk(
            &g,
            "sales_tax_rates",
            "state_province_id",
            "state_provinces",
            "state_province_id",
        );
    }
}

#[test]
fn nulls_where_the_real_data_has_them() {
    let g = Generator::new(opts(5)).expect("generate");
    let nulls = |name: &str, column: &str| {
        let t = table(&g, name);
        let c = t.column_index(column).expect("column");
        t.all_rows().filter(|r| r[c].is_null()).count()
    };
    let persons = table(&g, "persons").len();
    assert!(nulls("addresses", "address_line2") > table(&g, "addresses").len() / 2);
    let middle = nulls("persons", "middle_name");
    assert!(
        middle > 0 && middle < persons,
        "middle_name nulls: {middle}"
    );
    assert_eq!(nulls("employees", "organization_level"), 1);
    assert_eq!(nulls("sales_persons", "territory_id"), 3);
    assert!(nulls("products", "product_subcategory_id") == 211);
    assert_eq!(nulls("products", "product_id"), 0);
}

#[test]
fn days_change_only_what_they_say() {
    let day0 = Generator::new(opts(11)).expect("day 0");
    let max0 = max_modified(&day0);
    assert!(max0 <= BASE_END, "day 0 max modified_date {max0}");
    assert_eq!(BASE_END.to_string(), "2014-06-30");
    let mut g = day0.clone();
    for day in 1..=3u32 {
        let before = g.clone();
        let delta = g.advance().clone();
        assert_eq!(delta.day, day);
        let date = Generator::date_of_day(day);
        assert_eq!(delta.date, date);
        let mut changed_total = 0;
        for t in g.tables() {
            let name = t.def.table;
            let prev = before.table(name).expect("same tables");
            let md = t.column_index("modified_date").expect("modified_date");
            let changed: Vec<Cow<'_, [Cell]>> = t
                .all_rows()
                .filter(|r| r[md].date() == Some(date))
                .collect();
            assert_eq!(changed.len(), delta.changed(name), "{name} on day {day}");
            changed_total += changed.len();
            // Every other row is identical to the day before.
            let prev_rows: BTreeMap<String, Cow<'_, [Cell]>> =
                prev.all_rows().map(|r| (key_of(prev, &r), r)).collect();
            for r in t.all_rows() {
                if r[md].date() == Some(date) {
                    continue;
                }
                assert!(
                    r[md].date().is_some_and(|d| d < date),
                    "{name}: a row from the future"
                );
                assert_eq!(
                    prev_rows.get(&key_of(t, &r)),
                    Some(&r),
                    "{name}: untouched row changed"
                );
            }
            let added = delta.added.get(name).copied().unwrap_or(0);
            assert_eq!(t.len(), prev.len() + added, "{name} added on day {day}");
        }
        assert!(
            changed_total > 30,
            "day {day} changed only {changed_total} rows"
        );
        for busy in [
            "sales_order_headers",
            "sales_order_details",
            "customers",
            "persons",
            "addresses",
            "products",
            "product_list_price_histories",
            "currency_rates",
            "work_orders",
            "purchase_order_headers",
            "transaction_histories",
        ] {
            assert!(
                delta.changed(&format!("raw__adventure_works__{busy}")) > 0,
                "{busy} did not change on day {day}"
            );
        }
    }
    let modified: BTreeSet<&str> = g
        .deltas()
        .iter()
        .flat_map(|d| d.modified.keys().map(String::as_str))
        .collect();
    assert!(
        modified.contains("raw__adventure_works__sales_order_headers"),
        "orders ship: {modified:?}"
    );
    assert!(modified.contains("raw__adventure_works__products"));
    assert!(modified.contains("raw__adventure_works__addresses"));
}

fn max_modified(g: &Generator) -> NaiveDate {
    g.tables()
        .iter()
        .flat_map(|t| {
            let md = t.column_index("modified_date").expect("modified_date");
            t.all_rows().filter_map(move |r| r[md].date())
        })
        .max()
        .expect("some rows")
}

/// The rows of `t` modified on or after `from`.
fn modified_since(t: &TableData, from: NaiveDate) -> Vec<Cow<'_, [Cell]>> {
    let c = t.column_index("modified_date").expect("modified_date");
    t.all_rows()
        .filter(|r| r[c].date().expect("a modified date") >= from)
        .collect()
}

#[test]
fn horizons_leave_out_only_older_rows_of_append_only_tables() {
    use lakehouse::source::generator::PRUNABLE;
    let full = Generator::at_day(opts(5), 4).expect("day 4");
    let day2 = Generator::date_of_day(2);
    let archive_from = NaiveDate::from_ymd_opt(2012, 6, 1).expect("date");
    let mut horizons: BTreeMap<String, NaiveDate> = BTreeMap::new();
    for i in PRUNABLE {
        let path = table_defs().expect("bound")[i].api_path.as_str();
        let from = if path == "/TransactionHistoryArchives" {
            archive_from
        } else {
            day2
        };
        horizons.insert(path.to_string(), from);
    }
    // A horizon for a table that is read back is ignored.
    horizons.insert("/Persons".to_string(), day2);
    let mut pruned = Generator::with_horizons(opts(5), 4, &horizons).expect("day 4 pruned");
    assert_eq!(
        pruned.deltas(),
        full.deltas(),
        "a day's delta counts rows left out"
    );
    let check = |pruned: &Generator, full: &Generator| {
        let mut left_out = 0;
        for (p, f) in pruned.tables().iter().zip(full.tables()) {
            assert_eq!(p.columns, f.columns, "{}", f.def.table);
            let prunable = PRUNABLE.iter().any(|&i| TABLES[i] == f.def.table);
            match horizons.get(&f.def.api_path).copied().filter(|_| prunable) {
                Some(from) => {
                    assert_eq!(p.horizon(), Some(from), "{}", f.def.table);
                    let kept: Vec<Cow<'_, [Cell]>> = p.all_rows().collect();
                    assert_eq!(kept, modified_since(f, from), "{}", f.def.table);
                    assert_eq!(p.len() + p.pruned(), f.len(), "{}", f.def.table);
                    assert!(p.pruned() > 0, "{} leaves rows out", f.def.table);
                    left_out += p.pruned();
                }
                None => {
                    assert_eq!(p, f, "{} is whole", f.def.table);
                    assert_eq!(p.horizon(), None);
                }
            }
        }
        left_out
    };
    let left_out = check(&pruned, &full);
    let prunable_rows: usize = PRUNABLE.iter().map(|&i| full.tables()[i].len()).sum();
    assert!(
        left_out * 10 > prunable_rows * 9,
        "most rows of the append-only tables are left out ({left_out} of {prunable_rows})"
    );
    assert_eq!(
        table(&pruned, "persons").horizon(),
        None,
        "persons are read back: never pruned"
    );
    // Going back to an earlier day keeps the horizons.
    pruned.advance_to(3).expect("back to day 3");
    check(&pruned, &Generator::at_day(opts(5), 3).expect("day 3"));
    let err = Generator::with_horizons(
        opts(5),
        1,
        &BTreeMap::from([("/Nowhere".to_string(), day2)]),
    )
    .expect_err("unknown path");
    assert!(err.to_string().contains("/Nowhere"), "{err}");
}

// ---------------------------------------------------------------------------
// Spilling (append-only tables in a temporary file beyond a memory budget).
// ---------------------------------------------------------------------------

/// Big enough for the largest append-only tables to fill a few 4096-row
/// chunks (only full chunks spill).
fn spill_opts(seed: u64) -> GeneratorOptions {
    GeneratorOptions { seed, scale: 0.15 }
}

fn spill_everything() -> Option<SpillOptions> {
    Some(SpillOptions::above(0))
}

/// Every table of `a` and `b` has the same columns, counts and rows, in
/// the same order; returns how many chunks `a` spilled.
fn assert_same_tables(a: &Generator, b: &Generator) -> usize {
    assert_eq!(a.tables().len(), b.tables().len());
    let mut spilled = 0;
    for (x, y) in a.tables().iter().zip(b.tables()) {
        let name = x.def.table;
        assert_eq!(x.columns, y.columns, "{name}");
        assert_eq!((x.len(), x.pruned()), (y.len(), y.pruned()), "{name}");
        let (rx, ry) = (x.all_rows(), y.all_rows());
        for (i, (p, q)) in rx.zip(ry).enumerate() {
            assert_eq!(p, q, "{name} row {i}");
        }
        assert_eq!(x, y, "{name}");
        spilled += x.spilled_chunks();
    }
    spilled
}

#[test]
fn spilling_gives_the_same_rows() {
    let none = BTreeMap::new();
    let mem = Generator::new(spill_opts(3)).expect("in memory");
    let mut spilled =
        Generator::with_spill(spill_opts(3), 0, &none, spill_everything()).expect("spilled");
    let chunks = assert_same_tables(&spilled, &mem);
    assert!(chunks >= 3, "only {chunks} chunks spilled");
    for t in spilled.tables() {
        let prunable = lakehouse::source::generator::PRUNABLE
            .iter()
            .any(|&i| TABLES[i] == t.def.table);
        let settled = ["sales_order_headers", "work_orders"]
            .iter()
            .any(|n| t.def.table.ends_with(n));
        assert!(
            prunable || settled || t.spilled_chunks() == 0,
            "{} is read back: never spilled",
            t.def.table
        );
        if settled {
            assert!(
                t.spilled_chunks() > 0,
                "{}: settled chunks spill",
                t.def.table
            );
        }
    }
    let stats = spilled.spill_stats().expect("spills");
    let (held, written) = (stats.held, stats.written);
    assert!(written > 0 && held > 0, "held {held}, spilled {written}");
    // Days added on top spill their full chunks too, and match.
    let mut mem3 = mem.clone();
    for _ in 0..3 {
        let d = spilled.advance().clone();
        assert_eq!(&d, mem3.advance());
    }
    assert!(assert_same_tables(&spilled, &mem3) >= chunks);
    assert_same_tables(
        &spilled,
        &Generator::at_day(spill_opts(3), 3).expect("day 3"),
    );
    // Back to day 1: rebuilt, still spilling, same rows.
    let before = spilled.spill_dir().expect("dir").to_path_buf();
    spilled.advance_to(1).expect("day 1");
    assert!(
        !before.exists(),
        "the rebuilt generator's old spill is gone"
    );
    assert!(spilled.spill_dir().is_some());
    assert!(
        assert_same_tables(
            &spilled,
            &Generator::at_day(spill_opts(3), 1).expect("day 1")
        ) > 0
    );
    // A budget above what is held spills nothing; one in between, some.
    let roomy = Generator::with_spill(spill_opts(3), 0, &none, Some(SpillOptions::above(1 << 40)))
        .expect("roomy");
    assert_eq!(assert_same_tables(&roomy, &mem), 0);
    let some = Generator::with_spill(spill_opts(3), 0, &none, Some(SpillOptions::above(held)))
        .expect("budget");
    let n = assert_same_tables(&some, &mem);
    assert!(n > 0 && n <= chunks, "{n} of {chunks} chunks spilled");
}

#[test]
fn spilling_with_horizons_gives_the_same_rows() {
    let day2 = Generator::date_of_day(2);
    let horizons: BTreeMap<String, NaiveDate> = lakehouse::source::generator::prunable_paths()
        .expect("bound")
        .map(|p| (p.to_string(), day2))
        .chain([(
            "/TransactionHistoryArchives".to_string(),
            NaiveDate::from_ymd_opt(2011, 6, 1).expect("date"),
        )])
        .collect();
    let mem = Generator::with_horizons(spill_opts(4), 3, &horizons).expect("in memory");
    let spilled =
        Generator::with_spill(spill_opts(4), 3, &horizons, spill_everything()).expect("spilled");
    assert!(assert_same_tables(&spilled, &mem) > 0, "the archive spills");
    assert_eq!(spilled.deltas(), mem.deltas());
}

#[test]
fn spill_directory_goes_with_the_generator() {
    let parent = tempfile::tempdir().expect("parent");
    let options = SpillOptions {
        above: 0,
        dir: Some(parent.path().to_path_buf()),
    };
    let g =
        Generator::with_spill(spill_opts(5), 1, &BTreeMap::new(), Some(options)).expect("spilled");
    let dir = g.spill_dir().expect("spills").to_path_buf();
    assert_eq!(dir.parent(), Some(parent.path()));
    let name = dir.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(name.starts_with("lakehouse-source-"), "{name}");
    assert!(std::fs::read_dir(&dir).expect("dir").count() > 0);
    // A clone shares the spill: the directory stays until both are gone.
    let copy = g.clone();
    drop(g);
    assert!(dir.exists());
    assert_same_tables(&copy, &Generator::at_day(spill_opts(5), 1).expect("day 1"));
    drop(copy);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(std::fs::read_dir(parent.path()).expect("parent").count(), 0);
    // Without spilling there is no directory at all.
    assert!(Generator::new(opts(5)).expect("gen").spill_dir().is_none());
}

/// Every page of `path` (paged by 700 rows, following next links), as the
/// JSON bodies with the server's address taken out.
async fn pages(client: &reqwest::Client, base: &str, query: &str) -> Vec<String> {
    let mut url = format!("{base}{query}");
    let mut out = Vec::new();
    loop {
        let resp = client.get(&url).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{url}");
        let body: serde_json::Value = resp.json().await.expect("json");
        let next = body["@odata.nextLink"].as_str().map(str::to_string);
        out.push(body.to_string().replace(base, "<base>"));
        match next {
            Some(n) => url = n,
            None => return out,
        }
    }
}

#[tokio::test]
async fn spilling_server_serves_the_same_pages() {
    use lakehouse::source::{ServerOptions, serve};
    let config = SourceConfig::adventure_works().expect("config");
    let start = |spill: Option<SpillOptions>| {
        let config = config.clone();
        async move {
            serve(
                &config,
                ServerOptions {
                    page_size: 700,
                    generator: spill_opts(6),
                    day: 2,
                    spill,
                    ..ServerOptions::default()
                },
            )
            .await
            .expect("serve")
        }
    };
    let (mem, spilled) = (start(None).await, start(spill_everything()).await);
    let spilled_chunks: usize =
        spilled.with_generator(|g| g.tables().iter().map(|t| t.spilled_chunks()).sum());
    assert!(spilled_chunks > 0);
    let client = reqwest::Client::new();
    let day1 = Generator::date_of_day(1);
    for query in [
        "/SalesOrderDetails".to_string(),
        "/TransactionHistories?$count=true".to_string(),
        "/TransactionHistoryArchives?$skip=1000&$top=3000".to_string(),
        format!("/SalesOrderDetails?$filter=ModifiedDate ge {day1}"),
        "/PersonPhones".to_string(),
        "/Customers?$filter=ModifiedDate le 2013-01-01".to_string(),
        "/Products".to_string(),
    ] {
        let a = pages(&client, mem.base_url(), &query).await;
        let b = pages(&client, spilled.base_url(), &query).await;
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{query}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x == y, "{query}: page {i} differs");
        }
    }
    mem.shutdown().await.expect("shutdown");
    spilled.shutdown().await.expect("shutdown");
}

/// Peak memory of generating one scale, with or without spilling: run by
/// hand, one configuration per process (the peak is the process's):
/// `LAKEHOUSE_SCALE=10 LAKEHOUSE_SPILL_ABOVE=268435456 cargo test --release
/// --test source_generator -- --ignored --nocapture generation_peak_memory`
/// (no `LAKEHOUSE_SPILL_ABOVE`: all in memory).
#[test]
#[ignore = "a measurement, run by hand"]
fn generation_peak_memory() {
    let scale: f64 = std::env::var("LAKEHOUSE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let spill = std::env::var("LAKEHOUSE_SPILL_ABOVE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(SpillOptions::above);
    let status = |key: &str| -> String {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let options = GeneratorOptions { seed: 42, scale };
    let t0 = Instant::now();
    let g = Generator::with_spill(options, 0, &BTreeMap::new(), spill.clone()).expect("generate");
    let generated = t0.elapsed();
    let rows: usize = g.row_counts().values().sum();
    let spilled: usize = g.tables().iter().map(|t| t.spilled_chunks()).sum();
    let mut big: Vec<(usize, &str, usize)> = g
        .tables()
        .iter()
        .map(|t| {
            (
                t.len() * t.columns.len() * 24,
                t.def.table,
                t.spilled_chunks(),
            )
        })
        .collect();
    big.sort();
    for (bytes, name, chunks) in big.iter().rev().take(12) {
        println!(
            "{name}: {} MB of cells, {chunks} chunks spilled",
            bytes >> 20
        );
    }
    println!(
        "scale {scale}, spill {spill:?}: {rows} rows in {generated:?}, {spilled} chunks spilled, \
         stats {:?}, VmRSS {}, VmHWM {}",
        g.spill_stats(),
        status("VmRSS"),
        status("VmHWM")
    );
}

/// Time to page through the largest spilled resources, with and without
/// spilling, and how many chunks the spilled server decoded for it: run by
/// hand (`LAKEHOUSE_SCALE`, default 0.3), e.g. `cargo test --test
/// source_generator -- --ignored --nocapture serving_time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn serving_time() {
    use lakehouse::source::{ServerOptions, serve};
    let scale: f64 = std::env::var("LAKEHOUSE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.3);
    let config = SourceConfig::adventure_works().expect("config");
    let client = reqwest::Client::new();
    for spill in [None, spill_everything()] {
        let server = serve(
            &config,
            ServerOptions {
                generator: GeneratorOptions { seed: 42, scale },
                spill: spill.clone(),
                ..ServerOptions::default()
            },
        )
        .await
        .expect("serve");
        for path in [
            "/SalesOrderDetails",
            "/TransactionHistories",
            "/TransactionHistoryArchives",
            "/WorkOrderRoutings",
            "/Customers",
            "/PersonPhones",
        ] {
            let before = server.with_generator(|g| g.spill_stats().map_or(0, |s| s.decoded));
            let t0 = Instant::now();
            let n = pages(&client, server.base_url(), path).await.len();
            let (decoded, chunks) = server.with_generator(|g| {
                (
                    g.spill_stats().map_or(0, |s| s.decoded) - before,
                    g.table_by_path(path).map_or(0, |t| t.spilled_chunks()),
                )
            });
            println!(
                "scale {scale} spill {}: {path}: {n} pages in {:?}, {decoded} chunk reads for {chunks} spilled chunks",
                spill.is_some(),
                t0.elapsed()
            );
        }
        server.shutdown().await.expect("shutdown");
    }
}
