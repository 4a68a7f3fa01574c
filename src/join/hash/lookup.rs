//! Finding the candidates of left rows in the table: each row's group
//! (through the key index), then the range of the group's versions that
//! satisfy both bound comparisons, as a [`Span`]. Rows are looked up in
//! phases over a chunk so their cache misses overlap; a row with no
//! joinable key, or a key absent on the right, gets [`NO_GROUP`].

use datafusion::common::{DataFusionError, Result};

use super::keys::{JoinColumns, Keys};
use super::table::{EMPTY, GroupView, HashTable, KeyIndex, NO_SLOT, dense_slot};

/// Where a left row's candidates are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// Arena offset of the row's group, or [`NO_GROUP`].
    pub(super) group: usize,
    /// Monotone group: the candidates are the group's positions `lo..hi`.
    /// Tree group (`lo == TREE`): `hi` is the start prefix `p` to query.
    pub(super) lo: usize,
    pub(super) hi: usize,
}

/// [`Span::lo`] of a group searched with its max-tree.
pub(super) const TREE: usize = usize::MAX;

/// A left row without a group (not joinable, or key absent on the right).
pub(super) const NO_GROUP: usize = usize::MAX;

/// Rows looked up at a time: enough for their cache misses to overlap, few
/// enough that the index slots and group records they touched are still
/// cached when the rows are emitted.
pub(super) const LOOKUP_CHUNK: usize = 256;

/// The number of leading `j < len` satisfying `pred` (which holds on a
/// prefix of `0..len`), by binary search.
#[inline]
fn partition_point_by(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The smallest `lo <= p` such that `ok` holds on all of `lo..p`, where `ok`
/// fails on a prefix of `0..p` and holds on the rest: an exponential search
/// down from `p`, so it reads only versions near `p` (already cached by the
/// start search) when the matches are few. O(log(p - lo)).
#[inline]
fn gallop_down(p: usize, ok: impl Fn(usize) -> bool) -> usize {
    let mut hi = p; // `ok` holds on hi..p
    let mut step = 1;
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if ok(probe) {
            hi = probe;
            step *= 2;
        } else {
            // The answer is in probe + 1..=hi.
            let from = probe + 1;
            return from + partition_point_by(hi - from, |i| !ok(from + i));
        }
    }
    0
}

/// Reused buffers of [`lookup_spans`].
#[derive(Default)]
pub(super) struct LookupScratch {
    pub(super) hashes: Vec<u64>,
    pub(super) first: Vec<(usize, u64)>,
    pub(super) groups: Vec<usize>,
    pub(super) views: Vec<GroupView>,
    pub(super) words: Vec<i64>,
}

/// Append to `out` the span of each row in `rows`, in phases: find every
/// row's group (dense index: one array read; hashed index: hash all keys,
/// read each hash's first slot, confirm the keys against the group
/// records); then binary-search each row's range in its group. Each phase
/// is a short loop whose iterations are independent, so the cache misses of
/// many rows overlap (one row at a time would wait for each miss in turn).
pub(super) fn lookup_spans<I: Iterator<Item = usize> + Clone>(
    table: &HashTable,
    cols: &JoinColumns,
    rows: I,
    known_groups: Option<&[usize]>,
    (start_inclusive, end_inclusive): (bool, bool),
    scratch: &mut LookupScratch,
    out: &mut Vec<Span>,
) -> Result<()> {
    let LookupScratch {
        hashes,
        first,
        groups,
        views,
        words,
    } = scratch;
    groups.clear();
    match known_groups {
        Some(known) => groups.extend(rows.clone().map(|r| known[r])),
        None => find_groups(table, cols, rows.clone(), hashes, first, words, groups)?,
    }
    // Read every group's header first: independent loads whose cache
    // misses overlap, and they bring in the first starts too.
    views.clear();
    views.extend(groups.iter().map(|&group| {
        if group == NO_GROUP {
            GroupView {
                data: 0,
                len: 0,
                tree: None,
            }
        } else {
            table.group(group)
        }
    }));
    let arena = &table.arena;
    out.extend(
        rows.zip(groups.iter().zip(views.iter()))
            .map(|(r, (&group, &g))| {
                if group == NO_GROUP {
                    return Span {
                        group,
                        lo: 0,
                        hi: 0,
                    };
                }
                let d = g.data;
                let (ls, le) = (cols.start[r], cols.end[r]);
                let p = if start_inclusive {
                    partition_point_by(g.len, |j| arena[d + j] <= le)
                } else {
                    partition_point_by(g.len, |j| arena[d + j] < le)
                };
                let e = d + g.len;
                let lo = match g.tree {
                    None if end_inclusive => gallop_down(p, |j| ls <= arena[e + j]),
                    None => gallop_down(p, |j| ls < arena[e + j]),
                    Some(_) => TREE,
                };
                Span { group, lo, hi: p }
            }),
    );
    Ok(())
}

/// Append to `groups` the arena offset of each row's group ([`NO_GROUP`]
/// for rows that are not joinable or whose key is absent), in phases (see
/// [`lookup_spans`]).
pub(super) fn find_groups<I: Iterator<Item = usize> + Clone>(
    table: &HashTable,
    cols: &JoinColumns,
    rows: I,
    hashes: &mut Vec<u64>,
    first: &mut Vec<(usize, u64)>,
    words: &mut Vec<i64>,
    groups: &mut Vec<usize>,
) -> Result<()> {
    match (&table.index, &cols.keys) {
        (KeyIndex::Dense { min, slots }, Keys::Int(values)) => {
            groups.extend(rows.clone().map(|r| {
                if !cols.joinable(r) {
                    return NO_GROUP;
                }
                match dense_slot(values[r], *min, slots.len()).map(|d| slots[d]) {
                    Some(off) if off != NO_SLOT => off as usize,
                    _ => NO_GROUP,
                }
            }));
        }
        (KeyIndex::Dense { .. }, Keys::Rows(_)) => {
            return Err(DataFusionError::Internal(
                "PitJoin: dense index probed with row-format keys".into(),
            ));
        }
        (KeyIndex::Hashed(index), keys) => {
            hashes.clear();
            hashes.extend(rows.clone().map(|r| keys.hash(r)));
            first.clear();
            first.extend(rows.clone().zip(hashes.iter()).map(|(r, &h)| {
                if cols.joinable(r) {
                    index.first(h)
                } else {
                    (NO_GROUP, EMPTY)
                }
            }));
            for (i, r) in rows.clone().enumerate() {
                let (slot, off) = first[i];
                if off == EMPTY {
                    groups.push(NO_GROUP);
                    continue;
                }
                let len = keys.pack(r, words);
                let found = if table.key_matches(off as usize, len, words) {
                    Some(off as usize)
                } else {
                    // Another key with the same hash took that slot: probe on.
                    index
                        .get_from(slot + 1, hashes[i], |o| {
                            table.key_matches(o as usize, len, words)
                        })
                        .map(|o| o as usize)
                };
                groups.push(found.unwrap_or(NO_GROUP));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallop_down_finds_the_first_of_the_satisfying_suffix() {
        let ends = [1, 3, 3, 5, 8, 8, 9, 12, 20];
        for p in 0..=ends.len() {
            for ls in 0..22 {
                for inclusive in [false, true] {
                    let ok = |j: usize| {
                        if inclusive {
                            ls <= ends[j]
                        } else {
                            ls < ends[j]
                        }
                    };
                    let expected = (0..p).find(|&j| ok(j)).unwrap_or(p);
                    assert_eq!(gallop_down(p, ok), expected, "p={p} ls={ls}");
                }
            }
        }
        assert_eq!(partition_point_by(5, |j| j < 3), 3);
        assert_eq!(partition_point_by(0, |_| true), 0);
    }
}
