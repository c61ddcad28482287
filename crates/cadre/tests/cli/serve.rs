//! `cadre serve` and `cadre migrate` as processes.

use cadre_testkit::TestDb;

use crate::process::{Running, cadre};

#[test]
fn serve_answers_health_and_sigterm_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Running::serve(cadre(&data));

    let (status, body) = server.get("/api/v1/health");
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    let (status, body) = server.get("/api/v1/health/detailed");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["database"]["backend"], "sqlite");

    let (exit, lines) = server.terminate();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "shutting down" && l["signal"] == "SIGTERM"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "stopped"),
        "{lines:#?}"
    );
}

#[test]
fn first_start_creates_the_data_dir_and_a_restart_reuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let first = Running::serve(cadre(&data));
    let started = first.startup_line("cadre started").clone();
    assert!(
        started["jwt_signing_from"]
            .as_str()
            .unwrap()
            .ends_with("(generated now)"),
        "{started}"
    );
    assert_eq!(started["data_dir"], data.to_str().unwrap());
    assert!(
        started["database"].as_str().unwrap().ends_with("cadre.db"),
        "{started}"
    );
    assert!(first.terminate().0.success());
    let secret = std::fs::read_to_string(data.join("jwt-secret")).unwrap();
    let key = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(data.join("cadre.db").exists());

    let second = Running::serve(cadre(&data));
    let started = second.startup_line("cadre started").clone();
    assert!(
        started["jwt_signing_from"]
            .as_str()
            .unwrap()
            .ends_with("jwt-secret"),
        "{started}"
    );
    assert!(
        started["master_encryption_from"]
            .as_str()
            .unwrap()
            .ends_with("master.key"),
        "{started}"
    );
    assert!(second.terminate().0.success());
    assert_eq!(
        std::fs::read_to_string(data.join("jwt-secret")).unwrap(),
        secret
    );
    assert_eq!(
        std::fs::read_to_string(data.join("master.key")).unwrap(),
        key
    );
}

#[test]
fn migrate_applies_the_schema_and_prints_its_version() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = cadre(&data).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("database schema is at version "),
        "{stdout}"
    );
    assert!(data.join("cadre.db").exists());
}

#[tokio::test]
async fn serve_works_on_postgresql_and_never_logs_credentials() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url = db.postgres_url_for_process().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (detailed, startup, exit) = tokio::task::spawn_blocking(move || {
        let mut cmd = cadre(&data);
        // The password is made up: trust auth ignores it, the log must hide it.
        let with_password = url.replacen(
            "postgres://postgres@",
            "postgres://postgres:not-logged-pw@",
            1,
        );
        cmd.arg("--database-url").arg(&with_password);
        let server = Running::serve(cmd);
        let detailed = server.get("/api/v1/health/detailed");
        let startup = server.startup.clone();
        (detailed, startup, server.terminate().0)
    })
    .await
    .unwrap();
    let (status, body) = detailed;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["database"]["backend"], "postgres");
    assert!(exit.success());
    let log = serde_json::to_string(&startup).unwrap();
    assert!(!log.contains("not-logged-pw"), "{log}");
    assert!(log.contains("postgres 127.0.0.1"), "{log}");
    // The instance registered in this schema and left it on shutdown.
    let live = db
        .store
        .instances()
        .list_live(time::OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
    db.cleanup().await;
}
