//! Deterministic generator of the 58 Adventure Works resources.
//!
//! # Semantics
//! - **Determinism.** The state is a pure function of `(seed, scale, day)`:
//!   the same triple always gives byte-identical rows. Every random draw comes
//!   from a `ChaCha8Rng` seeded from the seed and a fixed per-step tag, so the
//!   stream does not depend on the platform or on hash-map order.
//! - **Scale.** `scale = 1.0` approximates the real data set (~31k order
//!   headers, ~121k order lines, ~20k customers); people, orders, purchasing,
//!   production and transaction tables scale linearly (with small floors so
//!   every table has rows), while reference and catalogue tables (504
//!   products, 37 subcategories, territories, currencies, ...) keep their
//!   real-ish size at every scale.
//! - **Days.** Day 0 is the initial history, whose `modified_date` values all
//!   lie on or before [`BASE_END`]. Day `n >= 1` is day `n - 1` plus one day
//!   of change dated `BASE_END + n days`: new customers (person, address,
//!   e-mail, phone, credit card), new sales orders and their lines and sales
//!   transactions, shipments of open orders, list-price changes (with price
//!   history), moves, renamed persons, inventory counts, new currency rates,
//!   sales-person year-to-date totals, work orders opened and closed,
//!   purchase orders placed and completed, and occasional pay raises. Every
//!   row added or modified on day `n` carries `modified_date = BASE_END + n`,
//!   strictly later than every `modified_date` that existed before, and rows
//!   not touched keep identical content; that is what an incremental cursor
//!   on `ModifiedDate` relies on.
//! - **Integrity.** Foreign keys always point at existing rows: order lines
//!   at orders, products and special offers; orders at customers,
//!   territories, addresses, ship methods, credit cards and currency rates;
//!   products at subcategories (then categories) and models; employees,
//!   sales persons and contacts are persons; and so on.
//! - **Values** are JSON as the OData API gives them: `date` columns as
//!   `YYYY-MM-DD`, `timestamp` columns as `YYYY-MM-DDT00:00:00Z`, money and
//!   rates as numbers, GUIDs as lowercase hyphenated strings, binary as
//!   standard base64, XML as strings, and NULLs where the real data has them
//!   (`address_line2`, `middle_name`, `sell_end_date`, ...).
//!
//! - **Storage.** Values are [`Cell`](super::Cell)s (dates as dates, GUIDs as 16 bytes,
//!   catalogue names as `&'static str`), turned into that JSON only when the
//!   server writes a page; rows are stored in chunks of 4096 rows per table.
//!   A run regenerates its day's data set (~700k rows at scale 1), so
//!   allocations per value or per row were most of the generator's time.
//!
//! - **Horizons.** An incremental client only asks a table for rows modified
//!   on or after its cursor. [`Generator::with_horizons`] takes, per API
//!   path, such a date (a *horizon*) and then leaves out of the tables that
//!   are only ever appended to and never read back ([`PRUNABLE`]: order
//!   lines, transactions, routings, customers and their e-mails, phones,
//!   addresses and cards, currency rates, purchase order lines; about three
//!   quarters of day 0's rows) every row modified before it. Each such row is
//!   still made (so every random draw and id is the same) but not stored:
//!   the rows kept are exactly the full data set's rows of that table
//!   modified on or after the horizon, in the same order, and every other
//!   table is the full one ([`TableData::horizon`] tells the server which
//!   requests it can no longer answer).
//!
//! - **Spilling.** [`Generator::with_spill`] keeps full chunks of the
//!   [`PRUNABLE`] tables, and the chunks of the order headers and work
//!   orders before their first open row, in a temporary file once the
//!   tables hold more than a byte budget (see [`super::spill`]); the data
//!   and every random draw are the same whatever the budget.
//!
//! Column names are the snake_case names of the source config; the server maps
//! them to API names.
//!
//! # Layout
//!
//! `state` holds the [`Generator`] itself (tables, the cross-table
//! `World`, the day's log) and its three row writers; `values` the dates,
//! money and random draws every area uses. The business areas each make
//! their own rows and hold their own fixed lists: `person` (persons,
//! addresses, contacts), `sales` (customers, orders, rates), `products`
//! (the catalogue), `production` (work orders, transactions), `purchasing`
//! (vendors, purchase orders) and `hr` (employees, sales people).
//! `reference` fills the fixed-size reference tables, `day0` builds the
//! initial history area by area, and `days` simulates one day of change.

/// Row builder: `(column, value)` pairs in landing order.
macro_rules! row {
    ($($k:literal => $v:expr),* $(,)?) => {
        [$(($k, Cell::from($v))),*]
    };
}

mod day0;
mod days;
mod hr;
mod person;
mod production;
mod products;
mod purchasing;
mod reference;
mod sales;
mod state;
mod values;

use std::collections::BTreeMap;

use chrono::NaiveDate;

pub use super::defs::{PRUNABLE, TABLES, TableDef, bind, prunable_paths, table_defs};
use super::spill::SpillStore;
pub use super::spill::{SpillOptions, SpillStats};
pub use super::table::TableData;
use crate::error::{Error, Result};
pub use state::{DayDelta, Generator, GeneratorOptions};
use state::{DayLog, World};
pub use values::BASE_END;
use values::{add_days, step_rng};

fn table_index(table: &str) -> Option<usize> {
    TABLES.iter().position(|&t| t == table)
}

impl Generator {
    /// The data set at day 0.
    pub fn new(options: GeneratorOptions) -> Result<Self> {
        Self::build(options, vec![None; TABLES.len()], None)
    }

    /// The data set at `day`, without the rows of [`PRUNABLE`] tables
    /// modified before their horizon: `horizons` maps API paths to dates
    /// (paths of other tables are ignored; an unknown path is an error).
    pub fn with_horizons(
        options: GeneratorOptions,
        day: u32,
        horizons: &BTreeMap<String, NaiveDate>,
    ) -> Result<Self> {
        Self::with_spill(options, day, horizons, None)
    }

    /// [`Generator::with_horizons`], spilling full chunks of the
    /// [`PRUNABLE`] tables to a temporary file as [`SpillOptions`] says
    /// (`None`: everything in memory). The data is the same either way;
    /// the spill directory goes when the generator (and every clone of it
    /// or of its tables) is dropped.
    pub fn with_spill(
        options: GeneratorOptions,
        day: u32,
        horizons: &BTreeMap<String, NaiveDate>,
        spill: Option<SpillOptions>,
    ) -> Result<Self> {
        let defs = table_defs()?;
        let mut per_table = vec![None; TABLES.len()];
        for (path, date) in horizons {
            let i = defs
                .iter()
                .position(|d| d.api_path == *path)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "horizon for `{path}`: not a resource of the embedded generator"
                    ))
                })?;
            if PRUNABLE.contains(&i) {
                per_table[i] = Some(*date);
            }
        }
        let mut g = Self::build(options, per_table, spill)?;
        g.advance_to(day)?;
        Ok(g)
    }

    fn build(
        options: GeneratorOptions,
        horizons: Vec<Option<NaiveDate>>,
        spill: Option<SpillOptions>,
    ) -> Result<Self> {
        if !options.scale.is_finite() || options.scale <= 0.0 || options.scale > 100.0 {
            return Err(Error::invalid(format!(
                "generator scale {} is out of range: expected 0 < scale <= 100",
                options.scale
            )));
        }
        let store = spill.as_ref().map(SpillStore::new).transpose()?;
        let mut g = Generator {
            options,
            day: 0,
            tables: table_defs()?
                .iter()
                .zip(&horizons)
                .map(|(def, h)| TableData::with_horizon(def, *h).spilling(store.clone()))
                .collect(),
            horizons,
            spill,
            store,
            world: World::default(),
            deltas: Vec::new(),
        };
        g.build_day0()?;
        g.spill_settled();
        g.spill_failure()?;
        Ok(g)
    }

    /// The first failure to write a spilled chunk, if any.
    fn spill_failure(&self) -> Result<()> {
        self.store.as_ref().map_or(Ok(()), |s| s.failure())
    }

    /// The spill directory, when the generator spills (see
    /// [`Generator::with_spill`]).
    pub fn spill_dir(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(|s| s.dir())
    }

    /// When the generator spills: what its tables hold in memory, what
    /// was spilled and read back.
    pub fn spill_stats(&self) -> Option<SpillStats> {
        self.store.as_ref().map(|s| s.stats())
    }

    /// The data set at `day` (day 0 plus `day` days of change).
    pub fn at_day(options: GeneratorOptions, day: u32) -> Result<Self> {
        let mut g = Self::new(options)?;
        g.advance_to(day)?;
        Ok(g)
    }

    /// The options this generator was built with.
    pub fn options(&self) -> GeneratorOptions {
        self.options
    }

    /// The current simulated day.
    pub fn day(&self) -> u32 {
        self.day
    }

    /// The `modified_date` carried by the changes of `day` (day 0: the last
    /// date of the initial history).
    pub fn date_of_day(day: u32) -> NaiveDate {
        add_days(BASE_END, i64::from(day))
    }

    /// Move to `day`: forward by simulating the missing days, backward by
    /// rebuilding from day 0 (same result as having stopped there).
    pub fn advance_to(&mut self, day: u32) -> Result<()> {
        if day < self.day {
            *self = Self::build(self.options, self.horizons.clone(), self.spill.clone())?;
        }
        while self.day < day {
            self.advance();
        }
        self.spill_failure()
    }

    /// Simulate one more day and return what it changed.
    pub fn advance(&mut self) -> &DayDelta {
        let day = self.day + 1;
        let mut log = DayLog::new(Self::date_of_day(day));
        let mut rng = step_rng(self.options.seed, 1_000_000 + u64::from(day));
        self.simulate_day(day, &mut rng, &mut log);
        let mut delta = DayDelta {
            day,
            date: log.date,
            ..DayDelta::default()
        };
        for (i, table) in TABLES.iter().enumerate() {
            let added = log.added[i].len();
            let modified = log.modified[i].difference(&log.added[i]).count();
            if added > 0 {
                delta.added.insert(table.to_string(), added);
            }
            if modified > 0 {
                delta.modified.insert(table.to_string(), modified);
            }
        }
        self.day = day;
        self.deltas.push(delta);
        self.spill_settled();
        &self.deltas[self.deltas.len() - 1]
    }

    /// All tables, in pipeline order.
    pub fn tables(&self) -> &[TableData] {
        &self.tables
    }

    /// A table by landing name.
    pub fn table(&self, table: &str) -> Option<&TableData> {
        table_index(table).map(|i| &self.tables[i])
    }

    /// A table by API path (`/Customers`).
    pub fn table_by_path(&self, api_path: &str) -> Option<&TableData> {
        self.tables.iter().find(|t| t.def.api_path == api_path)
    }

    /// Row count per landing table.
    pub fn row_counts(&self) -> BTreeMap<String, usize> {
        self.tables
            .iter()
            .map(|t| (t.def.table.to_string(), t.len()))
            .collect()
    }

    /// What each simulated day changed: `deltas()[i]` is day `i + 1`.
    pub fn deltas(&self) -> &[DayDelta] {
        &self.deltas
    }

    /// What `day` changed (`None` for day 0 or a day not simulated yet).
    pub fn delta(&self, day: u32) -> Option<&DayDelta> {
        if day == 0 {
            return None;
        }
        self.deltas.get(day as usize - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 over every table's name, columns and rows, in order.
    fn digest(g: &Generator) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for t in g.tables() {
            h.update(t.def.table.as_bytes());
            h.update(t.columns.join(",").as_bytes());
            for r in t.rows() {
                for v in r.expect("row").iter() {
                    h.update(v.to_string().as_bytes());
                    h.update(b"\x1f");
                }
                h.update(b"\n");
            }
        }
        format!("{:x}", h.finalize())
    }

    /// The same seed gives the same data set in every version: speed-ups of
    /// the generator (e.g. building independent parts on several threads)
    /// must not change a single value. The digests pin day 0 and day 3.
    #[test]
    fn data_set_is_pinned_by_seed() {
        let options = GeneratorOptions {
            scale: 0.05,
            ..GeneratorOptions::default()
        };
        assert_pinned(Generator::new(options).expect("generator"));
    }

    /// `g` (scale 0.05, day 0) holds the pinned data set, and so it does
    /// after three days.
    fn assert_pinned(mut g: Generator) {
        assert_eq!(
            digest(&g),
            "8a6b3500117092cf1fffe7390625a2dbd7f2a65833ef18a8d79b8503dfeaba07"
        );
        g.advance_to(3).expect("advance");
        assert_eq!(
            digest(&g),
            "720c5854ff2f343e4ac914e598e65025776d536b1105dcdad50fec180cce7942"
        );
    }

    /// The same digests when every full chunk of the append-only tables is
    /// spilled (and read back for the digest).
    #[test]
    fn spilling_keeps_the_pinned_data_set() {
        let options = GeneratorOptions {
            scale: 0.05,
            ..GeneratorOptions::default()
        };
        let spill = Some(SpillOptions::above(0));
        let g = Generator::with_spill(options, 0, &BTreeMap::new(), spill).expect("generator");
        assert!(g.tables().iter().any(|t| t.spilled_chunks() > 0));
        assert_pinned(g);
    }
}
