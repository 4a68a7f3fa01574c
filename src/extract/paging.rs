//! Checks on a resource's sequence of pages: what a faulty service can do
//! to server-driven paging, caught before a wrong row lands.
//!
//! A [`PageGuard`] follows one resource's extraction, page by page:
//! - a next link (`@odata.nextLink`, or a REST paginator's) must stay on the origin (scheme, host and port) of
//!   the first page: a link elsewhere would send the next requests, and
//!   whatever credentials they carry, to another service, and its rows would
//!   land as this resource's;
//! - a link must not lead to a page already read: a service paging in a loop
//!   would otherwise be read until killed;
//! - a page whose rows carry no key the previous page did not (it repeats
//!   the previous page) is refused: the rows it replaced would be lost, and
//!   since the cursor moves past them, a re-run would not bring them back.
//!
//! [`check_keys`] refuses a row whose primary key field is missing or NULL:
//! a DAS table never holds a NULL true key.
//!
//! Every error is an [`ErrorKind::Source`] naming the resource and the URL
//! (and the row and field), so the resource fails without moving its cursor
//! and the run's summary says why.

use std::collections::HashSet;

use serde_json::{Map, Value};
use url::Url;

use crate::config::ResourceConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::schema::member;

/// The state of one resource's paging (see the module docs).
#[derive(Debug)]
pub struct PageGuard {
    /// What the service calls its next link, for messages.
    link_name: &'static str,
    origin: url::Origin,
    visited: HashSet<Url>,
    previous_keys: HashSet<String>,
}

impl PageGuard {
    /// A guard for the pages starting at `first`.
    pub fn new(first: &Url) -> Self {
        Self {
            link_name: "@odata.nextLink",
            origin: first.origin(),
            visited: HashSet::from([first.clone()]),
            previous_keys: HashSet::new(),
        }
    }

    /// The same guard, naming the next link `name` in messages.
    pub fn with_link_name(mut self, name: &'static str) -> Self {
        self.link_name = name;
        self
    }

    /// Check the link from page `index` (read from `url`) to `next`.
    pub fn check_link(
        &mut self,
        resource: &ResourceConfig,
        index: usize,
        url: &Url,
        next: &Url,
    ) -> Result<()> {
        if next.origin() != self.origin {
            return Err(fail(
                resource,
                url,
                format!(
                    "{} `{next}` leads to another origin than the service ({}); refusing to follow it",
                    self.link_name,
                    self.origin.ascii_serialization()
                ),
            ));
        }
        if !self.visited.insert(next.clone()) {
            return Err(fail(
                resource,
                url,
                format!(
                    "{} of page {index} leads back to a page already read (`{next}`): the service pages in a loop",
                    self.link_name
                ),
            ));
        }
        Ok(())
    }

    /// Check page `index`'s rows against the previous page's: refused when
    /// the page has rows and none of their keys is new.
    pub fn check_rows(
        &mut self,
        resource: &ResourceConfig,
        index: usize,
        url: &Url,
        rows: &[Map<String, Value>],
    ) -> Result<()> {
        let keys: HashSet<String> = rows.iter().map(|r| key_text(resource, r)).collect();
        if index > 0 && !keys.is_empty() && keys.is_subset(&self.previous_keys) {
            return Err(fail(
                resource,
                url,
                format!(
                    "page {index} repeats rows of page {} ({} rows, no new key): rows would be lost",
                    index - 1,
                    rows.len()
                ),
            ));
        }
        self.previous_keys = keys;
        Ok(())
    }
}

/// The primary key of a JSON row as text (fields in key order).
fn key_text(resource: &ResourceConfig, row: &Map<String, Value>) -> String {
    resource
        .primary_key
        .iter()
        .map(|k| {
            resource
                .column(k)
                .and_then(|c| member(row, &c.source))
                .map(Value::to_string)
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Refuse a row whose primary key field is missing or NULL. `first_row` is
/// the position of `rows[0]` in the extraction.
pub fn check_keys(
    resource: &ResourceConfig,
    url: &Url,
    rows: &[Map<String, Value>],
    first_row: usize,
) -> Result<()> {
    for (i, row) in rows.iter().enumerate() {
        for k in &resource.primary_key {
            let Some(c) = resource.column(k) else {
                continue;
            };
            match member(row, &c.source) {
                Some(Value::Null) => {
                    return Err(fail(
                        resource,
                        url,
                        format!("row {}: key field `{}` is null", first_row + i, c.source),
                    ));
                }
                None => {
                    return Err(fail(
                        resource,
                        url,
                        format!("row {}: key field `{}` is missing", first_row + i, c.source),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn fail(resource: &ResourceConfig, url: &Url, what: String) -> Error {
    Error::new(
        ErrorKind::Source,
        format!(
            "resource `{}` ({}): GET {url}: {what}",
            resource.table, resource.api_path
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::schema::tests::resource;

    fn rows(ids: &[Value]) -> Vec<Map<String, Value>> {
        ids.iter()
            .map(|id| {
                let mut m = Map::new();
                m.insert("ThingId".into(), id.clone());
                m.insert("ModifiedDate".into(), Value::from("2014-01-01"));
                m
            })
            .collect()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn links_stay_on_the_service_and_never_loop() {
        let r = resource();
        let first = url("http://127.0.0.1:8080/Things?$filter=x");
        let mut g = PageGuard::new(&first);
        let second = url("http://127.0.0.1:8080/Things?$skiptoken=2");
        g.check_link(&r, 0, &first, &second).unwrap();
        let e = g
            .check_link(&r, 1, &second, &first)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leads back to a page already read"), "{e}");
        assert!(e.contains("raw__demo__things"), "{e}");
        for other in [
            "http://evil.example:8080/Things?$skiptoken=4",
            "https://127.0.0.1:8080/Things?$skiptoken=4",
            "http://127.0.0.1:8081/Things?$skiptoken=4",
        ] {
            let e = g
                .check_link(&r, 1, &second, &url(other))
                .unwrap_err()
                .to_string();
            assert!(e.contains("leads to another origin"), "{other}: {e}");
            assert!(e.contains(other), "{e}");
        }
    }

    #[test]
    fn a_page_repeating_the_previous_one_is_refused() {
        let r = resource();
        let u = url("http://127.0.0.1:8080/Things");
        let mut g = PageGuard::new(&u);
        g.check_rows(&r, 0, &u, &rows(&[1.into(), 2.into()]))
            .unwrap();
        // One new key is enough (a boundary row may repeat).
        g.check_rows(&r, 1, &u, &rows(&[2.into(), 3.into()]))
            .unwrap();
        let e = g
            .check_rows(&r, 2, &u, &rows(&[3.into(), 2.into()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("page 2 repeats rows of page 1"), "{e}");
        // An empty page is not a repeat.
        g.check_rows(&r, 2, &u, &[]).unwrap();
    }

    #[test]
    fn missing_or_null_keys_are_refused_naming_row_and_field() {
        let r = resource();
        let u = url("http://127.0.0.1:8080/Things");
        check_keys(&r, &u, &rows(&[1.into(), 2.into()]), 0).unwrap();
        let e = check_keys(&r, &u, &rows(&[1.into(), Value::Null]), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 11: key field `ThingId` is null"), "{e}");
        let mut missing = rows(&[1.into()]);
        missing[0].remove("ThingId");
        let e = check_keys(&r, &u, &missing, 0).unwrap_err().to_string();
        assert!(e.contains("row 0: key field `ThingId` is missing"), "{e}");
    }
}
