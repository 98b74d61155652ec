//! `lp_sdes`: the engagement attributes LivePerson shows agents, built from the app's identity
//! fields through `[liveperson.sdes]`. Each attribute has the type LivePerson documents; a value
//! that does not fit its type is left out (and logged), never sent malformed.

use crate::config::sdes::{schema, Kind};
use crate::identity::Identity;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use time::Date;

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
    pub fn build(&self, identity: &Identity, today: Date) -> Vec<Value> {
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

fn convert(kind: Kind, raw: &str, today: Date) -> Option<Value> {
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
            let date = parse_date(raw)?;
            Some(json!({"day": date.day(), "month": u8::from(date.month()), "year": date.year()}))
        }
        Kind::Age => {
            if let Ok(years) = raw.parse::<u32>() {
                return Some(json!({ "age": years }));
            }
            let born = parse_date(raw)?;
            let had_birthday = (today.month(), today.day()) >= (born.month(), born.day());
            let age = today.year() - born.year() - i32::from(!had_birthday);
            (age >= 0).then(|| {
                json!({"age": age, "year": born.year(), "month": u8::from(born.month()), "day": born.day()})
            })
        }
        Kind::Gender => match raw.to_ascii_uppercase().as_str() {
            "MALE" | "M" => Some(Value::from("MALE")),
            "FEMALE" | "F" => Some(Value::from("FEMALE")),
            "OTHER" | "O" => Some(Value::from("OTHER")),
            _ => None,
        },
    }
}

/// "YYYY-MM-DD" (a time after it is ignored), a real calendar date.
fn parse_date(raw: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw.get(..10)?, &format).ok()
}

/// The civil (UTC) date of a Unix time.
pub fn civil_date(unix_seconds: u64) -> Date {
    let seconds = i64::try_from(unix_seconds).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(seconds).map_or(Date::MIN, |moment| moment.date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let date =
            |y, m, d| Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        assert_eq!(civil_date(0), date(1970, 1, 1));
        assert_eq!(civil_date(951_782_400), date(2000, 2, 29));
        assert_eq!(civil_date(1_795_305_600), date(2026, 11, 22));
    }

    #[test]
    fn values_are_typed() {
        let today = civil_date(1_795_305_600); // 2026-11-22
        assert_eq!(convert(Kind::Number, "12.5", today), Some(json!(12.5)));
        assert_eq!(convert(Kind::Number, "a lot", today), None);
        assert_eq!(convert(Kind::Integer, "1.5", today), None);
        assert_eq!(
            convert(Kind::Date, "2024-02-29", today),
            Some(json!({"day": 29, "month": 2, "year": 2024}))
        );
        assert_eq!(convert(Kind::Date, "29/02/2024", today), None);
        // Not a calendar date: never sent to LivePerson.
        assert_eq!(convert(Kind::Date, "2023-02-31", today), None);
        assert_eq!(convert(Kind::Date, "2023-13-01", today), None);
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
