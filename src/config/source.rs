//! Source-system configuration: `config/sources/<system>.yaml`.
//!
//! A source file describes one OData system: its base URL (or `embedded` for
//! the local generator, see [`crate::source`]), the page size the embedded
//! server uses, and its resources. Each resource has an API path
//! (`/SalesOrderHeaders`), the landing table name
//! (`raw__adventure_works__sales_order_headers`), its **true** primary key
//! (snake_case column names), the cursor field in API spelling
//! (`ModifiedDate`) and its curated columns in landing order: API name,
//! snake_case column name and curated type.
//!
//! Invariants checked by [`SourceConfig::validate`] (every error names the
//! file, the resource and the field):
//! - at least one resource; table names and API paths are unique;
//! - API paths start with `/` and contain no query; table names are
//!   snake_case identifiers;
//! - within a resource, column names and source names are unique (that each
//!   column name is the snake_case normalisation of its source name is
//!   checked by the extraction layer, `extract::naming::check_names`, since
//!   the naming rules belong there);
//! - the primary key is non-empty and every key column is a column;
//! - the cursor field is the source name of a `date` or `timestamp` column;
//! - the page size is at least 1; the base URL is `embedded` or an absolute
//!   `http(s)` URL.
//!
//! Types are the curated types of the original project; unknown type names
//! are rejected at parse time with the list of accepted ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::rest::{
    AuthConfig, Lookback, PaginatorConfig, RateLimit, RestSource, SourceKind,
};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// The Adventure Works source file, compiled into the binary so the embedded
/// source works from any directory.
pub const ADVENTURE_WORKS_YAML: &str = include_str!("../../config/sources/adventure_works.yaml");

/// Where the source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// The embedded generator served by [`crate::source::server`].
    Embedded,
    /// A real OData service, e.g. `https://host/odata/v1/`.
    Http(url::Url),
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaseUrl::Embedded => f.write_str("embedded"),
            BaseUrl::Http(u) => write!(f, "{u}"),
        }
    }
}

/// A curated column type (the `data_type` vocabulary of the original, plus
/// `decimal(p,s)` for exact amounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnType {
    Text,
    Bigint,
    Date,
    Double,
    Uniqueidentifier,
    Bool,
    Xml,
    Timestamp,
    Binary,
    /// An exact decimal: `precision` digits in all (1..=38), `scale` of
    /// them after the point (0..=precision). Lands as Arrow `Decimal128`
    /// and Iceberg `decimal(p,s)`.
    Decimal {
        precision: u8,
        scale: i8,
    },
}

/// The type names a YAML file may use, for error messages.
pub const TYPE_NAMES: &str =
    "text, bigint, date, double, uniqueidentifier, bool, xml, timestamp, binary, decimal(p,s)";

impl ColumnType {
    /// Whether sums over the type are meaningful (a measure's `value`).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            ColumnType::Bigint | ColumnType::Double | ColumnType::Decimal { .. }
        )
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ColumnType::Text => "text",
            ColumnType::Bigint => "bigint",
            ColumnType::Date => "date",
            ColumnType::Double => "double",
            ColumnType::Uniqueidentifier => "uniqueidentifier",
            ColumnType::Bool => "bool",
            ColumnType::Xml => "xml",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Binary => "binary",
            ColumnType::Decimal { precision, scale } => {
                return write!(f, "decimal({precision},{scale})");
            }
        };
        f.write_str(name)
    }
}

impl std::str::FromStr for ColumnType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim() {
            "text" => ColumnType::Text,
            "bigint" => ColumnType::Bigint,
            "date" => ColumnType::Date,
            "double" => ColumnType::Double,
            "uniqueidentifier" => ColumnType::Uniqueidentifier,
            "bool" => ColumnType::Bool,
            "xml" => ColumnType::Xml,
            "timestamp" => ColumnType::Timestamp,
            "binary" => ColumnType::Binary,
            other => {
                let args = other
                    .strip_prefix("decimal(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!("unknown type `{other}`: expected one of {TYPE_NAMES}")
                    })?;
                let (p, sc) = args.split_once(',').ok_or_else(|| {
                    format!("type `{other}`: write a decimal as decimal(precision,scale)")
                })?;
                let precision: u8 = p.trim().parse().map_err(|_| {
                    format!("type `{other}`: precision `{}` is not a number", p.trim())
                })?;
                let scale: i8 = sc.trim().parse().map_err(|_| {
                    format!("type `{other}`: scale `{}` is not a number", sc.trim())
                })?;
                if !(1..=38).contains(&precision) {
                    return Err(format!(
                        "type `{other}`: precision must be 1 to 38, not {precision}"
                    ));
                }
                if scale < 0 || scale as u8 > precision {
                    return Err(format!(
                        "type `{other}`: scale must be 0 to the precision ({precision}), not {scale}"
                    ));
                }
                ColumnType::Decimal { precision, scale }
            }
        })
    }
}

impl Serialize for ColumnType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One curated column of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// snake_case column name in the landing table.
    pub name: String,
    /// The member name in the API's JSON (PascalCase for Adventure Works).
    pub source: String,
    /// Curated type.
    #[serde(rename = "type")]
    pub data_type: ColumnType,
}

/// One resource (entity set) of the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Landing table name, e.g. `raw__adventure_works__sales_order_headers`.
    pub table: String,
    /// Path below the base URL, e.g. `/SalesOrderHeaders`.
    pub api_path: String,
    /// The true primary key (column names, in key order). May be left out
    /// with the columns: then it is the key the service's `$metadata` gives.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Incremental cursor field, API spelling (e.g. `ModifiedDate`).
    pub cursor_field: String,
    /// Curated columns in landing order. Left out (OData over http), they
    /// are discovered from the service's `$metadata` (see
    /// [`SourceConfig::from_yaml_discovering`]).
    #[serde(default)]
    pub columns: Vec<ColumnConfig>,
    /// How far before the landed cursor each run reads again (any kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<Lookback>,
    /// REST: dotted path to the records array in a response (`data`,
    /// `result.items`); absent: the body itself is the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_selector: Option<String>,
    /// REST: fixed query parameters of every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// REST: this resource's paginator (default: the source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginator: Option<PaginatorConfig>,
    /// REST: the query parameter carrying the cursor (rows changed at or
    /// after it). Absent: the whole resource is read every run and only new
    /// or changed rows land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
}

impl ResourceConfig {
    /// Whether `name` names this resource: its table name, its API path, its
    /// entity set, or the table name's last part (`sales_order_headers`).
    pub fn is_named(&self, name: &str) -> bool {
        self.table == name
            || self.api_path == name
            || self.entity_set() == name
            || self.table.ends_with(&format!("__{name}"))
    }

    /// The column with this snake_case name.
    pub fn column(&self, name: &str) -> Option<&ColumnConfig> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column with this API (source) name.
    pub fn column_by_source(&self, source: &str) -> Option<&ColumnConfig> {
        self.columns.iter().find(|c| c.source == source)
    }

    /// The cursor column (validated to exist).
    pub fn cursor_column(&self) -> Option<&ColumnConfig> {
        self.column_by_source(&self.cursor_field)
    }

    /// The entity set name: the API path without its leading `/`.
    pub fn entity_set(&self) -> &str {
        self.api_path.trim_start_matches('/')
    }

    /// The look-back (zero when not configured).
    pub fn lookback(&self) -> std::time::Duration {
        self.lookback.map(|l| l.0).unwrap_or_default()
    }

    /// The REST-only keys this resource sets (refused on an OData source).
    fn rest_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.data_selector.is_some() {
            keys.push("data_selector");
        }
        if !self.params.is_empty() {
            keys.push("params");
        }
        if self.paginator.is_some() {
            keys.push("paginator");
        }
        if self.cursor_param.is_some() {
            keys.push("cursor_param");
        }
        keys
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceConfig {
    name: String,
    #[serde(default)]
    kind: SourceKind,
    base_url: String,
    #[serde(default)]
    auth: Option<AuthConfig>,
    #[serde(default)]
    paginator: Option<PaginatorConfig>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default = "default_page_size")]
    page_size: usize,
    resources: Vec<ResourceConfig>,
}

fn default_page_size() -> usize {
    1000
}

/// What a service's `$metadata` says of one entity set, as config: its
/// columns and its key (column names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredSet {
    pub columns: Vec<ColumnConfig>,
    pub key: Vec<String>,
}

/// Reads a source's entity sets (by name) from its service, for
/// [`SourceConfig::from_yaml_discovering`].
pub type Discover<'a> =
    &'a mut dyn FnMut(&SourceConfig) -> Result<std::collections::BTreeMap<String, DiscoveredSet>>;

/// A parsed and validated source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Source system name (`adventure_works`).
    pub name: String,
    /// What the source speaks (OData or plain REST JSON).
    pub kind: SourceKind,
    /// Where the source is served.
    pub base_url: BaseUrl,
    /// Authentication, paging default and rate limit.
    pub rest: RestSource,
    /// Page size of the embedded server (server-driven paging).
    pub page_size: usize,
    /// The resources, in extraction order.
    pub resources: Vec<ResourceConfig>,
    /// The file it was read from (for error messages).
    pub origin: String,
}

impl SourceConfig {
    /// Read, parse and validate a source file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).ctx(ErrorKind::InvalidInput, || {
            format!("cannot read source config {}", path.display())
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parse and validate YAML text; `origin` names the file in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self> {
        Self::from_yaml_discovering(text, origin, None)
    }

    /// [`Self::from_yaml`], completing resources that list no columns from
    /// what `discover` says of the service's entity sets (by name): their
    /// columns (every property, snake_case names, curated types) and, when
    /// the resource names none, their key. Only an OData source over http
    /// can be discovered; elsewhere, or without `discover`, a resource
    /// without columns is refused.
    pub fn from_yaml_discovering(
        text: &str,
        origin: &str,
        discover: Option<Discover<'_>>,
    ) -> Result<Self> {
        let raw: RawSourceConfig = serde_yaml::from_str(text)
            .ctx(ErrorKind::InvalidInput, || {
                format!("{origin}: invalid source config")
            })?;
        let base_url = if raw.base_url == "embedded" {
            BaseUrl::Embedded
        } else {
            let url = url::Url::parse(&raw.base_url).ctx(ErrorKind::InvalidInput, || {
                format!(
                    "{origin}: base_url `{}` is neither `embedded` nor a URL",
                    raw.base_url
                )
            })?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(Error::invalid(format!(
                    "{origin}: base_url `{url}` must use http or https"
                )));
            }
            BaseUrl::Http(url)
        };
        let config = SourceConfig {
            name: raw.name,
            kind: raw.kind,
            base_url,
            rest: RestSource {
                auth: raw.auth,
                paginator: raw.paginator,
                rate_limit: raw.rate_limit,
            },
            page_size: raw.page_size,
            resources: raw.resources,
            origin: origin.to_string(),
        };
        let mut config = config;
        if let Some(discover) = discover
            && config.kind == SourceKind::Odata
            && matches!(config.base_url, BaseUrl::Http(_))
            && config.resources.iter().any(|r| r.columns.is_empty())
        {
            let sets = discover(&config)?;
            for r in config.resources.iter_mut().filter(|r| r.columns.is_empty()) {
                let set = sets.get(r.entity_set()).ok_or_else(|| {
                    let known: Vec<&str> = sets.keys().map(String::as_str).take(12).collect();
                    Error::invalid(format!(
                        "{origin}: resource `{}`: the service's $metadata has no entity set `{}` (it has {}{})",
                        r.table,
                        r.entity_set(),
                        known.join(", "),
                        if sets.len() > known.len() { ", ..." } else { "" }
                    ))
                })?;
                r.columns = set.columns.clone();
                if r.primary_key.is_empty() {
                    r.primary_key = set.key.clone();
                }
            }
        }
        config.validate(origin)?;
        Ok(config)
    }

    /// The Adventure Works source compiled into the binary.
    pub fn adventure_works() -> Result<Self> {
        Self::from_yaml(ADVENTURE_WORKS_YAML, "config/sources/adventure_works.yaml")
    }

    /// The source's credentials, read from the environment now (`None`:
    /// no auth configured); an unset variable is an error naming the file.
    pub fn credentials(&self) -> Result<Option<crate::config::Credentials>> {
        self.rest
            .auth
            .as_ref()
            .map(|a| a.resolve(&self.origin))
            .transpose()
    }

    /// The resource with this API path (`/Customers`).
    pub fn resource_by_path(&self, api_path: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.api_path == api_path)
    }

    /// The resource with this landing table name.
    pub fn resource_by_table(&self, table: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.table == table)
    }

    /// Check the invariants listed in the module docs.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let err = |msg: String| Err(Error::invalid(format!("{origin}: {msg}")));
        if !is_identifier(&self.name) {
            return err(format!(
                "source name `{}` is not a snake_case identifier",
                self.name
            ));
        }
        if self.page_size == 0 {
            return err("page_size must be at least 1".to_string());
        }
        if self.resources.is_empty() {
            return err("no resources configured".to_string());
        }
        if let Some(r) = &self.rest.rate_limit
            && !(r.requests_per_second.is_finite() && r.requests_per_second > 0.0)
        {
            return err(format!(
                "rate_limit: requests_per_second must be a positive number, not {}",
                r.requests_per_second
            ));
        }
        match self.kind {
            SourceKind::Odata if self.rest.paginator.is_some() => {
                return err(
                    "paginator: OData sources page by @odata.nextLink; paginators are for `kind: rest`"
                        .into(),
                );
            }
            SourceKind::Rest if self.base_url == BaseUrl::Embedded => {
                return err(
                    "a `kind: rest` source needs an http(s) base_url, not `embedded`".into(),
                );
            }
            _ => {}
        }
        if let Some(p) = &self.rest.paginator {
            p.validate(origin)?;
        }
        let mut tables = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for r in &self.resources {
            let at = format!("resource `{}`", r.table);
            if !is_identifier(&r.table) {
                return err(format!("{at}: table name is not a snake_case identifier"));
            }
            if !tables.insert(r.table.as_str()) {
                return err(format!("{at}: duplicate table name"));
            }
            if !r.api_path.starts_with('/')
                || r.api_path.len() < 2
                || r.api_path.contains(['?', '#', ' '])
            {
                return err(format!(
                    "{at}: api_path `{}` must look like `/EntitySet` (query parameters go in `params`)",
                    r.api_path
                ));
            }
            if !paths.insert(r.api_path.as_str()) {
                return err(format!("{at}: duplicate api_path `{}`", r.api_path));
            }
            if r.columns.is_empty() {
                return err(format!(
                    "{at}: no columns (list them, or give an OData source an http(s) base_url \
                     so they are read from its $metadata)"
                ));
            }
            match self.kind {
                SourceKind::Odata => {
                    if let Some(k) = r.rest_keys().first() {
                        return err(format!(
                            "{at}: `{k}` applies to `kind: rest` sources only (this source speaks OData)"
                        ));
                    }
                }
                SourceKind::Rest => {
                    if let Some(p) = &r.paginator {
                        p.validate(&format!("{origin}: {at}"))?;
                    }
                    for (key, v) in [
                        ("data_selector", &r.data_selector),
                        ("cursor_param", &r.cursor_param),
                    ] {
                        if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                            return err(format!("{at}: {key} is empty"));
                        }
                    }
                }
            }
            let mut names = BTreeSet::new();
            let mut sources = BTreeSet::new();
            for c in &r.columns {
                if !names.insert(c.name.as_str()) {
                    return err(format!("{at}: duplicate column `{}`", c.name));
                }
                if !sources.insert(c.source.as_str()) {
                    return err(format!("{at}: duplicate source field `{}`", c.source));
                }
            }
            if r.primary_key.is_empty() {
                return err(format!("{at}: primary_key is empty"));
            }
            let mut seen_key = BTreeSet::new();
            for k in &r.primary_key {
                if r.column(k).is_none() {
                    return err(format!(
                        "{at}: primary key column `{k}` is not among the columns"
                    ));
                }
                if !seen_key.insert(k.as_str()) {
                    return err(format!("{at}: primary key column `{k}` is listed twice"));
                }
            }
            match r.cursor_column() {
                None => {
                    return err(format!(
                        "{at}: cursor_field `{}` is not the source name of any column",
                        r.cursor_field
                    ));
                }
                Some(c) if !matches!(c.data_type, ColumnType::Date | ColumnType::Timestamp) => {
                    return err(format!(
                        "{at}: cursor_field `{}` has type {}, expected date or timestamp",
                        r.cursor_field, c.data_type
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Whether `s` is a snake_case identifier (lowercase letters, digits and
/// `_`, not starting with a digit).
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name: demo
base_url: embedded
page_size: 10
resources:
  - table: raw__demo__things
    api_path: /Things
    primary_key: [thing_id]
    cursor_field: ModifiedDate
    columns:
      - { name: thing_id, source: ThingId, type: bigint }
      - { name: modified_date, source: ModifiedDate, type: date }
"#;

    fn parse_err(text: &str) -> String {
        match SourceConfig::from_yaml(text, "things.yaml") {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput);
                format!("{e:#}")
            }
        }
    }

    #[test]
    fn embedded_adventure_works_parses() {
        let c = SourceConfig::adventure_works().expect("embedded config is valid");
        assert_eq!(c.name, "adventure_works");
        assert_eq!(c.base_url, BaseUrl::Embedded);
        assert_eq!(c.resources.len(), 58);
        let soh = c
            .resource_by_path("/SalesOrderHeaders")
            .expect("sales order headers configured");
        assert_eq!(soh.table, "raw__adventure_works__sales_order_headers");
        assert_eq!(soh.columns.len(), 25);
        assert_eq!(soh.primary_key, vec!["sales_order_id".to_string()]);
        let bea = c
            .resource_by_table("raw__adventure_works__business_entity_addresses")
            .expect("bea configured");
        assert_eq!(
            bea.primary_key,
            vec!["business_entity_id", "address_id", "address_type_id"]
        );
        let total: usize = c.resources.iter().map(|r| r.columns.len()).sum();
        assert_eq!(total, 415);
    }

    #[test]
    fn minimal_parses() {
        let c = SourceConfig::from_yaml(MINIMAL, "things.yaml").expect("valid");
        assert_eq!(c.page_size, 10);
        assert_eq!(c.resources[0].entity_set(), "Things");
        assert_eq!(
            c.resources[0].cursor_column().map(|c| c.name.as_str()),
            Some("modified_date")
        );
    }

    #[test]
    fn decimal_types_parse_and_print_as_written() {
        let t: ColumnType = "decimal(19,4)".parse().unwrap();
        assert_eq!(
            t,
            ColumnType::Decimal {
                precision: 19,
                scale: 4
            }
        );
        assert_eq!(t.to_string(), "decimal(19,4)");
        assert!(t.is_numeric());
        assert_eq!(
            "decimal( 38 , 0 )"
                .parse::<ColumnType>()
                .unwrap()
                .to_string(),
            "decimal(38,0)"
        );
        for (bad, why) in [
            ("decimal(39,2)", "precision must be 1 to 38"),
            ("decimal(5,6)", "scale must be 0 to the precision (5)"),
            ("decimal(10)", "decimal(precision,scale)"),
            ("decimal(x,2)", "precision `x` is not a number"),
            ("money", "expected one of text, bigint"),
        ] {
            let e = bad.parse::<ColumnType>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let c = SourceConfig::from_yaml(
            &MINIMAL.replace(
                "      - { name: modified_date",
                "      - { name: price, source: Price, type: \"decimal(19,4)\" }\n      - { name: modified_date",
            ),
            "things.yaml",
        )
        .expect("valid");
        assert_eq!(
            c.resources[0].column("price").map(|c| c.data_type),
            Some(ColumnType::Decimal {
                precision: 19,
                scale: 4
            })
        );
        let msg = parse_err(&MINIMAL.replace("type: bigint", "type: \"decimal(40,2)\""));
        assert!(msg.contains("things.yaml"), "{msg}");
        assert!(msg.contains("precision must be 1 to 38"), "{msg}");
    }

    #[test]
    fn unknown_type_is_rejected() {
        let msg = parse_err(&MINIMAL.replace("type: bigint", "type: integer"));
        assert!(msg.contains("things.yaml"), "{msg}");
        assert!(msg.contains("integer"), "{msg}");
    }

    #[test]
    fn duplicate_table_is_rejected() {
        let doubled = format!(
            "{MINIMAL}{}",
            MINIMAL
                .split("resources:\n")
                .nth(1)
                .expect("resources section")
                .replace("/Things", "/OtherThings")
        );
        let msg = parse_err(&doubled);
        assert!(
            msg.contains("things.yaml: resource `raw__demo__things`: duplicate table name"),
            "{msg}"
        );
    }

    #[test]
    fn key_not_among_columns_is_rejected() {
        let msg = parse_err(&MINIMAL.replace("[thing_id]", "[thing_id, other_id]"));
        assert!(
            msg.contains("resource `raw__demo__things`: primary key column `other_id` is not among the columns"),
            "{msg}"
        );
    }

    #[test]
    fn empty_resources_are_rejected() {
        let text = MINIMAL
            .split("resources:")
            .next()
            .expect("head")
            .to_string()
            + "resources: []\n";
        let msg = parse_err(&text);
        assert!(
            msg.contains("things.yaml: no resources configured"),
            "{msg}"
        );
    }

    #[test]
    fn empty_key_is_rejected() {
        let msg = parse_err(&MINIMAL.replace("[thing_id]", "[]"));
        assert!(msg.contains("primary_key is empty"), "{msg}");
    }

    #[test]
    fn unknown_cursor_is_rejected() {
        let msg =
            parse_err(&MINIMAL.replace("cursor_field: ModifiedDate", "cursor_field: UpdatedAt"));
        assert!(
            msg.contains("cursor_field `UpdatedAt` is not the source name of any column"),
            "{msg}"
        );
    }

    #[test]
    fn bad_base_url_is_rejected() {
        let msg = parse_err(&MINIMAL.replace("base_url: embedded", "base_url: ftp://x/"));
        assert!(msg.contains("must use http or https"), "{msg}");
        let msg = parse_err(&MINIMAL.replace("page_size: 10", "page_size: 0"));
        assert!(msg.contains("page_size must be at least 1"), "{msg}");
    }

    #[test]
    fn rest_keys_are_checked_by_kind() {
        let msg = parse_err(&MINIMAL.replace(
            "    cursor_field: ModifiedDate",
            "    cursor_field: ModifiedDate\n    paginator: { type: single_page }",
        ));
        assert!(
            msg.contains(
                "resource `raw__demo__things`: `paginator` applies to `kind: rest` sources only"
            ),
            "{msg}"
        );
        let msg = parse_err(&MINIMAL.replace("name: demo", "name: demo\nkind: rest"));
        assert!(
            msg.contains("needs an http(s) base_url, not `embedded`"),
            "{msg}"
        );
        let rest = MINIMAL
            .replace("name: demo", "name: demo\nkind: rest\nrate_limit: { requests_per_second: 2.5 }")
            .replace("base_url: embedded", "base_url: https://api.example/v1/")
            .replace(
                "    cursor_field: ModifiedDate",
                "    cursor_field: ModifiedDate\n    data_selector: data\n    cursor_param: since\n    lookback: 2h",
            );
        let c = SourceConfig::from_yaml(&rest, "things.yaml").expect("valid");
        assert_eq!(c.kind, SourceKind::Rest);
        assert_eq!(
            c.resources[0].lookback(),
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(c.resources[0].cursor_param.as_deref(), Some("since"));
        let msg = parse_err(&rest.replace("2.5", "0"));
        assert!(
            msg.contains("requests_per_second must be a positive number"),
            "{msg}"
        );
        let msg = parse_err(&rest.replace("lookback: 2h", "lookback: later"));
        assert!(msg.contains("lookback `later` is not a duration"), "{msg}");
        let msg = parse_err(&rest.replace("data_selector: data", "data_selector: \"\""));
        assert!(msg.contains("data_selector is empty"), "{msg}");
    }

    #[test]
    fn resources_without_columns_are_completed_by_discovery() {
        let bare = MINIMAL
            .replace("base_url: embedded", "base_url: http://crm.example/odata/")
            .replace("    primary_key: [thing_id]\n", "");
        let bare = &bare[..bare.find("    columns:").unwrap()];
        let msg = parse_err(bare);
        assert!(
            msg.contains("no columns (list them, or give an OData source"),
            "{msg}"
        );
        let col = |name: &str, source: &str, data_type| ColumnConfig {
            name: name.into(),
            source: source.into(),
            data_type,
        };
        let set = DiscoveredSet {
            columns: vec![
                col("thing_id", "ThingId", ColumnType::Bigint),
                col("modified_date", "ModifiedDate", ColumnType::Date),
            ],
            key: vec!["thing_id".into()],
        };
        let mut asked = 0;
        let c = SourceConfig::from_yaml_discovering(
            bare,
            "things.yaml",
            Some(&mut |_: &SourceConfig| {
                asked += 1;
                Ok([("Things".to_string(), set.clone())].into())
            }),
        )
        .expect("completed");
        assert_eq!(asked, 1);
        assert_eq!(c.resources[0].columns, set.columns);
        assert_eq!(c.resources[0].primary_key, vec!["thing_id"]);
        let e = SourceConfig::from_yaml_discovering(
            bare,
            "things.yaml",
            Some(&mut |_: &SourceConfig| Ok([("Others".to_string(), set.clone())].into())),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "things.yaml: resource `raw__demo__things`: the service's $metadata has no entity set `Things` (it has Others)"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let msg =
            parse_err(&MINIMAL.replace("    cursor_field:", "    cursor: x\n    cursor_field:"));
        assert!(msg.contains("unknown field `cursor`"), "{msg}");
    }
}
