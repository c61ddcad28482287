//! Browser sessions: the API's own token pair, kept in HttpOnly cookies.
//!
//! Signing in through the UI calls `POST /auth/login` and stores the access
//! token and the refresh token as cookies script cannot read. Each page
//! visit checks the access token; when it has expired the refresh token is
//! traded for a new pair (`POST /auth/refresh`, which rotates it). Every
//! form and script write carries a CSRF token that must equal the visitor's
//! CSRF cookie (double submit), and a write whose `Origin` or
//! `Sec-Fetch-Site` says it came from another site is refused outright.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::Web;
use crate::api::Caller;

const ACCESS_COOKIE: &str = "cadre_at";
const REFRESH_COOKIE: &str = "cadre_rt";
const CSRF_COOKIE: &str = "cadre_csrf";
/// A refresh token presented again this soon after it was rotated gets the
/// same new pair instead of revoking the family: two tabs (or a page and
/// its live update) often refresh at once.
const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// A signed-in visitor.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub token: String,
}

/// Every UI request: the visitor's session if signed in, their CSRF token,
/// their address, and the cookies the response must set.
#[derive(Debug, Clone)]
pub struct Visit {
    pub session: Option<Session>,
    pub csrf: String,
    pub peer: Option<SocketAddr>,
    /// The refresh cookie as the browser sent it (sign-out revokes it).
    refresh: Option<String>,
    cookies: Arc<Mutex<Vec<String>>>,
}

impl Visit {
    /// The API caller for this visit.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            token: self.session.as_ref().map(|s| s.token.as_str()),
            peer: self.peer,
        }
    }

    /// Stores a fresh token pair (sign-in, sign-up, refresh).
    pub fn sign_in(&self, web: &Web, pair: &TokenPair) {
        let secure = web.secure_cookies();
        self.push_cookie(cookie(
            ACCESS_COOKIE,
            &pair.access_token,
            Some(pair.expires_in),
            secure,
        ));
        self.push_cookie(cookie(
            REFRESH_COOKIE,
            &pair.refresh_token,
            Some(web.refresh_ttl_secs()),
            secure,
        ));
    }

    /// Forgets the session in this browser.
    pub fn sign_out(&self, web: &Web) {
        let secure = web.secure_cookies();
        self.push_cookie(cookie(ACCESS_COOKIE, "", Some(0), secure));
        self.push_cookie(cookie(REFRESH_COOKIE, "", Some(0), secure));
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh.as_deref().filter(|t| !t.is_empty())
    }

    /// Whether a submitted CSRF token is this visitor's.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        !submitted.is_empty() && constant_time_eq(submitted.as_bytes(), self.csrf.as_bytes())
    }

    fn push_cookie(&self, value: String) {
        self.cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visit>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The API's token pair, as `/auth/login`, `/auth/signup` and
/// `/auth/refresh` answer it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// Recently rotated refresh tokens (by hash) and the pair they became.
#[derive(Debug, Default)]
pub(crate) struct Rotations(Mutex<HashMap<[u8; 32], (Instant, TokenPair)>>);

impl Rotations {
    fn recent(&self, refresh_token: &str) -> Option<TokenPair> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&digest(refresh_token))
            .filter(|(at, _)| at.elapsed() < REFRESH_GRACE)
            .map(|(_, pair)| pair.clone())
    }

    fn remember(&self, refresh_token: &str, pair: &TokenPair) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (at, _)| at.elapsed() < REFRESH_GRACE);
        map.insert(digest(refresh_token), (Instant::now(), pair.clone()));
    }
}

/// Middleware for every UI route: finds the session (refreshing it when its
/// access token has expired), refuses cross-site writes, and sets the
/// cookies handlers asked for.
pub(crate) async fn visit(State(web): State<Web>, mut req: Request, next: Next) -> Response {
    let is_write = !matches!(*req.method(), Method::GET | Method::HEAD);
    if is_write && is_cross_site(req.headers()) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let jar = Jar::parse(req.headers());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut visit = Visit {
        session: None,
        csrf: jar.get(CSRF_COOKIE).unwrap_or_default().to_owned(),
        peer,
        refresh: jar.get(REFRESH_COOKIE).map(str::to_owned),
        cookies: Arc::default(),
    };
    if visit.csrf.len() != 64 {
        visit.csrf = random_token();
        visit.push_cookie(cookie(CSRF_COOKIE, &visit.csrf, None, web.secure_cookies()));
    }
    visit.session = find_session(&web, &visit, &jar).await;
    req.extensions_mut().insert(visit.clone());
    let mut response = next.run(req).await;
    let cookies =
        std::mem::take(&mut *visit.cookies.lock().unwrap_or_else(PoisonError::into_inner));
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn find_session(web: &Web, visit: &Visit, jar: &Jar<'_>) -> Option<Session> {
    if let Some(token) = jar.get(ACCESS_COOKIE).filter(|t| !t.is_empty())
        && let Ok(claims) = web.app().accounts().tokens().verify(token)
    {
        return Some(Session {
            user_id: claims.sub,
            token: token.to_owned(),
        });
    }
    let refresh = jar.get(REFRESH_COOKIE).filter(|t| !t.is_empty())?;
    let pair = match web.rotations().recent(refresh) {
        Some(pair) => pair,
        None => {
            let answer = web
                .api()
                .send(
                    visit.caller(),
                    Method::POST,
                    "/auth/refresh",
                    Some(&json!({ "refreshToken": refresh })),
                )
                .await;
            match answer.map(serde_json::from_value::<TokenPair>) {
                Ok(Ok(pair)) => {
                    web.rotations().remember(refresh, &pair);
                    pair
                }
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "the refresh answer had an unexpected shape");
                    return None;
                }
                Err(failure) => {
                    tracing::debug!(%failure, "browser session refresh refused; signing out");
                    visit.sign_out(web);
                    return None;
                }
            }
        }
    };
    let claims = web
        .app()
        .accounts()
        .tokens()
        .verify(&pair.access_token)
        .ok()?;
    visit.sign_in(web, &pair);
    Some(Session {
        user_id: claims.sub,
        token: pair.access_token,
    })
}

/// A write from another site: the browser says so (`Sec-Fetch-Site`), or
/// its `Origin` names a host other than the one it is talking to.
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site == "cross-site"
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// The request's cookies.
struct Jar<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Jar<'a> {
    fn parse(headers: &'a HeaderMap) -> Self {
        let pairs = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .collect();
        Self(pairs)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut out = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        out.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        out.push_str("; Secure");
    }
    out
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness there is no safe token to hand out; every
    // process-wide use of randomness (keys, tokens) fails the same way.
    #[expect(
        clippy::expect_used,
        reason = "the OS random source failing is unrecoverable"
    )]
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn writes_from_other_sites_are_recognised() {
        assert!(!is_cross_site(&headers(&[("host", "cadre.local:8080")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "cadre.local:8080"),
            ("origin", "http://cadre.local:8080")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "cadre.local:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "a"),
            ("origin", "null")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "a"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let map = headers(&[("cookie", "a=1; cadre_at=tok.en; b=2")]);
        let jar = Jar::parse(&map);
        assert_eq!(jar.get("cadre_at"), Some("tok.en"));
        assert_eq!(jar.get("b"), Some("2"));
        assert_eq!(jar.get("c"), None);
    }

    #[test]
    fn session_cookies_cannot_be_read_by_script() {
        let text = cookie(ACCESS_COOKIE, "x", Some(60), true);
        assert!(
            text.contains("HttpOnly") && text.contains("Secure") && text.contains("Max-Age=60")
        );
        assert!(!cookie(CSRF_COOKIE, "y", None, false).contains("Secure"));
    }
}
