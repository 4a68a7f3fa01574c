//! One client per source, whatever it speaks: what the landing asks of a
//! source (is it there, which instant to read from, the pages from it) with
//! the OData or REST answer behind it.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::config::{ResourceConfig, SourceConfig, SourceKind};
use crate::error::Result;
use crate::extract::http::{Http, RetryPolicy};
use crate::extract::odata::{Cursor, ODataClient};
use crate::extract::page::Page;
use crate::extract::rest::RestClient;

/// A source's client.
#[derive(Debug, Clone)]
pub enum SourceClient {
    OData(ODataClient),
    Rest(RestClient),
}

impl From<ODataClient> for SourceClient {
    fn from(c: ODataClient) -> Self {
        SourceClient::OData(c)
    }
}

impl From<RestClient> for SourceClient {
    fn from(c: RestClient) -> Self {
        SourceClient::Rest(c)
    }
}

impl SourceClient {
    /// The client of `config`'s source served at `base_url` (its own URL,
    /// an override, or the embedded server's), after checking its column
    /// names; credentials are read from the environment now.
    pub fn for_source(config: &SourceConfig, base_url: &str, retry: RetryPolicy) -> Result<Self> {
        crate::extract::naming::check_names(config, &config.origin)?;
        let http = Http::new(retry, config.credentials()?, config.rest.rate_limit)?;
        Ok(match config.kind {
            SourceKind::Odata => ODataClient::with_http(base_url, http)?.into(),
            SourceKind::Rest => {
                RestClient::new(base_url, http, config.rest.paginator.clone())?.into()
            }
        })
    }

    /// Fail fast, in one line, when nothing answers at the source's root.
    pub async fn check_reachable(&self) -> Result<()> {
        match self {
            SourceClient::OData(c) => c.check_reachable().await,
            SourceClient::Rest(c) => c.check_reachable().await,
        }
    }

    /// The instant a run reads `resource` from, given the cursor its table
    /// holds (`landed`): that cursor less the resource's look-back; `None`
    /// (read everything) before the first landing, and for a REST resource
    /// without a cursor parameter.
    pub fn read_from(
        &self,
        resource: &ResourceConfig,
        landed: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        if matches!(self, SourceClient::Rest(_)) && resource.cursor_param.is_none() {
            return None;
        }
        let back = chrono::Duration::from_std(resource.lookback()).unwrap_or(chrono::Duration::MAX);
        landed.map(|c| c.checked_sub_signed(back).unwrap_or(DateTime::UNIX_EPOCH))
    }

    /// Stream `resource`'s pages with rows changed at or after `from`
    /// (everything when `None`).
    pub fn pages<'a>(
        &'a self,
        resource: &'a ResourceConfig,
        from: Option<DateTime<Utc>>,
    ) -> BoxStream<'a, Result<Page>> {
        match self {
            SourceClient::OData(c) => c.pages(resource, from.map(Cursor::AtOrAfter)),
            SourceClient::Rest(c) => c.pages(resource, from),
        }
    }
}
