//! `GET /orgs/{orgId}/usage`: what an org has spent, by day, against its
//! plan's daily token quota.

use axum::extract::State;
use cadre_engine::spec;
use serde::Serialize;
use time::{Duration, OffsetDateTime, Time};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::{ApiResponse, AppState};

/// Days the daily series covers, today included.
const DAYS: i64 = 14;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageOut {
    plan: String,
    /// The plan's daily token quota; `null` when unlimited.
    tokens_per_day: Option<u64>,
    /// Since midnight UTC, chat included.
    today: SpendOut,
    /// Since the first of the month (UTC), chat included.
    month: SpendOut,
    /// The last 14 UTC days of executions, oldest first, every day present.
    days: Vec<DayOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpendOut {
    tokens: i64,
    /// US dollars, a decimal string.
    cost_usd: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DayOut {
    /// `YYYY-MM-DD`.
    date: String,
    executions: i64,
    failed: i64,
    tokens: i64,
    /// US dollars, a decimal string.
    cost_usd: String,
}

/// The org's spend today and this month, its plan quota, and a daily
/// series of executions, failures, tokens and cost.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/usage", tag = "orgs", params(("orgId" = Uuid, Path)), responses((status = 200, body = UsageOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn usage_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<UsageOut>> {
    let tenant = caller.authorize(org_id).await?;
    let (plan, tokens_per_day) = state.token_quota(org_id).await?;
    let today = cadre_types::time::now().replace_time(Time::MIDNIGHT);
    let month_start = today.replace_day(1).unwrap_or(today);
    let first_day = today - Duration::days(DAYS - 1);
    let executions = state.store().executions();
    let (today_tokens, today_cost) = executions.spend_since(tenant, None, today).await?;
    let (month_tokens, month_cost) = executions.spend_since(tenant, None, month_start).await?;
    let recorded = executions.daily_usage(tenant, first_day).await?;
    let days = (0..DAYS)
        .map(|n| {
            let date = date_text(first_day + Duration::days(n));
            // A day without executions has no row.
            let d = recorded.iter().find(|d| d.day == date);
            DayOut {
                executions: d.map_or(0, |d| d.executions),
                failed: d.map_or(0, |d| d.failed),
                tokens: d.map_or(0, |d| d.tokens),
                cost_usd: spec::usd(d.map_or(0, |d| d.cost_nanos)),
                date,
            }
        })
        .collect();
    Ok(ApiResponse::ok(UsageOut {
        tokens_per_day,
        plan: plan.as_str().to_owned(),
        today: SpendOut {
            tokens: today_tokens,
            cost_usd: spec::usd(today_cost),
        },
        month: SpendOut {
            tokens: month_tokens,
            cost_usd: spec::usd(month_cost),
        },
        days,
    }))
}

fn date_text(day: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}
