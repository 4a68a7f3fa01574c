//! End-to-end runs of the `lakehouse` binary: `query`, `explain --analyze`
//! and `bench pit-join`.

use std::process::Command;

fn lakehouse(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .output()
        .expect("run lakehouse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SETUP: &str = "CREATE TABLE l(k BIGINT, id BIGINT, vf BIGINT, vt BIGINT) AS VALUES \
     (1, 1, 0, 10), (1, 2, 5, 6), (NULL, 3, 0, 1); \
     CREATE TABLE r(k BIGINT, id BIGINT, vf BIGINT, vt BIGINT) AS VALUES \
     (1, 10, 0, 5), (1, 11, 5, 9999);";

#[test]
fn query_runs_several_statements_in_each_format() {
    let sql = format!(
        "{SETUP} SELECT l.id AS lid, r.id AS rid FROM l LEFT JOIN r \
         ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf ORDER BY lid, rid"
    );
    let (ok, stdout, stderr) = lakehouse(&["query", &sql, "--format", "csv"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("lid,rid\n1,10\n1,11\n2,11\n3,\n"),
        "unexpected output:\n{stdout}"
    );
    let (ok, stdout, stderr) = lakehouse(&["query", &sql, "--format", "json"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(r#"[{"lid":1,"rid":10},{"lid":1,"rid":11},{"lid":2,"rid":11},{"lid":3}]"#),
        "{stdout}"
    );
    let (ok, stdout, _) = lakehouse(&["query", &sql]);
    assert!(ok);
    assert!(stdout.contains("| lid | rid |"), "{stdout}");
    let (ok, _, stderr) = lakehouse(&["query", "SELECT * FROM missing_table"]);
    assert!(!ok);
    assert!(stderr.contains("missing_table"), "{stderr}");
}

#[test]
fn explain_analyze_shows_the_operator_and_its_metrics() {
    let sql = format!(
        "{SETUP} SELECT count(*) FROM l LEFT JOIN r ON l.k = r.k AND l.vf < r.vt AND l.vt > r.vf"
    );
    let (ok, stdout, stderr) = lakehouse(&["explain", &sql]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("PitJoin: type=Left"), "{stdout}");
    assert!(stdout.contains("PitJoinExec"), "{stdout}");
    let (ok, stdout, stderr) = lakehouse(&["explain", "--analyze", &sql]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("output_rows=4"), "{stdout}");
    assert!(stdout.contains("candidate_pairs=3"), "{stdout}");
    assert!(stdout.contains("peak_mem_used="), "{stdout}");
}

#[test]
fn bench_pit_join_compares_both_plans() {
    let (ok, stdout, stderr) = lakehouse(&[
        "bench",
        "pit-join",
        "--left",
        "3000",
        "--right",
        "2000",
        "--keys",
        "20",
        "--threads",
        "2",
        "--hot-share",
        "0.2",
        "--seed",
        "3",
        "--strategy",
        "all",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("20 keys x 100 versions"), "{stdout}");
    for strategy in ["hash", "partitioned_hash", "sort"] {
        assert!(
            stdout.contains(&format!("pit_join strategy={strategy} ")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("speedup (builtin / pit, strategy={strategy}): ")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("builtin"), "{stdout}");
    let (ok, _, stderr) = lakehouse(&[
        "bench",
        "pit-join",
        "--left",
        "10",
        "--right",
        "10",
        "--keys",
        "2",
        "--strategy",
        "hash,merge",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown PIT join strategy 'merge'"),
        "{stderr}"
    );
    let (ok, _, stderr) = lakehouse(&[
        "bench", "pit-join", "--left", "10", "--right", "10", "--keys", "0",
    ]);
    assert!(!ok);
    assert!(stderr.contains("--keys"), "{stderr}");
}
