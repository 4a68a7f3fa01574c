//! Starter projects written from a live OData service (`lakehouse new DIR
//! --from-odata URL`), as dlt's `init` writes a starter pipeline.
//!
//! From the service's `$metadata` ([`crate::extract::metadata`]):
//! - **source** `sources/<name>.yaml`: one resource per entity set with every
//!   property as a curated column (EDM types mapped as that module says), the
//!   entity key as the true primary key, and as cursor the first `Date` or
//!   `DateTimeOffset` property whose name says it records a change
//!   (`modified`, `updated`, `changed`, in that order of preference). An
//!   entity set without one cannot be extracted incrementally: it is left out
//!   and listed in the file's header comment;
//! - **frames** `models/frames.yaml`: one frame per resource; its primary hook
//!   `_hook__<entity>` (keyset `<entity>__<source>`) over a single-column key,
//!   or, over a composite key, one hook per key column (the referenced
//!   entity's hook when a navigation constraint names it) joined in a
//!   composite primary hook; plus a foreign hook for each navigation
//!   constraint to another extracted entity set with a single-column key;
//! - **concepts** `models/concepts.yaml`: one concept per entity with the
//!   keysets its hooks use;
//! - `lakehouse.yaml` naming the project, and a `.gitignore`.
//!
//! The written project is loaded back before this returns, so what is
//! written always validates; it is a start to edit (rename concepts, merge
//! keysets of one business concept, add measures), not a finished model.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::ColumnType;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::metadata::{EntitySet, ServiceModel};
use crate::extract::naming::snake_case;

/// What [`write_from_odata`] wrote.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// Files written, relative to the project directory.
    pub files: Vec<PathBuf>,
    /// Entity sets given a resource and a frame.
    pub resources: usize,
    /// Entity sets left out, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// A singular snake_case name for an entity set (`SalesOrderHeaders` ->
/// `sales_order_header`, `Categories` -> `category`).
fn entity_name(set: &str) -> String {
    let s = snake_case(set);
    if let Some(stem) = s.strip_suffix("ies") {
        format!("{stem}y")
    } else if s.ends_with("sses") || s.ends_with("xes") || s.ends_with("ches") {
        s[..s.len() - 2].to_string()
    } else if let Some(stem) = s
        .strip_suffix('s')
        .filter(|_| !s.ends_with("ss") && !s.ends_with("us"))
    {
        stem.to_string()
    } else {
        s
    }
}

/// The cursor property of an entity set (see the module docs).
fn cursor_of(set: &EntitySet) -> Option<&str> {
    let dated = |t: ColumnType| matches!(t, ColumnType::Date | ColumnType::Timestamp);
    ["modified", "updated", "changed"].iter().find_map(|word| {
        set.properties
            .iter()
            .find(|p| dated(p.data_type) && p.name.to_lowercase().contains(word))
            .map(|p| p.name.as_str())
    })
}

/// YAML for a scalar: bare when it is plain (letters, digits, `_-./:`,
/// starting with a letter or `/`), else a double-quoted (JSON) string, which
/// reads back as the same text in block and flow context alike.
fn y(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_string()
    } else {
        serde_json::Value::from(s).to_string()
    }
}

/// Write a starter project for the service at `url` into `dir`.
pub async fn write_from_odata(dir: &Path, url: &str) -> Result<Scaffold> {
    let model = crate::extract::metadata::fetch(url).await?;
    write_from_model(dir, url, &model)
}

/// [`write_from_odata`] for a `$metadata` already read.
pub fn write_from_model(dir: &Path, url: &str, model: &ServiceModel) -> Result<Scaffold> {
    let file = dir.join(crate::project::PROJECT_FILE);
    if file.exists() {
        return Err(Error::invalid(format!(
            "{} already exists: not overwriting a project",
            file.display()
        )));
    }
    let source = {
        let s = snake_case(model.namespace.rsplit('.').next().unwrap_or_default());
        if crate::config::source::is_identifier(&s) {
            s
        } else {
            "source".to_string()
        }
    };
    let project = {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let s = snake_case(name);
        if crate::config::source::is_identifier(&s) {
            s
        } else {
            source.clone()
        }
    };

    // The entity sets that can be extracted incrementally, by entity type.
    let mut skipped = Vec::new();
    let mut kept: Vec<(&EntitySet, &str)> = Vec::new();
    for set in &model.entity_sets {
        match (cursor_of(set), set.key.is_empty()) {
            (_, true) => skipped.push((set.name.clone(), "no key".to_string())),
            (None, _) => skipped.push((
                set.name.clone(),
                "no Date or DateTimeOffset property named like `modified`, `updated` or `changed` to use as cursor".to_string(),
            )),
            (Some(c), false) => kept.push((set, c)),
        }
    }
    if kept.is_empty() {
        return Err(Error::new(
            ErrorKind::Source,
            format!(
                "{url}: no entity set can be extracted incrementally ({})",
                skipped
                    .iter()
                    .map(|(s, why)| format!("{s}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    // Entity type -> (entity name, key property) for single-key entities:
    // where foreign hooks can point.
    let single_key: BTreeMap<&str, (String, &str)> = kept
        .iter()
        .filter(|(s, _)| s.key.len() == 1)
        .map(|(s, _)| {
            (
                s.entity_type.as_str(),
                (entity_name(&s.name), s.key[0].as_str()),
            )
        })
        .collect();

    let mut src =
        format!("# Written by `lakehouse new --from-odata {url}` from the service's $metadata.\n");
    if !skipped.is_empty() {
        src.push_str("# Left out (no incremental cursor or no key):\n");
        for (s, why) in &skipped {
            let _ = writeln!(src, "#   {s}: {why}");
        }
    }
    let _ = write!(src, "name: {source}\nbase_url: {}\nresources:\n", y(url));
    let mut frames = String::from(
        "# HOOK frames: one per resource. Rename concepts and keysets, merge the keysets\n\
         # of one business concept, and add foreign hooks where entities meet.\nframes:\n",
    );
    let mut concepts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (set, cursor) in &kept {
        let entity = entity_name(&set.name);
        let table = format!("raw__{source}__{}", snake_case(&set.name));
        let config = set.as_config();
        let key = &config.key;
        let _ = write!(
            src,
            "  - table: {table}\n    api_path: {}\n    primary_key: [{}]\n    cursor_field: {}\n    columns:\n",
            y(&format!("/{}", set.name)),
            key.join(", "),
            y(cursor)
        );
        for c in &config.columns {
            let _ = writeln!(
                src,
                "      - {{ name: {}, source: {}, type: {} }}",
                c.name,
                y(&c.source),
                y(&c.data_type.to_string())
            );
        }
        let _ = write!(
            frames,
            "  - name: frame__{source}__{}\n    source_table: {table}\n    column_prefix: {entity}\n    hooks:\n",
            snake_case(&set.name)
        );
        let own = format!("{entity}__{source}");
        let mut hooks: Vec<String> = Vec::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        // The entity a key or foreign property points to, by navigation.
        let target_of = |property: &str| {
            set.navigations
                .iter()
                .find_map(|n| match n.constraints.as_slice() {
                    [(p, _)] if p == property => single_key.get(n.target.as_str()),
                    _ => None,
                })
        };
        if key.len() == 1 {
            names.insert(format!("_hook__{entity}"));
            hooks.push(format!(
                "{{ name: _hook__{entity}, keyset: {own}, business_key: {}, primary: true }}",
                key[0]
            ));
            concepts
                .entry(entity.clone())
                .or_default()
                .insert(own.clone());
        } else {
            let mut parts = Vec::new();
            for (k, column) in set.key.iter().zip(key) {
                let (name, keyset, concept) = match target_of(k) {
                    Some((target, _)) => (
                        format!("_hook__{target}"),
                        format!("{target}__{source}"),
                        target.clone(),
                    ),
                    None => (
                        format!("_hook__{entity}__{column}"),
                        format!("{entity}__{column}__{source}"),
                        entity.clone(),
                    ),
                };
                concepts.entry(concept).or_default().insert(keyset.clone());
                hooks.push(format!(
                    "{{ name: {name}, keyset: {keyset}, business_key: {column} }}"
                ));
                names.insert(name.clone());
                parts.push(name);
            }
            hooks.insert(
                0,
                format!(
                    "{{ name: _hook__{entity}, composite: [{}], primary: true }}",
                    parts.join(", ")
                ),
            );
            names.insert(format!("_hook__{entity}"));
        }
        for n in &set.navigations {
            let [(property, _)] = n.constraints.as_slice() else {
                continue;
            };
            let Some((target, _)) = single_key.get(n.target.as_str()) else {
                continue;
            };
            if set.key.contains(property) {
                continue;
            }
            let mut name = format!("_hook__{target}");
            if !names.insert(name.clone()) {
                name = format!("_hook__{target}__{}", snake_case(&n.name));
                if !names.insert(name.clone()) {
                    continue;
                }
            }
            let keyset = format!("{target}__{source}");
            concepts
                .entry(target.clone())
                .or_default()
                .insert(keyset.clone());
            hooks.push(format!(
                "{{ name: {name}, keyset: {keyset}, business_key: {} }}",
                snake_case(property)
            ));
        }
        for h in hooks {
            let _ = writeln!(frames, "      - {h}");
        }
    }
    let mut concepts_yaml = String::from(
        "# Business concepts and the keysets that identify their instances.\nconcepts:\n",
    );
    for (c, keysets) in &concepts {
        let _ = write!(
            concepts_yaml,
            "  - name: {c}\n    description: {}\n    keysets:\n",
            y(&format!("A {} of {source}.", c.replace('_', " ")))
        );
        for k in keysets {
            let _ = writeln!(concepts_yaml, "      - {k}");
        }
    }
    let project_yaml = format!(
        "# A lakehouse project written from {url}. Paths are relative to this file.\n\
         name: {project}\nwarehouse: lakehouse\nsources:\n  - sources/*.yaml\n\
         models:\n  concepts: models/concepts.yaml\n  frames: models/frames.yaml\n"
    );
    let source_file = format!("sources/{source}.yaml");
    let written = crate::project::write_files(
        dir,
        &[
            (crate::project::PROJECT_FILE, &project_yaml),
            (&source_file, &src),
            ("models/concepts.yaml", &concepts_yaml),
            ("models/frames.yaml", &frames),
            (".gitignore", "/lakehouse/\n"),
        ],
    )?;
    // What was written must load.
    crate::project::ProjectDir::load(&file).map_err(|e| {
        Error::internal(format!(
            "the project written in {} does not load (please report this)",
            dir.display()
        ))
        .with_source(e)
    })?;
    Ok(Scaffold {
        files: written,
        resources: kept.len(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigations_become_foreign_hooks_and_composite_keys_composite_hooks() {
        let model = crate::extract::metadata::parse(
            r#"<Schema Namespace="Shop">
  <EntityType Name="Customer"><Key><PropertyRef Name="Id"/></Key>
    <Property Name="Id" Type="Edm.Int32"/><Property Name="LastModified" Type="Edm.DateTimeOffset"/></EntityType>
  <EntityType Name="Order"><Key><PropertyRef Name="Id"/></Key>
    <Property Name="Id" Type="Edm.Int32"/><Property Name="CustomerId" Type="Edm.Int32"/>
    <Property Name="UpdatedAt" Type="Edm.DateTimeOffset"/>
    <NavigationProperty Name="Buyer" Type="Shop.Customer"><ReferentialConstraint Property="CustomerId" ReferencedProperty="Id"/></NavigationProperty>
  </EntityType>
  <EntityType Name="OrderLine"><Key><PropertyRef Name="OrderId"/><PropertyRef Name="LineNo"/></Key>
    <Property Name="OrderId" Type="Edm.Int32"/><Property Name="LineNo" Type="Edm.Int32"/>
    <Property Name="Amount" Type="Edm.Decimal" Precision="12" Scale="2"/>
    <Property Name="ModifiedDate" Type="Edm.Date"/>
    <NavigationProperty Name="Order" Type="Shop.Order"><ReferentialConstraint Property="OrderId" ReferencedProperty="Id"/></NavigationProperty>
  </EntityType>
  <EntityType Name="Note"><Key><PropertyRef Name="Id"/></Key><Property Name="Id" Type="Edm.Int32"/></EntityType>
  <EntityContainer Name="C">
    <EntitySet Name="Customers" EntityType="Shop.Customer"/><EntitySet Name="Orders" EntityType="Shop.Order"/>
    <EntitySet Name="OrderLines" EntityType="Shop.OrderLine"/><EntitySet Name="Notes" EntityType="Shop.Note"/>
  </EntityContainer>
</Schema>"#,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("my-shop");
        let made = write_from_model(&dir, "http://127.0.0.1:9/odata/", &model).unwrap();
        assert_eq!(made.resources, 3);
        assert_eq!(made.skipped.len(), 1);
        assert_eq!(made.skipped[0].0, "Notes");
        let loaded = crate::project::ProjectDir::load(&dir.join("lakehouse.yaml")).unwrap();
        assert_eq!(loaded.name, "my_shop");
        let source = &loaded.project.sources[0];
        assert_eq!(source.name, "shop");
        let lines = source.resource_by_path("/OrderLines").unwrap();
        assert_eq!(lines.table, "raw__shop__order_lines");
        assert_eq!(lines.primary_key, ["order_id", "line_no"]);
        assert_eq!(lines.cursor_field, "ModifiedDate");
        assert_eq!(
            lines.column("amount").unwrap().data_type.to_string(),
            "decimal(12,2)"
        );
        assert_eq!(
            source.resource_by_path("/Customers").unwrap().cursor_field,
            "LastModified"
        );
        let frames = std::fs::read_to_string(dir.join("models/frames.yaml")).unwrap();
        for want in [
            "{ name: _hook__customer, keyset: customer__shop, business_key: customer_id }",
            "{ name: _hook__order_line, composite: [_hook__order, _hook__order_line__line_no], primary: true }",
            "{ name: _hook__order, keyset: order__shop, business_key: order_id }",
            "{ name: _hook__order_line__line_no, keyset: order_line__line_no__shop, business_key: line_no }",
        ] {
            assert!(frames.contains(want), "{want} in\n{frames}");
        }
        // A second run does not overwrite it.
        let e = write_from_model(&dir, "http://127.0.0.1:9/odata/", &model).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    #[test]
    fn entity_names_are_singular_snake_case() {
        for (set, want) in [
            ("SalesOrderHeaders", "sales_order_header"),
            ("ProductCategories", "product_category"),
            ("Addresses", "address"),
            ("Boxes", "box"),
            ("Status", "status"),
            ("Glass", "glass"),
            ("Person", "person"),
        ] {
            assert_eq!(entity_name(set), want, "{set}");
        }
    }
}
