//! A project: the config of its source systems plus its model config,
//! validated against each other once, and the list of models they define.
//!
//! Invariants checked by [`Project::new`]: at least one source; source names
//! are unique; a landing table belongs to exactly one source (so a frame's
//! `source_table` names one resource of one system); every frame reads a
//! table of some source. Frames of different systems meet where they share
//! a hook (same concept and keyset), as frames of one system do.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::{empty::EmptyTable, provider_as_source};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::TableReference;

use super::config::{Frame, ModelConfig};
use super::frame::frame_plan;
use super::graph::DependencyGraph;
use super::measures::MeasureConfig;
use crate::config::{ResourceConfig, SourceConfig};
use crate::das;
use crate::error::{Error, Result};

/// Source and model config of the project's systems.
#[derive(Debug, Clone)]
pub struct Project {
    /// The source systems, in the order the project lists them.
    pub sources: Vec<SourceConfig>,
    pub model: ModelConfig,
    /// Measures of the event bridges (empty unless given).
    pub measures: MeasureConfig,
}

impl Project {
    /// The built-in Adventure Works project.
    pub fn adventure_works() -> Result<Self> {
        Self::new(
            vec![SourceConfig::adventure_works()?],
            ModelConfig::adventure_works()?,
        )?
        .with_measures(MeasureConfig::adventure_works()?)
    }

    /// Add measures, validated against the frames, their dependency graph
    /// and the source tables.
    pub fn with_measures(mut self, measures: MeasureConfig) -> Result<Self> {
        let graph = DependencyGraph::new(&self.model)?;
        measures.validate(&self.model, &graph, &self.sources)?;
        self.measures = measures;
        Ok(self)
    }

    /// Validate the sources against each other and `model` against them.
    pub fn new(sources: Vec<SourceConfig>, model: ModelConfig) -> Result<Self> {
        if sources.is_empty() {
            return Err(Error::invalid("a project needs at least one source system"));
        }
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        let mut tables: BTreeMap<&str, &str> = BTreeMap::new();
        for s in &sources {
            if let Some(first) = names.insert(&s.name, &s.origin) {
                return Err(Error::invalid(format!(
                    "{}: source name `{}` is also the name of the source in {first}",
                    s.origin, s.name
                )));
            }
            for r in &s.resources {
                if let Some(other) = tables.insert(&r.table, &s.name) {
                    return Err(Error::invalid(format!(
                        "{}: resource `{}`: table `{}` is also landed by source `{other}`; \
                         each source lands its own tables (name them raw__<source>__<entity>)",
                        s.origin, r.api_path, r.table
                    )));
                }
            }
        }
        let project = Self {
            sources,
            model,
            measures: MeasureConfig::default(),
        };
        project.model.validate(|table| {
            project
                .resource_by_table(table)
                .map(|r| r.columns.iter().map(|c| c.name.clone()).collect())
        })?;
        Ok(project)
    }

    /// The resource landing `table`, of whichever source.
    pub fn resource_by_table(&self, table: &str) -> Option<&ResourceConfig> {
        self.sources.iter().find_map(|s| s.resource_by_table(table))
    }

    /// The source system landing `table`.
    pub fn source_of_table(&self, table: &str) -> Option<&SourceConfig> {
        self.sources
            .iter()
            .find(|s| s.resource_by_table(table).is_some())
    }

    /// The source system named `name`.
    pub fn source_named(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Every resource of every source, source by source.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceConfig> {
        self.sources.iter().flat_map(|s| s.resources.iter())
    }

    /// The source resource a frame reads.
    pub fn resource_of(&self, frame: &Frame) -> Result<&ResourceConfig> {
        self.resource_by_table(&frame.source_table).ok_or_else(|| {
            Error::invalid(format!(
                "frame {}: unknown source table {}",
                frame.name, frame.source_table
            ))
        })
    }

    /// A frame's plan over an empty stand-in of its DAS table: the plan as
    /// the config defines it, independent of any data (used by `render`).
    pub fn frame_plan_from_config(&self, frame: &Frame) -> Result<LogicalPlan> {
        let resource = self.resource_of(frame)?;
        let scan = LogicalPlanBuilder::scan(
            TableReference::partial(das::NAMESPACE, resource.table.clone()),
            provider_as_source(Arc::new(EmptyTable::new(das::table_schema(resource)))),
            None,
        )?
        .build()?;
        frame_plan(frame, &resource.primary_key, scan, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, table: &str, origin: &str) -> SourceConfig {
        SourceConfig::from_yaml(
            &format!(
                "name: {name}\nbase_url: embedded\nresources:\n  - table: {table}\n    api_path: /Things\n    primary_key: [thing_id]\n    cursor_field: ModifiedDate\n    columns:\n      - {{ name: thing_id, source: ThingId, type: bigint }}\n      - {{ name: modified_date, source: ModifiedDate, type: date }}\n"
            ),
            origin,
        )
        .unwrap()
    }

    #[test]
    fn sources_have_distinct_names_and_tables() {
        let model = ModelConfig::from_yaml(
            "concepts: []\n",
            "concepts.yaml",
            "frames: []\n",
            "frames.yaml",
        )
        .unwrap();
        let e = Project::new(
            vec![
                source("shop", "raw__shop__things", "a.yaml"),
                source("shop", "raw__shop__others", "b.yaml"),
            ],
            model.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("b.yaml: source name `shop` is also the name of the source in a.yaml"),
            "{e}"
        );
        let e = Project::new(
            vec![
                source("shop", "raw__shop__things", "a.yaml"),
                source("crm", "raw__shop__things", "b.yaml"),
            ],
            model.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("table `raw__shop__things` is also landed by source `shop`"),
            "{e}"
        );
        let e = Project::new(vec![], model).unwrap_err().to_string();
        assert!(e.contains("at least one source system"), "{e}");
    }
}
