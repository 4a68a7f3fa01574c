//! Purchasing: ship methods, vendors with the products they sell, and
//! purchase orders with their lines (each line also a P transaction). An
//! open purchase order steps its status on a later simulated day.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::person::{ADDR_MAIN_OFFICE, STORE_SUFFIXES, STORE_WORDS};
use super::state::{DayLog, Generator};
use super::values::{
    BASE_END, BASE_START, add_days, date_v, money, pick, rand_date, round2, scaled, ymd,
};

pub(super) const SHIP_METHODS_LIST: &[(&str, f64, f64)] = &[
    ("XRQ - TRUCK GROUND", 3.95, 0.99),
    ("ZY - EXPRESS", 9.95, 1.99),
    ("OVERSEAS - DELUXE", 29.95, 2.99),
    ("OVERNIGHT J-FAST", 21.95, 1.29),
    ("CARGO TRANSPORT 5", 8.99, 1.49),
];

impl Generator {
    /// A purchase order with 1-3 lines and their P transactions.
    pub(super) fn new_purchase_order(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        order_date: NaiveDate,
        today: NaiveDate,
        today_day: u32,
    ) {
        self.world.next_purchase_order += 1;
        let id = self.world.next_purchase_order;
        let (first_product, vendor) = *pick(rng, &self.world.purchasable);
        let products: Vec<i64> = self
            .world
            .purchasable
            .iter()
            .filter(|(_, v)| *v == vendor)
            .map(|(p, _)| *p)
            .filter(|p| *p != first_product)
            .collect();
        let mut chosen = vec![first_product];
        for _ in 0..rng.random_range(0..=2) {
            if !products.is_empty() {
                let p = *pick(rng, &products);
                if !chosen.contains(&p) {
                    chosen.push(p);
                }
            }
        }
        let ship = add_days(order_date, 9);
        let complete = ship <= today;
        let mut sub_total = 0.0;
        for p in chosen {
            self.world.next_purchase_detail += 1;
            let detail = self.world.next_purchase_detail;
            let qty: i64 = rng.random_range(1..=20) * 3;
            let price = round2(rng.random_range(0.5..80.0));
            let total = round2(price * qty as f64);
            sub_total += total;
            let rejected = if complete && rng.random_bool(0.1) {
                (qty / 10) as f64
            } else {
                0.0
            };
            let received = if complete { qty as f64 } else { 0.0 };
            self.append(
                log,
                PURCHASE_ORDER_DETAILS,
                row! {
                    "purchase_order_id" => id,
                    "purchase_order_detail_id" => detail,
                    "due_date" => date_v(add_days(order_date, 14)),
                    "order_qty" => qty,
                    "product_id" => p,
                    "unit_price" => money(price),
                    "line_total" => money(total),
                    "received_qty" => received,
                    "rejected_qty" => rejected,
                    "stocked_qty" => received - rejected,
                    "modified_date" => date_v(order_date),
                },
            );
            self.new_transaction(log, p, id, detail, order_date, "P", qty, price);
        }
        let sub_total = round2(sub_total);
        let tax = round2(sub_total * 0.08);
        let freight = round2(sub_total * 0.025);
        let buyer = *pick(rng, &self.world.buyers);
        let r = self.add(
            log,
            PURCHASE_ORDER_HEADERS,
            row! {
                "purchase_order_id" => id,
                "revision_number" => 4,
                "status" => if complete { 4 } else { 1 },
                "employee_id" => buyer,
                "vendor_id" => vendor,
                "ship_method_id" => rng.random_range(1..=SHIP_METHODS_LIST.len() as i64),
                "order_date" => date_v(order_date),
                "ship_date" => date_v(ship),
                "sub_total" => money(sub_total),
                "tax_amt" => money(tax),
                "freight" => money(freight),
                "total_due" => money(sub_total + tax + freight),
                "modified_date" => date_v(if complete { ship } else { order_date }),
            },
        );
        if !complete {
            self.world
                .open_purchase_orders
                .push((r, today_day + 1 + rng.random_range(0..3)));
        }
    }

    pub(super) fn build_vendors(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        // Vendors (fixed): each with a main office and a contact person.
        let mut vendors = Vec::new();
        for n in 1..=104i64 {
            let md = rand_date(rng, ymd(2011, 4, 24), ymd(2012, 2, 24));
            let id = self.new_business_entity();
            let name = format!(
                "{} {} {}",
                pick(rng, STORE_WORDS),
                pick(rng, STORE_WORDS),
                pick(rng, STORE_SUFFIXES)
            );
            let account: String = name
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(8)
                .collect::<String>()
                .to_uppercase();
            self.add(
                log,
                VENDORS,
                row! {
                    "business_entity_id" => id,
                    "account_number" => format!("{account}{n:04}"),
                    "name" => name,
                    "credit_rating" => rng.random_range(1..=5),
                    "preferred_vendor_status" => rng.random_bool(0.85),
                    "active_flag" => rng.random_bool(0.95),
                    "modified_date" => date_v(md),
                    "purchasing_web_service_url" => if n % 17 == 0 { Some(format!("www.vendor{n}.com/")) } else { None },
                },
            );
            let (address, _) = self.new_address(log, rng, 1 + (n % 5), md);
            self.link_address(log, rng, id, address, ADDR_MAIN_OFFICE, md);
            let contact = self.new_person(log, rng, "VC", md);
            self.link_contact(log, rng, id, contact, md);
            vendors.push(id);
        }
        // Product vendors: every purchased product has one to three vendors.
        let purchased: Vec<i64> = (1..=504i64)
            .filter(|p| !self.world.manufactured.contains(p))
            .collect();
        for p in purchased {
            let n = rng.random_range(1..=2usize);
            let mut chosen = BTreeSet::new();
            for _ in 0..n {
                chosen.insert(*pick(rng, &vendors));
            }
            for v in chosen {
                let price = round2(rng.random_range(0.2..60.0));
                let min = *pick(rng, &[1i64, 20, 100, 500]);
                self.add(
                    log,
                    PRODUCT_VENDORS,
                    row! {
                        "product_id" => p,
                        "business_entity_id" => v,
                        "average_lead_time" => rng.random_range(10..=120),
                        "standard_price" => money(price),
                        "last_receipt_cost" => money(price * 1.05),
                        "last_receipt_date" => date_v(rand_date(rng, ymd(2013, 8, 1), ymd(2014, 3, 1))),
                        "min_order_qty" => min,
                        "max_order_qty" => min * 5,
                        "unit_measure_code" => *pick(rng, &["EA", "CS", "CTN", "DZ", "PAK"]),
                        "modified_date" => date_v(rand_date(rng, ymd(2013, 8, 1), ymd(2014, 3, 1))),
                        "on_order_qty" => if rng.random_bool(0.3) { Some(min * 3) } else { None },
                    },
                );
                self.world.purchasable.push((p, v));
            }
        }
    }

    pub(super) fn build_purchase_orders(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        let span = (BASE_END - BASE_START).num_days();
        let purchase_orders = scaled(4_012.0, self.scale(), 10);
        for k in 0..purchase_orders {
            let date = add_days(BASE_START, (k as i64 * span) / purchase_orders as i64);
            self.new_purchase_order(log, rng, date, BASE_END, 0);
        }
    }
}
