//! The tables the demo generator makes: the landing table of each, in
//! pipeline order, with an index constant per table (used by the
//! generator's simulation) and the tables whose old rows may be left out
//! ([`PRUNABLE`]). Shared by the generator and its table store, below both.
//!
//! The generator declares only which tables it makes. Their API paths, true
//! keys and cursor columns are the built-in source config's
//! (`config/sources/adventure_works.yaml`), bound to the tables by landing
//! name ([`bind`]): one declaration, checked both ways (every resource of
//! the config is a table the generator makes, and every table it makes has
//! a resource).

use std::sync::LazyLock;

use crate::config::SourceConfig;
use crate::error::{Error, Result};

/// A generated table, as the source config describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct TableDef {
    /// Landing table name.
    pub table: &'static str,
    /// API path.
    pub api_path: String,
    /// True primary key columns.
    pub key: Vec<String>,
    /// The cursor column (snake_case): a row's version date, by which
    /// horizons leave rows out.
    pub cursor: String,
}

macro_rules! defs {
    ($( $const:ident = $table:literal );+ $(;)?) => {
        /// The landing table of every generated table, in pipeline order.
        pub const TABLES: &[&str] = &[
            $( concat!("raw__adventure_works__", $table) ),+
        ];
        defs!(@idx 0usize; $($const)+);
    };
    (@idx $n:expr; $first:ident $($rest:ident)*) => {
        pub(super) const $first: usize = $n;
        defs!(@idx $n + 1usize; $($rest)*);
    };
    (@idx $n:expr;) => {};
}

defs! {
    DEPARTMENTS = "departments";
    EMPLOYEES = "employees";
    EMPLOYEE_PAY_HISTORIES = "employee_pay_histories";
    EMPLOYEE_DEPARTMENT_HISTORIES = "employee_department_histories";
    JOB_CANDIDATES = "job_candidates";
    SHIFTS = "shifts";
    ADDRESSES = "addresses";
    ADDRESS_TYPES = "address_types";
    BUSINESS_ENTITY_ADDRESSES = "business_entity_addresses";
    BUSINESS_ENTITY_CONTACTS = "business_entity_contacts";
    CONTACT_TYPES = "contact_types";
    COUNTRY_REGIONS = "country_regions";
    EMAIL_ADDRESSES = "email_addresses";
    PERSON_PHONES = "person_phones";
    PHONE_NUMBER_TYPES = "phone_number_types";
    PERSONS = "persons";
    STATE_PROVINCES = "state_provinces";
    BILL_OF_MATERIALS = "bill_of_materials";
    CULTURES = "cultures";
    ILLUSTRATIONS = "illustrations";
    LOCATIONS = "locations";
    PRODUCT_CATEGORIES = "product_categories";
    PRODUCT_COST_HISTORIES = "product_cost_histories";
    PRODUCT_DESCRIPTIONS = "product_descriptions";
    PRODUCT_INVENTORIES = "product_inventories";
    PRODUCT_LIST_PRICE_HISTORIES = "product_list_price_histories";
    PRODUCT_MODEL_ILLUSTRATIONS = "product_model_illustrations";
    PRODUCT_MODELS = "product_models";
    PRODUCT_PHOTOS = "product_photos";
    PRODUCT_REVIEWS = "product_reviews";
    PRODUCTS = "products";
    PRODUCT_SUBCATEGORIES = "product_subcategories";
    SCRAP_REASONS = "scrap_reasons";
    TRANSACTION_HISTORIES = "transaction_histories";
    TRANSACTION_HISTORY_ARCHIVES = "transaction_history_archives";
    UNIT_MEASURES = "unit_measures";
    WORK_ORDERS = "work_orders";
    WORK_ORDER_ROUTINGS = "work_order_routings";
    PRODUCT_VENDORS = "product_vendors";
    PURCHASE_ORDER_DETAILS = "purchase_order_details";
    PURCHASE_ORDER_HEADERS = "purchase_order_headers";
    SHIP_METHODS = "ship_methods";
    VENDORS = "vendors";
    CREDIT_CARDS = "credit_cards";
    CURRENCIES = "currencies";
    CURRENCY_RATES = "currency_rates";
    CUSTOMERS = "customers";
    SALES_ORDER_HEADERS = "sales_order_headers";
    SALES_ORDER_DETAILS = "sales_order_details";
    SALES_PERSONS = "sales_persons";
    SALES_PERSON_QUOTA_HISTORIES = "sales_person_quota_histories";
    SALES_REASONS = "sales_reasons";
    SALES_TAX_RATES = "sales_tax_rates";
    SALES_TERRITORIES = "sales_territories";
    SALES_TERRITORY_HISTORIES = "sales_territory_histories";
    SHOPPING_CART_ITEMS = "shopping_cart_items";
    SPECIAL_OFFERS = "special_offers";
    STORES = "stores";
}

/// The tables whose rows the generator may leave out before a horizon (see
/// the module docs): rows are only ever appended to them, and nothing reads
/// a row back once made.
pub const PRUNABLE: [usize; 11] = [
    BUSINESS_ENTITY_ADDRESSES,
    EMAIL_ADDRESSES,
    PERSON_PHONES,
    TRANSACTION_HISTORIES,
    TRANSACTION_HISTORY_ARCHIVES,
    WORK_ORDER_ROUTINGS,
    PURCHASE_ORDER_DETAILS,
    CREDIT_CARDS,
    CURRENCY_RATES,
    CUSTOMERS,
    SALES_ORDER_DETAILS,
];

/// The API paths of the [`PRUNABLE`] tables, as the built-in source
/// config names them.
pub fn prunable_paths() -> Result<impl Iterator<Item = &'static str>> {
    let defs = table_defs()?;
    Ok(PRUNABLE.iter().map(|&i| defs[i].api_path.as_str()))
}

/// The generated tables as the built-in source config
/// ([`SourceConfig::adventure_works`]) describes them, in [`TABLES`] order;
/// bound once per process.
pub fn table_defs() -> Result<&'static [TableDef]> {
    static DEFS: LazyLock<std::result::Result<Vec<TableDef>, String>> = LazyLock::new(|| {
        SourceConfig::adventure_works()
            .and_then(|config| bind(&config))
            .map_err(|e| e.to_string())
    });
    DEFS.as_deref().map_err(|e| Error::invalid(e.clone()))
}

/// Each table of [`TABLES`] with its resource in `config`: its API path,
/// true key and cursor column. Fails when a generated table has no resource
/// in `config`, or `config` has a resource the generator does not make.
pub fn bind(config: &SourceConfig) -> Result<Vec<TableDef>> {
    let origin = &config.origin;
    if let Some(r) = config
        .resources
        .iter()
        .find(|r| !TABLES.contains(&r.table.as_str()))
    {
        return Err(Error::invalid(format!(
            "{origin}: resource `{}` ({}) is not a table the embedded generator makes",
            r.table, r.api_path
        )));
    }
    TABLES
        .iter()
        .map(|&table| {
            let r = config.resource_by_table(table).ok_or_else(|| {
                Error::invalid(format!(
                    "{origin}: no resource lands `{table}`, a table the embedded generator makes"
                ))
            })?;
            let cursor = r.cursor_column().ok_or_else(|| {
                Error::invalid(format!(
                    "{origin}: resource `{table}`: cursor_field `{}` names no column",
                    r.cursor_field
                ))
            })?;
            Ok(TableDef {
                table,
                api_path: r.api_path.clone(),
                key: r.primary_key.clone(),
                cursor: cursor.name.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_fails_on_a_table_either_side_lacks() {
        let mut config = SourceConfig::adventure_works().expect("built-in config");
        let bound = bind(&config).expect("the built-in config binds");
        assert_eq!(bound.len(), TABLES.len());
        assert_eq!(bound[SALES_ORDER_DETAILS].api_path, "/SalesOrderDetails");
        assert_eq!(bound[SALES_ORDER_DETAILS].cursor, "modified_date");

        let stores = config.resources.pop().expect("a resource");
        let e = bind(&config).unwrap_err().to_string();
        assert!(
            e.contains("no resource lands `raw__adventure_works__stores`"),
            "{e}"
        );

        config.resources.push(stores);
        config.resources[0].table = "raw__adventure_works__unknown".into();
        let e = bind(&config).unwrap_err().to_string();
        assert!(
            e.contains(
                "resource `raw__adventure_works__unknown` (/Departments) is not a table the embedded generator makes"
            ),
            "{e}"
        );
    }
}
