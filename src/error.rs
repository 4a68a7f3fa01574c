//! The crate's one error type.
//!
//! Every error carries a [`ErrorKind`] that tells callers what went wrong in
//! general terms (so they can decide to retry, report, or give up) and a
//! human message with the context a user needs to act: which table, file,
//! row or field, and what was being done.
//!
//! Each cause is printed once. A lower-level error (I/O, Iceberg, DataFusion,
//! Arrow, object store, HTTP) is kept only as the `source`, never copied into
//! the message as well, following Rust's convention that an error either
//! shows its cause in its `Display` or returns it from `source()`, not both:
//! `{e}` is `<kind>: <message>`, without the causes. To show an error to a
//! user, print the whole chain: `{e:#}` on one line
//! (`<kind>: <message>: <cause>: <cause>`), or [`Error::causes`] one per
//! line, as the binary does. Both leave out a cause whose text is already
//! shown (foreign errors such as DataFusion's and Iceberg's show their own
//! source in their text too).
//!
//! Our errors travel through DataFusion as `DataFusionError::External`; the
//! conversion back takes them out again with their kind and message, and
//! keeps the strings of DataFusion's `Context` wrappers as context.

use std::fmt;
use std::sync::Arc;

use datafusion::error::DataFusionError;

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
///
/// `{e}` shows the kind and the message; `{e:#}` adds each cause once.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if f.alternate() {
            for cause in self.causes() {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
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

    /// The same error with its message replaced by `f` of it (kind and
    /// cause kept).
    pub fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Self {
        self.message = f(&self.message);
        self
    }

    /// Prefix the message with more context (e.g. the table being written).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = if self.message.is_empty() {
            context.to_string()
        } else {
            format!("{context}: {}", self.message)
        };
        self
    }

    /// The text of each cause in the chain below this error, outermost
    /// first, leaving out a cause whose text is already shown (by this error
    /// or a cause above it: a foreign error often shows its source in its
    /// own text too) and our own error without a message (it adds only
    /// its kind).
    pub fn causes(&self) -> Vec<String> {
        let mut shown = self.message.clone();
        let mut out = Vec::new();
        let mut at = std::error::Error::source(self);
        while let Some(cause) = at {
            // Our own error without a message adds only its kind.
            let bare = cause
                .downcast_ref::<Error>()
                .is_some_and(|e| e.message.is_empty());
            let text = cause.to_string();
            let text = text.trim();
            if !bare && !text.is_empty() && !shown.contains(text) {
                shown.push('\n');
                shown.push_str(text);
                out.push(text.to_string());
            }
            at = cause.source();
        }
        out
    }

    /// The message and each cause once, on one line, without the kind: what
    /// a report line that names the failing thing itself shows.
    pub fn detail(&self) -> String {
        std::iter::once(self.message.clone())
            .chain(self.causes())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(": ")
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
        Error::new(kind, "").with_source(e)
    }
}

impl From<DataFusionError> for Error {
    /// Our own error back out of `External` (kind and message kept), looking
    /// through DataFusion's `Context` (its text kept as context) and
    /// `Shared` wrappers; any other error is kept as the source.
    fn from(e: DataFusionError) -> Self {
        let out_of_memory = exhausted(&e);
        let mut context = Vec::new();
        let mut e = e;
        let mut error = loop {
            e = match e {
                DataFusionError::Context(c, inner) => {
                    context.push(c);
                    *inner
                }
                DataFusionError::Shared(inner) => match Arc::try_unwrap(inner) {
                    Ok(inner) => inner,
                    Err(shared) => break shared_error(shared),
                },
                DataFusionError::External(b) => match unbox(b) {
                    Ok(error) => break error,
                    Err(inner) => inner,
                },
                DataFusionError::ArrowError(a, trace) => match *a {
                    arrow::error::ArrowError::ExternalError(b) => match unbox(b) {
                        Ok(error) => break error,
                        Err(inner) => inner,
                    },
                    a => break foreign(DataFusionError::ArrowError(Box::new(a), trace)),
                },
                e => break foreign(e),
            }
        };
        for c in context.into_iter().rev() {
            error = error.context(c);
        }
        if out_of_memory {
            error.kind = ErrorKind::OutOfMemory;
        }
        error
    }
}

/// A DataFusion error that is not a wrapper, as the source of a query error.
fn foreign(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Query, "").with_source(e)
}

/// What an `External` error holds: our own error (`Ok`), a DataFusion error
/// to look into (`Err`), or any other error as the source of a query error
/// (`Ok`).
fn unbox(
    b: Box<dyn std::error::Error + Send + Sync + 'static>,
) -> std::result::Result<Error, DataFusionError> {
    match b.downcast::<Error>() {
        Ok(ours) => Ok(*ours),
        Err(b) => match b.downcast::<DataFusionError>() {
            Ok(inner) => Err(*inner),
            Err(b) => Ok(Error {
                kind: ErrorKind::Query,
                message: String::new(),
                source: Some(b),
            }),
        },
    }
}

/// The error of a DataFusion error shared with others (so not ours to take
/// apart): the kind and message of our error inside it, if any, with the
/// contexts on the way, and the rest of the chain through [`SharedCause`].
fn shared_error(shared: Arc<DataFusionError>) -> Error {
    let (context, core) = peel(&shared);
    let (kind, message, cause) = match core {
        Core::Ours(e) => (e.kind, e.message.clone(), e.source.is_some()),
        Core::Foreign(_) => (ErrorKind::Query, String::new(), true),
    };
    let mut error = Error::new(kind, message);
    if cause {
        error = error.with_source(SharedCause(shared));
    }
    for c in context.into_iter().rev() {
        error = error.context(c);
    }
    error
}

/// Where a chain of DataFusion wrappers leads.
enum Core<'a> {
    Ours(&'a Error),
    Foreign(&'a (dyn std::error::Error + Send + Sync + 'static)),
}

/// The `Context` strings of `e` and what its wrappers hold, by reference.
fn peel(mut e: &DataFusionError) -> (Vec<String>, Core<'_>) {
    let mut context = Vec::new();
    loop {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = match e {
            DataFusionError::Context(c, inner) => {
                context.push(c.clone());
                e = inner;
                continue;
            }
            DataFusionError::Shared(inner) => {
                e = inner;
                continue;
            }
            DataFusionError::External(b) => b.as_ref(),
            DataFusionError::ArrowError(a, _) => match a.as_ref() {
                arrow::error::ArrowError::ExternalError(b) => b.as_ref(),
                _ => return (context, Core::Foreign(e)),
            },
            _ => return (context, Core::Foreign(e)),
        };
        if let Some(ours) = inner.downcast_ref::<Error>() {
            return (context, Core::Ours(ours));
        }
        match inner.downcast_ref::<DataFusionError>() {
            Some(d) => e = d,
            None => return (context, Core::Foreign(inner)),
        }
    }
}

/// The cause inside a shared DataFusion error: the source of our error in
/// it, or the foreign error its wrappers hold.
#[derive(Debug)]
struct SharedCause(Arc<DataFusionError>);

impl SharedCause {
    fn cause(&self) -> &(dyn std::error::Error + 'static) {
        match peel(&self.0).1 {
            Core::Ours(e) => match &e.source {
                Some(s) => s.as_ref(),
                None => e,
            },
            Core::Foreign(f) => f,
        }
    }
}

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.cause(), f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause().source()
    }
}

impl From<arrow::error::ArrowError> for Error {
    /// Our own (or a DataFusion) error back out of `ExternalError`; any
    /// other error is kept as the source.
    fn from(e: arrow::error::ArrowError) -> Self {
        match e {
            arrow::error::ArrowError::ExternalError(b) => match unbox(b) {
                Ok(error) => error,
                Err(d) => Error::from(d),
            },
            e => foreign(e),
        }
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
        Error::new(kind, "").with_source(e)
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

/// Whether `e` (or what it wraps) is a memory pool refusing an allocation:
/// DataFusion's `ResourcesExhausted`, or our own out-of-memory error.
fn exhausted(e: &DataFusionError) -> bool {
    match peel(e).1 {
        Core::Ours(x) => x.kind == ErrorKind::OutOfMemory,
        Core::Foreign(f) => matches!(
            f.downcast_ref::<DataFusionError>(),
            Some(DataFusionError::ResourcesExhausted(_))
        ),
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How often `needle` occurs in `haystack`.
    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn a_datafusion_error_prints_once() {
        let df = DataFusionError::Internal("row counts differ".into());
        let e = Error::from(df).context("compacting raw.things");
        assert_eq!(e.kind(), ErrorKind::Query);
        assert_eq!(e.message(), "compacting raw.things");
        let full = format!("{e:#}");
        assert_eq!(count(&full, "row counts differ"), 1, "{full}");
        assert_eq!(
            count(&full, "likely caused by a bug in DataFusion"),
            1,
            "{full}"
        );
        assert!(full.starts_with("query error: compacting raw.things: Internal error: "));
        // The plain form leaves the cause to `source()`, which has it.
        assert_eq!(e.to_string(), "query error: compacting raw.things");
        let source = std::error::Error::source(&e).expect("kept as the source");
        assert!(source.to_string().contains("row counts differ"));
        assert_eq!(e.causes().len(), 1);
    }

    #[test]
    fn our_error_comes_back_out_of_datafusion() {
        let ours = Error::new(
            ErrorKind::InvalidInput,
            "column `x` of raw.things is not a date",
        )
        .with_source(std::io::Error::other("disk says no"));
        let df = DataFusionError::from(ours).context("reading raw.things");
        let shared = DataFusionError::Shared(Arc::new(df));
        let arrow = arrow::error::ArrowError::ExternalError(Box::new(shared));
        let e = Error::from(DataFusionError::ArrowError(Box::new(arrow), None));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.message(),
            "reading raw.things: column `x` of raw.things is not a date"
        );
        let full = format!("{e:#}");
        assert_eq!(
            full,
            "invalid input: reading raw.things: column `x` of raw.things is not a date: disk says no"
        );
        assert!(!full.contains("External error"), "{full}");
    }

    #[test]
    fn a_shared_error_held_elsewhere_comes_back_too() {
        let ours = Error::new(ErrorKind::Storage, "cannot read file f.parquet")
            .with_source(std::io::Error::other("disk says no"));
        let held = Arc::new(DataFusionError::from(ours));
        let e = Error::from(DataFusionError::Shared(Arc::clone(&held)).context("scanning"));
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert_eq!(
            format!("{e:#}"),
            "storage error: scanning: cannot read file f.parquet: disk says no"
        );
    }

    #[test]
    fn out_of_memory_is_still_detected() {
        let df = DataFusionError::ResourcesExhausted("Failed to allocate 1 MiB".into())
            .context("ExternalSorter[0]");
        let e = Error::from(DataFusionError::External(Box::new(df)));
        assert_eq!(e.kind(), ErrorKind::OutOfMemory);
        let full = format!("{e:#}");
        assert_eq!(count(&full, "Failed to allocate 1 MiB"), 1, "{full}");
        assert!(full.contains("ExternalSorter[0]"), "{full}");
    }

    #[test]
    fn an_upkeep_warning_names_the_table_and_the_cause_once() {
        let df = DataFusionError::Internal("row counts differ".into());
        // As `maintain` keeps a failed table's error, and prints it.
        let e = Error::from(df).context("compacting");
        let report = crate::dag::upkeep::UpkeepReport {
            tables: vec![crate::storage::upkeep::TableUpkeep {
                table: Some(
                    crate::storage::catalog::TableName::new("raw", "things").expect("name"),
                ),
                failed: Some(e.detail()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let [failure] = &report.failures()[..] else {
            panic!("one failure");
        };
        let line = format!("warning: upkeep of {failure} (run `lakehouse maintain` to retry)");
        assert_eq!(count(&line, "raw.things"), 1, "{line}");
        assert_eq!(count(&line, "row counts differ"), 1, "{line}");
        assert_eq!(
            count(&line, "likely caused by a bug in DataFusion"),
            1,
            "{line}"
        );
    }

    #[test]
    fn foreign_errors_are_sources_not_messages() {
        let e = Error::from(object_store::Error::NotFound {
            path: "a/b.parquet".into(),
            source: "gone".into(),
        })
        .context("reading table t");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "not found: reading table t");
        let full = format!("{e:#}");
        assert_eq!(count(&full, "a/b.parquet"), 1, "{full}");
        let e = Error::from(iceberg::Error::new(
            iceberg::ErrorKind::DataInvalid,
            "manifest list is empty",
        ));
        assert_eq!(e.to_string(), "corrupt data");
        let full = format!("{e:#}");
        assert_eq!(count(&full, "manifest list is empty"), 1, "{full}");
    }

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
