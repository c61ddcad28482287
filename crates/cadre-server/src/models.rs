//! Turning an organization's model configuration into gateway endpoints:
//! its own models (keys opened from the secrets module) first, then the
//! instance's default providers.

use std::str::FromStr;

use cadre_llm::catalog::{self, Defaults, ModelSpec, ProviderKind};
use cadre_llm::pricing::Prices;
use cadre_llm::{Endpoint, Gateway};
use cadre_types::Tenant;
use rust_decimal::Decimal;

use crate::AppState;
use crate::error::ApiError;

/// The gateway and the instance's default providers.
#[derive(Debug, Clone)]
pub struct Llm {
    pub gateway: Gateway,
    pub defaults: Defaults,
}

impl Llm {
    pub fn from_config(config: &cadre_config::ProvidersConfig) -> anyhow::Result<Self> {
        use cadre_config::ExposeSecret as _;
        use std::time::Duration;
        let client = catalog::http_client(
            Duration::from_secs(config.connect_timeout_secs),
            Duration::from_secs(config.read_timeout_secs),
            Duration::from_secs(config.total_timeout_secs),
        )?;
        let key = |s: &cadre_config::SecretString| {
            Some(s.expose_secret().to_owned()).filter(|k| !k.is_empty())
        };
        Ok(Self {
            gateway: Gateway::default(),
            defaults: Defaults {
                openai_api_key: key(&config.openai_api_key),
                openai_base_url: config.openai_base_url.trim_end_matches('/').to_owned(),
                anthropic_api_key: key(&config.anthropic_api_key),
                anthropic_base_url: config.anthropic_base_url.trim_end_matches('/').to_owned(),
                client,
            },
        })
    }
}

/// The endpoint chain for `model` in this organization.
pub async fn endpoints_for(
    state: &AppState,
    tenant: Tenant,
    model: &str,
) -> Result<Vec<Endpoint>, ApiError> {
    let rows = state.store().models().org_models(tenant).await?;
    // Only the model asked for is turned into a spec: opening the other
    // models' keys would be decryption work (and key exposure) for nothing.
    let mut specs = Vec::with_capacity(1);
    for row in rows.into_iter().filter(|r| r.name == model) {
        let Some(provider) = ProviderKind::parse(&row.provider) else {
            continue;
        };
        let api_key = match &row.api_key_sealed {
            Some(sealed) => Some(
                String::from_utf8_lossy(&state.secrets().open(tenant, sealed).await?).into_owned(),
            ),
            None => None,
        };
        let price = |text: &Option<String>| text.as_deref().and_then(|t| Decimal::from_str(t).ok());
        let prices = match (
            price(&row.input_price_per_mtok),
            price(&row.output_price_per_mtok),
        ) {
            (None, None) => None,
            (input, output) => Some(Prices {
                input_per_mtok: input.unwrap_or_default(),
                output_per_mtok: output.unwrap_or_default(),
            }),
        };
        specs.push(ModelSpec {
            name: row.name,
            provider,
            base_url: row.base_url,
            api_key,
            prices,
            script: row.script,
        });
    }
    catalog::resolve(model, &specs, &state.llm().defaults)
        .map_err(|e| ApiError::validation("model", e.message))
}
