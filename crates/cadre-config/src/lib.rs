//! Cadre's configuration: the one place that reads the environment.
//!
//! Layers, lowest first: the documented defaults embedded in the binary
//! (`cadre.default.toml`), `cadre.toml`, `CADRE_*` environment variables, and
//! command-line flags. The merged result is checked once by
//! [`Config::validate`]; an error names the key, the value and what is allowed.

mod error;
mod load;
mod model;
pub mod testing;

pub use error::{ConfigError, Problem};
pub use load::{DEFAULT_TOML, Overrides, Sources};
pub use model::{
    AuthConfig, Config, DatabaseConfig, DatabaseKind, LimitsConfig, LogConfig, LogFormat,
    PlanLimits, ProvidersConfig, RedisConfig, SecretsConfig, ServerConfig, SignupMode, SmtpConfig,
    SmtpSecurity, TelemetryConfig, WorkersConfig,
};
pub use secrecy::{ExposeSecret, SecretString};
