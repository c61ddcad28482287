use cadre_store::{NewApiKey, StoreError};
use cadre_testkit::store_test;
use cadre_types::Scope;
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{now, org, user};

fn key(created_by: Uuid, hash: &str, expires_in: Option<Duration>) -> NewApiKey {
    NewApiKey {
        id: Uuid::now_v7(),
        created_by,
        name: "ci".into(),
        key_hash: hash.into(),
        key_prefix: "cdr_abcd".into(),
        scopes: vec![Scope::Read, Scope::Write],
        rate_limit_per_minute: Some(120),
        expires_at: expires_in.map(|d| now() + d),
        at: now(),
    }
}

store_test!(an_api_key_is_found_until_revoked, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (created, tenant) = org(&db.store, owner.id, "acme").await;
    let row = db
        .store
        .api_keys()
        .create_api_key(tenant, &key(owner.id, "h1", None))
        .await
        .unwrap();
    assert_eq!(row.scopes.0, vec![Scope::Read, Scope::Write]);

    let found = db
        .store
        .api_keys()
        .active_api_key("h1", now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.org_id), (row.id, created.id));

    db.store
        .api_keys()
        .revoke_api_key(tenant, row.id, now())
        .await
        .unwrap();
    assert!(
        db.store
            .api_keys()
            .active_api_key("h1", now())
            .await
            .unwrap()
            .is_none()
    );
    let listed = db.store.api_keys().api_keys(tenant).await.unwrap();
    assert!(listed[0].revoked_at.is_some(), "revoked keys stay listed");
});

store_test!(an_expired_api_key_is_not_active, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (_, tenant) = org(&db.store, owner.id, "acme").await;
    db.store
        .api_keys()
        .create_api_key(tenant, &key(owner.id, "old", Some(Duration::seconds(-1))))
        .await
        .unwrap();
    assert!(
        db.store
            .api_keys()
            .active_api_key("old", now())
            .await
            .unwrap()
            .is_none()
    );
});

store_test!(another_orgs_key_cannot_be_revoked, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (_, a) = org(&db.store, owner.id, "a").await;
    let (_, b) = org(&db.store, owner.id, "b").await;
    let row = db
        .store
        .api_keys()
        .create_api_key(a, &key(owner.id, "h", None))
        .await
        .unwrap();
    let err = db
        .store
        .api_keys()
        .revoke_api_key(b, row.id, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(
        db.store
            .api_keys()
            .active_api_key("h", now())
            .await
            .unwrap()
            .is_some()
    );
    db.store
        .api_keys()
        .touch_api_keys(&[row.id], now())
        .await
        .unwrap();
    assert!(
        db.store.api_keys().api_keys(a).await.unwrap()[0]
            .last_used_at
            .is_some()
    );
});
