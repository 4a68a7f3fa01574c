//! The settings of a REST JSON source (`kind: rest`), in the spirit of dlt's
//! REST API source: how to authenticate, how to walk pages, how fast to ask,
//! and per resource where the records sit in a response and which query
//! parameter carries the incremental cursor.
//!
//! ```yaml
//! name: shop
//! kind: rest
//! base_url: https://shop.example/api/
//! auth: { type: bearer, token_env: SHOP_TOKEN }
//! paginator: { type: json_link, next_url_path: links.next }
//! rate_limit: { requests_per_second: 5 }
//! resources:
//!   - table: raw__shop__customers
//!     api_path: /customers
//!     data_selector: data
//!     cursor_param: updated_since
//!     lookback: 1h
//!     ...
//! ```
//!
//! Secrets are never written in the file: auth names environment variables,
//! read when a client is made ([`AuthConfig::resolve`]), so `plan`, `render`
//! and `lineage` need none. Every check here names the file and the key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a source speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// OData v4: `$filter`/`$orderby` on the cursor, `@odata.nextLink` paging.
    #[default]
    Odata,
    /// Plain JSON over HTTP: see the module docs.
    Rest,
}

/// How requests authenticate; every secret comes from an environment
/// variable named here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer { token_env: String },
    /// HTTP basic authentication.
    Basic {
        username_env: String,
        password_env: String,
    },
    /// A key sent as a header or a query parameter called `name`.
    ApiKey {
        name: String,
        #[serde(default)]
        location: KeyLocation,
        key_env: String,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    #[default]
    Header,
    Query,
}

/// Credentials read from the environment.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
    HeaderKey { name: String, key: String },
    QueryKey { name: String, key: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        let kind = match self {
            Credentials::Bearer(_) => "bearer",
            Credentials::Basic { .. } => "basic",
            Credentials::HeaderKey { .. } => "api key (header)",
            Credentials::QueryKey { .. } => "api key (query)",
        };
        write!(f, "Credentials({kind}, redacted)")
    }
}

impl AuthConfig {
    /// The credentials, read from the environment now; `origin` names the
    /// source file in the error for an unset or empty variable.
    pub fn resolve(&self, origin: &str) -> Result<Credentials> {
        let var = |name: &str| -> Result<String> {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(Error::invalid(format!(
                    "{origin}: auth: environment variable {name} is not set (it holds the source's secret)"
                ))),
            }
        };
        Ok(match self {
            AuthConfig::Bearer { token_env } => Credentials::Bearer(var(token_env)?),
            AuthConfig::Basic {
                username_env,
                password_env,
            } => Credentials::Basic {
                username: var(username_env)?,
                password: var(password_env)?,
            },
            AuthConfig::ApiKey {
                name,
                location,
                key_env,
            } => {
                let key = var(key_env)?;
                match location {
                    KeyLocation::Header => Credentials::HeaderKey {
                        name: name.clone(),
                        key,
                    },
                    KeyLocation::Query => Credentials::QueryKey {
                        name: name.clone(),
                        key,
                    },
                }
            }
        })
    }
}

/// How a resource's pages follow each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaginatorConfig {
    /// One request, no paging.
    SinglePage,
    /// The next page's URL is in the body at `next_url_path` (dotted);
    /// absent, null or empty ends the resource.
    JsonLink {
        #[serde(default = "default_next_url_path")]
        next_url_path: String,
    },
    /// The next page's URL is the `Link` header's `rel="next"`.
    HeaderLink,
    /// `offset_param`/`limit_param` query parameters; ends at a page with
    /// fewer than `limit` records, or at `total_path`'s value when given.
    Offset {
        limit: u64,
        #[serde(default = "default_offset_param")]
        offset_param: String,
        #[serde(default = "default_limit_param")]
        limit_param: String,
        #[serde(default)]
        total_path: Option<String>,
    },
    /// `page_param` counts pages from `base_page`; ends at an empty page, or
    /// past `total_path`'s value (the number of pages) when given.
    PageNumber {
        #[serde(default = "default_page_param")]
        page_param: String,
        #[serde(default = "default_base_page")]
        base_page: u64,
        #[serde(default)]
        total_path: Option<String>,
    },
    /// The body at `cursor_path` holds a token sent back as `cursor_param`;
    /// absent, null or empty ends the resource.
    Cursor {
        cursor_path: String,
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
    },
}

fn default_next_url_path() -> String {
    "next".into()
}
fn default_offset_param() -> String {
    "offset".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_page_param() -> String {
    "page".into()
}
fn default_base_page() -> u64 {
    1
}
fn default_cursor_param() -> String {
    "cursor".into()
}

/// How fast a source may be asked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second over all of the source's resources.
    pub requests_per_second: f64,
}

impl Eq for RateLimit {}

impl RateLimit {
    /// The least time between two requests.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.requests_per_second)
    }
}

/// A source's REST settings (`kind: rest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestSource {
    pub auth: Option<AuthConfig>,
    /// The paginator of resources that name none (default: single page).
    pub paginator: Option<PaginatorConfig>,
    pub rate_limit: Option<RateLimit>,
}

/// How far before the landed cursor a run reads again, so rows a source
/// publishes late with an earlier cursor value are not missed (rows read
/// again that are already landed do not land twice). Written like `90s`,
/// `15m`, `2h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lookback(pub Duration);

impl std::str::FromStr for Lookback {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(Lookback)
            .map_err(|e| format!("lookback `{text}` is not a duration such as 30m, 2h or 1d ({e})"))
    }
}

impl Serialize for Lookback {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Lookback {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl PaginatorConfig {
    /// Check the values serde cannot: `at` names file and resource.
    pub fn validate(&self, at: &str) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(format!("{at}: paginator: {m}")));
        let empty = |s: &str| s.trim().is_empty();
        match self {
            PaginatorConfig::Offset {
                limit,
                offset_param,
                limit_param,
                ..
            } => {
                if *limit == 0 {
                    return bad("limit must be at least 1");
                }
                if empty(offset_param) || empty(limit_param) || offset_param == limit_param {
                    return bad("offset_param and limit_param must be two different names");
                }
            }
            PaginatorConfig::PageNumber { page_param, .. } if empty(page_param) => {
                return bad("page_param is empty");
            }
            PaginatorConfig::Cursor {
                cursor_path,
                cursor_param,
            } if empty(cursor_path) || empty(cursor_param) => {
                return bad("cursor_path and cursor_param must be set");
            }
            PaginatorConfig::JsonLink { next_url_path } if empty(next_url_path) => {
                return bad("next_url_path is empty");
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginators_parse_with_defaults() {
        let p: PaginatorConfig = serde_yaml::from_str("type: offset\nlimit: 50").unwrap();
        assert_eq!(
            p,
            PaginatorConfig::Offset {
                limit: 50,
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                total_path: None
            }
        );
        let p: PaginatorConfig = serde_yaml::from_str("type: json_link").unwrap();
        assert_eq!(
            p,
            PaginatorConfig::JsonLink {
                next_url_path: "next".into()
            }
        );
        let e = serde_yaml::from_str::<PaginatorConfig>("type: scroll").unwrap_err();
        assert!(e.to_string().contains("unknown variant `scroll`"), "{e}");
        let e = PaginatorConfig::Offset {
            limit: 0,
            offset_param: "o".into(),
            limit_param: "l".into(),
            total_path: None,
        }
        .validate("shop.yaml: resource `x`")
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("shop.yaml: resource `x`: paginator: limit must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_print() {
        let auth = AuthConfig::Bearer {
            token_env: "LAKEHOUSE_TEST_UNSET_TOKEN_VAR".into(),
        };
        let e = auth.resolve("shop.yaml").unwrap_err().to_string();
        assert!(
            e.contains(
                "shop.yaml: auth: environment variable LAKEHOUSE_TEST_UNSET_TOKEN_VAR is not set"
            ),
            "{e}"
        );
        let c = Credentials::Bearer("s3cr3t".into());
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let l = |t: &str| t.parse::<Lookback>();
        assert_eq!(l("2h").unwrap(), Lookback(Duration::from_secs(7200)));
        assert_eq!(l("1d").unwrap(), Lookback(Duration::from_secs(86400)));
        assert!(l("soon").unwrap_err().contains("lookback `soon`"));
        assert_eq!(
            serde_yaml::to_string(&Lookback(Duration::from_secs(5400)))
                .unwrap()
                .trim(),
            "1h 30m"
        );
    }
}
