//! OData v4 `$metadata` (CSDL XML): read a service's entity sets, keys,
//! properties and navigation constraints, and write one for a source config.
//!
//! The curated types map to EDM types and back:
//!
//! | curated | EDM |
//! |---|---|
//! | `bigint` | `Edm.Int64` (read: also `Int32`, `Int16`, `Byte`, `SByte`) |
//! | `double` | `Edm.Double` (read: also `Single`) |
//! | `decimal(p,s)` | `Edm.Decimal` with `Precision` and `Scale` (read: no precision: 38; no scale: 0; `variable`: 10) |
//! | `text`, `xml` | `Edm.String` (read: `text`) |
//! | `uniqueidentifier` | `Edm.Guid` |
//! | `bool` | `Edm.Boolean` |
//! | `date` | `Edm.Date` |
//! | `timestamp` | `Edm.DateTimeOffset` |
//! | `binary` | `Edm.Binary` |
//!
//! Any other EDM type (`TimeOfDay`, `Duration`, spatial types, enums,
//! complex types) is read as `text`: it lands as the service's JSON text.
//! Entity types deriving from a base type get the base type's key and
//! properties first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use url::Url;

use crate::config::source::DiscoveredSet;
use crate::config::{ColumnConfig, ColumnType, SourceConfig};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::extract::naming::snake_case;

/// One property of an entity type.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub data_type: ColumnType,
}

/// A navigation with referential constraints: `property` of this entity
/// holds the key of an entity of `target` (an entity type name, without
/// namespace).
#[derive(Debug, Clone, PartialEq)]
pub struct Navigation {
    pub name: String,
    pub target: String,
    /// `(property, referenced property)` pairs.
    pub constraints: Vec<(String, String)>,
}

/// One entity set and the shape of its entities.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySet {
    pub name: String,
    /// The entity type's name (without namespace).
    pub entity_type: String,
    pub key: Vec<String>,
    pub properties: Vec<Property>,
    pub navigations: Vec<Navigation>,
}

impl EntitySet {
    /// The set as a source config gives it: each property a column (its
    /// snake_case name, the property as `source`, its curated type) and
    /// the key as column names.
    pub fn as_config(&self) -> DiscoveredSet {
        DiscoveredSet {
            columns: self
                .properties
                .iter()
                .map(|p| ColumnConfig {
                    name: snake_case(&p.name),
                    source: p.name.clone(),
                    data_type: p.data_type,
                })
                .collect(),
            key: self.key.iter().map(|k| snake_case(k)).collect(),
        }
    }
}

/// What a service's `$metadata` says.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceModel {
    /// The first schema's namespace.
    pub namespace: String,
    /// Entity sets in document order.
    pub entity_sets: Vec<EntitySet>,
}

#[derive(Debug, Default, Clone)]
struct EntityType {
    base: Option<String>,
    key: Vec<String>,
    properties: Vec<Property>,
    navigations: Vec<Navigation>,
}

/// The EDM type of a curated type: `(Type, Precision and Scale attributes)`.
pub fn edm_type(t: ColumnType) -> (&'static str, String) {
    match t {
        ColumnType::Bigint => ("Edm.Int64", String::new()),
        ColumnType::Double => ("Edm.Double", String::new()),
        ColumnType::Text | ColumnType::Xml => ("Edm.String", String::new()),
        ColumnType::Uniqueidentifier => ("Edm.Guid", String::new()),
        ColumnType::Bool => ("Edm.Boolean", String::new()),
        ColumnType::Date => ("Edm.Date", String::new()),
        ColumnType::Timestamp => ("Edm.DateTimeOffset", String::new()),
        ColumnType::Binary => ("Edm.Binary", String::new()),
        ColumnType::Decimal { precision, scale } => (
            "Edm.Decimal",
            format!(" Precision=\"{precision}\" Scale=\"{scale}\""),
        ),
    }
}

/// The curated type of an EDM type (see the module docs).
pub fn curated_type(edm: &str, precision: Option<&str>, scale: Option<&str>) -> ColumnType {
    match edm {
        "Edm.Int64" | "Edm.Int32" | "Edm.Int16" | "Edm.Byte" | "Edm.SByte" => ColumnType::Bigint,
        "Edm.Double" | "Edm.Single" => ColumnType::Double,
        "Edm.Guid" => ColumnType::Uniqueidentifier,
        "Edm.Boolean" => ColumnType::Bool,
        "Edm.Date" => ColumnType::Date,
        "Edm.DateTimeOffset" => ColumnType::Timestamp,
        "Edm.Binary" => ColumnType::Binary,
        "Edm.Decimal" => {
            let precision: u8 = precision
                .and_then(|p| p.parse().ok())
                .filter(|p| (1..=38).contains(p))
                .unwrap_or(38);
            let scale: i8 = match scale {
                None => 0,
                Some("variable" | "floating") => 10,
                Some(s) => s.parse().unwrap_or(0),
            }
            .clamp(0, precision as i8);
            ColumnType::Decimal { precision, scale }
        }
        _ => ColumnType::Text,
    }
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A CSDL document describing `config`'s resources (one entity type per
/// resource, named after its entity set; the schema's namespace is the
/// source's name).
pub fn csdl(config: &SourceConfig) -> String {
    let ns = escape(&config.name);
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n\
         <edmx:DataServices>\n",
    );
    let _ = writeln!(
        x,
        "<Schema Namespace=\"{ns}\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">"
    );
    for r in &config.resources {
        let _ = writeln!(x, "<EntityType Name=\"{}\">", escape(r.entity_set()));
        x.push_str("<Key>");
        for k in &r.primary_key {
            if let Some(c) = r.column(k) {
                let _ = write!(x, "<PropertyRef Name=\"{}\"/>", escape(&c.source));
            }
        }
        x.push_str("</Key>\n");
        for c in &r.columns {
            let (t, facets) = edm_type(c.data_type);
            let nullable = if r.primary_key.contains(&c.name) {
                " Nullable=\"false\""
            } else {
                ""
            };
            let _ = writeln!(
                x,
                "<Property Name=\"{}\" Type=\"{t}\"{facets}{nullable}/>",
                escape(&c.source)
            );
        }
        x.push_str("</EntityType>\n");
    }
    x.push_str("<EntityContainer Name=\"Container\">\n");
    for r in &config.resources {
        let _ = writeln!(
            x,
            "<EntitySet Name=\"{0}\" EntityType=\"{ns}.{0}\"/>",
            escape(r.entity_set())
        );
    }
    x.push_str("</EntityContainer>\n</Schema>\n</edmx:DataServices>\n</edmx:Edmx>\n");
    x
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => Ok(Some(
            a.unescape_value()
                .ctx(ErrorKind::Source, || format!("$metadata: attribute {name}"))?
                .into_owned(),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::new(
            ErrorKind::Source,
            format!("$metadata: attribute {name}: {e}"),
        )),
    }
}

/// The part after the last `.` (`NS.Customer` -> `Customer`), and the
/// element type of a collection (`Collection(NS.X)` -> `X`).
fn short(qualified: &str) -> String {
    let inner = qualified
        .strip_prefix("Collection(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(qualified);
    inner.rsplit('.').next().unwrap_or(inner).to_string()
}

/// Parse a CSDL document.
pub fn parse(xml: &str) -> Result<ServiceModel> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut namespace = None;
    let mut types: BTreeMap<String, EntityType> = BTreeMap::new();
    let mut sets: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, EntityType)> = None;
    let mut in_key = false;
    let mut nav: Option<Navigation> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!(
                    "$metadata is not valid XML at byte {}: {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    b"EntityType" => {
                        if let Some((name, t)) = current.take() {
                            types.insert(name, t);
                        }
                    }
                    b"Key" => in_key = false,
                    b"NavigationProperty" => nav = None,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.local_name().as_ref() {
            b"Schema" if namespace.is_none() => namespace = attr(&e, "Namespace")?,
            b"EntityType" => {
                let name = attr(&e, "Name")?.unwrap_or_default();
                let t = EntityType {
                    base: attr(&e, "BaseType")?.map(|b| short(&b)),
                    ..EntityType::default()
                };
                if empty {
                    types.insert(name, t);
                } else {
                    current = Some((name, t));
                }
            }
            b"Key" => in_key = !empty,
            b"PropertyRef" if in_key => {
                if let (Some((_, t)), Some(n)) = (current.as_mut(), attr(&e, "Name")?) {
                    t.key.push(n);
                }
            }
            b"Property" => {
                if let (Some((_, t)), Some(n)) = (current.as_mut(), attr(&e, "Name")?) {
                    let edm = attr(&e, "Type")?.unwrap_or_default();
                    let p = attr(&e, "Precision")?;
                    let s = attr(&e, "Scale")?;
                    t.properties.push(Property {
                        name: n,
                        data_type: curated_type(&edm, p.as_deref(), s.as_deref()),
                    });
                }
            }
            b"NavigationProperty" => {
                let n = Navigation {
                    name: attr(&e, "Name")?.unwrap_or_default(),
                    target: short(&attr(&e, "Type")?.unwrap_or_default()),
                    constraints: Vec::new(),
                };
                if let Some((_, t)) = current.as_mut() {
                    t.navigations.push(n.clone());
                }
                // An empty element has no constraints to wait for.
                nav = (!empty).then_some(n);
            }
            b"ReferentialConstraint" => {
                if let (Some((_, t)), Some(p), Some(r)) = (
                    current.as_mut(),
                    attr(&e, "Property")?,
                    attr(&e, "ReferencedProperty")?,
                ) && let Some(last) = t.navigations.last_mut()
                    && nav.as_ref().is_some_and(|n| n.name == last.name)
                {
                    last.constraints.push((p, r));
                }
            }
            b"EntitySet" => {
                if let (Some(n), Some(t)) = (attr(&e, "Name")?, attr(&e, "EntityType")?) {
                    sets.push((n, short(&t)));
                }
            }
            _ => {}
        }
    }
    let resolve = |name: &str| -> Option<EntityType> {
        // The type with its base types' key and properties first.
        let mut chain = Vec::new();
        let mut at = Some(name.to_string());
        while let Some(n) = at {
            if chain.len() > 16 {
                break;
            }
            let t = types.get(&n)?;
            at = t.base.clone();
            chain.push(t.clone());
        }
        let mut out = EntityType::default();
        for t in chain.into_iter().rev() {
            out.key.extend(t.key);
            out.properties.extend(t.properties);
            out.navigations.extend(t.navigations);
        }
        Some(out)
    };
    let entity_sets = sets
        .into_iter()
        .map(|(name, entity_type)| {
            let t = resolve(&entity_type).ok_or_else(|| {
                Error::new(
                    ErrorKind::Source,
                    format!("$metadata: entity set {name} has the unknown type {entity_type}"),
                )
            })?;
            Ok(EntitySet {
                name,
                entity_type,
                key: t.key,
                properties: t.properties,
                navigations: t
                    .navigations
                    .into_iter()
                    .filter(|n| !n.constraints.is_empty())
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ServiceModel {
        namespace: namespace.unwrap_or_default(),
        entity_sets,
    })
}

/// Read `<base>/$metadata`.
pub async fn fetch(base: &str) -> Result<ServiceModel> {
    let (url, text) = fetch_document(base).await?;
    parse(&text).map_err(|e| e.context(format!("GET {url}")))
}

/// The text of `<base>/$metadata`, with the URL it was read from.
pub async fn fetch_document(base: &str) -> Result<(String, String)> {
    let base =
        Url::parse(base).ctx(ErrorKind::InvalidInput, || format!("`{base}` is not a URL"))?;
    let url = format!("{}/$metadata", base.as_str().trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/xml")
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .ctx(ErrorKind::Source, || format!("GET {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .ctx(ErrorKind::Source, || format!("GET {url}: reading the body"))?;
    if !status.is_success() {
        return Err(Error::new(
            ErrorKind::Source,
            format!("GET {url} failed with HTTP {status}"),
        ));
    }
    Ok((url, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:DataServices>
  <Schema Namespace="Shop.Model" xmlns="http://docs.oasis-open.org/odata/ns/edm">
   <EntityType Name="Base" Abstract="true">
    <Key><PropertyRef Name="Id"/></Key>
    <Property Name="Id" Type="Edm.Int32" Nullable="false"/>
    <Property Name="ModifiedDate" Type="Edm.DateTimeOffset"/>
   </EntityType>
   <EntityType Name="Order" BaseType="Shop.Model.Base">
    <Property Name="CustomerId" Type="Edm.Int64"/>
    <Property Name="Total" Type="Edm.Decimal" Precision="19" Scale="4"/>
    <Property Name="Rate" Type="Edm.Decimal" Scale="variable"/>
    <Property Name="Placed" Type="Edm.Date"/>
    <Property Name="Note" Type="Edm.String"/>
    <Property Name="Span" Type="Edm.Duration"/>
    <NavigationProperty Name="Customer" Type="Shop.Model.Customer">
     <ReferentialConstraint Property="CustomerId" ReferencedProperty="Id"/>
    </NavigationProperty>
    <NavigationProperty Name="Lines" Type="Collection(Shop.Model.Line)"/>
   </EntityType>
   <EntityType Name="Customer" BaseType="Shop.Model.Base">
    <Property Name="Name" Type="Edm.String"/>
   </EntityType>
   <EntityContainer Name="C">
    <EntitySet Name="Orders" EntityType="Shop.Model.Order"/>
    <EntitySet Name="Customers" EntityType="Shop.Model.Customer"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"#;

    #[test]
    fn entity_sets_keys_types_and_constraints_are_read() {
        let m = parse(DOC).unwrap();
        assert_eq!(m.namespace, "Shop.Model");
        let names: Vec<&str> = m.entity_sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Orders", "Customers"]);
        let orders = &m.entity_sets[0];
        assert_eq!(orders.key, ["Id"]);
        let types: Vec<(String, String)> = orders
            .properties
            .iter()
            .map(|p| (p.name.clone(), p.data_type.to_string()))
            .collect();
        let want = [
            ("Id", "bigint"),
            ("ModifiedDate", "timestamp"),
            ("CustomerId", "bigint"),
            ("Total", "decimal(19,4)"),
            ("Rate", "decimal(38,10)"),
            ("Placed", "date"),
            ("Note", "text"),
            ("Span", "text"),
        ];
        assert_eq!(
            types,
            want.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            orders.navigations,
            vec![Navigation {
                name: "Customer".into(),
                target: "Customer".into(),
                constraints: vec![("CustomerId".into(), "Id".into())],
            }]
        );
        assert_eq!(m.entity_sets[1].properties.len(), 3);
    }

    #[test]
    fn a_source_config_round_trips_through_csdl() {
        let config = SourceConfig::adventure_works().unwrap();
        let m = parse(&csdl(&config)).unwrap();
        assert_eq!(m.entity_sets.len(), config.resources.len());
        for (r, s) in config.resources.iter().zip(&m.entity_sets) {
            assert_eq!(r.entity_set(), s.name);
            let key: Vec<String> = r
                .primary_key
                .iter()
                .map(|k| r.column(k).unwrap().source.clone())
                .collect();
            assert_eq!(key, s.key, "{}", r.table);
            for (c, p) in r.columns.iter().zip(&s.properties) {
                assert_eq!(c.source, p.name);
                let want = match c.data_type {
                    ColumnType::Xml => ColumnType::Text,
                    t => t,
                };
                assert_eq!(want, p.data_type, "{}.{}", r.table, c.source);
            }
        }
    }

    #[test]
    fn malformed_documents_are_errors() {
        let e = parse("<a><b></a>").unwrap_err().to_string();
        assert!(e.contains("$metadata is not valid XML"), "{e}");
        let e = parse(
            "<Schema Namespace=\"N\"><EntityContainer><EntitySet Name=\"X\" EntityType=\"N.Y\"/></EntityContainer></Schema>",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("entity set X has the unknown type Y"), "{e}");
    }
}
