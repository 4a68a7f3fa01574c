//! The OData v4 extraction client.
//!
//! # Requests
//! For a resource and a [`Cursor`], the first request is
//! `GET <base><api_path>?$count=false&$orderby=<CursorField>&$filter=<CursorField> ge <literal>`
//! (`gt` for [`Cursor::After`]); without a cursor the filter starts at
//! `1970-01-01`, as the original did. The literal is a bare date when the
//! cursor is at midnight UTC, an RFC 3339 date-time otherwise. After each
//! page the top-level `@odata.nextLink` (absolute, or relative to the page's
//! URL) is requested verbatim, until a page has none. Rows are the `value`
//! array. Requests ask for `IEEE754Compatible=true` JSON, so a service
//! that honours it sends `Edm.Int64` and `Edm.Decimal` values as strings and
//! no digit passes through a binary double (see `extract::schema`).
//!
//! Before the first page the client asks `<api_path>/$count` with the same
//! filter; a service that answers with a number is held to it: reading
//! fewer rows than counted fails the resource (see also
//! [`crate::extract::paging`] for the checks on each page).
//!
//! # Retries
//! HTTP 429, any 5xx, timeouts and connection failures are retried up to
//! [`RetryPolicy::max_retries`] times with exponential backoff
//! (`initial_backoff * 2^attempt`, capped at `max_backoff`, at least a
//! `Retry-After` given in seconds, capped again) and jitter (each delay is
//! scaled by a random factor in `[0.5, 1]`). Other 4xx answers fail at once.
//! Failures are [`ErrorKind::Source`] errors naming the table, the API path
//! and the URL.
//!
//! # Pages and cursor
//! Each [`Page`] holds one record batch (see [`crate::extract::schema`]),
//! the maximum cursor value among its rows (rows without one are kept and
//! ignored for the maximum), its URL and the next URL. Pages arrive in
//! cursor order, so after committing page *k* a loader may persist
//! `max_cursor` of page *k*; after a crash, resuming with
//! [`Cursor::AtOrAfter`] of that value re-reads at most the rows sharing
//! that cursor value (duplicates, never gaps). After a complete extraction,
//! [`Cursor::After`] of the overall maximum fetches only later changes; that
//! is exact for a source whose rows of one `ModifiedDate` are published
//! together, like the embedded source (one simulated day = one date).

use std::collections::BTreeSet;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Map, Value};
use url::Url;

use crate::config::{BaseUrl, ResourceConfig, SourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::paging::{PageGuard, check_keys};
use crate::extract::schema::{member, parse_instant, resource_schema, rows_to_batch};

/// The `Accept` header of every page request: JSON, with 64-bit integers
/// and decimals as strings where the service supports it (OData v4 JSON
/// format, section 3.2).
const ACCEPT_JSON: &str = "application/json;IEEE754Compatible=true, application/json;q=0.9";

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any delay.
    pub max_backoff: Duration,
    /// Timeout of one HTTP request (connect + response + body).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based), before jitter.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.min(20)));
        let base = exp.min(self.max_backoff);
        retry_after
            .map_or(base, |r| base.max(r))
            .min(self.max_backoff)
    }
}

/// Where an incremental extraction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Rows whose cursor is at or after the instant (`ge`): the original's
    /// inclusive cursor; re-reads rows at the boundary.
    AtOrAfter(DateTime<Utc>),
    /// Rows whose cursor is strictly after the instant (`gt`).
    After(DateTime<Utc>),
}

impl Cursor {
    /// The instant.
    pub fn value(&self) -> DateTime<Utc> {
        match self {
            Cursor::AtOrAfter(t) | Cursor::After(t) => *t,
        }
    }

    /// The `$filter` expression for `field`.
    pub fn filter(&self, field: &str) -> String {
        let op = match self {
            Cursor::AtOrAfter(_) => "ge",
            Cursor::After(_) => "gt",
        };
        format!("{field} {op} {}", render_instant(self.value()))
    }
}

/// A bare date at midnight UTC, an RFC 3339 UTC date-time otherwise.
pub fn render_instant(t: DateTime<Utc>) -> String {
    if t.time() == NaiveTime::MIN {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// One page of an extraction.
#[derive(Debug, Clone)]
pub struct Page {
    /// 0-based page number within the extraction.
    pub index: usize,
    /// Position of the page's first row within the extraction.
    pub first_row: usize,
    /// The URL this page was read from.
    pub url: Url,
    /// The next page's URL, if any.
    pub next_url: Option<Url>,
    /// The rows (configured columns, then extras).
    pub batch: RecordBatch,
    /// Largest cursor value among the page's rows.
    pub max_cursor: Option<DateTime<Utc>>,
    /// Extra columns in this page: `(column, API name)`.
    pub extra_columns: Vec<(String, String)>,
}

/// A whole extraction of one resource.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// Landing table name.
    pub table: String,
    /// One batch per non-empty page, in order (schemas may differ by extras).
    pub batches: Vec<RecordBatch>,
    /// Pages read (including empty ones).
    pub pages: usize,
    /// Total rows.
    pub rows: usize,
    /// Largest cursor value seen; `None` if no row had one.
    pub max_cursor: Option<DateTime<Utc>>,
    /// Every extra column seen: `(column, API name)`.
    pub extra_columns: BTreeSet<(String, String)>,
    /// The configured schema (without extras).
    pub schema: SchemaRef,
}

/// The OData client.
#[derive(Debug, Clone)]
pub struct ODataClient {
    http: reqwest::Client,
    base_url: Url,
    retry: RetryPolicy,
}

impl ODataClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8080`
    /// or `https://host/odata/v1/`).
    pub fn new(base_url: &str, retry: RetryPolicy) -> Result<Self> {
        let base = Url::parse(base_url).ctx(ErrorKind::InvalidInput, || {
            format!("OData base URL `{base_url}` is not a URL")
        })?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(Error::invalid(format!(
                "OData base URL `{base_url}` must use http or https"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .build()
            .ctx(ErrorKind::Internal, || {
                "cannot build the HTTP client".to_string()
            })?;
        Ok(Self {
            http,
            base_url: base,
            retry,
        })
    }

    /// A client for a configured source, after checking its column names
    /// ([`crate::extract::naming::check_names`]). An `embedded` source has no
    /// URL of its own: pass the running server's
    /// [`crate::source::ServerHandle::base_url`] as `embedded_url`; for an
    /// `http(s)` source `embedded_url` is ignored.
    pub fn for_source(
        config: &SourceConfig,
        embedded_url: Option<&str>,
        retry: RetryPolicy,
    ) -> Result<Self> {
        crate::extract::naming::check_names(config, &config.name)?;
        match (&config.base_url, embedded_url) {
            (BaseUrl::Http(url), _) => Self::new(url.as_str(), retry),
            (BaseUrl::Embedded, Some(url)) => Self::new(url, retry),
            (BaseUrl::Embedded, None) => Err(Error::invalid(format!(
                "source `{}` is embedded: start crate::source::serve and pass its base URL",
                config.name
            ))),
        }
    }

    /// Fail fast, in one line, when nothing answers at the service root:
    /// a refused or unresolvable connection (retried twice, half a second
    /// apart) or no answer within ten seconds. Any HTTP answer, even an
    /// error status, counts as reachable (the resources' own requests then
    /// say what is wrong).
    pub async fn check_reachable(&self) -> Result<()> {
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            match self
                .http
                .get(self.base_url.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_connect() || e.is_timeout() => last = Some(e),
                Err(_) => return Ok(()),
            }
        }
        let why = last.map(|e| {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(c) = cause.source() {
                cause = c;
            }
            cause.to_string()
        });
        Err(Error::new(
            ErrorKind::Source,
            format!(
                "the source at {} cannot be reached ({}); is the service running and the URL right?",
                self.base_url,
                why.unwrap_or_else(|| "no answer".into())
            ),
        ))
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `<base><api_path><suffix>`, without a query.
    fn resource_url(&self, resource: &ResourceConfig, suffix: &str) -> Result<Url> {
        let joined = format!(
            "{}{}{suffix}",
            self.base_url.as_str().trim_end_matches('/'),
            resource.api_path
        );
        Url::parse(&joined).ctx(ErrorKind::InvalidInput, || {
            format!("resource `{}`: cannot build URL `{joined}`", resource.table)
        })
    }

    /// The first page's URL for `resource` from `cursor`.
    pub fn first_url(&self, resource: &ResourceConfig, cursor: Option<&Cursor>) -> Result<Url> {
        let mut url = self.resource_url(resource, "")?;
        let filter = cursor
            .copied()
            .unwrap_or(Cursor::AtOrAfter(DateTime::UNIX_EPOCH))
            .filter(&resource.cursor_field);
        url.query_pairs_mut()
            .append_pair("$count", "false")
            .append_pair("$orderby", &resource.cursor_field)
            .append_pair("$filter", &filter);
        Ok(url)
    }

    /// Stream the pages of `resource` from `cursor`, one request at a time.
    /// The stream ends after the page without a next link, or with the
    /// first error.
    pub fn pages<'a>(
        &'a self,
        resource: &'a ResourceConfig,
        cursor: Option<Cursor>,
    ) -> BoxStream<'a, Result<Page>> {
        struct State {
            next: Option<Url>,
            index: usize,
            rows: usize,
            guard: PageGuard,
            /// The service's `$count` for the same filter, asked before the
            /// first page (`None`: not offered).
            count: Option<Option<u64>>,
            filter: String,
        }
        let first = match self.first_url(resource, cursor.as_ref()) {
            Ok(u) => u,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let state = State {
            guard: PageGuard::new(&first),
            filter: cursor
                .unwrap_or(Cursor::AtOrAfter(DateTime::UNIX_EPOCH))
                .filter(&resource.cursor_field),
            next: Some(first),
            index: 0,
            rows: 0,
            count: None,
        };
        futures::stream::try_unfold(state, move |mut st| async move {
            if st.count.is_none() {
                st.count = Some(self.count(resource, &st.filter).await);
            }
            let Some(url) = st.next.take() else {
                // Fewer rows than counted is a loss. More is not: a row
                // modified while the pages are read moves past the cursor
                // and is read again, as its new version.
                if let Some(Some(n)) = st.count
                    && (st.rows as u64) < n
                {
                    return Err(Error::new(
                        ErrorKind::Source,
                        format!(
                            "resource `{}` ({}): read {} rows over {} page(s), but the service's $count for `{}` is {n}: rows were lost",
                            resource.table, resource.api_path, st.rows, st.index, st.filter
                        ),
                    ));
                }
                return Ok(None);
            };
            let page = self
                .fetch_page(resource, url, st.index, st.rows, &mut st.guard)
                .await?;
            st.index += 1;
            st.rows += page.batch.num_rows();
            st.next = page.next_url.clone();
            Ok(Some((page, st)))
        })
        .boxed()
    }

    /// The service's row count of `resource` under `filter`
    /// (`GET <path>/$count?$filter=...`), when it offers one: any failure
    /// or an answer that is not a number means "not offered" (the count is
    /// a cross-check, never a reason to fail by itself).
    async fn count(&self, resource: &ResourceConfig, filter: &str) -> Option<u64> {
        let mut url = self.resource_url(resource, "/$count").ok()?;
        url.query_pairs_mut().append_pair("$filter", filter);
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/plain")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()?.trim().parse().ok()
    }

    /// Read every page of `resource` from `cursor` into memory.
    pub async fn fetch_all(
        &self,
        resource: &ResourceConfig,
        cursor: Option<Cursor>,
    ) -> Result<Extracted> {
        let mut out = Extracted {
            table: resource.table.clone(),
            batches: Vec::new(),
            pages: 0,
            rows: 0,
            max_cursor: None,
            extra_columns: BTreeSet::new(),
            schema: resource_schema(resource),
        };
        let mut pages = self.pages(resource, cursor);
        while let Some(page) = pages.try_next().await? {
            out.pages += 1;
            out.rows += page.batch.num_rows();
            out.max_cursor = out.max_cursor.max(page.max_cursor);
            out.extra_columns.extend(page.extra_columns);
            if page.batch.num_rows() > 0 {
                out.batches.push(page.batch);
            }
        }
        Ok(out)
    }

    async fn fetch_page(
        &self,
        resource: &ResourceConfig,
        url: Url,
        index: usize,
        first_row: usize,
        guard: &mut PageGuard,
    ) -> Result<Page> {
        tracing::debug!(table = %resource.table, %url, "requesting page {index}");
        let body = self.get_json(resource, &url).await?;
        let malformed = |what: &str| {
            Error::new(
                ErrorKind::Source,
                format!(
                    "resource `{}` ({}): GET {url}: {what}",
                    resource.table, resource.api_path
                ),
            )
        };
        let Value::Object(mut body) = body else {
            return Err(malformed("the response is not a JSON object"));
        };
        let rows: Vec<Map<String, Value>> = match body.remove("value") {
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => Ok(m),
                    _ => Err(malformed(&format!(
                        "row {} is not a JSON object",
                        first_row + i
                    ))),
                })
                .collect::<Result<_>>()?,
            _ => return Err(malformed("the response has no `value` array")),
        };
        let next_url = match body.get("@odata.nextLink") {
            None | Some(Value::Null) => None,
            Some(Value::String(link)) => Some(url.join(link).map_err(|e| {
                malformed(&format!("invalid @odata.nextLink `{link}`")).with_source(e)
            })?),
            Some(other) => return Err(malformed(&format!("invalid @odata.nextLink {other}"))),
        };
        check_keys(resource, &url, &rows, first_row)?;
        guard.check_rows(resource, index, &url, &rows)?;
        if let Some(next) = &next_url {
            guard.check_link(resource, index, &url, next)?;
        }
        let max_cursor = rows
            .iter()
            .filter_map(|r| member(r, &resource.cursor_field)?.as_str())
            .filter_map(parse_instant)
            .max();
        let (batch, extra_columns) = rows_to_batch(resource, &rows, first_row).map_err(|e| {
            let own = format!("resource `{}`: ", resource.table);
            let what = e.message().strip_prefix(&own).unwrap_or(e.message());
            Error::new(e.kind(), what).context(format!(
                "resource `{}` ({}): GET {url}",
                resource.table, resource.api_path
            ))
        })?;
        Ok(Page {
            index,
            first_row,
            url,
            next_url,
            batch,
            max_cursor,
            extra_columns,
        })
    }

    /// GET `url` and parse JSON, retrying transient failures.
    async fn get_json(&self, resource: &ResourceConfig, url: &Url) -> Result<Value> {
        let mut attempt: u32 = 0;
        loop {
            let (reason, retry_after) = match self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, ACCEPT_JSON)
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(bytes) => {
                        return serde_json::from_slice(&bytes).map_err(|e| {
                            Error::new(
                                ErrorKind::Source,
                                format!(
                                    "resource `{}` ({}): GET {url}: the response is not JSON ({e}); it begins `{}`",
                                    resource.table,
                                    resource.api_path,
                                    excerpt(&bytes)
                                ),
                            )
                        });
                    }
                    Err(e) => (format!("reading the body failed: {e}"), None),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    let detail = odata_message(&text);
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        (format!("HTTP {status}{detail}"), retry_after)
                    } else {
                        return Err(Error::new(
                            ErrorKind::Source,
                            format!(
                                "resource `{}` ({}): GET {url} failed with HTTP {status}{detail}",
                                resource.table, resource.api_path
                            ),
                        ));
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "resource `{}` ({}): cannot request {url}",
                            resource.table, resource.api_path
                        ),
                    )
                    .with_source(e));
                }
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else {
                        "failed"
                    };
                    (format!("request {kind}: {e}"), None)
                }
            };
            if attempt >= self.retry.max_retries {
                return Err(Error::new(
                    ErrorKind::Source,
                    format!(
                        "resource `{}` ({}): GET {url} failed after {} attempt(s): {reason}",
                        resource.table,
                        resource.api_path,
                        attempt + 1
                    ),
                ));
            }
            let delay = self.retry.backoff(attempt, retry_after);
            let jitter = rand::rng().random_range(0.5..=1.0);
            let delay = delay.mul_f64(jitter);
            tracing::warn!(
                "{}: attempt {} of {} failed ({reason}); retrying in {:.1}s",
                resource.table,
                attempt + 1,
                self.retry.max_retries + 1,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// The first bytes of a body, on one line, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `: <message>` from an OData error body, or a short excerpt of the text.
fn odata_message(text: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_string));
    match parsed {
        Some(m) => format!(": {m}"),
        None if text.trim().is_empty() => String::new(),
        None => format!(": {}", text.chars().take(200).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cursor_literals() {
        let midnight = Utc
            .with_ymd_and_hms(2014, 7, 1, 0, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(
            Cursor::AtOrAfter(midnight).filter("ModifiedDate"),
            "ModifiedDate ge 2014-07-01"
        );
        let later = Utc
            .with_ymd_and_hms(2014, 7, 1, 10, 30, 0)
            .single()
            .expect("valid");
        assert_eq!(
            Cursor::After(later).filter("ModifiedDate"),
            "ModifiedDate gt 2014-07-01T10:30:00Z"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
        };
        assert_eq!(p.backoff(0, None), Duration::from_millis(100));
        assert_eq!(p.backoff(2, None), Duration::from_millis(400));
        assert_eq!(p.backoff(10, None), Duration::from_secs(1));
        assert_eq!(
            p.backoff(0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn first_url_carries_the_query() {
        let c = ODataClient::new("http://127.0.0.1:9/odata/v1/", RetryPolicy::default())
            .expect("client");
        let r = crate::config::SourceConfig::adventure_works().expect("config");
        let res = r.resource_by_path("/Customers").expect("customers");
        let url = c.first_url(res, None).expect("url");
        assert_eq!(url.path(), "/odata/v1/Customers");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("$count".to_string(), "false".to_string()),
                ("$orderby".to_string(), "ModifiedDate".to_string()),
                (
                    "$filter".to_string(),
                    "ModifiedDate ge 1970-01-01".to_string()
                ),
            ]
        );
    }
}
