//! Settings: members and invitations, API keys (the secret shown once),
//! model providers and prices, budgets, and the audit log with its hash
//! chain verified. Everyone in the org can look at members and budgets;
//! the API decides who may see keys, models and the audit log (admins)
//! and who may change anything, and a refusal is shown on the page.

mod audit;
mod budgets;
mod general;
mod invitation;
mod keys;
mod members;
mod models;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Redirect;
use uuid::Uuid;

pub use audit::audit;
pub use budgets::{budgets, set_plan};
pub use general::{delete as delete_org, general, update as update_general};
pub use invitation::{accept_invitation, invitation_page};
pub use keys::{create_key, keys, revoke_key};
pub use members::{change_member, invite, members, revoke_invitation};
pub use models::{change_model, models};

use crate::Web;
use crate::api::ApiFailure;
use crate::session::Visit;
use crate::view::{Chrome, PageError};

/// The settings tabs, in order: (path segment, label).
const TABS: &[(&str, &str)] = &[
    ("general", "General"),
    ("members", "Members"),
    ("keys", "API keys"),
    ("models", "Models"),
    ("budgets", "Budgets"),
    ("audit", "Audit log"),
];

/// How a tab is drawn: with a status (200, or 201 after something was
/// made), or again with what was refused and the refusal's status.
type Outcome = Result<StatusCode, (StatusCode, String)>;

/// Which settings tab a page is, and what went wrong on it.
struct Tab {
    name: &'static str,
    /// A refusal or a problem with the form, shown in place.
    error: Option<String>,
}

impl Tab {
    /// The page's frame, its tab, and the status to answer with.
    async fn load(
        web: &Web,
        visit: &Visit,
        org: Uuid,
        name: &'static str,
        outcome: Outcome,
    ) -> Result<(Chrome, Tab, StatusCode), PageError> {
        let label = TABS.iter().find(|(t, _)| *t == name).map_or("", |(_, l)| l);
        let chrome =
            Chrome::load(web, visit, org, "settings", format!("Settings · {label}")).await?;
        let (status, error) = match outcome {
            Ok(status) => (status, None),
            Err((status, message)) => (status, Some(message)),
        };
        Ok((chrome, Tab { name, error }, status))
    }

    fn all(&self) -> &'static [(&'static str, &'static str)] {
        TABS
    }

    fn current(&self, tab: &str) -> &'static str {
        if self.name == tab { "page" } else { "false" }
    }
}

/// The outcome of a settings form: back to the tab, or the tab again with
/// the API's refusal (and its status).
fn refused(failure: ApiFailure) -> Result<(StatusCode, String), PageError> {
    if failure.shown_on_page() {
        Ok((failure.status, failure.message))
    } else {
        Err(failure.into())
    }
}

pub async fn index(Path(org): Path<Uuid>) -> Redirect {
    Redirect::to(&format!("/o/{org}/settings/members"))
}

/// A query value, percent-encoded.
fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Invitation tokens are URL-safe; anything else is not one of ours.
fn is_token(text: &str) -> bool {
    (1..=200).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}
