//! The shop: a small second source system (customers, products, orders,
//! order lines) that sells Adventure Works products under their ids, its
//! two days of rows, and the project that models it beside Adventure Works'
//! product tables. Served as OData by `two_sources.rs` and as REST JSON by
//! `rest_source.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

/// The shop's rows by entity set, as JSON objects.
pub type Shop = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// Rows per page: small, so every resource takes several pages.
pub const PAGE: usize = 2;

pub fn customer(id: i64, name: &str, city: &str, modified: &str) -> Value {
    json!({"CustomerId": id, "Name": name, "City": city, "ModifiedDate": modified})
}

pub fn product(id: i64, price: &str, modified: &str) -> Value {
    json!({"ProductId": id, "Price": price, "ModifiedDate": modified})
}

pub fn order(id: i64, customer: i64, date: &str, modified: &str) -> Value {
    json!({"OrderId": id, "CustomerId": customer, "OrderDate": date, "ModifiedDate": modified})
}

pub fn line(id: i64, order: i64, product: i64, qty: i64, amount: &str, modified: &str) -> Value {
    json!({"OrderLineId": id, "OrderId": order, "ProductId": product, "Quantity": qty,
           "Amount": amount, "ModifiedDate": modified})
}

/// The shop on its first day. Products 300 and 450 are Adventure Works
/// finished goods (with a subcategory and category); 9999 is the shop's own.
pub fn first_day() -> BTreeMap<String, Vec<Value>> {
    BTreeMap::from([
        (
            "Customers".to_string(),
            vec![
                customer(1, "Ada", "Leuven", "2014-06-20T08:00:00Z"),
                customer(2, "Bo", "Gent", "2014-06-20T09:00:00Z"),
                customer(3, "Cy", "Brugge", "2014-06-21T10:00:00Z"),
            ],
        ),
        (
            "Products".to_string(),
            vec![
                product(300, "19.99", "2014-06-01T00:00:00Z"),
                product(450, "1024.50", "2014-06-01T00:00:00Z"),
                product(9999, "0.10", "2014-06-01T00:00:00Z"),
            ],
        ),
        (
            "Orders".to_string(),
            vec![
                order(10, 1, "2014-06-22", "2014-06-22T12:00:00Z"),
                order(11, 2, "2014-06-23", "2014-06-23T12:00:00Z"),
                order(12, 1, "2014-06-25", "2014-06-25T12:00:00Z"),
            ],
        ),
        (
            "OrderLines".to_string(),
            vec![
                line(100, 10, 300, 2, "39.98", "2014-06-22T12:00:00Z"),
                line(101, 10, 450, 1, "1024.50", "2014-06-22T12:00:00Z"),
                line(102, 11, 300, 3, "59.97", "2014-06-23T12:00:00Z"),
                line(103, 11, 9999, 7, "0.70", "2014-06-23T12:00:00Z"),
                line(104, 12, 450, 1, "1000.01", "2014-06-25T12:00:00Z"),
            ],
        ),
    ])
}

/// A cursor literal as the extractor writes it: a date, or a date-time.
pub fn instant(text: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("cursor literal {text:?}: {e}"))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
    }
}

/// The shop's second day: a customer moves, an order with a line is added,
/// and an amount is corrected.
pub fn second_day(shop: &Shop) {
    let mut s = shop.lock().unwrap();
    s.get_mut("Customers")
        .unwrap()
        .push(customer(2, "Bo", "Antwerpen", "2014-06-26T09:00:00Z"));
    s.get_mut("Customers").unwrap().remove(1);
    s.get_mut("Orders")
        .unwrap()
        .push(order(13, 2, "2014-06-26", "2014-06-26T10:00:00Z"));
    let lines = s.get_mut("OrderLines").unwrap();
    lines.push(line(105, 13, 300, 1, "19.99", "2014-06-26T10:00:00Z"));
    lines.retain(|l| l["OrderLineId"] != 104);
    lines.push(line(104, 12, 450, 1, "1000.00", "2014-06-26T11:00:00Z"));
}

/// Customer 2's versions in the shop's frame: city, version, current.
pub const CUSTOMER_2_VERSIONS: &str = "SELECT shop_customer__city, shop_customer__record_version, \
    shop_customer__is_current_record FROM dab.frame__shop__customers \
    WHERE shop_customer__customer_id = 2 ORDER BY shop_customer__record_valid_from";

/// The shop as an OData source (`BASE`: its base URL).
pub const SHOP_SOURCE: &str = r#"name: shop
base_url: BASE
resources:
  - table: raw__shop__customers
    api_path: /Customers
    primary_key: [customer_id]
    cursor_field: ModifiedDate
    columns:
      - { name: customer_id, source: CustomerId, type: bigint }
      - { name: name, source: Name, type: text }
      - { name: city, source: City, type: text }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__products
    api_path: /Products
    primary_key: [product_id]
    cursor_field: ModifiedDate
    columns:
      - { name: product_id, source: ProductId, type: bigint }
      - { name: price, source: Price, type: "decimal(12,2)" }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__orders
    api_path: /Orders
    primary_key: [order_id]
    cursor_field: ModifiedDate
    columns:
      - { name: order_id, source: OrderId, type: bigint }
      - { name: customer_id, source: CustomerId, type: bigint }
      - { name: order_date, source: OrderDate, type: date }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
  - table: raw__shop__order_lines
    api_path: /OrderLines
    primary_key: [order_line_id]
    cursor_field: ModifiedDate
    columns:
      - { name: order_line_id, source: OrderLineId, type: bigint }
      - { name: order_id, source: OrderId, type: bigint }
      - { name: product_id, source: ProductId, type: bigint }
      - { name: quantity, source: Quantity, type: bigint }
      - { name: amount, source: Amount, type: "decimal(12,2)" }
      - { name: modified_date, source: ModifiedDate, type: timestamp }
"#;

pub const SHOP_FRAMES: &str = r#"
  - name: frame__shop__customers
    source_table: raw__shop__customers
    column_prefix: shop_customer
    hooks:
      - { name: _hook__customer__shop, keyset: customer__shop, business_key: customer_id, primary: true }
  - name: frame__shop__products
    source_table: raw__shop__products
    column_prefix: shop_product
    hooks:
      - { name: _hook__product__shop, keyset: product__shop, business_key: product_id, primary: true }
      - { name: _hook__product, keyset: product__adventure_works, business_key: product_id }
  - name: frame__shop__orders
    source_table: raw__shop__orders
    column_prefix: shop_order
    hooks:
      - { name: _hook__order__shop, keyset: order__shop, business_key: order_id, primary: true }
      - { name: _hook__customer__shop, keyset: customer__shop, business_key: customer_id }
  - name: frame__shop__order_lines
    source_table: raw__shop__order_lines
    column_prefix: shop_order_line
    hooks:
      - { name: _hook__order_line__shop, keyset: order_line__shop, business_key: order_line_id, primary: true }
      - { name: _hook__order__shop, keyset: order__shop, business_key: order_id }
      - { name: _hook__product__shop, keyset: product__shop, business_key: product_id }
"#;

pub const MEASURES: &str = r#"frames:
  - frame: frame__shop__order_lines
    measures:
      - { name: measure__shop_line_amount_ordered, value: amount, via: _hook__order__shop, date: order_date }
"#;

/// Adventure Works' product tables only (a quick build), plus the shop.
pub const AW_KEPT: &[&str] = &[
    "raw__adventure_works__products",
    "raw__adventure_works__product_subcategories",
    "raw__adventure_works__product_categories",
    "raw__adventure_works__product_models",
];

/// Write the two-source project into `dir` (made by `lakehouse new`):
/// Adventure Works' product tables, and the shop described by `shop_source`.
pub fn make_project(dir: &Path, shop_source: &str) {
    let yaml = |p: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap()
    };
    let write = |p: &str, v: &serde_yaml::Value| {
        std::fs::write(dir.join(p), serde_yaml::to_string(v).unwrap()).unwrap()
    };
    let kept =
        |v: &serde_yaml::Value, key: &str| AW_KEPT.contains(&v[key].as_str().unwrap_or_default());
    let mut aw = yaml("sources/adventure_works.yaml");
    aw["resources"]
        .as_sequence_mut()
        .unwrap()
        .retain(|r| kept(r, "table"));
    write("sources/adventure_works.yaml", &aw);
    std::fs::write(dir.join("sources/shop.yaml"), shop_source).unwrap();
    let mut frames = yaml("models/frames.yaml");
    let list = frames["frames"].as_sequence_mut().unwrap();
    list.retain(|f| kept(f, "source_table"));
    let shop: Vec<serde_yaml::Value> = serde_yaml::from_str(SHOP_FRAMES).unwrap();
    list.extend(shop);
    write("models/frames.yaml", &frames);
    let mut concepts = yaml("models/concepts.yaml");
    let list = concepts["concepts"].as_sequence_mut().unwrap();
    for (concept, keyset) in [
        ("customer", "customer__shop"),
        ("product", "product__shop"),
        ("order", "order__shop"),
        ("order_line", "order_line__shop"),
    ] {
        let c = list
            .iter_mut()
            .find(|c| c["name"].as_str() == Some(concept))
            .unwrap_or_else(|| panic!("concept {concept}"));
        c["keysets"].as_sequence_mut().unwrap().push(keyset.into());
    }
    write("models/concepts.yaml", &concepts);
    std::fs::write(dir.join("models/measures.yaml"), MEASURES).unwrap();
}
