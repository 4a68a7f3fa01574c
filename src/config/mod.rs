//! Typed configuration read from the YAML files under `config/`.
//!
//! Each file is parsed once into plain structs (serde) and validated before
//! anything else uses it; validation errors are [`ErrorKind::InvalidInput`]
//! and name the file, the resource and the field at fault.
//!
//! [`ErrorKind::InvalidInput`]: crate::error::ErrorKind::InvalidInput

pub mod rest;
pub mod source;

pub use rest::{
    AuthConfig, Credentials, Lookback, PaginatorConfig, RateLimit, RestSource, SourceKind,
};
pub use source::{BaseUrl, ColumnConfig, ColumnType, ResourceConfig, SourceConfig};
