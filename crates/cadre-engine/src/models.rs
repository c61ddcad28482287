//! Turning an organization's model configuration into gateway endpoints:
//! its own models (keys opened from the secrets module) first, then the
//! instance's default providers. The API (model checks) and the engine
//! (every model call) both resolve through here.

use std::str::FromStr;

use cadre_identity::secrets::Secrets;
use cadre_llm::catalog::{self, Defaults, ModelSpec, ProviderKind};
use cadre_llm::pricing::Prices;
use cadre_llm::{Endpoint, Gateway};
use cadre_store::Store;
use cadre_types::Tenant;
use rust_decimal::Decimal;

/// The gateway and the instance's default providers.
#[derive(Debug, Clone)]
pub struct Llm {
    pub gateway: Gateway,
    pub defaults: Defaults,
}

/// Why a model could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No provider serves this model name (the message says what to do).
    #[error("{0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] cadre_store::StoreError),
    #[error("opening the model's API key failed: {0}")]
    Secret(String),
}

/// The endpoint chain for `model` in this organization.
pub async fn endpoints_for(
    store: &Store,
    secrets: &Secrets,
    defaults: &Defaults,
    tenant: Tenant,
    model: &str,
) -> Result<Vec<Endpoint>, ResolveError> {
    let rows = store.models().org_models(tenant).await?;
    // Only the model asked for is turned into a spec: opening the other
    // models' keys would be decryption work (and key exposure) for nothing.
    let mut specs = Vec::with_capacity(1);
    for row in rows.into_iter().filter(|r| r.name == model) {
        let Some(provider) = ProviderKind::parse(&row.provider) else {
            continue;
        };
        let api_key = match &row.api_key_sealed {
            Some(sealed) => Some(
                String::from_utf8_lossy(
                    &secrets
                        .open(tenant, sealed)
                        .await
                        .map_err(|e| ResolveError::Secret(e.to_string()))?,
                )
                .into_owned(),
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
    catalog::resolve(model, &specs, defaults).map_err(|e| ResolveError::Unknown(e.message))
}
