//! Shared test harness: warehouses on local disk and on a real S3-compatible
//! server (moto) on loopback.
//!
//! The S3 server is started once per test binary on a free port: moto's S3
//! app, served by `tests/py/moto_serial.py` with one request processed at a
//! time (`pip install "moto[server]"`; `$LAKEHOUSE_PYTHON` names another
//! interpreter). moto's own threaded server does not make conditional puts
//! atomic; S3 does, and so does one request at a time. If moto is missing
//! the S3 variants of the tests fail with instructions, unless
//! `LAKEHOUSE_SKIP_S3=1` says to skip them (never set in CI).
#![allow(dead_code)]

pub mod shop;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lakehouse::storage::Warehouse;

pub const BUCKET: &str = "lakehouse-test";

struct Moto {
    endpoint: String,
    _child: ChildGuard,
}

struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on loopback")
}

fn start_moto() -> Result<Moto, String> {
    if let Ok(ep) = std::env::var("LAKEHOUSE_TEST_S3_ENDPOINT") {
        create_bucket(&ep)?;
        return Ok(Moto {
            endpoint: ep,
            _child: ChildGuard(Command::new("true").spawn().map_err(|e| e.to_string())?),
        });
    }
    let bin = std::env::var("LAKEHOUSE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let port = free_port();
    // A watchdog shell stops the server when this test process exits (statics
    // are never dropped, so the guard alone would leak it).
    let script = format!(
        "{bin} {server} 127.0.0.1 {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; \
         kill $m 2>/dev/null; wait $m; exit 1",
        parent = std::process::id(),
        server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/moto_serial.py"),
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start a shell for moto: {e}"))?;
    let mut guard = ChildGuard(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        let exited = matches!(guard.0.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            return Err(format!(
                "'{bin} tests/py/moto_serial.py' (moto) did not start on port {port}: install it with pip install \"moto[server]\""
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    create_bucket(&endpoint)?;
    Ok(Moto {
        endpoint,
        _child: guard,
    })
}

fn create_bucket(endpoint: &str) -> Result<(), String> {
    // moto accepts unsigned requests; a plain PUT creates the bucket.
    let url = format!("{endpoint}/{BUCKET}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = std::thread::spawn({
            let url = url.clone();
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    reqwest::Client::new()
                        .put(&url)
                        .send()
                        .await
                        .map_err(|e| e.to_string())
                })
            }
        })
        .join()
        .map_err(|_| "bucket creation panicked".to_string())?;
        match res {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 409 => return Ok(()),
            Ok(r) if Instant::now() > deadline => {
                return Err(format!("cannot create bucket: HTTP {}", r.status()));
            }
            Err(e) if Instant::now() > deadline => {
                return Err(format!("cannot create bucket: {e}"));
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// S3 settings for the test server.
pub fn s3_options(endpoint: &str) -> Vec<(String, String)> {
    vec![
        ("aws_endpoint".into(), endpoint.into()),
        ("aws_access_key_id".into(), "testing".into()),
        ("aws_secret_access_key".into(), "testing".into()),
        ("aws_region".into(), "us-east-1".into()),
    ]
}

/// The S3 endpoint of the test server, or `None` when S3 tests are skipped.
pub fn s3_endpoint() -> Option<String> {
    if std::env::var("LAKEHOUSE_SKIP_S3").is_ok_and(|v| v == "1") {
        eprintln!("LAKEHOUSE_SKIP_S3=1: skipping the S3 variant");
        return None;
    }
    match MOTO.get_or_init(start_moto) {
        Ok(m) => Some(m.endpoint.clone()),
        Err(e) => panic!("S3 test server unavailable: {e}"),
    }
}

/// A fresh, empty warehouse of the given backend (`"local"` or `"s3"`),
/// plus the temp dir keeping a local one alive.
pub fn warehouse(backend: &str) -> Option<(Warehouse, Option<tempfile::TempDir>)> {
    match backend {
        "local" => {
            let dir = tempfile::tempdir().expect("temp dir");
            let wh = Warehouse::open(dir.path().to_str().expect("utf-8 temp path"))
                .expect("open local warehouse");
            Some((wh, Some(dir)))
        }
        "s3" => {
            let endpoint = s3_endpoint()?;
            let prefix = uuid::Uuid::new_v4();
            let wh =
                Warehouse::open_with(&format!("s3://{BUCKET}/{prefix}"), &s3_options(&endpoint))
                    .expect("open S3 warehouse");
            Some((wh, None))
        }
        other => panic!("unknown backend {other}"),
    }
}

/// Generate `<name>_local` and `<name>_s3` tests running the async fn
/// `$body(Warehouse)` against each backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident => $body:path),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (wh, _dir) = $crate::common::warehouse("local").expect("local warehouse");
                    $body(wh).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((wh, _dir)) = $crate::common::warehouse("s3") else { return };
                    $body(wh).await;
                }
            )*
        }
    };
}

/// Rows of `batches` as text lines (`|`-joined, NULL as `NULL`), in order.
pub fn text_rows(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    let opts = arrow::util::display::FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                f.iter()
                    .map(|x| x.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// Every row of a table rendered as text (see [`text_rows`]), as a set:
/// two tables are equal as sets of rows when these are equal.
pub async fn rows_as_text(
    wh: &Warehouse,
    t: &lakehouse::storage::TableName,
) -> std::collections::BTreeSet<String> {
    let batches = wh.scan(t, lakehouse::storage::AsOf::Latest).await.unwrap();
    text_rows(&batches).into_iter().collect()
}

/// Run the binary in `dir` with no project or warehouse from the
/// environment: (success, stdout, stderr).
pub fn lakehouse_in(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    lakehouse_in_with(dir, args, &[])
}

/// [`lakehouse_in`] with environment variables `env` set.
pub fn lakehouse_in_with(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .current_dir(dir)
        .env_remove("LAKEHOUSE_PROJECT")
        .env_remove("LAKEHOUSE_WAREHOUSE")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run lakehouse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every model table (not DAS, not the run log) as sets of rows.
#[allow(dead_code)]
pub async fn model_tables(
    wh: &Warehouse,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeMap::new();
    for t in wh.list_all_tables().await.unwrap() {
        if t.namespace != "das" && t.namespace != "lakehouse" {
            out.insert(t.to_string(), rows_as_text(wh, &t).await);
        }
    }
    out
}

/// Build the frames (`mode`) matching nothing in particular: all of them,
/// without progress bars or a memory limit.
#[allow(dead_code)]
pub async fn frames(
    wh: &Warehouse,
    project: &lakehouse::model::Project,
    mode: lakehouse::model::build::BuildMode,
) -> Vec<lakehouse::model::build::BuildReport> {
    let budget = lakehouse::budget::MemoryBudget::unbounded();
    lakehouse::model::build::build_frames(wh, project, None, mode, false, &budget)
        .await
        .unwrap()
}

/// Build the whole DAR layer in full, without progress bars or a memory
/// limit.
#[allow(dead_code)]
pub async fn dar(
    wh: &Warehouse,
    project: &lakehouse::model::Project,
) -> Vec<lakehouse::model::build::BuildReport> {
    let budget = lakehouse::budget::MemoryBudget::unbounded();
    lakehouse::model::build::build_dar(wh, project, None, false, &budget)
        .await
        .unwrap()
}
