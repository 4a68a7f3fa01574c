//! The dashboard end to end on scale-0.01 demo data built by `init` and one
//! `elt` day: headless Chromium renders one card per metric the API reports,
//! the line-total card equals the same metric computed by `lakehouse query`,
//! and a screenshot is saved as a CI artifact.

mod browser;

use std::net::SocketAddr;

use browser::{artifacts_dir, chromium, lakehouse_query, parse_cards, run_chromium};
use lakehouse::dag::run::{PipelineOptions, SourceSpec, elt, init};
use lakehouse::dashboard;
use lakehouse::model::Project;
use lakehouse::storage::Warehouse;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_on_demo_data_in_headless_chromium() {
    let bin = chromium();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
    let project = Project::adventure_works().unwrap();
    let opts = PipelineOptions {
        source: SourceSpec::embedded(None, Some(0.01), Some(42)),
        ..PipelineOptions::default()
    };
    init(&wh, &project, &opts).await.unwrap();
    elt(&wh, &project, &PipelineOptions::default())
        .await
        .unwrap();

    let server = dashboard::serve(&wh, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = server.base_url().to_string();
    let api: Value = reqwest::get(format!("{base}/api/metrics"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The default window ends on the source's last modification day (day 1 =
    // 2014-07-01), not on later scheduled dates such as offer end dates.
    assert_eq!(api["to"], "2014-07-01");
    assert_eq!(api["from"], "2013-07-02");
    let metrics = api["metrics"].as_array().unwrap();
    assert!(
        metrics.len() >= 10,
        "metrics from every event and measure column: {}",
        metrics.len()
    );
    let names: Vec<&str> = metrics
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for expected in [
        "metric__sales_order_line_total_placed",
        "metric__sales_order_line_qty_placed",
        "metric__sales_order_headers_from_new_customers__percentage",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }

    let profile = dir.path().join("chromium-profile");
    let url = format!("{base}/");
    let dom = {
        let (bin, profile, url) = (bin.clone(), profile.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            run_chromium(&bin, &profile, &["--dump-dom".to_string()], &url)
        })
        .await
        .unwrap()
    };
    let cards = parse_cards(&dom);
    assert_eq!(cards.len(), metrics.len(), "one card per metric");
    // Cards are ordered by their latest value, largest first.
    let values: Vec<f64> = cards
        .iter()
        .filter_map(|c| c.1.parse::<f64>().ok())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] >= w[1]),
        "cards ordered by latest value: {values:?}"
    );

    // The line-total card equals the same metric computed by `lakehouse query`.
    let m = metrics
        .iter()
        .find(|m| m["name"] == "metric__sales_order_line_total_placed")
        .unwrap();
    let date = m["date"].as_str().unwrap();
    let card = cards
        .iter()
        .find(|c| c.0 == "metric__sales_order_line_total_placed")
        .unwrap();
    let rows = lakehouse_query(
        dir.path(),
        &format!(
            "SELECT COALESCE(SUM(b.measure__sales_order_line_total_placed), 0) FROM dar._bridge__as_of b \
             JOIN dar.calendar c ON b._hook__epoch__date = c._hook__epoch__date \
             WHERE b.bridge__is_current_record AND CAST(c.date AS VARCHAR) = '{date}'"
        ),
    );
    let want: f64 = rows[0][0].parse().unwrap();
    let got: f64 = card.1.parse().unwrap();
    assert!(
        (want - got).abs() <= 1e-6 * want.abs().max(1.0),
        "card {got} vs SQL {want} on {date}"
    );

    let shot = artifacts_dir().join("dashboard-demo.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let flags = vec![
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,2200".to_string(),
    ];
    tokio::task::spawn_blocking(move || run_chromium(&bin, &profile, &flags, &url))
        .await
        .unwrap();
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot at {}",
        shot.display()
    );
    server.shutdown().await.unwrap();
}
