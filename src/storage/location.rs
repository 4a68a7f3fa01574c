//! Where a warehouse lives, and the object store that reaches it.
//!
//! A warehouse is named by one string:
//! - a local path (`./lakehouse`, `/data/lh`) or a `file://` URL: the local
//!   file system, made absolute so table locations are stable URLs;
//! - `s3://bucket/prefix`: Amazon S3 or any S3-compatible server. Endpoint,
//!   region, credentials come from the standard `AWS_*` environment variables
//!   (`AWS_ENDPOINT_URL` for S3-compatible servers; plain `http://` endpoints
//!   are allowed automatically). Requests are path-style unless
//!   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
//!
//! Invariant: every object the warehouse writes lives under [`Warehouse::root`]
//! and is addressed inside the store by the path relative to that root, so
//! a full location URL and a store path convert both ways without loss.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use crate::error::{Error, ErrorKind, Result, ResultExt};

/// How a local warehouse's store reads files (tuning `direct-local-reads`,
/// see [`crate::tuning`]); S3 warehouses ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LocalReads {
    /// Plain reads in place on the calling thread
    /// ([`super::local::InPlaceReads`]); everything else as `Pooled`.
    #[default]
    Direct,
    /// Every call through `object_store`'s [`LocalFileSystem`], which runs
    /// it on tokio's blocking pool.
    Pooled,
}

/// The parsed location of a warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseUrl {
    /// An absolute local directory.
    Local(std::path::PathBuf),
    /// An S3 bucket and a key prefix (no leading or trailing `/`; may be empty).
    S3 { bucket: String, prefix: String },
}

impl WarehouseUrl {
    /// Parse a warehouse string (see the module docs).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid("the warehouse location is empty"));
        }
        if let Some(rest) = s.strip_prefix("s3://").or_else(|| s.strip_prefix("s3a://")) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::invalid(format!(
                    "warehouse '{s}': an S3 warehouse needs a bucket (s3://bucket/prefix)"
                )));
            }
            return Ok(WarehouseUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let path = if let Some(rest) = s.strip_prefix("file://") {
            std::path::PathBuf::from(rest)
        } else if s.contains("://") {
            return Err(Error::invalid(format!(
                "warehouse '{s}': unsupported scheme; use a local path, file://... or s3://bucket/prefix"
            )));
        } else {
            std::path::PathBuf::from(s)
        };
        let abs = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .ctx(ErrorKind::Storage, || {
                    "cannot read the current directory".to_string()
                })?
                .join(path)
        };
        Ok(WarehouseUrl::Local(normalize(&abs)))
    }

    /// The root as a URL string without a trailing slash
    /// (`file:///abs/dir` or `s3://bucket/prefix`).
    pub fn root_url(&self) -> String {
        match self {
            WarehouseUrl::Local(p) => format!("file://{}", p.display())
                .trim_end_matches('/')
                .to_string(),
            WarehouseUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            WarehouseUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// Build the object store for this location from the environment. For
    /// local warehouses the directory is created if missing.
    pub fn build_store(&self) -> Result<Arc<dyn ObjectStore>> {
        self.build_store_with(&[], LocalReads::default())
    }

    /// Like [`WarehouseUrl::build_store`], with S3 settings that override the
    /// environment: pairs of object_store S3 config keys and values, e.g.
    /// `("aws_endpoint", "http://127.0.0.1:5000")`, `("aws_access_key_id", ..)`;
    /// a local store reads as `reads` says.
    pub fn build_store_with(
        &self,
        s3_options: &[(String, String)],
        reads: LocalReads,
    ) -> Result<Arc<dyn ObjectStore>> {
        match self {
            WarehouseUrl::Local(dir) => {
                std::fs::create_dir_all(dir).ctx(ErrorKind::Storage, || {
                    format!("cannot create warehouse directory {}", dir.display())
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir).ctx(ErrorKind::Storage, || {
                    format!("cannot open warehouse directory {}", dir.display())
                })?;
                Ok(match reads {
                    LocalReads::Direct => Arc::new(super::local::InPlaceReads::new(fs)),
                    LocalReads::Pooled => Arc::new(fs),
                })
            }
            WarehouseUrl::S3 { bucket, .. } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .ok();
                if let Some(ep) = endpoint {
                    if ep.starts_with("http://") {
                        builder = builder.with_allow_http(true);
                    }
                    builder = builder.with_endpoint(ep);
                }
                if std::env::var("AWS_REGION").is_err()
                    && std::env::var("AWS_DEFAULT_REGION").is_err()
                {
                    builder = builder.with_region("us-east-1");
                } else if let Ok(r) = std::env::var("AWS_REGION") {
                    builder = builder.with_region(r);
                }
                for (key, value) in s3_options {
                    let config_key = key.parse().ctx(ErrorKind::InvalidInput, || {
                        format!("unknown S3 option '{key}'")
                    })?;
                    if key.contains("endpoint") && value.starts_with("http://") {
                        builder = builder.with_allow_http(true);
                    }
                    builder = builder.with_config(config_key, value);
                }
                let store = builder.build().ctx(ErrorKind::Storage, || {
                    format!("cannot configure S3 for bucket '{bucket}' (check the AWS_* environment variables)")
                })?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The store path of `relative` (a `/`-separated path below the root).
    pub fn store_path(&self, relative: &str) -> StorePath {
        let rel = relative.trim_matches('/');
        match self {
            WarehouseUrl::S3 { prefix, .. } if !prefix.is_empty() => {
                StorePath::from(format!("{prefix}/{rel}"))
            }
            _ => StorePath::from(rel),
        }
    }

    /// Convert a full location URL (as written in Iceberg metadata) to a
    /// store path; errors if the location is outside the warehouse.
    pub fn location_to_path(&self, location: &str) -> Result<StorePath> {
        let root = self.root_url();
        let rel = location
            .strip_prefix(&root)
            .or_else(|| match self {
                // Tolerate plain absolute paths for local warehouses.
                WarehouseUrl::Local(dir) => location.strip_prefix(dir.to_str().unwrap_or("\0")),
                _ => None,
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("location '{location}' is outside the warehouse {root}"),
                )
            })?;
        Ok(self.store_path(rel))
    }
}

/// Lexically normalise `.` and `..` components (no symlink resolution).
fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_and_local() {
        assert_eq!(
            WarehouseUrl::parse("s3://b/p/q/").unwrap(),
            WarehouseUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        let s3 = WarehouseUrl::parse("s3://b").unwrap();
        assert_eq!(s3.root_url(), "s3://b");
        assert_eq!(
            s3.location_to_path("s3://b/das/t/x").unwrap().as_ref(),
            "das/t/x"
        );
        let local = WarehouseUrl::parse("file:///tmp/a/./b/../c").unwrap();
        assert_eq!(local, WarehouseUrl::Local("/tmp/a/c".into()));
        assert_eq!(local.root_url(), "file:///tmp/a/c");
        assert_eq!(
            local
                .location_to_path("file:///tmp/a/c/ns/t/data/f.parquet")
                .unwrap()
                .as_ref(),
            "ns/t/data/f.parquet"
        );
        assert!(local.location_to_path("file:///elsewhere/x").is_err());
        assert!(WarehouseUrl::parse("gs://x").is_err());
        assert!(WarehouseUrl::parse("s3:///p").is_err());
    }
}
