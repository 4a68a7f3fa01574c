//! `lakehouse new DIR --from-odata URL` through the binary, against the
//! embedded source's `$metadata`: the starter source lists every resource
//! with the columns, keys, cursor and types the built-in config has (the
//! service only knows `xml` as text), and the project it writes builds with
//! `init` and is up to date afterwards. A source listing only resources
//! (no columns, no keys) gets both from `$metadata`, kept beside it so that
//! later runs work without the service.

mod common;

use lakehouse::config::{ColumnType, SourceConfig};
use lakehouse::project::ProjectDir;
use lakehouse::source::{GeneratorOptions, ServerOptions, serve};

use common::lakehouse_in as lakehouse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_written_from_metadata_matches_the_service_and_builds() {
    let config = SourceConfig::adventure_works().unwrap();
    let server = aw_server(&config).await;
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
        assert_eq!(described(got), described(want), "{}", want.table);
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

/// The embedded Adventure Works source, small, on a free port.
async fn aw_server(config: &SourceConfig) -> lakehouse::source::ServerHandle {
    serve(
        config,
        ServerOptions {
            generator: GeneratorOptions {
                seed: 5,
                scale: 0.003,
            },
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

/// The types a column has as the service describes it (`xml` is text there).
fn described(r: &lakehouse::config::ResourceConfig) -> Vec<(String, String, ColumnType)> {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_without_columns_or_keys_are_completed_from_metadata() {
    let config = SourceConfig::adventure_works().unwrap();
    let server = aw_server(&config).await;
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = lakehouse(tmp.path(), &["new", "aw"]);
    assert!(ok, "{err}");
    let dir = tmp.path().join("aw");
    let source = dir.join("sources/adventure_works.yaml");
    // Only each resource's table, path and cursor; the service's URL.
    let mut yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&source).unwrap()).unwrap();
    yaml["base_url"] = format!("{}/", server.base_url()).into();
    for r in yaml["resources"].as_sequence_mut().unwrap() {
        let m = r.as_mapping_mut().unwrap();
        m.remove("columns");
        m.remove("primary_key");
    }
    std::fs::write(&source, serde_yaml::to_string(&yaml).unwrap()).unwrap();

    let loaded = ProjectDir::load(&dir.join("lakehouse.yaml")).unwrap();
    let cache = dir.join("sources/adventure_works.metadata.xml");
    assert!(cache.exists(), "the $metadata is kept beside the source");
    for want in &config.resources {
        let got = loaded.project.sources[0]
            .resource_by_table(&want.table)
            .unwrap();
        assert_eq!(got.primary_key, want.primary_key, "{}", want.table);
        assert_eq!(described(got), described(want), "{}", want.table);
    }
    let (ok, out, err) = lakehouse(&dir, &["extract", "--resources", "Departments,ShipMethods"]);
    assert!(ok, "extract: {err}\n{out}");
    let (ok, out, err) = lakehouse(
        &dir,
        &[
            "query",
            "--format",
            "csv",
            "SELECT name, ship_base FROM das.raw__adventure_works__ship_methods ORDER BY ship_method_id LIMIT 1",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "name,ship_base\nXRQ - TRUCK GROUND,3.9500",
        "discovered columns, decimal as the service describes it"
    );

    // Without the service: the kept document serves; without it either, the
    // error says what was read and from where.
    server.shutdown().await.unwrap();
    let (ok, out, err) = lakehouse(&dir, &["plan"]);
    assert!(ok, "plan offline: {err}\n{out}");
    std::fs::remove_file(&cache).unwrap();
    let (ok, _, err) = lakehouse(&dir, &["plan"]);
    assert!(!ok);
    assert!(
        err.contains("adventure_works.yaml: reading the columns its resources leave out from the service's $metadata"),
        "{err}"
    );
}
