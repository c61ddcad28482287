//! Identifiers. Every id Cadre creates is a UUIDv7: time-ordered, so rows
//! inserted together sit together in indexes, and sortable as strings.

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a, "{b} should sort after {a}");
    }
}
