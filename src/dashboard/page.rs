//! The dashboard page: HTML with server-rendered SVG charts, no script.
//!
//! Everything dynamic that reaches the page (metric names, slice keys and
//! values, dates, error messages) goes through [`escape`]; the page loads no
//! external resource (no CDN, no font, no script), so it works offline.
//!
//! Stable DOM contract for tests and scrapers: one `<article class="card">`
//! per metric, in display order (latest value descending), carrying
//! `data-metric` (the `metric__…` name), `data-date` (the newest day),
//! `data-value` (the newest value, Rust's shortest round-trip `f64`
//! rendering) and `data-status` (`hot` above UCL, `cold` below LCL,
//! `in-control` otherwise); `<main data-cards="N">` holds the count.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::data::{MetricSeries, Slice};
use super::xmr::{Signal, XmrPoint};

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A value with 2 decimals and thousands separated by spaces
/// (`1234567.891` -> `1 234 567.89`).
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{:.2}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    let negative = v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0');
    format!("{}{grouped}.{frac}", if negative { "-" } else { "" })
}

/// The card title of a metric: without `metric__`, underscores as single
/// spaces, each word capitalised.
pub fn title(name: &str) -> String {
    name.strip_prefix("metric__")
        .unwrap_or(name)
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The series in display order: newest value descending; series without
/// any value last; ties by name.
pub fn display_order(series: &[MetricSeries]) -> Vec<&MetricSeries> {
    let mut out: Vec<&MetricSeries> = series.iter().collect();
    out.sort_by(|a, b| {
        let va = a.latest().map(|(_, p)| p.value);
        let vb = b.latest().map(|(_, p)| p.value);
        match (va, vb) {
            (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.name.cmp(&b.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        }
    });
    out
}

/// Everything the page shows.
pub struct PageView<'a> {
    /// The window shown (None: the warehouse has no current rows).
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// First and last day with data in the warehouse.
    pub data_range: Option<(NaiveDate, NaiveDate)>,
    /// The slice dimension selected in the form (active or pending).
    pub selected_slice: Option<&'a str>,
    /// The active slice, `(key, value)`.
    pub slice: Option<(&'a str, &'a str)>,
    /// Every slice dimension.
    pub slices: Vec<&'a Slice>,
    /// Known values of the selected slice (for the input's suggestions).
    pub slice_values: &'a [String],
    /// The metrics, in any order (the page sorts them).
    pub series: &'a [MetricSeries],
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f6f9;color:#222}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #ddd}
h1{margin:0 0 4px 0;font-size:28px}
.range{color:#555;margin:0 0 12px 0}
form{display:flex;flex-wrap:wrap;gap:12px;align-items:end}
label{display:flex;flex-direction:column;font-size:12px;color:#555;gap:2px}
input,select{font-size:14px;padding:4px}
main{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:12px;padding:16px 24px}
.card{background:#fff;border:1px solid #ccc;border-radius:8px;padding:12px}
.card h2{font-size:15px;margin:0 0 6px 0}
.value{font-size:26px;font-weight:600;margin:0}
.limits{font-size:12px;color:#555;margin:4px 0}
.marker{font-size:13px;font-weight:600;vertical-align:middle;padding:2px 6px;border-radius:10px;color:#fff}
.hot .value{color:rgb(190,120,80)}
.hot .marker{background:rgb(190,120,80)}
.cold .marker{background:rgb(100,170,90)}
.cold .value{color:rgb(100,170,90)}
summary{font-size:12px;color:#555;cursor:pointer}
svg{width:100%;height:auto}
.empty{padding:24px}
";

/// Render the whole page.
pub fn render(view: &PageView<'_>) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<title>Adventure Works</title>");
    let _ = write!(h, "<style>{STYLE}</style></head><body><header>");
    h.push_str("<h1>Adventure Works</h1>");
    match view.window {
        Some((from, to)) => {
            let _ = write!(
                h,
                "<p class=\"range\" data-from=\"{from}\" data-to=\"{to}\">{from} to {to}"
            );
            if let Some((key, value)) = view.slice {
                let _ = write!(
                    h,
                    " &middot; <span class=\"slice\">{} = {}</span>",
                    escape(key),
                    escape(value)
                );
            }
            h.push_str("</p>");
        }
        None => h.push_str("<p class=\"range\">No current rows in dar._bridge__as_of</p>"),
    }
    render_form(&mut h, view);
    h.push_str("</header>");
    let cards = display_order(view.series);
    let _ = write!(h, "<main data-cards=\"{}\">", cards.len());
    if cards.is_empty() {
        h.push_str("<p class=\"empty\">No metric to show.</p>");
    } else if cards
        .iter()
        .all(|s| s.points.iter().all(|p| p.value == 0.0))
    {
        // Every card would be a flat line at zero: say so, and where the
        // data is.
        let _ = match view.data_range {
            Some((a, b)) => write!(
                h,
                "<p class=\"empty\">No events in this window; the data runs from {a} to {b}.</p>"
            ),
            None => write!(h, "<p class=\"empty\">No events in this window.</p>"),
        };
    }
    for s in cards {
        render_card(&mut h, s);
    }
    h.push_str("</main></body></html>\n");
    h
}

fn render_form(h: &mut String, view: &PageView<'_>) {
    let (min, max) = match view.data_range {
        Some((a, b)) => (format!(" min=\"{a}\""), format!(" max=\"{b}\"")),
        None => (String::new(), String::new()),
    };
    let (from, to) = match view.window {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (String::new(), String::new()),
    };
    h.push_str("<form method=\"get\" action=\"/\">");
    let _ = write!(
        h,
        "<label>From<input type=\"date\" name=\"from\" value=\"{from}\"{min}{max}></label>\
         <label>To<input type=\"date\" name=\"to\" value=\"{to}\"{min}{max}></label>"
    );
    h.push_str("<label>Slice by<select name=\"slice\"><option value=\"\">(none)</option>");
    let active = view.selected_slice;
    for s in &view.slices {
        let selected = if Some(s.key.as_str()) == active {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<option value=\"{k}\"{selected}>{k}</option>",
            k = escape(&s.key)
        );
    }
    h.push_str("</select></label>");
    let value = view.slice.map(|(_, v)| v).unwrap_or("");
    let _ = write!(
        h,
        "<label>Value<input type=\"text\" name=\"value\" list=\"slice-values\" value=\"{}\"></label>",
        escape(value)
    );
    h.push_str("<datalist id=\"slice-values\">");
    for v in view.slice_values {
        let _ = write!(h, "<option value=\"{}\">", escape(v));
    }
    h.push_str("</datalist><button type=\"submit\">Apply</button></form>");
}

fn render_card(h: &mut String, s: &MetricSeries) {
    let (date, point) = match s.latest() {
        Some((d, p)) => (d.to_string(), Some(*p)),
        None => (String::new(), None),
    };
    let status = point.map(|p| p.signal.as_str()).unwrap_or("no-data");
    let _ = write!(
        h,
        "<article class=\"card {status}\" data-metric=\"{name}\" data-date=\"{date}\" data-value=\"{value}\" data-status=\"{status}\">",
        name = escape(&s.name),
        value = point.map(|p| p.value.to_string()).unwrap_or_default(),
    );
    let _ = write!(h, "<h2>{}</h2>", escape(&title(&s.name)));
    match point {
        Some(p) => {
            let marker = match p.signal {
                Signal::Upper => " <span class=\"marker\" title=\"above UCL\">&#x25B2; hot</span>",
                Signal::Lower => " <span class=\"marker\" title=\"below LCL\">&#x25BC; cold</span>",
                Signal::InControl => "",
            };
            let _ = write!(
                h,
                "<p class=\"value\"><span class=\"number\">{}</span>{marker}</p>",
                format_value(p.value)
            );
            let _ = write!(
                h,
                "<p class=\"limits\">CL: {} | LCL: {} | UCL: {}</p>",
                format_value(p.limits.cl),
                format_value(p.limits.lcl),
                format_value(p.limits.ucl)
            );
            h.push_str("<details open><summary>Process Control Chart</summary>");
            h.push_str(&chart_svg(&s.dates, &s.points));
            h.push_str("</details>");
        }
        None => {
            h.push_str("<p class=\"value\">n/a</p><p class=\"limits\">no value in the window</p>")
        }
    }
    h.push_str("</article>");
}

const W: f64 = 360.0;
const H: f64 = 180.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;
const POINT: &str = "rgba(90,90,160,0.3)";
const CL_COLOUR: &str = "rgba(90,90,160,1)";
const UCL_COLOUR: &str = "rgba(190,120,80,1)";
const LCL_COLOUR: &str = "rgba(100,170,90,1)";

/// A process-control chart: oldest day left, y axis from zero (or the
/// smallest value if negative); points, CL/UCL/LCL lines (stepping where
/// limits were recomputed), outliers in the colour of the limit they cross.
/// `dates` and `points` are parallel and newest first.
pub fn chart_svg(dates: &[NaiveDate], points: &[XmrPoint]) -> String {
    let n = points.len().min(dates.len());
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" data-points=\"{n}\">"
    );
    if n == 0 {
        s.push_str("</svg>");
        return s;
    }
    let all = points[..n]
        .iter()
        .flat_map(|p| [p.value, p.limits.ucl, p.limits.lcl, p.limits.cl]);
    let (mut lo, mut hi) = all.fold((0.0f64, 0.0f64), |(lo, hi), v| {
        if v.is_finite() {
            (lo.min(v), hi.max(v))
        } else {
            (lo, hi)
        }
    });
    hi += (hi - lo) * 0.05;
    if hi <= lo {
        hi = lo + 1.0;
    }
    lo = lo.min(0.0);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    // Index 0 is the newest: draw it on the right.
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * (n - 1 - i) as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    // Axes and labels.
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#999\" stroke-width=\"0.5\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b:.1}\" stroke=\"#999\" stroke-width=\"0.5\"/>\
         <text x=\"{lx:.1}\" y=\"{ty:.1}\" font-size=\"9\" text-anchor=\"end\">{top}</text>\
         <text x=\"{lx:.1}\" y=\"{by:.1}\" font-size=\"9\" text-anchor=\"end\">{bottom}</text>\
         <text x=\"{LEFT}\" y=\"{H}\" font-size=\"9\">{first}</text>\
         <text x=\"{r:.1}\" y=\"{H}\" font-size=\"9\" text-anchor=\"end\">{last}</text>",
        b = y(lo),
        r = W - RIGHT,
        lx = LEFT - 3.0,
        ty = TOP + 8.0,
        by = y(lo),
        top = short_number(hi),
        bottom = short_number(lo),
        first = dates[n - 1],
        last = dates[0],
    );
    for (class, colour, pick) in [
        (
            "ucl",
            UCL_COLOUR,
            (|p: &XmrPoint| p.limits.ucl) as fn(&XmrPoint) -> f64,
        ),
        ("lcl", LCL_COLOUR, |p: &XmrPoint| p.limits.lcl),
        ("cl", CL_COLOUR, |p: &XmrPoint| p.limits.cl),
    ] {
        let mut d = String::new();
        for i in (0..n).rev() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if d.is_empty() { "M" } else { " L" },
                x(i),
                y(pick(&points[i]))
            );
        }
        let _ = write!(
            s,
            "<path class=\"{class}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1\"/>"
        );
    }
    for i in (0..n).rev() {
        let p = &points[i];
        let (fill, r, class) = match p.signal {
            Signal::Upper => (UCL_COLOUR, 2.6, "point upper"),
            Signal::Lower => (LCL_COLOUR, 2.6, "point lower"),
            Signal::InControl => (POINT, 2.0, "point"),
        };
        let _ = write!(
            s,
            "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{fill}\"><title>{}: {}</title></circle>",
            x(i),
            y(p.value),
            dates[i],
            format_value(p.value)
        );
    }
    s.push_str("</svg>");
    s
}

/// Compact axis label: 1.2k, 3.4M, or two decimals below 1000.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::xmr::xmr;

    #[test]
    fn values_have_two_decimals_and_space_separated_thousands() {
        assert_eq!(format_value(0.0), "0.00");
        assert_eq!(format_value(999.999), "1 000.00");
        assert_eq!(format_value(1234567.891), "1 234 567.89");
        assert_eq!(format_value(123456.0), "123 456.00");
        assert_eq!(format_value(-1234.5), "-1 234.50");
        assert_eq!(format_value(-0.001), "0.00");
    }

    #[test]
    fn titles_are_title_case_words() {
        assert_eq!(
            title("metric__sales_order_header__order"),
            "Sales Order Header Order"
        );
        assert_eq!(
            title("metric__sales_order_headers_from_new_customers__percentage"),
            "Sales Order Headers From New Customers Percentage"
        );
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">' OR 1=1 --&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39; OR 1=1 --&amp;&lt;/a&gt;"
        );
    }

    fn series(name: &str, values: &[f64]) -> MetricSeries {
        let start = NaiveDate::from_ymd_opt(2013, 1, 31).unwrap_or_default();
        MetricSeries {
            name: name.to_string(),
            dates: (0..values.len())
                .map(|i| start - chrono::Duration::days(i as i64))
                .collect(),
            points: xmr(values),
        }
    }

    #[test]
    fn cards_are_ordered_by_latest_value() {
        let s = vec![
            series("metric__a", &[1.0, 5.0]),
            series("metric__b", &[]),
            series("metric__c", &[3.0]),
            series("metric__d", &[3.0, 0.0]),
        ];
        let order: Vec<&str> = display_order(&s).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            order,
            vec!["metric__c", "metric__d", "metric__a", "metric__b"]
        );
    }

    #[test]
    fn a_window_without_events_says_where_the_data_is() {
        let view = |s: &[MetricSeries]| {
            render(&PageView {
                window: Some((
                    NaiveDate::from_ymd_opt(2017, 1, 1).unwrap(),
                    NaiveDate::from_ymd_opt(2017, 12, 31).unwrap(),
                )),
                data_range: Some((
                    NaiveDate::from_ymd_opt(2011, 5, 31).unwrap(),
                    NaiveDate::from_ymd_opt(2014, 7, 8).unwrap(),
                )),
                selected_slice: None,
                slice: None,
                slices: vec![],
                slice_values: &[],
                series: s,
            })
        };
        let quiet = vec![
            series("metric__a", &[0.0, 0.0]),
            series("metric__b", &[0.0]),
        ];
        assert!(
            view(&quiet)
                .contains("No events in this window; the data runs from 2011-05-31 to 2014-07-08.")
        );
        let busy = vec![series("metric__a", &[0.0, 2.0])];
        assert!(!view(&busy).contains("No events in this window"));
    }

    #[test]
    fn page_has_one_card_per_metric_with_stable_attributes() {
        let s = vec![
            series(
                "metric__x",
                &[10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 100.0],
            ),
            series("metric__<y>", &[1234.5, 1.0]),
        ];
        let html = render(&PageView {
            window: s[0].dates.last().copied().zip(s[0].dates.first().copied()),
            data_range: None,
            selected_slice: Some("p.c"),
            slice: Some(("p.c", "\"><script>")),
            slices: vec![],
            slice_values: &[],
            series: &s,
        });
        assert!(html.contains("<main data-cards=\"2\">"));
        assert_eq!(html.matches("<article class=\"card").count(), 2);
        assert!(html.contains("data-metric=\"metric__&lt;y&gt;\""));
        assert!(html.contains("data-value=\"1234.5\""));
        assert!(html.contains("<span class=\"number\">1 234.50</span>"));
        assert!(!html.contains("<script>"));
        // The chart of metric__x has 8 points, one outlier above UCL.
        assert!(html.contains("data-points=\"8\""));
        assert_eq!(html.matches("class=\"point upper\"").count(), 1);
        assert!(html.find("metric__&lt;y&gt;") < html.find("data-metric=\"metric__x\""));
    }
}
