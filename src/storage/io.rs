//! Iceberg's file IO over `object_store`: one code path for local disk and S3.
//!
//! iceberg 0.10 lets a catalog plug in its own [`Storage`]. Ours resolves the
//! full location URLs found in Iceberg metadata (`file:///...`, `s3://...`)
//! against the warehouse root and forwards to the warehouse's object store.
//! Writes are buffered and become visible only when closed (local: a temp
//! file renamed into place; S3: a single or multipart upload completed on
//! close), so a killed writer never leaves a half-written file under its
//! final name.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use object_store::buffered::BufWriter;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::location::WarehouseUrl;

fn io_err(e: impl std::error::Error + Send + Sync + 'static, what: String) -> iceberg::Error {
    let kind = if what.contains("not found") {
        iceberg::ErrorKind::DataInvalid
    } else {
        iceberg::ErrorKind::Unexpected
    };
    iceberg::Error::new(kind, what).with_source(e)
}

/// An Iceberg [`Storage`] backed by the warehouse's object store.
///
/// Serialises as the warehouse URL; deserialising rebuilds the store from the
/// same URL and the process environment (a local one with the default
/// [`super::LocalReads`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "StorageSpec", try_from = "StorageSpec")]
pub struct ObjectStorage {
    url: WarehouseUrl,
    store: Arc<dyn ObjectStore>,
}

#[derive(Serialize, Deserialize)]
struct StorageSpec {
    root: String,
}

impl From<ObjectStorage> for StorageSpec {
    fn from(s: ObjectStorage) -> Self {
        StorageSpec {
            root: s.url.root_url(),
        }
    }
}

impl TryFrom<StorageSpec> for ObjectStorage {
    type Error = crate::Error;
    fn try_from(spec: StorageSpec) -> crate::Result<Self> {
        let url = WarehouseUrl::parse(&spec.root)?;
        let store = url.build_store()?;
        Ok(ObjectStorage { url, store })
    }
}

impl ObjectStorage {
    /// Storage over `store`, rooted at `url`.
    pub fn new(url: WarehouseUrl, store: Arc<dyn ObjectStore>) -> Self {
        Self { url, store }
    }

    /// A [`FileIO`] that uses this storage.
    pub fn file_io(&self) -> FileIO {
        FileIOBuilder::new(Arc::new(ObjectStorageFactory {
            storage: self.clone(),
            built: Arc::new(OnceLock::new()),
        }))
        .build()
    }

    fn path(&self, location: &str) -> iceberg::Result<object_store::path::Path> {
        self.url
            .location_to_path(location)
            .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("{e:#}")))
    }
}

/// Factory handing out one shared [`ObjectStorage`].
#[derive(Debug, Serialize, Deserialize)]
struct ObjectStorageFactory {
    storage: ObjectStorage,
    #[serde(skip)]
    built: Arc<OnceLock<Arc<dyn Storage>>>,
}

#[typetag::serde(name = "lakehouse-object-store")]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(self
            .built
            .get_or_init(|| Arc::new(self.storage.clone()))
            .clone())
    }
}

struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
}

#[async_trait]
impl FileRead for StoreReader {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|e| io_err(e, format!("cannot read {}", self.path)))
    }
}

struct StoreWriter {
    inner: Option<BufWriter>,
    path: object_store::path::Path,
}

#[async_trait]
impl FileWrite for StoreWriter {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        let w = self.inner.as_mut().ok_or_else(|| {
            iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("{} is closed", self.path),
            )
        })?;
        w.put(bs)
            .await
            .map_err(|e| io_err(e, format!("cannot write {}", self.path)))
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        let mut w = self.inner.take().ok_or_else(|| {
            iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("{} is already closed", self.path),
            )
        })?;
        w.shutdown()
            .await
            .map_err(|e| io_err(e, format!("cannot finish writing {}", self.path)))
    }
}

#[async_trait]
#[typetag::serde(name = "lakehouse-object-storage")]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        match self.store.head(&self.path(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_err(e, format!("cannot stat {path}"))),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let meta = self
            .store
            .head(&self.path(path)?)
            .await
            .map_err(|e| io_err(e, format!("cannot stat {path}")))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let got = self
            .store
            .get(&self.path(path)?)
            .await
            .map_err(|e| io_err(e, format!("cannot read {path}")))?;
        got.bytes()
            .await
            .map_err(|e| io_err(e, format!("cannot read {path}")))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        Ok(Box::new(StoreReader {
            store: self.store.clone(),
            path: self.path(path)?,
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        self.store
            .put(&self.path(path)?, bs.into())
            .await
            .map_err(|e| io_err(e, format!("cannot write {path}")))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        let p = self.path(path)?;
        Ok(Box::new(StoreWriter {
            inner: Some(BufWriter::new(self.store.clone(), p.clone())),
            path: p,
        }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        match self.store.delete(&self.path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_err(e, format!("cannot delete {path}"))),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let prefix = self.path(path)?;
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| io_err(e, format!("cannot list {path}")))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_err(e, format!("cannot delete {}", meta.location))),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(p) = paths.next().await {
            Storage::delete(self, &p).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}
