//! A project: one source system's config plus its model config, validated
//! against each other once, and the list of models they define.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::{empty::EmptyTable, provider_as_source};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::TableReference;

use super::config::{Frame, ModelConfig};
use super::das::NAMESPACE;
use super::frame::frame_plan;
use super::graph::DependencyGraph;
use super::measures::MeasureConfig;
use crate::config::{ResourceConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::extract::schema::resource_schema;

/// Source and model config of one system.
#[derive(Debug, Clone)]
pub struct Project {
    pub source: SourceConfig,
    pub model: ModelConfig,
    /// Measures of the event bridges (empty unless given).
    pub measures: MeasureConfig,
}

impl Project {
    /// The built-in Adventure Works project.
    pub fn adventure_works() -> Result<Self> {
        Self::new(
            SourceConfig::adventure_works()?,
            ModelConfig::adventure_works()?,
        )?
        .with_measures(MeasureConfig::adventure_works()?)
    }

    /// Add measures, validated against the frames, their dependency graph
    /// and the source tables.
    pub fn with_measures(mut self, measures: MeasureConfig) -> Result<Self> {
        let graph = DependencyGraph::new(&self.model)?;
        measures.validate(&self.model, &graph, &self.source)?;
        self.measures = measures;
        Ok(self)
    }

    /// Validate `model` against `source`.
    pub fn new(source: SourceConfig, model: ModelConfig) -> Result<Self> {
        model.validate(|table| {
            source
                .resource_by_table(table)
                .map(|r| r.columns.iter().map(|c| c.name.clone()).collect())
        })?;
        Ok(Self {
            source,
            model,
            measures: MeasureConfig::default(),
        })
    }

    /// The source resource a frame reads.
    pub fn resource_of(&self, frame: &Frame) -> Result<&ResourceConfig> {
        self.source
            .resource_by_table(&frame.source_table)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "frame {}: unknown source table {}",
                    frame.name, frame.source_table
                ))
            })
    }

    /// The DAS table's schema as the extractor lands it (configured columns,
    /// then the load columns).
    pub fn das_schema(resource: &ResourceConfig) -> SchemaRef {
        let mut fields: Vec<Field> = resource_schema(resource)
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        fields.extend(super::das::load_fields());
        Arc::new(Schema::new(fields))
    }

    /// A frame's plan over an empty stand-in of its DAS table: the plan as
    /// the config defines it, independent of any data (used by `render`).
    pub fn frame_plan_from_config(&self, frame: &Frame) -> Result<LogicalPlan> {
        let resource = self.resource_of(frame)?;
        let scan = LogicalPlanBuilder::scan(
            TableReference::partial(NAMESPACE, resource.table.clone()),
            provider_as_source(Arc::new(EmptyTable::new(Self::das_schema(resource)))),
            None,
        )?
        .build()?;
        frame_plan(frame, &resource.primary_key, scan, None)
    }
}
