//! One simulated day of change: new rates, customers and orders, sales
//! people's year-to-date totals, shipments, list price changes, moves and
//! renames, inventory counts, work and purchase orders, and now and then a
//! pay raise, in that order from the day's random stream. Every row added
//! or modified carries the day's date.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::person::{CITIES, LAST_NAMES, STREETS};
use super::sales::RATE_PAIRS;
use super::state::{DayLog, Generator};
use super::values::{date_v, money, pick, round2, scaled, ts_v};

impl Generator {
    pub(super) fn simulate_day(&mut self, day: u32, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        let today = log.date;
        let scale = self.scale();
        for (code, _) in RATE_PAIRS {
            self.new_rate(log, rng, code, today);
        }
        // New customers, then new orders (some from today's new customers).
        let first_new = self.world.customers.len();
        for _ in 0..scaled(8.0, scale, 1) {
            self.new_individual(log, rng, today);
        }
        let n_customers = self.world.customers.len();
        let mut sales_by_person: BTreeMap<i64, f64> = BTreeMap::new();
        for _ in 0..scaled(40.0, scale, 2) {
            let customer = if rng.random_bool(0.25) {
                rng.random_range(first_new..n_customers)
            } else {
                rng.random_range(0..n_customers)
            };
            let (_, sales_person, total) = self.new_order(log, rng, customer, today, today, day);
            if let Some(sp) = sales_person {
                *sales_by_person.entry(sp).or_default() += total;
            }
        }
        for (sp, total) in sales_by_person {
            if let Some(r) = self.find_row(SALES_PERSONS, "business_entity_id", sp) {
                let ytd = self.tables[SALES_PERSONS]
                    .get(r, "sales_ytd")
                    .as_f64()
                    .unwrap_or(0.0);
                self.modify(
                    log,
                    SALES_PERSONS,
                    r,
                    row! {"sales_ytd" => money(ytd + total)},
                );
            }
        }
        // Shipments of open orders.
        let (due, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.world.open_orders)
            .into_iter()
            .partition(|(_, ship_day)| *ship_day <= day);
        self.world.open_orders = open;
        for (r, _) in due {
            let revision = self.tables[SALES_ORDER_HEADERS]
                .get(r, "revision_number")
                .as_i64()
                .unwrap_or(8);
            self.modify(log, SALES_ORDER_HEADERS, r, row! {"status" => 5, "ship_date" => date_v(today), "revision_number" => revision + 1});
        }
        // List price changes with price history.
        let mut repriced = BTreeSet::new();
        for _ in 0..2 {
            let product = *pick(rng, &self.world.sellable);
            if !repriced.insert(product) {
                continue;
            }
            let old = self.list_price(product);
            let new = round2(old * rng.random_range(0.95..1.10));
            self.modify(
                log,
                PRODUCTS,
                (product - 1) as usize,
                row! {"list_price" => money(new)},
            );
            if let Some(open_row) = self.world.open_price_row.get(&product).copied() {
                self.modify(
                    log,
                    PRODUCT_LIST_PRICE_HISTORIES,
                    open_row,
                    row! {"end_date" => date_v(today)},
                );
            }
            let r = self.add(log, PRODUCT_LIST_PRICE_HISTORIES, row! {"product_id" => product, "start_date" => ts_v(today), "end_date" => Cell::Null, "list_price" => money(new), "modified_date" => date_v(today)});
            self.world.open_price_row.insert(product, r);
        }
        // Customers moving house and persons changing name or preferences.
        for _ in 0..scaled(3.0, scale, 1) {
            let person = *pick(rng, &self.world.individuals);
            if let Some(r) = self.world.home_address_row.get(&person).copied() {
                self.modify(
                    log,
                    ADDRESSES,
                    r,
                    row! {"address_line1" => format!("{} {}", rng.random_range(1..9999), pick(rng, STREETS)), "city" => *pick(rng, CITIES), "postal_code" => format!("{:05}", rng.random_range(10_000..99_999))},
                );
            }
        }
        for _ in 0..scaled(2.0, scale, 1) {
            let person = *pick(rng, &self.world.individuals);
            if let Some(r) = self.world.person_row.get(&person).copied() {
                if rng.random_bool(0.5) {
                    self.modify(
                        log,
                        PERSONS,
                        r,
                        row! {"last_name" => *pick(rng, LAST_NAMES)},
                    );
                } else {
                    self.modify(
                        log,
                        PERSONS,
                        r,
                        row! {"email_promotion" => rng.random_range(0..3)},
                    );
                }
            }
        }
        // Inventory counts.
        let inventories = self.tables[PRODUCT_INVENTORIES].len();
        for _ in 0..5 {
            let r = rng.random_range(0..inventories);
            self.modify(
                log,
                PRODUCT_INVENTORIES,
                r,
                row! {"quantity" => rng.random_range(0..=800)},
            );
        }
        // Production: close due work orders, open new ones.
        let (due, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.world.open_work_orders)
            .into_iter()
            .partition(|(_, close_day)| *close_day <= day);
        self.world.open_work_orders = open;
        for (r, _) in due {
            let qty = self.tables[WORK_ORDERS]
                .get(r, "order_qty")
                .as_i64()
                .unwrap_or(0);
            self.modify(
                log,
                WORK_ORDERS,
                r,
                row! {"end_date" => date_v(today), "stocked_qty" => qty},
            );
        }
        for _ in 0..scaled(60.0, scale, 1) {
            self.new_work_order(log, rng, today, today, day);
        }
        // Purchasing: complete due purchase orders, place new ones.
        let (due, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.world.open_purchase_orders)
            .into_iter()
            .partition(|(_, step_day)| *step_day <= day);
        self.world.open_purchase_orders = open;
        for (r, _) in due {
            let status = self.tables[PURCHASE_ORDER_HEADERS]
                .get(r, "status")
                .as_i64()
                .unwrap_or(1);
            if status == 1 {
                self.modify(log, PURCHASE_ORDER_HEADERS, r, row! {"status" => 2});
                self.world
                    .open_purchase_orders
                    .push((r, day + 1 + rng.random_range(0..3)));
            } else {
                self.modify(
                    log,
                    PURCHASE_ORDER_HEADERS,
                    r,
                    row! {"status" => 4, "ship_date" => date_v(today)},
                );
            }
        }
        for _ in 0..scaled(4.0, scale, 1) {
            self.new_purchase_order(log, rng, today, today, day);
        }
        // Now and then a pay raise.
        if rng.random_bool(0.3) {
            let idx = rng.random_range(0..self.world.employees.len());
            let employee = self.world.employees[idx];
            let salaried = self.tables[EMPLOYEES]
                .get(idx, "salaried_flag")
                .as_bool()
                .unwrap_or(false);
            let hours = self.tables[EMPLOYEES]
                .get(idx, "vacation_hours")
                .as_i64()
                .unwrap_or(0);
            self.add(
                log,
                EMPLOYEE_PAY_HISTORIES,
                row! {
                    "business_entity_id" => employee,
                    "rate_change_date" => ts_v(today),
                    "rate" => money(if salaried { 40.0 } else { 15.0 } + rng.random_range(0.0..40.0)),
                    "pay_frequency" => if salaried { 2 } else { 1 },
                    "modified_date" => date_v(today),
                },
            );
            self.modify(
                log,
                EMPLOYEES,
                idx,
                row! {"vacation_hours" => (hours + 8).min(99)},
            );
        }
    }

    fn find_row(&self, table: usize, column: &str, id: i64) -> Option<usize> {
        let t = &self.tables[table];
        let c = t.column_index(column)?;
        // Only tables read back are searched: they are in memory, so no
        // row fails to read.
        t.rows()
            .position(|r| r.is_ok_and(|r| r[c].as_i64() == Some(id)))
    }
}
