//! One side's join columns as the table and the probe compare them: keys
//! in a [`KeyMode`] (one integer column as `i64`, anything else as arrow
//! rows), bounds encoded as order-preserving `i64`, and which rows are
//! joinable (no NULL key or bound). Equal keys have equal bytes, hence
//! equal [`hash_key`] hashes.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExprRef;

use super::super::bounds::encode_bounds;

/// Hash of a key's row-format bytes: a multiply-rotate mix over 8-byte
/// words and a final avalanche (murmur3's `fmix64`), so every output bit
/// depends on every input bit (the index uses the low bits). Equal keys
/// have equal bytes, hence equal hashes; distinct keys may collide, which
/// the index resolves by comparing the keys.
#[inline]
pub(crate) fn hash_key(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let tail = chunks
        .remainder()
        .iter()
        .enumerate()
        .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
    h = (h ^ tail).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    (h ^ (h >> 33)) & HASH_MASK
}

/// Bits of [`hash_key`] kept: all of them, except in this crate's unit tests,
/// which narrow hashes to 2 bits so that distinct keys collide and the
/// collision handling of [`Slots`](super::table::Slots) is exercised.
#[cfg(not(test))]
const HASH_MASK: u64 = u64::MAX;
#[cfg(test)]
const HASH_MASK: u64 = 0b11;

/// Pack key bytes into little-endian words (zero-padded), the form in which
/// the table stores keys.
#[inline]
pub(super) fn pack_key(bytes: &[u8], out: &mut Vec<i64>) {
    out.clear();
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        out.push(i64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let w = rest
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
        out.push(w as i64);
    }
}

/// The join columns of one side.
#[derive(Clone)]
pub(crate) struct SideExprs {
    pub keys: Vec<PhysicalExprRef>,
    pub start: PhysicalExprRef,
    pub end: PhysicalExprRef,
}

/// How a table's keys are represented, decided by the key types alone (so
/// both sides agree: their key types are equal).
#[derive(Debug, Clone)]
pub(crate) enum KeyMode {
    /// Any keys, in arrow's row format.
    Rows(Vec<SortField>),
    /// One integer key column that widens to `i64` without loss (`Int8` to
    /// `Int64`, `UInt8` to `UInt32`): compared as its `i64` value, with no
    /// row conversion. Its "key bytes" (for hashing and the arena record)
    /// are the value's 8 little-endian bytes.
    Int,
}

impl KeyMode {
    /// The mode for keys of these types.
    pub(crate) fn for_types(types: Vec<DataType>) -> Self {
        match types.as_slice() {
            [t] if is_int_key(t) => Self::Int,
            _ => Self::Rows(types.into_iter().map(SortField::new).collect()),
        }
    }
}

/// Whether a key column of this type takes [`KeyMode::Int`].
fn is_int_key(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// Evaluated keys of a batch.
pub(super) enum Keys {
    Rows(Rows),
    /// [`KeyMode::Int`]: the values (arbitrary under NULL).
    Int(ScalarBuffer<i64>),
}

impl Keys {
    /// Row-format bytes of row `i` ([`KeyMode::Rows`] only).
    #[inline]
    fn bytes(rows: &Rows, i: usize) -> &[u8] {
        rows.row(i).data()
    }

    /// Hash of row `i`'s key bytes ([`hash_key`]).
    #[inline]
    pub(super) fn hash(&self, i: usize) -> u64 {
        match self {
            Self::Rows(rows) => hash_key(Self::bytes(rows, i)),
            Self::Int(v) => hash_key(&v[i].to_le_bytes()),
        }
    }

    /// Whether rows `a` and `b` have equal keys.
    #[inline]
    pub(super) fn eq(&self, a: usize, b: usize) -> bool {
        match self {
            Self::Rows(rows) => Self::bytes(rows, a) == Self::bytes(rows, b),
            Self::Int(v) => v[a] == v[b],
        }
    }

    /// Pack row `i`'s key bytes into `out` ([`pack_key`]); returns their
    /// length.
    #[inline]
    pub(super) fn pack(&self, i: usize, out: &mut Vec<i64>) -> usize {
        match self {
            Self::Rows(rows) => {
                let bytes = Self::bytes(rows, i);
                pack_key(bytes, out);
                bytes.len()
            }
            Self::Int(v) => {
                out.clear();
                out.push(v[i]);
                8
            }
        }
    }

    /// Length of row `i`'s key bytes.
    #[inline]
    pub(super) fn len_of(&self, i: usize) -> usize {
        match self {
            Self::Rows(rows) => Self::bytes(rows, i).len(),
            Self::Int(_) => 8,
        }
    }

    pub(super) fn mem(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.size(),
            // Zero-copy for Int64 keys; a widened copy otherwise.
            Self::Int(v) => v.len() * 8,
        }
    }
}

/// Evaluated join columns of a batch.
pub(super) struct JoinColumns {
    pub(super) keys: Keys,
    /// Row has non-NULL keys and bounds.
    joinable: Option<NullBuffer>,
    pub(super) start: Vec<i64>,
    pub(super) end: Vec<i64>,
}

impl JoinColumns {
    pub(super) fn evaluate(
        batch: &RecordBatch,
        exprs: &SideExprs,
        keys: &KeyEncoder,
    ) -> Result<Self> {
        let n = batch.num_rows();
        let mut joinable: Option<NullBuffer> = None;
        let mut key_arrays = Vec::with_capacity(exprs.keys.len());
        for e in &exprs.keys {
            let a = e.evaluate(batch)?.into_array(n)?;
            joinable = NullBuffer::union(joinable.as_ref(), a.logical_nulls().as_ref());
            key_arrays.push(a);
        }
        let keys = match keys {
            KeyEncoder::Rows(converter) => Keys::Rows(converter.convert_columns(&key_arrays)?),
            KeyEncoder::Int => {
                let [key] = key_arrays.as_slice() else {
                    return Err(DataFusionError::Internal(
                        "PitJoin: integer key mode with several keys".into(),
                    ));
                };
                // Lossless for the types of `is_int_key`.
                let wide = cast(key, &DataType::Int64)?;
                let values = wide.as_primitive_opt::<Int64Type>().ok_or_else(|| {
                    DataFusionError::Internal("PitJoin: integer key did not widen".into())
                })?;
                Keys::Int(values.values().clone())
            }
        };
        let mut start = Vec::new();
        let sn = encode_bounds(&exprs.start.evaluate(batch)?.into_array(n)?, &mut start)?;
        joinable = NullBuffer::union(joinable.as_ref(), sn.as_ref());
        let mut end = Vec::new();
        let en = encode_bounds(&exprs.end.evaluate(batch)?.into_array(n)?, &mut end)?;
        joinable = NullBuffer::union(joinable.as_ref(), en.as_ref());
        Ok(Self {
            keys,
            joinable,
            start,
            end,
        })
    }

    #[inline]
    pub(super) fn joinable(&self, row: usize) -> bool {
        self.joinable.as_ref().is_none_or(|n| n.is_valid(row))
    }

    pub(super) fn mem(&self) -> usize {
        self.keys.mem() + (self.start.capacity() + self.end.capacity()) * 8
    }
}

/// Evaluates keys in a [`KeyMode`].
pub(super) enum KeyEncoder {
    Rows(RowConverter),
    Int,
}

impl KeyEncoder {
    pub(super) fn new(mode: &KeyMode) -> Result<Self> {
        Ok(match mode {
            KeyMode::Rows(fields) => Self::Rows(RowConverter::new(fields.clone())?),
            KeyMode::Int => Self::Int,
        })
    }
}
