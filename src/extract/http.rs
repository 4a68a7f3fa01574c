//! HTTP for extraction, shared by every source kind: one reqwest client per
//! source with its retry policy, its credentials and its rate limit.
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
//! # Credentials and rate
//! [`Credentials`] go on every request (a query key only when the URL does
//! not carry it already, e.g. in a server's next link); they are added to
//! the request, never to the URL an error prints. With a [`RateLimit`],
//! requests of all the source's resources together start at least
//! [`RateLimit::interval`] apart.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::config::{Credentials, RateLimit, ResourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};

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

/// A JSON answer.
#[derive(Debug)]
pub struct JsonResponse {
    pub headers: HeaderMap,
    pub body: Value,
}

/// Spaces requests of one source at least an interval apart.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    /// Wait for this request's turn.
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// A source's HTTP client (see the module docs).
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    credentials: Option<Arc<Credentials>>,
    pacer: Option<Arc<Pacer>>,
}

impl Http {
    /// A client with `retry`, sending `credentials` and keeping `rate`.
    pub fn new(
        retry: RetryPolicy,
        credentials: Option<Credentials>,
        rate: Option<RateLimit>,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .build()
            .ctx(ErrorKind::Internal, || {
                "cannot build the HTTP client".to_string()
            })?;
        Ok(Self {
            client,
            retry,
            credentials: credentials.map(Arc::new),
            pacer: rate.map(|r| {
                Arc::new(Pacer {
                    interval: r.interval(),
                    next: tokio::sync::Mutex::new(Instant::now()),
                })
            }),
        })
    }

    /// A GET of `url` with the credentials, after the rate limit's wait.
    async fn get(&self, url: &Url) -> reqwest::RequestBuilder {
        if let Some(p) = &self.pacer {
            p.wait().await;
        }
        let mut req = self.client.get(url.clone());
        match self.credentials.as_deref() {
            None => {}
            Some(Credentials::Bearer(token)) => req = req.bearer_auth(token),
            Some(Credentials::Basic { username, password }) => {
                req = req.basic_auth(username, Some(password));
            }
            Some(Credentials::HeaderKey { name, key }) => req = req.header(name, key),
            Some(Credentials::QueryKey { name, key })
                if !url.query_pairs().any(|(k, _)| k == name.as_str()) =>
            {
                req = req.query(&[(name, key)]);
            }
            Some(Credentials::QueryKey { .. }) => {}
        }
        req
    }

    /// Fail fast, in one line, when nothing answers at `base`: a refused or
    /// unresolvable connection (retried twice, half a second apart) or no
    /// answer within ten seconds. Any HTTP answer, even an error status,
    /// counts as reachable (the resources' own requests then say what is
    /// wrong).
    pub async fn check_reachable(&self, base: &Url) -> Result<()> {
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            match self
                .get(base)
                .await
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
                "the source at {base} cannot be reached ({}); is the service running and the URL right?",
                why.unwrap_or_else(|| "no answer".into())
            ),
        ))
    }

    /// The text at `url` (one attempt, 30 s), or `None` on any failure:
    /// for optional cross-checks such as OData's `$count`.
    pub async fn get_text(&self, url: &Url, accept: &str) -> Option<String> {
        let resp = self
            .get(url)
            .await
            .header(reqwest::header::ACCEPT, accept)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()
    }

    /// GET `url` for `resource` and parse JSON, retrying transient failures.
    pub async fn get_json(
        &self,
        resource: &ResourceConfig,
        url: &Url,
        accept: &str,
    ) -> Result<JsonResponse> {
        let mut attempt: u32 = 0;
        loop {
            let (reason, retry_after) = match self
                .get(url)
                .await
                .header(reqwest::header::ACCEPT, accept)
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => {
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(bytes) => {
                            let body = serde_json::from_slice(&bytes).map_err(|e| {
                                Error::new(
                                    ErrorKind::Source,
                                    format!(
                                        "resource `{}` ({}): GET {url}: the response is not JSON ({e}); it begins `{}`",
                                        resource.table,
                                        resource.api_path,
                                        excerpt(&bytes)
                                    ),
                                )
                            })?;
                            return Ok(JsonResponse { headers, body });
                        }
                        Err(e) => (format!("reading the body failed: {e}"), None),
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    let detail = error_message(&text);
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

/// A source's base URL (`what` names its kind in errors): absolute, http
/// or https.
pub fn base_url(text: &str, what: &str) -> Result<Url> {
    let base = Url::parse(text).ctx(ErrorKind::InvalidInput, || {
        format!("{what} base URL `{text}` is not a URL")
    })?;
    if base.scheme() != "http" && base.scheme() != "https" {
        return Err(Error::invalid(format!(
            "{what} base URL `{text}` must use http or https"
        )));
    }
    Ok(base)
}

/// The first bytes of a body, on one line, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `: <message>` from an error body (OData's `error.message`, or a plain
/// `message` / `error` string as REST APIs send), or a short excerpt of the
/// text.
fn error_message(text: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        let s = |v: &Value| v.as_str().map(str::to_string);
        v.get("error")
            .and_then(|e| e.get("message").and_then(s).or_else(|| s(e)))
            .or_else(|| v.get("message").and_then(s))
    });
    match parsed {
        Some(m) => format!(": {m}"),
        None if text.trim().is_empty() => String::new(),
        None => format!(": {}", text.chars().take(200).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":{"code":"x","message":"no such set"}}"#),
            ": no such set"
        );
        assert_eq!(error_message(r#"{"error":"bad token"}"#), ": bad token");
        assert_eq!(error_message(r#"{"message":"slow down"}"#), ": slow down");
        assert_eq!(error_message(""), "");
    }

    #[tokio::test]
    async fn credentials_go_on_the_request_not_in_the_url() {
        let url = Url::parse("http://api.example/v1/things?page=2").unwrap();
        let request = |c: Credentials| {
            let url = url.clone();
            async move {
                let http = Http::new(RetryPolicy::default(), Some(c), None).unwrap();
                http.get(&url).await.build().unwrap()
            }
        };
        let r = request(Credentials::Basic {
            username: "ann".into(),
            password: "pw".into(),
        })
        .await;
        // base64("ann:pw")
        assert_eq!(r.headers()["authorization"], "Basic YW5uOnB3");
        let r = request(Credentials::HeaderKey {
            name: "X-Api-Key".into(),
            key: "k1".into(),
        })
        .await;
        assert_eq!(r.headers()["x-api-key"], "k1");
        assert_eq!(r.url().as_str(), "http://api.example/v1/things?page=2");
        let r = request(Credentials::QueryKey {
            name: "api_key".into(),
            key: "k2".into(),
        })
        .await;
        assert_eq!(
            r.url().as_str(),
            "http://api.example/v1/things?page=2&api_key=k2"
        );
        // A next link that carries the key already is not given a second.
        let linked = Url::parse("http://api.example/v1/things?page=3&api_key=k2").unwrap();
        let http = Http::new(
            RetryPolicy::default(),
            Some(Credentials::QueryKey {
                name: "api_key".into(),
                key: "k2".into(),
            }),
            None,
        )
        .unwrap();
        let r = http.get(&linked).await.build().unwrap();
        assert_eq!(r.url().query(), Some("page=3&api_key=k2"));
        let r = request(Credentials::Bearer("t".into())).await;
        assert_eq!(r.headers()["authorization"], "Bearer t");
    }

    #[tokio::test]
    async fn a_rate_limit_spaces_requests() {
        let pacer = Pacer {
            interval: Duration::from_millis(50),
            next: tokio::sync::Mutex::new(Instant::now()),
        };
        let t0 = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        // The first goes at once, the fifth four intervals later.
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t0.elapsed()
        );
    }
}
