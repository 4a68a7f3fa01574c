//! Model configuration: business concepts with their keysets
//! (`config/models/concepts.yaml`) and HOOK frames (`config/models/frames.yaml`).
//!
//! Parsed once into typed structs and validated; every error names the file,
//! the frame (or concept) and the field. Invariants after [`ModelConfig::validate`]:
//! - concept names and keysets are unique; every keyset a hook uses is declared;
//! - frame names and source tables are unique; names are snake_case;
//! - within a frame, hook names are unique and start with `_hook__`; a simple
//!   hook has a keyset and a business key that is a column of the source
//!   table; a composite hook lists at least two distinct simple hooks of the
//!   same frame;
//! - exactly one hook per frame is primary, and no two frames share a
//!   primary hook name (so a foreign hook has at most one provider).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result, ResultExt};

/// The concepts file compiled into the binary.
pub const CONCEPTS_YAML: &str = include_str!("../../config/models/concepts.yaml");
/// The frames file compiled into the binary.
pub const FRAMES_YAML: &str = include_str!("../../config/models/frames.yaml");

/// A core business concept and its keysets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concept {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub keysets: Vec<String>,
}

/// How a hook's value is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookKind {
    /// `<keyset>|<business key as text>`.
    Simple {
        keyset: String,
        business_key: String,
    },
    /// The parts' values joined with `~`.
    Composite { parts: Vec<String> },
}

/// A hook of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    pub kind: HookKind,
    pub primary: bool,
}

impl Hook {
    /// The PIT hook column derived from this hook: `_hook__x` -> `_pit_hook__x`.
    pub fn pit_name(&self) -> String {
        format!("_pit{}", self.name)
    }
}

/// A HOOK frame over one source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub name: String,
    pub source_table: String,
    pub column_prefix: String,
    pub hooks: Vec<Hook>,
}

impl Frame {
    /// The primary hook (validated to exist exactly once).
    pub fn primary(&self) -> &Hook {
        self.hooks
            .iter()
            .find(|h| h.primary)
            .unwrap_or(&self.hooks[0])
    }

    /// A hook by name.
    pub fn hook(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConcepts {
    concepts: Vec<Concept>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrames {
    frames: Vec<RawFrame>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    name: String,
    source_table: String,
    column_prefix: String,
    hooks: Vec<RawHook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    name: String,
    keyset: Option<String>,
    business_key: Option<String>,
    composite: Option<Vec<String>>,
    #[serde(default)]
    primary: bool,
}

/// Concepts and frames, validated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub concepts: Vec<Concept>,
    pub frames: Vec<Frame>,
    /// File names used in error messages.
    pub concepts_origin: String,
    pub frames_origin: String,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl ModelConfig {
    /// The Adventure Works model compiled into the binary.
    pub fn adventure_works() -> Result<Self> {
        Self::from_yaml(
            CONCEPTS_YAML,
            "config/models/concepts.yaml",
            FRAMES_YAML,
            "config/models/frames.yaml",
        )
    }

    /// Read `concepts.yaml` and `frames.yaml` from a directory.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |f: &str| {
            let p = dir.join(f);
            std::fs::read_to_string(&p)
                .ctx(ErrorKind::InvalidInput, || {
                    format!("cannot read {}", p.display())
                })
                .map(|t| (t, p.display().to_string()))
        };
        let (c, co) = read("concepts.yaml")?;
        let (f, fo) = read("frames.yaml")?;
        Self::from_yaml(&c, &co, &f, &fo)
    }

    /// Parse both files; `*_origin` name them in errors. Structural checks
    /// run here; checks against the source tables need [`ModelConfig::validate`].
    pub fn from_yaml(
        concepts: &str,
        concepts_origin: &str,
        frames: &str,
        frames_origin: &str,
    ) -> Result<Self> {
        let raw_c: RawConcepts = serde_yaml::from_str(concepts)
            .ctx(ErrorKind::InvalidInput, || {
                format!("{concepts_origin}: invalid concepts file")
            })?;
        let raw_f: RawFrames = serde_yaml::from_str(frames).ctx(ErrorKind::InvalidInput, || {
            format!("{frames_origin}: invalid frames file")
        })?;
        let mut out = Vec::with_capacity(raw_f.frames.len());
        for f in raw_f.frames {
            let mut hooks = Vec::with_capacity(f.hooks.len());
            for h in f.hooks {
                let at = |field: &str| {
                    format!(
                        "{frames_origin}: frame {}, hook {}, field `{field}`",
                        f.name, h.name
                    )
                };
                let kind = match (h.keyset, h.business_key, h.composite) {
                    (Some(keyset), Some(business_key), None) => HookKind::Simple {
                        keyset,
                        business_key,
                    },
                    (None, None, Some(parts)) => HookKind::Composite { parts },
                    (_, _, Some(_)) => {
                        return Err(Error::invalid(format!(
                            "{}: a composite hook has no keyset or business_key",
                            at("composite")
                        )));
                    }
                    (None, _, None) => {
                        return Err(Error::invalid(format!(
                            "{}: a simple hook needs a keyset",
                            at("keyset")
                        )));
                    }
                    (_, None, None) => {
                        return Err(Error::invalid(format!(
                            "{}: a simple hook needs a business_key",
                            at("business_key")
                        )));
                    }
                };
                hooks.push(Hook {
                    name: h.name,
                    kind,
                    primary: h.primary,
                });
            }
            out.push(Frame {
                name: f.name,
                source_table: f.source_table,
                column_prefix: f.column_prefix,
                hooks,
            });
        }
        let config = ModelConfig {
            concepts: raw_c.concepts,
            frames: out,
            concepts_origin: concepts_origin.to_string(),
            frames_origin: frames_origin.to_string(),
        };
        config.check_structure()?;
        Ok(config)
    }

    fn check_structure(&self) -> Result<()> {
        let co = &self.concepts_origin;
        let fo = &self.frames_origin;
        let mut keysets = BTreeMap::new();
        let mut concept_names = BTreeSet::new();
        for c in &self.concepts {
            if !concept_names.insert(c.name.as_str()) {
                return Err(Error::invalid(format!(
                    "{co}: concept {} is declared twice (field `name`)",
                    c.name
                )));
            }
            for k in &c.keysets {
                if let Some(other) = keysets.insert(k.as_str(), c.name.as_str()) {
                    return Err(Error::invalid(format!(
                        "{co}: concept {}, field `keysets`: keyset {k} is already declared by concept {other}",
                        c.name
                    )));
                }
            }
        }
        let mut frame_names = BTreeSet::new();
        let mut tables = BTreeMap::new();
        let mut primaries: HashMap<&str, &str> = HashMap::new();
        for f in &self.frames {
            let at = |field: &str| format!("{fo}: frame {}, field `{field}`", f.name);
            if !is_identifier(&f.name) {
                return Err(Error::invalid(format!(
                    "{}: `{}` is not a snake_case name",
                    at("name"),
                    f.name
                )));
            }
            if !frame_names.insert(f.name.as_str()) {
                return Err(Error::invalid(format!(
                    "{}: frame {} is declared twice",
                    at("name"),
                    f.name
                )));
            }
            if let Some(other) = tables.insert(f.source_table.as_str(), f.name.as_str()) {
                return Err(Error::invalid(format!(
                    "{}: source table {} is already used by frame {other}",
                    at("source_table"),
                    f.source_table
                )));
            }
            if !is_identifier(&f.column_prefix) {
                return Err(Error::invalid(format!(
                    "{}: `{}` is not a snake_case name",
                    at("column_prefix"),
                    f.column_prefix
                )));
            }
            if f.hooks.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: a frame needs at least one hook",
                    at("hooks")
                )));
            }
            let mut hook_names = BTreeSet::new();
            for h in &f.hooks {
                let hat = |field: &str| {
                    format!("{fo}: frame {}, hook {}, field `{field}`", f.name, h.name)
                };
                if !h.name.starts_with("_hook__") || !is_identifier(&h.name) {
                    return Err(Error::invalid(format!(
                        "{}: hook names look like _hook__<concept>",
                        hat("name")
                    )));
                }
                if !hook_names.insert(h.name.as_str()) {
                    return Err(Error::invalid(format!(
                        "{}: duplicate hook name {}",
                        hat("name"),
                        h.name
                    )));
                }
                match &h.kind {
                    HookKind::Simple { keyset, .. } => {
                        if !keysets.contains_key(keyset.as_str()) {
                            return Err(Error::invalid(format!(
                                "{}: unknown keyset {keyset}; declare it under a concept in {co}",
                                hat("keyset")
                            )));
                        }
                    }
                    HookKind::Composite { parts } => {
                        if parts.len() < 2 {
                            return Err(Error::invalid(format!(
                                "{}: a composite hook needs at least two parts",
                                hat("composite")
                            )));
                        }
                        let mut seen = BTreeSet::new();
                        for p in parts {
                            match f.hook(p) {
                                Some(Hook {
                                    kind: HookKind::Simple { .. },
                                    ..
                                }) if seen.insert(p) => {}
                                Some(Hook {
                                    kind: HookKind::Simple { .. },
                                    ..
                                }) => {
                                    return Err(Error::invalid(format!(
                                        "{}: part {p} is listed twice",
                                        hat("composite")
                                    )));
                                }
                                Some(_) => {
                                    return Err(Error::invalid(format!(
                                        "{}: part {p} is itself composite; parts must be simple hooks",
                                        hat("composite")
                                    )));
                                }
                                None => {
                                    return Err(Error::invalid(format!(
                                        "{}: part {p} is not a hook of frame {}",
                                        hat("composite"),
                                        f.name
                                    )));
                                }
                            }
                        }
                    }
                }
            }
            let primary: Vec<_> = f.hooks.iter().filter(|h| h.primary).collect();
            match primary.as_slice() {
                [] => {
                    return Err(Error::invalid(format!(
                        "{}: no hook is marked primary",
                        at("hooks")
                    )));
                }
                [p] => {
                    if let Some(other) = primaries.insert(p.name.as_str(), f.name.as_str()) {
                        return Err(Error::invalid(format!(
                            "{}: primary hook {} is already the primary hook of frame {other}",
                            at("hooks"),
                            p.name
                        )));
                    }
                }
                many => {
                    return Err(Error::invalid(format!(
                        "{}: {} hooks are marked primary ({}); exactly one must be",
                        at("hooks"),
                        many.len(),
                        many.iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// Check frames against the source tables: `columns_of(table)` returns
    /// the columns of a source table, or `None` if there is no such table.
    pub fn validate(&self, columns_of: impl Fn(&str) -> Option<Vec<String>>) -> Result<()> {
        let fo = &self.frames_origin;
        for f in &self.frames {
            let Some(columns) = columns_of(&f.source_table) else {
                return Err(Error::invalid(format!(
                    "{fo}: frame {}, field `source_table`: unknown source table {}",
                    f.name, f.source_table
                )));
            };
            for h in &f.hooks {
                if let HookKind::Simple { business_key, .. } = &h.kind
                    && !columns.iter().any(|c| c == business_key)
                {
                    return Err(Error::invalid(format!(
                        "{fo}: frame {}, hook {}, field `business_key`: {} has no column {business_key}",
                        f.name, h.name, f.source_table
                    )));
                }
            }
        }
        Ok(())
    }

    /// A frame by name.
    pub fn frame(&self, name: &str) -> Option<&Frame> {
        self.frames.iter().find(|f| f.name == name)
    }
}
