//! The REST JSON client (`kind: rest` sources): plain JSON over HTTP, in the
//! spirit of dlt's REST API source.
//!
//! # Requests
//! A resource's first request is `GET <base><api_path>` with its `params`,
//! the paginator's first-page parameters, and, when the resource names a
//! `cursor_param` and a cursor is known, `<cursor_param>=<instant>` (a bare
//! date at midnight UTC, RFC 3339 otherwise): the service is asked for rows
//! changed at or after the instant. Without a `cursor_param` the whole
//! resource is read every run (the landing drops rows already landed).
//!
//! # Records
//! The records are the body itself when it is an array, else the array at
//! the resource's `data_selector` (a dotted path such as `data` or
//! `result.items`); every record must be a JSON object. Members are matched
//! to configured columns as for OData (exactly, then ignoring case); others
//! land as extra columns.
//!
//! # Paginators
//! - `single_page`: one request (the default);
//! - `json_link`: the next URL is in the body at `next_url_path`;
//! - `header_link`: the next URL is the `Link` header's `rel="next"`;
//! - `offset`: `offset`/`limit` parameters, ending at a short page or at the
//!   body's `total_path`;
//! - `page_number`: a page parameter counted from `base_page`, ending at an
//!   empty page or past `total_path` pages;
//! - `cursor`: a token from the body at `cursor_path`, sent back as
//!   `cursor_param`, ending when the body has none.
//!
//! Links are resolved against the page's URL and must stay on the first
//! page's origin; a link back to a page already read, a page that only
//! repeats the previous page's keys, and a NULL key fail the resource
//! ([`crate::extract::paging`]), as for OData.

use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{PaginatorConfig, ResourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::http::Http;
use crate::extract::odata::render_instant;
use crate::extract::page::Page;
use crate::extract::paging::PageGuard;

/// The `Accept` header of every request.
const ACCEPT_JSON: &str = "application/json";

/// A REST JSON source's client.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: Http,
    base_url: Url,
    /// The paginator of resources that name none.
    paginator: PaginatorConfig,
}

/// Where a resource's paging stands between two requests.
struct State {
    next: Option<Url>,
    index: usize,
    rows: usize,
    guard: PageGuard,
    /// The offset (`offset`) or page number (`page_number`) of `next`.
    position: u64,
}

impl RestClient {
    /// A client for the service at `base_url`, asking through `http`;
    /// `paginator` is the source's default (none: single page).
    pub fn new(base_url: &str, http: Http, paginator: Option<PaginatorConfig>) -> Result<Self> {
        Ok(Self {
            http,
            base_url: super::http::base_url(base_url, "REST")?,
            paginator: paginator.unwrap_or(PaginatorConfig::SinglePage),
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Fail fast when nothing answers at the base URL.
    pub async fn check_reachable(&self) -> Result<()> {
        self.http.check_reachable(&self.base_url).await
    }

    fn paginator<'a>(&'a self, resource: &'a ResourceConfig) -> &'a PaginatorConfig {
        resource.paginator.as_ref().unwrap_or(&self.paginator)
    }

    /// The first page's URL for `resource`, asking for rows changed at or
    /// after `from` (when the resource has a cursor parameter).
    pub fn first_url(&self, resource: &ResourceConfig, from: Option<DateTime<Utc>>) -> Result<Url> {
        let joined = format!(
            "{}{}",
            self.base_url.as_str().trim_end_matches('/'),
            resource.api_path
        );
        let mut url = Url::parse(&joined).ctx(ErrorKind::InvalidInput, || {
            format!("resource `{}`: cannot build URL `{joined}`", resource.table)
        })?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &resource.params {
                q.append_pair(k, v);
            }
            if let (Some(param), Some(from)) = (&resource.cursor_param, from) {
                q.append_pair(param, &render_instant(from));
            }
            match self.paginator(resource) {
                PaginatorConfig::Offset {
                    limit,
                    offset_param,
                    limit_param,
                    ..
                } => {
                    q.append_pair(offset_param, "0");
                    q.append_pair(limit_param, &limit.to_string());
                }
                PaginatorConfig::PageNumber {
                    page_param,
                    base_page,
                    ..
                } => {
                    q.append_pair(page_param, &base_page.to_string());
                }
                _ => {}
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// Stream the pages of `resource` from `from`, one request at a time;
    /// the stream ends after the last page or with the first error.
    pub fn pages<'a>(
        &'a self,
        resource: &'a ResourceConfig,
        from: Option<DateTime<Utc>>,
    ) -> BoxStream<'a, Result<Page>> {
        let first = match self.first_url(resource, from) {
            Ok(u) => u,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let position = match self.paginator(resource) {
            PaginatorConfig::PageNumber { base_page, .. } => *base_page,
            _ => 0,
        };
        let state = State {
            guard: PageGuard::new(&first).with_link_name("next link"),
            next: Some(first),
            index: 0,
            rows: 0,
            position,
        };
        futures::stream::try_unfold(state, move |mut st| async move {
            let Some(url) = st.next.take() else {
                return Ok(None);
            };
            let page = self.fetch_page(resource, url, &mut st).await?;
            st.index += 1;
            st.rows += page.batch.num_rows();
            st.next = page.next_url.clone();
            Ok(Some((page, st)))
        })
        .boxed()
    }

    async fn fetch_page(
        &self,
        resource: &ResourceConfig,
        url: Url,
        st: &mut State,
    ) -> Result<Page> {
        tracing::debug!(table = %resource.table, %url, "requesting page {}", st.index);
        let mut resp = self.http.get_json(resource, &url, ACCEPT_JSON).await?;
        let malformed = |what: String| {
            Error::new(
                ErrorKind::Source,
                format!(
                    "resource `{}` ({}): GET {url}: {what}",
                    resource.table, resource.api_path
                ),
            )
        };
        let selector = resource.data_selector.as_deref();
        let n = select(&resp.body, selector).map_err(&malformed)?.len();
        let next = self
            .next_url(resource, &url, &resp, n, st)
            .map_err(&malformed)?;
        // The records are moved out of the body, not copied.
        let rows: Vec<Map<String, Value>> = take_records(&mut resp.body, selector)
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok(m),
                other => Err(malformed(format!(
                    "record {} is not a JSON object but {}",
                    st.rows + i,
                    kind_of(&other)
                ))),
            })
            .collect::<Result<_>>()?;
        Page::build(resource, url, next, st.index, st.rows, &rows, &mut st.guard)
    }

    /// The URL after page `st.index` (read from `url`, `n` records), or
    /// `None` when it was the last.
    fn next_url(
        &self,
        resource: &ResourceConfig,
        url: &Url,
        resp: &super::http::JsonResponse,
        n: usize,
        st: &mut State,
    ) -> std::result::Result<Option<Url>, String> {
        let body = &resp.body;
        let join = |link: &str| {
            url.join(link)
                .map(Some)
                .map_err(|e| format!("invalid next link `{link}`: {e}"))
        };
        match self.paginator(resource) {
            PaginatorConfig::SinglePage => Ok(None),
            PaginatorConfig::JsonLink { next_url_path } => match lookup(body, next_url_path) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => join(s),
                Some(other) => Err(format!(
                    "the next link at `{next_url_path}` is {}, not a URL",
                    kind_of(other)
                )),
            },
            PaginatorConfig::HeaderLink => {
                let links = resp
                    .headers
                    .get_all(reqwest::header::LINK)
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                match links.filter_map(next_link).next() {
                    Some(link) => join(&link),
                    None => Ok(None),
                }
            }
            PaginatorConfig::Offset {
                limit,
                offset_param,
                total_path,
                ..
            } => {
                let offset = st.position + *limit;
                let total = total_path
                    .as_ref()
                    .map(|p| number_at(body, p))
                    .transpose()?;
                if (n as u64) < *limit || total.is_some_and(|t| offset >= t) {
                    return Ok(None);
                }
                st.position = offset;
                Ok(Some(with_param(url, offset_param, &offset.to_string())))
            }
            PaginatorConfig::PageNumber {
                page_param,
                base_page,
                total_path,
            } => {
                let pages = total_path
                    .as_ref()
                    .map(|p| number_at(body, p))
                    .transpose()?;
                let next = st.position + 1;
                if n == 0 || pages.is_some_and(|t| next >= base_page + t) {
                    return Ok(None);
                }
                st.position = next;
                Ok(Some(with_param(url, page_param, &next.to_string())))
            }
            PaginatorConfig::Cursor {
                cursor_path,
                cursor_param,
            } => match lookup(body, cursor_path) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(with_param(url, cursor_param, s))),
                Some(Value::Number(n)) => Ok(Some(with_param(url, cursor_param, &n.to_string()))),
                Some(other) => Err(format!(
                    "the page cursor at `{cursor_path}` is {}, not a token",
                    kind_of(other)
                )),
            },
        }
    }
}

/// The records of a body: the body when it is an array, else the array at
/// `selector`.
fn select<'a>(body: &'a Value, selector: Option<&str>) -> std::result::Result<&'a [Value], String> {
    match (body, selector) {
        (Value::Array(items), None) => Ok(items),
        (_, None) => Err(format!(
            "the response is {}, not an array of records; name the records' path with `data_selector`{}",
            kind_of(body),
            array_members(body)
        )),
        (_, Some(path)) => match lookup(body, path) {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(format!(
                "`data_selector: {path}` selects {}, not an array of records",
                kind_of(other)
            )),
            None => Err(format!(
                "the response has nothing at `data_selector: {path}`{}",
                array_members(body)
            )),
        },
    }
}

/// The records [`select`] found, moved out of `body`.
fn take_records(body: &mut Value, selector: Option<&str>) -> Vec<Value> {
    let target = match selector {
        None => Some(body),
        Some(path) => path
            .split('.')
            .try_fold(body, |v, part| v.as_object_mut()?.get_mut(part)),
    };
    match target {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => Vec::new(),
    }
}

/// ` (arrays in it: a, b)` for an error message, or nothing.
fn array_members(body: &Value) -> String {
    let names: Vec<&str> = body
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.is_array())
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (arrays in it: {})", names.join(", "))
    }
}

/// The value at a dotted `path` of `body`.
fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(body, |v, part| v.as_object()?.get(part))
}

/// A non-negative whole number at `path` (a number or a numeric string).
fn number_at(body: &Value, path: &str) -> std::result::Result<u64, String> {
    match lookup(body, path) {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
            Ok(s.trim().parse().unwrap_or_default())
        }
        Some(other) => Err(format!(
            "the total at `{path}` is {}, not a whole number",
            kind_of(other)
        )),
        None => Err(format!("the response has no total at `{path}`")),
    }
}

/// `url` with query parameter `name` set to `value` (replacing it).
fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    out
}

/// The target of a `Link` header's `rel="next"` entry (RFC 8288), if any.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_string())
    })
}

/// A JSON value's kind, for messages (`a string "x"`, `an object`).
fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string {:?}", s.chars().take(40).collect::<String>()),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_selected_by_path() {
        let body = json!({"data": {"items": [{"id": 1}]}, "meta": {}});
        assert_eq!(select(&body, Some("data.items")).unwrap().len(), 1);
        let e = select(&body, None).unwrap_err();
        assert!(
            e.contains("name the records' path with `data_selector`"),
            "{e}"
        );
        let e = select(&body, Some("data")).unwrap_err();
        assert!(e.contains("selects an object, not an array"), "{e}");
        let e = select(&json!({"rows": [], "n": 1}), Some("items")).unwrap_err();
        assert!(
            e.contains("nothing at `data_selector: items` (arrays in it: rows)"),
            "{e}"
        );
        assert_eq!(
            select(&json!([{"id": 1}, {"id": 2}]), None).unwrap().len(),
            2
        );
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let h = r#"<https://api.example/x?page=1>; rel="prev", <https://api.example/x?page=3>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.example/x?page=3")
        );
        assert_eq!(
            next_link(r#"</x?p=2>; rel="next last""#).as_deref(),
            Some("/x?p=2")
        );
        assert_eq!(next_link(r#"<https://a/x>; rel="last""#), None);
    }

    #[test]
    fn parameters_are_replaced_not_repeated() {
        let u = Url::parse("http://h/x?limit=10&offset=0&q=a").unwrap();
        let n = with_param(&u, "offset", "10");
        assert_eq!(n.as_str(), "http://h/x?limit=10&q=a&offset=10");
    }

    #[test]
    fn the_first_url_carries_params_cursor_and_paging() {
        let http = Http::new(Default::default(), None, None).unwrap();
        let client = RestClient::new(
            "http://127.0.0.1:9/api/",
            http,
            Some(PaginatorConfig::Offset {
                limit: 50,
                offset_param: "skip".into(),
                limit_param: "take".into(),
                total_path: None,
            }),
        )
        .unwrap();
        let mut r = crate::extract::schema::tests::resource();
        r.api_path = "/things".into();
        r.params.insert("status".into(), "all".into());
        r.cursor_param = Some("updated_since".into());
        let from = "2024-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            client.first_url(&r, Some(from)).unwrap().as_str(),
            "http://127.0.0.1:9/api/things?status=all&updated_since=2024-03-01T10%3A00%3A00Z&skip=0&take=50"
        );
        r.paginator = Some(PaginatorConfig::SinglePage);
        r.params.clear();
        assert_eq!(
            client.first_url(&r, None).unwrap().as_str(),
            "http://127.0.0.1:9/api/things"
        );
    }
}
