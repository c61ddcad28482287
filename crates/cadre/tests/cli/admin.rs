//! `cadre admin verify-audit` against a database a real server wrote.

use serde_json::json;

use crate::process::{Running, cadre};

#[tokio::test]
async fn verify_audit_passes_then_names_the_altered_row() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_for_server = data.clone();
    let org_id = tokio::task::spawn_blocking(move || {
        let server = Running::serve(cadre(&data_for_server));
        let (status, session) = server.post(
            "/api/v1/auth/signup",
            &json!({"email": "ops@example.com", "password": "a long password", "name": "Ops"}),
            None,
        );
        assert_eq!(status, 201, "{session}");
        let token = session["data"]["accessToken"].as_str().unwrap().to_owned();
        let (status, org) = server.post("/api/v1/orgs", &json!({"name": "Acme"}), Some(&token));
        assert_eq!(status, 201, "{org}");
        let org_id = org["data"]["id"].as_str().unwrap().to_owned();
        for name in ["one", "two"] {
            let (status, _) = server.post(
                &format!("/api/v1/orgs/{org_id}/projects"),
                &json!({"name": name}),
                Some(&token),
            );
            assert_eq!(status, 201);
        }
        assert!(server.terminate().0.success());
        org_id
    })
    .await
    .unwrap();

    let ok = cadre(&data)
        .args(["admin", "verify-audit"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains(&format!("org {org_id}: valid (3 entries)")),
        "{stdout}"
    );
    assert!(stdout.contains("platform: valid"), "{stdout}");

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("cadre.db").display()))
        .await
        .unwrap();
    let org_uuid: uuid::Uuid = org_id.parse().unwrap();
    sqlx::query("UPDATE audit_log SET details = '{\"status\":200}' WHERE org_id = $1 AND seq = 2")
        .bind(org_uuid)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let broken = cadre(&data)
        .args(["admin", "verify-audit", "--org", &org_id])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("org {org_id}: BROKEN at entry 2 (3 entries)")),
        "{stdout}"
    );
}

#[test]
fn rotate_keys_runs_against_the_data_dir_and_reports_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = cadre(&data)
        .args(["admin", "rotate-keys"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fresh instance has no organization keys yet; the master key's
    // fingerprint (never the key) is named.
    assert!(
        stdout.starts_with("re-wrapped 0 data key(s) under master key "),
        "{stdout}"
    );
    assert!(stdout.contains("0 organization(s)"), "{stdout}");
    let key = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(!stdout.contains(key.trim()));
}

#[tokio::test]
async fn admin_jobs_lists_retries_cancels_and_purges() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(
        cadre(&data)
            .arg("migrate")
            .output()
            .unwrap()
            .status
            .success()
    );

    // A job that died, written through the store as a worker would.
    let store = cadre_store::Store::connect(
        &cadre_store::Target::Sqlite(data.join("cadre.db")),
        &Default::default(),
    )
    .await
    .unwrap();
    let job = cadre_store::NewJob {
        max_attempts: 1,
        ..cadre_store::NewJob::new("default", "sync.v1", json!({}))
    };
    let (row, _) = store.enqueue(&job).await.unwrap();
    let now = cadre_types::time::now();
    let claimed = store
        .jobs()
        .claim(
            "default",
            1,
            std::time::Duration::from_secs(30),
            uuid::Uuid::now_v7(),
            now,
            None,
        )
        .await
        .unwrap();
    store
        .jobs()
        .fail_job(claimed[0].lease(), "upstream said no", None, now)
        .await
        .unwrap();
    store.close().await;

    let run = |args: &[&str]| {
        let out = cadre(&data)
            .args(["admin", "jobs"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run(&["list", "--state", "dead"]);
    assert!(
        listed.contains(&row.id.to_string()) && listed.contains("upstream said no"),
        "{listed}"
    );
    assert!(run(&["retry", &row.id.to_string()]).contains("will run again"));
    assert!(run(&["list", "--state", "available"]).contains(&row.id.to_string()));
    assert!(run(&["cancel", &row.id.to_string()]).contains("cancelled"));
    assert_eq!(
        run(&["purge", "--older-than-days", "0"]),
        "deleted 1 finished job(s) older than 0 day(s)\n"
    );
    assert_eq!(run(&["list"]), "no jobs\n");

    let bad = cadre(&data)
        .args(["admin", "jobs", "list", "--state", "sleeping"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown state"));
}
