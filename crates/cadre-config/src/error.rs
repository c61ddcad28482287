//! Configuration errors, phrased for the operator who has to fix them.

use std::fmt;

/// A configuration problem: which key, which value, what is allowed, and where
/// the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// One bad key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, for example `server.bind`.
    pub key: String,
    /// The value as given (secrets are never shown).
    pub value: String,
    /// What would have been accepted.
    pub allowed: String,
    /// Where the value came from, when known (file, environment variable).
    pub source: Option<String>,
}

impl ConfigError {
    pub(crate) fn one(key: &str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                key: key.to_owned(),
                value: value.to_string(),
                allowed: allowed.into(),
                source: None,
            }],
        }
    }

    /// Converts figment's parse errors (bad types, unknown keys, bad TOML).
    pub(crate) fn from_figment(err: figment::Error) -> Self {
        let problems = err
            .into_iter()
            .map(|e| {
                let key = if e.path.is_empty() {
                    "(file)".to_owned()
                } else {
                    e.path.join(".")
                };
                let source = e.metadata.as_ref().map(|md| match &md.source {
                    Some(src) => format!("{} {}", md.name, src),
                    None => md.name.to_string(),
                });
                let (value, allowed) = describe(&e.kind, &key);
                Problem {
                    key,
                    value,
                    allowed,
                    source,
                }
            })
            .collect();
        Self { problems }
    }
}
fn describe(kind: &figment::error::Kind, key: &str) -> (String, String) {
    use figment::error::Kind;
    let secret = hides_value(key);
    let shown = |v: &dyn fmt::Display| {
        if secret {
            "[REDACTED]".to_owned()
        } else {
            v.to_string()
        }
    };
    match kind {
        Kind::InvalidType(actual, expected) => {
            (shown(actual), format!("a value of type {expected}"))
        }
        Kind::InvalidValue(actual, expected) => (shown(actual), expected.clone()),
        Kind::UnknownField(field, expected) => (
            format!("unknown key `{field}`"),
            format!("one of: {}", expected.join(", ")),
        ),
        Kind::UnknownVariant(v, expected) => {
            (format!("`{v}`"), format!("one of: {}", expected.join(", ")))
        }
        other => (String::new(), other.to_string()),
    }
}

/// Secrets, and URLs (which may carry a password), are never echoed back.
fn hides_value(key: &str) -> bool {
    cadre_types::redact::is_sensitive(key) || key.ends_with("url")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "invalid configuration: `{}`", p.key)?;
            if !p.value.is_empty() {
                write!(f, " = {}", p.value)?;
            }
            write!(f, "; expected {}", p.allowed)?;
            if let Some(src) = &p.source {
                write!(f, " (from {src})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
