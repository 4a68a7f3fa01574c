//! XmR (individuals and moving range) process-control limits.
//!
//! [`xmr`] is a pure function over one metric's series, **newest value
//! first** (index 0 is the most recent day), the order in which the
//! dashboard reads a metric:
//!
//! 1. Initial limits come from the first [`WINDOW`] values (or all of them if
//!    there are fewer): the centre line `CL` is their mean, `MR̄` the mean of
//!    the absolute differences between successive values (0 with fewer than
//!    two values), `UCL = CL + 2.66·MR̄` and `LCL = max(0, CL − 2.66·MR̄)`.
//!    These limits hold from index 0. Limits are frozen until index
//!    [`WINDOW`].
//! 2. For each index `i` past the frozen range (`i > freeze_until`) with
//!    `i < n − LONG_RUN`: when the [`LONG_RUN`] values `i..i+LONG_RUN` are all
//!    strictly above or all strictly below the current `CL`, those values are
//!    marked as a long run, the limits are recomputed (same formulas) from
//!    the values `i..i+min(WINDOW, n−i)`, they hold from index `i` on, and
//!    limits are frozen until `i + WINDOW`.
//! 3. Every point carries the limits in force at its index (the last
//!    recomputation at or before it); a point is an upper outlier when its
//!    value is strictly above its `UCL` and a lower outlier when strictly
//!    below its `LCL`.
//!
//! Invariants: the output has one point per input value, in input order;
//! `LCL ≤ CL ≤ UCL` and `LCL ≥ 0` for every point whose `CL ≥ 0`.

/// Values used for the initial limits and after each recomputation.
pub const WINDOW: usize = 20;
/// Length of a run on one side of the centre line that triggers new limits.
pub const LONG_RUN: usize = 8;
/// The XmR scaling constant (3 / d2 with d2 = 1.128).
pub const SCALE: f64 = 2.66;

/// Control limits in force for a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Centre line: the mean of the window.
    pub cl: f64,
    /// Lower control limit, floored at 0.
    pub lcl: f64,
    /// Upper control limit.
    pub ucl: f64,
}

impl Limits {
    /// Limits from a window of values (empty window: all zero).
    pub fn from_window(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self {
                cl: 0.0,
                lcl: 0.0,
                ucl: 0.0,
            };
        }
        let cl = values.iter().sum::<f64>() / values.len() as f64;
        let mr = if values.len() < 2 {
            0.0
        } else {
            values.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (values.len() - 1) as f64
        };
        Self {
            cl,
            lcl: (cl - SCALE * mr).max(0.0),
            ucl: cl + SCALE * mr,
        }
    }
}

/// Where a value lies relative to its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Within `[LCL, UCL]`.
    InControl,
    /// Strictly above `UCL` ("hot").
    Upper,
    /// Strictly below `LCL` ("cold").
    Lower,
}

impl Signal {
    /// Classify `value` against `limits`.
    pub fn of(value: f64, limits: &Limits) -> Self {
        if value > limits.ucl {
            Signal::Upper
        } else if value < limits.lcl {
            Signal::Lower
        } else {
            Signal::InControl
        }
    }

    /// A stable lowercase name (`in-control`, `hot`, `cold`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Signal::InControl => "in-control",
            Signal::Upper => "hot",
            Signal::Lower => "cold",
        }
    }
}

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XmrPoint {
    /// The metric's value.
    pub value: f64,
    /// Limits in force at this point.
    pub limits: Limits,
    /// Part of a run of [`LONG_RUN`] values on one side of the centre line
    /// that triggered a recomputation.
    pub long_run: bool,
    /// Outlier classification against `limits`.
    pub signal: Signal,
}

/// XmR points for `values` (newest first); see the module docs.
pub fn xmr(values: &[f64]) -> Vec<XmrPoint> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    // (start index, limits) of every limit regime, increasing starts.
    let mut regimes = vec![(0usize, Limits::from_window(&values[..n.min(WINDOW)]))];
    let mut long_run = vec![false; n];
    let mut freeze_until = WINDOW;
    let mut i = freeze_until + 1;
    while i + LONG_RUN < n {
        let cl = regimes[regimes.len() - 1].1.cl;
        let run = &values[i..i + LONG_RUN];
        if run.iter().all(|v| *v > cl) || run.iter().all(|v| *v < cl) {
            long_run[i..i + LONG_RUN].fill(true);
            let end = i + WINDOW.min(n - i);
            regimes.push((i, Limits::from_window(&values[i..end])));
            freeze_until = i + WINDOW;
            i = freeze_until + 1;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut regime = 0;
    for (idx, &value) in values.iter().enumerate() {
        while regime + 1 < regimes.len() && regimes[regime + 1].0 <= idx {
            regime += 1;
        }
        let limits = regimes[regime].1;
        out.push(XmrPoint {
            value,
            limits,
            long_run: long_run[idx],
            signal: Signal::of(value, &limits),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn empty_series_has_no_points() {
        assert!(xmr(&[]).is_empty());
    }

    #[test]
    fn single_value_has_zero_moving_range() {
        let p = xmr(&[7.0]);
        assert_eq!(p.len(), 1);
        close(p[0].limits.cl, 7.0);
        close(p[0].limits.ucl, 7.0);
        close(p[0].limits.lcl, 7.0);
        assert_eq!(p[0].signal, Signal::InControl);
    }

    #[test]
    fn initial_limits_by_hand() {
        // mean 11; |diffs| 2,1,2,4 -> MR 2.25; 2.66*2.25 = 5.985.
        let p = xmr(&[10.0, 12.0, 11.0, 13.0, 9.0]);
        for point in &p {
            close(point.limits.cl, 11.0);
            close(point.limits.ucl, 16.985);
            close(point.limits.lcl, 5.015);
            assert_eq!(point.signal, Signal::InControl);
            assert!(!point.long_run);
        }
    }

    #[test]
    fn lower_limit_is_floored_at_zero() {
        // mean 3, MR 4 -> 3 - 10.64 < 0.
        let p = xmr(&[1.0, 5.0, 1.0, 5.0]);
        close(p[0].limits.cl, 3.0);
        close(p[0].limits.ucl, 3.0 + 10.64);
        close(p[0].limits.lcl, 0.0);
    }

    #[test]
    fn initial_window_is_the_twenty_newest_values() {
        // 20 values alternating 9/11 (mean 10, MR 2), then 5 values of 100
        // that do not count for the initial limits and are too few for a run.
        let mut v: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        v.extend([100.0; 5]);
        let p = xmr(&v);
        close(p[0].limits.cl, 10.0);
        close(p[0].limits.ucl, 15.32);
        close(p[0].limits.lcl, 4.68);
        close(p[24].limits.cl, 10.0);
        assert_eq!(p[24].signal, Signal::Upper);
        assert!(p.iter().all(|x| !x.long_run));
    }

    #[test]
    fn outliers_above_and_below() {
        // sum 610 over 12 -> CL 50.8333…; |diffs| nine 2s, 32, 60 -> 110/11 = 10;
        // UCL = CL + 26.6, LCL = CL - 26.6.
        let v = [
            50.0, 52.0, 50.0, 52.0, 50.0, 52.0, 50.0, 52.0, 50.0, 52.0, 20.0, 80.0,
        ];
        let p = xmr(&v);
        let cl = 610.0 / 12.0;
        close(p[0].limits.cl, cl);
        close(p[0].limits.ucl, cl + 26.6);
        close(p[0].limits.lcl, cl - 26.6);
        assert_eq!(p[10].signal, Signal::Lower);
        assert_eq!(p[11].signal, Signal::Upper);
        assert_eq!(
            p.iter().filter(|x| x.signal != Signal::InControl).count(),
            2
        );
    }

    #[test]
    fn long_run_recomputes_limits() {
        // Rows 0..=20: alternating 9/11 (initial window 0..20: CL 10, MR 2),
        // row 20 = 9. Rows 21..=29 (9 values) alternate 20/22, all above CL:
        // the run 21..=28 triggers new limits from rows 21..=29.
        let mut v: Vec<f64> = (0..21)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        v.extend((0..9).map(|i| if i % 2 == 0 { 20.0 } else { 22.0 }));
        assert_eq!(v.len(), 30);
        let p = xmr(&v);
        for point in &p[..21] {
            close(point.limits.cl, 10.0);
            close(point.limits.ucl, 15.32);
            close(point.limits.lcl, 4.68);
        }
        // New window: five 20s and four 22s -> 188/9; all diffs 2 -> MR 2.
        let cl = 188.0 / 9.0;
        for point in &p[21..] {
            close(point.limits.cl, cl);
            close(point.limits.ucl, cl + 5.32);
            close(point.limits.lcl, cl - 5.32);
            assert_eq!(point.signal, Signal::InControl);
        }
        let runs: Vec<usize> = (0..30).filter(|i| p[*i].long_run).collect();
        assert_eq!(runs, (21..29).collect::<Vec<_>>());
    }

    #[test]
    fn runs_inside_the_frozen_range_are_ignored() {
        // Same shape but the high run starts at row 20 (inside the initial
        // window's freeze: only i > 20 are checked); with 29 rows the only
        // candidate would be i = 21 but 21 + 8 = 29 is not < n.
        let mut v: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        v.extend([20.0; 9]);
        let p = xmr(&v);
        assert!(p.iter().all(|x| !x.long_run));
        close(p[28].limits.cl, 10.0);
        assert_eq!(p[28].signal, Signal::Upper);
    }

    #[test]
    fn run_below_centre_line_also_recomputes() {
        // 21 values of 50/52 then 10 values of 1/3: run below CL at i = 21.
        let mut v: Vec<f64> = (0..21)
            .map(|i| if i % 2 == 0 { 50.0 } else { 52.0 })
            .collect();
        v.extend((0..10).map(|i| if i % 2 == 0 { 1.0 } else { 3.0 }));
        let p = xmr(&v);
        // New window rows 21..=30: five 1s, five 3s -> CL 2, MR 2, LCL floored.
        close(p[21].limits.cl, 2.0);
        close(p[30].limits.ucl, 2.0 + 5.32);
        close(p[30].limits.lcl, 0.0);
        assert!(p[21..29].iter().all(|x| x.long_run));
        assert!(!p[29].long_run);
    }
}
