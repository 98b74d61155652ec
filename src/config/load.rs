//! Reading a configuration file: TOML parsing, `${NAME}` environment substitution and errors that
//! point at `file:line:col`.
//!
//! Substitution happens on toml's spanned document before deserialisation, so every later error
//! (a wrong type, an unknown key, a bad duration, even inside a substituted value) still points at
//! the place in the original file.

use super::Config;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue, Deserializer};
use toml::Spanned;

/// An invalid configuration; `Display` gives `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file a configuration came from, kept so later checks (files it names) can point into it.
#[derive(Clone, Default)]
pub struct ConfigOrigin {
    pub file: String,
    /// The text as parsed (`${NAME}` substituted): secrets, so never in Debug.
    pub text: String,
}

impl std::fmt::Debug for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigOrigin")
            .field("file", &self.file)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .finish()
    }
}

impl ConfigOrigin {
    /// An error about the value of `key` (a dotted path such as `tls.cert`), located when the key
    /// is written in the file.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let span = DeTable::parse(&self.text)
            .ok()
            .and_then(|root| find_span(&root, key));
        ConfigError {
            file: self.file.clone(),
            position: span.map(|span| line_col(&self.text, span.start)),
            message: format!("{key}: {}", message.into()),
        }
    }
}

/// Where `key` is written; for a key left out, where its section is (the error is about what
/// that section lacks).
fn find_span(root: &Spanned<DeTable<'_>>, key: &str) -> Option<Range<usize>> {
    let mut table = root.get_ref();
    let mut section = None;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(value) = table.get(part) else {
            return section;
        };
        if parts.peek().is_none() {
            return Some(value.span());
        }
        section = Some(value.span());
        table = value.get_ref().as_table()?;
    }
    None
}

/// Reads and validates a configuration file, substituting `${NAME}` from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
        file: file.clone(),
        position: None,
        message: format!("cannot read the configuration file: {err}"),
    })?;
    parse_str(&text, &file, &|name| std::env::var(name).ok())
}

/// Parses configuration text; `env` resolves `${NAME}` references.
pub fn parse_str(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let error_at = |span: Option<Range<usize>>, message: String| ConfigError {
        file: file.to_string(),
        position: span.map(|span| line_col(text, span.start)),
        message,
    };
    let mut root =
        DeTable::parse(text).map_err(|err| error_at(err.span(), clean(err.message())))?;
    substitute_table(root.get_mut(), env)
        .map_err(|(span, message)| error_at(Some(span), message))?;
    let mut config = Config::deserialize(Deserializer::from(root))
        .map_err(|err| error_at(err.span(), clean(err.message())))?;
    config.origin = ConfigOrigin {
        file: file.to_string(),
        text: text.to_string(),
    };
    config.validate()?;
    Ok(config)
}

/// toml's messages sometimes end in a newline; keep one-line errors.
fn clean(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

type SubstError = (Range<usize>, String);

fn substitute_table(
    table: &mut DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SubstError> {
    for (_, value) in table.iter_mut() {
        substitute_value(value, env)?;
    }
    Ok(())
}

fn substitute_value(
    value: &mut Spanned<DeValue<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SubstError> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(text) => {
            if let Some(expanded) = expand(text, env).map_err(|message| (span, message))? {
                *text = Cow::Owned(expanded);
            }
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                substitute_value(item, env)?;
            }
        }
        DeValue::Table(table) => substitute_table(table, env)?,
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` references; `$${` stands for a literal `${`. Returns None when nothing changed.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start]); // "$${" -> keep "${" literally, drop one '$'
            out.push('{');
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated \"${\": expected ${NAME}".to_string())?;
        let name = &after[..end];
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "expected an environment variable name in \"${{{name}}}\" (letters, digits, _)"
            ));
        }
        let value = env(name).ok_or_else(|| {
            format!("environment variable {name} is not set (referenced as ${{{name}}})")
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3cr\"et".to_string())
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand("plain", &env), Ok(None));
        assert_eq!(expand("a${SECRET}b", &env), Ok(Some("as3cr\"etb".into())));
        assert_eq!(expand("$${SECRET}", &env), Ok(Some("${SECRET}".into())));
        assert!(expand("${MISSING}", &env).unwrap_err().contains("MISSING"));
        assert!(expand("${oops", &env).is_err());
        assert!(expand("${a-b}", &env).is_err());
    }

    #[test]
    fn positions_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
