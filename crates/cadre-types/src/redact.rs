//! Which field names hold secrets (SPEC §9), and how to hide them.
//!
//! Logs and audit entries both apply this one rule, so a field that is hidden
//! in one is hidden in the other.

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Name fragments that mark a field as secret, matched case-insensitively.
const SENSITIVE: [&str; 6] = [
    "password",
    "token",
    "secret",
    "key",
    "authorization",
    "credential",
];

/// Whether a field with this name must never be written out in clear.
pub fn is_sensitive(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| lower.contains(s))
}

/// Replaces, at any depth, the value of every sensitive field of a JSON value.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_sensitive(k) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_names_match_case_insensitively() {
        for name in [
            "password",
            "newPassword",
            "refresh_token",
            "X-API-Key",
            "Authorization",
            "clientSecret",
        ] {
            assert!(is_sensitive(name), "{name} should be sensitive");
        }
        for name in ["email", "name", "org_id", "request_id"] {
            assert!(!is_sensitive(name), "{name} should not be sensitive");
        }
    }

    #[test]
    fn nested_secrets_are_replaced_and_the_rest_kept() {
        let mut v = json!({"email": "a@b.c", "password": "hunter22",
            "items": [{"apiKey": "cdr_x", "n": 1}], "auth": {"token": {"deep": 1}}});
        redact_json(&mut v);
        assert_eq!(
            v,
            json!({"email": "a@b.c", "password": REDACTED,
            "items": [{"apiKey": REDACTED, "n": 1}], "auth": {"token": REDACTED}})
        );
    }
}
