//! Persons and business entities: the fixed lists they are made from
//! (address and contact types, countries and provinces, names, cities,
//! streets, business names) and the row makers day 0 and the simulated
//! days share: a person with an e-mail address and a phone, an address in
//! a territory's provinces, and the links of entities to addresses and
//! contacts.

use chrono::NaiveDate;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::state::{DayLog, Generator};
use super::values::{date_v, guid, iso_date, pick};

pub(super) const ADDRESS_TYPES_LIST: &[&str] = &[
    "Billing",
    "Home",
    "Main Office",
    "Primary",
    "Shipping",
    "Archive",
];
pub(super) const ADDR_HOME: i64 = 2;
pub(super) const ADDR_MAIN_OFFICE: i64 = 3;
pub(super) const ADDR_SHIPPING: i64 = 5;

pub(super) const CONTACT_TYPES_LIST: &[&str] = &[
    "Accounting Manager",
    "Assistant Sales Agent",
    "Assistant Sales Representative",
    "Coordinator Foreign Markets",
    "Export Administrator",
    "International Marketing Manager",
    "Marketing Assistant",
    "Marketing Manager",
    "Marketing Representative",
    "Order Administrator",
    "Owner",
    "Owner/Marketing Assistant",
    "Product Manager",
    "Purchasing Agent",
    "Purchasing Manager",
    "Regional Account Representative",
    "Sales Agent",
    "Sales Associate",
    "Sales Manager",
    "Sales Representative",
];

pub(super) const COUNTRIES: &[(&str, &str)] = &[
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BE", "Belgium"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CN", "China"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("IN", "India"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("US", "United States"),
    ("ZA", "South Africa"),
];

/// US states as `code:name:territory id`.
pub(super) const US_STATES: &str = "AL:Alabama:5,AK:Alaska:1,AZ:Arizona:4,AR:Arkansas:5,CA:California:4,\
CO:Colorado:3,CT:Connecticut:2,DE:Delaware:2,FL:Florida:5,GA:Georgia:5,HI:Hawaii:4,ID:Idaho:1,\
IL:Illinois:3,IN:Indiana:3,IA:Iowa:3,KS:Kansas:3,KY:Kentucky:5,LA:Louisiana:5,ME:Maine:2,\
MD:Maryland:2,MA:Massachusetts:2,MI:Michigan:3,MN:Minnesota:3,MS:Mississippi:5,MO:Missouri:3,\
MT:Montana:1,NE:Nebraska:3,NV:Nevada:4,NH:New Hampshire:2,NJ:New Jersey:2,NM:New Mexico:4,\
NY:New York:2,NC:North Carolina:5,ND:North Dakota:3,OH:Ohio:3,OK:Oklahoma:4,OR:Oregon:1,\
PA:Pennsylvania:2,RI:Rhode Island:2,SC:South Carolina:5,SD:South Dakota:3,TN:Tennessee:5,\
TX:Texas:4,UT:Utah:4,VT:Vermont:2,VA:Virginia:5,WA:Washington:1,WV:West Virginia:2,\
WI:Wisconsin:3,WY:Wyoming:1";

pub(super) const OTHER_PROVINCES: &[(&str, &str, &str, i64)] = &[
    ("AB", "CA", "Alberta", 6),
    ("BC", "CA", "British Columbia", 6),
    ("MB", "CA", "Manitoba", 6),
    ("NB", "CA", "Brunswick", 6),
    ("NS", "CA", "Nova Scotia", 6),
    ("ON", "CA", "Ontario", 6),
    ("QC", "CA", "Quebec", 6),
    ("SK", "CA", "Saskatchewan", 6),
    ("75", "FR", "Seine (Paris)", 7),
    ("78", "FR", "Yveline", 7),
    ("59", "FR", "Nord", 7),
    ("62", "FR", "Pas de Calais", 7),
    ("91", "FR", "Essonne", 7),
    ("92", "FR", "Hauts de Seine", 7),
    ("93", "FR", "Seine Saint Denis", 7),
    ("45", "FR", "Loiret", 7),
    ("BY", "DE", "Bayern", 8),
    ("BB", "DE", "Brandenburg", 8),
    ("HE", "DE", "Hessen", 8),
    ("HH", "DE", "Hamburg", 8),
    ("NW", "DE", "Nordrhein-Westfalen", 8),
    ("SL", "DE", "Saarland", 8),
    ("NSW", "AU", "New South Wales", 9),
    ("QLD", "AU", "Queensland", 9),
    ("SA", "AU", "South Australia", 9),
    ("TAS", "AU", "Tasmania", 9),
    ("VIC", "AU", "Victoria", 9),
    ("ENG", "GB", "England", 10),
];

pub(super) const FIRST_NAMES: &[&str] = &[
    "Aaron",
    "Abigail",
    "Adam",
    "Alexandra",
    "Alicia",
    "Amanda",
    "Andrew",
    "Angela",
    "Ben",
    "Blake",
    "Brianna",
    "Caleb",
    "Carlos",
    "Chloe",
    "Cole",
    "Dalton",
    "Destiny",
    "Dylan",
    "Edward",
    "Elizabeth",
    "Emma",
    "Ethan",
    "Faith",
    "Gabriel",
    "Grace",
    "Hailey",
    "Isabella",
    "Jack",
    "Jasmine",
    "Jose",
    "Julia",
    "Kaitlyn",
    "Kevin",
    "Lauren",
    "Luis",
    "Mariah",
    "Megan",
    "Miguel",
    "Natalie",
    "Nathan",
    "Olivia",
    "Rachel",
    "Robert",
    "Sydney",
    "Taylor",
    "Victoria",
    "Wyatt",
    "Xavier",
    "Zoe",
];
pub(super) const LAST_NAMES: &[&str] = &[
    "Adams",
    "Alexander",
    "Allen",
    "Bailey",
    "Baker",
    "Bell",
    "Brooks",
    "Bryant",
    "Butler",
    "Campbell",
    "Carter",
    "Chen",
    "Clark",
    "Collins",
    "Cook",
    "Diaz",
    "Edwards",
    "Evans",
    "Flores",
    "Foster",
    "Garcia",
    "Gonzalez",
    "Gray",
    "Green",
    "Hall",
    "Harris",
    "Huang",
    "Hughes",
    "Jai",
    "James",
    "Jenkins",
    "Kumar",
    "Lee",
    "Li",
    "Lopez",
    "Martin",
    "Martinez",
    "Miller",
    "Moore",
    "Morgan",
    "Nelson",
    "Patterson",
    "Perez",
    "Powell",
    "Ramos",
    "Rivera",
    "Russell",
    "Sanchez",
    "Shan",
    "Simmons",
    "Torres",
    "Wang",
    "Ward",
    "Xu",
    "Zhang",
];
pub(super) const CITIES: &[&str] = &[
    "Bellevue",
    "Bothell",
    "Burien",
    "Concord",
    "Everett",
    "Issaquah",
    "Kirkland",
    "Lynnwood",
    "Redmond",
    "Renton",
    "Seattle",
    "Tacoma",
    "Berkeley",
    "Burbank",
    "Chula Vista",
    "Oakland",
    "Palo Alto",
    "Salem",
    "Portland",
    "Beaverton",
    "Denver",
    "Dallas",
    "Austin",
    "Miami",
    "Atlanta",
    "Boston",
    "Toronto",
    "Vancouver",
    "Paris",
    "Lyon",
    "Berlin",
    "Hamburg",
    "Sydney",
    "Melbourne",
    "Brisbane",
    "London",
    "Oxford",
    "York",
];
pub(super) const STREETS: &[&str] = &[
    "Acardia Pl.",
    "Adobe Dr.",
    "Alpine Ave.",
    "Bayview Ct.",
    "Birch Dr.",
    "Cedar Ln.",
    "Chestnut St.",
    "Crestview Dr.",
    "Elm St.",
    "Glenside Dr.",
    "Hill Ct.",
    "Lakeview Ave.",
    "Maple Ave.",
    "Mission Dr.",
    "Oak Grove Rd.",
    "Park Glen Ct.",
    "Pine Creek Way",
    "Redwood Dr.",
    "Sunset Blvd.",
    "Valley View Rd.",
    "Willow Pass Rd.",
];
pub(super) const STORE_WORDS: &[&str] = &[
    "Bike", "Cycle", "Sports", "Outdoor", "Wheel", "Trail", "Road", "Mountain", "Pedal", "Gear",
    "Riders", "Sprocket", "Spoke", "Touring", "Racing",
];
pub(super) const STORE_SUFFIXES: &[&str] = &[
    "Shop",
    "Store",
    "Supply",
    "Emporium",
    "Warehouse",
    "Outlet",
    "Depot",
    "Center",
    "Company",
    "Parts",
    "Rentals",
    "Specialists",
];

impl Generator {
    pub(super) fn new_business_entity(&mut self) -> i64 {
        self.world.next_business_entity += 1;
        self.world.next_business_entity
    }

    /// A person with one e-mail address and one phone; returns its id.
    pub(super) fn new_person(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        person_type: &'static str,
        md: NaiveDate,
    ) -> i64 {
        let id = self.new_business_entity();
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let middle: Option<String> = if rng.random_bool(0.6) {
            Some(format!("{}.", (b'A' + rng.random_range(0..26u8)) as char))
        } else {
            None
        };
        let title: Option<&str> = if rng.random_bool(0.05) {
            Some(*pick(rng, &["Mr.", "Ms.", "Mrs.", "Sr."]))
        } else {
            None
        };
        let suffix: Option<&str> = if rng.random_bool(0.01) {
            Some(*pick(rng, &["Jr.", "Sr.", "II", "III"]))
        } else {
            None
        };
        let demographics = if person_type == "IN" {
            format!(
                "<IndividualSurvey xmlns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/IndividualSurvey\"><TotalPurchaseYTD>{}</TotalPurchaseYTD><DateFirstPurchase>{}Z</DateFirstPurchase><YearlyIncome>{}</YearlyIncome><NumberCarsOwned>{}</NumberCarsOwned></IndividualSurvey>",
                rng.random_range(0..5000),
                iso_date(md),
                pick(
                    rng,
                    &[
                        "0-25000",
                        "25001-50000",
                        "50001-75000",
                        "75001-100000",
                        "greater than 100000"
                    ]
                ),
                rng.random_range(0..5)
            )
        } else {
            "<IndividualSurvey xmlns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/IndividualSurvey\"><TotalPurchaseYTD>0</TotalPurchaseYTD></IndividualSurvey>".to_string()
        };
        let contact_info: Option<String> = if rng.random_bool(0.01) {
            Some(format!(
                "<AdditionalContactInfo xmlns=\"http://schemas.microsoft.com/sqlserver/2004/07/adventure-works/ContactInfo\"><telephoneNumber><number>{}-555-{:04}</number></telephoneNumber></AdditionalContactInfo>",
                rng.random_range(200..999),
                rng.random_range(0..10_000)
            ))
        } else {
            None
        };
        let r = self.add(
            log,
            PERSONS,
            row! {
                "business_entity_id" => id,
                "person_type" => person_type,
                "name_style" => false,
                "first_name" => first,
                "middle_name" => middle,
                "last_name" => last,
                "email_promotion" => rng.random_range(0..3),
                "demographics" => demographics,
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
                "title" => title,
                "suffix" => suffix,
                "additional_contact_info" => contact_info,
            },
        );
        self.world.person_row.insert(id, r);
        self.world.next_email += 1;
        let email_id = self.world.next_email;
        self.append(
            log,
            EMAIL_ADDRESSES,
            row! {
                "business_entity_id" => id,
                "email_address_id" => email_id,
                "email" => format!("{}{}@adventure-works.com", first.to_lowercase(), id % 1000),
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
            },
        );
        self.append(
            log,
            PERSON_PHONES,
            row! {
                "business_entity_id" => id,
                "phone_number" => format!("{}-555-{:04}", rng.random_range(200..999), id % 10_000),
                "phone_number_type_id" => rng.random_range(1..=3),
                "modified_date" => date_v(md),
            },
        );
        id
    }

    /// An address in a province of `territory_id`; returns (id, row).
    pub(super) fn new_address(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        territory_id: i64,
        md: NaiveDate,
    ) -> (i64, usize) {
        self.world.next_address += 1;
        let id = self.world.next_address;
        let provinces = &self.world.provinces[(territory_id - 1) as usize];
        let province = *pick(rng, provinces);
        let line2: Option<String> = if rng.random_bool(0.02) {
            Some(format!("Unit {}", rng.random_range(1..400)))
        } else {
            None
        };
        let r = self.add(
            log,
            ADDRESSES,
            row! {
                "address_id" => id,
                "address_line1" => format!("{} {}", rng.random_range(1..9999), pick(rng, STREETS)),
                "city" => *pick(rng, CITIES),
                "state_province_id" => province,
                "postal_code" => format!("{:05}", rng.random_range(10_000..99_999)),
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
                "address_line2" => line2,
            },
        );
        (id, r)
    }

    pub(super) fn link_address(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        entity: i64,
        address: i64,
        kind: i64,
        md: NaiveDate,
    ) {
        self.append(
            log,
            BUSINESS_ENTITY_ADDRESSES,
            row! {
                "business_entity_id" => entity,
                "address_id" => address,
                "address_type_id" => kind,
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
            },
        );
    }

    pub(super) fn link_contact(
        &mut self,
        log: &mut DayLog,
        rng: &mut ChaCha8Rng,
        entity: i64,
        person: i64,
        md: NaiveDate,
    ) {
        self.add(
            log,
            BUSINESS_ENTITY_CONTACTS,
            row! {
                "business_entity_id" => entity,
                "person_id" => person,
                "contact_type_id" => rng.random_range(1..=CONTACT_TYPES_LIST.len() as i64),
                "rowguid" => guid(rng),
                "modified_date" => date_v(md),
            },
        );
    }
}
