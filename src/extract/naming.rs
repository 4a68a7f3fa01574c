//! Field-name normalisation: API member names to snake_case column names.
//!
//! The rules (applied in order) reproduce the naming convention the original
//! landing layer used, so the column names of our tables are the ones its
//! users know:
//! 1. trim surrounding whitespace;
//! 2. translate `+`→`x`, `-`→`_`, `!`→`l`, `$`→`s`, `*`→`x`, `@`→`a`,
//!    `#`→`h`, `=`→`_`, `|`→`l`, `:`→`i`;
//! 3. replace every run of characters outside `[A-Za-z0-9_]` by one `_`;
//! 4. put `_` between a non-underscore character and a following
//!    capital-plus-lowercase run (`AddressLine` → `Address_Line`);
//! 5. put `_` between a lowercase letter or digit and a following capital,
//!    then lower-case everything;
//! 6. prefix `_` when the name starts with a digit;
//! 7. turn each trailing underscore into an `x`;
//! 8. collapse runs of underscores into one.
//!
//! The function is pure and idempotent on its own output.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::SourceConfig;
use crate::error::{Error, Result};

static NON_IDENT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^A-Za-z0-9_]+").expect("static regex is valid"));
static BREAK_BEFORE_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([^_])([A-Z][a-z]+)").expect("static regex is valid"));
static BREAK_LOWER_UPPER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([a-z0-9])([A-Z])").expect("static regex is valid"));
static UNDERSCORE_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"__+").expect("static regex is valid"));

/// Normalise an API member (or table) name to its snake_case column name.
pub fn snake_case(name: &str) -> String {
    let translated: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '+' | '*' => 'x',
            '-' | '=' => '_',
            '!' | '|' => 'l',
            '$' => 's',
            '@' => 'a',
            '#' => 'h',
            ':' => 'i',
            other => other,
        })
        .collect();
    let cleaned = NON_IDENT_RUN.replace_all(&translated, "_");
    let step4 = BREAK_BEFORE_WORD.replace_all(&cleaned, "${1}_${2}");
    let mut out = BREAK_LOWER_UPPER
        .replace_all(&step4, "${1}_${2}")
        .to_lowercase();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    let stripped_len = out.trim_end_matches('_').len();
    let trailing = out.len() - stripped_len;
    out.truncate(stripped_len);
    out.extend(std::iter::repeat_n('x', trailing));
    UNDERSCORE_RUN.replace_all(&out, "_").into_owned()
}

/// Check that every configured column name is the normalisation of its
/// source name, so a field the config does not list would land under the
/// name it would have had. `origin` names the config file in errors.
pub fn check_names(config: &SourceConfig, origin: &str) -> Result<()> {
    for r in &config.resources {
        for c in &r.columns {
            let normalised = snake_case(&c.source);
            if normalised != c.name {
                return Err(Error::invalid(format!(
                    "{origin}: resource `{}`: column `{}` does not match its source field `{}` (which normalises to `{normalised}`)",
                    r.table, c.name, c.source
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_names, snake_case};
    use crate::config::SourceConfig;

    #[test]
    fn adventure_works_names_are_normalised_source_names() {
        let config = SourceConfig::adventure_works().expect("config");
        check_names(&config, "adventure_works.yaml").expect("consistent");
    }

    #[test]
    fn mismatched_source_name_is_rejected() {
        let mut config = SourceConfig::adventure_works().expect("config");
        config.resources[0].columns[0].source = "DeptKey".to_string();
        let err = check_names(&config, "aw.yaml").expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "invalid input: aw.yaml: resource `raw__adventure_works__departments`: column `department_id` does not match its source field `DeptKey` (which normalises to `dept_key`)"
        );
    }

    #[test]
    fn documented_examples() {
        assert_eq!(snake_case("BusinessEntityId"), "business_entity_id");
        assert_eq!(snake_case("AddressLine1"), "address_line1");
        assert_eq!(snake_case("ThumbNailPhoto"), "thumb_nail_photo");
        assert_eq!(snake_case("SalesYtd"), "sales_ytd");
        assert_eq!(snake_case("rowguid"), "rowguid");
        assert_eq!(snake_case("Bomlevel"), "bomlevel");
        assert_eq!(snake_case("bomlevel"), "bomlevel");
        assert_eq!(snake_case("NationalIdnumber"), "national_idnumber");
        assert_eq!(snake_case("ModifiedDate"), "modified_date");
    }

    #[test]
    fn acronyms_and_symbols() {
        assert_eq!(snake_case("NationalIDNumber"), "national_id_number");
        assert_eq!(snake_case("  Tax Amt "), "tax_amt");
        assert_eq!(snake_case("a+b"), "axb");
        assert_eq!(snake_case("@odata.etag"), "aodata_etag");
        assert_eq!(snake_case("price$"), "prices");
        assert_eq!(snake_case("1stPlace"), "_1st_place");
        assert_eq!(snake_case("Trailing__"), "trailingxx");
        assert_eq!(snake_case("a__b"), "a_b");
        assert_eq!(snake_case("Rate#"), "rateh");
    }

    #[test]
    fn idempotent() {
        for n in [
            "SalesOrderHeaders",
            "AddressLine2",
            "ThumbnailPhotoFileName",
            "_x",
        ] {
            let once = snake_case(n);
            assert_eq!(snake_case(&once), once, "{n}");
        }
    }
}
