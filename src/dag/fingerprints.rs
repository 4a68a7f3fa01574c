//! Every model's plan fingerprint, remembered between runs of the same
//! program on the same project (the tuning `plan-cache`, see
//! [`crate::tuning`]).
//!
//! A fingerprint is the hash of the model's plan as generated from config
//! (see [`crate::dag::registry`]). Every command that needs the DAG (`init`,
//! `elt`, `plan`, `lineage`) needs them all, and generating and rendering
//! every plan is CPU work (what it costs: `docs/benchmarks.md`, *Why the
//! tunings exist*). The result depends on nothing but the program and the
//! project, so it is kept in a small file under the user's cache directory,
//! named by a key over both:
//! - the program: the running executable's path, size and modification
//!   time (a rebuilt binary is a new key), and the crate version;
//! - the project: the `Debug` text of its typed config (every frame, hook,
//!   measure and resource; ordered collections only, so the text is the
//!   same in every process).
//!
//! # Invariants
//! - A fingerprint read from the cache is the one rendering would give:
//!   the key covers all the inputs of rendering, and a file is only read
//!   whole (written to a temporary name, then renamed into place).
//! - The cache is an optimisation only: a missing, unreadable or malformed
//!   file, an unknown executable or no cache directory means the
//!   fingerprints are computed; failing to write the file is logged, never
//!   an error.
//! - With the cache off ([`fingerprints`] with `cached: false`) no file is
//!   read or written.
//!
//! The directory is `LAKEHOUSE_CACHE_DIR` if set, else
//! `$XDG_CACHE_HOME/lakehouse`, else `$HOME/.cache/lakehouse`; it keeps the
//! 32 most recently written files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::model::Project;
use crate::model::render::render_all;

/// Hex SHA-256 of `text`.
pub fn fingerprint(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Each model's fingerprint by qualified name (`namespace.name`); when
/// `cached`, from the cache if this program has computed them for this
/// project before (and kept there otherwise).
pub fn fingerprints(project: &Project, cached: bool) -> Result<BTreeMap<String, String>> {
    fingerprints_cached_in(project, if cached { cache_file(project) } else { None })
}

/// [`fingerprints`], cached in `file` (if any).
fn fingerprints_cached_in(
    project: &Project,
    file: Option<PathBuf>,
) -> Result<BTreeMap<String, String>> {
    if let Some(found) = file.as_deref().and_then(read) {
        return Ok(found);
    }
    let computed: BTreeMap<String, String> = render_all(project)?
        .into_iter()
        .map(|m| (m.qualified(), fingerprint(&m.text)))
        .collect();
    if let Some(f) = file {
        match write(&f, &computed) {
            Ok(()) => prune(&f, KEPT_FILES),
            Err(e) => {
                tracing::debug!(file = %f.display(), error = %e, "plan fingerprints not cached")
            }
        }
    }
    Ok(computed)
}

/// The cache directory (see the module docs), if any.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LAKEHOUSE_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("lakehouse")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("lakehouse")))
}

/// The file holding this program's fingerprints of `project`.
fn cache_file(project: &Project) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let mut key = Sha256::new();
    key.update(exe.to_string_lossy().as_bytes());
    key.update(meta.len().to_le_bytes());
    key.update(modified.as_nanos().to_le_bytes());
    key.update(env!("CARGO_PKG_VERSION").as_bytes());
    key.update(format!("{project:?}").as_bytes());
    let key: String = key.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(cache_dir()?.join(format!("fingerprints-{key}.tsv")))
}

/// The fingerprints in `file`: one `name<TAB>fingerprint` line per model,
/// then a line `end<TAB><count>` (so a file cut short is not taken).
fn read(file: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    for line in lines.by_ref() {
        let (name, value) = line.split_once('\t')?;
        if name == "end" {
            return (value.parse::<usize>().ok()? == out.len() && lines.next().is_none())
                .then_some(out);
        }
        out.insert(name.to_string(), value.to_string());
    }
    None
}

/// Cache files kept: each rebuilt executable and each edited config
/// writes a new one (a few kB); the oldest beyond this are removed.
const KEPT_FILES: usize = 32;

/// Remove the least recently written cache files beside `file` beyond
/// the newest `keep` (`file` itself is the newest). Best effort.
fn prune(file: &Path, keep: usize) {
    let Some(dir) = file.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if !(name.starts_with("fingerprints-") && name.ends_with(".tsv")) {
                return None;
            }
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, old) in files.into_iter().skip(keep) {
        if old != file {
            let _ = std::fs::remove_file(old);
        }
    }
}

fn write(file: &Path, fingerprints: &BTreeMap<String, String>) -> std::io::Result<()> {
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("cache file has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut text = String::new();
    for (name, value) in fingerprints {
        text.push_str(&format!("{name}\t{value}\n"));
    }
    text.push_str(&format!("end\t{}\n", fingerprints.len()));
    // Written whole under a name of its own, then renamed into place:
    // readers see the old file, no file or the whole new one.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        uuid::Uuid::now_v7()
    ));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_file_round_trips_and_rejects_a_cut_file() {
        let dir = std::env::temp_dir().join(format!("lakehouse-fp-{}", uuid::Uuid::now_v7()));
        let file = dir.join("fingerprints-test.tsv");
        let mut fps = BTreeMap::new();
        fps.insert("dab.frame__a".to_string(), "00ff".to_string());
        fps.insert("dar.calendar".to_string(), "abcd".to_string());
        write(&file, &fps).expect("written");
        assert_eq!(read(&file), Some(fps.clone()));
        // Cut before the end line, or with a wrong count: not taken.
        std::fs::write(&file, "dab.frame__a\t00ff\ndar.calendar\tabcd\n").unwrap();
        assert_eq!(read(&file), None);
        std::fs::write(&file, "dab.frame__a\t00ff\nend\t2\n").unwrap();
        assert_eq!(read(&file), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cached_fingerprints_are_the_rendered_ones() {
        let project = Project::adventure_works().expect("project");
        let dir = std::env::temp_dir().join(format!("lakehouse-fp-{}", uuid::Uuid::now_v7()));
        let file = dir.join("fingerprints-test.tsv");
        let fresh = fingerprints_cached_in(&project, None).expect("rendered");
        assert!(fresh.len() > 200, "{} models", fresh.len());
        let first = fingerprints_cached_in(&project, Some(file.clone())).expect("first");
        assert_eq!(first, fresh);
        assert_eq!(read(&file).as_ref(), Some(&fresh), "not written");
        // A second run reads the file: change one entry to see it is used.
        let mut planted = fresh.clone();
        planted.insert("dar.calendar".to_string(), "planted".to_string());
        write(&file, &planted).expect("planted");
        let second = fingerprints_cached_in(&project, Some(file)).expect("second");
        assert_eq!(second["dar.calendar"], "planted");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prune_keeps_the_newest_cache_files() {
        let dir = std::env::temp_dir().join(format!("lakehouse-fp-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = |i: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i);
        for i in 0..5u64 {
            let f = dir.join(format!("fingerprints-{i}.tsv"));
            std::fs::write(&f, "end\t0\n").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(at(i))
                .unwrap();
        }
        std::fs::write(dir.join("other.txt"), "kept").unwrap();
        prune(&dir.join("fingerprints-4.tsv"), 3);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "fingerprints-2.tsv",
                "fingerprints-3.tsv",
                "fingerprints-4.tsv",
                "other.txt"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_project_has_another_cache_file() {
        let project = Project::adventure_works().expect("project");
        let mut changed = project.clone();
        changed.model.frames[0].name.push_str("_renamed");
        let (a, b) = (cache_file(&project), cache_file(&changed));
        assert!(a.is_some(), "no cache file for the project");
        assert_ne!(a, b);
        assert_eq!(a, cache_file(&project.clone()));
        // Built anew (new maps, new hash seeds): the same key, as in another
        // process.
        let again = Project::adventure_works().expect("project");
        assert_eq!(a, cache_file(&again));
    }
}
