//! Secrets at rest on both databases: sealing, isolation, tampering,
//! master-key rotation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
#![allow(clippy::disallowed_methods, reason = "tests build tenants directly")]

use cadre_identity::secrets::{Keyring, Rotation, Secrets};
use cadre_store::{NewOrg, NewUser, Store};
use cadre_testkit::store_test;
use cadre_types::{Plan, Tenant};
use uuid::Uuid;

const OLD: [u8; 32] = [1; 32];
const NEW: [u8; 32] = [2; 32];

async fn org(store: &Store) -> Tenant {
    let owner = Uuid::now_v7();
    let now = cadre_types::time::now();
    store
        .users()
        .create_user(&NewUser {
            id: owner,
            email: format!("{owner}@example.com"),
            name: "o".into(),
            password_hash: "h".into(),
            at: now,
        })
        .await
        .unwrap();
    let id = Uuid::now_v7();
    store
        .orgs()
        .create_org(&NewOrg {
            id,
            name: "o".into(),
            slug: format!("o-{}", id.simple()),
            plan: Plan::Free,
            owner,
            inbox_id: Uuid::now_v7(),
            at: now,
        })
        .await
        .unwrap();
    Tenant::new(id)
}

store_test!(a_sealed_secret_opens_only_in_its_org, |db| async move {
    let secrets = Secrets::new(db.store.clone(), Keyring::new(&OLD, &[]).unwrap());
    let a = org(&db.store).await;
    let b = org(&db.store).await;
    let sealed = secrets.seal(a, b"sk-live-very-secret").await.unwrap();
    assert!(sealed.starts_with("cdr1:1:"), "{sealed}");
    assert!(!sealed.contains("very-secret"));
    assert_eq!(
        secrets.open(a, &sealed).await.unwrap(),
        b"sk-live-very-secret"
    );
    assert!(
        secrets.open(b, &sealed).await.is_err(),
        "another org cannot open it"
    );
    assert_ne!(
        secrets.seal(a, b"sk-live-very-secret").await.unwrap(),
        sealed,
        "fresh nonce every time"
    );
});

store_test!(
    an_altered_secret_does_not_open_and_the_error_shows_no_plaintext,
    |db| async move {
        let secrets = Secrets::new(db.store.clone(), Keyring::new(&OLD, &[]).unwrap());
        let a = org(&db.store).await;
        let sealed = secrets.seal(a, b"hunter2-password").await.unwrap();
        let mut chars: Vec<char> = sealed.chars().collect();
        let last = chars.len() - 3;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        let err = secrets.open(a, &altered).await.unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(secrets.open(a, "garbage").await.is_err());
    }
);

store_test!(
    rotation_rewraps_under_the_new_master_and_adds_a_version,
    |db| async move {
        let a = org(&db.store).await;
        let before = Secrets::new(db.store.clone(), Keyring::new(&OLD, &[]).unwrap());
        let sealed_v1 = before.seal(a, b"token-one").await.unwrap();

        // Step 1: every instance runs with the new primary and the old key as previous.
        let during = Secrets::new(db.store.clone(), Keyring::new(&NEW, &[OLD]).unwrap());
        assert_eq!(during.open(a, &sealed_v1).await.unwrap(), b"token-one");
        // Step 2: cadre admin rotate-keys.
        assert_eq!(
            during.rotate().await.unwrap(),
            Rotation {
                rewrapped: 1,
                new_versions: 1
            }
        );
        let sealed_v2 = during.seal(a, b"token-two").await.unwrap();
        assert!(sealed_v2.starts_with("cdr1:2:"), "{sealed_v2}");

        // Step 3: the old key is dropped; everything still opens.
        let after = Secrets::new(db.store.clone(), Keyring::new(&NEW, &[]).unwrap());
        assert_eq!(after.open(a, &sealed_v1).await.unwrap(), b"token-one");
        assert_eq!(after.open(a, &sealed_v2).await.unwrap(), b"token-two");

        // An instance that only knows the old key cannot open what it no longer wraps.
        let stale = Secrets::new(db.store.clone(), Keyring::new(&OLD, &[]).unwrap());
        let err = stale.open(a, &sealed_v1).await.unwrap_err();
        assert!(err.to_string().contains("previous_master_keys"), "{err}");
    }
);
