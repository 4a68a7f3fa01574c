//! A tiny runner for the golden files under `tests/slt/` (format described
//! at the top of each file). Every file runs once per PIT join strategy
//! (set with `SET lakehouse.pit_join.strategy`); `{strategy}` in a plan
//! check stands for the strategy of the run.

mod pit;

use std::path::Path;

use datafusion::prelude::SessionContext;
use lakehouse::join::PitJoinStrategy;
use lakehouse::query::{run_sql, session_context};
use pit::{physical_plan, render};

enum Record {
    Statement(String),
    Query(String, Vec<String>),
    Plan {
        sql: String,
        text: String,
        present: bool,
    },
}

fn parse(source: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].trim();
        i += 1;
        if header.is_empty() || header.starts_with('#') {
            continue;
        }
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i]);
            i += 1;
        }
        let sql = sql.join("\n");
        if header == "statement ok" {
            records.push(Record::Statement(sql));
        } else if header == "query" {
            let mut rows = Vec::new();
            if i < lines.len() && lines[i].trim() == "----" {
                i += 1;
                while i < lines.len() && !lines[i].trim().is_empty() {
                    rows.push(lines[i].trim().to_string());
                    i += 1;
                }
            }
            rows.sort();
            records.push(Record::Query(sql, rows));
        } else if let Some(text) = header.strip_prefix("plan contains ") {
            records.push(Record::Plan {
                sql,
                text: text.to_string(),
                present: true,
            });
        } else if let Some(text) = header.strip_prefix("plan lacks ") {
            records.push(Record::Plan {
                sql,
                text: text.to_string(),
                present: false,
            });
        } else {
            panic!("unknown record header `{header}`");
        }
    }
    records
}

async fn run_file(path: &Path, strategy: PitJoinStrategy) {
    let source = std::fs::read_to_string(path).expect("read slt file");
    let pit = session_context();
    run_sql(
        &pit,
        &format!("SET lakehouse.pit_join.strategy = '{strategy}'"),
    )
    .await
    .expect("set strategy");
    let builtin = SessionContext::new();
    let mut checked = 0;
    for record in parse(&source) {
        match record {
            Record::Statement(sql) => {
                for ctx in [&pit, &builtin] {
                    run_sql(ctx, &sql)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
            Record::Query(sql, expected) => {
                let ours = run_sql(&pit, &sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let theirs = run_sql(&builtin, &sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let ours = render(&ours[0].1);
                assert_eq!(
                    ours,
                    expected,
                    "{} (strategy={strategy}): {sql}",
                    path.display()
                );
                assert_eq!(
                    render(&theirs[0].1),
                    expected,
                    "built-in plan disagrees: {sql}"
                );
                checked += 1;
            }
            Record::Plan { sql, text, present } => {
                let text = text.replace("{strategy}", strategy.as_str());
                let plan = physical_plan(&pit, &sql).await;
                assert_eq!(
                    plan.contains(&text),
                    present,
                    "`{text}` in plan of {sql} (strategy={strategy}):\n{plan}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "{} has no checks", path.display());
}

#[tokio::test]
async fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        for strategy in PitJoinStrategy::ALL {
            run_file(&f, strategy).await;
        }
    }
}
