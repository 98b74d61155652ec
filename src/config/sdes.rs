//! `[liveperson.sdes]`: which `lp_sdes` engagement attributes LivePerson accepts in the
//! authenticated flow, and the type of each (`docs/vendors/liveperson.md`, "Custom
//! attributes"). The file is checked against this; the vendor builds the attributes from it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Integer,
    /// `{day, month, year}` from "YYYY-MM-DD".
    Date,
    /// `{age, year, month, day}` from a birth date, or `{age}` from a number of years.
    Age,
    /// "MALE" | "FEMALE" | "OTHER".
    Gender,
    /// One field of `personal.contacts[0]`.
    Contact,
}

const CTMRINFO: &[(&str, Kind)] = &[
    ("cstatus", Kind::Text),
    ("ctype", Kind::Text),
    ("customerId", Kind::Text),
    ("balance", Kind::Number),
    ("currency", Kind::Text),
    ("socialId", Kind::Text),
    ("imei", Kind::Text),
    ("userName", Kind::Text),
    ("companySize", Kind::Integer),
    ("companyBranch", Kind::Text),
    ("accountName", Kind::Text),
    ("role", Kind::Text),
    ("loginStatus", Kind::Integer),
    ("lastPaymentDate", Kind::Date),
    ("registrationDate", Kind::Date),
];

const PERSONAL: &[(&str, Kind)] = &[
    ("firstname", Kind::Text),
    ("lastname", Kind::Text),
    ("age", Kind::Age),
    ("gender", Kind::Gender),
    ("language", Kind::Text),
    ("company", Kind::Text),
    ("email", Kind::Contact),
    ("phone", Kind::Contact),
];

pub fn schema(section: &str) -> Option<&'static [(&'static str, Kind)]> {
    match section {
        "ctmrinfo" => Some(CTMRINFO),
        "personal" => Some(PERSONAL),
        _ => None,
    }
}

/// Whether LivePerson accepts `section.attribute` in the authenticated flow (for `tether check`).
pub fn check_attribute(section: &str, attribute: &str) -> Result<(), String> {
    let Some(schema) = schema(section) else {
        return Err(format!(
            "expected the section \"ctmrinfo\" or \"personal\", found {section:?}"
        ));
    };
    if section == "ctmrinfo" && matches!(attribute, "storeNumber" | "storeZipCode") {
        return Err(format!(
            "{attribute} is not supported in LivePerson's authenticated flow; remove it"
        ));
    }
    if schema.iter().any(|(name, _)| *name == attribute) {
        return Ok(());
    }
    let names: Vec<&str> = schema.iter().map(|(name, _)| *name).collect();
    Err(format!(
        "expected one of {}, found {attribute:?}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_checked() {
        assert!(check_attribute("ctmrinfo", "balance").is_ok());
        assert!(check_attribute("ctmrinfo", "storeNumber")
            .unwrap_err()
            .contains("not supported"));
        assert!(check_attribute("ctmrinfo", "storeZipCode").is_err());
        assert!(check_attribute("personal", "nickname").is_err());
        assert!(check_attribute("purchase", "total").is_err());
    }
}
