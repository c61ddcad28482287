//! `/auth`: sign-up, sign-in, refresh, sign-out, password reset, profile.

use axum::extract::State;
use axum::response::Response;
use cadre_identity::accounts::{MePatch, Session, SignupIn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::envelope::no_content;
use crate::error::ApiResult;
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SignupBody {
    email: String,
    password: String,
    name: String,
    /// Needed when sign-up is by invitation only.
    invitation_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoginBody {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RefreshBody {
    refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ForgotBody {
    email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ResetBody {
    token: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MePatchBody {
    name: Option<String>,
    email: Option<String>,
    settings: Option<serde_json::Value>,
    current_password: Option<String>,
    new_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserOut {
    id: uuid::Uuid,
    email: String,
    name: String,
    platform_role: String,
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    last_login_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<cadre_store::UserRow> for UserOut {
    fn from(u: cadre_store::UserRow) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            platform_role: u.platform_role,
            settings: u.settings.0,
            last_login_at: u.last_login_at,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionOut {
    user: UserOut,
    access_token: String,
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: u64,
}

impl From<Session> for SessionOut {
    fn from(s: Session) -> Self {
        Self {
            user: s.user.into(),
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AcceptedOut {
    /// Always true: the answer is the same whether or not the account exists.
    accepted: bool,
}

/// Create an account. The first account of an empty instance becomes `super_admin`.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupBody,
    responses((status = 201, body = SessionOut), (status = 409, description = "Email taken"), (status = 422, description = "Invalid field")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn signup_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SignupBody>,
) -> ApiResult<ApiResponse<SessionOut>> {
    let session = state
        .accounts()
        .signup(SignupIn {
            email: body.email,
            password: body.password,
            name: body.name,
            invitation_token: body.invitation_token,
        })
        .await?;
    caller
        .audit(
            None,
            Some(("user", session.user.id)),
            "auth.signup",
            Some(("user", session.user.id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(ApiResponse::created(session.into()))
}

/// Sign in with email and password. Five attempts per account and address in 15 minutes.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = SessionOut), (status = 401, description = "INVALID_CREDENTIALS"), (status = 429, description = "Too many attempts")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn login_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<ApiResponse<SessionOut>> {
    let ip = caller.ip().unwrap_or_default();
    state.limits().check_login(&body.email, &ip).await?;
    match state.accounts().login(&body.email, body.password).await {
        Ok(session) => {
            caller
                .audit(
                    None,
                    Some(("user", session.user.id)),
                    "auth.login",
                    None,
                    serde_json::json!({}),
                )
                .await;
            Ok(ApiResponse::ok(session.into()))
        }
        Err(e) => {
            caller
                .audit(
                    None,
                    None,
                    "auth.login_failed",
                    None,
                    serde_json::json!({ "email": body.email.trim().to_lowercase() }),
                )
                .await;
            Err(e.into())
        }
    }
}

/// Trade a refresh token for a new pair. A refresh token works once; reusing one revokes its whole session family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = SessionOut), (status = 401, description = "INVALID_TOKEN or TOKEN_EXPIRED")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn refresh_handler(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiResponse<SessionOut>> {
    Ok(ApiResponse::ok(
        state.accounts().refresh(&body.refresh_token).await?.into(),
    ))
}

/// Sign out: revokes the session family of the refresh token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshBody, responses((status = 204)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn logout_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Response> {
    state.accounts().logout(&body.refresh_token).await?;
    caller
        .audit(None, None, "auth.logout", None, serde_json::json!({}))
        .await;
    Ok(no_content())
}

/// Request a password-reset link (mailed when SMTP is configured, otherwise written to the server log). Same answer whether or not the account exists.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = ForgotBody,
    responses((status = 202, body = AcceptedOut), (status = 429, description = "Three requests per hour")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn forgot_password_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ForgotBody>,
) -> ApiResult<ApiResponse<AcceptedOut>> {
    state
        .limits()
        .check_forgot_password(&body.email, &caller.ip().unwrap_or_default())
        .await?;
    if let Some((user, token)) = state.accounts().forgot_password(&body.email).await? {
        let link = format!("{}/reset-password?token={token}", state.public_url());
        match state.mailer() {
            Some(mailer) => {
                let body = format!(
                    "Someone asked to reset the password of your Cadre account {}.\n\nSet a new one within an hour: {link}\n\nIf it was not you, ignore this message; your password stays as it is.\n",
                    user.email
                );
                // The client learns nothing either way; the operator learns of a failure.
                if let Err(e) = mailer
                    .send(&user.email, "Reset your Cadre password", body)
                    .await
                {
                    tracing::error!(error = %e, "could not mail a password-reset link");
                }
            }
            // SPEC: without a mailer the link is written to the server log for the operator.
            None => {
                tracing::info!(email = %user.email, reset_link = %link, "password reset requested; no mailer is configured, so the link is logged here for the operator")
            }
        }
        caller
            .audit(
                None,
                Some(("user", user.id)),
                "auth.password_reset_requested",
                None,
                serde_json::json!({}),
            )
            .await;
    }
    Ok(ApiResponse::accepted(AcceptedOut { accepted: true }))
}

/// Set a new password with a reset token (single use, one hour). Signs out every session.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetBody,
    responses((status = 204), (status = 401, description = "INVALID_TOKEN")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn reset_password_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<Response> {
    let user = state
        .accounts()
        .reset_password(&body.token, body.password)
        .await?;
    caller
        .audit(
            None,
            Some(("user", user.id)),
            "auth.password_reset",
            None,
            serde_json::json!({}),
        )
        .await;
    Ok(no_content())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = UserOut), (status = 401)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn me_handler(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiResponse<UserOut>> {
    let user_id = caller.user()?;
    Ok(ApiResponse::ok(state.accounts().me(user_id).await?.into()))
}

/// Change name, email, settings or password (`currentPassword` + `newPassword`; signs out other sessions).
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = MePatchBody, responses((status = 200, body = UserOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_me_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<MePatchBody>,
) -> ApiResult<ApiResponse<UserOut>> {
    let user_id = caller.user()?;
    let changed_password = body.new_password.is_some();
    let patch = MePatch {
        name: body.name,
        email: body.email,
        settings: body.settings,
        current_password: body.current_password,
        new_password: body.new_password,
    };
    let user = state.accounts().update_me(user_id, patch).await?;
    let action = if changed_password {
        "auth.password_changed"
    } else {
        "auth.profile_updated"
    };
    caller
        .audit(
            None,
            None,
            action,
            Some(("user", user_id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(ApiResponse::ok(user.into()))
}
