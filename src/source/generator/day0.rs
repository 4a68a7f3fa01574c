//! Day 0, the initial history: each area is built from a random stream of
//! its own (tagged by step), in a fixed order; sales and production run at
//! the same time on two threads and are merged as if built one after the
//! other, so the result does not depend on the threads.

use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::super::table::TableData;
use super::state::{DayLog, Generator};
use super::values::{BASE_END, step_rng};
use crate::error::Result;

impl Generator {
    pub(super) fn build_day0(&mut self) -> Result<()> {
        let mut log = DayLog::unrecorded(BASE_END);
        let seed = self.options.seed;
        self.world.next_order = 43_658;
        self.world.next_order_line = 0;
        self.world.next_transaction = 0;
        self.build_reference(&mut step_rng(seed, 1), &mut log);
        self.build_products(&mut step_rng(seed, 2), &mut log);
        self.build_hr(&mut step_rng(seed, 3), &mut log);
        self.build_partners(&mut step_rng(seed, 4), &mut log);
        self.build_rates(&mut step_rng(seed, 5), &mut log);
        // Sales and production are the bulk of day 0 and each has its own
        // random stream, so they are built at the same time: production on
        // a second thread, on a copy that holds what it reads. Each side
        // files its transactions as archived or current as it makes them,
        // and the merge appends production's after the sales ones: exactly
        // the sequential result (pinned by a unit test).
        let mut production = self.production_part();
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                production
                    .build_production(&mut step_rng(seed, 7), &mut DayLog::unrecorded(BASE_END));
                production
            });
            self.build_sales(&mut step_rng(seed, 6), &mut log);
            match handle.join() {
                Ok(production) => self.merge_production(production),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A generator holding what [`Generator::build_production`] reads (the
    /// products and the world), with no transactions yet.
    fn production_part(&self) -> Generator {
        let mut tables: Vec<TableData> = self
            .tables
            .iter()
            .zip(&self.horizons)
            .map(|(t, h)| TableData::with_horizon(t.def, *h).spilling(self.store.clone()))
            .collect();
        tables[PRODUCTS] = self.tables[PRODUCTS].clone();
        let mut world = self.world.clone();
        world.next_transaction = 0;
        Generator {
            options: self.options,
            day: self.day,
            horizons: self.horizons.clone(),
            spill: self.spill.clone(),
            store: self.store.clone(),
            tables,
            world,
            deltas: Vec::new(),
        }
    }

    /// Take production's tables and state, as if it had been built after
    /// sales here: its transactions are numbered after the sales ones.
    fn merge_production(&mut self, mut production: Generator) -> Result<()> {
        for idx in [
            WORK_ORDERS,
            WORK_ORDER_ROUTINGS,
            PURCHASE_ORDER_DETAILS,
            PURCHASE_ORDER_HEADERS,
        ] {
            assert!(
                self.tables[idx].is_empty(),
                "generator bug: {} filled before production",
                self.tables[idx].def.table
            );
            let def = production.tables[idx].def;
            self.tables[idx] = std::mem::replace(&mut production.tables[idx], TableData::new(def));
            // (The empty stand-in counts nothing in the store.)
        }
        // Both sides filed their transactions as archived or current
        // already (`new_transaction`): production's follow the sales ones
        // in each.
        let offset = self.world.next_transaction;
        for idx in [TRANSACTION_HISTORY_ARCHIVES, TRANSACTION_HISTORIES] {
            let made = &production.tables[idx];
            let id = made.column_index("transaction_id").unwrap_or(0);
            let transactions = &mut self.tables[idx];
            if transactions.columns.is_empty() {
                transactions.columns = made.columns.clone();
            }
            // Left out on either side: before the horizon both sides share.
            transactions.pruned += made.pruned;
            let mut row = Vec::with_capacity(made.columns.len());
            for r in made.rows() {
                row.clear();
                row.extend_from_slice(&r?);
                let local = row[id].as_i64().unwrap_or(0);
                row[id] = Cell::from(local + offset);
                transactions.push_cells(&row);
            }
        }
        let w = production.world;
        self.world.next_transaction += w.next_transaction;
        self.world.next_work_order = w.next_work_order;
        self.world.next_purchase_order = w.next_purchase_order;
        self.world.next_purchase_detail = w.next_purchase_detail;
        self.world.open_work_orders = w.open_work_orders;
        self.world.open_purchase_orders = w.open_purchase_orders;
        Ok(())
    }

    /// Business partners: vendors (purchasing), then sales tax rates,
    /// stores and individual customers (sales), from one random stream.
    fn build_partners(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        self.build_vendors(rng, log);
        self.build_sales_tax_rates(rng, log);
        self.build_customers(rng, log);
    }

    /// Work orders, then purchase orders, from one random stream.
    fn build_production(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        self.build_work_orders(rng, log);
        self.build_purchase_orders(rng, log);
    }
}
