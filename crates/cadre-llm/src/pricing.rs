//! Prices per million tokens and the cost of a call, in exact decimals.
//!
//! The built-in table holds list prices (USD) of common hosted models; an
//! organization's model configuration overrides it. A model that matches
//! nothing costs zero and is reported as unpriced.

use rust_decimal::Decimal;

use crate::Usage;

/// USD per million input and output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub input_per_mtok: Decimal,
    pub output_per_mtok: Decimal,
}

impl Prices {
    /// The cost of `usage` at these prices.
    pub fn cost(&self, usage: Usage) -> Decimal {
        let million = Decimal::from(1_000_000u32);
        (Decimal::from(usage.input_tokens) * self.input_per_mtok
            + Decimal::from(usage.output_tokens) * self.output_per_mtok)
            / million
    }
}

/// Model-name prefixes and their list prices, longest prefix first where
/// one prefix extends another.
const BUILT_IN: &[(&str, (i64, i64))] = &[
    ("gpt-4o-mini", (15, 60)),
    ("gpt-4o", (250, 1000)),
    ("gpt-4.1-nano", (10, 40)),
    ("gpt-4.1-mini", (40, 160)),
    ("gpt-4.1", (200, 800)),
    ("gpt-4-turbo", (1000, 3000)),
    ("gpt-3.5-turbo", (50, 150)),
    ("o3-mini", (110, 440)),
    ("o4-mini", (110, 440)),
    ("o1-mini", (110, 440)),
    ("o1", (1500, 6000)),
    ("claude-3-5-haiku", (80, 400)),
    ("claude-3-haiku", (25, 125)),
    ("claude-3-5-sonnet", (300, 1500)),
    ("claude-3-7-sonnet", (300, 1500)),
    ("claude-sonnet-4", (300, 1500)),
    ("claude-3-opus", (1500, 7500)),
    ("claude-opus-4", (1500, 7500)),
    ("text-embedding-3-small", (2, 0)),
    ("text-embedding-3-large", (13, 0)),
];

/// The built-in price of a model, if it is in the table.
pub fn built_in(model: &str) -> Option<Prices> {
    BUILT_IN
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, (input, output))| Prices {
            input_per_mtok: Decimal::new(*input, 2),
            output_per_mtok: Decimal::new(*output, 2),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins_and_cost_is_exact() {
        let mini = built_in("gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(mini.input_per_mtok, Decimal::new(15, 2));
        let cost = mini.cost(Usage {
            input_tokens: 1_000,
            output_tokens: 500,
        });
        // 1000 × 0.15 / 1e6 + 500 × 0.60 / 1e6 = 0.00015 + 0.0003
        assert_eq!(cost.normalize().to_string(), "0.00045");
        assert_eq!(
            built_in("gpt-4o").unwrap().output_per_mtok,
            Decimal::new(1000, 2)
        );
        assert!(built_in("llama-3-8b").is_none());
    }
}
