//! The model registry: every table the project builds, with its
//! dependencies, layer and fingerprint, in topological order.
//!
//! A model's fingerprint is a hash of the text of its plan as generated from
//! config (the same text `render` writes), so any change to a model's config
//! or to the code that builds its plan changes it. The fingerprints are
//! remembered per program and project ([`super::fingerprints`]) unless the
//! tuning `plan-cache` is off ([`Dag::build_with`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::das;
use crate::error::{Error, Result};
use crate::model::Project;
use crate::model::build::DAB;
use crate::model::dar::{Dar, DarKind};
use crate::storage::TableName;

/// The layer a model belongs to (also its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Raw data as the source gave it (bronze).
    Das,
    /// HOOK frames (silver).
    Dab,
    /// Bridges and events (gold, staging).
    DarStaging,
    /// Peripherals, calendar, unified bridge (gold).
    Dar,
}

impl Layer {
    /// The namespace of the layer.
    pub fn namespace(self) -> &'static str {
        match self {
            Layer::Das => das::NAMESPACE,
            Layer::Dab => DAB,
            Layer::DarStaging => "dar__staging",
            Layer::Dar => "dar",
        }
    }

    /// The layer of a namespace.
    pub fn of_namespace(ns: &str) -> Option<Layer> {
        [Layer::Das, Layer::Dab, Layer::DarStaging, Layer::Dar]
            .into_iter()
            .find(|l| l.namespace() == ns)
    }
}

/// What builds a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelKind {
    /// Landed by the extractor from a source resource.
    Raw,
    /// A HOOK frame (`frame` is its config name).
    Frame { frame: String },
    /// A model of the unified star schema (bridge, event, peripheral,
    /// unified bridge, calendar).
    Dar { kind: DarKind },
}

/// One model of the DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: TableName,
    pub layer: Layer,
    pub kind: ModelKind,
    /// Indices of the models this one reads, in `Dag::nodes`.
    pub deps: Vec<usize>,
    /// Hash of the model's generated plan (empty for raw tables).
    pub fingerprint: String,
}

/// All models in topological order (every dependency before its dependents).
#[derive(Debug, Clone)]
pub struct Dag {
    pub nodes: Vec<Node>,
    index: BTreeMap<TableName, usize>,
}

impl Dag {
    /// The DAG of a project, its fingerprints from the plan cache.
    pub fn build(project: &Project) -> Result<Self> {
        Self::build_with(project, true)
    }

    /// The DAG of a project, its fingerprints from the plan cache only when
    /// `plan_cache` (the tuning of that name, see [`crate::tuning`]); the
    /// same DAG either way.
    pub fn build_with(project: &Project, plan_cache: bool) -> Result<Self> {
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        for r in project.resources() {
            let name = TableName::new(das::NAMESPACE, r.table.clone())?;
            index.insert(name.clone(), nodes.len());
            nodes.push(Node {
                name,
                layer: Layer::Das,
                kind: ModelKind::Raw,
                deps: vec![],
                fingerprint: String::new(),
            });
        }
        let fingerprints = super::fingerprints::fingerprints(project, plan_cache)?;
        let fingerprint_of = |name: &TableName| {
            fingerprints
                .get(&name.to_string())
                .cloned()
                .ok_or_else(|| Error::internal(format!("no rendered plan for {name}")))
        };
        for f in &project.model.frames {
            let name = TableName::new(DAB, f.name.clone())?;
            let source = TableName::new(das::NAMESPACE, f.source_table.clone())?;
            let dep = *index.get(&source).ok_or_else(|| {
                Error::invalid(format!("frame {} reads unknown table {source}", f.name))
            })?;
            let fingerprint = fingerprint_of(&name)?;
            index.insert(name.clone(), nodes.len());
            nodes.push(Node {
                name,
                layer: Layer::Dab,
                kind: ModelKind::Frame {
                    frame: f.name.clone(),
                },
                deps: vec![dep],
                fingerprint,
            });
        }
        let dar = Dar::new(project)?;
        for stage in dar.stages()? {
            for m in stage {
                let name = TableName::new(m.namespace.clone(), m.name.clone())?;
                let layer = Layer::of_namespace(&m.namespace)
                    .ok_or_else(|| Error::internal(format!("model {name} is in no layer")))?;
                let deps = m
                    .inputs
                    .iter()
                    .map(|(ns, t)| {
                        let input = TableName::new(ns.clone(), t.clone())?;
                        index.get(&input).copied().ok_or_else(|| {
                            Error::invalid(format!("model {name} reads unknown table {input}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let fingerprint = fingerprint_of(&name)?;
                index.insert(name.clone(), nodes.len());
                nodes.push(Node {
                    name,
                    layer,
                    kind: ModelKind::Dar { kind: m.kind },
                    deps,
                    fingerprint,
                });
            }
        }
        let dag = Dag { nodes, index };
        dag.check_order()?;
        Ok(dag)
    }

    fn check_order(&self) -> Result<()> {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(d) = n.deps.iter().find(|&&d| d >= i) {
                return Err(Error::internal(format!(
                    "model {} depends on {} which is not built before it",
                    n.name, self.nodes[*d].name
                )));
            }
        }
        Ok(())
    }

    /// The index of a model.
    pub fn index_of(&self, name: &TableName) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Every model that (transitively) reads one of `roots`, roots excluded.
    pub fn descendants(&self, roots: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.deps.iter().any(|d| roots.contains(d) || out.contains(d)) {
                out.insert(i);
            }
        }
        out
    }

    /// Per model, the cost of the costliest chain that starts at it: its own
    /// `cost` plus the costliest chain among the models that read it
    /// (transitively). With every cost 1 this is the length of the longest
    /// chain. A run starts the ready models with the costliest chains first,
    /// so the chain that ends the run (frame, bridges, event bridge, unified
    /// bridge, calendar) of the biggest tables is not left waiting behind
    /// small models or models with nothing after them.
    pub fn chain_costs(&self, cost: &[u64]) -> Vec<u64> {
        let mut chain: Vec<u64> = (0..self.nodes.len())
            .map(|i| cost.get(i).copied().unwrap_or(1))
            .collect();
        for (i, n) in self.nodes.iter().enumerate().rev() {
            for &d in &n.deps {
                let own = cost.get(d).copied().unwrap_or(1);
                chain[d] = chain[d].max(own + chain[i]);
            }
        }
        chain
    }

    /// Edges as (from, to) index pairs: `from` is read by `to`.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.deps.iter().map(move |&d| (d, i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, deps: Vec<usize>) -> Node {
        Node {
            name: TableName::new("t", name).expect("name"),
            layer: Layer::Dar,
            kind: ModelKind::Raw,
            deps,
            fingerprint: String::new(),
        }
    }

    #[test]
    fn chain_costs_add_the_costliest_chain_of_readers() {
        // a -> b -> d -> e, a -> c, f alone.
        let nodes = vec![
            node("a", vec![]),
            node("b", vec![0]),
            node("c", vec![0]),
            node("d", vec![1]),
            node("e", vec![3, 2]),
            node("f", vec![]),
        ];
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let dag = Dag { nodes, index };
        dag.check_order().expect("topological");
        // Unit costs: the longest chain, counting the model itself.
        assert_eq!(dag.chain_costs(&[1; 6]), [4, 3, 2, 2, 1, 1]);
        // A costly `c` makes a -> c -> e the costlier chain from `a`.
        assert_eq!(dag.chain_costs(&[1, 1, 5, 1, 1, 9]), [7, 3, 6, 2, 1, 9]);
    }
}
