//! The org's models: provider, endpoint, prices, context window.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Outcome, Tab, refused};
use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{Chrome, PageError, html_as, money};

/// A configured model, as the API lists it and takes it back (the API key
/// is never shown; leaving it out keeps the stored one).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Model {
    name: String,
    provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    #[serde(default, skip_serializing)]
    has_api_key: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_price_per_m_tok: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_price_per_m_tok: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context_window: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<Value>,
}

impl Model {
    fn price(value: &Option<String>) -> String {
        value.as_deref().map_or("—".to_owned(), money)
    }
}

#[derive(Template)]
#[template(path = "settings_models.html")]
struct ModelsPage {
    chrome: Chrome,
    tab: Tab,
    models: Vec<Model>,
    providers: &'static [&'static str],
}

pub async fn models(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_models(&web, &visit, org, Ok(StatusCode::OK)).await
}

async fn render_models(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (chrome, tab, status) = Tab::load(web, visit, org, "models", outcome).await?;
    let models = web
        .api()
        .get::<Vec<Model>>(visit.caller(), format!("/orgs/{org}/models"))
        .await?;
    let page = ModelsPage {
        chrome,
        tab,
        models,
        providers: &["openai", "anthropic", "scripted"],
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct ModelForm {
    /// `save` (add, or replace the model of that name) or `remove`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    base_url: Option<String>,
    /// Blank keeps the stored key.
    #[serde(default, deserialize_with = "blank_is_none")]
    api_key: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    input_price_per_m_tok: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    output_price_per_m_tok: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    context_window: Option<String>,
    /// JSON, for a scripted model.
    #[serde(default, deserialize_with = "blank_is_none")]
    script: Option<String>,
}

/// One model added, replaced or removed: the page reads the list, changes
/// that entry and puts the whole list back (the API's `PUT` replaces it).
pub async fn change_model(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<ModelForm>,
) -> Result<Response, PageError> {
    let path = format!("/orgs/{org}/models");
    let current = web.api().get::<Vec<Model>>(visit.caller(), &path).await?;
    let body = match models_body(current, &form) {
        Ok(body) => body,
        Err(message) => {
            let outcome = Err((StatusCode::UNPROCESSABLE_ENTITY, message));
            return render_models(&web, &visit, org, outcome).await;
        }
    };
    match web
        .api()
        .send(visit.caller(), Method::PUT, path, Some(&body))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/models")).into_response()),
        Err(f) => render_models(&web, &visit, org, Err(refused(f)?)).await,
    }
}

fn models_body(current: Vec<Model>, form: &ModelForm) -> Result<Value, String> {
    let name = form.name.trim();
    let mut list: Vec<Value> = current
        .into_iter()
        .filter(|m| m.name != name)
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    if form.action == "save" {
        let mut model = json!({ "name": name, "provider": form.provider });
        if let Some(url) = &form.base_url {
            model["baseUrl"] = json!(url.trim());
        }
        if let Some(key) = &form.api_key {
            model["apiKey"] = json!(key);
        }
        if let Some(price) = &form.input_price_per_m_tok {
            model["inputPricePerMTok"] = json!(price.trim());
        }
        if let Some(price) = &form.output_price_per_m_tok {
            model["outputPricePerMTok"] = json!(price.trim());
        }
        if let Some(window) = &form.context_window {
            let window: i64 = window
                .trim()
                .parse()
                .map_err(|_| "The context window is a whole number of tokens.".to_owned())?;
            model["contextWindow"] = json!(window);
        }
        if let Some(script) = &form.script {
            let script: Value = serde_json::from_str(script)
                .map_err(|e| format!("The script is not valid JSON: {e}"))?;
            model["script"] = script;
        }
        list.push(model);
    } else if form.action != "remove" {
        return Err("Choose to save or remove a model.".to_owned());
    }
    Ok(json!({ "models": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(action: &str, name: &str) -> ModelForm {
        ModelForm {
            action: action.to_owned(),
            name: name.to_owned(),
            provider: "openai".to_owned(),
            base_url: Some("http://127.0.0.1:9/v1".to_owned()),
            api_key: None,
            input_price_per_m_tok: Some("0.5".to_owned()),
            output_price_per_m_tok: None,
            context_window: Some("8192".to_owned()),
            script: None,
        }
    }

    fn existing(name: &str) -> Model {
        Model {
            name: name.to_owned(),
            provider: "anthropic".to_owned(),
            base_url: None,
            has_api_key: true,
            input_price_per_m_tok: Some("3".to_owned()),
            output_price_per_m_tok: Some("15".to_owned()),
            context_window: None,
            script: None,
        }
    }

    #[test]
    fn saving_a_model_replaces_the_one_of_that_name_and_keeps_the_others() {
        let body = models_body(vec![existing("a"), existing("b")], &form("save", "b")).unwrap();
        let list = body["models"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "a");
        // The kept model goes back without an apiKey, so the stored one stays.
        assert!(list[0].get("apiKey").is_none());
        assert!(list[0].get("hasApiKey").is_none());
        assert_eq!(list[0]["outputPricePerMTok"], "15");
        assert_eq!(list[1]["name"], "b");
        assert_eq!(list[1]["provider"], "openai");
        assert_eq!(list[1]["contextWindow"], 8192);
    }

    #[test]
    fn removing_a_model_drops_only_it() {
        let body = models_body(vec![existing("a"), existing("b")], &form("remove", "a")).unwrap();
        let names: Vec<_> = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn a_bad_context_window_or_script_is_named() {
        let mut f = form("save", "c");
        f.context_window = Some("lots".to_owned());
        assert!(
            models_body(vec![], &f)
                .unwrap_err()
                .contains("context window")
        );
        let mut f = form("save", "c");
        f.script = Some("[oops".to_owned());
        assert!(
            models_body(vec![], &f)
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
