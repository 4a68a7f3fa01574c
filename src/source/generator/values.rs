//! Values every area of the generator makes: the fixed dates of the data
//! set, date and money cells, and the random draws (picks, GUIDs, dates).
//! Every draw comes from the `ChaCha8Rng` it is given, so a value depends
//! only on the seed and the order of the draws.

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::cell::{Cell, iso_date_bytes};

/// The last date of the initial (day 0) history.
pub const BASE_END: NaiveDate = match NaiveDate::from_ymd_opt(2014, 6, 30) {
    Some(d) => d,
    None => panic!("valid constant date"),
};
pub(super) const BASE_START: NaiveDate = match NaiveDate::from_ymd_opt(2011, 5, 31) {
    Some(d) => d,
    None => panic!("valid constant date"),
};
pub(super) const REF_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2008, 4, 30) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

pub(super) fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(BASE_START)
}

/// `YYYY-MM-DD`, for dates embedded in text (XML documents).
pub(super) fn iso_date(d: NaiveDate) -> String {
    String::from_utf8_lossy(&iso_date_bytes(d)).into_owned()
}

pub(super) fn date_v(d: NaiveDate) -> Cell {
    Cell::Date(d)
}

pub(super) fn ts_v(d: NaiveDate) -> Cell {
    Cell::Timestamp(d)
}

pub(super) fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).unwrap_or(d)
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap_or(d)
    }
}

pub(super) fn money(x: f64) -> Cell {
    Cell::from((x * 10_000.0).round() / 10_000.0)
}

pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(super) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(super) fn guid(rng: &mut ChaCha8Rng) -> Cell {
    let bytes: [u8; 16] = rng.random();
    Cell::Guid(
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .into_bytes(),
    )
}

pub(super) fn rand_date(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0);
    add_days(from, rng.random_range(0..=span))
}

pub(super) fn scaled(base: f64, scale: f64, floor: usize) -> usize {
    ((base * scale).round() as usize).max(floor)
}

pub(super) fn step_rng(seed: u64, tag: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_date_matches_chrono_formatting() {
        let mut d = ymd(1999, 12, 25);
        for _ in 0..800 {
            assert_eq!(iso_date(d), d.format("%Y-%m-%d").to_string());
            d = add_days(d, 17);
        }
        assert_eq!(iso_date(ymd(2014, 6, 3)), "2014-06-03");
    }
}
