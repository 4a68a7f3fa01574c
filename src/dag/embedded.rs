//! The embedded source as a run uses it: started on a task of its own,
//! extracted from, shut down. Only a build with the `demo` feature has it;
//! without that feature, [`available`] refuses every source whose
//! `base_url` is `embedded` (so [`super::sources::SourceSpec::resolve`]
//! fails before a run starts), and a [`Task`] is that refusal.

#[cfg(not(feature = "demo"))]
pub use off::{Task, extract, prunable_paths, start};
#[cfg(feature = "demo")]
pub use on::{Task, extract, prunable_paths, start};

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::budget::SpillOptions;
use crate::config::SourceConfig;
use crate::error::Result;

/// The settings the embedded generator runs with.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    pub day: u32,
    pub scale: f64,
    pub seed: u64,
    /// Per API path, the date before which rows need not be served.
    pub horizons: BTreeMap<String, NaiveDate>,
    pub spill: Option<SpillOptions>,
}

/// Whether this build can serve `source` from the embedded generator.
pub fn available(source: &SourceConfig) -> Result<()> {
    if cfg!(feature = "demo") {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(format!(
            "source `{}` is served by the embedded generator (`base_url: embedded`), which this build lacks (built without the `demo` feature): give its URL with --source {}=URL",
            source.name, source.name
        )))
    }
}

#[cfg(feature = "demo")]
mod on {
    use std::time::Instant;

    use super::EmbeddedSettings;
    use crate::config::SourceConfig;
    use crate::error::{Error, Result};
    use crate::extract::land::{ExtractOptions, ExtractReport, extract as land};
    use crate::extract::{RetryPolicy, SourceClient};
    use crate::source::{GeneratorOptions, ServerHandle, ServerOptions, serve};
    use crate::storage::Warehouse;

    /// The embedded server being started, with the instant it started.
    pub type Task = tokio_util::task::AbortOnDropHandle<Result<(ServerHandle, Instant)>>;

    /// Start generating and serving `source` on a task of its own.
    pub fn start(source: &SourceConfig, settings: &EmbeddedSettings) -> Task {
        let source = source.clone();
        let options = ServerOptions {
            page_size: source.page_size,
            generator: GeneratorOptions {
                seed: settings.seed,
                scale: settings.scale,
            },
            day: settings.day,
            horizons: settings.horizons.clone(),
            spill: settings.spill.clone(),
            ..ServerOptions::default()
        };
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            let started = Instant::now();
            Ok((serve(&source, options).await?, started))
        }))
    }

    /// Wait for the server, extract `source` from it, shut it down.
    pub async fn extract(
        wh: &Warehouse,
        source: &SourceConfig,
        task: Task,
        options: &ExtractOptions,
    ) -> Result<ExtractReport> {
        let (server, started) = task
            .await
            .map_err(|e| Error::internal(format!("starting the embedded source failed: {e}")))??;
        tracing::debug!(
            source = %source.name,
            ms = started.elapsed().as_millis() as u64,
            "embedded source ready"
        );
        let client = SourceClient::for_source(source, server.base_url(), RetryPolicy::default())?;
        let report = land(wh, source, &client, options).await;
        server.shutdown().await?;
        report
    }

    /// The API paths of the resources the generator may leave rows out of.
    pub fn prunable_paths() -> Result<Vec<&'static str>> {
        Ok(crate::source::generator::prunable_paths()?.collect())
    }
}

#[cfg(not(feature = "demo"))]
mod off {
    use super::EmbeddedSettings;
    use crate::config::SourceConfig;
    use crate::error::{Error, Result};
    use crate::extract::land::{ExtractOptions, ExtractReport};
    use crate::storage::Warehouse;

    /// Without an embedded source, the refusal to start one.
    pub type Task = Error;

    /// The refusal ([`super::available`]'s error).
    pub fn start(source: &SourceConfig, _: &EmbeddedSettings) -> Task {
        match super::available(source) {
            Err(e) => e,
            Ok(()) => Error::internal("the embedded source is not in this build"),
        }
    }

    /// Fails with the refusal.
    pub async fn extract(
        _: &Warehouse,
        _: &SourceConfig,
        task: Task,
        _: &ExtractOptions,
    ) -> Result<ExtractReport> {
        Err(task)
    }

    /// None: nothing is generated.
    pub fn prunable_paths() -> Result<Vec<&'static str>> {
        Ok(Vec::new())
    }
}
