//! The crate's one error type.
//!
//! Every error carries a [`ErrorKind`] that tells callers what went wrong in
//! general terms (so they can decide to retry, report, or give up) and a
//! human message with the context a user needs to act: which table, file,
//! row or field. Lower-level errors (I/O, Iceberg, DataFusion, HTTP) are kept
//! as the `source` so `{:#}`/`anyhow` chains show the whole story.

use std::fmt;

/// What kind of failure this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's input (arguments, config, a batch) is invalid.
    InvalidInput,
    /// A batch's schema does not match the table's schema.
    SchemaMismatch,
    /// A table, namespace, snapshot or file does not exist.
    NotFound,
    /// A table or namespace already exists.
    AlreadyExists,
    /// Another writer committed first; the operation may be retried.
    CommitConflict,
    /// Stored data or metadata could not be parsed.
    Corrupt,
    /// Object storage or the local file system failed.
    Storage,
    /// The source system (HTTP) failed.
    Source,
    /// Query planning or execution failed.
    Query,
    /// An operator that cannot spill needed more memory than the budget
    /// (`--memory-limit`) leaves it.
    OutOfMemory,
    /// Anything else: a bug or an unexpected state.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::SchemaMismatch => "schema mismatch",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::CommitConflict => "commit conflict",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::Storage => "storage error",
            ErrorKind::Source => "source error",
            ErrorKind::Query => "query error",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// The crate's error: a kind, a message with context, and an optional cause.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message that names what failed.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind prefix or the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with more context (e.g. the table being written).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Shorthand constructors.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// Add context to any fallible result whose error converts into [`Error`].
pub trait ResultExt<T> {
    /// Wrap the error with a kind and a message naming what was being done.
    fn ctx(self, kind: ErrorKind, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E> ResultExt<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn ctx(self, kind: ErrorKind, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(kind, message()).with_source(e))
    }
}

impl From<iceberg::Error> for Error {
    fn from(e: iceberg::Error) -> Self {
        let kind = match e.kind() {
            iceberg::ErrorKind::DataInvalid => ErrorKind::Corrupt,
            iceberg::ErrorKind::FeatureUnsupported => ErrorKind::InvalidInput,
            iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound => {
                ErrorKind::NotFound
            }
            iceberg::ErrorKind::TableAlreadyExists | iceberg::ErrorKind::NamespaceAlreadyExists => {
                ErrorKind::AlreadyExists
            }
            iceberg::ErrorKind::CatalogCommitConflicts => ErrorKind::CommitConflict,
            _ => ErrorKind::Storage,
        };
        Error::new(kind, e.message().to_string()).with_source(e)
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        let kind = if exhausted(&e) {
            ErrorKind::OutOfMemory
        } else {
            ErrorKind::Query
        };
        Error::new(kind, e.to_string()).with_source(e)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::new(ErrorKind::Query, e.to_string()).with_source(e)
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        let kind = match &e {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => ErrorKind::CommitConflict,
            _ => ErrorKind::Storage,
        };
        Error::new(kind, e.to_string()).with_source(e)
    }
}

/// What S3 clients ask the instance-metadata service for when no other
/// source of credentials is configured (its token and role paths, wherever
/// `AWS_METADATA_ENDPOINT` points).
const INSTANCE_METADATA: [&str; 2] = ["/latest/api/token", "/latest/meta-data/iam"];

/// A one-line diagnosis of an error chain whose cause is well known, to print
/// before the chain: today, S3 access with no AWS credentials configured (the
/// client fell back to the instance metadata service, which refused or did
/// not answer).
pub fn diagnosis(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut at = Some(e);
    while let Some(x) = at {
        let text = x.to_string();
        if INSTANCE_METADATA.iter().any(|p| text.contains(p)) {
            return Some(
                "no AWS credentials found for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (plus AWS_SESSION_TOKEN for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE, or run \
                 where instance or container credentials are available",
            );
        }
        at = x.source();
    }
    None
}

/// Whether `e` (or what it wraps) is a memory pool refusing an allocation.
fn exhausted(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    match e {
        D::ResourcesExhausted(_) => true,
        D::Context(_, inner) => exhausted(inner),
        D::Shared(inner) => exhausted(inner),
        D::External(inner) => match inner.downcast_ref::<D>() {
            Some(d) => exhausted(d),
            None => inner
                .downcast_ref::<Error>()
                .is_some_and(|x| x.kind() == ErrorKind::OutOfMemory),
        },
        _ => false,
    }
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_s3_credentials_are_diagnosed_in_one_line() {
        let inner = Error::new(
            ErrorKind::Storage,
            "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token: 403 Forbidden",
        );
        let e = Error::new(ErrorKind::Storage, "cannot list x").with_source(inner);
        let d = diagnosis(&e).expect("diagnosed");
        assert!(d.starts_with(
            "no AWS credentials found for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ));
        assert!(!d.contains('\n'));
        assert!(diagnosis(&Error::new(ErrorKind::Storage, "cannot list x")).is_none());
    }
}
