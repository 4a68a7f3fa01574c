//! Day 0's reference tables, fixed in size at every scale: departments,
//! shifts, address and contact types, countries, provinces, currencies,
//! territories, ship methods, units, locations, special offers, product
//! categories and the like. Their lists live with their business areas;
//! this fills the tables from them in one pass of one random stream.

use chrono::Days;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::hr::DEPARTMENTS_LIST;
use super::person::{
    ADDRESS_TYPES_LIST, CONTACT_TYPES_LIST, COUNTRIES, FIRST_NAMES, LAST_NAMES, OTHER_PROVINCES,
    US_STATES,
};
use super::production::{LOCATIONS_LIST, SCRAP_REASONS_LIST, UNIT_MEASURES_LIST};
use super::products::{CATEGORIES, CULTURES_LIST, SUBCATEGORIES};
use super::purchasing::SHIP_METHODS_LIST;
use super::sales::{CURRENCIES_LIST, SALES_REASONS_LIST, SPECIAL_OFFERS_LIST, TERRITORIES};
use super::state::{DayLog, Generator};
use super::values::{REF_DATE, add_days, date_v, guid, money, pick, ymd};

impl Generator {
    pub(super) fn build_reference(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        for (i, (name, group)) in DEPARTMENTS_LIST.iter().enumerate() {
            self.add(log, DEPARTMENTS, row! {"department_id" => i as i64 + 1, "name" => *name, "group_name" => *group, "modified_date" => date_v(REF_DATE)});
        }
        for (i, (name, start, end)) in [
            ("Day", "07:00:00", "15:00:00"),
            ("Evening", "15:00:00", "23:00:00"),
            ("Night", "23:00:00", "07:00:00"),
        ]
        .iter()
        .enumerate()
        {
            self.add(log, SHIFTS, row! {"shift_id" => i as i64 + 1, "name" => *name, "start_time" => *start, "end_time" => *end, "modified_date" => date_v(REF_DATE)});
        }
        for (i, name) in ADDRESS_TYPES_LIST.iter().enumerate() {
            self.add(log, ADDRESS_TYPES, row! {"address_type_id" => i as i64 + 1, "name" => *name, "rowguid" => guid(rng), "modified_date" => date_v(REF_DATE)});
        }
        for (i, name) in CONTACT_TYPES_LIST.iter().enumerate() {
            self.add(log, CONTACT_TYPES, row! {"contact_type_id" => i as i64 + 1, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (code, name) in COUNTRIES {
            self.add(log, COUNTRY_REGIONS, row! {"country_region_code" => *code, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (i, name) in ["Cell", "Home", "Work"].iter().enumerate() {
            self.add(log, PHONE_NUMBER_TYPES, row! {"phone_number_type_id" => i as i64 + 1, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (code, name) in CULTURES_LIST {
            self.add(
                log,
                CULTURES,
                row! {"culture_id" => *code, "name" => *name, "modified_date" => date_v(REF_DATE)},
            );
        }
        for (code, name) in CURRENCIES_LIST {
            self.add(log, CURRENCIES, row! {"currency_code" => *code, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (i, (name, country, group, _)) in TERRITORIES.iter().enumerate() {
            let ytd = rng.random_range(1_000_000.0..10_000_000.0);
            self.add(
                log,
                SALES_TERRITORIES,
                row! {
                    "territory_id" => i as i64 + 1,
                    "name" => *name,
                    "country_region_code" => *country,
                    "group" => *group,
                    "sales_ytd" => money(ytd),
                    "sales_last_year" => money(ytd * rng.random_range(0.5..1.2)),
                    "cost_ytd" => 0.0,
                    "cost_last_year" => 0.0,
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(REF_DATE),
                },
            );
        }
        self.world.provinces = vec![Vec::new(); TERRITORIES.len()];
        let mut province_id = 0i64;
        let mut provinces: Vec<(String, &str, String, i64, bool)> = Vec::new();
        for entry in US_STATES.split(',') {
            let mut parts = entry.split(':');
            if let (Some(code), Some(name), Some(t)) = (parts.next(), parts.next(), parts.next()) {
                provinces.push((
                    code.to_string(),
                    "US",
                    name.to_string(),
                    t.parse().unwrap_or(1),
                    false,
                ));
            }
        }
        for (code, country, name, t) in OTHER_PROVINCES {
            provinces.push((
                code.to_string(),
                country,
                name.to_string(),
                *t,
                *country == "GB",
            ));
        }
        for (code, name) in COUNTRIES {
            if !matches!(*code, "US" | "CA" | "FR" | "DE" | "AU" | "GB") {
                let t = if matches!(*code, "MX" | "BR" | "AR") {
                    4
                } else if matches!(*code, "JP" | "CN" | "IN" | "NZ" | "SG") {
                    9
                } else {
                    7
                };
                provinces.push((code.to_string(), code, name.to_string(), t, true));
            }
        }
        for (code, country, name, t, only) in provinces {
            province_id += 1;
            self.add(
                log,
                STATE_PROVINCES,
                row! {
                    "state_province_id" => province_id,
                    "state_province_code" => code,
                    "country_region_code" => country,
                    "is_only_state_province_flag" => only,
                    "name" => name,
                    "territory_id" => t,
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(REF_DATE),
                },
            );
            // Only provinces of the territory's own country receive addresses.
            if country == TERRITORIES[(t - 1) as usize].1 {
                self.world.provinces[(t - 1) as usize].push(province_id);
            }
        }
        for (i, (name, base, rate)) in SHIP_METHODS_LIST.iter().enumerate() {
            self.add(log, SHIP_METHODS, row! {"ship_method_id" => i as i64 + 1, "name" => *name, "ship_base" => *base, "ship_rate" => *rate, "rowguid" => guid(rng), "modified_date" => date_v(REF_DATE)});
        }
        for (code, name) in UNIT_MEASURES_LIST {
            self.add(log, UNIT_MEASURES, row! {"unit_measure_code" => *code, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (i, name) in SCRAP_REASONS_LIST.iter().enumerate() {
            self.add(log, SCRAP_REASONS, row! {"scrap_reason_id" => i as i64 + 1, "name" => *name, "modified_date" => date_v(REF_DATE)});
        }
        for (i, (name, cost, avail)) in LOCATIONS_LIST.iter().enumerate() {
            self.add(log, LOCATIONS, row! {"location_id" => i as i64 + 1, "name" => *name, "cost_rate" => *cost, "availability" => *avail, "modified_date" => date_v(REF_DATE)});
        }
        for (i, (name, kind)) in SALES_REASONS_LIST.iter().enumerate() {
            self.add(log, SALES_REASONS, row! {"sales_reason_id" => i as i64 + 1, "name" => *name, "reason_type" => *kind, "modified_date" => date_v(REF_DATE)});
        }
        for (i, (desc, pct, kind, cat, min, max)) in SPECIAL_OFFERS_LIST.iter().enumerate() {
            let start = ymd(2011, 5, 1) + Days::new(i as u64 * 30);
            self.add(
                log,
                SPECIAL_OFFERS,
                row! {
                    "special_offer_id" => i as i64 + 1,
                    "description" => *desc,
                    "discount_percentage" => *pct,
                    "type" => *kind,
                    "category" => *cat,
                    "start_date" => date_v(start),
                    "end_date" => date_v(add_days(start, 900)),
                    "minimum_quantity" => *min,
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(add_days(start, -14)),
                    "maximum_quantity" => *max,
                },
            );
        }
        for (i, name) in CATEGORIES.iter().enumerate() {
            self.add(log, PRODUCT_CATEGORIES, row! {"product_category_id" => i as i64 + 1, "name" => *name, "rowguid" => guid(rng), "modified_date" => date_v(REF_DATE)});
        }
        for (i, (cat, name)) in SUBCATEGORIES.iter().enumerate() {
            self.add(log, PRODUCT_SUBCATEGORIES, row! {"product_subcategory_id" => i as i64 + 1, "product_category_id" => *cat, "name" => *name, "rowguid" => guid(rng), "modified_date" => date_v(REF_DATE)});
        }
        for i in 1..=5i64 {
            self.add(
                log,
                ILLUSTRATIONS,
                row! {
                    "illustration_id" => i,
                    "diagram" => format!("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{w}\"><title>Assembly diagram {i}</title><rect width=\"{w}\" height=\"{w}\"/></svg>", w = 100 + i * 20),
                    "modified_date" => date_v(REF_DATE),
                },
            );
        }
        for i in 1..=13i64 {
            let hired: Option<i64> = match i {
                4 => Some(212),
                8 => Some(274),
                _ => None,
            };
            self.add(
                log,
                JOB_CANDIDATES,
                row! {
                    "job_candidate_id" => i,
                    "resume" => format!(
                        "<ns:Resume xmlns:ns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/Resume\"><ns:Name><ns:Name.First>{}</ns:Name.First><ns:Name.Last>{}</ns:Name.Last></ns:Name><ns:Skills>{} years of experience</ns:Skills></ns:Resume>",
                        pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES), rng.random_range(1..20)
                    ),
                    "modified_date" => date_v(ymd(2013, 12, 22)),
                    "business_entity_id" => hired,
                },
            );
        }
        let shopping = [
            (2, 3, 862, ymd(2013, 11, 9)),
            (14951, 4, 881, ymd(2013, 11, 9)),
            (20621, 7, 874, ymd(2013, 11, 9)),
        ];
        for (i, (cart, qty, _, date)) in shopping.iter().enumerate() {
            let product = 212 + (i as i64) * 50;
            self.add(log, SHOPPING_CART_ITEMS, row! {"shopping_cart_item_id" => i as i64 + 1, "shopping_cart_id" => cart.to_string(), "quantity" => *qty, "product_id" => product, "date_created" => date_v(*date), "modified_date" => date_v(*date)});
        }
    }
}
