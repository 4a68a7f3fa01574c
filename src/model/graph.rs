//! The dependency graph between frames, derived from their hooks.
//!
//! A frame F **depends on** frame P through hook H when H is a non-primary
//! hook of F and P's primary hook is named H (P *provides* H). Hooks that no
//! frame provides are plain attributes (no edge). The graph drives the DAR
//! layer: F's bridge joins P's bridge on H, so P's PIT hooks cascade into F's
//! bridge (cascading inheritance).
//!
//! Invariants after [`DependencyGraph::new`]:
//! - every hook name has at most one provider (two frames with the same
//!   primary hook name are an error naming both);
//! - the graph is acyclic (a cycle is an error listing its path);
//! - `levels` partitions the frames so that every dependency of a frame sits
//!   in a strictly lower level (frames of one level can be built together);
//! - each node's `columns` lists the PIT hook columns its bridge carries: the
//!   frame's own PIT hook first (distance 0), then every inherited PIT hook
//!   name once, in first-appearance order (dependencies in config order, each
//!   with its own bridge's column order). Every inherited name keeps all its
//!   candidates sorted by precedence: shortest dependency path first, ties by
//!   the dependency's position in the frame's hook order. The bridge takes
//!   the first non-NULL candidate.

use std::collections::HashMap;

use super::config::{Frame, ModelConfig};
use crate::error::{Error, Result};

/// A direct dependency of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The frame's foreign hook, which is the parent's primary hook.
    pub hook: String,
    /// The parent frame's index in the config.
    pub parent: usize,
}

/// Where an inherited PIT hook value can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index into the node's `dependencies`.
    pub dependency: usize,
    /// Number of edges from the frame to the frame owning the PIT hook.
    pub distance: usize,
}

/// A PIT hook column of a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitColumn {
    pub name: String,
    /// Shortest distance (0 for the frame's own PIT hook).
    pub distance: usize,
    /// Candidates in precedence order; empty for the own PIT hook.
    pub candidates: Vec<Candidate>,
}

/// One frame in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Direct dependencies, in the order of the frame's hooks.
    pub dependencies: Vec<Dependency>,
    /// The bridge's PIT hook columns (see module docs).
    pub columns: Vec<PitColumn>,
    /// 0 for frames without dependencies, else 1 + the highest parent level.
    pub level: usize,
}

/// Dependencies of every frame of a model config (same indices as
/// `ModelConfig::frames`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGraph {
    pub nodes: Vec<Node>,
    /// Frame indices grouped by level, lowest first; each group in config order.
    pub levels: Vec<Vec<usize>>,
}

impl DependencyGraph {
    /// Derive and validate the graph of `config`'s frames.
    pub fn new(config: &ModelConfig) -> Result<Self> {
        Self::from_frames(&config.frames, &config.frames_origin)
    }

    /// Derive and validate the graph of `frames` (`origin` names the file in errors).
    pub fn from_frames(frames: &[Frame], origin: &str) -> Result<Self> {
        let mut providers: HashMap<&str, usize> = HashMap::new();
        for (i, f) in frames.iter().enumerate() {
            let p = f.primary().name.as_str();
            if let Some(&other) = providers.get(p) {
                return Err(Error::invalid(format!(
                    "{origin}: frame {}, field `hooks`: hook {p} has two providers, frames {} and {}; a foreign hook must resolve to one frame",
                    f.name, frames[other].name, f.name
                )));
            }
            providers.insert(p, i);
        }
        let mut dependencies: Vec<Vec<Dependency>> = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            let mut deps = Vec::new();
            for h in f.hooks.iter().filter(|h| !h.primary) {
                if let Some(&parent) = providers.get(h.name.as_str()) {
                    if parent == i {
                        return Err(Error::invalid(format!(
                            "{origin}: frame {}, hook {}: the frame provides its own foreign hook",
                            f.name, h.name
                        )));
                    }
                    deps.push(Dependency {
                        hook: h.name.clone(),
                        parent,
                    });
                }
            }
            dependencies.push(deps);
        }
        let order = topological_order(frames, &dependencies, origin)?;
        let mut nodes: Vec<Option<Node>> = vec![None; frames.len()];
        for &i in &order {
            let deps = &dependencies[i];
            let mut level = 0;
            let mut columns = vec![PitColumn {
                name: frames[i].primary().pit_name(),
                distance: 0,
                candidates: Vec::new(),
            }];
            for (d, dep) in deps.iter().enumerate() {
                let parent = nodes[dep.parent].as_ref().ok_or_else(|| {
                    Error::internal(format!(
                        "frame {}: parent {} not ordered first",
                        frames[i].name, frames[dep.parent].name
                    ))
                })?;
                level = level.max(parent.level + 1);
                for pc in &parent.columns {
                    let candidate = Candidate {
                        dependency: d,
                        distance: pc.distance + 1,
                    };
                    match columns.iter_mut().find(|c| c.name == pc.name) {
                        Some(c) if c.candidates.is_empty() => {}
                        Some(c) => c.candidates.push(candidate),
                        None => columns.push(PitColumn {
                            name: pc.name.clone(),
                            distance: 0,
                            candidates: vec![candidate],
                        }),
                    }
                }
            }
            for c in columns.iter_mut().skip(1) {
                c.candidates.sort_by_key(|k| (k.distance, k.dependency));
                c.distance = c.candidates.first().map(|k| k.distance).unwrap_or(0);
            }
            nodes[i] = Some(Node {
                dependencies: deps.clone(),
                columns,
                level,
            });
        }
        let nodes: Vec<Node> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                n.ok_or_else(|| Error::internal(format!("frame {} not ordered", frames[i].name)))
            })
            .collect::<Result<_>>()?;
        let depth = nodes.iter().map(|n| n.level + 1).max().unwrap_or(0);
        let mut levels = vec![Vec::new(); depth];
        for (i, n) in nodes.iter().enumerate() {
            levels[n.level].push(i);
        }
        Ok(Self { nodes, levels })
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.nodes.iter().map(|n| n.dependencies.len()).sum()
    }
}

/// Depth-first topological order (parents before children); a cycle is an
/// error naming its frames in order.
fn topological_order(
    frames: &[Frame],
    deps: &[Vec<Dependency>],
    origin: &str,
) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; frames.len()];
    let mut order = Vec::with_capacity(frames.len());
    for start in 0..frames.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Explicit stack of (frame, next dependency to visit).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(dep) = deps[node].get(*next) {
                *next += 1;
                match marks[dep.parent] {
                    Mark::Done => {}
                    Mark::New => {
                        marks[dep.parent] = Mark::Active;
                        stack.push((dep.parent, 0));
                    }
                    Mark::Active => {
                        let from = stack
                            .iter()
                            .position(|(n, _)| *n == dep.parent)
                            .unwrap_or(0);
                        let mut path: Vec<&str> = stack[from..]
                            .iter()
                            .map(|(n, _)| frames[*n].name.as_str())
                            .collect();
                        path.push(frames[dep.parent].name.as_str());
                        return Err(Error::invalid(format!(
                            "{origin}: frame {}, hook {}: dependency cycle {}",
                            frames[node].name,
                            dep.hook,
                            path.join(" -> ")
                        )));
                    }
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}
