//! How a `bench elt` sequence grows from its first `elt` day to its last:
//! the wall times of day 1 and the last day and their ratio, the mean wall
//! time of the last [`TAIL_DAYS`] days, and the warehouse's files and bytes
//! after day 1 and after the last day with their ratios.
//!
//! A group of sequences (one executable with one upkeep variant) is
//! summarised figure by figure: each figure is the median of that figure
//! over the sequences, and each ratio the median of the sequences' ratios
//! (not the ratio of two medians), so a summary of one sequence is that
//! sequence's figures. A ratio over zero (a zero-length day 1, an empty
//! warehouse) is absent, shown as `-`.
//!
//! Which days the per-day output shows ([`shown_days`]): every day up to
//! [`TAIL_DAYS`] days, otherwise day 1, every tenth day and the last.

use std::fmt::Write as _;

use super::warehouse_size::DirSize;

/// Days in the tail mean, and the most days shown one by one.
pub const TAIL_DAYS: usize = 10;

/// One sequence's growth from day 1 to its last day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Days run (the last day's number).
    pub days: usize,
    /// Day 1's wall time, seconds.
    pub first_wall: f64,
    /// The last day's wall time, seconds.
    pub last_wall: f64,
    /// The mean wall time of the last `min(TAIL_DAYS, days)` days, seconds.
    pub tail_mean: f64,
    /// The warehouse after day 1.
    pub after_first: DirSize,
    /// The warehouse after the last day.
    pub after_last: DirSize,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

impl Growth {
    /// From each day's wall time (seconds) and the warehouse after it, in
    /// day order; `None` without days or when the two lists differ in length.
    pub fn of(walls: &[f64], sizes: &[DirSize]) -> Option<Growth> {
        if walls.is_empty() || walls.len() != sizes.len() {
            return None;
        }
        let tail = &walls[walls.len().saturating_sub(TAIL_DAYS)..];
        Some(Growth {
            days: walls.len(),
            first_wall: walls[0],
            last_wall: walls[walls.len() - 1],
            tail_mean: tail.iter().sum::<f64>() / tail.len() as f64,
            after_first: sizes[0],
            after_last: sizes[sizes.len() - 1],
        })
    }

    /// The last day's wall time over day 1's.
    pub fn wall_ratio(&self) -> Option<f64> {
        ratio(self.last_wall, self.first_wall)
    }

    /// Files after the last day over files after day 1.
    pub fn files_ratio(&self) -> Option<f64> {
        ratio(self.after_last.files as f64, self.after_first.files as f64)
    }

    /// Bytes after the last day over bytes after day 1.
    pub fn bytes_ratio(&self) -> Option<f64> {
        ratio(self.after_last.bytes as f64, self.after_first.bytes as f64)
    }
}

/// The growth of a group of sequences, figure by figure the median over
/// them (see module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthSummary {
    /// Sequences summarised.
    pub sequences: usize,
    /// Days run (the most of any sequence).
    pub days: usize,
    pub first_wall: f64,
    pub last_wall: f64,
    pub wall_ratio: Option<f64>,
    pub tail_mean: f64,
    pub first_files: f64,
    pub last_files: f64,
    pub files_ratio: Option<f64>,
    pub first_bytes: f64,
    pub last_bytes: f64,
    pub bytes_ratio: Option<f64>,
}

impl GrowthSummary {
    /// The medians over `growths`; `None` when empty.
    pub fn of(growths: &[Growth]) -> Option<GrowthSummary> {
        let med = |f: &dyn Fn(&Growth) -> f64| -> Option<f64> {
            median(&growths.iter().map(f).collect::<Vec<f64>>())
        };
        let med_ratio = |f: &dyn Fn(&Growth) -> Option<f64>| -> Option<f64> {
            median(&growths.iter().filter_map(f).collect::<Vec<f64>>())
        };
        Some(GrowthSummary {
            sequences: growths.len(),
            days: growths.iter().map(|g| g.days).max()?,
            first_wall: med(&|g| g.first_wall)?,
            last_wall: med(&|g| g.last_wall)?,
            wall_ratio: med_ratio(&Growth::wall_ratio),
            tail_mean: med(&|g| g.tail_mean)?,
            first_files: med(&|g| g.after_first.files as f64)?,
            last_files: med(&|g| g.after_last.files as f64)?,
            files_ratio: med_ratio(&Growth::files_ratio),
            first_bytes: med(&|g| g.after_first.bytes as f64)?,
            last_bytes: med(&|g| g.after_last.bytes as f64)?,
            bytes_ratio: med_ratio(&Growth::bytes_ratio),
        })
    }

    /// One line: `day 1 → day N` wall times, the tail mean, files and MB.
    pub fn describe(&self) -> String {
        let n = self.days;
        format!(
            "day 1 -> day {n}: {:.2} s -> {:.2} s ({}), mean of the last {} day(s) {:.2} s; \
             warehouse {} -> {} files ({}), {:.1} -> {:.1} MB ({})",
            self.first_wall,
            self.last_wall,
            times(self.wall_ratio),
            n.min(TAIL_DAYS),
            self.tail_mean,
            count(self.first_files),
            count(self.last_files),
            times(self.files_ratio),
            self.first_bytes / 1e6,
            self.last_bytes / 1e6,
            times(self.bytes_ratio),
        )
    }
}

/// A ratio as `1.23x`, or `-` when absent.
fn times(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

/// A count (a median may end in .5).
fn count(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// A table of growth figures, one row per entry: its leading columns
/// (sequence, executable, upkeep) and its summary. `days` names the last
/// day in the header.
pub fn render_table(rows: &[([String; 3], GrowthSummary)], days: usize) -> String {
    let header: [String; 13] = [
        "seq".into(),
        "exe".into(),
        "upkeep".into(),
        "day 1".into(),
        format!("day {days}"),
        format!("{days}/1"),
        format!("last {}", days.min(TAIL_DAYS)),
        "files d1".into(),
        format!("files d{days}"),
        "ratio".into(),
        "MB d1".into(),
        format!("MB d{days}"),
        "ratio".into(),
    ];
    let cells = |lead: &[String; 3], g: &GrowthSummary| -> Vec<String> {
        let mut c: Vec<String> = lead.to_vec();
        c.extend([
            format!("{:.2} s", g.first_wall),
            format!("{:.2} s", g.last_wall),
            times(g.wall_ratio),
            format!("{:.2} s", g.tail_mean),
            count(g.first_files),
            count(g.last_files),
            times(g.files_ratio),
            format!("{:.1}", g.first_bytes / 1e6),
            format!("{:.1}", g.last_bytes / 1e6),
            times(g.bytes_ratio),
        ]);
        c
    };
    let body: Vec<Vec<String>> = rows.iter().map(|(lead, g)| cells(lead, g)).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(header.as_slice()).chain(body.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths[i];
            // The three leading columns are names: left-aligned.
            let _ = if i < 3 {
                write!(line, "{cell:<w$} ")
            } else {
                write!(line, "{cell:>w$} ")
            };
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The days (0-based) the per-day output shows out of `days`: all of them
/// up to [`TAIL_DAYS`], otherwise day 1, every tenth day and the last.
pub fn shown_days(days: usize) -> Vec<usize> {
    if days <= TAIL_DAYS {
        return (0..days).collect();
    }
    let mut shown = vec![0];
    shown.extend((TAIL_DAYS..=days).step_by(TAIL_DAYS).map(|d| d - 1));
    if shown.last() != Some(&(days - 1)) {
        shown.push(days - 1);
    }
    shown
}

/// The median of a non-empty list (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(files: u64, bytes: u64) -> DirSize {
        DirSize { files, bytes }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn growth_of_one_sequence() {
        assert_eq!(Growth::of(&[], &[]), None);
        assert_eq!(Growth::of(&[1.0], &[]), None);
        // 12 days: 1.0, 2.0, ..., 12.0 s; the last 10 are 3..=12, mean 7.5.
        let walls: Vec<f64> = (1..=12).map(f64::from).collect();
        let sizes: Vec<DirSize> = (1..=12).map(|d| size(100 * d, 1_000_000 * d)).collect();
        let g = Growth::of(&walls, &sizes).expect("growth");
        assert_eq!(g.days, 12);
        assert!(close(g.first_wall, 1.0) && close(g.last_wall, 12.0));
        assert!(close(g.tail_mean, 7.5), "{g:?}");
        assert_eq!(g.after_first, size(100, 1_000_000));
        assert_eq!(g.after_last, size(1200, 12_000_000));
        assert!(close(g.wall_ratio().expect("ratio"), 12.0));
        assert!(close(g.files_ratio().expect("ratio"), 12.0));
        assert!(close(g.bytes_ratio().expect("ratio"), 12.0));
        // Fewer days than the tail: the mean of all of them.
        let g =
            Growth::of(&[2.0, 4.0, 3.0], &[size(10, 5), size(12, 6), size(9, 4)]).expect("growth");
        assert!(close(g.tail_mean, 3.0));
        assert!(close(g.wall_ratio().expect("ratio"), 1.5));
        assert!(close(g.files_ratio().expect("ratio"), 0.9));
        // Nothing to divide by.
        let g = Growth::of(&[0.0, 1.0], &[size(0, 0), size(3, 3)]).expect("growth");
        assert_eq!(
            (g.wall_ratio(), g.files_ratio(), g.bytes_ratio()),
            (None, None, None)
        );
    }

    #[test]
    fn summaries_are_medians_figure_by_figure() {
        assert_eq!(GrowthSummary::of(&[]), None);
        let a = Growth::of(&[1.0, 2.0], &[size(10, 1000), size(40, 4000)]).expect("a");
        let b = Growth::of(&[2.0, 2.0], &[size(20, 2000), size(20, 2000)]).expect("b");
        let c = Growth::of(&[4.0, 2.0], &[size(30, 0), size(30, 3000)]).expect("c");
        let s = GrowthSummary::of(&[a, b, c]).expect("summary");
        assert_eq!((s.sequences, s.days), (3, 2));
        assert!(close(s.first_wall, 2.0) && close(s.last_wall, 2.0));
        // Ratios 2.0, 1.0, 0.5: the median ratio, not 2.0 / 2.0 of the medians.
        assert!(close(s.wall_ratio.expect("ratio"), 1.0));
        assert!(close(s.tail_mean, 2.0));
        assert!(close(s.first_files, 20.0) && close(s.last_files, 30.0));
        assert!(close(s.files_ratio.expect("ratio"), 1.0));
        // c has no bytes ratio (0 bytes after day 1): the median of 4.0 and 1.0.
        assert!(close(s.bytes_ratio.expect("ratio"), 2.5));
        // A summary of one sequence is its figures.
        let one = GrowthSummary::of(&[a]).expect("one");
        assert_eq!(one.wall_ratio, a.wall_ratio());
        assert!(close(one.last_files, 40.0));
        assert_eq!(
            one.describe(),
            "day 1 -> day 2: 1.00 s -> 2.00 s (2.00x), mean of the last 2 day(s) 1.50 s; \
             warehouse 10 -> 40 files (4.00x), 0.0 -> 0.0 MB (4.00x)"
        );
    }

    #[test]
    fn tables_align_their_columns() {
        let g = Growth::of(
            &[0.5, 0.6, 0.75],
            &[
                size(120, 12_300_000),
                size(130, 13_000_000),
                size(480, 45_600_000),
            ],
        )
        .expect("growth");
        let s = GrowthSummary::of(&[g]).expect("summary");
        let text = render_table(
            &[
                (["A".into(), "1".into(), "off".into()], s),
                (["median".into(), "1".into(), "off".into()], s),
            ],
            3,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            "seq    exe upkeep  day 1  day 3   3/1 last 3 files d1 files d3 ratio MB d1 MB d3 ratio"
        );
        assert_eq!(
            lines[1],
            "A      1   off    0.50 s 0.75 s 1.50x 0.62 s      120      480 4.00x  12.3  45.6 3.71x"
        );
        assert!(lines[2].starts_with("median 1   off    0.50 s"), "{text}");
    }

    #[test]
    fn many_days_show_day_one_every_tenth_and_the_last() {
        assert_eq!(shown_days(0), Vec::<usize>::new());
        assert_eq!(shown_days(3), vec![0, 1, 2]);
        assert_eq!(shown_days(10), (0..10).collect::<Vec<_>>());
        assert_eq!(shown_days(11), vec![0, 9, 10]);
        assert_eq!(shown_days(20), vec![0, 9, 19]);
        assert_eq!(shown_days(25), vec![0, 9, 19, 24]);
        let hundred = shown_days(100);
        assert_eq!(hundred, vec![0, 9, 19, 29, 39, 49, 59, 69, 79, 89, 99]);
    }
}
