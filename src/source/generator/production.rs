//! Production: unit measures, scrap reasons, locations, and the rows of
//! manufacturing: work orders (with routings for finished goods) and the
//! transactions of sales, work and purchase orders. A transaction dated
//! before [`ARCHIVE_CUTOFF`] goes to the archive table.

use chrono::NaiveDate;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::state::{DayLog, Generator};
use super::values::{BASE_END, BASE_START, add_days, date_v, money, pick, scaled};

pub(super) const UNIT_MEASURES_LIST: &[(&str, &str)] = &[
    ("BOX", "Boxes"),
    ("BTL", "Bottle"),
    ("C", "Celsius"),
    ("CAN", "Canister"),
    ("CAR", "Carton"),
    ("CBM", "Cubic meters"),
    ("CCM", "Cubic centimeter"),
    ("CDM", "Cubic decimeter"),
    ("CM", "Centimeter"),
    ("CM2", "Square centimeter"),
    ("CR", "Crate"),
    ("CS", "Case"),
    ("CTN", "Container"),
    ("DM", "Decimeter"),
    ("DZ", "Dozen"),
    ("EA", "Each"),
    ("FT3", "Cubic foot"),
    ("G", "Gram"),
    ("GAL", "Gallon"),
    ("IN", "Inch"),
    ("KG", "Kilogram"),
    ("KGV", "Kilogram/cubic meter"),
    ("KM", "Kilometer"),
    ("KT", "Kit"),
    ("L", "Liter"),
    ("LB", "US pound"),
    ("M", "Meter"),
    ("M2", "Square meter"),
    ("M3", "Cubic meter"),
    ("MG", "Milligram"),
    ("ML", "Milliliter"),
    ("MM", "Millimeter"),
    ("OZ", "Ounces"),
    ("PAK", "Pack"),
    ("PAL", "Pallet"),
    ("PC", "Piece"),
    ("PCT", "Percentage"),
    ("PT", "Pint, US liquid"),
];

pub(super) const SCRAP_REASONS_LIST: &[&str] = &[
    "Brake assembly not as ordered",
    "Color incorrect",
    "Drill pattern incorrect",
    "Drill size too large",
    "Drill size too small",
    "Gouge in metal",
    "Handling damage",
    "Paint process failed",
    "Primer process failed",
    "Seat assembly not as ordered",
    "Stress test failed",
    "Thermoform temperature too high",
    "Thermoform temperature too low",
    "Trim length too long",
    "Trim length too short",
    "Wheel misaligned",
];

pub(super) const LOCATIONS_LIST: &[(&str, f64, f64)] = &[
    ("Tool Crib", 0.0, 0.0),
    ("Sheet Metal Racks", 0.0, 0.0),
    ("Paint Shop", 0.0, 0.0),
    ("Paint Storage", 0.0, 0.0),
    ("Metal Storage", 0.0, 0.0),
    ("Miscellaneous Storage", 0.0, 0.0),
    ("Finished Goods Storage", 0.0, 0.0),
    ("Frame Forming", 22.5, 96.0),
    ("Frame Welding", 25.0, 108.0),
    ("Debur and Polish", 14.5, 120.0),
    ("Paint", 15.75, 120.0),
    ("Specialized Paint", 18.0, 80.0),
    ("Subassembly", 12.25, 120.0),
    ("Final Assembly", 12.25, 120.0),
];
/// Location ids used by production routings.
const ROUTING_LOCATIONS: &[i64] = &[8, 9, 10, 11, 12, 13, 14];

/// Transactions dated before this day are in the archive table.
const ARCHIVE_CUTOFF: NaiveDate = match NaiveDate::from_ymd_opt(2012, 10, 31) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

impl Generator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_transaction(
        &mut self,
        log: &mut DayLog,
        product: i64,
        order: i64,
        line: i64,
        date: NaiveDate,
        kind: &'static str,
        qty: i64,
        cost: f64,
    ) {
        self.world.next_transaction += 1;
        let id = self.world.next_transaction;
        // Transactions dated before the archive cutoff are in the archive
        // table, in the order they were made, like the others in theirs.
        let table = if date < ARCHIVE_CUTOFF {
            TRANSACTION_HISTORY_ARCHIVES
        } else {
            TRANSACTION_HISTORIES
        };
        self.append(
            log,
            table,
            row! {
                "transaction_id" => id,
                "product_id" => product,
                "reference_order_id" => order,
                "reference_order_line_id" => line,
                "transaction_date" => date_v(date),
                "transaction_type" => kind,
                "quantity" => qty,
                "actual_cost" => money(cost),
                "modified_date" => date_v(date),
            },
        );
    }

    /// A work order (with routings for finished goods and a W transaction).
    pub(super) fn new_work_order(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        start: NaiveDate,
        today: NaiveDate,
        today_day: u32,
    ) {
        self.world.next_work_order += 1;
        let id = self.world.next_work_order;
        let product = *pick(rng, &self.world.manufactured);
        let qty: i64 = rng.random_range(1..=60);
        let duration = rng.random_range(1..=6);
        let end = add_days(start, duration);
        let open = end > today;
        let scrapped: i64 = if rng.random_bool(0.03) {
            rng.random_range(1..=3).min(qty)
        } else {
            0
        };
        let r = self.add(
            log,
            WORK_ORDERS,
            row! {
                "work_order_id" => id,
                "product_id" => product,
                "order_qty" => qty,
                "stocked_qty" => if open { 0 } else { qty - scrapped },
                "scrapped_qty" => if open { 0 } else { scrapped },
                "start_date" => date_v(start),
                "end_date" => if open { Cell::Null } else { date_v(end) },
                "due_date" => date_v(add_days(start, 11)),
                "modified_date" => date_v(if open { start } else { end }),
                "scrap_reason_id" => if open || scrapped == 0 { None } else { Some(rng.random_range(1..=SCRAP_REASONS_LIST.len() as i64)) },
            },
        );
        if open {
            self.world
                .open_work_orders
                .push((r, today_day + (end - today).num_days() as u32));
        }
        let finished = self.tables[PRODUCTS]
            .get((product - 1) as usize, "finished_goods_flag")
            .as_bool()
            .unwrap_or(false);
        if finished {
            let ops = rng.random_range(1..=2usize);
            for (i, loc) in ROUTING_LOCATIONS.iter().take(ops).enumerate() {
                let planned = rng.random_range(20.0..120.0);
                let actual_end: Option<NaiveDate> = if open { None } else { Some(end) };
                let hrs = rng.random_range(1.0..5.0_f64);
                self.append(
                    log,
                    WORK_ORDER_ROUTINGS,
                    row! {
                        "work_order_id" => id,
                        "product_id" => product,
                        "operation_sequence" => i as i64 + 1,
                        "location_id" => *loc,
                        "scheduled_start_date" => date_v(start),
                        "scheduled_end_date" => date_v(add_days(start, duration)),
                        "actual_start_date" => date_v(start),
                        "actual_end_date" => actual_end.map(date_v),
                        "actual_resource_hrs" => money(hrs),
                        "planned_cost" => money(planned),
                        "actual_cost" => money(planned * rng.random_range(0.9..1.1)),
                        "modified_date" => date_v(if open { start } else { end }),
                    },
                );
            }
        }
        let cost = self.tables[PRODUCTS]
            .get((product - 1) as usize, "standard_cost")
            .as_f64()
            .unwrap_or(0.0);
        self.new_transaction(log, product, id, 0, start, "W", qty, cost);
    }

    pub(super) fn build_work_orders(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        let span = (BASE_END - BASE_START).num_days();
        let work_orders = scaled(72_591.0, self.scale(), 20);
        for k in 0..work_orders {
            let start = add_days(BASE_START, (k as i64 * span) / work_orders as i64);
            self.new_work_order(log, rng, start, BASE_END, 0);
        }
    }
}
