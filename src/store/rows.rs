//! The store's durable state row by row, as `export`, `import` and `backup` move it: one JSON
//! object per line (JSON Lines), so any amount streams through a few lines of memory.
//!
//! A mapping: `{"user": "...", "entity_id": "...", "created_at": <ms>}` plus the cookie grant's
//! `"cookie_secret"` when the record has one (`created_at` is null for records written before
//! Tether kept it). A named value (backups, and exports asked for them): `{"value": "...",
//! "data": "..."}`.

use super::CustomerRecord;
use serde::{Deserialize, Serialize};

/// One durable row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Customer {
        user: String,
        record: CustomerRecord,
    },
    Value {
        name: String,
        data: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerLine {
    user: String,
    entity_id: String,
    created_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cookie_secret: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueLine {
    value: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Customer(CustomerLine),
    Value(ValueLine),
}

impl Row {
    /// The row as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        let mut line = match self {
            Row::Customer { user, record } => serde_json::to_string(&CustomerLine {
                user: user.clone(),
                entity_id: record.entity_id.clone(),
                created_at: record.created_at_ms,
                cookie_secret: record.cookie_secret.clone(),
            }),
            Row::Value { name, data } => serde_json::to_string(&ValueLine {
                value: name.clone(),
                data: data.clone(),
            }),
        }
        .expect("rows are plain strings and numbers");
        line.push('\n');
        line
    }

    /// Reads one line; the error is the column (1-based) and what was expected there.
    pub fn from_line(line: &str) -> Result<Self, (usize, String)> {
        let parsed: Line = serde_json::from_str(line).map_err(|err| {
            (
                err.column().max(1),
                "expected {\"user\": \"...\", \"entity_id\": \"...\", \"created_at\": <ms or null>} or {\"value\": \"...\", \"data\": \"...\"}".to_string(),
            )
        })?;
        match parsed {
            Line::Customer(line) => {
                if line.user.is_empty() || line.entity_id.is_empty() || line.entity_id.len() > 255 {
                    return Err((
                        1,
                        "expected a non-empty user and an entity_id of 1 to 255 bytes".into(),
                    ));
                }
                Ok(Row::Customer {
                    user: line.user,
                    record: CustomerRecord {
                        entity_id: line.entity_id,
                        cookie_secret: line.cookie_secret.filter(|secret| !secret.is_empty()),
                        created_at_ms: line.created_at,
                    },
                })
            }
            Line::Value(line) => Ok(Row::Value {
                name: line.value,
                data: line.data,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_lines() {
        let rows = [
            Row::Customer {
                user: "alice@example.com".into(),
                record: CustomerRecord {
                    entity_id: "e-1".into(),
                    cookie_secret: None,
                    created_at_ms: Some(1_763_000_000_000),
                },
            },
            Row::Customer {
                user: "b\"ob\n".into(),
                record: CustomerRecord {
                    entity_id: "e-2".into(),
                    cookie_secret: Some("cst".into()),
                    created_at_ms: None,
                },
            },
            Row::Value {
                name: "livechat.agent".into(),
                data: "{\"v\":1}".into(),
            },
        ];
        for row in rows {
            let line = row.to_line();
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(Row::from_line(&line), Ok(row));
        }
        assert_eq!(
            Row::Customer {
                user: "u".into(),
                record: CustomerRecord {
                    entity_id: "e".into(),
                    cookie_secret: None,
                    created_at_ms: Some(5)
                }
            }
            .to_line(),
            "{\"user\":\"u\",\"entity_id\":\"e\",\"created_at\":5}\n"
        );
    }

    #[test]
    fn bad_lines_say_what_was_expected() {
        for bad in [
            "",
            "{",
            "{\"user\": \"u\"}",
            "{\"user\": \"u\", \"entity_id\": \"\", \"created_at\": 1}",
            "{\"user\": \"u\", \"entity_id\": \"e\", \"created_at\": 1, \"extra\": 2}",
            "[1]",
        ] {
            let (column, err) = Row::from_line(bad).unwrap_err();
            assert!(column >= 1 && err.contains("expected"), "{bad}: {err}");
        }
    }
}
