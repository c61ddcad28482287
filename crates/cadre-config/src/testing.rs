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

/// The web UI's real-browser tests: where Chromium and its WebDriver are
/// (`CADRE_CHROMIUM`, `CADRE_CHROMEDRIVER`; otherwise found on the `PATH`),
/// whether they must run (`CADRE_REQUIRE_BROWSER`, set by CI, turns a skip
/// into a failure) and where screenshots go (`CADRE_SCREENSHOTS`).
pub mod browser {
    use std::path::PathBuf;

    pub fn chromium() -> Option<PathBuf> {
        super::non_empty("CADRE_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]))
    }

    pub fn chromedriver() -> Option<PathBuf> {
        super::non_empty("CADRE_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| on_path(&["chromedriver"]))
    }

    pub fn required() -> bool {
        super::non_empty("CADRE_REQUIRE_BROWSER").is_some()
    }

    pub fn screenshots() -> Option<PathBuf> {
        super::non_empty("CADRE_SCREENSHOTS").map(PathBuf::from)
    }

    /// The first of `names` on the `PATH`.
    fn on_path(names: &[&str]) -> Option<PathBuf> {
        let path = super::non_empty("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    }
}
