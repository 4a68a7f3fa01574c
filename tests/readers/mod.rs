//! Helpers shared by the tests that have other engines read our tables
//! (`tests/py/read_all_iceberg.py`).
#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use arrow::array::{Array as _, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use iceberg::spec::{PrimitiveType, Type};
use lakehouse::storage::LoadedTable;
use serde_json::Value;

/// The first top-level string column of the table's current schema.
pub fn text_column(loaded: &LoadedTable) -> Option<String> {
    loaded
        .metadata()
        .current_schema()
        .as_struct()
        .fields()
        .iter()
        .find(|f| matches!(*f.field_type, Type::Primitive(PrimitiveType::String)))
        .map(|f| f.name.clone())
}

/// The sorted non-null values of `column` (cast to text) in `batches`.
pub fn sorted_values(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut values: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let col =
                arrow::compute::cast(b.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
            let col = col.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..col.len())
                .filter(|&i| col.is_valid(i))
                .map(|i| col.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    values.sort();
    values
}

/// Runs `read_all_iceberg.py <engine>` on `input` and returns its JSON.
pub fn read_with(engine: &str, input: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/read_all_iceberg.py");
    let python = std::env::var("LAKEHOUSE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(script)
        .arg(engine)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{engine} could not read the warehouse (scripts/test.sh installs the Python \
         packages): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{engine}: output is not JSON ({e})"))
}
