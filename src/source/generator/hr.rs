//! Human resources: departments and job titles, and day 0's employees
//! with their pay and department histories, and the sales people with
//! their quotas and territories. Every employee is a person; the sales
//! force grows with the scale ([`SALES_FORCE`] per unit).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::cell::Cell;
use super::super::defs::*;
use super::person::ADDR_HOME;
use super::sales::TERRITORIES;
use super::state::{DayLog, Generator};
use super::values::{BASE_END, add_days, date_v, guid, money, pick, rand_date, ts_v, ymd};

pub(super) const DEPARTMENTS_LIST: &[(&str, &str)] = &[
    ("Engineering", "Research and Development"),
    ("Tool Design", "Research and Development"),
    ("Sales", "Sales and Marketing"),
    ("Marketing", "Sales and Marketing"),
    ("Purchasing", "Inventory Management"),
    ("Research and Development", "Research and Development"),
    ("Production", "Manufacturing"),
    ("Production Control", "Manufacturing"),
    ("Human Resources", "Executive General and Administration"),
    ("Finance", "Executive General and Administration"),
    (
        "Information Services",
        "Executive General and Administration",
    ),
    ("Document Control", "Quality Assurance"),
    ("Quality Assurance", "Quality Assurance"),
    (
        "Facilities and Maintenance",
        "Executive General and Administration",
    ),
    ("Shipping and Receiving", "Inventory Management"),
    ("Executive", "Executive General and Administration"),
];

const JOB_TITLES: &[&str] = &[
    "Production Technician - WC10",
    "Production Technician - WC20",
    "Production Technician - WC30",
    "Production Technician - WC40",
    "Production Technician - WC45",
    "Production Technician - WC50",
    "Production Technician - WC60",
    "Production Supervisor - WC10",
    "Buyer",
    "Marketing Specialist",
    "Network Administrator",
    "Application Specialist",
    "Accountant",
    "Document Control Assistant",
    "Quality Assurance Technician",
    "Shipping and Receiving Clerk",
    "Stocker",
    "Tool Designer",
    "Design Engineer",
    "Recruiter",
];

/// Sales people per unit of scale (see `build_hr`).
const SALES_FORCE: i64 = 17;

impl Generator {
    pub(super) fn build_hr(&mut self, rng: &mut ChaCha8Rng, log: &mut DayLog) {
        const FIRST_SALES: i64 = 274;
        // The sales force grows with the business: 17 sales people per unit
        // of scale (above 1.5), so each of them serves about as many stores
        // and orders at every scale. With 17 at every scale, the few sales
        // people whose year-to-date sales a day's orders move would each
        // head an ever larger share of the orders, and a day's changes
        // would cascade (bridge fan-out) to a share of the order lines that
        // grows with the scale.
        let sales_force = SALES_FORCE * (self.scale().round() as i64).max(1);
        let employees_n = FIRST_SALES - 1 + sales_force;
        self.world.sales_people = vec![Vec::new(); TERRITORIES.len()];
        for n in 1..=employees_n {
            let hire = rand_date(rng, ymd(2007, 1, 1), ymd(2013, 5, 30));
            let md = add_days(hire, rng.random_range(30..400)).min(ymd(2014, 6, 30));
            let kind = if n >= FIRST_SALES { "SP" } else { "EM" };
            let id = self.new_person(log, rng, kind, md);
            let (address, address_row) = self.new_address(log, rng, 1, md);
            self.link_address(log, rng, id, address, ADDR_HOME, md);
            self.world.home_address_row.insert(id, address_row);
            let first = self.tables[PERSONS]
                .get(self.world.person_row[&id], "first_name")
                .as_str()
                .unwrap_or("user")
                .to_lowercase();
            let (title, dept) = if n == 1 {
                ("Chief Executive Officer".to_string(), 16)
            } else if n >= FIRST_SALES {
                ("Sales Representative".to_string(), 3)
            } else if n % 25 == 0 {
                ("Buyer".to_string(), 5)
            } else {
                let t = pick(rng, JOB_TITLES).to_string();
                let d = if t.starts_with("Production") {
                    7
                } else {
                    rng.random_range(1..=15)
                };
                (t, d)
            };
            if dept == 5 {
                self.world.buyers.push(id);
            }
            let salaried = n == 1 || n >= FIRST_SALES || n % 7 == 0;
            self.add(
                log,
                EMPLOYEES,
                row! {
                    "business_entity_id" => id,
                    "national_idnumber" => format!("{}", rng.random_range(10_000_000..999_999_999)),
                    "login_id" => format!("adventure-works\\{first}{n}"),
                    "job_title" => title,
                    "birth_date" => date_v(rand_date(rng, ymd(1951, 1, 1), ymd(1991, 12, 31))),
                    "marital_status" => *pick(rng, &["M", "S"]),
                    "gender" => *pick(rng, &["M", "F"]),
                    "hire_date" => date_v(hire),
                    "salaried_flag" => salaried,
                    "vacation_hours" => rng.random_range(0..=99),
                    "sick_leave_hours" => rng.random_range(20..=80),
                    "current_flag" => true,
                    "rowguid" => guid(rng),
                    "modified_date" => date_v(md),
                    "organization_level" => if n == 1 { None } else { Some(rng.random_range(1..=4)) },
                },
            );
            self.world.employees.push(id);
            let raises = if n % 11 == 0 { 2 } else { 1 };
            for k in 0..raises {
                let date = add_days(hire, k * 365);
                self.add(
                    log,
                    EMPLOYEE_PAY_HISTORIES,
                    row! {
                        "business_entity_id" => id,
                        "rate_change_date" => ts_v(date),
                        "rate" => money(if salaried { 30.0 } else { 12.0 } + rng.random_range(0.0..40.0) + k as f64 * 2.0),
                        "pay_frequency" => if salaried { 2 } else { 1 },
                        "modified_date" => date_v(add_days(date, 14)),
                    },
                );
            }
            let shift = if dept == 7 {
                rng.random_range(1..=3)
            } else {
                1
            };
            if n % 48 == 5 {
                // A department move: the old assignment is closed.
                let moved = add_days(hire, 200);
                self.add(
                    log,
                    EMPLOYEE_DEPARTMENT_HISTORIES,
                    row! {
                        "business_entity_id" => id,
                        "department_id" => if dept == 1 { 2 } else { 1 },
                        "shift_id" => shift,
                        "start_date" => ts_v(hire),
                        "modified_date" => date_v(moved),
                        "end_date" => date_v(moved),
                    },
                );
                self.add(log, EMPLOYEE_DEPARTMENT_HISTORIES, row! {"business_entity_id" => id, "department_id" => dept, "shift_id" => shift, "start_date" => ts_v(moved), "modified_date" => date_v(moved), "end_date" => Cell::Null});
            } else {
                self.add(log, EMPLOYEE_DEPARTMENT_HISTORIES, row! {"business_entity_id" => id, "department_id" => dept, "shift_id" => shift, "start_date" => ts_v(hire), "modified_date" => date_v(hire), "end_date" => Cell::Null});
            }
            if n >= FIRST_SALES {
                // The place in a group of 17: three managers without a
                // territory, then one or two per territory.
                let k = (n - FIRST_SALES) % SALES_FORCE;
                let territory: Option<i64> = if k < 3 {
                    None
                } else {
                    Some(((k - 3) % 10) + 1)
                };
                let ytd = rng.random_range(500_000.0..4_000_000.0);
                self.add(
                    log,
                    SALES_PERSONS,
                    row! {
                        "business_entity_id" => id,
                        "bonus" => money(if territory.is_some() { rng.random_range(0.0..6700.0) } else { 0.0 }),
                        "commission_pct" => money(if territory.is_some() { *pick(rng, &[0.01, 0.012, 0.015, 0.018, 0.019, 0.02]) } else { 0.0 }),
                        "sales_ytd" => money(ytd),
                        "sales_last_year" => money(ytd * rng.random_range(0.0..1.3)),
                        "rowguid" => guid(rng),
                        "modified_date" => date_v(ymd(2012, 5, 23)),
                        "territory_id" => territory,
                        "sales_quota" => territory.map(|_| 250_000.0 + 50_000.0 * rng.random_range(0..6) as f64),
                    },
                );
                if let Some(t) = territory {
                    self.world.sales_people[(t - 1) as usize].push(id);
                    let start = ymd(2011, 5, 31);
                    // Quarterly quotas.
                    let mut q = ymd(2011, 5, 31);
                    while q <= ymd(2014, 3, 1) {
                        self.add(log, SALES_PERSON_QUOTA_HISTORIES, row! {"business_entity_id" => id, "quota_date" => date_v(q), "sales_quota" => money(rng.random_range(100_000.0..1_500_000.0)), "rowguid" => guid(rng), "modified_date" => date_v(add_days(q, -2))});
                        q = q
                            .checked_add_months(chrono::Months::new(3))
                            .unwrap_or(BASE_END);
                    }
                    if k >= 14 {
                        // Moved territory once.
                        let moved = ymd(2012, 11, 30);
                        let old = (t % 10) + 1;
                        self.add(log, SALES_TERRITORY_HISTORIES, row! {"business_entity_id" => id, "territory_id" => old, "start_date" => date_v(start), "rowguid" => guid(rng), "modified_date" => date_v(moved), "end_date" => date_v(moved)});
                        self.add(log, SALES_TERRITORY_HISTORIES, row! {"business_entity_id" => id, "territory_id" => t, "start_date" => date_v(moved), "rowguid" => guid(rng), "modified_date" => date_v(moved), "end_date" => Cell::Null});
                    } else {
                        self.add(log, SALES_TERRITORY_HISTORIES, row! {"business_entity_id" => id, "territory_id" => t, "start_date" => date_v(start), "rowguid" => guid(rng), "modified_date" => date_v(start), "end_date" => Cell::Null});
                    }
                }
            }
        }
        if self.world.buyers.is_empty() {
            self.world.buyers.push(1);
        }
        // Every territory gets at least one sales person to serve its stores.
        for t in 0..TERRITORIES.len() {
            if self.world.sales_people[t].is_empty() {
                self.world.sales_people[t].push(FIRST_SALES + 3);
            }
        }
    }
}
