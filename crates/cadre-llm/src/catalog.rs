//! Which endpoints serve a model name: the organization's own models first,
//! then the instance's default providers (`claude-*` → Anthropic, anything
//! else → the OpenAI-compatible endpoint).

use std::sync::Arc;
use std::time::Duration;

use crate::Endpoint;
use crate::error::{ErrorKind, LlmError};
use crate::pricing::Prices;
use crate::providers::anthropic::Anthropic;
use crate::providers::openai::OpenAiCompatible;

/// The wire format of a configured model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    /// Replays a configured script; only ever chosen by name.
    Scripted,
}

impl ProviderKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "openai" | "openai-compatible" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "scripted" => Some(Self::Scripted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Scripted => "scripted",
        }
    }
}

/// A model an organization configured (its key already opened).
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub provider: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub prices: Option<Prices>,
    /// For [`ProviderKind::Scripted`]: the JSON list of answers.
    pub script: Option<String>,
}

/// The instance-wide providers and the HTTP client all calls share.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub openai_api_key: Option<String>,
    pub openai_base_url: String,
    pub anthropic_api_key: Option<String>,
    pub anthropic_base_url: String,
    pub client: reqwest::Client,
}

/// One HTTP client for every provider call: connect, read (first byte and
/// between bytes) and total timeouts.
pub fn http_client(
    connect: Duration,
    read: Duration,
    total: Duration,
) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .read_timeout(read)
        .timeout(total)
        .user_agent(concat!("cadre/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            LlmError::new(
                ErrorKind::BadRequest,
                "gateway",
                format!("cannot build the HTTP client: {e}"),
            )
        })
}

/// The endpoint chain for `model`.
pub fn resolve(
    model: &str,
    org_models: &[ModelSpec],
    defaults: &Defaults,
) -> Result<Vec<Endpoint>, LlmError> {
    if let Some(spec) = org_models.iter().find(|m| m.name == model) {
        let provider: Arc<dyn crate::Provider> = match spec.provider {
            ProviderKind::Scripted => {
                let script = spec.script.as_deref().unwrap_or("[]");
                Arc::new(
                    crate::providers::scripted::Scripted::from_json(script).map_err(|e| {
                        LlmError::new(
                            ErrorKind::BadRequest,
                            "scripted",
                            format!("the script of {model} is not a list of answers: {e}"),
                        )
                    })?,
                )
            }
            ProviderKind::OpenAi => {
                let base = spec
                    .base_url
                    .clone()
                    .unwrap_or_else(|| defaults.openai_base_url.clone());
                Arc::new(OpenAiCompatible::new(
                    format!("openai@{base}"),
                    base,
                    spec.api_key.clone(),
                    defaults.client.clone(),
                ))
            }
            ProviderKind::Anthropic => {
                let base = spec
                    .base_url
                    .clone()
                    .unwrap_or_else(|| defaults.anthropic_base_url.clone());
                let key = spec
                    .api_key
                    .clone()
                    .or_else(|| defaults.anthropic_api_key.clone())
                    .ok_or_else(|| missing_key(model))?;
                Arc::new(Anthropic::new(
                    format!("anthropic@{base}"),
                    base,
                    key,
                    defaults.client.clone(),
                ))
            }
        };
        return Ok(vec![Endpoint {
            provider,
            model: spec.name.clone(),
            prices: spec.prices,
        }]);
    }
    let provider: Arc<dyn crate::Provider> = if model.starts_with("claude-") {
        let key = defaults
            .anthropic_api_key
            .clone()
            .ok_or_else(|| missing_key(model))?;
        Arc::new(Anthropic::new(
            "anthropic",
            defaults.anthropic_base_url.clone(),
            key,
            defaults.client.clone(),
        ))
    } else {
        Arc::new(OpenAiCompatible::new(
            "openai",
            defaults.openai_base_url.clone(),
            defaults.openai_api_key.clone(),
            defaults.client.clone(),
        ))
    };
    Ok(vec![Endpoint {
        provider,
        model: model.to_owned(),
        prices: None,
    }])
}

fn missing_key(model: &str) -> LlmError {
    LlmError::new(
        ErrorKind::Auth,
        "gateway",
        format!(
            "no Anthropic key for {model}: set ANTHROPIC_API_KEY or configure the model in the organization's models"
        ),
    )
}

/// An agent's model policy (SPEC §5): a model name, or a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ModelPolicy {
    Named(String),
    Rule(RoutingRule),
}

/// Routing rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum RoutingRule {
    /// Alabobai's routing by task complexity.
    ByComplexity {
        simple: String,
        medium: String,
        complex: String,
    },
}

/// How demanding a piece of work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complexity {
    Simple,
    Medium,
    Complex,
}

impl ModelPolicy {
    /// The model name for work of this complexity.
    pub fn choose(&self, complexity: Complexity) -> &str {
        match self {
            ModelPolicy::Named(name) => name,
            ModelPolicy::Rule(RoutingRule::ByComplexity {
                simple,
                medium,
                complex,
            }) => match complexity {
                Complexity::Simple => simple,
                Complexity::Medium => medium,
                Complexity::Complex => complex,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            openai_api_key: Some("sk".into()),
            openai_base_url: "http://openai.test/v1".into(),
            anthropic_api_key: None,
            anthropic_base_url: "http://anthropic.test".into(),
            client: reqwest::Client::new(),
        }
    }

    #[test]
    fn org_models_come_first_then_the_defaults_by_name() {
        let org = vec![ModelSpec {
            name: "local-llama".into(),
            provider: ProviderKind::OpenAi,
            base_url: Some("http://10.0.0.5:8000/v1".into()),
            api_key: None,
            prices: None,
            script: None,
        }];
        let chain = resolve("local-llama", &org, &defaults()).unwrap();
        assert_eq!(chain[0].provider.name(), "openai@http://10.0.0.5:8000/v1");
        assert_eq!(
            resolve("gpt-4o-mini", &org, &defaults()).unwrap()[0]
                .provider
                .name(),
            "openai"
        );
        let err = resolve("claude-sonnet-4", &org, &defaults()).unwrap_err();
        assert!(err.message.contains("ANTHROPIC_API_KEY"), "{err}");
    }

    #[test]
    fn by_complexity_picks_the_model_for_the_work() {
        let policy: ModelPolicy =
            serde_json::from_str(r#"{"rule":"by_complexity","simple":"gpt-4o-mini","medium":"gpt-4.1","complex":"claude-opus-4"}"#).unwrap();
        assert_eq!(policy.choose(Complexity::Simple), "gpt-4o-mini");
        assert_eq!(policy.choose(Complexity::Complex), "claude-opus-4");
        let named: ModelPolicy = serde_json::from_str(r#""gpt-4o""#).unwrap();
        assert_eq!(named.choose(Complexity::Complex), "gpt-4o");
    }
}
