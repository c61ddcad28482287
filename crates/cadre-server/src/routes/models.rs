//! `/orgs/{orgId}/models`: an organization's own model providers and
//! prices. Keys are write-only: sealed on the way in, never returned.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use axum::extract::State;
use cadre_llm::catalog::ProviderKind;
use cadre_store::OrgModelRow;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ModelIn {
    /// The name agents use (and the provider's model name).
    name: String,
    /// `openai` (any OpenAI-compatible server), `anthropic`, or `scripted`
    /// (replays `script`; for tests and offline demos).
    provider: String,
    base_url: Option<String>,
    /// Write-only. Omit to keep the stored key; send "" to remove it.
    api_key: Option<String>,
    /// USD per million input tokens (number or decimal string).
    #[schema(value_type = Option<String>)]
    input_price_per_m_tok: Option<Value>,
    #[schema(value_type = Option<String>)]
    output_price_per_m_tok: Option<Value>,
    context_window: Option<i64>,
    /// For `scripted`: the answers to replay, in order
    /// (`[{"text": "…", "toolCalls": [{"id","name","arguments"}], "usage": {…}}]`).
    #[schema(value_type = Option<Vec<Object>>)]
    script: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ModelsIn {
    models: Vec<ModelIn>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelOut {
    name: String,
    provider: String,
    base_url: Option<String>,
    /// Whether a key is stored (the key itself is never returned).
    has_api_key: bool,
    input_price_per_m_tok: Option<String>,
    output_price_per_m_tok: Option<String>,
    context_window: Option<i64>,
    /// The script of a `scripted` model.
    #[schema(value_type = Option<Vec<Object>>)]
    script: Option<Value>,
}

impl From<OrgModelRow> for ModelOut {
    fn from(r: OrgModelRow) -> Self {
        Self {
            name: r.name,
            provider: r.provider,
            base_url: r.base_url,
            has_api_key: r.api_key_sealed.is_some(),
            input_price_per_m_tok: r.input_price_per_mtok,
            output_price_per_m_tok: r.output_price_per_mtok,
            context_window: r.context_window,
            script: r.script.and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}

/// The organization's configured models (without keys).
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/models", tag = "models", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<ModelOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_models_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<ModelOut>>> {
    let tenant = caller.authorize(org_id).await?;
    Ok(ApiResponse::ok(
        state
            .store()
            .models()
            .org_models(tenant)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Replace the organization's model list. Models not configured here go to the instance's default providers.
#[utoipa::path(put, path = "/api/v1/orgs/{orgId}/models", tag = "models", params(("orgId" = Uuid, Path)), request_body = ModelsIn, responses((status = 200, body = Vec<ModelOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn put_models_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ModelsIn>,
) -> ApiResult<ApiResponse<Vec<ModelOut>>> {
    let tenant = caller.authorize(org_id).await?;
    if body.models.len() > 100 {
        return Err(ApiError::validation("models", "at most 100 models"));
    }
    let existing: HashMap<String, Option<String>> = state
        .store()
        .models()
        .org_models(tenant)
        .await?
        .into_iter()
        .map(|m| (m.name, m.api_key_sealed))
        .collect();
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(body.models.len());
    let now = cadre_types::time::now();
    for (i, m) in body.models.into_iter().enumerate() {
        let field = |name: &str| format!("models[{i}].{name}");
        let name = m.name.trim().to_owned();
        if !(1..=100).contains(&name.chars().count()) {
            return Err(ApiError::validation(
                field("name"),
                "name must be 1 to 100 characters",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(ApiError::validation(
                field("name"),
                format!("{name} is listed twice"),
            ));
        }
        let provider = ProviderKind::parse(&m.provider).ok_or_else(|| {
            ApiError::validation(
                field("provider"),
                "provider must be openai (any OpenAI-compatible server), anthropic or scripted",
            )
        })?;
        let script = match (provider, m.script) {
            (ProviderKind::Scripted, Some(script)) => {
                let text = script.to_string();
                cadre_llm::providers::scripted::Scripted::from_json(&text).map_err(|e| {
                    ApiError::validation(
                        field("script"),
                        format!("script must be a list of answers ({e})"),
                    )
                })?;
                Some(text)
            }
            (ProviderKind::Scripted, None) => {
                return Err(ApiError::validation(
                    field("script"),
                    "a scripted model needs a script",
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::validation(
                    field("script"),
                    "only scripted models take a script",
                ));
            }
            (_, None) => None,
        };
        if let Some(url) = &m.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ApiError::validation(
                field("baseUrl"),
                "baseUrl must be an http:// or https:// URL",
            ));
        }
        if m.context_window
            .is_some_and(|w| !(1..=10_000_000).contains(&w))
        {
            return Err(ApiError::validation(
                field("contextWindow"),
                "contextWindow must be 1 to 10000000 tokens",
            ));
        }
        let api_key_sealed = match m.api_key {
            Some(key) if key.is_empty() => None,
            Some(key) if key.len() > 4096 => {
                return Err(ApiError::validation(field("apiKey"), "apiKey is too long"));
            }
            Some(key) => Some(state.secrets().seal(tenant, key.as_bytes()).await?),
            None => existing.get(&name).cloned().flatten(),
        };
        rows.push(OrgModelRow {
            input_price_per_mtok: price(m.input_price_per_m_tok, &field("inputPricePerMTok"))?,
            output_price_per_mtok: price(m.output_price_per_m_tok, &field("outputPricePerMTok"))?,
            name,
            provider: provider.as_str().to_owned(),
            base_url: m.base_url.map(|u| u.trim_end_matches('/').to_owned()),
            api_key_sealed,
            context_window: m.context_window,
            script,
            updated_at: now,
        });
    }
    state
        .store()
        .models()
        .replace_org_models(tenant, &rows)
        .await?;
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    caller
        .audit(
            Some(org_id),
            None,
            "org.models.updated",
            None,
            serde_json::json!({ "models": names }),
        )
        .await;
    Ok(ApiResponse::ok(rows.into_iter().map(Into::into).collect()))
}

/// A price given as a number or a decimal string: 0 to 10,000 USD per million tokens.
fn price(value: Option<Value>, field: &str) -> ApiResult<Option<String>> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ApiError::validation(
                field.to_owned(),
                "a price is a number or a decimal string",
            ));
        }
    };
    let price = Decimal::from_str(text.trim()).map_err(|_| {
        ApiError::validation(field.to_owned(), "a price is a number or a decimal string")
    })?;
    if price.is_sign_negative() || price > Decimal::from(10_000) {
        return Err(ApiError::validation(
            field.to_owned(),
            "a price is 0 to 10000 USD per million tokens",
        ));
    }
    Ok(Some(price.normalize().to_string()))
}
