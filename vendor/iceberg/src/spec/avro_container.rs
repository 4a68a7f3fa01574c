// Patched (lakehouse), see PATCHED.md: reading the Avro files iceberg-rust
// writes without apache_avro's container reader.

//! The Avro object container files iceberg-rust writes (manifests and
//! manifest lists: no codec, one known schema) decoded without apache_avro's
//! container reader, which parses the schema in every file's header (and
//! checks each name in it with a regex): a few percent of a run that reads
//! hundreds of small manifests.
//!
//! The header's schema text is compared with the text apache_avro's writer
//! stores for the expected schema (`serde_json::to_string` of it); when they
//! are equal the file was written with that schema and its objects are
//! decoded with it, exactly as the reader would (a file read with the schema
//! it was written with needs no resolution). Anything else (another codec or
//! schema, or bytes that do not follow the container layout: magic, metadata
//! map, sync marker, blocks each ending in the marker) gives `None`, and the
//! caller reads the file with apache_avro as before.

use std::collections::HashMap;
use std::io::Read;

use apache_avro::types::Value;
use apache_avro::{Schema as AvroSchema, from_avro_datum};

const MAGIC: &[u8; 4] = b"Obj\x01";

/// The text apache_avro's writer stores in a file's header for `schema`.
pub(crate) fn schema_text(schema: &AvroSchema) -> Option<String> {
    serde_json::to_string(schema).ok()
}

fn long(r: &mut &[u8]) -> Option<i64> {
    match from_avro_datum(&AvroSchema::Long, r, None).ok()? {
        Value::Long(n) => Some(n),
        _ => None,
    }
}

/// The user metadata and objects of `bs`, if it is a container file without
/// codec whose header names `schema` by exactly `text` (see the module docs).
pub(crate) fn decode(
    bs: &[u8],
    schema: &AvroSchema,
    text: &str,
) -> Option<(HashMap<String, Vec<u8>>, Vec<Value>)> {
    let mut r = bs.strip_prefix(MAGIC.as_slice())?;
    let map = AvroSchema::map(AvroSchema::Bytes);
    let Value::Map(entries) = from_avro_datum(&map, &mut r, None).ok()? else {
        return None;
    };
    let mut meta = HashMap::with_capacity(entries.len());
    for (k, v) in entries {
        let Value::Bytes(b) = v else { return None };
        meta.insert(k, b);
    }
    if meta.get("avro.codec").is_some_and(|c| c.as_slice() != b"null")
        || meta.get("avro.schema").map(Vec::as_slice) != Some(text.as_bytes())
    {
        return None;
    }
    let mut sync = [0u8; 16];
    r.read_exact(&mut sync).ok()?;
    let mut values = Vec::new();
    while !r.is_empty() {
        let count = long(&mut r)?;
        let size = usize::try_from(long(&mut r)?).ok()?;
        if count < 0 || r.len() < size.checked_add(16)? || r[size..size + 16] != sync {
            return None;
        }
        let mut data = &r[..size];
        for _ in 0..count {
            values.push(from_avro_datum(schema, &mut data, None).ok()?);
        }
        if !data.is_empty() {
            return None;
        }
        r = &r[size + 16..];
    }
    user_metadata(&mut meta);
    Some((meta, values))
}

/// apache_avro's reader hands out the header's metadata without its own
/// `avro.` keys: the same here.
fn user_metadata(meta: &mut HashMap<String, Vec<u8>>) {
    meta.retain(|k, _| !k.starts_with("avro."));
}
