//! Measures carried by event bridges (`config/models/measures.yaml`).
//!
//! A measure is a number placed on an event date: the event row of that
//! date carries the value, every other event row of the same bridge row
//! carries NULL. The date is a `date` column of the frame itself, or, with
//! `via`, of the frame that provides one of its foreign hooks (e.g. an order
//! line's total on its order header's order date). The number is either
//! - `value`: a numeric source column of the frame, or
//! - `count_if: first` / `count_if: repeat` with `per: <column>`: 1 when the
//!   frame's entity is (is not) the first of its `per` group, ordered by
//!   `date` then by primary hook (e.g. an order from a new or a returning
//!   customer), NULL otherwise and when `per` is NULL. All versions of an
//!   entity share the answer as long as its date does not change.
//!
//! Invariants after [`MeasureConfig::validate`]: every frame is known and
//! listed once; each measure name starts with `measure__`, is snake_case and
//! is unique across the file; a measure has either `value` (a numeric source
//! column of the frame) or `count_if` with `per` (a source column of the
//! frame, and no `via`); `via`, when given, is a foreign hook of the frame
//! that another frame provides; `date` is a `date`-typed source column of
//! the frame that holds it.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::config::ModelConfig;
use super::graph::DependencyGraph;
use crate::config::{ColumnType, SourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// The measures file compiled into the binary.
pub const MEASURES_YAML: &str = include_str!("../../config/models/measures.yaml");

/// Which entities a `count_if` measure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountIf {
    /// The first entity of its group.
    First,
    /// Every later entity of its group.
    Repeat,
}

/// One measure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Output column, `measure__...`.
    pub name: String,
    /// The frame's source column holding the value.
    #[serde(default)]
    pub value: Option<String>,
    /// Count entities instead (with `per`).
    #[serde(default)]
    pub count_if: Option<CountIf>,
    /// The grouping column of `count_if`.
    #[serde(default)]
    pub per: Option<String>,
    /// The `date` column the value is placed on.
    pub date: String,
    /// A foreign hook of the frame: `date` is then a column of the frame
    /// providing that hook.
    #[serde(default)]
    pub via: Option<String>,
}

/// The measures of one frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameMeasures {
    pub frame: String,
    pub measures: Vec<Measure>,
}

/// Every frame's measures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasureConfig {
    pub frames: Vec<FrameMeasures>,
    /// File name used in error messages.
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasures {
    #[serde(default)]
    frames: Vec<FrameMeasures>,
}

impl MeasureConfig {
    /// The Adventure Works measures compiled into the binary.
    pub fn adventure_works() -> Result<Self> {
        Self::from_yaml(MEASURES_YAML, "config/models/measures.yaml")
    }

    /// Parse a measures file (`origin` names it in errors).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self> {
        let raw: RawMeasures = serde_yaml::from_str(text).ctx(ErrorKind::InvalidInput, || {
            format!("{origin}: invalid measures file")
        })?;
        Ok(Self {
            frames: raw.frames,
            origin: origin.to_string(),
        })
    }

    /// The measures of a frame (empty if none).
    pub fn of(&self, frame: &str) -> &[Measure] {
        self.frames
            .iter()
            .find(|f| f.frame == frame)
            .map(|f| f.measures.as_slice())
            .unwrap_or(&[])
    }

    /// Check against the frames, their graph and the source tables.
    pub fn validate(
        &self,
        model: &ModelConfig,
        graph: &DependencyGraph,
        sources: &[SourceConfig],
    ) -> Result<()> {
        let o = &self.origin;
        let mut names = BTreeSet::new();
        let mut frames = BTreeSet::new();
        for fm in &self.frames {
            let Some(fi) = model.frames.iter().position(|f| f.name == fm.frame) else {
                return Err(Error::invalid(format!(
                    "{o}: field `frame`: unknown frame {}",
                    fm.frame
                )));
            };
            if !frames.insert(fm.frame.as_str()) {
                return Err(Error::invalid(format!(
                    "{o}: frame {}, field `frame`: listed twice",
                    fm.frame
                )));
            }
            let frame = &model.frames[fi];
            let column_type = |table: &str, column: &str| {
                sources
                    .iter()
                    .find_map(|s| s.resource_by_table(table))
                    .and_then(|r| r.column(column))
                    .map(|c| c.data_type)
            };
            for m in &fm.measures {
                let at = |field: &str| {
                    format!(
                        "{o}: frame {}, measure {}, field `{field}`",
                        fm.frame, m.name
                    )
                };
                let snake = m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !m.name.starts_with("measure__") || !snake {
                    return Err(Error::invalid(format!(
                        "{}: measure names look like measure__<snake_case>",
                        at("name")
                    )));
                }
                if !names.insert(m.name.as_str()) {
                    return Err(Error::invalid(format!(
                        "{}: measure {} is declared twice",
                        at("name"),
                        m.name
                    )));
                }
                match (&m.value, m.count_if, &m.per) {
                    (Some(value), None, None) => match column_type(&frame.source_table, value) {
                        Some(t) if t.is_numeric() => {}
                        Some(t) => {
                            return Err(Error::invalid(format!(
                                "{}: column {value} is {t}, not numeric",
                                at("value")
                            )));
                        }
                        None => {
                            return Err(Error::invalid(format!(
                                "{}: {} has no column {value}",
                                at("value"),
                                frame.source_table
                            )));
                        }
                    },
                    (None, Some(_), Some(per)) => {
                        if column_type(&frame.source_table, per).is_none() {
                            return Err(Error::invalid(format!(
                                "{}: {} has no column {per}",
                                at("per"),
                                frame.source_table
                            )));
                        }
                        if m.via.is_some() {
                            return Err(Error::invalid(format!(
                                "{}: a count_if measure uses a date of its own frame",
                                at("via")
                            )));
                        }
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "{}: give either `value`, or `count_if` with `per`",
                            at("value")
                        )));
                    }
                }
                let date_frame = match &m.via {
                    None => frame,
                    Some(hook) => {
                        let dep = graph.nodes[fi]
                            .dependencies
                            .iter()
                            .find(|d| &d.hook == hook)
                            .ok_or_else(|| {
                                Error::invalid(format!(
                                    "{}: {hook} is not a foreign hook of frame {} that another frame provides",
                                    at("via"),
                                    frame.name
                                ))
                            })?;
                        &model.frames[dep.parent]
                    }
                };
                match column_type(&date_frame.source_table, &m.date) {
                    Some(ColumnType::Date) => {}
                    Some(t) => {
                        return Err(Error::invalid(format!(
                            "{}: column {} of {} is {t}, not date",
                            at("date"),
                            m.date,
                            date_frame.source_table
                        )));
                    }
                    None => {
                        return Err(Error::invalid(format!(
                            "{}: {} has no column {}",
                            at("date"),
                            date_frame.source_table,
                            m.date
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
