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
//! Through [`Http`]: transient failures are retried with backoff and
//! jitter; credentials and the rate limit are the source's.
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

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{BaseUrl, ResourceConfig, SourceConfig};
use crate::das::resource_schema;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::http::Http;
pub use crate::extract::http::RetryPolicy;
pub use crate::extract::page::Page;
use crate::extract::paging::PageGuard;

/// The `Accept` header of every page request: JSON, with 64-bit integers
/// and decimals as strings where the service supports it (OData v4 JSON
/// format, section 3.2).
const ACCEPT_JSON: &str = "application/json;IEEE754Compatible=true, application/json;q=0.9";

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
    http: Http,
    base_url: Url,
}

impl ODataClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8080`
    /// or `https://host/odata/v1/`).
    pub fn new(base_url: &str, retry: RetryPolicy) -> Result<Self> {
        Self::with_http(base_url, Http::new(retry, None, None)?)
    }

    /// A client for the service at `base_url` asking through `http` (with
    /// its credentials and rate limit).
    pub fn with_http(base_url: &str, http: Http) -> Result<Self> {
        Ok(Self {
            http,
            base_url: super::http::base_url(base_url, "OData")?,
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

    /// Fail fast, in one line, when nothing answers at the service root
    /// (see [`Http::check_reachable`]).
    pub async fn check_reachable(&self) -> Result<()> {
        self.http.check_reachable(&self.base_url).await
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
        self.http
            .get_text(&url, "text/plain")
            .await?
            .trim()
            .parse()
            .ok()
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
        let body = self.http.get_json(resource, &url, ACCEPT_JSON).await?.body;
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
        Page::build(resource, url, next_url, index, first_row, &rows, guard)
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
