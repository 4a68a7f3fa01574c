//! The warehouse verbs through the real binary: tables, history, query
//! (formats, time travel), plan and lineage.

use std::process::Command;

fn lakehouse(wh: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .arg("--warehouse")
        .arg(wh)
        .args(args)
        .output()
        .expect("run lakehouse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn warehouse_verbs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().to_str().unwrap();
    let (ok, out, err) = lakehouse(wh, &["init", "--scale", "0.005", "--seed", "3"]);
    assert!(ok, "{err}");
    assert!(out.contains("init (embedded source, day 0)"), "{out}");

    let (ok, out, _) = lakehouse(wh, &["tables"]);
    assert!(ok);
    assert!(out.contains("das.raw__adventure_works__sales_order_headers"));
    assert!(out.contains("dab.frame__adventure_works__sales_order_headers"));
    assert_eq!(out.lines().filter(|l| l.contains("| das.")).count(), 58);

    let (ok, before, _) = lakehouse(
        wh,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM das.raw__adventure_works__sales_order_headers",
        ],
    );
    assert!(ok);
    let n0: i64 = before.lines().nth(1).unwrap().trim().parse().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (ok, out, err) = lakehouse(wh, &["elt"]);
    assert!(ok, "{err}");
    assert!(out.contains("day 1"), "{out}");

    let (ok, out, _) = lakehouse(
        wh,
        &[
            "query",
            "--format",
            "json",
            "SELECT count(*) AS n FROM das.raw__adventure_works__sales_order_headers",
        ],
    );
    assert!(ok);
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let n1 = rows[0]["n"].as_i64().unwrap();
    assert!(n1 > n0, "day 1 adds orders ({n0} -> {n1})");
    let (ok, out, err) = lakehouse(
        wh,
        &[
            "query",
            "--format",
            "csv",
            "--as-of",
            &between,
            "SELECT count(*) AS n FROM das.raw__adventure_works__sales_order_headers",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().nth(1).unwrap().trim().parse::<i64>().unwrap(),
        n0,
        "time travel"
    );

    let (ok, out, _) = lakehouse(
        wh,
        &["history", "das.raw__adventure_works__sales_order_headers"],
    );
    assert!(ok);
    assert_eq!(out.lines().filter(|l| l.contains("| append ")).count(), 2);

    let (ok, out, _) = lakehouse(wh, &["plan"]);
    assert!(ok);
    assert!(out.contains("0 of 234 models would be built"), "{out}");

    let (ok, out, _) = lakehouse(wh, &["lineage", "--level", "layer"]);
    assert!(ok);
    assert!(
        out.starts_with("flowchart LR") && out.contains("das --> dab"),
        "{out}"
    );

    // Errors name what is wrong.
    let (ok, _, err) = lakehouse(wh, &["history", "das.nope"]);
    assert!(!ok && err.contains("das.nope"), "{err}");
    let (ok, _, err) = lakehouse(wh, &["query", "--as-of", "yesterday", "SELECT 1"]);
    assert!(!ok && err.contains("--as-of"), "{err}");
    let (ok, _, err) = lakehouse(wh, &["init"]);
    assert!(!ok && err.contains("lakehouse elt"), "{err}");
}

/// `bench elt` runs init and the elt days as processes of their own, reports
/// each day against its sequence's init, and leaves nothing behind.
#[test]
fn bench_elt_measures_init_and_days() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "bench",
        "elt",
        "--scale",
        "0.005",
        "--seed",
        "3",
        "--days",
        "2",
        "--sequences",
        "1",
        "--pause-ms",
        "0",
        "--dir",
        d,
    ];
    let (ok, out, err) = lakehouse(d, &args);
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("A    1 "))
        .unwrap_or_else(|| panic!("one sequence row: {out}"));
    // init, then two days, each with a wall time; the days with a ratio.
    assert_eq!(row.matches(" s (").count(), 3, "{row}");
    assert_eq!(row.matches(" %, ").count(), 2, "{row}");
    assert!(out.contains("  day 2 "), "{out}");
    assert!(
        out.contains(" in 1 of 1,") || out.contains(" in 0 of 1,"),
        "{out}"
    );
    assert_eq!(err.lines().filter(|l| l.contains("sequence A")).count(), 3);
    assert!(err.contains("elt day 2"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "warehouse and log removed"
    );

    // A failing run stops the benchmark, names the step, keeps its log.
    let mut failing = args.to_vec();
    failing.extend(["--exe", "/bin/false"]);
    let (ok, _, err) = lakehouse(d, &failing);
    assert!(!ok, "a failing executable fails the benchmark");
    assert!(
        err.contains("init failed") && err.contains("/bin/false"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "log kept"
    );
}
