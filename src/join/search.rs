//! Range search within one key group, shared by both strategies.
//!
//! A *group* is the joinable right rows of one key, as encoded bounds
//! ([`super::bounds`]) sorted by `(start, end)`: starts `s_0 <= s_1 <= ...`,
//! ends `e_j`. For a left row `(ls, le)` the matches are the `j` with
//! `s_j <(=) le` and `ls <(=) e_j`:
//!
//! 1. [`start_prefix`]: since starts are sorted, the `j` satisfying the start
//!    comparison are exactly `0..p`.
//! 2. Among `0..p`, the matches are the `j` with `ls <(=) e_j`:
//!    * if the ends are non-decreasing (always true for SCD2 histories;
//!      checked once per group), the `j` failing the comparison form a
//!      prefix, so the matches are exactly `lo..p` with `lo` from
//!      [`end_lower`];
//!    * otherwise a max-segment-tree over the ends ([`push_max_tree`]) is
//!      descended by [`max_tree_query`], pruning every subtree whose maximum
//!      fails the comparison and every subtree outside `0..p`; each reported
//!      leaf satisfies both comparisons and each matching leaf is reached
//!      because no ancestor of it is pruned.
//!
//! Cost: O(log m) per left row plus O(matches) (O((1 + matches) log m) on the
//! tree path) for a group of m rows. No assumption is made on the intervals
//! being well formed: empty, zero-length or inverted intervals are simply
//! compared.

/// Number of leading `starts` (sorted ascending) with `s < le`, or `s <= le`
/// when `inclusive`.
#[inline]
pub(crate) fn start_prefix(starts: &[i64], le: i64, inclusive: bool) -> usize {
    if inclusive {
        starts.partition_point(|&s| s <= le)
    } else {
        starts.partition_point(|&s| s < le)
    }
}

/// First index of `ends` (non-decreasing) with `ls < e`, or `ls <= e` when
/// `inclusive`; every later index satisfies the comparison too.
#[inline]
pub(crate) fn end_lower(ends: &[i64], ls: i64, inclusive: bool) -> usize {
    if inclusive {
        ends.partition_point(|&e| e < ls)
    } else {
        ends.partition_point(|&e| e <= ls)
    }
}

/// Whether `ends` is non-decreasing (then [`end_lower`] applies).
#[inline]
pub(crate) fn is_monotone(ends: &[i64]) -> bool {
    ends.windows(2).all(|w| w[0] <= w[1])
}

/// Append a max-segment-tree over `ends` to `tree`; returns its leaf count
/// (a power of two). The tree occupies the `2 * size` entries appended:
/// node `i` (1-based) at `tree[base + i]`, leaves from `base + size`.
pub(crate) fn push_max_tree(ends: &[i64], tree: &mut Vec<i64>) -> usize {
    let size = ends.len().next_power_of_two();
    let base = tree.len();
    tree.resize(base + 2 * size, i64::MIN);
    tree[base + size..base + size + ends.len()].copy_from_slice(ends);
    for i in (1..size).rev() {
        tree[base + i] = tree[base + 2 * i].max(tree[base + 2 * i + 1]);
    }
    size
}

/// Append to `out`, in increasing order, every `j < p` whose end satisfies
/// `ls < e_j` (or `<=` when `inclusive`), using the tree built by
/// [`push_max_tree`] (`tree` starts at that call's `base`).
pub(crate) fn max_tree_query(
    tree: &[i64],
    size: usize,
    p: usize,
    ls: i64,
    inclusive: bool,
    stack: &mut Vec<(usize, usize, usize)>,
    out: &mut Vec<u32>,
) {
    if p == 0 {
        return;
    }
    stack.clear();
    stack.push((1, 0, size));
    while let Some((node, lo, hi)) = stack.pop() {
        if lo >= p {
            continue;
        }
        let Some(&m) = tree.get(node) else {
            continue;
        };
        let ok = if inclusive { ls <= m } else { ls < m };
        if !ok {
            continue;
        }
        if hi - lo == 1 {
            out.push(lo as u32);
            continue;
        }
        let mid = (lo + hi) / 2;
        stack.push((2 * node + 1, mid, hi));
        stack.push((2 * node, lo, mid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_query_reports_exactly_the_matches_in_order() {
        let ends = [10, 2, 8, 1, 9, 3, 7];
        // A tree appended after other data starts at its own base.
        let mut tree = vec![42, 43, 44];
        let size = push_max_tree(&ends, &mut tree);
        assert_eq!(size, 8);
        let tree = &tree[3..];
        assert!(!is_monotone(&ends));
        let mut stack = Vec::new();
        for p in 0..=ends.len() {
            for ls in -1..12 {
                for inclusive in [false, true] {
                    let mut out = Vec::new();
                    max_tree_query(tree, size, p, ls, inclusive, &mut stack, &mut out);
                    let expected: Vec<u32> = (0..p)
                        .filter(|&j| {
                            if inclusive {
                                ls <= ends[j]
                            } else {
                                ls < ends[j]
                            }
                        })
                        .map(|j| j as u32)
                        .collect();
                    assert_eq!(out, expected, "p={p} ls={ls} inclusive={inclusive}");
                }
            }
        }
    }

    #[test]
    fn binary_searches_honour_inclusivity() {
        let starts = [0, 2, 2, 5];
        assert_eq!(start_prefix(&starts, 2, false), 1);
        assert_eq!(start_prefix(&starts, 2, true), 3);
        assert_eq!(start_prefix(&starts, -1, true), 0);
        assert_eq!(start_prefix(&starts, 9, false), 4);
        let ends = [3, 5, 5, 9];
        assert_eq!(end_lower(&ends, 5, false), 3);
        assert_eq!(end_lower(&ends, 5, true), 1);
        assert_eq!(end_lower(&ends, 10, true), 4);
        assert!(is_monotone(&ends));
        assert!(is_monotone(&[]));
    }
}
