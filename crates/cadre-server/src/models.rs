//! Turning an organization's model configuration into gateway endpoints:
//! its own models (keys opened from the secrets module) first, then the
//! instance's default providers.

use cadre_llm::catalog::{self, Defaults};
use cadre_llm::{Endpoint, Gateway};
use cadre_types::Tenant;

use crate::AppState;
use crate::error::ApiError;

pub use cadre_engine::models::Llm;

/// The gateway and the instance's default providers, from configuration.
pub fn llm_from_config(config: &cadre_config::ProvidersConfig) -> anyhow::Result<Llm> {
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
    Ok(Llm {
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

/// The endpoint chain for `model` in this organization.
pub async fn endpoints_for(
    state: &AppState,
    tenant: Tenant,
    model: &str,
) -> Result<Vec<Endpoint>, ApiError> {
    use cadre_engine::models::ResolveError;
    cadre_engine::models::endpoints_for(
        state.store(),
        state.secrets(),
        &state.llm().defaults,
        tenant,
        model,
    )
    .await
    .map_err(|e| match e {
        ResolveError::Unknown(message) => ApiError::validation("model", message),
        ResolveError::Store(e) => e.into(),
        ResolveError::Secret(message) => ApiError::internal(&std::io::Error::other(message)),
    })
}
