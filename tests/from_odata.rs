//! `lakehouse new DIR --from-odata URL` through the binary, against the
//! embedded source's `$metadata`: the starter source lists every resource
//! with the columns, keys, cursor and types the built-in config has (the
//! service only knows `xml` as text), and the project it writes builds with
//! `init` and is up to date afterwards.

mod common;

use lakehouse::config::{ColumnType, SourceConfig};
use lakehouse::project::ProjectDir;
use lakehouse::source::{GeneratorOptions, ServerOptions, serve};

use common::lakehouse_in as lakehouse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_written_from_metadata_matches_the_service_and_builds() {
    let config = SourceConfig::adventure_works().unwrap();
    let server = serve(
        &config,
        ServerOptions {
            generator: GeneratorOptions {
                seed: 5,
                scale: 0.003,
            },
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let url = format!("{}/", server.base_url());
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out, err) = lakehouse(tmp.path(), &["new", "aw", "--from-odata", &url]);
    assert!(ok, "{err}");
    assert!(out.contains("58 resources and frames"), "{out}");
    let dir = tmp.path().join("aw");

    let loaded = ProjectDir::load(&dir.join("lakehouse.yaml")).unwrap();
    let written = &loaded.project.sources[0];
    assert_eq!(written.name, "adventure_works");
    assert_eq!(written.resources.len(), config.resources.len());
    for want in &config.resources {
        let got = written
            .resource_by_path(&want.api_path)
            .unwrap_or_else(|| panic!("{} written", want.api_path));
        assert_eq!(got.table, want.table);
        assert_eq!(got.primary_key, want.primary_key, "{}", want.table);
        assert_eq!(got.cursor_field, want.cursor_field, "{}", want.table);
        let columns = |r: &lakehouse::config::ResourceConfig| -> Vec<(String, String, ColumnType)> {
            r.columns
                .iter()
                .map(|c| {
                    let t = match c.data_type {
                        ColumnType::Xml => ColumnType::Text,
                        t => t,
                    };
                    (c.name.clone(), c.source.clone(), t)
                })
                .collect()
        };
        assert_eq!(columns(got), columns(want), "{}", want.table);
    }
    assert_eq!(loaded.project.model.frames.len(), 58);

    let (ok, out, err) = lakehouse(&dir, &["init"]);
    assert!(ok, "init: {err}\n{out}");
    assert!(out.contains("models built"), "{out}");
    let (ok, out, err) = lakehouse(&dir, &["plan"]);
    assert!(ok, "{err}");
    assert!(out.contains("0 of "), "up to date after init: {out}");
    let (ok, out, err) = lakehouse(
        &dir,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n, count(DISTINCT _hook__sales_order_header) AS k \
             FROM dab.frame__adventure_works__sales_order_headers",
        ],
    );
    assert!(ok, "{err}");
    let row = out.lines().nth(1).unwrap_or_default().to_string();
    let (n, k) = row.split_once(',').unwrap();
    assert!(n.parse::<i64>().unwrap() > 0, "{out}");
    assert_eq!(n, k, "one version per order on day 0: {out}");
    server.shutdown().await.unwrap();
}
