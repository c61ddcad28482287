//! The audit log, filtered and paged, its hash chain verified.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Tab, query_value};
use crate::Web;
use crate::session::Visit;
use crate::view::{Chrome, PageError, Pager, ago, first_page, html_as, pretty};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEntry {
    seq: i64,
    at: String,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    ip: Option<String>,
    details: Value,
    hash: String,
}

impl AuditEntry {
    fn when(&self) -> String {
        ago(&self.at)
    }

    fn details_text(&self) -> String {
        if self.details.as_object().is_some_and(|o| o.is_empty()) {
            String::new()
        } else {
            pretty(&self.details)
        }
    }

    fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    valid: bool,
    entries: u64,
    first_bad_seq: Option<i64>,
}

#[derive(Template)]
#[template(path = "settings_audit.html")]
struct AuditPage {
    chrome: Chrome,
    tab: Tab,
    entries: Vec<AuditEntry>,
    verification: Verification,
    pager: Pager,
    action: String,
}

#[derive(Deserialize)]
pub struct AuditFilter {
    #[serde(default = "first_page")]
    page: u32,
    #[serde(default)]
    action: String,
}

const AUDIT_PAGE: u32 = 50;

pub async fn audit(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, PageError> {
    let page = filter.page.max(1);
    let action = filter.action.trim().to_owned();
    let query = if action.is_empty() {
        String::new()
    } else {
        format!("action={}", query_value(&action))
    };
    let path = format!("/orgs/{org}/audit-log?page={page}&pageSize={AUDIT_PAGE}&{query}");
    let pager = |total| {
        Pager::new(
            &format!("/o/{org}/settings/audit"),
            &query,
            page,
            AUDIT_PAGE,
            total,
        )
    };
    let (entries, verification) = futures_util::join!(
        web.api().list::<AuditEntry>(visit.caller(), path),
        web.api()
            .get::<Verification>(visit.caller(), format!("/orgs/{org}/audit-log/verify")),
    );
    let (entries, verification) = match (entries, verification) {
        (Ok(e), Ok(v)) => (e, v),
        // Members and viewers are refused the log: say so on the tab.
        (Err(f), _) | (_, Err(f)) if f.status == StatusCode::FORBIDDEN => {
            let refused = Err((f.status, f.message));
            let (chrome, tab, status) = Tab::load(&web, &visit, org, "audit", refused).await?;
            let page = AuditPage {
                chrome,
                tab,
                entries: Vec::new(),
                verification: Verification {
                    valid: true,
                    entries: 0,
                    first_bad_seq: None,
                },
                pager: pager(0),
                action,
            };
            return html_as(status, &page);
        }
        (Err(f), _) | (_, Err(f)) => return Err(f.into()),
    };
    let (chrome, tab, status) = Tab::load(&web, &visit, org, "audit", Ok(StatusCode::OK)).await?;
    let page = AuditPage {
        chrome,
        tab,
        pager: pager(entries.total),
        entries: entries.items,
        verification,
        action,
    };
    html_as(status, &page)
}
