//! The environment variables that point tests at real services. Read here so
//! the rest of the code base never touches the environment.

/// `CADRE_TEST_DATABASE_URL`: a PostgreSQL server tests may create schemas in.
pub fn database_url() -> Option<String> {
    non_empty("CADRE_TEST_DATABASE_URL")
}

/// `CADRE_TEST_REDIS_URL`: a Redis server tests may use.
pub fn redis_url() -> Option<String> {
    non_empty("CADRE_TEST_REDIS_URL")
}

/// `CADRE_TEST_LLAMACPP_URL`: a llama.cpp OpenAI-compatible server (base
/// URL without `/v1`) serving a small model.
pub fn llamacpp_url() -> Option<String> {
    non_empty("CADRE_TEST_LLAMACPP_URL")
}

#[expect(
    clippy::disallowed_methods,
    reason = "the config crate is the one place that reads the environment"
)]
fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
