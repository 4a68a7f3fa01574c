//! The tables the demo generator makes: landing table, API path and true
//! key of each, in pipeline order, with an index constant per table (used by
//! the generator's simulation) and the tables whose old rows may be left
//! out ([`PRUNABLE`]). Shared by the generator and its table store, below
//! both.

/// Static description of a generated table.
#[derive(Debug, PartialEq, Eq)]
pub struct TableDef {
    /// Landing table name.
    pub table: &'static str,
    /// API path.
    pub api_path: &'static str,
    /// True primary key columns.
    pub key: &'static [&'static str],
}

macro_rules! defs {
    ($( $const:ident = $table:literal, $path:literal, [$($k:literal),+] );+ $(;)?) => {
        /// All generated tables, in pipeline order.
        pub const TABLE_DEFS: &[TableDef] = &[
            $( TableDef { table: concat!("raw__adventure_works__", $table), api_path: $path, key: &[$($k),+] } ),+
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
    DEPARTMENTS = "departments", "/Departments", ["department_id"];
    EMPLOYEES = "employees", "/Employees", ["business_entity_id"];
    EMPLOYEE_PAY_HISTORIES = "employee_pay_histories", "/EmployeePayHistories", ["business_entity_id", "rate_change_date"];
    EMPLOYEE_DEPARTMENT_HISTORIES = "employee_department_histories", "/EmployeeDepartmentHistories", ["business_entity_id", "start_date", "department_id", "shift_id"];
    JOB_CANDIDATES = "job_candidates", "/JobCandidates", ["job_candidate_id"];
    SHIFTS = "shifts", "/Shifts", ["shift_id"];
    ADDRESSES = "addresses", "/Addresses", ["address_id"];
    ADDRESS_TYPES = "address_types", "/AddressTypes", ["address_type_id"];
    BUSINESS_ENTITY_ADDRESSES = "business_entity_addresses", "/BusinessEntityAddresses", ["business_entity_id", "address_id", "address_type_id"];
    BUSINESS_ENTITY_CONTACTS = "business_entity_contacts", "/BusinessEntityContacts", ["business_entity_id", "person_id", "contact_type_id"];
    CONTACT_TYPES = "contact_types", "/ContactTypes", ["contact_type_id"];
    COUNTRY_REGIONS = "country_regions", "/CountryRegions", ["country_region_code"];
    EMAIL_ADDRESSES = "email_addresses", "/EmailAddresses", ["business_entity_id", "email_address_id"];
    PERSON_PHONES = "person_phones", "/PersonPhones", ["business_entity_id", "phone_number", "phone_number_type_id"];
    PHONE_NUMBER_TYPES = "phone_number_types", "/PhoneNumberTypes", ["phone_number_type_id"];
    PERSONS = "persons", "/Persons", ["business_entity_id"];
    STATE_PROVINCES = "state_provinces", "/StateProvinces", ["state_province_id"];
    BILL_OF_MATERIALS = "bill_of_materials", "/BillOfMaterials", ["bill_of_materials_id"];
    CULTURES = "cultures", "/Cultures", ["culture_id"];
    ILLUSTRATIONS = "illustrations", "/Illustrations", ["illustration_id"];
    LOCATIONS = "locations", "/Locations", ["location_id"];
    PRODUCT_CATEGORIES = "product_categories", "/ProductCategories", ["product_category_id"];
    PRODUCT_COST_HISTORIES = "product_cost_histories", "/ProductCostHistories", ["product_id", "start_date"];
    PRODUCT_DESCRIPTIONS = "product_descriptions", "/ProductDescriptions", ["product_description_id"];
    PRODUCT_INVENTORIES = "product_inventories", "/ProductInventories", ["product_id", "location_id"];
    PRODUCT_LIST_PRICE_HISTORIES = "product_list_price_histories", "/ProductListPriceHistories", ["product_id", "start_date"];
    PRODUCT_MODEL_ILLUSTRATIONS = "product_model_illustrations", "/ProductModelIllustrations", ["product_model_id", "illustration_id"];
    PRODUCT_MODELS = "product_models", "/ProductModels", ["product_model_id"];
    PRODUCT_PHOTOS = "product_photos", "/ProductPhotos", ["product_photo_id"];
    PRODUCT_REVIEWS = "product_reviews", "/ProductReviews", ["product_review_id"];
    PRODUCTS = "products", "/Products", ["product_id"];
    PRODUCT_SUBCATEGORIES = "product_subcategories", "/ProductSubcategories", ["product_subcategory_id"];
    SCRAP_REASONS = "scrap_reasons", "/ScrapReasons", ["scrap_reason_id"];
    TRANSACTION_HISTORIES = "transaction_histories", "/TransactionHistories", ["transaction_id"];
    TRANSACTION_HISTORY_ARCHIVES = "transaction_history_archives", "/TransactionHistoryArchives", ["transaction_id"];
    UNIT_MEASURES = "unit_measures", "/UnitMeasures", ["unit_measure_code"];
    WORK_ORDERS = "work_orders", "/WorkOrders", ["work_order_id"];
    WORK_ORDER_ROUTINGS = "work_order_routings", "/WorkOrderRoutings", ["work_order_id", "product_id", "operation_sequence"];
    PRODUCT_VENDORS = "product_vendors", "/ProductVendors", ["product_id", "business_entity_id"];
    PURCHASE_ORDER_DETAILS = "purchase_order_details", "/PurchaseOrderDetails", ["purchase_order_detail_id"];
    PURCHASE_ORDER_HEADERS = "purchase_order_headers", "/PurchaseOrderHeaders", ["purchase_order_id"];
    SHIP_METHODS = "ship_methods", "/ShipMethods", ["ship_method_id"];
    VENDORS = "vendors", "/Vendors", ["business_entity_id"];
    CREDIT_CARDS = "credit_cards", "/CreditCards", ["credit_card_id"];
    CURRENCIES = "currencies", "/Currencies", ["currency_code"];
    CURRENCY_RATES = "currency_rates", "/CurrencyRates", ["currency_rate_id"];
    CUSTOMERS = "customers", "/Customers", ["customer_id"];
    SALES_ORDER_HEADERS = "sales_order_headers", "/SalesOrderHeaders", ["sales_order_id"];
    SALES_ORDER_DETAILS = "sales_order_details", "/SalesOrderDetails", ["sales_order_detail_id"];
    SALES_PERSONS = "sales_persons", "/SalesPersons", ["business_entity_id"];
    SALES_PERSON_QUOTA_HISTORIES = "sales_person_quota_histories", "/SalesPersonQuotaHistories", ["business_entity_id", "quota_date"];
    SALES_REASONS = "sales_reasons", "/SalesReasons", ["sales_reason_id"];
    SALES_TAX_RATES = "sales_tax_rates", "/SalesTaxRates", ["sales_tax_rate_id"];
    SALES_TERRITORIES = "sales_territories", "/SalesTerritories", ["territory_id"];
    SALES_TERRITORY_HISTORIES = "sales_territory_histories", "/SalesTerritoryHistories", ["business_entity_id", "start_date", "territory_id"];
    SHOPPING_CART_ITEMS = "shopping_cart_items", "/ShoppingCartItems", ["shopping_cart_item_id"];
    SPECIAL_OFFERS = "special_offers", "/SpecialOffers", ["special_offer_id"];
    STORES = "stores", "/Stores", ["business_entity_id"];
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

/// The API paths of the [`PRUNABLE`] tables.
pub fn prunable_paths() -> impl Iterator<Item = &'static str> {
    PRUNABLE.iter().map(|&i| TABLE_DEFS[i].api_path)
}
