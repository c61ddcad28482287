//! Merging the layers: defaults → cadre.toml → CADRE_* environment → flags.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::UncasedStr;

use crate::{Config, ConfigError};

/// The documented defaults, embedded in the binary (`cadre config print-default`).
pub const DEFAULT_TOML: &str = include_str!("../cadre.default.toml");

/// Sections of the file; `CADRE_<SECTION>_<KEY>` maps to `<section>.<key>`.
const SECTIONS: [&str; 13] = [
    "server",
    "database",
    "workers",
    "egress",
    "engine",
    "telemetry",
    "log",
    "auth",
    "limits",
    "redis",
    "secrets",
    "smtp",
    "providers",
];
/// The providers' own variables, honoured as users expect (below `CADRE_*`).
const PROVIDER_VARS: [(&str, &str); 4] = [
    ("OPENAI_API_KEY", "providers.openai_api_key"),
    ("OPENAI_BASE_URL", "providers.openai_base_url"),
    ("ANTHROPIC_API_KEY", "providers.anthropic_api_key"),
    ("ANTHROPIC_BASE_URL", "providers.anthropic_base_url"),
];
/// Top-level keys; `CADRE_<KEY>` maps to `<key>`.
const TOP_LEVEL: [&str; 1] = ["data_dir"];

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub database_url: Option<String>,
}

/// Where configuration comes from. Production reads the process environment;
/// tests hand in their own variables so they never race on global state.
#[derive(Debug, Clone)]
pub enum Sources {
    /// The process environment and `./cadre.toml` (or `CADRE_CONFIG`).
    Process,
    /// Exactly these environment variables, and a config file only if named.
    Given(Vec<(String, String)>),
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(sources: Sources, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match (&overrides.config_file, &sources) {
            (Some(path), _) => Some(path.clone()),
            (None, Sources::Process) => Env::var("CADRE_CONFIG").map(PathBuf::from).or_else(|| {
                let local = PathBuf::from("cadre.toml");
                local.exists().then_some(local)
            }),
            (None, Sources::Given(vars)) => vars
                .iter()
                .find(|(k, _)| k == "CADRE_CONFIG")
                .map(|(_, v)| PathBuf::from(v)),
        };
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
        if let Some(path) = &file {
            require_file(path)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = match sources {
            Sources::Process => figment.merge(provider_env()).merge(cadre_env()),
            Sources::Given(vars) => {
                let figment = PROVIDER_VARS.iter().fold(figment, |f, (var, key)| {
                    match vars.iter().find(|(k, _)| k == var) {
                        Some((_, v)) => {
                            f.merge(figment::providers::Serialized::global(key, v.clone()))
                        }
                        None => f,
                    }
                });
                // Same mapping as the real environment, applied to the given pairs.
                let mapped: Vec<(String, String)> = vars
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let key = k.strip_prefix("CADRE_")?.to_ascii_lowercase();
                        Some((env_key(UncasedStr::new(&key))?.to_string(), v))
                    })
                    .collect();
                mapped.into_iter().fold(figment, |f, (k, v)| {
                    f.merge(figment::providers::Serialized::global(
                        &k,
                        parse_env_value(&v),
                    ))
                })
            }
        };
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        if let Some(bind) = &overrides.bind {
            figment = figment.merge(("server.bind", bind));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(("database.url", url));
        }
        let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }
}

fn require_file(path: &Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::one(
            "config file",
            format!("{:?}", path.display().to_string()),
            "an existing, readable TOML file (see `cadre config print-default`)",
        ))
    }
}

fn provider_env() -> Env {
    Env::raw()
        .only(&PROVIDER_VARS.map(|(var, _)| var))
        .map(|k| {
            PROVIDER_VARS
                .iter()
                .find(|(var, _)| k.as_str().eq_ignore_ascii_case(var))
                .map_or(k.into(), |(_, key)| (*key).into())
        })
}

fn cadre_env() -> Env {
    Env::prefixed("CADRE_").filter_map(|k| env_key(k).map(Into::into))
}

/// `server_bind` → `server.bind`; `data_dir` → `data_dir`; anything else
/// (for example `CADRE_TEST_DATABASE_URL`, `CADRE_CONFIG`) is not ours here.
fn env_key(k: &UncasedStr) -> Option<String> {
    let k = k.as_str().to_ascii_lowercase();
    if TOP_LEVEL.contains(&k.as_str()) {
        return Some(k);
    }
    SECTIONS.iter().find_map(|section| {
        let rest = k.strip_prefix(section)?.strip_prefix('_')?;
        (!rest.is_empty()).then(|| format!("{section}.{rest}"))
    })
}

/// Environment values are parsed the way figment parses them (numbers,
/// booleans, arrays), so tests see what production sees.
fn parse_env_value(v: &str) -> figment::value::Value {
    v.parse()
        .unwrap_or_else(|_| figment::value::Value::from(v.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn given(vars: &[(&str, &str)]) -> Sources {
        Sources::Given(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::load(given(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./cadre-data"));
        assert_eq!(
            c.database_kind(),
            crate::DatabaseKind::Sqlite(PathBuf::from("./cadre-data/cadre.db"))
        );
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile_dir();
        let file = dir.join("cadre.toml");
        std::fs::write(
            &file,
            "[server]\nbind = \"127.0.0.1:1111\"\nrequest_timeout_secs = 5\n",
        )
        .unwrap();
        let sources = given(&[
            ("CADRE_SERVER_BIND", "127.0.0.1:2222"),
            ("CADRE_CONFIG", file.to_str().unwrap()),
        ]);
        let c = Config::load(sources.clone(), &Overrides::default()).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:2222", "env beats the file");
        assert_eq!(
            c.server.request_timeout_secs, 5,
            "the file beats the defaults"
        );
        let flags = Overrides {
            bind: Some("127.0.0.1:3333".into()),
            ..Overrides::default()
        };
        let c = Config::load(sources, &flags).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:3333", "flags beat env");
    }

    #[test]
    fn database_url_from_env_selects_postgres() {
        let c = Config::load(
            given(&[("CADRE_DATABASE_URL", "postgres://u@h/db")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.database_kind(),
            crate::DatabaseKind::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(c.database.url.expose_secret(), "postgres://u@h/db");
    }

    #[test]
    fn every_section_is_reachable_from_the_environment() {
        let vars = [
            ("CADRE_SMTP_HOST", "127.0.0.1"),
            ("CADRE_SMTP_PORT", "2525"),
            ("CADRE_REDIS_URL", "redis://r:6379"),
            ("CADRE_LIMITS_ENABLED", "false"),
        ];
        let c = Config::load(given(&vars), &Overrides::default()).unwrap();
        assert_eq!((c.smtp.host.as_str(), c.smtp.port), ("127.0.0.1", 2525));
        assert_eq!(c.redis.url.expose_secret(), "redis://r:6379");
        assert!(!c.limits.enabled);
    }

    #[test]
    fn the_providers_own_variables_are_honoured_below_cadre_ones() {
        let c = Config::load(
            given(&[
                ("OPENAI_API_KEY", "sk-x"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.providers.openai_api_key.expose_secret(), "sk-x");
        assert_eq!(c.providers.openai_base_url, "http://127.0.0.1:9/v1");
        let c = Config::load(
            given(&[
                ("OPENAI_BASE_URL", "http://a/v1"),
                ("CADRE_PROVIDERS_OPENAI_BASE_URL", "http://b/v1"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.providers.openai_base_url, "http://b/v1");
    }

    #[test]
    fn unrelated_cadre_variables_are_ignored() {
        let c = Config::load(
            given(&[
                ("CADRE_TEST_DATABASE_URL", "postgres://x"),
                ("CADRE_REDISX", "1"),
            ]),
            &Overrides::default(),
        );
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn bad_bind_names_key_value_and_what_is_allowed() {
        let err = Config::load(
            given(&[("CADRE_SERVER_BIND", "not-an-address")]),
            &Overrides::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`server.bind`"), "{text}");
        assert!(text.contains("not-an-address"), "{text}");
        assert!(text.contains("127.0.0.1:8080"), "{text}");
    }

    #[test]
    fn wrong_type_names_the_key_and_its_source() {
        let err = Config::load(
            given(&[("CADRE_SERVER_REQUEST_TIMEOUT_SECS", "soon")]),
            &Overrides::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`server.request_timeout_secs`"), "{text}");
        assert!(text.contains("soon"), "{text}");
    }

    #[test]
    fn unknown_key_in_a_section_is_refused() {
        let err =
            Config::load(given(&[("CADRE_SERVER_BINDD", "x")]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn several_problems_are_reported_together_and_secrets_are_not_echoed() {
        let err = Config::load(
            given(&[
                ("CADRE_WORKERS_CONCURRENCY", "0"),
                ("CADRE_AUTH_JWT_SECRET", "short-secret-value"),
            ]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(!err.to_string().contains("short-secret-value"), "{err}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let flags = Overrides {
            config_file: Some("/nonexistent/cadre.toml".into()),
            ..Overrides::default()
        };
        let err = Config::load(given(&[]), &flags).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cadre.toml"), "{err}");
    }

    #[test]
    fn default_file_is_documented_for_every_key() {
        // Every key of the embedded defaults carries a comment above it.
        let mut previous = "";
        for line in DEFAULT_TOML.lines() {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') && !t.starts_with('[') {
                assert!(previous.starts_with('#'), "key without a comment: {t}");
            }
            previous = t;
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cadre-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
