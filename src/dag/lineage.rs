//! Lineage as a Mermaid flowchart: one subgraph per layer, coloured bronze
//! (DAS), silver (DAB) and gold (DAR), at model or layer granularity.

use std::collections::BTreeSet;

use super::registry::{Dag, Layer};
use crate::error::Result;
use crate::model::build::matches_pattern;

/// Granularity of a lineage diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Model,
    Layer,
}

fn layer_label(l: Layer) -> &'static str {
    match l {
        Layer::Das => "DAS: data according to system",
        Layer::Dab => "DAB: data according to business",
        Layer::DarStaging => "DAR staging: bridges and events",
        Layer::Dar => "DAR: unified star schema",
    }
}

fn layer_class(l: Layer) -> &'static str {
    match l {
        Layer::Das => "bronze",
        Layer::Dab => "silver",
        Layer::DarStaging | Layer::Dar => "gold",
    }
}

fn node_id(ns: &str, name: &str) -> String {
    format!("{ns}__{name}")
}

/// A Mermaid flowchart of the models matching `pattern` (all when `None`)
/// and the edges between them.
pub fn mermaid(dag: &Dag, pattern: Option<&str>, level: Level) -> Result<String> {
    let mut keep = BTreeSet::new();
    for (i, n) in dag.nodes.iter().enumerate() {
        if pattern
            .map(|p| matches_pattern(p, &n.name.namespace, &n.name.name))
            .transpose()?
            .unwrap_or(true)
        {
            keep.insert(i);
        }
    }
    let mut out = String::from("flowchart LR\n");
    let layers: BTreeSet<Layer> = keep.iter().map(|&i| dag.nodes[i].layer).collect();
    match level {
        Level::Model => {
            for l in &layers {
                out.push_str(&format!(
                    "  subgraph {} [\"{}\"]\n",
                    l.namespace(),
                    layer_label(*l)
                ));
                for &i in &keep {
                    let n = &dag.nodes[i];
                    if n.layer == *l {
                        out.push_str(&format!(
                            "    {}[\"{}\"]:::{}\n",
                            node_id(&n.name.namespace, &n.name.name),
                            n.name.name,
                            layer_class(*l)
                        ));
                    }
                }
                out.push_str("  end\n");
            }
            for (from, to) in dag.edges() {
                if keep.contains(&from) && keep.contains(&to) {
                    let (f, t) = (&dag.nodes[from].name, &dag.nodes[to].name);
                    out.push_str(&format!(
                        "  {} --> {}\n",
                        node_id(&f.namespace, &f.name),
                        node_id(&t.namespace, &t.name)
                    ));
                }
            }
        }
        Level::Layer => {
            for l in &layers {
                out.push_str(&format!(
                    "  {}[\"{}\"]:::{}\n",
                    l.namespace(),
                    layer_label(*l),
                    layer_class(*l)
                ));
            }
            let mut edges = BTreeSet::new();
            for (from, to) in dag.edges() {
                if keep.contains(&from)
                    && keep.contains(&to)
                    && dag.nodes[from].layer != dag.nodes[to].layer
                {
                    edges.insert((dag.nodes[from].layer, dag.nodes[to].layer));
                }
            }
            for (f, t) in edges {
                out.push_str(&format!("  {} --> {}\n", f.namespace(), t.namespace()));
            }
        }
    }
    out.push_str("  classDef bronze fill:#cd7f32,stroke:#8c5523,color:#ffffff\n");
    out.push_str("  classDef silver fill:#c0c0c0,stroke:#808080,color:#000000\n");
    out.push_str("  classDef gold fill:#ffd700,stroke:#b8860b,color:#000000\n");
    Ok(out)
}
