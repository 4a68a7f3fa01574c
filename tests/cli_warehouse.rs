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

/// Files under `dir`, recursively.
fn files(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .flat_map(|p| if p.is_dir() { files(&p) } else { [p].into() })
        .collect()
}

/// The number before `what` in the summary line of `maintain`.
fn summary_count(out: &str, what: &str) -> usize {
    let line = out
        .lines()
        .find(|l| l.starts_with("upkeep"))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    let before = line
        .split(what)
        .next()
        .unwrap_or_else(|| panic!("no '{what}' in {line}"));
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before '{what}' in {line}"))
}

/// `elt` ends with upkeep unless told not to; `maintain --dry-run` lists
/// what would go and changes nothing; `maintain` then deletes exactly that,
/// and time travel reaches back only as far as the retention.
#[test]
fn maintain_and_upkeep_after_elt() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().to_str().unwrap();
    let (ok, _, err) = lakehouse(wh, &["init", "--scale", "0.005", "--seed", "3"]);
    assert!(ok, "{err}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let after_init = chrono::Utc::now().to_rfc3339();
    let (ok, out, err) = lakehouse(wh, &["elt"]);
    assert!(ok, "{err}");
    assert!(out.contains("upkeep: 293 tables"), "{out}");
    let (ok, out, err) = lakehouse(wh, &["elt", "--no-upkeep"]);
    assert!(ok, "{err}");
    assert!(!out.contains("upkeep:"), "{out}");

    let aggressive = [
        "--retain",
        "0s",
        "--keep-last",
        "1",
        "--orphan-age",
        "0s",
        "--no-compact",
    ];
    let files_before = files(dir.path());
    let mut args = vec!["maintain", "--dry-run"];
    args.extend(aggressive);
    let (ok, dry, err) = lakehouse(wh, &args);
    assert!(ok, "{err}");
    assert!(dry.contains("upkeep (dry run): 293 tables"), "{dry}");
    let to_delete = summary_count(&dry, "files to delete");
    assert!(to_delete > 0, "{dry}");
    let listed = dry.lines().filter(|l| l.split('\t').count() == 3).count();
    assert_eq!(listed, to_delete, "each file to delete is listed");
    let after_dry = files(dir.path());
    // The run lock keeps a log of its own (taken, renewed under a slow
    // run, freed; old entries pruned as a run takes it): set apart here.
    let is_lock = |p: &std::path::PathBuf| p.components().any(|c| c.as_os_str() == "lock");
    let tables = |all: &std::collections::BTreeSet<std::path::PathBuf>| {
        all.iter()
            .filter(|p| !is_lock(p))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        tables(&after_dry),
        tables(&files_before),
        "a dry run deletes and writes nothing but run lock entries"
    );
    assert!(
        after_dry.iter().filter(|p| is_lock(p)).count() >= 2,
        "the run lock was taken and freed"
    );

    let mut args = vec!["maintain"];
    args.extend(aggressive);
    let (ok, out, err) = lakehouse(wh, &args);
    assert!(ok, "{err}");
    assert_eq!(summary_count(&out, "files deleted"), to_delete, "{out}");
    assert!(files(dir.path()).len() < files_before.len());
    let (ok, out, _) = lakehouse(
        wh,
        &["history", "das.raw__adventure_works__sales_order_headers"],
    );
    assert!(ok);
    assert_eq!(
        out.lines().filter(|l| l.contains("| append ")).count(),
        1,
        "{out}"
    );
    let (ok, out, err) = lakehouse(
        wh,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM dar._bridge__as_of",
        ],
    );
    assert!(
        ok && out.lines().nth(1).unwrap().parse::<i64>().unwrap() > 0,
        "{err}"
    );
    let (ok, _, err) = lakehouse(
        wh,
        &[
            "query",
            "--as-of",
            &after_init,
            "SELECT count(*) FROM das.raw__adventure_works__sales_order_headers",
        ],
    );
    assert!(
        !ok && err.contains("had no snapshot at") && err.contains("older snapshots expired"),
        "{err}"
    );

    // A table upkeep cannot read fails alone, named; the others are kept up.
    let broken = dir
        .path()
        .join("dab/frame__adventure_works__products/metadata");
    for f in std::fs::read_dir(&broken).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("snap-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let (ok, out, err) = lakehouse(wh, &["maintain"]);
    assert!(!ok, "{out}");
    assert!(out.contains("upkeep: 293 tables"), "{out}");
    assert!(
        err.contains("upkeep failed for 1 table(s)")
            && err.contains("dab.frame__adventure_works__products: "),
        "{err}"
    );
    assert_eq!(
        err.matches("dab.frame__adventure_works__products:").count(),
        1,
        "once: {err}"
    );

    let (ok, _, err) = lakehouse(wh, &["maintain", "--tables", "nope.*"]);
    assert!(
        !ok && err.contains("no table matches --tables 'nope.*'"),
        "{err}"
    );
    let (ok, _, err) = lakehouse(wh, &["maintain", "--retain", "soon"]);
    assert!(!ok && err.contains("--retain"), "{err}");
}

/// A run killed with SIGKILL while it writes leaves files no snapshot
/// references: never visible, listed by `maintain --dry-run`, removed by
/// `maintain`; the next `elt` finishes the killed day.
#[test]
fn maintain_lists_and_removes_what_a_killed_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().to_str().unwrap();
    let (ok, _, err) = lakehouse(wh, &["init", "--scale", "0.01", "--seed", "5"]);
    assert!(ok, "{err}");
    let count = |wh: &str| {
        let (ok, out, err) = lakehouse(
            wh,
            &[
                "query",
                "--format",
                "csv",
                "SELECT count(*) FROM dar._bridge__as_of",
            ],
        );
        assert!(ok, "{err}");
        out.lines().nth(1).unwrap().trim().to_string()
    };
    let rows_before = count(wh);
    let sweep = ["--orphan-age", "0s", "--no-compact"];
    let mut listed = Vec::new();
    // Runs that finished before they could be killed: each moves a day on.
    let mut finished = 0;
    for attempt in 0..8 {
        let model_files = || {
            ["dab", "dar"]
                .iter()
                .flat_map(|ns| files(&dir.path().join(ns)))
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let before = model_files();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
            .args(["--warehouse", wh, "--lock-ttl", "1s", "elt", "--no-upkeep"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it as soon as a model writes a data file (before its commit).
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success());
                finished += 1;
                break;
            }
            if model_files().difference(&before).next().is_some() {
                child.kill().unwrap();
                child.wait().unwrap();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_millis(1200));
        assert_eq!(
            count(wh),
            rows_before,
            "a killed run's rows are never visible"
        );
        let mut args = vec!["maintain", "--dry-run"];
        args.extend(sweep);
        let (ok, dry, err) = lakehouse(wh, &args);
        assert!(ok, "{err}");
        listed = dry
            .lines()
            .filter(|l| l.split('\t').count() == 3 && !l.starts_with("run lock"))
            .map(str::to_string)
            .collect();
        if !listed.is_empty() {
            break;
        }
        eprintln!("attempt {attempt}: every file was committed before the kill; again");
        // The killed day is finished by the next attempt's run.
    }
    assert!(
        !listed.is_empty(),
        "no kill landed between a write and its commit"
    );
    assert!(listed.iter().any(|l| l.contains(".parquet")), "{listed:?}");
    let mut args = vec!["maintain"];
    args.extend(sweep);
    let (ok, out, err) = lakehouse(wh, &args);
    assert!(ok, "{err}");
    assert!(
        summary_count(&out, "files deleted") >= listed.len(),
        "{out}"
    );
    for l in &listed {
        let path = l.split('\t').nth(1).unwrap();
        assert!(!dir.path().join(path).exists(), "{path} removed");
    }
    let (ok, out, err) = lakehouse(wh, &["elt", "--no-upkeep"]);
    assert!(ok, "{err}");
    let day = format!("day {}", finished + 1);
    assert!(
        out.contains(&day),
        "the killed day is run again ({day}): {out}"
    );
    let (ok, _, err) = lakehouse(wh, &["plan"]);
    assert!(ok, "{err}");
}

/// S3 with no credentials anywhere fails within seconds, and the first line
/// says so and which variables to set (the metadata service that S3 clients
/// fall back to is pointed at a closed port, as off EC2 it is unreachable).
#[test]
fn s3_without_credentials_says_so_in_one_line() {
    let started = std::time::Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakehouse"));
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "LAKEHOUSE_WAREHOUSE",
        "LAKEHOUSE_S3_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1")
        .args([
            "--warehouse",
            "s3://no-such-bucket/p",
            "--s3-endpoint",
            "http://127.0.0.1:9",
            "tables",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "error: no AWS credentials found for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// The tuning `plan-cache`: on, a command that builds the DAG keeps the
/// fingerprints in one file under `LAKEHOUSE_CACHE_DIR` and later ones read
/// it; off (`--tuning no-plan-cache` or `LAKEHOUSE_TUNING`), no file is
/// written or read. A bad tuning name is refused, named.
#[test]
fn plan_cache_off_neither_reads_nor_writes_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (wh, cache) = (dir.path().join("wh"), dir.path().join("cache"));
    std::fs::create_dir_all(&cache).unwrap();
    let run = |args: &[&str], tuning: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lakehouse"));
        command
            .env("LAKEHOUSE_CACHE_DIR", &cache)
            .env_remove("LAKEHOUSE_TUNING")
            .arg("--warehouse")
            .arg(&wh)
            .args(args);
        if let Some(t) = tuning {
            command.env("LAKEHOUSE_TUNING", t);
        }
        let out = command.output().expect("run lakehouse");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{args:?}: {stderr}");
        stdout
    };
    let nothing_to_build = "0 of 234 models would be built";
    run(
        &[
            "--tuning",
            "no-plan-cache",
            "init",
            "--scale",
            "0.005",
            "--seed",
            "3",
        ],
        None,
    );
    assert!(files(&cache).is_empty(), "{:?}", files(&cache));

    // On: `plan` writes the file, and reads it the next time.
    assert!(run(&["plan"], None).contains(nothing_to_build));
    let written: Vec<_> = files(&cache).into_iter().collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let file = &written[0];
    let frame = "dab.frame__adventure_works__addresses";
    let text = std::fs::read_to_string(file).unwrap();
    let planted: String = text
        .lines()
        .map(|l| match l.split_once('\t') {
            Some((name, _)) if name == frame => format!("{name}\tplanted\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert_ne!(planted, text);
    std::fs::write(file, &planted).unwrap();
    let out = run(&["plan"], None);
    assert!(
        out.lines()
            .any(|l| l.starts_with("changed") && l.contains(frame)),
        "the planted fingerprint is read: {out}"
    );

    // Off: the planted file is neither read nor rewritten.
    assert!(run(&["plan"], Some("no-plan-cache")).contains(nothing_to_build));
    assert!(run(&["lineage"], Some("none")).contains("flowchart"));
    assert_eq!(
        files(&cache),
        std::collections::BTreeSet::from([file.clone()])
    );
    assert_eq!(std::fs::read_to_string(file).unwrap(), planted);

    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .env("LAKEHOUSE_TUNING", "no-plan-cash")
        .args(["--warehouse", wh.to_str().unwrap(), "tables"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown tuning `no-plan-cash`"), "{err}");
}
