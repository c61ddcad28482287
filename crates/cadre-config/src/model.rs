//! The configuration tree. Field docs double as the reference; the embedded
//! `cadre.default.toml` carries the same text for operators.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ConfigError;

/// Everything `cadre` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, files, generated secrets and keys live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub workers: WorkersConfig,
    pub egress: EgressConfig,
    pub engine: EngineConfig,
    pub telemetry: TelemetryConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub redis: RedisConfig,
    pub secrets: SecretsConfig,
    pub smtp: SmtpConfig,
    pub providers: ProvidersConfig,
}

/// Instance-wide model providers (SPEC §5, §10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    pub openai_api_key: SecretString,
    pub openai_base_url: String,
    pub anthropic_api_key: SecretString,
    pub anthropic_base_url: String,
    pub connect_timeout_secs: u64,
    pub read_timeout_secs: u64,
    pub total_timeout_secs: u64,
}

/// Outgoing mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Empty: no mailer.
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: String,
    pub password: SecretString,
    pub from: String,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, `host:port`.
    pub bind: String,
    /// Upper bound on one ordinary API request.
    pub request_timeout_secs: u64,
    /// Largest accepted JSON body.
    pub body_limit_bytes: usize,
    /// Origins allowed cross-origin; empty closes CORS.
    pub cors_origins: Vec<String>,
    /// How long shutdown waits for in-flight work.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty for embedded SQLite; `postgres://…` for PostgreSQL.
    pub url: SecretString,
    pub max_connections: u32,
    pub sqlite_busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Whether `serve` runs workers in-process.
    pub enabled: bool,
    /// Jobs worked on at once per process.
    pub concurrency: u32,
    /// Days finished jobs are kept.
    pub retention_days: u32,
    /// Job lease length.
    pub lease_secs: u64,
    /// Running jobs allowed per organization and queue (0: no limit).
    pub max_running_per_org: u32,
}

/// Where traces go (OpenTelemetry, OTLP over HTTP with protobuf).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's base URL (`http://collector:4318`); spans go to
    /// `/v1/traces` under it. Empty: no traces are exported.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

/// How executions run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Seconds a pending approval waits for a decision before it expires
    /// (and the agent is told).
    pub approval_ttl_secs: u64,
    /// Ask models for streamed answers.
    pub stream_model_calls: bool,
}

/// Where agents' `http_request` may go beyond the public internet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// `host` or `host:port` entries that skip the private-address check
    /// (a TOML list, or `CADRE_EGRESS_ALLOW=host[:port],…`).
    #[serde(deserialize_with = "list_or_csv")]
    pub allow: Vec<String>,
}

fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(items) => items,
        Either::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// An `EnvFilter` directive.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Access-token signing secret; empty means generated in the data dir.
    pub jwt_secret: SecretString,
    /// Who may create an account.
    pub signup: SignupMode,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    /// Base URL used in links sent to people.
    pub public_url: String,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    Open,
    Invite,
    Closed,
}

/// Request limits (SPEC §7.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub enabled: bool,
    pub default_plan: cadre_types::Plan,
    pub login_per_15_minutes: u32,
    pub forgot_password_per_hour: u32,
    pub free: PlanLimits,
    pub pro: PlanLimits,
    pub enterprise: PlanLimits,
}

/// The limits of one plan.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    pub chat_per_minute: u32,
    pub api_per_minute: u32,
    pub executions_per_hour: u32,
    pub uploads_per_hour: u32,
    /// Model tokens (in + out) the org's executions may use per UTC day;
    /// 0 means no quota.
    pub tokens_per_day: u64,
}

impl LimitsConfig {
    pub fn for_plan(&self, plan: cadre_types::Plan) -> PlanLimits {
        match plan {
            cadre_types::Plan::Free => self.free,
            cadre_types::Plan::Pro => self.pro,
            cadre_types::Plan::Enterprise => self.enterprise,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Empty: no Redis.
    pub url: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Base64 of 32 bytes; empty means generated in the data dir.
    pub master_key: SecretString,
    /// Earlier master keys that may still have wrapped data keys.
    pub previous_master_keys: Vec<SecretString>,
}

/// Which database the configuration selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite at this path.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL (which may hold a password: never log it).
    Postgres(String),
}

impl Config {
    /// Checks every value that parsing alone cannot; all problems are reported
    /// together so an operator fixes them in one pass.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, err: ConfigError| {
            if !ok {
                problems.extend(err.problems);
            }
        };
        check(
            self.server.bind.parse::<SocketAddr>().is_ok(),
            ConfigError::one(
                "server.bind",
                format!("{:?}", self.server.bind),
                "an address such as 127.0.0.1:8080 or [::]:8080",
            ),
        );
        check(
            (1..=3600).contains(&self.server.request_timeout_secs),
            ConfigError::one(
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
                "1 to 3600 seconds",
            ),
        );
        check(
            (1024..=(1 << 30)).contains(&self.server.body_limit_bytes),
            ConfigError::one(
                "server.body_limit_bytes",
                self.server.body_limit_bytes,
                "1024 to 1073741824 bytes",
            ),
        );
        check(
            (1..=300).contains(&self.server.shutdown_timeout_secs),
            ConfigError::one(
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
                "1 to 300 seconds",
            ),
        );
        for origin in &self.server.cors_origins {
            check(
                (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/'),
                ConfigError::one(
                    "server.cors_origins",
                    format!("{origin:?}"),
                    "origins such as \"https://cadre.example.com\" (scheme and host, no trailing slash)",
                ),
            );
        }
        let url = self.database.url.expose_secret();
        check(
            url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://"),
            ConfigError::one(
                "database.url",
                "[REDACTED]",
                "empty (embedded SQLite) or a postgres:// URL",
            ),
        );
        check(
            (1..=1000).contains(&self.database.max_connections),
            ConfigError::one(
                "database.max_connections",
                self.database.max_connections,
                "1 to 1000",
            ),
        );
        check(
            self.database.sqlite_busy_timeout_ms <= 600_000,
            ConfigError::one(
                "database.sqlite_busy_timeout_ms",
                self.database.sqlite_busy_timeout_ms,
                "0 to 600000 milliseconds",
            ),
        );
        check(
            (1..=1024).contains(&self.workers.concurrency),
            ConfigError::one("workers.concurrency", self.workers.concurrency, "1 to 1024"),
        );
        check(
            (2..=3600).contains(&self.workers.lease_secs),
            ConfigError::one(
                "workers.lease_secs",
                self.workers.lease_secs,
                "2 to 3600 seconds",
            ),
        );
        check(
            self.telemetry.otlp_endpoint.is_empty()
                || self.telemetry.otlp_endpoint.starts_with("http://")
                || self.telemetry.otlp_endpoint.starts_with("https://"),
            ConfigError::one(
                "telemetry.otlp_endpoint",
                format!("{:?}", self.telemetry.otlp_endpoint),
                "empty (no export) or an http(s) URL such as \"http://127.0.0.1:4318\"",
            ),
        );
        check(
            (1..=604_800).contains(&self.engine.approval_ttl_secs),
            ConfigError::one(
                "engine.approval_ttl_secs",
                self.engine.approval_ttl_secs,
                "1 to 604800 seconds (a week)",
            ),
        );
        check(
            (1..=3650).contains(&self.workers.retention_days),
            ConfigError::one(
                "workers.retention_days",
                self.workers.retention_days,
                "1 to 3650 days",
            ),
        );
        check(
            !self.log.level.trim().is_empty(),
            ConfigError::one(
                "log.level",
                "\"\"",
                "a level (error, warn, info, debug, trace) or a filter such as \"info,cadre_store=debug\"",
            ),
        );
        check(
            (60..=86_400).contains(&self.auth.access_token_ttl_secs),
            ConfigError::one(
                "auth.access_token_ttl_secs",
                self.auth.access_token_ttl_secs,
                "60 to 86400 seconds",
            ),
        );
        check(
            (1..=365).contains(&self.auth.refresh_token_ttl_days),
            ConfigError::one(
                "auth.refresh_token_ttl_days",
                self.auth.refresh_token_ttl_days,
                "1 to 365 days",
            ),
        );
        check(
            (self.auth.public_url.starts_with("http://")
                || self.auth.public_url.starts_with("https://"))
                && !self.auth.public_url.ends_with('/'),
            ConfigError::one(
                "auth.public_url",
                format!("{:?}", self.auth.public_url),
                "a URL such as https://cadre.example.com (no trailing slash)",
            ),
        );
        check(
            (1..=1000).contains(&self.limits.login_per_15_minutes),
            ConfigError::one(
                "limits.login_per_15_minutes",
                self.limits.login_per_15_minutes,
                "1 to 1000",
            ),
        );
        check(
            (1..=1000).contains(&self.limits.forgot_password_per_hour),
            ConfigError::one(
                "limits.forgot_password_per_hour",
                self.limits.forgot_password_per_hour,
                "1 to 1000",
            ),
        );
        for (name, plan) in [
            ("free", self.limits.free),
            ("pro", self.limits.pro),
            ("enterprise", self.limits.enterprise),
        ] {
            for (key, value) in [
                ("chat_per_minute", plan.chat_per_minute),
                ("api_per_minute", plan.api_per_minute),
                ("executions_per_hour", plan.executions_per_hour),
                ("uploads_per_hour", plan.uploads_per_hour),
            ] {
                check(
                    value >= 1,
                    ConfigError::one(&format!("limits.{name}.{key}"), value, "at least 1"),
                );
            }
        }
        check(
            self.smtp.host.is_empty() || (self.smtp.from.contains('@') && self.smtp.port > 0),
            ConfigError::one(
                "smtp.from",
                format!("{:?}", self.smtp.from),
                "a sender such as \"Cadre <cadre@example.com>\"",
            ),
        );
        for (key, url) in [
            ("providers.openai_base_url", &self.providers.openai_base_url),
            (
                "providers.anthropic_base_url",
                &self.providers.anthropic_base_url,
            ),
        ] {
            check(
                url.starts_with("http://") || url.starts_with("https://"),
                ConfigError::one(key, format!("{url:?}"), "an http:// or https:// URL"),
            );
        }
        for (key, value) in [
            (
                "providers.connect_timeout_secs",
                self.providers.connect_timeout_secs,
            ),
            (
                "providers.read_timeout_secs",
                self.providers.read_timeout_secs,
            ),
            (
                "providers.total_timeout_secs",
                self.providers.total_timeout_secs,
            ),
        ] {
            check(
                (1..=3600).contains(&value),
                ConfigError::one(key, value, "1 to 3600 seconds"),
            );
        }
        let redis = self.redis.url.expose_secret();
        check(
            redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://"),
            ConfigError::one("redis.url", "[REDACTED]", "empty or a redis:// URL"),
        );
        let jwt = self.auth.jwt_secret.expose_secret();
        check(
            jwt.is_empty() || jwt.len() >= 32,
            ConfigError::one(
                "auth.jwt_secret",
                "[REDACTED]",
                "empty (generated) or at least 32 characters",
            ),
        );
        if let Err(e) = self.secrets.master_key_bytes() {
            problems.extend(e.problems);
        }
        if let Err(e) = self.secrets.previous_master_key_bytes() {
            problems.extend(e.problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The validated listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            ConfigError::one(
                "server.bind",
                format!("{:?}", self.server.bind),
                "an address such as 127.0.0.1:8080",
            )
        })
    }

    /// The database this configuration selects.
    pub fn database_kind(&self) -> DatabaseKind {
        let url = self.database.url.expose_secret();
        if url.is_empty() {
            DatabaseKind::Sqlite(self.data_dir.join("cadre.db"))
        } else {
            DatabaseKind::Postgres(url.to_owned())
        }
    }
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

impl SecretsConfig {
    /// The earlier master keys, decoded.
    pub fn previous_master_key_bytes(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        self.previous_master_keys
            .iter()
            .map(|k| {
                decode_key(k.expose_secret()).ok_or_else(|| {
                    ConfigError::one(
                        "secrets.previous_master_keys",
                        "[REDACTED]",
                        "a list of 32-byte keys in base64 (44 characters each)",
                    )
                })
            })
            .collect()
    }

    /// The configured master key, if one is set.
    pub fn master_key_bytes(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let text = self.master_key.expose_secret().trim();
        if text.is_empty() {
            return Ok(None);
        }
        decode_key(text).map(Some).ok_or_else(|| {
            ConfigError::one(
                "secrets.master_key",
                "[REDACTED]",
                "empty (generated) or 32 bytes in base64 (44 characters)",
            )
        })
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}
