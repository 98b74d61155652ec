//! `lp_sdes`: the engagement attributes LivePerson shows agents, built from the app's identity
//! fields through `[liveperson.sdes]`. Each attribute has the type LivePerson documents; a value
//! that does not fit its type is left out (and logged), never sent malformed.

use crate::identity::Identity;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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

fn schema(section: &str) -> Option<&'static [(&'static str, Kind)]> {
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

/// The configured mapping, resolved once: (section, attribute, kind, identity field).
pub struct SdesMapping(Vec<(&'static str, &'static str, Kind, String)>);

impl SdesMapping {
    /// Builds the mapping from validated configuration (unknown attributes were refused there).
    pub fn new(config: &BTreeMap<String, BTreeMap<String, String>>) -> Self {
        let mut entries = Vec::new();
        for (section, attributes) in config {
            let Some((section, schema)) = ["ctmrinfo", "personal"]
                .into_iter()
                .find(|s| s == section)
                .and_then(|s| Some((s, schema(s)?)))
            else {
                continue;
            };
            for (attribute, field) in attributes {
                if let Some(&(name, kind)) = schema.iter().find(|(name, _)| name == attribute) {
                    entries.push((section, name, kind, field.clone()));
                }
            }
        }
        Self(entries)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `lp_sdes` array for `identity` (empty sections left out).
    pub fn build(&self, identity: &Identity, today: (i32, u32, u32)) -> Vec<Value> {
        let mut info = Map::new();
        let mut personal = Map::new();
        let mut contact = Map::new();
        for (section, attribute, kind, field) in &self.0 {
            let Some(raw) = field_value(identity, field) else {
                continue;
            };
            let Some(value) = convert(*kind, raw, today) else {
                tracing::warn!(
                    attribute = %format!("{section}.{attribute}"),
                    "the app's value does not fit this lp_sdes attribute's type; left out"
                );
                continue;
            };
            let target = match (*section, kind) {
                (_, Kind::Contact) => &mut contact,
                ("ctmrinfo", _) => &mut info,
                _ => &mut personal,
            };
            target.insert((*attribute).to_string(), value);
        }
        if !contact.is_empty() {
            personal.insert("contacts".into(), json!([contact]));
        }
        let mut sdes = Vec::new();
        if !info.is_empty() {
            sdes.push(json!({"type": "ctmrinfo", "info": info}));
        }
        if !personal.is_empty() {
            sdes.push(json!({"type": "personal", "personal": personal}));
        }
        sdes
    }
}

/// An identity field by name: `user_id`, `email`, `name`, or a claim from `[identity.claims]`.
pub fn field_value<'a>(identity: &'a Identity, field: &str) -> Option<&'a str> {
    match field {
        "user_id" => Some(identity.user_id.as_str()),
        "email" => identity.email.as_deref(),
        "name" => identity.name.as_deref(),
        claim => identity.claims.get(claim).map(String::as_str),
    }
    .filter(|value| !value.is_empty())
}

fn convert(kind: Kind, raw: &str, today: (i32, u32, u32)) -> Option<Value> {
    let raw = raw.trim();
    match kind {
        Kind::Text | Kind::Contact => Some(Value::from(raw)),
        Kind::Number => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from),
        Kind::Integer => raw.parse::<i64>().ok().map(Value::from),
        Kind::Date => {
            let (year, month, day) = parse_date(raw)?;
            Some(json!({"day": day, "month": month, "year": year}))
        }
        Kind::Age => {
            if let Ok(years) = raw.parse::<u32>() {
                return Some(json!({ "age": years }));
            }
            let (year, month, day) = parse_date(raw)?;
            let (this_year, this_month, this_day) = today;
            let had_birthday = (this_month, this_day) >= (month, day);
            let age = this_year - year - i32::from(!had_birthday);
            (age >= 0).then(|| json!({"age": age, "year": year, "month": month, "day": day}))
        }
        Kind::Gender => match raw.to_ascii_uppercase().as_str() {
            "MALE" | "M" => Some(Value::from("MALE")),
            "FEMALE" | "F" => Some(Value::from("FEMALE")),
            "OTHER" | "O" => Some(Value::from("OTHER")),
            _ => None,
        },
    }
}

/// "YYYY-MM-DD" (a time after it is ignored) -> (year, month, day).
fn parse_date(raw: &str) -> Option<(i32, u32, u32)> {
    let date = raw.get(..10)?;
    let mut parts = date.split('-');
    let year: i32 = parts.next().filter(|p| p.len() == 4)?.parse().ok()?;
    let month: u32 = parts.next().filter(|p| p.len() == 2)?.parse().ok()?;
    let day: u32 = parts.next().filter(|p| p.len() == 2)?.parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((year, month, day))
}

/// The civil (UTC) date of a Unix time, by Howard Hinnant's days-from-civil inverse.
pub fn civil_date(unix_seconds: u64) -> (i32, u32, u32) {
    let days = (unix_seconds / 86400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (year_of_era + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_795_305_600), (2026, 11, 22));
    }

    #[test]
    fn attributes_are_checked_and_typed() {
        assert!(check_attribute("ctmrinfo", "balance").is_ok());
        assert!(check_attribute("ctmrinfo", "storeNumber")
            .unwrap_err()
            .contains("not supported"));
        assert!(check_attribute("ctmrinfo", "storeZipCode").is_err());
        assert!(check_attribute("personal", "nickname").is_err());
        assert!(check_attribute("purchase", "total").is_err());

        let today = (2026, 11, 22);
        assert_eq!(convert(Kind::Number, "12.5", today), Some(json!(12.5)));
        assert_eq!(convert(Kind::Number, "a lot", today), None);
        assert_eq!(convert(Kind::Integer, "1.5", today), None);
        assert_eq!(
            convert(Kind::Date, "2024-02-29", today),
            Some(json!({"day": 29, "month": 2, "year": 2024}))
        );
        assert_eq!(convert(Kind::Date, "29/02/2024", today), None);
        assert_eq!(
            convert(Kind::Age, "1990-11-23", today),
            Some(json!({"age": 35, "year": 1990, "month": 11, "day": 23}))
        );
        assert_eq!(
            convert(Kind::Gender, "female", today),
            Some(json!("FEMALE"))
        );
        assert_eq!(convert(Kind::Gender, "unknown", today), None);
    }
}
