//! Applying rate limits (SPEC §7.4) and remembering API-key use.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cadre_config::LimitsConfig;
use cadre_identity::rate_limit::{Decision, Quota, RateLimiter};
use cadre_types::Plan;
use uuid::Uuid;

use super::Category;
use crate::error::{ApiError, ErrorCode};

/// The instance's limits and the counter store they are counted in.
#[derive(Clone)]
pub struct Limits {
    limiter: Arc<dyn RateLimiter>,
    config: LimitsConfig,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("backend", &self.limiter.backend())
            .field("enabled", &self.config.enabled)
            .finish()
    }
}

impl Limits {
    pub fn new(limiter: Arc<dyn RateLimiter>, config: LimitsConfig) -> Self {
        Self { limiter, config }
    }

    pub fn backend(&self) -> &'static str {
        self.limiter.backend()
    }

    pub fn default_plan(&self) -> Plan {
        self.config.default_plan
    }

    /// The model tokens a day `plan` allows its org (executions and chat
    /// together); `None` when unlimited or limits are off.
    pub fn tokens_per_day(&self, plan: Plan) -> Option<u64> {
        let tokens = self.config.for_plan(plan).tokens_per_day;
        (self.config.enabled && tokens > 0).then_some(tokens)
    }

    /// Counts a request of `who` under its plan's limit for `category`; an API
    /// key's own per-minute limit replaces the plan's API limit. `None` when
    /// the category is not limited or limits are off.
    pub async fn check(
        &self,
        who: &str,
        plan: Plan,
        category: Category,
        key_limit: Option<i64>,
    ) -> Result<Option<Decision>, ApiError> {
        if !self.config.enabled {
            return Ok(None);
        }
        let plan_limits = self.config.for_plan(plan);
        let quota = match category {
            Category::Api => Quota::per_minute(
                key_limit
                    .and_then(|l| u32::try_from(l).ok())
                    .unwrap_or(plan_limits.api_per_minute),
            ),
            Category::Chat => Quota::per_minute(plan_limits.chat_per_minute),
            Category::Executions => Quota::per_hour(plan_limits.executions_per_hour),
            Category::Uploads => Quota::per_hour(plan_limits.uploads_per_hour),
            Category::Unlimited => return Ok(None),
        };
        let key = format!("{category:?}:{who}").to_lowercase();
        refuse_over(self.limiter.hit(&key, quota).await).map(Some)
    }

    /// Sign-in attempts per account and address (always on).
    pub async fn check_login(&self, email: &str, ip: &str) -> Result<Decision, ApiError> {
        let quota = Quota {
            limit: self.config.login_per_15_minutes,
            window: Duration::from_secs(15 * 60),
        };
        refuse_over(
            self.limiter
                .hit(&format!("login:{}:{ip}", email.to_lowercase()), quota)
                .await,
        )
    }

    /// Password-reset requests per account and address (always on).
    pub async fn check_forgot_password(&self, email: &str, ip: &str) -> Result<Decision, ApiError> {
        let quota = Quota::per_hour(self.config.forgot_password_per_hour);
        refuse_over(
            self.limiter
                .hit(&format!("forgot:{}:{ip}", email.to_lowercase()), quota)
                .await,
        )
    }
}

fn refuse_over(decision: Decision) -> Result<Decision, ApiError> {
    if decision.allowed {
        Ok(decision)
    } else {
        let retry = decision.reset_after.as_secs().max(1);
        let mut err = ApiError::new(
            ErrorCode::RateLimitExceeded,
            format!(
                "rate limit of {} requests reached; retry in {retry} seconds",
                decision.limit
            ),
        );
        err.rate = Some(decision);
        Err(err)
    }
}

/// API keys used since the last flush: `last_used_at` is written in batches,
/// not on every request.
#[derive(Debug, Default, Clone)]
pub struct KeyUsage {
    used: Arc<Mutex<HashSet<Uuid>>>,
}

impl KeyUsage {
    pub fn record(&self, id: Uuid) {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
    }

    /// The keys used since the last call.
    pub fn take(&self) -> Vec<Uuid> {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect()
    }
}
