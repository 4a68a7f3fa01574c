//! Order-preserving encoding of range bounds into `i64`.
//!
//! The sweep compares left bounds with right bounds millions of times, so
//! every supported bound type is mapped once per input batch to an `i64`
//! such that `a < b` (as DataFusion compares the typed values) iff
//! `enc(a) < enc(b)`. Both operands of a range comparison always have the
//! same Arrow type (the rule and `try_new` check this), so the two sides use
//! the same mapping.
//!
//! Supported: all signed and unsigned integers, `Date32/64`, `Time32/64`,
//! `Timestamp` (any unit and time zone: the stored value is UTC), `Duration`,
//! and `Float32/64` (encoded in IEEE-754 total order, which is the order
//! arrow's comparison kernels use, so `-0.0 < 0.0` and NaN is largest).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{DataFusionError, Result};

/// Whether a bound of this type can be used by the PIT join.
pub fn is_supported_bound_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Timestamp(_, _)
            | DataType::Duration(_)
    )
}

/// Order-preserving key of an `f64` under IEEE-754 total order.
#[inline]
fn f64_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Order-preserving key of an `f32` under IEEE-754 total order.
#[inline]
fn f32_key(v: f32) -> i64 {
    let bits = v.to_bits() as i32;
    i64::from(bits ^ ((((bits >> 31) as u32) >> 1) as i32))
}

macro_rules! encode_as {
    ($array:expr, $out:expr, $t:ty, $f:expr) => {{
        let values = $array.as_primitive::<$t>().values();
        $out.extend(values.iter().map(|v| $f(*v)));
    }};
}

/// Encode `array` into `out` (cleared first); returns the array's nulls.
/// Values at null slots are unspecified and must not be used.
pub fn encode_bounds(array: &ArrayRef, out: &mut Vec<i64>) -> Result<Option<NullBuffer>> {
    out.clear();
    out.reserve(array.len());
    match array.data_type() {
        DataType::Int8 => encode_as!(array, out, Int8Type, i64::from),
        DataType::Int16 => encode_as!(array, out, Int16Type, i64::from),
        DataType::Int32 => encode_as!(array, out, Int32Type, i64::from),
        DataType::Int64 => encode_as!(array, out, Int64Type, |v: i64| v),
        DataType::UInt8 => encode_as!(array, out, UInt8Type, i64::from),
        DataType::UInt16 => encode_as!(array, out, UInt16Type, i64::from),
        DataType::UInt32 => encode_as!(array, out, UInt32Type, i64::from),
        DataType::UInt64 => encode_as!(array, out, UInt64Type, |v: u64| (v as i64) ^ i64::MIN),
        DataType::Float32 => encode_as!(array, out, Float32Type, f32_key),
        DataType::Float64 => encode_as!(array, out, Float64Type, f64_key),
        DataType::Date32 => encode_as!(array, out, Date32Type, i64::from),
        DataType::Date64 => encode_as!(array, out, Date64Type, |v: i64| v),
        DataType::Time32(TimeUnit::Second) => {
            encode_as!(array, out, Time32SecondType, i64::from)
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            encode_as!(array, out, Time32MillisecondType, i64::from)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            encode_as!(array, out, Time64MicrosecondType, |v: i64| v)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            encode_as!(array, out, Time64NanosecondType, |v: i64| v)
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            encode_as!(array, out, TimestampSecondType, |v: i64| v)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            encode_as!(array, out, TimestampMillisecondType, |v: i64| v)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            encode_as!(array, out, TimestampMicrosecondType, |v: i64| v)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            encode_as!(array, out, TimestampNanosecondType, |v: i64| v)
        }
        DataType::Duration(TimeUnit::Second) => {
            encode_as!(array, out, DurationSecondType, |v: i64| v)
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            encode_as!(array, out, DurationMillisecondType, |v: i64| v)
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            encode_as!(array, out, DurationMicrosecondType, |v: i64| v)
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            encode_as!(array, out, DurationNanosecondType, |v: i64| v)
        }
        other => {
            return Err(DataFusionError::Execution(format!(
                "PitJoin: unsupported range bound type {other}"
            )));
        }
    }
    Ok(array.logical_nulls())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, UInt64Array};
    use std::sync::Arc;

    #[test]
    fn float_encoding_follows_total_order() {
        let vals = [
            f64::NEG_INFINITY,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
            f64::NAN,
        ];
        let arr: ArrayRef = Arc::new(Float64Array::from(vals.to_vec()));
        let mut out = Vec::new();
        encode_bounds(&arr, &mut out).expect("encode");
        for w in out.windows(2) {
            assert!(w[0] < w[1], "{:?}", out);
        }
    }

    #[test]
    fn u64_encoding_is_order_preserving() {
        let arr: ArrayRef = Arc::new(UInt64Array::from(vec![0, 1, u64::MAX / 2 + 1, u64::MAX]));
        let mut out = Vec::new();
        encode_bounds(&arr, &mut out).expect("encode");
        for w in out.windows(2) {
            assert!(w[0] < w[1]);
        }
    }
}
