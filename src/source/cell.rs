//! One value of the embedded source's data set, held compactly.
//!
//! The generator makes hundreds of thousands of rows per run; holding them as
//! `serde_json::Value` cost an allocation per date, GUID and name, which made
//! generating (and freeing) the data set a visible part of every `elt`. A
//! [`Cell`] keeps dates as dates, GUIDs as their 16 bytes and catalogue names
//! as `&'static str`, and becomes JSON only when the server writes a page.
//!
//! # Invariants
//! - The JSON a cell serialises to is exactly what the OData API gives (and
//!   what `serde_json::Value` made of the same value gave before): `Date` as
//!   `"YYYY-MM-DD"`, `Timestamp` as `"YYYY-MM-DDT00:00:00Z"`, `Guid` as a
//!   lowercase hyphenated string, non-finite floats as `null`.
//! - [`Cell`]'s `Display` is that JSON text, so digests and tests written
//!   against `Value::to_string` keep their meaning.
//! - [`Cell::total_cmp`] orders values the way the server sorts keys:
//!   NULL < booleans < numbers < strings; dates, timestamps and GUIDs
//!   compare as their JSON text would.

use std::cmp::Ordering;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};

/// A generated value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// JSON `null`.
    Null,
    /// JSON boolean.
    Bool(bool),
    /// JSON integer.
    Int(i64),
    /// JSON number with a fraction (always finite: `From<f64>` maps
    /// non-finite values to [`Cell::Null`]).
    Float(f64),
    /// A calendar date, `"YYYY-MM-DD"`.
    Date(NaiveDate),
    /// Midnight UTC of a date, `"YYYY-MM-DDT00:00:00Z"`.
    Timestamp(NaiveDate),
    /// A GUID, as its 16 bytes.
    Guid([u8; 16]),
    /// Text that lives for the whole program (names from the catalogues).
    Static(&'static str),
    /// Text made at run time.
    Text(Box<str>),
}

impl Cell {
    /// Whether the cell is JSON `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The boolean, if the cell holds one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Cell::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if the cell holds one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float (integers included), if the cell holds one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The text, if the cell holds text (dates and GUIDs are not text here:
    /// see [`Cell::date`] and the JSON form).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Static(s) => Some(s),
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The date of a `Date` or `Timestamp` cell.
    pub fn date(&self) -> Option<NaiveDate> {
        match self {
            Cell::Date(d) | Cell::Timestamp(d) => Some(*d),
            _ => None,
        }
    }

    /// The cell as a `serde_json::Value` (for tests and one-off uses; the
    /// server serialises cells directly).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A total order for sorting keys: NULL, booleans, numbers (integers
    /// exactly, otherwise as floats), then strings by their JSON text.
    pub fn total_cmp(&self, other: &Cell) -> Ordering {
        fn rank(c: &Cell) -> u8 {
            match c {
                Cell::Null => 0,
                Cell::Bool(_) => 1,
                Cell::Int(_) | Cell::Float(_) => 2,
                _ => 3,
            }
        }
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (a, b) if rank(a) == 2 && rank(b) == 2 => a
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0)),
            (a, b) if rank(a) == 3 && rank(b) == 3 => match (a, b) {
                // ISO dates and hyphenated GUIDs sort as their text does.
                (Cell::Date(x), Cell::Date(y)) | (Cell::Timestamp(x), Cell::Timestamp(y)) => {
                    x.cmp(y)
                }
                (Cell::Guid(x), Cell::Guid(y)) => x.cmp(y),
                _ => match (a.as_str(), b.as_str()) {
                    (Some(x), Some(y)) => x.cmp(y),
                    _ => {
                        let text = |c: &Cell| c.to_json().as_str().map(str::to_owned);
                        text(a).cmp(&text(b))
                    }
                },
            },
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

/// `YYYY-MM-DD` for years 0..=9999 (out-of-range years clamp to those
/// bounds; the generator's dates lie in 2011..2100).
pub(super) fn iso_date_bytes(d: NaiveDate) -> [u8; 10] {
    let y = d.year().clamp(0, 9999) as u32;
    let (m, day) = (d.month(), d.day());
    let digit = |n: u32| b'0' + (n % 10) as u8;
    [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(day / 10),
        digit(day),
    ]
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_unit(),
            Cell::Bool(b) => s.serialize_bool(*b),
            Cell::Int(i) => s.serialize_i64(*i),
            Cell::Float(f) => s.serialize_f64(*f),
            Cell::Static(t) => s.serialize_str(t),
            Cell::Text(t) => s.serialize_str(t),
            Cell::Date(d) => {
                let b = iso_date_bytes(*d);
                s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
            }
            Cell::Timestamp(d) => {
                let mut b = [0u8; 20];
                b[..10].copy_from_slice(&iso_date_bytes(*d));
                b[10..].copy_from_slice(b"T00:00:00Z");
                s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
            }
            Cell::Guid(bytes) => s.serialize_str(
                uuid::Uuid::from_bytes(*bytes)
                    .hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer()),
            ),
        }
    }
}

/// The cell's JSON text (`"2014-06-30"` with its quotes, `42`, `null`).
impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(v: $t) -> Self {
                Cell::Int(i64::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        if v.is_finite() {
            Cell::Float(v)
        } else {
            Cell::Null
        }
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}

impl From<&'static str> for Cell {
    fn from(v: &'static str) -> Self {
        Cell::Static(v)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v.into_boxed_str())
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_text_matches_serde_json_values() {
        let d = NaiveDate::from_ymd_opt(2014, 6, 3).expect("date");
        let guid = [
            0x6f, 0x9a, 0x1b, 0x02, 0xc3, 0x4d, 0x4e, 0x5f, 0x86, 0x07, 0x18, 0x29, 0x3a, 0x4b,
            0x5c, 0x6d,
        ];
        let cases: Vec<(Cell, Value)> = vec![
            (Cell::Null, Value::Null),
            (Cell::from(true), Value::from(true)),
            (Cell::from(-42i64), Value::from(-42i64)),
            (Cell::from(7u32), Value::from(7u32)),
            (Cell::from(2.0f64), Value::from(2.0f64)),
            (Cell::from(1234.5678f64), Value::from(1234.5678f64)),
            (Cell::from(f64::NAN), Value::from(f64::NAN)),
            (Cell::from("Mountain-100"), Value::from("Mountain-100")),
            (
                Cell::from("a \"quoted\"\nline".to_string()),
                Value::from("a \"quoted\"\nline"),
            ),
            (Cell::from(None::<i64>), Value::Null),
            (Cell::Date(d), Value::from("2014-06-03")),
            (Cell::Timestamp(d), Value::from("2014-06-03T00:00:00Z")),
            (
                Cell::Guid(guid),
                Value::from("6f9a1b02-c34d-4e5f-8607-18293a4b5c6d"),
            ),
        ];
        for (cell, value) in cases {
            assert_eq!(cell.to_string(), value.to_string(), "{cell:?}");
            assert_eq!(cell.to_json(), value, "{cell:?}");
        }
    }

    #[test]
    fn dates_format_like_chrono_across_years() {
        let mut d = NaiveDate::from_ymd_opt(1999, 12, 25).expect("date");
        for _ in 0..800 {
            assert_eq!(
                Cell::Date(d).to_json(),
                Value::from(d.format("%Y-%m-%d").to_string())
            );
            assert_eq!(
                Cell::Timestamp(d).to_json(),
                Value::from(d.format("%Y-%m-%dT00:00:00Z").to_string())
            );
            d = d + chrono::Days::new(17);
        }
    }

    #[test]
    fn total_order_matches_the_json_text_order_within_a_kind() {
        let d = |y, m, dd| Cell::Date(NaiveDate::from_ymd_opt(y, m, dd).expect("date"));
        assert_eq!(d(2014, 6, 30).total_cmp(&d(2014, 7, 1)), Ordering::Less);
        assert_eq!(
            Cell::Guid([1; 16]).total_cmp(&Cell::Guid([2; 16])),
            Ordering::Less
        );
        assert_eq!(Cell::Int(10).total_cmp(&Cell::Int(9)), Ordering::Greater);
        assert_eq!(Cell::Int(2).total_cmp(&Cell::Float(1.5)), Ordering::Greater);
        assert_eq!(
            Cell::from("b").total_cmp(&Cell::from("a".to_string())),
            Ordering::Greater
        );
        assert_eq!(
            d(2014, 6, 30).total_cmp(&Cell::from("2014-06-30")),
            Ordering::Equal
        );
        assert_eq!(Cell::Null.total_cmp(&Cell::Int(0)), Ordering::Less);
        assert_eq!(Cell::Int(0).total_cmp(&Cell::from("0")), Ordering::Less);
    }
}
