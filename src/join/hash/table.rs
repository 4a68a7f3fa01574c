//! The built table of the right input: key index ([`KeyIndex`]: dense
//! array or open-addressing [`Slots`]) and the group arena of
//! [`HashTable`]. Immutable once built, so probes of any partition share
//! it; every index value is the arena offset of its group's record.

use arrow::array::RecordBatch;
use datafusion::execution::memory_pool::MemoryReservation;

use super::keys::{JoinColumns, Keys};

/// Value of an empty slot.
pub(super) const EMPTY: u64 = u64::MAX;

/// Open-addressing index from key hash to a value (a group id while
/// building, the group's arena offset afterwards): linear probing, at most
/// half full, so a lookup ends at an empty slot. Distinct keys with equal
/// hashes take distinct slots; lookups confirm the key with `eq`.
pub(super) struct Slots {
    pub(super) slots: Vec<(u64, u64)>,
    mask: usize,
    len: usize,
}

impl Slots {
    pub(super) fn with_capacity(n: usize) -> Self {
        let cap = (n.max(8) * 2).next_power_of_two();
        Self {
            slots: vec![(0, EMPTY); cap],
            mask: cap - 1,
            len: 0,
        }
    }

    #[cfg(test)]
    fn get(&self, hash: u64, eq: impl FnMut(u64) -> bool) -> Option<u64> {
        self.get_from(hash as usize, hash, eq)
    }

    /// [`Self::get`], probing from slot `start` (masked) on.
    #[inline]
    pub(super) fn get_from(
        &self,
        start: usize,
        hash: u64,
        mut eq: impl FnMut(u64) -> bool,
    ) -> Option<u64> {
        let mut i = start & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY {
                return None;
            }
            if h == hash && eq(v) {
                return Some(v);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// `(slot, value)` of the first slot holding `hash`, or `(_, EMPTY)` if
    /// there is none (then no key with this hash is present).
    #[inline]
    pub(super) fn first(&self, hash: u64) -> (usize, u64) {
        let mut i = hash as usize & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY || h == hash {
                return (i, v);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The value of the key, inserting `value` if it is absent.
    pub(super) fn get_or_insert(
        &mut self,
        hash: u64,
        mut eq: impl FnMut(u64) -> bool,
        value: u64,
    ) -> u64 {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut i = hash as usize & self.mask;
        loop {
            let (h, v) = self.slots[i];
            if v == EMPTY {
                self.slots[i] = (hash, value);
                self.len += 1;
                return value;
            }
            if h == hash && eq(v) {
                return v;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![(0, EMPTY); cap]);
        self.mask = cap - 1;
        for (h, v) in old.into_iter().filter(|&(_, v)| v != EMPTY) {
            let mut i = h as usize & self.mask;
            while self.slots[i].1 != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = (h, v);
        }
    }

    fn mem(&self) -> usize {
        self.slots.capacity() * 16
    }
}

/// Slot of an absent key in [`KeyIndex::Dense`].
pub(super) const NO_SLOT: u32 = u32::MAX;

/// Key → group lookup of a [`HashTable`].
pub(super) enum KeyIndex {
    /// Key hash → value, keys confirmed against the group records.
    Hashed(Slots),
    /// [`KeyMode::Int`] keys within `min..min + slots.len()`: key `k` →
    /// `slots[k - min]` ([`NO_SLOT`] when absent). Exact: no hashing and no
    /// key comparison. Chosen when the keys are dense enough that the array
    /// takes at most 16 bytes per joinable row (plus 4 KiB), less than the
    /// hashed index and the arena.
    ///
    /// [`KeyMode::Int`]: super::keys::KeyMode::Int
    Dense { min: i64, slots: Vec<u32> },
}

impl KeyIndex {
    pub(super) fn mem(&self) -> usize {
        match self {
            Self::Hashed(slots) => slots.mem(),
            Self::Dense { slots, .. } => slots.capacity() * 4,
        }
    }
}

/// The dense slot of `key`, if it lies within `min..min + len`.
#[inline]
pub(super) fn dense_slot(key: i64, min: i64, len: usize) -> Option<usize> {
    // `checked_sub` fails only for differences beyond i64, far out of range.
    key.checked_sub(min)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|&d| d < len)
}

/// `(min, len)` of a dense index over the joinable keys, if they are dense
/// enough (see [`KeyIndex::Dense`]); `None` when there are none.
pub(super) fn dense_range(cols: &JoinColumns, n: usize) -> Option<(i64, usize)> {
    let Keys::Int(values) = &cols.keys else {
        return None;
    };
    let (mut min, mut max, mut joinable) = (i64::MAX, i64::MIN, 0usize);
    for (i, &k) in values.iter().enumerate().take(n) {
        if cols.joinable(i) {
            min = min.min(k);
            max = max.max(k);
            joinable += 1;
        }
    }
    if joinable == 0 {
        return None;
    }
    let len = usize::try_from(max.checked_sub(min)?)
        .ok()?
        .checked_add(1)?;
    (len <= 4 * joinable + 1024).then_some((min, len))
}

/// Words before a group's key in the arena: row count, tree base (or -1),
/// key length in bytes.
pub(super) const HEADER: usize = 3;

/// A group's place in the arena.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupView {
    /// Arena index of the group's first start: version `j` has its start
    /// at `data + j`, its end at `data + len + j` and its right row at
    /// `data + 2 * len + j`.
    pub(super) data: usize,
    pub(super) len: usize,
    /// `(base, leaf count)` of the group's max-tree in `trees` when its ends
    /// are not monotone.
    pub(super) tree: Option<(usize, usize)>,
}

/// The right input grouped by key; immutable once built.
///
/// Each group is one record in `arena` (so a lookup touches few cache
/// lines): `[len, tree base or -1, key length in bytes, key words...,
/// starts..., ends..., right rows...]`, with the rows sorted by (start,
/// end). The starts follow the header, so the binary search over them
/// mostly reads the cache lines the header read already brought in.
pub(crate) struct HashTable {
    /// All right rows (including non-joinable ones, never referenced).
    pub(super) batch: RecordBatch,
    /// Key → arena offset of the group.
    pub(super) index: KeyIndex,
    pub(super) arena: Vec<i64>,
    pub(super) trees: Vec<i64>,
    pub(super) groups: usize,
    pub(super) joinable_rows: usize,
    /// Bytes held (as reserved).
    pub(super) mem: usize,
    /// Partition whose task built the table (its metrics carry the build).
    pub(super) built_by: usize,
    pub(super) _reservation: MemoryReservation,
}

impl std::fmt::Debug for HashTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashTable")
            .field("right_rows", &self.batch.num_rows())
            .field("joinable_rows", &self.joinable_rows)
            .field("groups", &self.groups)
            .field("mem", &self.mem)
            .finish()
    }
}

impl HashTable {
    /// Whether the group at `off` has this key (`len` bytes packed as
    /// `words`).
    #[inline]
    pub(super) fn key_matches(&self, off: usize, len: usize, words: &[i64]) -> bool {
        self.arena.get(off + 2) == Some(&(len as i64))
            && self.arena.get(off + HEADER..off + HEADER + words.len()) == Some(words)
    }

    /// Arena offset of the group with this key (hash, length in bytes,
    /// packed words); the probe uses the batched [`lookup_groups`].
    #[cfg(test)]
    pub(super) fn find(&self, hash: u64, len: usize, words: &[i64]) -> Option<usize> {
        match &self.index {
            KeyIndex::Hashed(index) => index
                .get(hash, |off| self.key_matches(off as usize, len, words))
                .map(|off| off as usize),
            KeyIndex::Dense { .. } => None,
        }
    }

    #[inline]
    pub(super) fn group(&self, off: usize) -> GroupView {
        let len = self.arena[off] as usize;
        let tree = self.arena[off + 1];
        let key_len = self.arena[off + 2] as usize;
        GroupView {
            data: off + HEADER + key_len.div_ceil(8),
            len,
            tree: (tree >= 0).then(|| (tree as usize, len.next_power_of_two())),
        }
    }

    /// Bytes held by the table.
    pub(crate) fn mem(&self) -> usize {
        self.mem
    }

    /// Whether no right row can match (the table has no group).
    pub(super) fn is_empty(&self) -> bool {
        self.groups == 0
    }
}
