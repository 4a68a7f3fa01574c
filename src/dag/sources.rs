//! Where a run's source systems are served, and extracting from all of them.
//!
//! Each source of the project is read from, in this order of precedence:
//! 1. a URL given for it on the command line (`--source NAME=URL`, or a bare
//!    `--source URL` when the project has a single source);
//! 2. its own `base_url`, when that is a URL;
//! 3. the embedded generator (`base_url: embedded`), started in-process with
//!    the run's day, scale and seed ([`super::embedded`]; a build without
//!    the `demo` feature refuses such a source in [`SourceSpec::resolve`]).
//!
//! Sources are extracted one after the other (each extracts several
//! resources at once); an embedded one generates its data on a task of its
//! own from the moment the run starts, while the run is logged and the DAG is
//! built. A source's failures are reported with the others' in one
//! [`ExtractReport`]; a failed resource of one source never stops another
//! source from landing.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::embedded;
pub use super::embedded::EmbeddedSettings;
use crate::budget::{MemoryBudget, SpillOptions};
use crate::config::{BaseUrl, SourceConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::extract::land::{
    DEFAULT_HELD_PAGES_BYTES, ExtractOptions, ExtractReport, extract, landed_cursor,
};
use crate::extract::{RetryPolicy, SourceClient};
use crate::storage::Warehouse;

/// Where a run's sources are: URLs overriding sources' `base_url`, and the
/// embedded generator's settings (`None` fields continue from the last run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSpec {
    /// Source name -> URL serving it instead of its `base_url`. The empty
    /// name stands for the project's only source (a bare `--source URL`).
    pub urls: BTreeMap<String, String>,
    /// Embedded source: the simulated day.
    pub day: Option<u32>,
    /// Embedded source: the data size.
    pub scale: Option<f64>,
    /// Embedded source: the generator seed.
    pub seed: Option<u64>,
}

impl SourceSpec {
    /// Every source where its config says, the embedded ones with these
    /// settings.
    pub fn embedded(day: Option<u32>, scale: Option<f64>, seed: Option<u64>) -> Self {
        Self {
            day,
            scale,
            seed,
            ..Self::default()
        }
    }

    /// The project's only source served at `url`.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            urls: BTreeMap::from([(String::new(), url.into())]),
            ..Self::default()
        }
    }

    /// Parse `--source` values: `NAME=URL`, or one bare `URL`.
    pub fn with_source_args(mut self, args: &[String]) -> Result<Self> {
        for a in args {
            let (name, url) = match a.split_once('=') {
                Some((n, u)) if crate::config::source::is_identifier(n) => (n, u),
                _ => ("", a.as_str()),
            };
            if self
                .urls
                .insert(name.to_string(), url.to_string())
                .is_some()
            {
                return Err(Error::invalid(if name.is_empty() {
                    format!(
                        "--source {a}: a bare URL is given twice; name the sources (`--source NAME=URL`)"
                    )
                } else {
                    format!("--source {a}: source `{name}` is given twice")
                }));
            }
        }
        Ok(self)
    }

    /// Where each of `sources` is served, in their order.
    pub fn resolve<'p>(
        &self,
        sources: &'p [SourceConfig],
    ) -> Result<Vec<(&'p SourceConfig, Served)>> {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        for name in self.urls.keys() {
            if name.is_empty() {
                if sources.len() > 1 {
                    return Err(Error::invalid(format!(
                        "--source without a name, but the project has {} sources ({}): write --source NAME=URL",
                        names.len(),
                        names.join(", ")
                    )));
                }
            } else if !names.contains(&name.as_str()) {
                return Err(Error::invalid(format!(
                    "--source {name}=...: the project has no source `{name}` (its sources: {})",
                    names.join(", ")
                )));
            }
        }
        let bare = self.urls.get("");
        sources
            .iter()
            .map(|s| {
                let served = match (self.urls.get(&s.name).or(bare), &s.base_url) {
                    (Some(u), _) => Served::Url(u.clone()),
                    (None, BaseUrl::Http(u)) => Served::Url(u.to_string()),
                    (None, BaseUrl::Embedded) => {
                        embedded::available(s)?;
                        Served::Embedded
                    }
                };
                Ok((s, served))
            })
            .collect()
    }
}

/// Where one source is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// A live service.
    Url(String),
    /// The embedded generator.
    Embedded,
}

/// One line naming the live services a run reads (`None` when every source
/// is embedded): the URL alone for a single source, `name=URL` otherwise.
pub fn describe(served: &[(&SourceConfig, Served)]) -> Option<String> {
    let urls: Vec<(&str, &str)> = served
        .iter()
        .filter_map(|(s, w)| match w {
            Served::Url(u) => Some((s.name.as_str(), u.as_str())),
            Served::Embedded => None,
        })
        .collect();
    match urls.as_slice() {
        [] => None,
        [(_, u)] if served.len() == 1 => Some(u.to_string()),
        many => Some(
            many.iter()
                .map(|(n, u)| format!("{n}={u}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// A source being made ready: a service by URL, or the embedded source
/// generating on a task of its own since [`start`] (with the instant it
/// started).
pub enum Started {
    Url(String),
    Embedded(embedded::Task),
}

/// Start serving `source` (only an embedded one has anything to start).
pub fn start(source: &SourceConfig, served: &Served, settings: &EmbeddedSettings) -> Started {
    match served {
        Served::Url(u) => Started::Url(u.clone()),
        Served::Embedded => Started::Embedded(embedded::start(source, settings)),
    }
}

/// Per resource of the embedded source that can leave rows out (see
/// `source::ServerOptions::horizons`), the date of the cursor its
/// landing table holds; resources with nothing landed have none. The code
/// of the tuning `skip-landed` ([`crate::tuning`]): a run reads these only
/// when it is on ([`super::run::horizons`]).
pub async fn embedded_horizons(
    wh: &Warehouse,
    source: &SourceConfig,
) -> Result<BTreeMap<String, NaiveDate>> {
    let prunable: Vec<&str> = embedded::prunable_paths()?;
    let cursors = futures::future::try_join_all(
        source
            .resources
            .iter()
            .filter(|r| prunable.contains(&r.api_path.as_str()))
            .map(|r| async move {
                let cursor = landed_cursor(wh, r).await?;
                Ok::<_, Error>(cursor.map(|c| (r.api_path.clone(), c.date_naive())))
            }),
    )
    .await?;
    Ok(cursors.into_iter().flatten().collect())
}

/// Where and past which size the embedded source spills its generated rows
/// under `budget` (`None`: no limit, no spilling).
pub fn source_spill(budget: &MemoryBudget) -> Option<SpillOptions> {
    budget.source_share().map(|above| SpillOptions {
        above,
        dir: budget.spill_dir.clone(),
    })
}

/// Bytes of fetched pages a resource may hold under `budget` before it
/// streams (a 32nd of the limit, at most the default).
pub fn held_pages_bytes(budget: &MemoryBudget) -> usize {
    budget.limit.map_or(DEFAULT_HELD_PAGES_BYTES, |l| {
        DEFAULT_HELD_PAGES_BYTES.min((l / 32) as usize)
    })
}

/// Extract every source, one after the other, into one report. An error
/// that stops a whole source (its service cannot be started or reached at
/// all) stops the run; failed resources are in the report.
pub async fn extract_all(
    wh: &Warehouse,
    sources: Vec<(&SourceConfig, Started)>,
    progress: bool,
    budget: &MemoryBudget,
) -> Result<ExtractReport> {
    let options = ExtractOptions {
        progress,
        held_pages_bytes: held_pages_bytes(budget),
        ..ExtractOptions::default()
    };
    // A missing secret stops the run before any source lands.
    for (source, _) in &sources {
        source.credentials()?;
    }
    let mut all: Option<ExtractReport> = None;
    let many = sources.len() > 1;
    for (source, started) in sources {
        let report = extract_one(wh, source, started, &options)
            .await
            .map_err(|e| {
                if many {
                    e.context(format!("source {}", source.name))
                } else {
                    e
                }
            })?;
        match &mut all {
            None => all = Some(report),
            Some(a) => a.resources.extend(report.resources),
        }
    }
    all.ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the project has no source"))
}

/// Extract one source (see [`extract`]), shutting its embedded server down
/// afterwards.
pub async fn extract_one(
    wh: &Warehouse,
    source: &SourceConfig,
    started: Started,
    options: &ExtractOptions,
) -> Result<ExtractReport> {
    match started {
        Started::Url(u) => {
            let client = SourceClient::for_source(source, &u, RetryPolicy::default())?;
            extract(wh, source, &client, options).await
        }
        Started::Embedded(task) => embedded::extract(wh, source, task, options).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Project;

    fn two_sources() -> Project {
        let aw = SourceConfig::adventure_works().unwrap();
        let shop = SourceConfig::from_yaml(
            "name: shop\nbase_url: http://shop.example/api/\nresources:\n  - table: raw__shop__things\n    api_path: /Things\n    primary_key: [thing_id]\n    cursor_field: ModifiedDate\n    columns:\n      - { name: thing_id, source: ThingId, type: bigint }\n      - { name: modified_date, source: ModifiedDate, type: date }\n",
            "shop.yaml",
        )
        .unwrap();
        Project::new(
            vec![aw, shop],
            crate::model::config::ModelConfig::adventure_works().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn each_source_is_served_from_its_override_its_url_or_the_generator() {
        let p = two_sources();
        let spec = SourceSpec::embedded(None, None, None);
        let served = spec.resolve(&p.sources).unwrap();
        assert_eq!(served[0].1, Served::Embedded);
        assert_eq!(served[1].1, Served::Url("http://shop.example/api/".into()));
        assert_eq!(
            describe(&served).as_deref(),
            Some("shop=http://shop.example/api/")
        );
        let spec = SourceSpec::default()
            .with_source_args(&["adventure_works=http://127.0.0.1:9/odata/".into()])
            .unwrap();
        let served = spec.resolve(&p.sources).unwrap();
        assert_eq!(served[0].1, Served::Url("http://127.0.0.1:9/odata/".into()));
        assert_eq!(served[1].1, Served::Url("http://shop.example/api/".into()));
    }

    #[test]
    fn source_arguments_name_known_sources() {
        let p = two_sources();
        let e = SourceSpec::url("http://x/")
            .resolve(&p.sources)
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "the project has 2 sources (adventure_works, shop): write --source NAME=URL"
            ),
            "{e}"
        );
        let e = SourceSpec::default()
            .with_source_args(&["crm=http://x/".into()])
            .unwrap()
            .resolve(&p.sources)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("the project has no source `crm` (its sources: adventure_works, shop)"),
            "{e}"
        );
        let e = SourceSpec::default()
            .with_source_args(&["shop=http://a/".into(), "shop=http://b/".into()])
            .unwrap_err();
        assert!(
            e.to_string().contains("source `shop` is given twice"),
            "{e}"
        );
        // A URL with `=` in its query is a bare URL, not a name.
        let spec = SourceSpec::default()
            .with_source_args(&["http://x/odata?a=b".into()])
            .unwrap();
        assert_eq!(spec.urls.get(""), Some(&"http://x/odata?a=b".to_string()));
    }
}
