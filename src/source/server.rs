//! The embedded source's local OData v4 endpoint (axum).
//!
//! # Protocol
//! `GET /<EntitySet>` (the API path of a configured resource) returns
//! `{"@odata.context": ..., "value": [...], "@odata.nextLink": ...}` with the
//! rows of the generator's current day, each an object keyed by the
//! configured API (source) names. Columns the generator produces but the
//! config does not list are served too, under their PascalCase name, so a
//! client with a narrower config sees "unknown" fields. Query options:
//! - `$filter=<CursorField> <op> <literal>` with `op` one of `ge`, `gt`,
//!   `le`, `lt`, `eq` and a bare date (`2014-07-01`) or a date-time literal
//!   (`2014-07-01T00:00:00Z`); a date is midnight UTC. Only the resource's
//!   cursor field can be filtered. Rows whose cursor is null never match.
//! - `$orderby=<CursorField> [asc]` (also the default order); ties are
//!   ordered by the true primary key, so paging is stable.
//! - `$top`, `$skip`, `$count=true|false`.
//! - Server-driven paging: at most `page_size` rows per response and an
//!   absolute `@odata.nextLink` (built from the request's `Host`) carrying
//!   the same options plus `$skiptoken=<day>-<offset>`. A token from a day
//!   that is no longer served is answered `410 Gone`, so a client never
//!   mixes two days' pages silently.
//! - `GET /` lists the entity sets; `GET /$metadata` describes them in CSDL
//!   XML (keys, configured columns and their EDM types, see
//!   [`crate::extract::metadata`]), so `lakehouse new --from-odata` works
//!   against it.
//!
//! Errors are OData error objects: unknown resource 404, malformed or
//! unsupported options 400, a request reaching before a table's horizon
//! (see [`ServerOptions::horizons`]) 409, a failure to read spilled rows
//! back (see [`ServerOptions::spill`]) 500 with its message.
//!
//! # Test hooks
//! [`ServerHandle::set_day`] changes the served day while running;
//! [`FaultInjector`] makes a resource answer errors (e.g. 503 or 429 to the
//! next N requests, or an error after K good pages) or answer slowly, so
//! retries, timeouts and crash-safety of the extractor can be tested;
//! [`ServerHandle::request_count`] tells how many requests a resource got.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::SourceConfig;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::source::Cell;
use crate::source::generator::{Generator, GeneratorOptions, SpillOptions, TableData};

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Maximum rows per response (server-driven paging).
    pub page_size: usize,
    /// Generator seed and scale.
    pub generator: GeneratorOptions,
    /// Day served at start.
    pub day: u32,
    /// Per API path, the earliest `ModifiedDate` a client will ask for (an
    /// incremental run's cursor): the generator may then leave out older
    /// rows of the tables nothing reads back (see
    /// [`crate::source::generator`], *Horizons*), and a request reaching
    /// before the horizon is answered `409 Conflict`. Only resources whose
    /// cursor is `ModifiedDate` take one (others are served whole).
    pub horizons: BTreeMap<String, NaiveDate>,
    /// Keep the generator's append-only tables in a temporary spill file
    /// beyond a budget of held bytes (see [`SpillOptions`] and
    /// [`Generator::with_spill`]); `None` (the default): all in memory.
    /// The pages served are the same either way.
    pub spill: Option<SpillOptions>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            page_size: 1000,
            generator: GeneratorOptions::default(),
            day: 0,
            horizons: BTreeMap::new(),
            spill: None,
        }
    }
}

/// A failure the server injects for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `status` to the next `times` requests.
    Status { status: u16, times: usize },
    /// Serve `pages` more pages normally, then answer `status` to every
    /// later request until the fault is cleared.
    FailAfterPages { pages: usize, status: u16 },
    /// Wait `delay` before answering the next `times` requests.
    Delay { delay: Duration, times: usize },
    /// Serve the resource as an empty entity set (no rows, no next link)
    /// until the fault is cleared, as a service holding no data for it does
    /// (four of Adventure Works' entity sets are empty in the real data).
    Empty,
}

/// Per-resource injected failures (see [`Fault`]).
#[derive(Debug, Default)]
pub struct FaultInjector {
    faults: Mutex<HashMap<String, Vec<Fault>>>,
}

enum FaultAction {
    None,
    Fail(u16),
    Delay(Duration),
    Empty,
}

impl FaultInjector {
    /// Add a fault for the resource at `api_path` (e.g. `/Customers`);
    /// several faults apply in the order they were added.
    pub fn inject(&self, api_path: &str, fault: Fault) {
        lock(&self.faults)
            .entry(api_path.to_string())
            .or_default()
            .push(fault);
    }

    /// Remove every fault of one resource.
    pub fn clear(&self, api_path: &str) {
        lock(&self.faults).remove(api_path);
    }

    /// Remove every fault.
    pub fn clear_all(&self) {
        lock(&self.faults).clear();
    }

    /// Decide what happens to the next request of `api_path`.
    fn next(&self, api_path: &str) -> FaultAction {
        let mut faults = lock(&self.faults);
        let Some(list) = faults.get_mut(api_path) else {
            return FaultAction::None;
        };
        let mut action = FaultAction::None;
        for f in list.iter_mut() {
            match f {
                Fault::Status { status, times } if *times > 0 => {
                    *times -= 1;
                    action = FaultAction::Fail(*status);
                    break;
                }
                Fault::FailAfterPages { pages, status } => {
                    if *pages == 0 {
                        action = FaultAction::Fail(*status);
                    } else {
                        *pages -= 1;
                    }
                    break;
                }
                Fault::Delay { delay, times } if *times > 0 => {
                    *times -= 1;
                    action = FaultAction::Delay(*delay);
                    break;
                }
                Fault::Empty => {
                    action = FaultAction::Empty;
                    break;
                }
                _ => {}
            }
        }
        action
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One served resource: generator table index and the API name of each
/// generator column.
struct Served {
    api_path: String,
    entity_set: String,
    cursor_field: String,
    table: String,
    names: Vec<String>,
    cursor_col: usize,
    key_cols: Vec<usize>,
}

/// Selected rows of one table ordered by (cursor, key): (cursor micros or
/// `None`, row index).
type SortedRows = Vec<(Option<i64>, usize)>;

struct Data {
    generator: Generator,
    /// Sorted selections by (table, filter).
    sorted: HashMap<(String, Option<Filter>), SortedRows>,
}

struct Shared {
    served: Vec<Served>,
    page_size: usize,
    bound: SocketAddr,
    data: Mutex<Data>,
    faults: FaultInjector,
    requests: Mutex<HashMap<String, usize>>,
    /// The `$metadata` document.
    metadata: String,
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// Build the generator, bind `options.addr` and serve in the background.
///
/// Fails with [`ErrorKind::InvalidInput`] when a configured resource or
/// column is not produced by the generator, and [`ErrorKind::Source`] when
/// the address cannot be bound.
pub async fn serve(config: &SourceConfig, options: ServerOptions) -> Result<ServerHandle> {
    if options.page_size == 0 {
        return Err(Error::invalid(
            "embedded server page_size must be at least 1",
        ));
    }
    // Generating is CPU work: on a thread of the blocking pool, so that the
    // caller's other futures (a run loads its tables' metadata meanwhile)
    // go on.
    let (generator_options, day, spill) = (options.generator, options.day, options.spill);
    // The generator leaves rows out by their modified date: a horizon is
    // taken only where that is the cursor the client filters on.
    let horizons: BTreeMap<String, NaiveDate> = options
        .horizons
        .into_iter()
        .filter(|(path, _)| {
            config.resources.iter().any(|r| {
                r.api_path == *path && r.cursor_column().is_some_and(|c| c.name == "modified_date")
            })
        })
        .collect();
    let generator = tokio::task::spawn_blocking(move || {
        Generator::with_spill(generator_options, day, &horizons, spill)
    })
    .await
    .map_err(|e| Error::internal(format!("the embedded source's generator failed: {e}")))??;
    let mut served = Vec::new();
    for r in &config.resources {
        let t = generator.table_by_path(&r.api_path).ok_or_else(|| {
            Error::invalid(format!(
                "resource `{}`: api_path `{}` is not produced by the embedded generator",
                r.table, r.api_path
            ))
        })?;
        for c in &r.columns {
            if t.column_index(&c.name).is_none() {
                return Err(Error::invalid(format!(
                    "resource `{}`: column `{}` is not produced by the embedded generator",
                    r.table, c.name
                )));
            }
        }
        let names: Vec<String> = t
            .columns
            .iter()
            .map(|col| match r.column(col) {
                Some(c) => c.source.clone(),
                None => pascal_case(col),
            })
            .collect();
        let cursor_name = r
            .cursor_column()
            .map(|c| c.name.as_str())
            .unwrap_or("modified_date");
        let cursor_col = t.column_index(cursor_name).ok_or_else(|| {
            Error::invalid(format!(
                "resource `{}`: cursor column `{cursor_name}` is not produced by the embedded generator",
                r.table
            ))
        })?;
        let key_cols = t.def.key.iter().filter_map(|k| t.column_index(k)).collect();
        served.push(Served {
            api_path: r.api_path.clone(),
            entity_set: r.entity_set().to_string(),
            cursor_field: r.cursor_field.clone(),
            table: t.def.table.to_string(),
            names,
            cursor_col,
            key_cols,
        });
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .ctx(ErrorKind::Source, || {
            format!("cannot bind the embedded OData server to {}", options.addr)
        })?;
    let addr = listener.local_addr().ctx(ErrorKind::Source, || {
        "cannot read the bound address".to_string()
    })?;
    let shared = Arc::new(Shared {
        served,
        page_size: options.page_size,
        bound: addr,
        data: Mutex::new(Data {
            generator,
            sorted: HashMap::new(),
        }),
        faults: FaultInjector::default(),
        requests: Mutex::new(HashMap::new()),
        metadata: crate::extract::metadata::csdl(config),
    });
    let app = Router::new()
        .route("/", get(service_document))
        .route("/$metadata", get(metadata_document))
        .route("/{entity}", get(entity_set))
        .fallback(not_found)
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(ServerHandle {
        addr,
        base_url: format!("http://{addr}"),
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the base URL to give the extractor.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The day currently served.
    pub fn day(&self) -> u32 {
        lock(&self.shared.data).generator.day()
    }

    /// Serve `day` from now on (forward: simulate the missing days;
    /// backward: rebuild). Pages of an extraction in progress become stale
    /// (their next links answer 410).
    pub fn set_day(&self, day: u32) -> Result<()> {
        let mut data = lock(&self.shared.data);
        data.generator.advance_to(day)?;
        data.sorted.clear();
        Ok(())
    }

    /// Read the served data (e.g. row counts or day deltas in tests).
    pub fn with_generator<R>(&self, f: impl FnOnce(&Generator) -> R) -> R {
        f(&lock(&self.shared.data).generator)
    }

    /// Injected failures.
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }

    /// Requests received for the resource at `api_path` (including failed ones).
    pub fn request_count(&self, api_path: &str) -> usize {
        lock(&self.shared.requests)
            .get(api_path)
            .copied()
            .unwrap_or(0)
    }

    /// Stop accepting requests and wait for the server task to end.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Internal,
                        format!("embedded server task failed: {e}"),
                    )
                })?
                .ctx(ErrorKind::Source, || "embedded server failed".to_string())?;
        }
        // The served data set is millions of small allocations; freeing it
        // takes a noticeable fraction of a second at scale 1. The server task
        // is done, so this is the last reference: free it off the caller's
        // path (the caller goes on to build models), on a thread of the
        // lowest priority, so it uses cores the caller leaves idle rather
        // than competing with it.
        let shared = Arc::clone(&self.shared);
        drop(self);
        std::thread::Builder::new()
            .name("lakehouse-source-drop".into())
            .spawn(move || {
                #[cfg(target_os = "linux")]
                // SAFETY: setpriority has no memory-safety preconditions; on
                // Linux, PRIO_PROCESS with who = 0 applies to the calling
                // thread only. Failing to lower the priority is harmless.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                }
                drop(shared)
            })
            .map_err(|e| Error::internal(format!("cannot spawn a thread: {e}")))?;
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `SalesOrderId` from `sales_order_id` (used for unconfigured columns).
pub fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn odata_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

async fn not_found() -> Response {
    odata_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such resource".to_string(),
    )
}

async fn service_document(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let base = base_of(&headers, shared.bound);
    let sets: Vec<Value> = shared
        .served
        .iter()
        .map(
            |s| serde_json::json!({"name": s.entity_set, "kind": "EntitySet", "url": s.entity_set}),
        )
        .collect();
    axum::Json(serde_json::json!({"@odata.context": format!("{base}/$metadata"), "value": sets}))
        .into_response()
}

async fn metadata_document(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml")],
        shared.metadata.clone(),
    )
        .into_response()
}

fn base_of(headers: &HeaderMap, bound: SocketAddr) -> String {
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => format!("http://{bound}"),
    }
}

/// A `$filter` on the cursor: operator and literal (UTC micros).
type Filter = (Op, i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl Op {
    /// Whether `value <op> literal`.
    fn holds(self, value: i64, literal: i64) -> bool {
        match self {
            Op::Ge => value >= literal,
            Op::Gt => value > literal,
            Op::Le => value <= literal,
            Op::Lt => value < literal,
            Op::Eq => value == literal,
        }
    }
}

/// Parse `<field> <op> <literal>`; the literal becomes UTC micros.
fn parse_filter(filter: &str, cursor_field: &str) -> std::result::Result<Filter, String> {
    let parts: Vec<&str> = filter.split_whitespace().collect();
    let [field, op, literal] = parts.as_slice() else {
        return Err(format!(
            "unsupported $filter `{filter}`: expected `{cursor_field} ge <date>`"
        ));
    };
    if *field != cursor_field {
        return Err(format!(
            "unsupported $filter field `{field}`: only `{cursor_field}` can be filtered"
        ));
    }
    let op = match *op {
        "ge" => Op::Ge,
        "gt" => Op::Gt,
        "le" => Op::Le,
        "lt" => Op::Lt,
        "eq" => Op::Eq,
        other => return Err(format!("unsupported $filter operator `{other}`")),
    };
    let literal = literal.trim_matches('\'');
    let micros = parse_instant(literal)
        .ok_or_else(|| format!("invalid date or date-time literal `{literal}` in $filter"))?;
    Ok((op, micros))
}

/// A cursor value as UTC micros: a date or timestamp cell directly, text by
/// parsing it as a date or RFC 3339 date-time; anything else has no instant.
fn cursor_micros(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Date(d) | Cell::Timestamp(d) => Some(
            d.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_micros(),
        ),
        _ => cell.as_str().and_then(parse_instant),
    }
}

/// A date (midnight UTC) or an RFC 3339 date-time, as UTC micros.
fn parse_instant(s: &str) -> Option<i64> {
    crate::extract::schema::parse_instant(s).map(|t| t.timestamp_micros())
}

/// The rows of `table` that pass `filter` (all rows without one), ordered
/// by (cursor, key). A NULL cursor sorts first and passes no filter.
///
/// One pass over the table's chunks (a spilled chunk is decoded once)
/// takes each selected row's cursor and key cells; the sort then needs no
/// row reads. Ties on the whole key keep row order.
fn sorted_rows(table: &TableData, served: &Served, filter: Option<Filter>) -> Result<SortedRows> {
    let width = table.columns.len().max(1);
    let nk = served.key_cols.len();
    let mut selected: SortedRows = Vec::new();
    let mut keys: Vec<Cell> = Vec::new();
    let mut first = 0usize;
    for chunk in table.chunks() {
        let chunk = chunk?;
        for (j, r) in chunk.chunks_exact(width).enumerate() {
            let cursor = cursor_micros(&r[served.cursor_col]);
            let pass = match filter {
                None => true,
                Some((op, lit)) => cursor.is_some_and(|c| op.holds(c, lit)),
            };
            if pass {
                selected.push((cursor, first + j));
                keys.extend(served.key_cols.iter().map(|&k| r[k].clone()));
            }
        }
        first += chunk.len() / width;
    }
    let mut order: Vec<usize> = (0..selected.len()).collect();
    order.sort_by(|&a, &b| {
        selected[a].0.cmp(&selected[b].0).then_with(|| {
            let (ka, kb) = (&keys[a * nk..(a + 1) * nk], &keys[b * nk..(b + 1) * nk]);
            ka.iter()
                .zip(kb)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    Ok(order.into_iter().map(|i| selected[i]).collect())
}

struct RowSer<'a> {
    names: &'a [String],
    values: &'a [Cell],
}

impl Serialize for RowSer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.names.len()))?;
        for (n, v) in self.names.iter().zip(self.values) {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

/// A page's rows, read beforehand ([`TableData::rows_at`]: each chunk
/// once, in page order).
struct RowsSer<'a> {
    names: &'a [String],
    rows: Vec<std::borrow::Cow<'a, [Cell]>>,
}

impl Serialize for RowsSer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for values in &self.rows {
            seq.serialize_element(&RowSer {
                names: self.names,
                values,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    value: RowsSer<'a>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

async fn entity_set(
    State(shared): State<Arc<Shared>>,
    Path(entity): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let api_path = format!("/{entity}");
    let Some(served) = shared.served.iter().find(|s| s.api_path == api_path) else {
        return odata_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("resource `{api_path}` not found"),
        );
    };
    *lock(&shared.requests).entry(api_path.clone()).or_default() += 1;
    match shared.faults.next(&api_path) {
        FaultAction::None => {}
        FaultAction::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return odata_error(
                status,
                "InjectedFault",
                format!("injected failure for `{api_path}`"),
            );
        }
        FaultAction::Delay(d) => tokio::time::sleep(d).await,
        FaultAction::Empty => {
            let mut resp = br#"{"value":[]}"#.to_vec().into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; odata.metadata=minimal"),
            );
            return resp;
        }
    }
    let base = base_of(&headers, shared.bound);
    match respond(&shared, served, query.as_deref().unwrap_or(""), &base) {
        Ok(body) => {
            let mut resp = body.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; odata.metadata=minimal"),
            );
            resp
        }
        Err((status, message)) => {
            let code = match status {
                StatusCode::GONE => "Gone",
                StatusCode::CONFLICT => "Conflict",
                StatusCode::INTERNAL_SERVER_ERROR => "InternalError",
                _ => "BadRequest",
            };
            odata_error(status, code, message)
        }
    }
}

fn respond(
    shared: &Shared,
    served: &Served,
    query: &str,
    base: &str,
) -> std::result::Result<Vec<u8>, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let mut filter = None;
    let mut top: Option<usize> = None;
    let mut skip = 0usize;
    let mut count = false;
    let mut token: Option<(u32, usize)> = None;
    let mut passthrough: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "$filter" => filter = Some(parse_filter(&v, &served.cursor_field).map_err(bad)?),
            "$orderby" => {
                let ok = v.split_whitespace().collect::<Vec<_>>() == [served.cursor_field.as_str()]
                    || v.split_whitespace().collect::<Vec<_>>()
                        == [served.cursor_field.as_str(), "asc"];
                if !ok {
                    return Err(bad(format!(
                        "unsupported $orderby `{v}`: only `{}` ascending",
                        served.cursor_field
                    )));
                }
            }
            "$top" => top = Some(v.parse().map_err(|_| bad(format!("invalid $top `{v}`")))?),
            "$skip" => skip = v.parse().map_err(|_| bad(format!("invalid $skip `{v}`")))?,
            "$count" => {
                count = match v.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(format!("invalid $count `{v}`"))),
                }
            }
            "$skiptoken" => {
                let parsed = v
                    .split_once('-')
                    .and_then(|(d, o)| Some((d.parse().ok()?, o.parse().ok()?)));
                token = Some(parsed.ok_or_else(|| bad(format!("invalid $skiptoken `{v}`")))?);
                continue;
            }
            "$format" => {}
            other if other.starts_with('$') => {
                return Err(bad(format!("unsupported query option `{other}`")));
            }
            _ => {}
        }
        passthrough.push((k.into_owned(), v.into_owned()));
    }
    let mut data = lock(&shared.data);
    let Data { generator, sorted } = &mut *data;
    let day = generator.day();
    let Some(table) = generator.table(&served.table) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("resource `{}` not found", served.api_path),
        ));
    };
    if let Some(horizon) = table.horizon() {
        let from = horizon
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros();
        let within = matches!(filter, Some((Op::Ge | Op::Gt | Op::Eq, at)) if at >= from);
        if !within {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "resource `{}`: this embedded source serves an incremental run and holds only rows modified on or after {horizon}; ask with `$filter={} ge {horizon}` or later",
                    served.api_path, served.cursor_field
                ),
            ));
        }
    }
    // Only the rows a filter selects are sorted (an incremental request
    // reads a few rows of a large table); each (table, filter) once per day.
    let internal = |e: Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    let sorted = match sorted.entry((served.table.clone(), filter)) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(sorted_rows(table, served, filter).map_err(internal)?)
        }
    };
    let matching = &sorted[..];
    let end = top
        .map_or(matching.len(), |t| skip.saturating_add(t))
        .min(matching.len());
    let start = match token {
        Some((token_day, _)) if token_day != day => {
            return Err((
                StatusCode::GONE,
                format!("next link of day {token_day} is stale: day {day} is now served; restart the extraction"),
            ));
        }
        Some((_, offset)) => offset,
        None => skip,
    }
    .min(end);
    let page_end = start.saturating_add(shared.page_size).min(end);
    let next_link = (page_end < end).then(|| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &passthrough {
            ser.append_pair(k, v);
        }
        ser.append_pair("$skiptoken", &format!("{day}-{page_end}"));
        format!("{base}{}?{}", served.api_path, ser.finish())
    });
    let body = Body {
        context: format!("{base}/$metadata#{}", served.entity_set),
        count: count.then_some(matching.len()),
        value: RowsSer {
            names: &served.names,
            rows: table
                .rows_at(
                    &matching[start..page_end]
                        .iter()
                        .map(|&(_, r)| r)
                        .collect::<Vec<_>>(),
                )
                .map_err(internal)?,
        },
        next_link,
    };
    serde_json::to_vec(&body).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode page: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("ModifiedDate ge 1970-01-01", "ModifiedDate"),
            Ok((Op::Ge, 0))
        );
        assert_eq!(
            parse_filter("ModifiedDate gt 2014-07-01T00:00:00Z", "ModifiedDate"),
            Ok((Op::Gt, 1_404_172_800_000_000))
        );
        assert!(parse_filter("Name ge 2014-07-01", "ModifiedDate").is_err());
        assert!(parse_filter("ModifiedDate ge yesterday", "ModifiedDate").is_err());
        assert!(parse_filter("ModifiedDate ne 2014-07-01", "ModifiedDate").is_err());
    }

    #[test]
    fn pascal_names() {
        assert_eq!(pascal_case("sales_order_id"), "SalesOrderId");
        assert_eq!(pascal_case("address_line2"), "AddressLine2");
    }
}
