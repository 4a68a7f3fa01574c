//! Sources that list resources and keys but no columns: the columns (and,
//! where left out, the keys) are read from the OData service's `$metadata`.
//!
//! The document is fetched the first time the project is loaded and kept
//! beside the source file (`sources/crm.yaml` -> `sources/crm.metadata.xml`),
//! so later runs, `plan` and `render` read the same columns without the
//! network, and a change on the service shows up in review when the file is
//! deleted and fetched again. Each property becomes a column as
//! [`crate::extract::metadata::EntitySet::as_config`] says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::source::DiscoveredSet;
use crate::config::{BaseUrl, SourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::metadata;

/// Read, complete and validate the source file at `path`.
pub fn load_source(path: &Path) -> Result<SourceConfig> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).ctx(ErrorKind::InvalidInput, || {
        format!("cannot read source config {origin}")
    })?;
    let cache = cache_path(path);
    SourceConfig::from_yaml_discovering(&text, &origin, Some(&mut |config| sets(&cache, config)))
}

/// Where the `$metadata` of the source at `path` is kept.
pub fn cache_path(path: &Path) -> PathBuf {
    path.with_extension("metadata.xml")
}

/// The entity sets of `config`'s service, from `cache` or else fetched
/// (and then kept in `cache`).
fn sets(cache: &Path, config: &SourceConfig) -> Result<BTreeMap<String, DiscoveredSet>> {
    let text = match std::fs::read_to_string(cache) {
        Ok(t) => t,
        Err(_) => {
            let BaseUrl::Http(base) = &config.base_url else {
                return Err(Error::invalid(format!(
                    "{}: columns can only be discovered from an http(s) base_url",
                    config.origin
                )));
            };
            let (url, text) = fetch(base.as_str()).map_err(|e| {
                e.context(format!(
                    "{}: reading the columns its resources leave out from the service's $metadata",
                    config.origin
                ))
            })?;
            std::fs::write(cache, &text).ctx(ErrorKind::InvalidInput, || {
                format!("cannot keep {url} in {}", cache.display())
            })?;
            tracing::info!(source = %config.name, file = %cache.display(), "kept the service's $metadata");
            text
        }
    };
    let model = metadata::parse(&text).map_err(|e| e.context(cache.display().to_string()))?;
    Ok(model
        .entity_sets
        .iter()
        .map(|set| (set.name.clone(), set.as_config()))
        .collect())
}

/// `$metadata` fetched on a thread of its own (project loading is not
/// async, and may run inside a runtime or not).
fn fetch(base: &str) -> Result<(String, String)> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ctx(ErrorKind::Internal, || "cannot start a runtime".to_string())?
                .block_on(metadata::fetch_document(base))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::internal("fetching $metadata panicked")))
    })
}
