//! The DAR layer (Unified Star Schema): which models exist, what each reads,
//! and their plans, for any way of providing the inputs (real warehouse
//! scans when building, empty stand-ins when rendering).
//!
//! Models, in build stages (a model only reads models of earlier stages and
//! frames; models of one stage are independent of each other):
//! 1. bridges `dar__staging.bridge__<entity>`, one stage per dependency
//!    level ([`super::graph`]);
//! 2. event bridges `dar__staging.event__<entity>` and peripherals
//!    `dar.<entity>`;
//! 3. the unified bridge `dar._bridge__as_of`;
//! 4. the calendar `dar.calendar`.
//!
//! `<entity>` is the frame name without its `frame__` prefix (e.g.
//! `frame__adventure_works__products` -> `adventure_works__products`).

use std::collections::HashMap;

use datafusion::logical_expr::LogicalPlan;

use super::bridge::bridge_plan;
use super::calendar::{CALENDAR, calendar_plan};
use super::config::Frame;
use super::event::{EventInputs, Related, event_plan};
use super::graph::DependencyGraph;
use super::peripheral::peripheral_plan;
use super::project::Project;
use super::tables::DAB;
use super::unified::{UNIFIED, unified_plan};
use crate::config::ColumnType;
use crate::error::{Error, Result};

/// The staging namespace (bridges and event bridges).
pub const DAR_STAGING: &str = "dar__staging";
/// The presentation namespace (peripherals, unified bridge, calendar).
pub const DAR: &str = "dar";

/// What a DAR model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DarKind {
    /// The bridge of frame `i`.
    Bridge(usize),
    /// The event bridge of frame `i`.
    Event(usize),
    /// The peripheral of frame `i`.
    Peripheral(usize),
    Unified,
    Calendar,
}

/// One DAR model: kind, table, and the tables it reads (`(namespace, name)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarModel {
    pub kind: DarKind,
    pub namespace: String,
    pub name: String,
    pub inputs: Vec<(String, String)>,
}

impl DarModel {
    /// `<namespace>.<name>`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
}

/// The entity part of a frame's name.
pub fn entity(frame: &Frame) -> Result<&str> {
    frame.name.strip_prefix("frame__").ok_or_else(|| {
        Error::invalid(format!(
            "frame {}: DAR names derive from frame names, which must start with frame__",
            frame.name
        ))
    })
}

/// The DAR layer of a project.
#[derive(Debug, Clone)]
pub struct Dar<'a> {
    pub project: &'a Project,
    pub graph: DependencyGraph,
}

impl<'a> Dar<'a> {
    /// Derive the graph and check names.
    pub fn new(project: &'a Project) -> Result<Self> {
        let graph = DependencyGraph::new(&project.model)?;
        for f in &project.model.frames {
            entity(f)?;
        }
        Ok(Self { project, graph })
    }

    fn frame(&self, i: usize) -> &'a Frame {
        &self.project.model.frames[i]
    }

    fn columns_of_type(&self, i: usize, types: &[ColumnType]) -> Result<Vec<String>> {
        let r = self.project.resource_of(self.frame(i))?;
        Ok(r.columns
            .iter()
            .filter(|c| types.contains(&c.data_type))
            .map(|c| c.name.clone())
            .collect())
    }

    /// The frame's `date` columns, alphabetical.
    pub fn date_columns(&self, i: usize) -> Result<Vec<String>> {
        let mut d = self.columns_of_type(i, &[ColumnType::Date])?;
        d.sort();
        Ok(d)
    }

    /// The model reading frame `i` of the given kind.
    pub fn model(&self, kind: DarKind) -> Result<DarModel> {
        let frame_input = |i: usize| (DAB.to_string(), self.frame(i).name.clone());
        let bridge_name =
            |i: usize| -> Result<String> { Ok(format!("bridge__{}", entity(self.frame(i))?)) };
        Ok(match kind {
            DarKind::Bridge(i) => {
                let mut inputs = vec![frame_input(i)];
                for d in &self.graph.nodes[i].dependencies {
                    inputs.push((DAR_STAGING.to_string(), bridge_name(d.parent)?));
                }
                DarModel {
                    kind,
                    namespace: DAR_STAGING.into(),
                    name: bridge_name(i)?,
                    inputs,
                }
            }
            DarKind::Event(i) => {
                let mut inputs = vec![(DAR_STAGING.to_string(), bridge_name(i)?), frame_input(i)];
                for p in self.related(i) {
                    inputs.push(frame_input(p));
                }
                DarModel {
                    kind,
                    namespace: DAR_STAGING.into(),
                    name: format!("event__{}", entity(self.frame(i))?),
                    inputs,
                }
            }
            DarKind::Peripheral(i) => DarModel {
                kind,
                namespace: DAR.into(),
                name: entity(self.frame(i))?.to_string(),
                inputs: vec![frame_input(i)],
            },
            DarKind::Unified => {
                let mut inputs = Vec::new();
                for f in &self.project.model.frames {
                    inputs.push((DAR_STAGING.to_string(), format!("event__{}", entity(f)?)));
                }
                DarModel {
                    kind,
                    namespace: DAR.into(),
                    name: UNIFIED.into(),
                    inputs,
                }
            }
            DarKind::Calendar => DarModel {
                kind,
                namespace: DAR.into(),
                name: CALENDAR.into(),
                inputs: vec![(DAR.to_string(), UNIFIED.to_string())],
            },
        })
    }

    /// Frames providing measure dates to frame `i`'s events (graph parents).
    pub(crate) fn related(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for m in self.project.measures.of(&self.frame(i).name) {
            if let Some(h) = &m.via
                && let Some(d) = self.graph.nodes[i]
                    .dependencies
                    .iter()
                    .find(|d| &d.hook == h)
                && !out.contains(&d.parent)
            {
                out.push(d.parent);
            }
        }
        out
    }

    /// Every model, grouped in build stages (see module docs).
    pub fn stages(&self) -> Result<Vec<Vec<DarModel>>> {
        let mut stages = Vec::new();
        for level in &self.graph.levels {
            stages.push(
                level
                    .iter()
                    .map(|&i| self.model(DarKind::Bridge(i)))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let n = self.project.model.frames.len();
        let mut second = Vec::new();
        for i in 0..n {
            second.push(self.model(DarKind::Event(i))?);
        }
        for i in 0..n {
            second.push(self.model(DarKind::Peripheral(i))?);
        }
        stages.push(second);
        stages.push(vec![self.model(DarKind::Unified)?]);
        stages.push(vec![self.model(DarKind::Calendar)?]);
        Ok(stages)
    }

    /// The plan of `model`, with `inputs` mapping each of `model.inputs`
    /// (as `<namespace>.<name>`) to a plan reading it.
    pub fn plan(
        &self,
        model: &DarModel,
        inputs: &HashMap<String, LogicalPlan>,
    ) -> Result<LogicalPlan> {
        let get = |ns: &str, name: &str| -> Result<LogicalPlan> {
            inputs.get(&format!("{ns}.{name}")).cloned().ok_or_else(|| {
                Error::internal(format!(
                    "model {}: input {ns}.{name} not provided",
                    model.qualified()
                ))
            })
        };
        let frame_scan = |i: usize| get(DAB, &self.frame(i).name);
        let plan = match model.kind {
            DarKind::Bridge(i) => {
                let node = &self.graph.nodes[i];
                let mut parents = Vec::new();
                for (d, (ns, name)) in node.dependencies.iter().zip(model.inputs.iter().skip(1)) {
                    let columns = self.graph.nodes[d.parent]
                        .columns
                        .iter()
                        .map(|c| c.name.clone())
                        .collect();
                    parents.push((get(ns, name)?, columns));
                }
                bridge_plan(
                    self.frame(i),
                    node,
                    entity(self.frame(i))?,
                    frame_scan(i)?,
                    parents,
                )?
            }
            DarKind::Event(i) => {
                let (ns, name) = &model.inputs[0];
                let bridge = get(ns, name)?;
                let bridge_columns = bridge
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let mut related = Vec::new();
                for p in self.related(i) {
                    related.push(Related {
                        hook: self.frame(p).primary().name.clone(),
                        frame: self.frame(p),
                        scan: frame_scan(p)?,
                    });
                }
                event_plan(EventInputs {
                    frame: self.frame(i),
                    bridge,
                    bridge_columns,
                    frame_scan: frame_scan(i)?,
                    date_columns: self.date_columns(i)?,
                    measures: self.project.measures.of(&self.frame(i).name).to_vec(),
                    related,
                })?
            }
            DarKind::Peripheral(i) => peripheral_plan(
                self.frame(i),
                frame_scan(i)?,
                &self.columns_of_type(
                    i,
                    &[
                        ColumnType::Text,
                        ColumnType::Xml,
                        ColumnType::Uniqueidentifier,
                    ],
                )?,
            )?,
            DarKind::Unified => {
                let mut events = Vec::new();
                for (ns, name) in &model.inputs {
                    events.push((name.clone(), get(ns, name)?));
                }
                unified_plan(events)?
            }
            DarKind::Calendar => {
                let (ns, name) = &model.inputs[0];
                calendar_plan(get(ns, name)?)?
            }
        };
        Ok(plan)
    }
}
