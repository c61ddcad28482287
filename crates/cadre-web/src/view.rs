//! What every page shares: the frame around it ([`Chrome`]), the errors a
//! page can end in ([`PageError`]), and small formatting helpers.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::Web;
use crate::api::ApiFailure;
use crate::session::Visit;

/// An organization the signed-in user belongs to, with their role in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRef {
    pub id: Uuid,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub name: String,
}

/// The frame of every signed-in page: who is signed in, the org being
/// looked at and the others they can switch to, and what their role lets
/// the page offer.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub me: Me,
    pub orgs: Vec<OrgRef>,
    pub org: OrgRef,
    pub csrf: String,
    /// The navigation entry to mark current.
    pub section: &'static str,
    pub title: String,
    /// Real-time channels the page refreshes on (`data-live`).
    pub live: String,
    pub assets: &'static str,
}

impl Chrome {
    /// Loads the frame for a page in `org_id`: the user and their orgs. An
    /// org the user is not a member of is "not found", like in the API.
    pub async fn load(
        web: &Web,
        visit: &Visit,
        org_id: Uuid,
        section: &'static str,
        title: impl Into<String>,
    ) -> Result<Chrome, PageError> {
        let Some(_) = &visit.session else {
            return Err(PageError::SignIn);
        };
        let who = visit.caller();
        let (me, orgs) = futures_util::join!(
            web.api().get::<Me>(who, "/auth/me"),
            web.api().get::<Vec<OrgRef>>(who, "/orgs")
        );
        let (me, orgs) = (me?, orgs?);
        let org = orgs
            .iter()
            .find(|o| o.id == org_id)
            .cloned()
            .ok_or(PageError::NotFound)?;
        Ok(Chrome {
            me,
            orgs,
            org,
            csrf: visit.csrf.clone(),
            section,
            title: title.into(),
            live: format!("org:{org_id}"),
            assets: crate::assets::VERSION.as_str(),
        })
    }

    /// Adds channels the page listens to (besides the org's).
    pub fn listen(mut self, channel: impl std::fmt::Display) -> Self {
        self.live.push(' ');
        self.live.push_str(&channel.to_string());
        self
    }

    /// Owners, admins and members change work; viewers only look.
    pub fn can_edit(&self) -> bool {
        self.org.role != "viewer"
    }

    /// Owners and admins manage members, keys and models.
    pub fn can_manage(&self) -> bool {
        matches!(self.org.role.as_str(), "owner" | "admin")
    }

    /// The path of a page in the current org.
    pub fn at(&self, rest: &str) -> String {
        format!("/o/{}{rest}", self.org.id)
    }

    /// `current` when `section` is this page's.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// Something the API says belongs to an org.
pub trait InOrg {
    fn org_id(&self) -> Uuid;
}

/// Reads `path` (under `/api/v1`) and checks that it belongs to the page's
/// org: the API lets a member of two orgs read both, but org A's pages
/// never show org B's work, so it is "not found" here.
pub async fn read_in_org<T: DeserializeOwned + InOrg>(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    path: String,
) -> Result<T, PageError> {
    let item: T = web.api().get(visit.caller(), path).await?;
    if item.org_id() == org {
        Ok(item)
    } else {
        Err(PageError::NotFound)
    }
}

/// How a page can fail.
#[derive(Debug)]
pub enum PageError {
    /// No session (or it ended): go and sign in.
    SignIn,
    /// Unknown, or not this user's to see: the same answer either way.
    NotFound,
    /// The API refused; its message is shown.
    Api(ApiFailure),
    Render(askama::Error),
}

impl From<ApiFailure> for PageError {
    fn from(failure: ApiFailure) -> Self {
        if failure.is_unauthorized() {
            PageError::SignIn
        } else if failure.is_not_found() {
            PageError::NotFound
        } else {
            PageError::Api(failure)
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(err: askama::Error) -> Self {
        PageError::Render(err)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    assets: &'static str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::SignIn => return Redirect::to("/login").into_response(),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not yours to see.".to_owned(),
            ),
            PageError::Api(failure) => (
                failure.status,
                "Something went wrong",
                failure.message.clone(),
            ),
            PageError::Render(err) => {
                tracing::error!(error = %err, "rendering a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be drawn; the server log has the details.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            title,
            message: &message,
            assets: crate::assets::VERSION.as_str(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// A rendered page.
pub fn html(page: &impl Template) -> Result<Response, PageError> {
    Ok(Html(page.render()?).into_response())
}

/// A rendered page with a status other than 200 (a form shown again with
/// the API's refusal carries the API's status).
pub fn html_as(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    Ok((status, html(page)?).into_response())
}

/// "3 min ago", "in 4 min", "2 days ago" from an RFC 3339 time; the page's
/// script keeps it current (the exact time is in the element's `datetime`).
pub fn ago(rfc3339: &str) -> String {
    let Ok(at) = OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return rfc3339.to_owned();
    };
    let seconds = (OffsetDateTime::now_utc() - at).whole_seconds();
    let (n, future) = (seconds.unsigned_abs(), seconds < 0);
    let text = match n {
        0..=9 => return "just now".to_owned(),
        10..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} days", n / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A dollar amount from the API's decimal string, to cents (or to the
/// first significant digit below a cent, so tiny costs do not read as 0).
pub fn money(usd: &str) -> String {
    let Ok(value) = usd.parse::<f64>() else {
        return format!("${usd}");
    };
    if value == 0.0 {
        "$0.00".to_owned()
    } else if value.abs() < 0.01 {
        format!("${value:.4}")
    } else {
        format!("${value:.2}")
    }
}

/// A count with thousands separators.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Paging through a list the API answers a page at a time: which page
/// this is, how many there are, and the links to the neighbours (the
/// page's own query, with `page` changed).
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: u32,
    pub pages: u64,
    /// The path and query without `page`, ending in `?` or `&`.
    link: String,
}

impl Pager {
    /// `query` holds the page's other parameters, already encoded (`""`
    /// for none).
    pub fn new(path: &str, query: &str, page: u32, size: u32, total: u64) -> Pager {
        let link = if query.is_empty() {
            format!("{path}?")
        } else {
            format!("{path}?{query}&")
        };
        Pager {
            page: page.max(1),
            pages: total.div_ceil(u64::from(size.max(1))).max(1),
            link,
        }
    }

    pub fn previous(&self) -> Option<String> {
        (self.page > 1).then(|| format!("{}page={}", self.link, self.page - 1))
    }

    pub fn next(&self) -> Option<String> {
        (u64::from(self.page) < self.pages).then(|| format!("{}page={}", self.link, self.page + 1))
    }

    /// Only one page: nothing to draw.
    pub fn is_single(&self) -> bool {
        self.pages <= 1
    }
}

/// A page number from a query string: 1 when absent or nonsense.
pub fn first_page() -> u32 {
    1
}

/// Pretty JSON for showing arguments and results.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_small_costs_visible() {
        assert_eq!(money("0"), "$0.00");
        assert_eq!(money("0.000240"), "$0.0002");
        assert_eq!(money("12.5"), "$12.50");
        assert_eq!(money("oops"), "$oops");
    }

    #[test]
    fn a_pager_links_its_neighbours_keeping_the_query() {
        let p = Pager::new("/o/x/executions", "status=failed", 2, 50, 120);
        assert_eq!(p.pages, 3);
        assert_eq!(
            p.previous().as_deref(),
            Some("/o/x/executions?status=failed&page=1")
        );
        assert_eq!(
            p.next().as_deref(),
            Some("/o/x/executions?status=failed&page=3")
        );
        let last = Pager::new("/o/x/tasks", "", 3, 50, 120);
        assert_eq!(last.next(), None);
        assert_eq!(last.previous().as_deref(), Some("/o/x/tasks?page=2"));
        let empty = Pager::new("/o/x/tasks", "", 1, 50, 0);
        assert!(empty.is_single() && empty.previous().is_none() && empty.next().is_none());
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
    }

    #[test]
    fn times_read_as_distances() {
        let now = OffsetDateTime::now_utc();
        let at = |d: time::Duration| (now - d).format(&Rfc3339).unwrap();
        assert_eq!(ago(&at(time::Duration::seconds(2))), "just now");
        assert_eq!(ago(&at(time::Duration::minutes(5))), "5 min ago");
        assert_eq!(
            ago(&at(time::Duration::minutes(-5) - time::Duration::seconds(5))),
            "in 5 min"
        );
        assert_eq!(ago("not a time"), "not a time");
    }
}
