//! Configuration mistakes stop the process with exit code 2 and say why.

use crate::process::cadre;

#[test]
fn a_bad_config_value_exits_2_naming_the_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cadre(&tmp.path().join("data"))
        .env("CADRE_SERVER_BIND", "localhost-ish")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`server.bind`"), "{stderr}");
    assert!(stderr.contains("localhost-ish"), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:8080"),
        "names what is allowed: {stderr}"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "nothing is created before the configuration is valid"
    );
}

#[test]
fn a_bad_value_in_cadre_toml_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cadre.toml");
    std::fs::write(&file, "[workers]\nconcurrency = \"lots\"\n").unwrap();
    let out = cadre(&tmp.path().join("data"))
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`workers.concurrency`") && stderr.contains("lots"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cadre.toml"),
        "names where the value came from: {stderr}"
    );
}

#[test]
fn an_invalid_log_level_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cadre(&tmp.path().join("data"))
        .env("CADRE_LOG_LEVEL", "info,=[")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`log.level`"));
}

#[test]
fn print_default_is_the_configuration_the_binary_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cadre(&tmp.path().join("data"))
        .args(["config", "print-default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Written back as cadre.toml, it loads and validates.
    let file = tmp.path().join("cadre.toml");
    std::fs::write(&file, &text).unwrap();
    let check = cadre(&tmp.path().join("data"))
        .arg("--config")
        .arg(&file)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let effective = String::from_utf8(check.stdout).unwrap();
    assert!(effective.contains("127.0.0.1:8080"), "{effective}");
}

#[test]
fn config_check_never_prints_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cadre(&tmp.path().join("data"))
        .env(
            "CADRE_AUTH_JWT_SECRET",
            "a-very-secret-signing-value-of-40-chars!",
        )
        .env("CADRE_DATABASE_URL", "postgres://user:pw-in-url@db/cadre")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("a-very-secret") && !text.contains("pw-in-url"),
        "{text}"
    );
}

#[test]
fn version_flag_prints_the_version() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cadre(&tmp.path().join("data"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("cadre {}", env!("CARGO_PKG_VERSION"))
    );
}
