//! A project directory: the user's sources and models, read at run time.
//!
//! A project is a directory holding `lakehouse.yaml`, found as cargo and
//! dbt find theirs: the directory given by `--project DIR` (or
//! `LAKEHOUSE_PROJECT`), else the current directory or its nearest parent
//! holding a `lakehouse.yaml`. With none found, the built-in Adventure Works
//! example (compiled into the binary) is the project, so a fresh checkout
//! works from anywhere.
//!
//! `lakehouse.yaml` (every path relative to the directory holding it):
//!
//! ```yaml
//! name: my_project            # snake_case
//! warehouse: lakehouse        # default; a local path or s3://bucket/prefix
//! sources: [sources/*.yaml]   # default; files or glob patterns, one source system each
//! models:
//!   concepts: models/concepts.yaml   # defaults
//!   frames: models/frames.yaml
//!   measures: models/measures.yaml   # optional: no file, no measures
//! plans: plans                # where `render --write` writes model plans
//! dashboard:
//!   host: 127.0.0.1
//!   port: 8501
//!   window_days: 364          # the default window of the cards
//! upkeep:                     # warehouse upkeep (see `lakehouse maintain`)
//!   after_elt: true           # default: every `elt` ends with upkeep
//!   retain: 7d                # snapshots younger than this stay (time travel reach)
//!   keep_last: 10             # and always the newest 10
//!   orphan_age: 3d            # unreferenced files younger than this stay
//!   compact: true
//!   min_files: 8              # small or delete files that trigger a compaction
//! ```
//!
//! Invariants: every file named exists and parses, and the models are
//! validated against the sources once, here; an error names the file and
//! the key at fault. Unknown keys are refused (a typo never silently falls
//! back to a default). The `--warehouse` flag (or `LAKEHOUSE_WAREHOUSE`)
//! overrides the project's warehouse.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::source::ADVENTURE_WORKS_YAML;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::model::Project;
use crate::model::config::{CONCEPTS_YAML, FRAMES_YAML, ModelConfig};
use crate::model::measures::{MEASURES_YAML, MeasureConfig};
use crate::storage::upkeep::UpkeepPolicy;

/// The project file's name.
pub const PROJECT_FILE: &str = "lakehouse.yaml";

/// The warehouse of a project that names none, and of the built-in example
/// (relative to the project directory; the current directory for the
/// example).
pub const DEFAULT_WAREHOUSE: &str = "lakehouse";

/// The examples `lakehouse new` can write.
pub const EXAMPLES: &[&str] = &["adventure-works"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: String,
    #[serde(default)]
    warehouse: Option<String>,
    #[serde(default = "default_sources")]
    sources: Vec<String>,
    #[serde(default)]
    models: RawModels,
    #[serde(default = "default_plans")]
    plans: String,
    #[serde(default)]
    dashboard: DashboardSettings,
    #[serde(default)]
    upkeep: RawUpkeep,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpkeep {
    after_elt: Option<bool>,
    retain: Option<String>,
    keep_last: Option<usize>,
    orphan_age: Option<String>,
    compact: Option<bool>,
    min_files: Option<usize>,
}

/// Warehouse upkeep settings: whether `elt` ends with upkeep, and the
/// policy it and `maintain` follow (command-line flags override it).
#[derive(Debug, Clone, PartialEq)]
pub struct UpkeepSettings {
    pub after_elt: bool,
    pub policy: UpkeepPolicy,
}

impl Default for UpkeepSettings {
    fn default() -> Self {
        UpkeepSettings {
            after_elt: true,
            policy: UpkeepPolicy::default(),
        }
    }
}

/// A duration written like `90s`, `12h` or `7d`; `what` names it in errors.
pub fn parse_duration(what: &str, text: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        Error::invalid(format!(
            "{what}: `{text}` is not a duration such as 0s, 12h or 7d ({e})"
        ))
    })
}

impl RawUpkeep {
    fn settings(&self, origin: &str) -> Result<UpkeepSettings> {
        let d = UpkeepSettings::default();
        let duration = |key: &str, v: &Option<String>, default| match v {
            Some(text) => parse_duration(&format!("{origin}: `upkeep.{key}`"), text),
            None => Ok(default),
        };
        if self.keep_last == Some(0) {
            return Err(Error::invalid(format!(
                "{origin}: `upkeep.keep_last`: at least 1 (the current snapshot)"
            )));
        }
        Ok(UpkeepSettings {
            after_elt: self.after_elt.unwrap_or(d.after_elt),
            policy: UpkeepPolicy {
                retain: duration("retain", &self.retain, d.policy.retain)?,
                keep_last: self.keep_last.unwrap_or(d.policy.keep_last),
                orphan_age: duration("orphan_age", &self.orphan_age, d.policy.orphan_age)?,
                compact: self.compact.unwrap_or(d.policy.compact),
                min_files: self.min_files.unwrap_or(d.policy.min_files),
                ..d.policy
            },
        })
    }
}

fn default_sources() -> Vec<String> {
    vec!["sources/*.yaml".to_string()]
}

fn default_plans() -> String {
    "plans".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawModels {
    concepts: String,
    frames: String,
    measures: Option<String>,
}

impl Default for RawModels {
    fn default() -> Self {
        Self {
            concepts: "models/concepts.yaml".to_string(),
            frames: "models/frames.yaml".to_string(),
            measures: None,
        }
    }
}

/// The dashboard's settings (command-line flags override them).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    /// The address to listen on.
    #[serde(default)]
    pub host: Option<std::net::IpAddr>,
    /// The port to listen on.
    #[serde(default)]
    pub port: Option<u16>,
    /// The default window of the cards, in days before the latest date.
    #[serde(default)]
    pub window_days: Option<i64>,
}

/// A loaded project: where it came from, its settings and its validated
/// source and model config.
#[derive(Debug, Clone)]
pub struct ProjectDir {
    /// The directory holding `lakehouse.yaml`; `None` for the built-in example.
    pub root: Option<PathBuf>,
    /// The project's name.
    pub name: String,
    /// The project's warehouse: an absolute local path or a URL.
    pub warehouse: String,
    /// Where `render --write` writes model plans.
    pub plans: PathBuf,
    /// The dashboard's settings.
    pub dashboard: DashboardSettings,
    /// Warehouse upkeep settings.
    pub upkeep: UpkeepSettings,
    /// The sources and models, validated against each other.
    pub project: Project,
}

impl ProjectDir {
    /// The built-in Adventure Works example: the config compiled into the
    /// binary, its warehouse and plans under the current directory.
    pub fn built_in() -> Result<Self> {
        Ok(Self {
            root: None,
            name: "adventure_works".to_string(),
            warehouse: format!("./{DEFAULT_WAREHOUSE}"),
            plans: PathBuf::from("plans"),
            dashboard: DashboardSettings::default(),
            upkeep: UpkeepSettings::default(),
            project: Project::adventure_works()?,
        })
    }

    /// The project `explicit` names (a directory holding `lakehouse.yaml`,
    /// or that file), else the one found from `cwd` upwards, else the
    /// built-in example.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Self> {
        match explicit {
            Some(p) => {
                let file = if p.is_dir() {
                    p.join(PROJECT_FILE)
                } else {
                    p.to_path_buf()
                };
                if !file.is_file() {
                    return Err(Error::not_found(format!(
                        "no {PROJECT_FILE} in {} (given by --project or LAKEHOUSE_PROJECT); \
                         `lakehouse new {}` writes a project there",
                        p.display(),
                        p.display()
                    )));
                }
                Self::load(&file)
            }
            None => match find_upwards(cwd) {
                Some(file) => Self::load(&file),
                None => Self::built_in(),
            },
        }
    }

    /// Read the project file `file` and everything it names.
    pub fn load(file: &Path) -> Result<Self> {
        let origin = file.display().to_string();
        let text = std::fs::read_to_string(file)
            .ctx(ErrorKind::InvalidInput, || format!("cannot read {origin}"))?;
        let raw: RawProject = serde_yaml::from_str(&text).ctx(ErrorKind::InvalidInput, || {
            format!("{origin}: invalid project file")
        })?;
        let root = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let root = std::path::absolute(&root).unwrap_or(root);
        let bad = |key: &str, msg: String| Error::invalid(format!("{origin}: `{key}`: {msg}"));
        if !crate::config::source::is_identifier(&raw.name) {
            return Err(bad(
                "name",
                format!("`{}` is not a snake_case identifier", raw.name),
            ));
        }
        let sources = resolve_sources(&root, &raw.sources)
            .map_err(|e| e.context(format!("{origin}: `sources`")))?;
        if sources.is_empty() {
            return Err(bad(
                "sources",
                format!(
                    "{} match no file under {}",
                    raw.sources.join(", "),
                    root.display()
                ),
            ));
        }
        let sources = sources
            .iter()
            .map(|p| crate::discovery::load_source(p))
            .collect::<Result<Vec<_>>>()?;
        let read = |key: &str, rel: &str| -> Result<(String, String)> {
            let p = root.join(rel);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| bad(key, format!("cannot read {}: {e}", p.display())))?;
            Ok((text, p.display().to_string()))
        };
        let (concepts, concepts_origin) = read("models.concepts", &raw.models.concepts)?;
        let (frames, frames_origin) = read("models.frames", &raw.models.frames)?;
        let model = ModelConfig::from_yaml(&concepts, &concepts_origin, &frames, &frames_origin)?;
        let measures = match &raw.models.measures {
            Some(rel) => {
                let (text, origin) = read("models.measures", rel)?;
                Some(MeasureConfig::from_yaml(&text, &origin)?)
            }
            // The default file when it exists; no measures otherwise.
            None => {
                let p = root.join("models/measures.yaml");
                match std::fs::read_to_string(&p) {
                    Ok(text) => Some(MeasureConfig::from_yaml(&text, &p.display().to_string())?),
                    Err(_) => None,
                }
            }
        };
        let mut project = Project::new(sources, model)?;
        if let Some(m) = measures {
            project = project.with_measures(m)?;
        }
        if let Some(days) = raw.dashboard.window_days
            && !(1..=crate::dashboard::data::MAX_WINDOW_DAYS).contains(&days)
        {
            return Err(bad(
                "dashboard.window_days",
                format!(
                    "{days} is not between 1 and {}",
                    crate::dashboard::data::MAX_WINDOW_DAYS
                ),
            ));
        }
        let warehouse = match raw.warehouse.as_deref() {
            None => root.join(DEFAULT_WAREHOUSE).display().to_string(),
            Some(w) if w.contains("://") => w.to_string(),
            Some(w) => root.join(w).display().to_string(),
        };
        Ok(Self {
            plans: root.join(&raw.plans),
            root: Some(root),
            name: raw.name,
            warehouse,
            dashboard: raw.dashboard,
            upkeep: raw.upkeep.settings(&origin)?,
            project,
        })
    }

    /// One line saying which project this is.
    pub fn describe(&self) -> String {
        match &self.root {
            Some(r) => format!("project {} ({})", self.name, r.display()),
            None => "the built-in Adventure Works example (no lakehouse.yaml found)".to_string(),
        }
    }
}

/// The nearest `lakehouse.yaml` in `dir` or a parent.
fn find_upwards(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(PROJECT_FILE))
        .find(|f| f.is_file())
}

/// The files the `sources` entries name (each a path or a glob pattern),
/// sorted and without repeats.
fn resolve_sources(root: &Path, entries: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in entries {
        let pattern = root.join(entry);
        let text = pattern.display().to_string();
        let paths = glob::glob(&text)
            .map_err(|e| Error::invalid(format!("`{entry}` is not a valid pattern: {e}")))?;
        for p in paths {
            out.push(p.map_err(|e| Error::invalid(format!("`{entry}`: {e}")))?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Write a new project into `dir` from `example` (one of [`EXAMPLES`]):
/// the project file, its source and model files and a `.gitignore` for the
/// warehouse. Refuses a directory that already holds a project file; the
/// files written are returned, relative to `dir`.
pub fn write_example(dir: &Path, example: &str) -> Result<Vec<PathBuf>> {
    if !EXAMPLES.contains(&example) {
        return Err(Error::invalid(format!(
            "unknown example `{example}` (known: {})",
            EXAMPLES.join(", ")
        )));
    }
    let file = dir.join(PROJECT_FILE);
    if file.exists() {
        return Err(Error::invalid(format!(
            "{} already exists: not overwriting a project",
            file.display()
        )));
    }
    let files: [(&str, &str); 6] = [
        (PROJECT_FILE, EXAMPLE_PROJECT_YAML),
        ("sources/adventure_works.yaml", ADVENTURE_WORKS_YAML),
        ("models/concepts.yaml", CONCEPTS_YAML),
        ("models/frames.yaml", FRAMES_YAML),
        ("models/measures.yaml", MEASURES_YAML),
        (".gitignore", "/lakehouse/\n"),
    ];
    write_files(dir, &files)
}

/// Write `(relative path, text)` files under `dir`, making directories as
/// needed; returns the relative paths.
pub(crate) fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).ctx(ErrorKind::Storage, || {
                format!("cannot create {}", parent.display())
            })?;
        }
        std::fs::write(&p, text).ctx(ErrorKind::Storage, || {
            format!("cannot write {}", p.display())
        })?;
        written.push(PathBuf::from(rel));
    }
    Ok(written)
}

/// The example's project file.
const EXAMPLE_PROJECT_YAML: &str = "\
# A lakehouse project. Every path is relative to this file's directory.
name: adventure_works

# Where the Iceberg tables live: a local directory or s3://bucket/prefix
# (`--warehouse` or LAKEHOUSE_WAREHOUSE override it).
warehouse: lakehouse

# One YAML file per source system (files or glob patterns).
sources:
  - sources/*.yaml

# The HOOK model: concepts and keysets, frames, and the event measures.
models:
  concepts: models/concepts.yaml
  frames: models/frames.yaml
  measures: models/measures.yaml

# Where `lakehouse render --write` writes every model's logical plan.
plans: plans

dashboard:
  host: 127.0.0.1
  port: 8501
  window_days: 364

# Warehouse upkeep: every `elt` ends by compacting small files, expiring
# snapshots older than `retain` (keeping the newest `keep_last`) and removing
# unreferenced files older than `orphan_age`. `lakehouse maintain` runs it alone.
upkeep:
  after_elt: true
  retain: 7d
  keep_last: 10
  orphan_age: 3d
";

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("project-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    /// The example written by `new` loads back as the built-in project
    /// (same frames, same sources), with its paths under the directory.
    #[test]
    fn the_written_example_loads_as_the_built_in_project() {
        let dir = temp();
        let files = write_example(&dir, "adventure-works").expect("written");
        assert_eq!(files.len(), 6);
        let p = ProjectDir::discover(None, &dir.join("sources")).expect("found upwards");
        let built_in = ProjectDir::built_in().expect("built in");
        assert_eq!(p.root.as_deref(), Some(dir.as_path()));
        assert_eq!(p.name, "adventure_works");
        assert_eq!(p.warehouse, dir.join("lakehouse").display().to_string());
        assert_eq!(p.plans, dir.join("plans"));
        assert_eq!(p.dashboard.port, Some(8501));
        assert_eq!(
            p.project.model.frames.len(),
            built_in.project.model.frames.len()
        );
        assert_eq!(p.project.sources.len(), 1);
        assert_eq!(p.project.sources[0].resources.len(), 58);
        assert_eq!(
            p.project.measures.of("sales_order_details").len(),
            built_in.project.measures.of("sales_order_details").len()
        );
        let again = write_example(&dir, "adventure-works").expect_err("not overwritten");
        assert!(again.to_string().contains("already exists"), "{again}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// An error with its causes, as the binary prints it.
    fn chain(e: &Error) -> String {
        format!("{e:#}")
    }

    /// Bad project files name the file and the key.
    #[test]
    fn bad_project_files_name_file_and_key() {
        let dir = temp();
        write_example(&dir, "adventure-works").expect("written");
        let file = dir.join(PROJECT_FILE);
        let cases = [
            ("name: Bad Name\n", "`name`"),
            ("name: p\nsourcs: []\n", "unknown field `sourcs`"),
            ("name: p\nsources: [nowhere/*.yaml]\n", "match no file"),
            (
                "name: p\nmodels: {frames: models/missing.yaml}\n",
                "`models.frames`",
            ),
            (
                "name: p\ndashboard: {window_days: 0}\n",
                "`dashboard.window_days`",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&file, text).expect("write");
            let e = chain(&ProjectDir::load(&file).expect_err(text));
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(
                e.contains(&file.display().to_string()),
                "names the file: {e}"
            );
        }
        let missing = ProjectDir::discover(Some(&dir.join("nowhere")), &dir).expect_err("missing");
        assert!(
            missing.to_string().contains("no lakehouse.yaml"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Without a project file anywhere up the tree, the built-in example.
    #[test]
    fn no_project_file_means_the_built_in_example() {
        let dir = temp();
        let p = ProjectDir::discover(None, &dir).expect("built in");
        // A temp dir's parents hold no lakehouse.yaml on a sane machine.
        assert!(p.root.is_none(), "{}", p.describe());
        assert_eq!(p.warehouse, "./lakehouse");
        std::fs::remove_dir_all(&dir).ok();
    }
}
