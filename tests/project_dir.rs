//! A project directory through the real binary: `lakehouse new`, every verb
//! finding `lakehouse.yaml` from a subdirectory, a config edit planned as a
//! change without rebuilding the binary, plans written into the project,
//! clear errors for a bad project file, and the built-in example when no
//! project is found.

mod common;

use common::lakehouse_in as lakehouse;

/// The `plan` lines naming `model`.
fn plan_line<'a>(plan: &'a str, model: &str) -> Option<&'a str> {
    plan.lines()
        .find(|l| l.split_whitespace().nth(2) == Some(model))
}

/// "N of M models would be built" -> (N, M).
fn plan_counts(plan: &str) -> (usize, usize) {
    let line = plan
        .lines()
        .find(|l| l.contains("models would be built"))
        .unwrap_or_else(|| panic!("no summary line in {plan}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn a_new_project_is_found_built_and_edited_without_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let (ok, out, err) = lakehouse(tmp.path(), &["new", "shop"]);
    assert!(ok, "{err}");
    assert!(out.contains("wrote a new project"), "{out}");
    for f in [
        "lakehouse.yaml",
        "sources/adventure_works.yaml",
        "models/concepts.yaml",
        "models/frames.yaml",
        "models/measures.yaml",
    ] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    // A second `new` into the same place is refused.
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "shop"]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // Found from a subdirectory; its warehouse is the project's.
    let sub = dir.join("models");
    let (ok, out, err) = lakehouse(&sub, &["init", "--scale", "0.005", "--seed", "3"]);
    assert!(ok, "{err}");
    assert!(err.contains("project adventure_works"), "{err}");
    assert!(out.contains("init (embedded source, day 0)"), "{out}");
    assert!(
        dir.join("lakehouse/das").is_dir(),
        "the project's warehouse"
    );
    let (ok, out, err) = lakehouse(&sub, &["plan"]);
    assert!(ok, "{err}");
    assert_eq!(plan_counts(&out).0, 0, "nothing to do after init: {out}");
    let total = plan_counts(&out).1;

    // Edit one frame's config: `plan` sees the change at once, that frame
    // is changed and only its descendants follow.
    let frames = dir.join("models/frames.yaml");
    let text = std::fs::read_to_string(&frames).unwrap();
    let edited = text.replacen("column_prefix: department\n", "column_prefix: dept\n", 1);
    assert_ne!(text, edited);
    std::fs::write(&frames, edited).unwrap();
    let (ok, out, err) = lakehouse(&sub, &["plan"]);
    assert!(ok, "{err}");
    let line = plan_line(&out, "dab.frame__adventure_works__departments")
        .unwrap_or_else(|| panic!("the edited frame is planned: {out}"));
    assert!(line.starts_with("changed"), "{line}");
    let (todo, all) = plan_counts(&out);
    assert_eq!(all, total);
    assert!(
        todo > 1 && todo < all / 4,
        "the frame and its descendants only: {out}"
    );
    assert!(
        plan_line(&out, "dab.frame__adventure_works__products").is_none(),
        "an unrelated frame stays up to date: {out}"
    );
    // `transform` builds what the plan says: the edited frame in full, its
    // readers after it; the new column names are in the table.
    let (ok, out, err) = lakehouse(&dir, &["transform", "--layer", "all"]);
    assert!(ok, "{err}");
    let built = out
        .lines()
        .find(|l| l.contains("| dab.frame__adventure_works__departments "))
        .unwrap_or_else(|| panic!("the edited frame is rebuilt: {out}"));
    assert!(
        built.contains("changed") && built.contains("full"),
        "{built}"
    );
    assert!(
        out.contains("dar.adventure_works__departments"),
        "its peripheral follows: {out}"
    );
    assert!(!out.contains("frame__adventure_works__products "), "{out}");
    let (ok, out, err) = lakehouse(&sub, &["plan"]);
    assert!(ok, "{err}");
    assert_eq!(plan_counts(&out).0, 0, "{out}");
    let (ok, out, err) = lakehouse(&dir, &["transform"]);
    assert!(ok, "{err}");
    assert!(out.contains("up to date"), "{out}");
    let (ok, out, err) = lakehouse(
        &dir,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(dept__name) AS n FROM dab.frame__adventure_works__departments",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.lines().nth(1).unwrap().trim().parse::<i64>().unwrap() > 0,
        "{out}"
    );

    // Plans go into the project's `plans` directory, `--project` from anywhere.
    let project = dir.to_str().unwrap();
    let (ok, out, err) = lakehouse(tmp.path(), &["--project", project, "render", "--write"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&dir.join("plans").display().to_string()),
        "{out}"
    );
    assert!(
        dir.join("plans/dab/frame__adventure_works__departments.txt")
            .is_file()
    );
    let plan =
        std::fs::read_to_string(dir.join("plans/dab/frame__adventure_works__departments.txt"))
            .unwrap();
    assert!(plan.contains("dept__name"), "{plan}");
}

#[test]
fn bad_project_files_and_no_project() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "p"]);
    assert!(ok, "{err}");
    // A typo in a key: the error names the file and the key.
    let file = dir.join("lakehouse.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("plans: plans", "plan: plans")).unwrap();
    let (ok, _, err) = lakehouse(&dir, &["plan"]);
    assert!(!ok);
    assert!(
        err.contains("lakehouse.yaml") && err.contains("unknown field `plan`"),
        "{err}"
    );
    // A model file that does not parse: named with the problem.
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.join("models/frames.yaml"), "frames: [ {name: 3\n").unwrap();
    let (ok, _, err) = lakehouse(&dir, &["lineage"]);
    assert!(!ok);
    assert!(err.contains("frames.yaml"), "{err}");
    // `--project` pointing nowhere.
    let (ok, _, err) = lakehouse(tmp.path(), &["--project", "nowhere", "plan"]);
    assert!(!ok && err.contains("no lakehouse.yaml in nowhere"), "{err}");

    // No project up the tree: the built-in example, warehouse ./lakehouse.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, out, err) = lakehouse(&empty, &["plan"]);
    assert!(ok, "{err}");
    let (todo, all) = plan_counts(&out);
    assert_eq!(todo, all, "a fresh warehouse: every model is new: {out}");
    assert!(
        plan_line(&out, "dab.frame__adventure_works__departments").is_some(),
        "{out}"
    );
}

/// `extract` then `transform` build what `init` would; with no new source
/// data after them, `plan` (what `elt` would build) has nothing to do. Logs
/// written to a pipe carry no colour escape codes.
#[test]
fn extract_then_transform_leaves_nothing_for_elt_to_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .current_dir(dir)
        .env_remove("LAKEHOUSE_PROJECT")
        .env_remove("LAKEHOUSE_WAREHOUSE")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "lakehouse=debug")
        .args(["extract", "--scale", "0.003", "--seed", "9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "extract: {err}");
    assert!(err.contains("DEBUG"), "debug logs were written: {err}");
    assert!(!err.contains('\u{1b}'), "no escape codes in piped logs");
    let (ok, out, err) = lakehouse(dir, &["transform", "--layer", "all"]);
    assert!(ok, "transform: {err}\n{out}");
    let (ok, out, err) = lakehouse(dir, &["plan"]);
    assert!(ok, "{err}");
    let (todo, all) = plan_counts(&out);
    assert!(all > 200, "{out}");
    assert_eq!(todo, 0, "every model is up to date: {out}");
}

#[test]
fn a_missing_source_table_fails_only_the_models_that_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Only two resources landed: departments and shifts.
    let (ok, _, err) = lakehouse(
        dir,
        &[
            "extract",
            "--scale",
            "0.003",
            "--resources",
            "Departments,Shifts",
        ],
    );
    assert!(ok, "extract: {err}");
    let (ok, out, err) = lakehouse(dir, &["transform", "--layer", "dab"]);
    assert!(!ok, "frames over missing tables fail: {out}");
    assert!(
        err.contains("56 model(s) failed")
            && err.contains("dab.frame__adventure_works__employees")
            && err.contains("the other 2 were")
            && err.contains("does not exist"),
        "the failed frames and the missing table named: {err}"
    );
    // The frames whose tables landed were built all the same.
    let (ok, out, err) = lakehouse(
        dir,
        &[
            "query",
            "--format",
            "csv",
            "SELECT (SELECT count(*) FROM dab.frame__adventure_works__departments) AS d, \
             (SELECT count(*) FROM dab.frame__adventure_works__shifts) AS s",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "d,s\n16,3", "both frames built");
}
