//! The generator's state: [`Generator`] with its tables, the cross-table
//! [`World`] the simulated days read back, the [`DayLog`] of one day's
//! changes, and the three ways a row gets written (`add`, `append`,
//! `modify`). A modified row always carries the log's date as its
//! `modified_date`; rows of [`PRUNABLE`] tables are only ever appended.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;

use super::super::cell::Cell;
use super::super::defs::*;
use super::super::spill::{SpillOptions, SpillStore};
use super::super::table::{CHUNK_ROWS, TableData};
use super::values::date_v;

/// Generator parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorOptions {
    /// Random seed.
    pub seed: u64,
    /// Size factor: 1.0 ≈ the real data set; must be in `(0, 10]`.
    pub scale: f64,
}

impl Default for GeneratorOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            scale: 0.01,
        }
    }
}

/// What one simulated day changed, per landing table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayDelta {
    /// The day number (>= 1).
    pub day: u32,
    /// The `modified_date` every changed row carries.
    pub date: NaiveDate,
    /// Rows added that day, per table (tables without additions omitted).
    pub added: BTreeMap<String, usize>,
    /// Existing rows modified (and not added) that day, per table.
    pub modified: BTreeMap<String, usize>,
}

impl DayDelta {
    /// Rows added or modified in `table` that day: exactly the rows whose
    /// `modified_date` is [`DayDelta::date`].
    pub fn changed(&self, table: &str) -> usize {
        self.added.get(table).copied().unwrap_or(0) + self.modified.get(table).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub(super) struct CustomerRef {
    pub(super) customer_id: i64,
    pub(super) territory_id: i64,
    pub(super) store_id: Option<i64>,
    pub(super) address_id: i64,
    pub(super) credit_card_id: Option<i64>,
    pub(super) sales_person_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct World {
    pub(super) next_business_entity: i64,
    pub(super) next_address: i64,
    pub(super) next_email: i64,
    pub(super) next_credit_card: i64,
    pub(super) next_customer: i64,
    pub(super) next_order: i64,
    pub(super) next_order_line: i64,
    pub(super) next_transaction: i64,
    pub(super) next_work_order: i64,
    pub(super) next_purchase_order: i64,
    pub(super) next_purchase_detail: i64,
    pub(super) next_currency_rate: i64,
    /// Province ids per territory id (index = territory id - 1).
    pub(super) provinces: Vec<Vec<i64>>,
    /// Finished goods that are sold.
    pub(super) sellable: Vec<i64>,
    /// Products with make_flag (manufactured).
    pub(super) manufactured: Vec<i64>,
    /// (product, vendor) pairs from product vendors.
    pub(super) purchasable: Vec<(i64, i64)>,
    /// Purchasing employees (buyers).
    pub(super) buyers: Vec<i64>,
    pub(super) employees: Vec<i64>,
    /// Sales persons per territory id (index = territory id - 1).
    pub(super) sales_people: Vec<Vec<i64>>,
    pub(super) customers: Vec<CustomerRef>,
    /// Latest rate (date, id) per currency.
    pub(super) rates: HashMap<&'static str, Vec<(NaiveDate, i64)>>,
    pub(super) last_rate: HashMap<&'static str, f64>,
    /// business entity id -> persons row.
    pub(super) person_row: HashMap<i64, usize>,
    /// Individual customers' person ids (for moves and renames).
    pub(super) individuals: Vec<i64>,
    /// person id -> home address row.
    pub(super) home_address_row: HashMap<i64, usize>,
    /// product id -> open list price history row.
    pub(super) open_price_row: HashMap<i64, usize>,
    /// (row in sales_order_headers, day on which it ships).
    pub(super) open_orders: Vec<(usize, u32)>,
    /// (row in work_orders, day on which it closes).
    pub(super) open_work_orders: Vec<(usize, u32)>,
    /// (row in purchase_order_headers, day of its next status step).
    pub(super) open_purchase_orders: Vec<(usize, u32)>,
}

/// The deterministic Adventure Works data set at one simulated day.
#[derive(Debug, Clone)]
pub struct Generator {
    pub(super) options: GeneratorOptions,
    pub(super) day: u32,
    /// Per table (index of [`TABLES`]), its horizon, if any.
    pub(super) horizons: Vec<Option<NaiveDate>>,
    /// Whether and where append-only tables spill (see [`super::super::spill`]).
    pub(super) spill: Option<SpillOptions>,
    /// The spill file the tables share (`Some` iff `spill` is).
    pub(super) store: Option<Arc<SpillStore>>,
    pub(super) tables: Vec<TableData>,
    pub(super) world: World,
    pub(super) deltas: Vec<DayDelta>,
}

/// Changes recorded during one simulated day.
pub(super) struct DayLog {
    pub(super) date: NaiveDate,
    /// Whether rows are recorded (day 0's hundreds of thousands are not:
    /// nothing reads them).
    pub(super) record: bool,
    pub(super) added: Vec<BTreeSet<usize>>,
    pub(super) modified: Vec<BTreeSet<usize>>,
}

impl DayLog {
    pub(super) fn new(date: NaiveDate) -> Self {
        Self {
            date,
            record: true,
            added: vec![BTreeSet::new(); TABLES.len()],
            modified: vec![BTreeSet::new(); TABLES.len()],
        }
    }

    pub(super) fn unrecorded(date: NaiveDate) -> Self {
        Self {
            record: false,
            ..Self::new(date)
        }
    }
}

impl Generator {
    /// Spill the settled chunks of the orders and work orders (see
    /// [`TableData::spill_settled`]): those before the first row still
    /// open, the only rows the simulation reads back or updates.
    pub(super) fn spill_settled(&mut self) {
        if self.store.is_none() {
            return;
        }
        for (idx, open) in [
            (SALES_ORDER_HEADERS, &self.world.open_orders),
            (WORK_ORDERS, &self.world.open_work_orders),
        ] {
            let below = open
                .iter()
                .map(|&(r, _)| r)
                .min()
                .unwrap_or(self.tables[idx].len());
            self.tables[idx].spill_settled(below);
        }
    }

    pub(super) fn scale(&self) -> f64 {
        self.options.scale
    }

    pub(super) fn add<const N: usize>(
        &mut self,
        log: &mut DayLog,
        idx: usize,
        row: [(&'static str, Cell); N],
    ) -> usize {
        debug_assert!(
            !PRUNABLE.contains(&idx),
            "generator bug: rows of {} are appended, not added",
            TABLES[idx]
        );
        let r = self.tables[idx].push(row);
        if log.record {
            log.added[idx].insert(r);
        }
        // Day 0 makes years of orders: their settled chunks go as the
        // table grows, not only at the end of the day.
        if r.is_multiple_of(CHUNK_ROWS) && matches!(idx, SALES_ORDER_HEADERS | WORK_ORDERS) {
            self.spill_settled();
        }
        r
    }

    /// Append a row to a [`PRUNABLE`] table (left out when modified before
    /// the table's horizon). Unlike [`Generator::add`] it gives no row
    /// number: nothing may read the row back.
    pub(super) fn append<const N: usize>(
        &mut self,
        log: &mut DayLog,
        idx: usize,
        row: [(&'static str, Cell); N],
    ) {
        debug_assert!(PRUNABLE.contains(&idx));
        let t = &mut self.tables[idx];
        // The row's number in the full table, so that a day's delta counts
        // it whether it is kept or not.
        let number = t.len() + t.pruned();
        t.push_unless_old(row);
        if log.record {
            log.added[idx].insert(number);
        }
    }

    pub(super) fn modify<const N: usize>(
        &mut self,
        log: &mut DayLog,
        idx: usize,
        row: usize,
        changes: [(&'static str, Cell); N],
    ) {
        let t = &mut self.tables[idx];
        for (c, v) in changes {
            t.set(row, c, v);
        }
        t.set(row, "modified_date", date_v(log.date));
        if log.record {
            log.modified[idx].insert(row);
        }
    }
}
