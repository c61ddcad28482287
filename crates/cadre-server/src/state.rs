//! What every handler can reach.

use std::sync::Arc;
use std::time::Instant;

use cadre_identity::accounts::Accounts;
use cadre_runtime::Supervisor;
use cadre_store::Store;
use uuid::Uuid;

use crate::auth::{KeyUsage, Limits};

/// Shared application state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("instance_id", &self.inner.parts.instance_id)
            .finish_non_exhaustive()
    }
}

/// Everything an [`AppState`] is built from.
pub struct AppParts {
    pub store: Store,
    pub supervisor: Supervisor,
    pub instance_id: Uuid,
    pub accounts: Accounts,
    pub limits: Limits,
    pub key_usage: KeyUsage,
    /// Base URL for links sent to people (password reset, invitations).
    pub public_url: String,
    /// Seals and opens organizations' secrets.
    pub secrets: cadre_identity::secrets::Secrets,
    /// Sends reset links and invitations, when SMTP is configured.
    pub mailer: Option<cadre_identity::mail::Mailer>,
    /// The model gateway and default providers.
    pub llm: crate::models::Llm,
    /// The event bus WebSocket and SSE clients listen to.
    pub realtime: cadre_realtime::Realtime,
}

impl AppParts {
    /// Builds every service from the configuration: the account service with
    /// its token issuer, and the rate limiter (in Redis when `redis.url` is
    /// set, in process otherwise).
    pub async fn from_config(
        config: &cadre_config::Config,
        store: Store,
        supervisor: Supervisor,
        instance_id: Uuid,
        jwt_secret: &[u8],
        master_key: &[u8; 32],
        realtime: cadre_realtime::Realtime,
    ) -> anyhow::Result<Self> {
        use std::time::Duration;

        use anyhow::Context as _;
        use cadre_config::ExposeSecret as _;
        use cadre_identity::accounts::{AccountPolicy, SignupMode};
        use cadre_identity::rate_limit::{MemoryLimiter, RateLimiter, RedisLimiter};
        use cadre_identity::tokens::TokenIssuer;

        let tokens = TokenIssuer::new(
            jwt_secret,
            Duration::from_secs(config.auth.access_token_ttl_secs),
        );
        let policy = AccountPolicy {
            signup: match config.auth.signup {
                cadre_config::SignupMode::Open => SignupMode::Open,
                cadre_config::SignupMode::Invite => SignupMode::Invite,
                cadre_config::SignupMode::Closed => SignupMode::Closed,
            },
            refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 86_400),
            reset_ttl: Duration::from_secs(3600),
        };
        let redis_url = config.redis.url.expose_secret();
        let limiter: Arc<dyn RateLimiter> = if redis_url.is_empty() {
            Arc::new(MemoryLimiter::default())
        } else {
            Arc::new(RedisLimiter::connect(redis_url).await.context(
                "cannot reach Redis (redis.url / CADRE_REDIS_URL); check that it is running",
            )?)
        };
        let previous = config.secrets.previous_master_key_bytes()?;
        let keyring = cadre_identity::secrets::Keyring::new(master_key, &previous)?;
        Ok(Self {
            llm: crate::models::llm_from_config(&config.providers)?,
            mailer: cadre_identity::mail::Mailer::from_config(&config.smtp)?,
            secrets: cadre_identity::secrets::Secrets::new(store.clone(), keyring),
            accounts: Accounts::new(store.clone(), tokens, policy),
            limits: Limits::new(limiter, config.limits.clone()),
            key_usage: KeyUsage::default(),
            public_url: config.auth.public_url.clone(),
            store,
            supervisor,
            instance_id,
            realtime,
        })
    }
}

struct Inner {
    parts: AppParts,
    started: Instant,
}

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                started: Instant::now(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.parts.store
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.inner.parts.supervisor
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.parts.accounts
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.parts.limits
    }

    pub fn key_usage(&self) -> &KeyUsage {
        &self.inner.parts.key_usage
    }

    pub fn secrets(&self) -> &cadre_identity::secrets::Secrets {
        &self.inner.parts.secrets
    }

    pub fn llm(&self) -> &crate::models::Llm {
        &self.inner.parts.llm
    }

    pub fn mailer(&self) -> Option<&cadre_identity::mail::Mailer> {
        self.inner.parts.mailer.as_ref()
    }

    pub fn realtime(&self) -> &cadre_realtime::Realtime {
        &self.inner.parts.realtime
    }

    pub fn public_url(&self) -> &str {
        &self.inner.parts.public_url
    }

    /// Seconds since this process started serving.
    pub fn uptime_seconds(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// An org's plan and that plan's daily model-token quota (`None`:
    /// unlimited), which its executions and its chat share (SPEC §7.4).
    pub(crate) async fn token_quota(
        &self,
        org_id: Uuid,
    ) -> cadre_store::Result<(cadre_types::Plan, Option<u64>)> {
        let plan = self
            .store()
            .orgs()
            .plan_of(org_id)
            .await?
            .unwrap_or_else(|| self.limits().default_plan());
        Ok((plan, self.limits().tokens_per_day(plan)))
    }

    /// This process's id in the instance registry.
    pub fn instance_id(&self) -> Uuid {
        self.inner.parts.instance_id
    }
}
