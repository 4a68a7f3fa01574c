//! A local warehouse's object store: `object_store`'s [`LocalFileSystem`]
//! with plain reads done in place (the tuning `direct-local-reads`, see
//! [`crate::tuning`]; [`super::LocalReads::Direct`] picks this store).
//!
//! `LocalFileSystem` runs every call on tokio's blocking pool, and a read is
//! two hand-offs (open and stat, then read), each waking a pool thread. A run
//! reads thousands of small ranges (Parquet footers, page indexes and column
//! chunks, Avro manifests, metadata JSON), almost always from the page cache.
//! Here a plain read (the whole file or one range, with or without its data)
//! is an `open`, `fstat`, `lseek` and `read` on the calling thread. What the
//! hand-offs cost: `docs/benchmarks.md`, *Why the tunings exist*.
//!
//! # Invariants
//! - Everything else goes to `LocalFileSystem` unchanged: writes (a temp
//!   file renamed into place on completion), conditional creates, listings,
//!   copies, renames, deletes, and reads with conditions or a version.
//! - A read in place gives what `LocalFileSystem` gives: the same file (its
//!   `path_to_filesystem`), the same metadata (size, modification time, and
//!   its e-tag scheme), `NotFound` for a missing file or a directory, and an
//!   error for a range that starts past the end (a range that ends past the
//!   end is cut at the end, as `GetRange` specifies).
//! - A read blocks its worker thread for one system call per step: meant for
//!   local disks, whose reads take microseconds from the page cache.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

const STORE: &str = "LocalFileSystem";

/// [`LocalFileSystem`] whose plain reads run on the calling thread.
#[derive(Debug)]
pub struct InPlaceReads {
    inner: LocalFileSystem,
}

impl InPlaceReads {
    /// Reads in place over `inner`.
    pub fn new(inner: LocalFileSystem) -> Self {
        Self { inner }
    }
}

impl fmt::Display for InPlaceReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InPlaceReads({})", self.inner)
    }
}

fn generic(source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(source),
    }
}

fn open(path: &FsPath) -> Result<(File, Metadata)> {
    let missing = |source: std::io::Error| object_store::Error::NotFound {
        path: path.display().to_string(),
        source: Box::new(source),
    };
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(e),
        _ => generic(e),
    })?;
    let meta = file.metadata().map_err(generic)?;
    if meta.is_dir() {
        return Err(missing(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "is a directory",
        )));
    }
    Ok((file, meta))
}

/// The file's inode, part of `LocalFileSystem`'s e-tag (0 where there is
/// none, as there).
#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &Metadata) -> u64 {
    0
}

/// The metadata `LocalFileSystem` reports for a file.
fn object_meta(location: &Path, meta: &Metadata) -> ObjectMeta {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let micros = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    ObjectMeta {
        location: location.clone(),
        last_modified: modified.into(),
        size: meta.len(),
        e_tag: Some(format!("{:x}-{micros:x}-{:x}", inode(meta), meta.len())),
        version: None,
    }
}

fn read_range(file: &File, path: &FsPath, size: u64, range: &Range<u64>) -> Result<Bytes> {
    if range.start > range.end || range.end > size {
        return Err(generic(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "range {}..{} is outside {} ({size} bytes)",
                range.start,
                range.end,
                path.display()
            ),
        )));
    }
    // Read into spare capacity, not into `vec![0; n]`: jemalloc serves a
    // large zeroed allocation by giving dirty pages back to the OS and
    // faulting fresh ones in.
    let len = (range.end - range.start) as usize;
    let mut buf = Vec::with_capacity(len);
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(range.start))
        .and_then(|_| reader.take(len as u64).read_to_end(&mut buf))
        .map_err(generic)?;
    if buf.len() != len {
        return Err(generic(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} ended before {}", path.display(), range.end),
        )));
    }
    Ok(Bytes::from(buf))
}

/// Whether `options` ask for nothing but an optional range and `head`.
fn plain(options: &GetOptions) -> bool {
    options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
        && options.version.is_none()
}

impl InPlaceReads {
    fn file_path(&self, location: &Path) -> Result<PathBuf> {
        self.inner.path_to_filesystem(location)
    }
}

#[async_trait]
impl ObjectStore for InPlaceReads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if !plain(&options) {
            return self.inner.get_opts(location, options).await;
        }
        let path = self.file_path(location)?;
        let (file, meta) = open(&path)?;
        let size = meta.len();
        let range = match &options.range {
            Some(r) => r.as_range(size).map_err(|e| {
                generic(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{}: {e}", path.display()),
                ))
            })?,
            None => 0..size,
        };
        let data = if options.head {
            Bytes::new()
        } else {
            read_range(&file, &path, size, &range)?
        };
        let stream: BoxStream<'static, Result<Bytes>> =
            Box::pin(futures::stream::once(async move { Ok(data) }));
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta: object_meta(location, &meta),
            range,
            attributes: Attributes::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.file_path(location)?;
        let (file, meta) = open(&path)?;
        ranges
            .iter()
            .map(|r| read_range(&file, &path, meta.len(), r))
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::{GetRange, ObjectStoreExt};

    use super::*;

    fn ranged(range: GetRange) -> GetOptions {
        GetOptions {
            range: Some(range),
            ..GetOptions::default()
        }
    }

    /// Every kind of plain read gives what `LocalFileSystem` gives; the
    /// errors are of the same kind.
    #[tokio::test]
    async fn reads_in_place_equal_local_file_system_reads() {
        let dir = std::env::temp_dir().join(format!("in-place-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("d")).expect("dir");
        let local = || LocalFileSystem::new_with_prefix(&dir).expect("local");
        let store = InPlaceReads::new(local());
        let reference = local();
        let p = Path::from("d/f.bin");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        store
            .put(&p, PutPayload::from(data.clone()))
            .await
            .expect("put");

        let whole = store.get(&p).await.expect("get");
        let expected = reference.get(&p).await.expect("get");
        assert_eq!(whole.meta, expected.meta);
        assert_eq!(whole.range, 0..10_000);
        assert_eq!(
            whole.bytes().await.expect("bytes"),
            Bytes::from(data.clone())
        );

        let r = store.get_range(&p, 9_000..9_100).await.expect("range");
        assert_eq!(r, Bytes::from(data[9_000..9_100].to_vec()));
        assert_eq!(
            r,
            reference.get_range(&p, 9_000..9_100).await.expect("range")
        );
        let suffix = store
            .get_opts(&p, ranged(GetRange::Suffix(8)))
            .await
            .expect("suffix");
        assert_eq!(suffix.range, 9_992..10_000);
        assert_eq!(
            suffix.bytes().await.expect("bytes"),
            Bytes::from(data[9_992..].to_vec())
        );
        let ranges = store
            .get_ranges(&p, &[0..4, 5_000..5_010])
            .await
            .expect("ranges");
        assert_eq!(ranges[1], Bytes::from(data[5_000..5_010].to_vec()));

        let head = store.head(&p).await.expect("head");
        assert_eq!(head, reference.head(&p).await.expect("head"));
        assert_eq!(head.size, 10_000);

        // A missing file and a directory are NotFound, as with the reference.
        for missing in [Path::from("d/none.bin"), Path::from("d")] {
            let e = store.head(&missing).await.expect_err("missing");
            assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
            let e = reference.head(&missing).await.expect_err("missing");
            assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
        }
        // A range past the end fails; one that ends past it is cut.
        assert!(store.get_range(&p, 10_001..10_002).await.is_err());
        assert!(reference.get_range(&p, 10_001..10_002).await.is_err());
        let cut = store
            .get_opts(&p, ranged(GetRange::Offset(9_998)))
            .await
            .expect("offset");
        assert_eq!(cut.range, 9_998..10_000);

        // Conditional reads go to LocalFileSystem and keep their meaning.
        let stale = store
            .get_opts(
                &p,
                GetOptions {
                    if_match: Some("not-the-etag".into()),
                    ..GetOptions::default()
                },
            )
            .await;
        assert!(matches!(
            stale,
            Err(object_store::Error::Precondition { .. })
        ));
        let fresh = store
            .get_opts(
                &p,
                GetOptions {
                    if_match: head.e_tag.clone(),
                    ..GetOptions::default()
                },
            )
            .await
            .expect("matching e-tag");
        assert_eq!(fresh.meta, head);

        // Listing and deleting are LocalFileSystem's.
        let listed: Vec<_> = futures::TryStreamExt::try_collect(store.list(Some(&Path::from("d"))))
            .await
            .expect("list");
        assert_eq!(listed, vec![head.clone()]);
        store.delete(&p).await.expect("delete");
        assert!(store.head(&p).await.is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
