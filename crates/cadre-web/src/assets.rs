//! Stylesheets, scripts and icons, compiled into the binary.
//!
//! Pages link them as `/assets/NAME?v=VERSION`; the version is a digest of
//! all their bytes, so a new build never meets a stale cached copy and an
//! asset can be cached for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/live.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/chat.js"),
    ),
    (
        "presence.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/presence.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../assets/icon.svg"),
    ),
];

/// A digest of every asset, for cache-busting links.
pub(crate) static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, bytes) in FILES {
        hash.update(name.as_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..6])
});

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

#[cfg(test)]
mod tests {
    //! The themes' colours meet WCAG 2.1 AA contrast (4.5:1 for text).

    use std::collections::HashMap;

    const CSS: &str = include_str!("../assets/app.css");

    /// The custom properties of the block opened by `selector`.
    fn theme(selector: &str) -> HashMap<String, String> {
        let start = CSS.find(selector).expect("the theme block") + selector.len();
        let block = &CSS[start..start + CSS[start..].find('}').unwrap()];
        block
            .split(';')
            .filter_map(|decl| decl.trim().split_once(':'))
            .filter(|(name, _)| name.trim().starts_with("--"))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect()
    }

    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        // `#fff` is `#ffffff`.
        let hex: String = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_owned()
        };
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// Text colours and the backgrounds they are drawn on.
    const PAIRS: &[(&str, &str)] = &[
        ("--text", "--bg"),
        ("--text", "--surface"),
        ("--muted", "--bg"),
        ("--muted", "--surface"),
        ("--accent", "--surface"),
        ("--accent", "--bg"),
        ("--accent-text", "--accent"),
        ("--ok", "--ok-bg"),
        ("--warn", "--warn-bg"),
        ("--bad", "--bad-bg"),
        ("--info", "--info-bg"),
        ("--bad", "--surface"),
    ];

    #[test]
    fn both_themes_have_readable_text() {
        for selector in [":root {", ":root[data-theme=\"dark\"] {"] {
            let vars = theme(selector);
            for (fg, bg) in PAIRS {
                let color = |name: &str| {
                    vars.get(name)
                        .unwrap_or_else(|| panic!("{selector} has no {name}: {vars:?}"))
                        .clone()
                };
                let ratio = contrast(&color(fg), &color(bg));
                assert!(
                    ratio >= 4.5,
                    "{selector} {fg} on {bg}: {ratio:.2}:1, below 4.5:1"
                );
            }
        }
    }

    #[test]
    fn the_system_dark_theme_is_the_chosen_dark_theme() {
        assert_eq!(
            theme(":root[data-theme=\"dark\"] {"),
            theme(":root:not([data-theme=\"light\"]) {")
        );
    }

    #[test]
    fn contrast_is_computed_as_wcag_defines_it() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
        assert_eq!(contrast("#fff", "#000"), contrast("#ffffff", "#000000"));
    }
}
