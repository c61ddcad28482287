//! The built-in catalogue of agent templates (`templates/agents.toml`,
//! embedded in the binary) and turning a template into an agent definition.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cadre_store::AgentSpec;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::spec::ToolPolicy;

/// TOML keys are snake_case; the API shows them camelCase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Template {
    pub id: String,
    pub name: String,
    pub source: String,
    pub category: String,
    pub kind: String,
    pub role: String,
    pub description: String,
    pub skills: Vec<String>,
    pub instructions: String,
    pub tools: Vec<String>,
    pub approval_policy: TemplatePolicy,
    pub limits: TemplateLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatePolicy {
    pub default: ToolPolicy,
    #[serde(default)]
    pub tools: BTreeMap<String, ToolPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct TemplateLimits {
    pub max_steps: u32,
    pub max_tokens: u64,
    pub max_cost_usd: String,
    pub timeout_seconds: u64,
}

#[derive(Deserialize)]
struct Catalogue {
    template: Vec<Template>,
}

static CATALOGUE: LazyLock<Vec<Template>> = LazyLock::new(|| {
    // Checked by a unit test, so a broken catalogue cannot ship; should one
    // anyway, the log says so rather than the list silently being empty.
    toml::from_str::<Catalogue>(include_str!("../templates/agents.toml"))
        .map(|c| c.template)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the built-in agent templates do not parse");
            Vec::new()
        })
});

/// Every built-in template, in catalogue order.
pub fn catalogue() -> &'static [Template] {
    &CATALOGUE
}

pub fn find(id: &str) -> Option<&'static Template> {
    catalogue().iter().find(|t| t.id == id)
}

impl Template {
    /// The agent definition this template creates, on `model`.
    pub fn spec(&self, model: &str) -> AgentSpec {
        AgentSpec {
            name: self.name.clone(),
            kind: self.kind.clone(),
            role: self.role.clone(),
            description: self.description.clone(),
            instructions: self.instructions.trim().to_owned(),
            model: model.to_owned(),
            tools: self.tools.clone(),
            approval_policy: json!({
                "default": self.approval_policy.default,
                "tools": self.approval_policy.tools,
            }),
            skills: self.skills.clone(),
            limits: serde_json::to_value(&self.limits).unwrap_or_default(),
            title: None,
            reports_to: None,
            template_id: Some(self.id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_makes_a_valid_agent() {
        let raw: Catalogue = toml::from_str(include_str!("../templates/agents.toml"))
            .expect("templates/agents.toml parses");
        assert_eq!(raw.template.len(), catalogue().len());
        assert!(
            catalogue().len() >= 20,
            "the catalogue covers the seeds' agents"
        );
        let mut ids = std::collections::HashSet::new();
        for t in catalogue() {
            assert!(ids.insert(&t.id), "duplicate template id {}", t.id);
            let spec = t.spec("gpt-4o-mini");
            crate::spec::tool_list(&spec.tools).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            crate::spec::approval_policy(&spec.approval_policy)
                .unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            crate::spec::limits(&spec.limits).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            assert!(crate::spec::KINDS.contains(&spec.kind.as_str()), "{}", t.id);
            assert!(spec.tools.iter().any(|t| t == "add_output"), "{}", t.id);
        }
        for source in ["alabobai", "omnidash", "companyos"] {
            assert!(catalogue().iter().any(|t| t.source == source), "{source}");
        }
    }
}
