//! The DAS layer's table layout, shared by the extractor (which writes it)
//! and the models (which read it).
//!
//! `das.raw__<system>__<entity>` holds every extracted row, append-only: the
//! source's curated columns (snake_case) followed by three load columns:
//! - [`LOAD_ID`] (text): the extraction run that landed the row;
//! - [`LOADED_AT`] (timestamp, UTC): when that run started; equal for every
//!   row of one run, strictly increasing across runs;
//! - [`LOAD_SEQUENCE`] (bigint): the row's position within its run, to
//!   order versions deterministically when load times tie.

/// Column: the id of the load that landed the row.
pub const LOAD_ID: &str = "_load_id";
/// Column: the load time (UTC).
pub const LOADED_AT: &str = "_loaded_at";
/// Column: the row's sequence within its load.
pub const LOAD_SEQUENCE: &str = "_load_sequence";

/// The DAS namespace.
pub const NAMESPACE: &str = "das";

/// The three load columns, in landing order, as Arrow fields.
pub fn load_fields() -> [arrow::datatypes::Field; 3] {
    use arrow::datatypes::{DataType, Field, TimeUnit};
    [
        Field::new(LOAD_ID, DataType::Utf8, false),
        Field::new(
            LOADED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(LOAD_SEQUENCE, DataType::Int64, false),
    ]
}

/// Whether `column` is one of the load columns.
pub fn is_load_column(column: &str) -> bool {
    matches!(column, LOAD_ID | LOADED_AT | LOAD_SEQUENCE)
}
