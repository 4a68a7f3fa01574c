//! A serverless Iceberg catalog whose table pointers live in the warehouse.
//!
//! Layout (any Iceberg reader can open a table from its newest metadata file):
//!
//! ```text
//! <warehouse>/<namespace>/<table>/metadata/v<N>.metadata.json   table state, N = 1, 2, ...
//! <warehouse>/<namespace>/<table>/metadata/version-hint.text    N of the newest version (a hint)
//! <warehouse>/<namespace>/<table>/metadata/*.avro               manifests and manifest lists
//! <warehouse>/<namespace>/<table>/data/*.parquet                data files (LZ4)
//! ```
//!
//! Invariants:
//! - Version N+1 is written with a **create-only put** (local: create-new,
//!   S3: `If-None-Match: *`). Of two writers racing from version N exactly one
//!   wins; the loser gets [`ErrorKind::CommitConflict`], re-reads and retries.
//!   So the version files form a linear history and a table's state is the
//!   highest version present.
//! - Everything a commit references (data files, manifests, manifest list) is
//!   written *before* its metadata file. A writer killed before that put leaves
//!   only unreferenced files behind, which no reader ever sees.
//! - `version-hint.text` is written after a successful commit and is only a
//!   hint: loading probes forward from it (and falls back to listing), so a
//!   stale or missing hint never hides a newer version.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::Schema as ArrowSchema;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::FileIO;
use iceberg::spec::{FormatVersion, Schema, TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::cache::FileCache;
use super::io::ObjectStorage;
use super::location::{LocalReads, WarehouseUrl};
use super::schema::iceberg_schema_from_arrow;
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// Table metadata reads in flight at once when listing or loading many tables.
const CONCURRENT_LOADS: usize = 16;

/// `find` on each table directory, [`CONCURRENT_LOADS`] at a time (each is
/// a few round trips on object storage), keeping what was found, in the
/// order of `dirs`.
async fn found_in_turn<T, Fut>(
    dirs: Vec<TableName>,
    find: impl Fn(TableName) -> Fut,
) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    futures::stream::iter(dirs)
        .map(find)
        .buffered(CONCURRENT_LOADS)
        .try_filter_map(|t| async move { Ok(t) })
        .try_collect()
        .await
}

/// A table's name: `<namespace>.<table>`, both lower-case identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub namespace: String,
    pub name: String,
}

impl TableName {
    /// A validated table name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let t = TableName {
            namespace: namespace.into(),
            name: name.into(),
        };
        for (what, part) in [("namespace", &t.namespace), ("table", &t.name)] {
            let ok = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(Error::invalid(format!(
                    "{what} name '{part}' is invalid: use lower-case letters, digits and '_'"
                )));
            }
        }
        Ok(t)
    }

    /// Parse `namespace.table`.
    pub fn parse(s: &str) -> Result<Self> {
        let (ns, name) = s.split_once('.').ok_or_else(|| {
            Error::invalid(format!(
                "table name '{s}' must be written <namespace>.<table>"
            ))
        })?;
        Self::new(ns, name)
    }

    /// The table's directory below the warehouse root.
    pub fn dir(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn ident(&self) -> TableIdent {
        TableIdent::new(
            NamespaceIdent::new(self.namespace.clone()),
            self.name.clone(),
        )
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

/// A table as loaded at one metadata version.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub name: TableName,
    /// The metadata version N (`v<N>.metadata.json`).
    pub version: u64,
    /// The iceberg table (metadata, file IO) at that version.
    pub table: Table,
}

impl LoadedTable {
    /// The table metadata.
    pub fn metadata(&self) -> &TableMetadata {
        self.table.metadata()
    }
}

/// The warehouse: object store, file IO, and the catalog operations.
#[derive(Debug, Clone)]
pub struct Warehouse {
    url: WarehouseUrl,
    store: Arc<dyn ObjectStore>,
    file_io: FileIO,
    /// Parsed metadata and manifests, shared by clones.
    cache: Arc<FileCache>,
    /// Size data files roll over at, unless a write sets its own
    /// (`None`: [`super::sink::DEFAULT_TARGET_FILE_SIZE`]).
    target_file_size: Option<usize>,
}

const METADATA_DIR: &str = "metadata";
pub(crate) const VERSION_HINT: &str = "version-hint.text";

fn metadata_file_name(version: u64) -> String {
    format!("v{version}.metadata.json")
}

pub(crate) fn parse_metadata_version(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix('v')?
        .strip_suffix(".metadata.json")?
        .parse()
        .ok()
}

impl Warehouse {
    /// Open (and for local paths, create) the warehouse at `location`.
    pub fn open(location: &str) -> Result<Self> {
        let url = WarehouseUrl::parse(location)?;
        let store = url.build_store()?;
        Ok(Self::with_store(url, store))
    }

    /// Open the warehouse at `location` with S3 settings overriding the
    /// environment (see [`WarehouseUrl::build_store_with`]).
    pub fn open_with(location: &str, s3_options: &[(String, String)]) -> Result<Self> {
        Self::open_reading(location, s3_options, LocalReads::default())
    }

    /// [`Warehouse::open_with`], a local warehouse's files read as `reads`
    /// says.
    pub fn open_reading(
        location: &str,
        s3_options: &[(String, String)],
        reads: LocalReads,
    ) -> Result<Self> {
        let url = WarehouseUrl::parse(location)?;
        let store = url.build_store_with(s3_options, reads)?;
        Ok(Self::with_store(url, store))
    }

    /// A warehouse over an already-built store (tests, custom stores).
    pub fn with_store(url: WarehouseUrl, store: Arc<dyn ObjectStore>) -> Self {
        let file_io = ObjectStorage::new(url.clone(), store.clone()).file_io();
        Self {
            cache: Arc::new(FileCache::new(file_io.clone())),
            url,
            store,
            file_io,
            target_file_size: None,
        }
    }

    /// Data files of this warehouse's writes roll over past `bytes`
    /// (unless a write sets its own size).
    pub fn with_target_file_size(mut self, bytes: usize) -> Self {
        self.target_file_size = Some(bytes.max(1));
        self
    }

    /// The size data files roll over at (see [`Warehouse::with_target_file_size`]).
    pub fn target_file_size(&self) -> usize {
        self.target_file_size
            .unwrap_or(super::sink::DEFAULT_TARGET_FILE_SIZE)
    }

    /// The caches of parsed metadata and manifests.
    pub(crate) fn cache(&self) -> &FileCache {
        &self.cache
    }

    /// The warehouse location.
    pub fn url(&self) -> &WarehouseUrl {
        &self.url
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Iceberg file IO over the store.
    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// Full location URL of a table.
    pub fn table_location(&self, name: &TableName) -> String {
        format!("{}/{}", self.url.root_url(), name.dir())
    }

    fn metadata_path(&self, name: &TableName, file: &str) -> object_store::path::Path {
        self.url
            .store_path(&format!("{}/{METADATA_DIR}/{file}", name.dir()))
    }

    /// Directories one level under `prefix` (the root when `None`) whose
    /// names are valid identifiers.
    async fn child_dirs(&self, prefix: Option<&object_store::path::Path>) -> Result<Vec<String>> {
        let listing = self.store.list_with_delimiter(prefix).await.ctx(
            ErrorKind::Storage,
            || match prefix {
                Some(p) => format!("cannot list {p}"),
                None => format!("cannot list {}", self.url.root_url()),
            },
        )?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter(|n| TableName::new(*n, "x").is_ok())
            .map(str::to_string)
            .collect())
    }

    /// Table directories in `namespace` (or in every namespace), sorted:
    /// names that may be tables. A directory is a table once it has a
    /// metadata version.
    async fn table_dirs(&self, namespace: Option<&str>) -> Result<Vec<TableName>> {
        let namespaces = match namespace {
            Some(ns) => vec![ns.to_string()],
            None => {
                let root = self.url.store_path("");
                let root = (!root.as_ref().is_empty()).then_some(root);
                self.child_dirs(root.as_ref()).await?
            }
        };
        let mut out = Vec::new();
        for ns in namespaces {
            let prefix = self.url.store_path(&ns);
            for t in self.child_dirs(Some(&prefix)).await? {
                out.push(TableName::new(ns.clone(), t)?);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Namespaces that hold at least one table, sorted.
    pub async fn list_namespaces(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list_all_tables()
            .await?
            .into_iter()
            .map(|t| t.namespace)
            .collect();
        out.dedup();
        Ok(out)
    }

    /// Tables in `namespace`, sorted.
    pub async fn list_tables(&self, namespace: &str) -> Result<Vec<TableName>> {
        self.existing(self.table_dirs(Some(namespace)).await?).await
    }

    /// Every table of the warehouse, sorted.
    pub async fn list_all_tables(&self) -> Result<Vec<TableName>> {
        self.existing(self.table_dirs(None).await?).await
    }

    /// The tables among `dirs`, in their order.
    async fn existing(&self, dirs: Vec<TableName>) -> Result<Vec<TableName>> {
        found_in_turn(dirs, |t| async move {
            Ok(self.latest_version(&t).await?.map(|_| t))
        })
        .await
    }

    /// Every table for which `keep` holds, loaded at its newest version,
    /// sorted by name.
    pub async fn load_all_tables(
        &self,
        keep: impl Fn(&TableName) -> bool,
    ) -> Result<Vec<LoadedTable>> {
        let mut dirs = self.table_dirs(None).await?;
        dirs.retain(|t| keep(t));
        found_in_turn(dirs, |t| async move { self.try_load_table(&t).await }).await
    }

    async fn exists(&self, path: &object_store::path::Path) -> Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::from(e).context(format!("cannot stat {path}"))),
        }
    }

    /// The newest metadata version of a table, or `None` if it does not exist.
    pub async fn latest_version(&self, name: &TableName) -> Result<Option<u64>> {
        let hint = match self
            .store
            .get(&self.metadata_path(name, VERSION_HINT))
            .await
        {
            Ok(got) => got
                .bytes()
                .await
                .ok()
                .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => {
                return Err(Error::from(e).context(format!("cannot read version hint of {name}")));
            }
        };
        if let Some(mut v) = hint
            && self
                .exists(&self.metadata_path(name, &metadata_file_name(v)))
                .await?
        {
            while self
                .exists(&self.metadata_path(name, &metadata_file_name(v + 1)))
                .await?
            {
                v += 1;
            }
            return Ok(Some(v));
        }
        // No usable hint: list the metadata directory.
        let prefix = self
            .url
            .store_path(&format!("{}/{METADATA_DIR}", name.dir()));
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .ctx(ErrorKind::Storage, || {
                format!("cannot list metadata of {name}")
            })?;
        Ok(metas
            .iter()
            .filter_map(|m| parse_metadata_version(m.location.filename()?))
            .max())
    }

    /// Load a table at its newest version.
    pub async fn load_table(&self, name: &TableName) -> Result<LoadedTable> {
        let version = self
            .latest_version(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("table {name} does not exist")))?;
        self.load_version(name, version).await
    }

    /// Load a table if it exists.
    pub async fn try_load_table(&self, name: &TableName) -> Result<Option<LoadedTable>> {
        match self.latest_version(name).await? {
            Some(v) => Ok(Some(self.load_version(name, v).await?)),
            None => Ok(None),
        }
    }

    /// Load a table at metadata version `version`.
    pub async fn load_version(&self, name: &TableName, version: u64) -> Result<LoadedTable> {
        let file = metadata_file_name(version);
        let path = self.metadata_path(name, &file);
        let location = format!("{}/{METADATA_DIR}/{file}", self.table_location(name));
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(|e| Error::from(e).context(format!("cannot read metadata file {location}")))?
            .bytes()
            .await
            .map_err(|e| Error::from(e).context(format!("cannot read metadata file {location}")))?;
        let table = self.table_from_metadata(name, location, bytes)?;
        Ok(LoadedTable {
            name: name.clone(),
            version,
            table,
        })
    }

    /// The table `name` whose metadata file at `location` holds `bytes`
    /// (parsed once per location and content, then shared), reading its
    /// files through this warehouse.
    pub fn table_from_metadata(
        &self,
        name: &TableName,
        location: String,
        bytes: bytes::Bytes,
    ) -> Result<Table> {
        if let Some(table) = self.cache.table(&location, &bytes) {
            return Ok(table);
        }
        let metadata: TableMetadata = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("metadata file {location} of table {name} is corrupt: {e}"),
            )
        })?;
        let table = Table::builder()
            .identifier(name.ident())
            .metadata(metadata)
            .metadata_location(location.clone())
            .file_io(self.file_io.clone())
            .object_cache(self.cache.objects())
            .runtime(iceberg::Runtime::try_current()?)
            .build()?;
        self.cache.put_table(location, bytes, table.clone());
        Ok(table)
    }

    /// Create a table with `schema` (format v2, unpartitioned). Fails with
    /// [`ErrorKind::AlreadyExists`] if it exists.
    pub async fn create_table(
        &self,
        name: &TableName,
        schema: &ArrowSchema,
    ) -> Result<LoadedTable> {
        let iceberg_schema = iceberg_schema_from_arrow(schema, None)
            .map_err(|e| e.context(format!("table {name}")))?;
        self.create_table_with_schema(name, iceberg_schema).await
    }

    async fn create_table_with_schema(
        &self,
        name: &TableName,
        schema: Schema,
    ) -> Result<LoadedTable> {
        let creation = TableCreation::builder()
            .name(name.name.clone())
            .location(self.table_location(name))
            .schema(schema)
            .format_version(FormatVersion::V2)
            .properties([
                ("write.format.default".to_string(), "parquet".to_string()),
                (
                    "write.parquet.compression-codec".to_string(),
                    "lz4".to_string(),
                ),
            ])
            .build();
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        if self.latest_version(name).await?.is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("table {name} already exists"),
            ));
        }
        match self.put_metadata(name, 1, &metadata).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::CommitConflict => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("table {name} already exists"),
                ));
            }
            Err(e) => return Err(e),
        }
        self.load_version(name, 1).await
    }

    /// Load a table, creating it with `schema` if it does not exist.
    pub async fn load_or_create(
        &self,
        name: &TableName,
        schema: &ArrowSchema,
    ) -> Result<LoadedTable> {
        loop {
            if let Some(t) = self.try_load_table(name).await? {
                return Ok(t);
            }
            match self.create_table(name, schema).await {
                Ok(t) => return Ok(t),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Atomically publish `metadata` as version `version` of the table. Fails
    /// with [`ErrorKind::CommitConflict`] if that version already exists.
    pub(crate) async fn put_metadata(
        &self,
        name: &TableName,
        version: u64,
        metadata: &TableMetadata,
    ) -> Result<()> {
        let json = serde_json::to_vec_pretty(metadata).ctx(ErrorKind::Internal, || {
            format!("cannot serialise metadata of {name}")
        })?;
        let path = self.metadata_path(name, &metadata_file_name(version));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(Bytes::from(json)), opts)
            .await
        {
            Ok(_) => {}
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                return Err(Error::new(
                    ErrorKind::CommitConflict,
                    format!("table {name}: version {version} was committed by another writer"),
                ));
            }
            Err(e) => {
                return Err(
                    Error::from(e).context(format!("cannot write metadata v{version} of {name}"))
                );
            }
        }
        // Best effort: the hint only speeds up loading.
        let _ = self
            .store
            .put(
                &self.metadata_path(name, VERSION_HINT),
                PutPayload::from(Bytes::from(version.to_string())),
            )
            .await;
        Ok(())
    }

    /// The location URL of version `version`'s metadata file.
    pub fn metadata_location(&self, name: &TableName, version: u64) -> String {
        format!(
            "{}/{METADATA_DIR}/{}",
            self.table_location(name),
            metadata_file_name(version)
        )
    }

    /// Drop a table: delete every file under its directory.
    pub async fn drop_table(&self, name: &TableName) -> Result<()> {
        if self.latest_version(name).await?.is_none() {
            return Err(Error::not_found(format!("table {name} does not exist")));
        }
        let prefix = self.url.store_path(&name.dir());
        let files: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .ctx(ErrorKind::Storage, || {
                format!("cannot list files of {name}")
            })?;
        // Delete the hint, then metadata newest first, so the table disappears before its data.
        let mut paths: Vec<_> = files.into_iter().map(|m| m.location).collect();
        paths.sort_by_key(|p| {
            let f = p.filename().unwrap_or("");
            (
                f != VERSION_HINT,
                std::cmp::Reverse(parse_metadata_version(f).unwrap_or(0)),
            )
        });
        for p in paths {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::from(e).context(format!("cannot delete {p}"))),
            }
        }
        Ok(())
    }
}
