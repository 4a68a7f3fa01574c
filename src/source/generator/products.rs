//! The product catalogue: categories, subcategories, colours and model
//! kinds, and day 0's models, descriptions, photos, products with their
//! cost and list price histories, inventory, bills of materials and
//! reviews. A product's id is its row in the products table plus one.

use std::collections::BTreeSet;

use base64::Engine as _;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::person::{FIRST_NAMES, LAST_NAMES};
use super::production::LOCATIONS_LIST;
use super::state::{DayLog, Generator};
use super::values::{
    BASE_END, REF_DATE, add_days, date_v, guid, money, pick, rand_date, round2, ts_v, ymd,
};

pub(super) const CULTURES_LIST: &[(&str, &str)] = &[
    ("ar", "Arabic"),
    ("de", "German"),
    ("en", "English"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("he", "Hebrew"),
    ("th", "Thai"),
    ("zh-cht", "Chinese"),
];

pub(super) const CATEGORIES: &[&str] = &["Bikes", "Components", "Clothing", "Accessories"];
pub(super) const SUBCATEGORIES: &[(i64, &str)] = &[
    (1, "Mountain Bikes"),
    (1, "Road Bikes"),
    (1, "Touring Bikes"),
    (2, "Handlebars"),
    (2, "Bottom Brackets"),
    (2, "Brakes"),
    (2, "Chains"),
    (2, "Cranksets"),
    (2, "Derailleurs"),
    (2, "Forks"),
    (2, "Headsets"),
    (2, "Mountain Frames"),
    (2, "Pedals"),
    (2, "Road Frames"),
    (2, "Saddles"),
    (2, "Touring Frames"),
    (2, "Wheels"),
    (3, "Bib-Shorts"),
    (3, "Caps"),
    (3, "Gloves"),
    (3, "Jerseys"),
    (3, "Shorts"),
    (3, "Socks"),
    (3, "Tights"),
    (3, "Vests"),
    (4, "Bike Racks"),
    (4, "Bike Stands"),
    (4, "Bottles and Cages"),
    (4, "Cleaners"),
    (4, "Fenders"),
    (4, "Helmets"),
    (4, "Hydration Packs"),
    (4, "Lights"),
    (4, "Locks"),
    (4, "Panniers"),
    (4, "Pumps"),
    (4, "Tires and Tubes"),
];

const COLORS: &[&str] = &[
    "Black",
    "Blue",
    "Grey",
    "Multi",
    "Red",
    "Silver",
    "Silver/Black",
    "White",
    "Yellow",
];

const MODEL_KINDS: &[&str] = &[
    "Mountain",
    "Road",
    "Touring",
    "HL",
    "ML",
    "LL",
    "Sport",
    "Classic",
    "Racing",
    "Women's",
    "Men's",
    "Long-Sleeve",
    "Short-Sleeve",
    "Half-Finger",
    "Full-Finger",
];

impl Generator {
    pub(super) fn list_price(&self, product: i64) -> f64 {
        self.tables[PRODUCTS]
            .get((product - 1) as usize, "list_price")
            .as_f64()
            .unwrap_or(0.0)
    }

    pub(super) fn build_products(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        // 128 models, 762 descriptions, 7 model illustrations, 101 photos.
        for i in 1..=128i64 {
            let kind = MODEL_KINDS[(i as usize) % MODEL_KINDS.len()];
            let catalog: Option<String> = if i % 20 == 7 {
                Some(format!(
                    "<?xml-stylesheet href=\"ProductDescription.xsl\" type=\"text/xsl\"?><p1:ProductDescription xmlns:p1=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/ProductModelDescription\" ProductModelID=\"{i}\" ProductModelName=\"{kind}-{i}\"><p1:Summary>A true multi-sport model.</p1:Summary></p1:ProductDescription>"
                ))
            } else {
                None
            };
            let instructions: Option<String> = if i % 18 == 3 {
                Some(format!(
                    "<root xmlns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/ProductModelManuInstructions\">Assembly of model {i}.<Location LocationID=\"10\" SetupHours=\".5\" MachineHours=\"3\" LaborHours=\"2.5\" LotSize=\"100\"><step>Insert the frame.</step></Location></root>"
                ))
            } else {
                None
            };
            self.add(
                log,
                PRODUCT_MODELS,
                row! {
                    "product_model_id" => i,
                    "name" => format!("{kind}-{}", i * 10),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(add_days(ymd(2011, 5, 1), i * 3)),
                    "catalog_description" => catalog,
                    "instructions" => instructions,
                },
            );
        }
        for i in 1..=762i64 {
            self.add(
                log,
                PRODUCT_DESCRIPTIONS,
                row! {
                    "product_description_id" => i,
                    "description" => format!("{} design with {} components for {} riding.", pick(rng, &["Lightweight", "Durable", "Aerodynamic", "Comfortable", "Classic"]), pick(rng, &["aluminum", "steel", "carbon", "alloy"]), pick(rng, &["everyday", "competitive", "off-road", "touring"])),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(add_days(REF_DATE, -(i % 400))),
                },
            );
        }
        for (m, ill) in [
            (7i64, 3i64),
            (10, 3),
            (47, 4),
            (47, 5),
            (48, 4),
            (48, 5),
            (67, 5),
        ] {
            self.add(log, PRODUCT_MODEL_ILLUSTRATIONS, row! {"product_model_id" => m, "illustration_id" => ill, "modified_date" => date_v(ymd(2014, 1, 9))});
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        for i in 1..=101i64 {
            let mut thumb = b"GIF89a".to_vec();
            thumb.extend((0..24).map(|_| rng.random::<u8>()));
            let mut large = b"GIF89a".to_vec();
            large.extend((0..96).map(|_| rng.random::<u8>()));
            let stem = format!(
                "{}_{}",
                pick(rng, &["frame", "wheel", "helmet", "jersey", "pedal"]),
                pick(rng, COLORS).to_lowercase().replace('/', "_")
            );
            self.add(
                log,
                PRODUCT_PHOTOS,
                row! {
                    "product_photo_id" => i,
                    "thumb_nail_photo" => b64.encode(&thumb),
                    "thumbnail_photo_file_name" => format!("{stem}_small.gif"),
                    "large_photo" => b64.encode(&large),
                    "large_photo_file_name" => format!("{stem}_large.gif"),
                    "modified_date" => date_v(ymd(2013, 4, 30)),
                },
            );
        }
        // 504 products: 1..=211 parts, 212..=504 finished goods.
        for id in 1..=504i64 {
            let finished = id > 211;
            let (sub, model) = if finished {
                let sub = ((id - 212) % SUBCATEGORIES.len() as i64) + 1;
                (Some(sub), Some(((id - 212) % 128) + 1))
            } else {
                (None, None)
            };
            let category = sub.map(|s| SUBCATEGORIES[(s - 1) as usize].0);
            let make = match category {
                Some(1) | Some(2) => true,
                Some(_) => false,
                None => id % 3 == 0,
            };
            let sub_name = sub
                .map(|s| SUBCATEGORIES[(s - 1) as usize].1)
                .unwrap_or("Part");
            let cost = match category {
                Some(1) => round2(rng.random_range(300.0..2200.0)),
                Some(2) => round2(rng.random_range(10.0..700.0)),
                Some(3) => round2(rng.random_range(2.0..40.0)),
                Some(_) => round2(rng.random_range(1.0..60.0)),
                None => 0.0,
            };
            let price = if finished {
                round2(cost * rng.random_range(1.6..2.4))
            } else {
                0.0
            };
            let color: Option<&str> = if finished || rng.random_bool(0.1) {
                Some(*pick(rng, COLORS))
            } else {
                None
            };
            let size: Option<String> = if category == Some(1) || category == Some(3) {
                Some(
                    pick(
                        rng,
                        &["38", "40", "42", "44", "48", "52", "S", "M", "L", "XL"],
                    )
                    .to_string(),
                )
            } else {
                None
            };
            let weight: Option<f64> = if category == Some(1) || category == Some(2) {
                Some(round2(rng.random_range(100.0..3000.0)))
            } else {
                None
            };
            let sell_start = if finished {
                rand_date(rng, ymd(2011, 5, 31), ymd(2013, 5, 30))
            } else {
                ymd(2008, 4, 30)
            };
            let sell_end: Option<Cell> = if finished && rng.random_bool(0.3) {
                Some(date_v(add_days(sell_start, rng.random_range(90..400))))
            } else {
                None
            };
            self.add(
                log,
                PRODUCTS,
                row! {
                    "product_id" => id,
                    "name" => format!("{} {}{}", sub_name, pick(rng, MODEL_KINDS), id),
                    "product_number" => format!("{}-{:04}", sub_name.chars().take(2).collect::<String>().to_uppercase(), id),
                    "make_flag" => make,
                    "finished_goods_flag" => finished,
                    "safety_stock_level" => if finished { 100 } else { 1000 },
                    "reorder_point" => if finished { 75 } else { 750 },
                    "standard_cost" => money(cost),
                    "list_price" => money(price),
                    "days_to_manufacture" => if make { rng.random_range(1..=4) } else { 0 },
                    "sell_start_date" => date_v(sell_start),
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(ymd(2014, 2, 8)),
                    "color" => color,
                    "class" => if finished { Some(*pick(rng, &["H", "M", "L"])) } else { None },
                    "weight_unit_measure_code" => weight.map(|_| if category == Some(1) { "LB" } else { "G" }),
                    "weight" => weight,
                    "size" => size.clone(),
                    "size_unit_measure_code" => size.as_ref().filter(|s| s.parse::<i64>().is_ok()).map(|_| "CM"),
                    "product_line" => if finished { Some(*pick(rng, &["R", "M", "T", "S"])) } else { None },
                    "style" => if category == Some(3) { Some(*pick(rng, &["U", "W", "M"])) } else { None },
                    "product_subcategory_id" => sub,
                    "product_model_id" => model,
                    "sell_end_date" => sell_end,
                },
            );
            if finished {
                self.world.sellable.push(id);
            }
            if make {
                self.world.manufactured.push(id);
            }
            if finished {
                // Cost and list price history: one or two periods.
                let two = rng.random_bool(0.35);
                let first_start = ymd(2011, 5, 31);
                let second_start = ymd(2012, 5, 30);
                let mut periods = vec![(
                    first_start,
                    if two { Some(ymd(2012, 5, 29)) } else { None },
                    if two { 0.9 } else { 1.0 },
                )];
                if two {
                    periods.push((second_start, None, 1.0));
                }
                for (start, end, factor) in periods {
                    self.add(
                        log,
                        PRODUCT_COST_HISTORIES,
                        row! {
                            "product_id" => id,
                            "start_date" => ts_v(start),
                            "end_date" => end.map(date_v),
                            "standard_cost" => money(cost * factor),
                            "modified_date" => date_v(end.unwrap_or(start)),
                        },
                    );
                    let r = self.add(
                        log,
                        PRODUCT_LIST_PRICE_HISTORIES,
                        row! {
                            "product_id" => id,
                            "start_date" => ts_v(start),
                            "end_date" => end.map(date_v),
                            "list_price" => money(price * factor),
                            "modified_date" => date_v(end.unwrap_or(start)),
                        },
                    );
                    if end.is_none() {
                        self.world.open_price_row.insert(id, r);
                    }
                }
            }
            // Inventory in one to three locations.
            let n_loc = rng.random_range(1..=3usize);
            let mut locs: Vec<i64> = (1..=LOCATIONS_LIST.len() as i64).collect();
            for k in 0..n_loc {
                let j = rng.random_range(k..locs.len());
                locs.swap(k, j);
                self.add(
                    log,
                    PRODUCT_INVENTORIES,
                    row! {
                        "product_id" => id,
                        "location_id" => locs[k],
                        "shelf" => pick(rng, &["A", "B", "C", "D", "E", "F", "N/A"]).to_string(),
                        "bin" => rng.random_range(0..=60),
                        "quantity" => rng.random_range(0..=800),
                        "rowguid" => guid(rng),
                        "modified_date" => date_v(rand_date(rng, ymd(2014, 6, 1), BASE_END)),
                    },
                );
            }
        }
        // Bill of materials: every manufactured product has components.
        let mut bom_id = 0i64;
        let parts: Vec<i64> = (1..=211).collect();
        for &assembly in &self.world.manufactured.clone() {
            if assembly > 211 {
                bom_id += 1;
                self.add(
                    log,
                    BILL_OF_MATERIALS,
                    row! {
                        "bill_of_materials_id" => bom_id,
                        "product_assembly_id" => Cell::Null,
                        "component_id" => assembly,
                        "start_date" => date_v(ymd(2010, 5, 26)),
                        "unit_measure_code" => "EA",
                        "bomlevel" => 0,
                        "per_assembly_qty" => 1.0,
                        "modified_date" => date_v(ymd(2010, 5, 12)),
                        "end_date" => Cell::Null,
                    },
                );
            }
            let n = if assembly > 211 {
                rng.random_range(10..=18)
            } else {
                rng.random_range(2..=6)
            };
            let mut used = BTreeSet::new();
            for _ in 0..n {
                let component = *pick(rng, &parts);
                if component == assembly || !used.insert(component) {
                    continue;
                }
                bom_id += 1;
                let ended = rng.random_bool(0.05);
                self.add(
                    log,
                    BILL_OF_MATERIALS,
                    row! {
                        "bill_of_materials_id" => bom_id,
                        "product_assembly_id" => assembly,
                        "component_id" => component,
                        "start_date" => date_v(ymd(2010, 5, 26)),
                        "unit_measure_code" => if rng.random_bool(0.9) { "EA" } else { "OZ" },
                        "bomlevel" => if assembly > 211 { 1 } else { 2 },
                        "per_assembly_qty" => rng.random_range(1..=4) as f64,
                        "modified_date" => date_v(if ended { ymd(2010, 8, 5) } else { ymd(2010, 5, 12) }),
                        "end_date" => if ended { Some("2010-08-05") } else { None },
                    },
                );
            }
        }
        // Reviews of four products.
        for (i, (product, rating)) in [(297i64, 5i64), (451, 4), (451, 2), (398, 5)]
            .iter()
            .enumerate()
        {
            let date = add_days(ymd(2013, 9, 18), i as i64 * 20);
            self.add(
                log,
                PRODUCT_REVIEWS,
                row! {
                    "product_review_id" => i as i64 + 1,
                    "product_id" => *product,
                    "reviewer_name" => format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
                    "review_date" => date_v(date),
                    "email_address" => format!("reviewer{}@example.com", i + 1),
                    "rating" => *rating,
                    "comments" => format!("Rated {rating} out of 5: {}.", pick(rng, &["great value", "comfortable on long rides", "had trouble with the fit", "would buy again"])),
                    "modified_date" => date_v(date),
                },
            );
        }
    }
}
