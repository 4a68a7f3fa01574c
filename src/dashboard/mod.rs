//! The dashboard: process-control cards over the Unified Star Schema.
//!
//! [`serve`] reads the DAR tables of a warehouse through DataFusion (see
//! [`data`] for what is computed and how) and serves, with axum:
//!
//! - `GET /` — the page ([`page`]): one card per metric, ordered by the
//!   newest day's value descending, each with the value, CL / LCL / UCL from
//!   the XmR algorithm ([`xmr`]), a hot/cold marker and an SVG chart;
//! - `GET /api/metrics` — the same numbers as JSON;
//! - `GET /api/slices` — the slice dimensions (`<peripheral>.<column>`);
//! - `GET /api/values?slice=<key>` — a slice's distinct values.
//!
//! Parameters of `/` and `/api/metrics`: `from`, `to` (`YYYY-MM-DD`,
//! inclusive; default: the 52 weeks ending on the last day with data),
//! `slice` (a key listed by `/api/slices`) with `value` (a value of that
//! column). Empty values count as absent (what an HTML form sends); the
//! page (not the API) accepts a `slice` without `value` and then shows the
//! unsliced metrics with that slice's values offered in the form. Any
//! other parameter, a repeated parameter, a malformed date, an unknown slice
//! or a value that does not occur in the slice's column is refused with
//! `400 Bad Request` and a message saying what is wrong; nothing is queried
//! with it. Slice keys select among discovered names and values enter the
//! query plan as literals, never as SQL text.
//!
//! Safe defaults: the CLI binds `127.0.0.1` unless told otherwise; the page
//! loads nothing from the network (charts are SVG rendered in Rust), and
//! every response says so in its `Content-Security-Policy`.

pub mod data;
pub mod page;
pub mod xmr;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::storage::Warehouse;
use data::{DashboardData, MetricQuery, MetricSeries};

/// Longest accepted slice value, in bytes.
pub const MAX_VALUE_LEN: usize = 512;

const METRIC_PARAMS: &[&str] = &["from", "to", "slice", "value"];

/// A running dashboard.
pub struct DashboardServer {
    addr: SocketAddr,
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl DashboardServer {
    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port` to reach the server (loopback when bound to all
    /// interfaces).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stop accepting connections, finish in-flight requests and return.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join().await
    }

    /// Wait until the server stops (after [`Self::shutdown`] or an error).
    pub async fn join(self) -> Result<()> {
        self.task
            .await
            .ctx(ErrorKind::Internal, || {
                "dashboard task panicked".to_string()
            })?
            .ctx(ErrorKind::Internal, || {
                "dashboard server failed".to_string()
            })
    }
}

/// Load the DAR tables of `wh` and serve the dashboard on `addr` (port 0
/// picks a free port). Returns once the socket is bound.
pub async fn serve(wh: &Warehouse, addr: SocketAddr) -> Result<DashboardServer> {
    serve_with(wh, addr, data::DEFAULT_WINDOW_DAYS).await
}

/// [`serve`] with a default window of `window_days` days.
pub async fn serve_with(
    wh: &Warehouse,
    addr: SocketAddr,
    window_days: i64,
) -> Result<DashboardServer> {
    let data = Arc::new(DashboardData::load(wh).await?.with_window_days(window_days));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .ctx(ErrorKind::InvalidInput, || {
            format!("cannot listen on {addr}")
        })?;
    let addr = listener.local_addr().ctx(ErrorKind::Internal, || {
        "bound socket has no address".to_string()
    })?;
    let visible = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(data);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "dashboard listening");
    Ok(DashboardServer {
        addr,
        base_url: format!("http://{visible}"),
        shutdown: Some(tx),
        task,
    })
}

/// The routes over loaded data (exposed for in-process tests).
pub fn router(data: Arc<DashboardData>) -> Router {
    Router::new()
        .route("/", get(page_handler))
        .route("/api/metrics", get(metrics_handler))
        .route("/api/slices", get(slices_handler))
        .route("/api/values", get(values_handler))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(data)
}

/// The page may load nothing but itself: inline styles and SVG only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// An error answered as a status and a message (JSON for the API, HTML for
/// the page).
struct Failure {
    error: Error,
    html: bool,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match self.error.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            let message = format!("{:#}", self.error);
            tracing::error!(error = %message, "dashboard request failed");
            message
        } else {
            self.error.detail()
        };
        if self.html {
            let body = format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Adventure Works: error</title></head>\
                 <body><h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the dashboard</a></p></body></html>\n",
                status,
                page::escape(&message)
            );
            (status, Html(body)).into_response()
        } else {
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "error": message }).to_string(),
            )
                .into_response()
        }
    }
}

/// Parse a query string, refusing unknown and repeated parameters; empty
/// values are dropped.
pub fn parse_params(raw: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(Error::invalid(format!(
                "unknown parameter `{k}`: expected {}",
                allowed.join(", ")
            )));
        }
        if out.contains_key(k.as_ref()) {
            return Err(Error::invalid(format!("parameter `{k}` given twice")));
        }
        if v.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(format!(
                "parameter `{k}` is longer than {MAX_VALUE_LEN} bytes"
            )));
        }
        if !v.is_empty() {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    Ok(out)
}

fn parse_date(name: &str, v: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| Error::invalid(format!("`{name}` must be a date YYYY-MM-DD, got `{v}`")))
}

/// Turn checked parameters into a query; `None` when no window is given
/// and the warehouse has no data to default to. The slice itself is checked
/// by [`DashboardData::metrics`] before anything is computed.
pub fn metric_query(
    data: &DashboardData,
    params: &HashMap<String, String>,
) -> Result<Option<MetricQuery>> {
    let from = params
        .get("from")
        .map(|v| parse_date("from", v))
        .transpose()?;
    let to = params.get("to").map(|v| parse_date("to", v)).transpose()?;
    let slice = match (params.get("slice"), params.get("value")) {
        (Some(s), Some(v)) => Some((s.clone(), v.clone())),
        (None, None) => None,
        (Some(s), None) => {
            return Err(Error::invalid(format!(
                "slice `{s}` needs a `value` parameter"
            )));
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "`value` needs a `slice` parameter (<peripheral>.<column>)",
            ));
        }
    };
    let window_days = Duration::days(data.window_days());
    let (from, to) = match (from, to, data.default_window()) {
        (Some(f), Some(t), _) => (f, t),
        (Some(f), None, _) => (f, f + window_days),
        (None, Some(t), _) => (t - window_days, t),
        (None, None, Some(w)) => w,
        (None, None, None) => return Ok(None),
    };
    if from > to {
        return Err(Error::invalid(format!("from ({from}) is after to ({to})")));
    }
    Ok(Some(MetricQuery { from, to, slice }))
}

async fn page_handler(
    State(data): State<Arc<DashboardData>>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, Failure> {
    let fail = |error| Failure { error, html: true };
    let mut params = parse_params(raw.as_deref(), METRIC_PARAMS).map_err(fail)?;
    // The form sends a dimension before its value is chosen: show the
    // whole, with that dimension's values to choose from.
    let pending = if params.contains_key("slice") && !params.contains_key("value") {
        params.remove("slice")
    } else {
        None
    };
    if let Some(key) = &pending
        && !data.slices().contains_key(key)
    {
        return Err(fail(Error::invalid(format!("unknown slice `{key}`"))));
    }
    let query = metric_query(&data, &params).map_err(fail)?;
    let series = match &query {
        Some(q) => data.metrics(q).await.map_err(fail)?,
        None => Vec::new(),
    };
    let active = query.as_ref().and_then(|q| q.slice.as_ref());
    let selected = active.map(|(k, _)| k).or(pending.as_ref());
    let slice_values = match selected {
        Some(key) => data.slice_values(key).await.map_err(fail)?,
        None => Vec::new(),
    };
    let view = page::PageView {
        window: query.as_ref().map(|q| (q.from, q.to)),
        data_range: data.data_range(),
        selected_slice: selected.map(String::as_str),
        slice: active.map(|(k, v)| (k.as_str(), v.as_str())),
        slices: data.slices().values().collect(),
        slice_values: &slice_values,
        series: &series,
    };
    Ok(Html(page::render(&view)))
}

/// The JSON document of `/api/metrics`.
pub fn metrics_json(query: Option<&MetricQuery>, series: &[MetricSeries]) -> Value {
    let metrics: Vec<Value> = page::display_order(series)
        .into_iter()
        .map(|s| {
            let latest = s.latest();
            let points: Vec<Value> = s
                .dates
                .iter()
                .zip(&s.points)
                .map(|(d, p)| {
                    json!({
                        "date": d.to_string(),
                        "value": p.value,
                        "cl": p.limits.cl,
                        "lcl": p.limits.lcl,
                        "ucl": p.limits.ucl,
                        "signal": p.signal.as_str(),
                        "long_run": p.long_run,
                    })
                })
                .collect();
            json!({
                "name": s.name,
                "title": page::title(&s.name),
                "date": latest.map(|(d, _)| d.to_string()),
                "value": latest.map(|(_, p)| p.value),
                "cl": latest.map(|(_, p)| p.limits.cl),
                "lcl": latest.map(|(_, p)| p.limits.lcl),
                "ucl": latest.map(|(_, p)| p.limits.ucl),
                "status": latest.map(|(_, p)| p.signal.as_str()),
                "points": points,
            })
        })
        .collect();
    json!({
        "from": query.map(|q| q.from.to_string()),
        "to": query.map(|q| q.to.to_string()),
        "slice": query.and_then(|q| q.slice.as_ref()).map(|(k, v)| json!({"key": k, "value": v})),
        "metrics": metrics,
    })
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn metrics_handler(
    State(data): State<Arc<DashboardData>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Failure> {
    let fail = |error| Failure { error, html: false };
    let params = parse_params(raw.as_deref(), METRIC_PARAMS).map_err(fail)?;
    let query = metric_query(&data, &params).map_err(fail)?;
    let series = match &query {
        Some(q) => data.metrics(q).await.map_err(fail)?,
        None => Vec::new(),
    };
    Ok(json_response(&metrics_json(query.as_ref(), &series)))
}

async fn slices_handler(
    State(data): State<Arc<DashboardData>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Failure> {
    let fail = |error| Failure { error, html: false };
    parse_params(raw.as_deref(), &[]).map_err(fail)?;
    let slices: Vec<&data::Slice> = data.slices().values().collect();
    Ok(json_response(&json!({ "slices": slices })))
}

async fn values_handler(
    State(data): State<Arc<DashboardData>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Failure> {
    let fail = |error| Failure { error, html: false };
    let params = parse_params(raw.as_deref(), &["slice"]).map_err(fail)?;
    let key = params
        .get("slice")
        .ok_or_else(|| Error::invalid("`slice` parameter required"))
        .map_err(fail)?;
    let values = data.slice_values(key).await.map_err(fail)?;
    Ok(json_response(&json!({ "slice": key, "values": values })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_unknown_and_repeated_keys() {
        let ok = parse_params(Some("from=2013-01-01&slice=&value="), METRIC_PARAMS);
        let ok = ok.map(|m| m.into_iter().collect::<Vec<_>>());
        assert_eq!(
            ok.ok(),
            Some(vec![("from".to_string(), "2013-01-01".to_string())])
        );
        let unknown = parse_params(Some("from=2013-01-01&q=1"), METRIC_PARAMS);
        assert!(
            matches!(unknown, Err(e) if e.kind() == ErrorKind::InvalidInput
            && e.message().contains("unknown parameter `q`"))
        );
        let twice = parse_params(Some("to=2013-01-01&to=2013-01-02"), METRIC_PARAMS);
        assert!(matches!(twice, Err(e) if e.message().contains("given twice")));
    }

    #[test]
    fn dates_must_be_iso() {
        assert!(parse_date("from", "2013-02-30").is_err());
        assert!(parse_date("from", "2013-02-28' OR 1=1 --").is_err());
        assert_eq!(
            parse_date("from", "2013-02-28").ok(),
            NaiveDate::from_ymd_opt(2013, 2, 28)
        );
    }
}
