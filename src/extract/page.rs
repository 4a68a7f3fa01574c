//! One page of a resource's extraction, whatever the source speaks: the
//! rows of one response, checked ([`crate::extract::paging`]) and converted
//! to a record batch ([`crate::extract::schema`]).

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use url::Url;

use crate::config::ResourceConfig;
use crate::error::Result;
use crate::extract::paging::{PageGuard, check_keys};
use crate::extract::schema::{member, parse_instant, rows_to_batch};

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

impl Page {
    /// Page `index` of `resource`, read from `url`: its rows' keys are
    /// checked (no NULL or missing key, not a repeat of the previous page),
    /// so is the link to `next_url` (same origin, not a page already read),
    /// and the rows become a batch. `first_row` is the extraction's position
    /// of `rows[0]`, for error messages.
    pub fn build(
        resource: &ResourceConfig,
        url: Url,
        next_url: Option<Url>,
        index: usize,
        first_row: usize,
        rows: &[Map<String, Value>],
        guard: &mut PageGuard,
    ) -> Result<Page> {
        check_keys(resource, &url, rows, first_row)?;
        guard.check_rows(resource, index, &url, rows)?;
        if let Some(next) = &next_url {
            guard.check_link(resource, index, &url, next)?;
        }
        let max_cursor = rows
            .iter()
            .filter_map(|r| member(r, &resource.cursor_field)?.as_str())
            .filter_map(parse_instant)
            .max();
        let (batch, extra_columns) = rows_to_batch(resource, rows, first_row).map_err(|e| {
            let own = format!("resource `{}`: ", resource.table);
            e.map_message(|m| m.strip_prefix(&own).unwrap_or(m).to_string())
                .context(format!(
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
}
