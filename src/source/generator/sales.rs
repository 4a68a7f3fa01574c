//! Sales: the fixed lists (currencies and their rates, territories,
//! special offers, sales reasons, card types) and the rows of customers and
//! their orders: credit cards, individual and store customers, currency
//! rates, sales orders with their lines and transactions, and day 0's
//! tax rates, stores, customers, rates and orders. An order's currency rate
//! is the one in force on its date.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::person::{ADDR_HOME, ADDR_MAIN_OFFICE, ADDR_SHIPPING, STORE_SUFFIXES, STORE_WORDS};
use super::state::{CustomerRef, DayLog, Generator};
use super::values::{
    BASE_END, BASE_START, REF_DATE, add_days, date_v, guid, money, pick, rand_date, round2, scaled,
    ymd,
};

pub(super) const CURRENCIES_LIST: &[(&str, &str)] = &[
    ("ARS", "Argentine Peso"),
    ("AUD", "Australian Dollar"),
    ("BRL", "Brazilian Real"),
    ("CAD", "Canadian Dollar"),
    ("CHF", "Swiss Franc"),
    ("CNY", "Yuan Renminbi"),
    ("DKK", "Danish Krone"),
    ("EUR", "EURO"),
    ("GBP", "United Kingdom Pound"),
    ("INR", "Indian Rupee"),
    ("JPY", "Yen"),
    ("MXN", "Mexican Peso"),
    ("NOK", "Norwegian Krone"),
    ("NZD", "New Zealand Dollar"),
    ("SEK", "Swedish Krona"),
    ("SGD", "Singapore Dollar"),
    ("USD", "US Dollar"),
    ("ZAR", "Rand"),
];

/// Currencies quoted daily against USD, with a starting average rate.
pub(super) const RATE_PAIRS: &[(&str, f64)] = &[
    ("ARS", 3.9),
    ("AUD", 1.08),
    ("BRL", 1.68),
    ("CAD", 1.02),
    ("CNY", 6.45),
    ("EUR", 0.74),
    ("GBP", 0.64),
    ("INR", 55.0),
    ("JPY", 92.0),
    ("MXN", 12.6),
    ("NZD", 1.21),
    ("SEK", 6.7),
    ("SGD", 1.25),
    ("ZAR", 8.9),
];

/// (name, country, group, currency used by its orders).
pub(super) const TERRITORIES: &[(&str, &str, &str, Option<&str>)] = &[
    ("Northwest", "US", "North America", None),
    ("Northeast", "US", "North America", None),
    ("Central", "US", "North America", None),
    ("Southwest", "US", "North America", None),
    ("Southeast", "US", "North America", None),
    ("Canada", "CA", "North America", Some("CAD")),
    ("France", "FR", "Europe", Some("EUR")),
    ("Germany", "DE", "Europe", Some("EUR")),
    ("Australia", "AU", "Pacific", Some("AUD")),
    ("United Kingdom", "GB", "Europe", Some("GBP")),
];

/// (description, discount, type, category, minimum quantity, maximum quantity).
pub(super) type OfferRow = (
    &'static str,
    f64,
    &'static str,
    &'static str,
    i64,
    Option<i64>,
);

pub(super) const SPECIAL_OFFERS_LIST: &[OfferRow] = &[
    ("No Discount", 0.0, "No Discount", "No Discount", 0, None),
    (
        "Volume Discount 11 to 14",
        0.02,
        "Volume Discount",
        "Reseller",
        11,
        Some(14),
    ),
    (
        "Volume Discount 15 to 24",
        0.05,
        "Volume Discount",
        "Reseller",
        15,
        Some(24),
    ),
    (
        "Volume Discount 25 to 40",
        0.10,
        "Volume Discount",
        "Reseller",
        25,
        Some(40),
    ),
    (
        "Volume Discount 41 to 60",
        0.15,
        "Volume Discount",
        "Reseller",
        41,
        Some(60),
    ),
    (
        "Volume Discount over 60",
        0.20,
        "Volume Discount",
        "Reseller",
        61,
        None,
    ),
    (
        "Mountain-100 Clearance Sale",
        0.35,
        "Discontinued Product",
        "Reseller",
        0,
        None,
    ),
    (
        "Sport Helmet Discount-2002",
        0.10,
        "Seasonal Discount",
        "Reseller",
        0,
        None,
    ),
    (
        "Road-650 Overstock",
        0.30,
        "Excess Inventory",
        "Reseller",
        0,
        None,
    ),
    (
        "Mountain Tire Sale",
        0.50,
        "Excess Inventory",
        "Customer",
        0,
        None,
    ),
    (
        "Sport Helmet Discount-2003",
        0.15,
        "Seasonal Discount",
        "Reseller",
        0,
        None,
    ),
    (
        "LL Road Frame Sale",
        0.35,
        "Excess Inventory",
        "Reseller",
        0,
        None,
    ),
    (
        "Touring-3000 Promotion",
        0.15,
        "New Product",
        "Customer",
        0,
        None,
    ),
    (
        "Touring-1000 Promotion",
        0.20,
        "New Product",
        "Customer",
        0,
        None,
    ),
    (
        "Half-Price Pedal Sale",
        0.50,
        "Seasonal Discount",
        "Customer",
        0,
        None,
    ),
    (
        "Mountain-500 Silver Clearance Sale",
        0.40,
        "Discontinued Product",
        "Reseller",
        0,
        None,
    ),
];

pub(super) const SALES_REASONS_LIST: &[(&str, &str)] = &[
    ("Price", "Other"),
    ("On Promotion", "Promotion"),
    ("Magazine Advertisement", "Marketing"),
    ("Television  Advertisement", "Marketing"),
    ("Manufacturer", "Other"),
    ("Review", "Other"),
    ("Demo Event", "Marketing"),
    ("Sponsorship", "Marketing"),
    ("Quality", "Other"),
    ("Other", "Other"),
];

const CARD_TYPES: &[&str] = &["SuperiorCard", "Distinguish", "ColonialVoice", "Vista"];

impl Generator {
    fn new_credit_card(&mut self, log: &mut DayLog, rng: &mut ChaCha8Rng, md: NaiveDate) -> i64 {
        self.world.next_credit_card += 1;
        let id = self.world.next_credit_card;
        self.append(
            log,
            CREDIT_CARDS,
            row! {
                "credit_card_id" => id,
                "card_type" => *pick(rng, CARD_TYPES),
                "card_number" => format!("{:014}", rng.random_range(10_000_000_000_000u64..99_999_999_999_999)),
                "exp_month" => rng.random_range(1..=12),
                "exp_year" => md.year() as i64 + rng.random_range(1..=4),
                "modified_date" => date_v(md),
            },
        );
        id
    }

    fn pick_territory(rng: &mut ChaCha8Rng) -> i64 {
        // Roughly the real split: half North America, the rest Europe and Pacific.
        const WEIGHTS: &[(i64, u32)] = &[
            (1, 14),
            (2, 2),
            (3, 2),
            (4, 22),
            (5, 2),
            (6, 8),
            (7, 10),
            (8, 10),
            (9, 20),
            (10, 10),
        ];
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut x = rng.random_range(0..total);
        for (t, w) in WEIGHTS {
            if x < *w {
                return *t;
            }
            x -= w;
        }
        1
    }

    /// An individual customer (person, home address, card, customer row).
    pub(super) fn new_individual(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        md: NaiveDate,
    ) -> usize {
        let territory = Self::pick_territory(rng);
        let person = self.new_person(log, rng, "IN", md);
        let (address, address_row) = self.new_address(log, rng, territory, md);
        self.link_address(log, rng, person, address, ADDR_HOME, md);
        self.world.home_address_row.insert(person, address_row);
        if rng.random_bool(0.05) {
            let (ship, _) = self.new_address(log, rng, territory, md);
            self.link_address(log, rng, person, ship, ADDR_SHIPPING, md);
        }
        let card = if rng.random_bool(0.95) {
            Some(self.new_credit_card(log, rng, md))
        } else {
            None
        };
        self.world.individuals.push(person);
        self.new_customer(
            log,
            rng,
            territory,
            Some(person),
            None,
            address,
            card,
            None,
            md,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new_customer(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        territory_id: i64,
        person_id: Option<i64>,
        store_id: Option<i64>,
        address_id: i64,
        credit_card_id: Option<i64>,
        sales_person_id: Option<i64>,
        md: NaiveDate,
    ) -> usize {
        self.world.next_customer += 1;
        let id = self.world.next_customer;
        self.append(
            log,
            CUSTOMERS,
            row! {
                "customer_id" => id,
                "store_id" => store_id,
                "territory_id" => territory_id,
                "account_number" => format!("AW{id:08}"),
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
                "person_id" => person_id,
            },
        );
        self.world.customers.push(CustomerRef {
            customer_id: id,
            territory_id,
            store_id,
            address_id,
            credit_card_id,
            sales_person_id,
        });
        self.world.customers.len() - 1
    }

    /// The currency rate in force on `date` for orders of `territory_id`.
    fn rate_for(&self, territory_id: i64, date: NaiveDate) -> Option<i64> {
        let currency = TERRITORIES[(territory_id - 1) as usize].3?;
        let rates = self.world.rates.get(currency)?;
        let n = rates.partition_point(|(d, _)| *d <= date);
        if n == 0 { None } else { Some(rates[n - 1].1) }
    }

    pub(super) fn new_rate(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        code: &'static str,
        date: NaiveDate,
    ) {
        self.world.next_currency_rate += 1;
        let id = self.world.next_currency_rate;
        let last = self.world.last_rate.get(code).copied().unwrap_or(1.0);
        let avg = last * (1.0 + rng.random_range(-0.01..0.01));
        let eod = avg * (1.0 + rng.random_range(-0.003..0.003));
        self.world.last_rate.insert(code, avg);
        self.append(
            log,
            CURRENCY_RATES,
            row! {
                "currency_rate_id" => id,
                "currency_rate_date" => date_v(date),
                "from_currency_code" => "USD",
                "to_currency_code" => code,
                "average_rate" => money(avg),
                "end_of_day_rate" => money(eod),
                "modified_date" => date_v(date),
            },
        );
        self.world.rates.entry(code).or_default().push((date, id));
    }

    /// A sales order with its lines and sales transactions. Orders dated
    /// within a week of `today` are open (status 1, no ship date) and ship
    /// on a later day. Returns (header row, sales person, sub total).
    pub(super) fn new_order(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        customer: usize,
        order_date: NaiveDate,
        today: NaiveDate,
        today_day: u32,
    ) -> (usize, Option<i64>, f64) {
        let c = self.world.customers[customer].clone();
        self.world.next_order += 1;
        let order_id = self.world.next_order;
        let online = c.store_id.is_none();
        let lines = if online {
            rng.random_range(1..=4)
        } else {
            rng.random_range(4..=24)
        };
        let mut sub_total = 0.0;
        let tracking: Option<String> = if online {
            None
        } else {
            Some(format!(
                "{:04X}-{:04X}-{:02X}",
                rng.random_range(0..0xFFFF),
                rng.random_range(0..0xFFFF),
                rng.random_range(0..0xFF)
            ))
        };
        let mut used = BTreeSet::new();
        for _ in 0..lines {
            let product = *pick(rng, &self.world.sellable);
            if !used.insert(product) {
                continue;
            }
            let qty: i64 = if online { 1 } else { rng.random_range(1..=12) };
            let offer: i64 = if rng.random_bool(0.85) {
                1
            } else {
                rng.random_range(2..=SPECIAL_OFFERS_LIST.len() as i64)
            };
            let discount = SPECIAL_OFFERS_LIST[(offer - 1) as usize].1;
            let price = self.list_price(product) * if online { 1.0 } else { 0.6 };
            let line_total = round2(price * (1.0 - discount) * qty as f64);
            sub_total += line_total;
            self.world.next_order_line += 1;
            let line_id = self.world.next_order_line;
            self.append(
                log,
                SALES_ORDER_DETAILS,
                row! {
                    "sales_order_id" => order_id,
                    "sales_order_detail_id" => line_id,
                    "carrier_tracking_number" => tracking.clone(),
                    "order_qty" => qty,
                    "product_id" => product,
                    "special_offer_id" => offer,
                    "unit_price" => money(price),
                    "unit_price_discount" => money(discount),
                    "line_total" => money(line_total),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(order_date),
                },
            );
            self.new_transaction(log, product, order_id, line_id, order_date, "S", qty, price);
        }
        let sub_total = round2(sub_total);
        let tax = round2(sub_total * 0.08);
        let freight = round2(sub_total * 0.025);
        let open = (today - order_date).num_days() < 7;
        let ship_date = add_days(order_date, 7);
        let card = if online || rng.random_bool(0.5) {
            c.credit_card_id
        } else {
            None
        };
        let r = self.add(
            log,
            SALES_ORDER_HEADERS,
            row! {
                "sales_order_id" => order_id,
                "revision_number" => 8,
                "order_date" => date_v(order_date),
                "due_date" => date_v(add_days(order_date, 12)),
                "ship_date" => if open { Cell::Null } else { date_v(ship_date) },
                "status" => if open { 1 } else { 5 },
                "online_order_flag" => online,
                "sales_order_number" => format!("SO{order_id}"),
                "purchase_order_number" => if online { None } else { Some(format!("PO{}", rng.random_range(100_000_000u64..999_999_999))) },
                "account_number" => format!("10-4020-{:06}", c.customer_id % 1_000_000),
                "customer_id" => c.customer_id,
                "sales_person_id" => c.sales_person_id,
                "territory_id" => c.territory_id,
                "bill_to_address_id" => c.address_id,
                "ship_to_address_id" => c.address_id,
                "ship_method_id" => if online { 1 } else { 5 },
                "credit_card_id" => card,
                "credit_card_approval_code" => card.map(|_| format!("{}Vi{}", rng.random_range(100_000..999_999), rng.random_range(10_000..99_999))),
                "sub_total" => money(sub_total),
                "tax_amt" => money(tax),
                "freight" => money(freight),
                "total_due" => money(sub_total + tax + freight),
                "rowguid" => guid(rng),
                "modified_date" => date_v(if open { order_date } else { ship_date }),
                "currency_rate_id" => self.rate_for(c.territory_id, order_date),
            },
        );
        if open {
            let ship_day = today_day + 7 - (today - order_date).num_days() as u32;
            self.world.open_orders.push((r, ship_day));
        }
        (r, c.sales_person_id, sub_total)
    }

    pub(super) fn build_sales_tax_rates(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        // Sales tax rates (fixed): on the first 29 provinces that exist.
        for i in 1..=29i64 {
            let province = (i * 3) % 100 + 1;
            let name = self.tables[STATE_PROVINCES]
                .get((province - 1) as usize, "name")
                .as_str()
                .unwrap_or("Province")
                .to_string();
            let kind = 1 + (i % 3);
            self.add(
                log,
                SALES_TAX_RATES,
                row! {
                    "sales_tax_rate_id" => i,
                    "state_province_id" => province,
                    "tax_type" => kind,
                    "tax_rate" => money(rng.random_range(5.0..17.5)),
                    "name" => format!("{name} {} Tax", ["State Sales", "Provincial", "Output"][(kind - 1) as usize]),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(REF_DATE),
                },
            );
        }
    }

    pub(super) fn build_customers(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        // Stores (scaled): each with a main office, a contact and a customer.
        let stores = scaled(701.0, self.scale(), 10);
        for _ in 0..stores {
            let md = rand_date(rng, ymd(2011, 5, 31), ymd(2013, 9, 12));
            let id = self.new_business_entity();
            let territory = Self::pick_territory(rng);
            let sales_person = *pick(
                rng,
                &self.world.sales_people[(territory - 1) as usize].clone(),
            );
            self.add(
                log,
                STORES,
                row! {
                    "business_entity_id" => id,
                    "name" => format!("{} {} {}", pick(rng, STORE_WORDS), pick(rng, STORE_WORDS), pick(rng, STORE_SUFFIXES)),
                    "sales_person_id" => sales_person,
                    "demographics" => format!(
                        "<StoreSurvey xmlns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/StoreSurvey\"><AnnualSales>{}</AnnualSales><AnnualRevenue>{}</AnnualRevenue><YearOpened>{}</YearOpened><NumberEmployees>{}</NumberEmployees></StoreSurvey>",
                        rng.random_range(3..30) * 100_000, rng.random_range(3..30) * 10_000, rng.random_range(1970..2005), rng.random_range(2..100)
                    ),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(md),
                },
            );
            let (address, _) = self.new_address(log, rng, territory, md);
            self.link_address(log, rng, id, address, ADDR_MAIN_OFFICE, md);
            let contact = self.new_person(log, rng, "SC", md);
            self.link_contact(log, rng, id, contact, md);
            let person = if rng.random_bool(0.9) {
                Some(contact)
            } else {
                None
            };
            self.new_customer(
                log,
                rng,
                territory,
                person,
                Some(id),
                address,
                None,
                Some(sales_person),
                md,
            );
        }
        // Individual customers (scaled).
        let individuals = scaled(18_484.0, self.scale(), 60);
        for _ in 0..individuals {
            let md = rand_date(rng, BASE_START, add_days(BASE_END, -30));
            self.new_individual(log, rng, md);
        }
    }

    pub(super) fn build_rates(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        // Rates every `step` days so that the table scales with the data set.
        let step = ((1.0 / self.scale()).round() as i64).clamp(1, 60);
        for (code, start) in RATE_PAIRS {
            self.world.last_rate.insert(code, *start);
        }
        let mut date = BASE_START;
        while date <= BASE_END {
            for (code, _) in RATE_PAIRS {
                self.new_rate(log, rng, code, date);
            }
            date = add_days(date, step);
        }
    }

    pub(super) fn build_sales(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        let orders = scaled(31_465.0, self.scale(), 20);
        let span = (BASE_END - BASE_START).num_days();
        let n_customers = self.world.customers.len();
        for k in 0..orders {
            let order_date = add_days(BASE_START, (k as i64 * span) / orders as i64);
            // Store customers order less often but with bigger orders.
            let customer = if rng.random_bool(0.12) {
                rng.random_range(0..n_customers.min(scaled(701.0, self.scale(), 10)))
            } else {
                rng.random_range(0..n_customers)
            };
            self.new_order(log, rng, customer, order_date, BASE_END, 0);
        }
    }
}
