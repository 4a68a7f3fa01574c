//! Helpers shared by the browser tests: headless Chromium, the card
//! attributes of the dashboard page, and `lakehouse query` through the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where screenshots go: `$LAKEHOUSE_ARTIFACTS`, else `target/artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("LAKEHOUSE_ARTIFACTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("artifacts"),
    }
}

/// The Chromium binary (`$LAKEHOUSE_CHROMIUM` or the usual names).
pub fn chromium() -> String {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    let found = std::env::var("LAKEHOUSE_CHROMIUM")
        .ok()
        .into_iter()
        .chain(candidates.iter().map(|s| s.to_string()))
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is required for this test and was not found: \
             install it with `apt-get update && apt-get install -y chromium` \
             (or name the binary in LAKEHOUSE_CHROMIUM)"
        )
    })
}

/// Run headless Chromium on `url` with `extra` flags; returns stdout.
pub fn run_chromium(bin: &str, profile: &Path, extra: &[String], url: &str) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(data-metric, data-value, data-status)` of every card, in page order.
pub fn parse_cards(dom: &str) -> Vec<(String, String, String)> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        tag.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    };
    dom.split("<article ")
        .skip(1)
        .map(|s| s.split_once('>').map(|(tag, _)| tag).unwrap_or(s))
        .filter(|tag| tag.contains("class=\"card"))
        .map(|tag| {
            (
                attr(tag, "data-metric"),
                attr(tag, "data-value"),
                attr(tag, "data-status"),
            )
        })
        .collect()
}

/// Run `lakehouse query --format csv` on the warehouse at `dir`; rows of fields.
pub fn lakehouse_query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .arg("--warehouse")
        .arg(dir)
        .args(["query", sql, "--format", "csv"])
        .output()
        .expect("run lakehouse query");
    assert!(
        out.status.success(),
        "lakehouse query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .collect()
}
