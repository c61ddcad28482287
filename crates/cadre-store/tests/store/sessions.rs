use cadre_store::{NewRefreshToken, RefreshUse};
use cadre_testkit::store_test;
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{now, user};

fn token(user_id: Uuid, family_id: Uuid, hash: &str, ttl: Duration) -> NewRefreshToken {
    NewRefreshToken {
        id: Uuid::now_v7(),
        user_id,
        family_id,
        token_hash: hash.into(),
        expires_at: now() + ttl,
        at: now(),
    }
}

store_test!(
    a_refresh_token_rotates_once_and_reuse_revokes_the_family,
    |db| async move {
        let u = user(&db.store, "u@example.com").await;
        let family = Uuid::now_v7();
        let s = db.store.sessions();
        s.insert_refresh_token(&token(u.id, family, "t1", Duration::days(7)))
            .await
            .unwrap();

        assert_eq!(
            s.use_refresh_token("t1", now()).await.unwrap(),
            RefreshUse::Rotated {
                user_id: u.id,
                family_id: family
            }
        );
        s.insert_refresh_token(&token(u.id, family, "t2", Duration::days(7)))
            .await
            .unwrap();

        // t1 again: stolen. The family, t2 included, is revoked.
        assert_eq!(
            s.use_refresh_token("t1", now()).await.unwrap(),
            RefreshUse::Reused { user_id: u.id }
        );
        assert_eq!(
            s.use_refresh_token("t2", now()).await.unwrap(),
            RefreshUse::Reused { user_id: u.id }
        );
        assert_eq!(
            s.use_refresh_token("never-issued", now()).await.unwrap(),
            RefreshUse::Unknown
        );
    }
);

store_test!(an_expired_refresh_token_is_refused, |db| async move {
    let u = user(&db.store, "u@example.com").await;
    db.store
        .sessions()
        .insert_refresh_token(&token(u.id, Uuid::now_v7(), "old", Duration::seconds(-1)))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .sessions()
            .use_refresh_token("old", now())
            .await
            .unwrap(),
        RefreshUse::Expired
    );
});

store_test!(logout_and_password_change_revoke_tokens, |db| async move {
    let u = user(&db.store, "u@example.com").await;
    let s = db.store.sessions();
    s.insert_refresh_token(&token(u.id, Uuid::now_v7(), "a", Duration::days(7)))
        .await
        .unwrap();
    s.insert_refresh_token(&token(u.id, Uuid::now_v7(), "b", Duration::days(7)))
        .await
        .unwrap();
    s.insert_refresh_token(&token(u.id, Uuid::now_v7(), "c", Duration::days(7)))
        .await
        .unwrap();
    s.revoke_refresh_family_of("a", now()).await.unwrap();
    assert!(matches!(
        s.use_refresh_token("a", now()).await.unwrap(),
        RefreshUse::Reused { .. }
    ));
    assert!(
        matches!(
            s.use_refresh_token("b", now()).await.unwrap(),
            RefreshUse::Rotated { .. }
        ),
        "other sessions survive a logout"
    );
    s.revoke_user_refresh_tokens(u.id, now()).await.unwrap();
    assert!(matches!(
        s.use_refresh_token("c", now()).await.unwrap(),
        RefreshUse::Reused { .. }
    ));
});

store_test!(
    a_reset_token_works_once_and_not_after_expiry,
    |db| async move {
        let u = user(&db.store, "u@example.com").await;
        let s = db.store.sessions();
        s.insert_password_reset(
            Uuid::now_v7(),
            u.id,
            "r1",
            now() + Duration::hours(1),
            now(),
        )
        .await
        .unwrap();
        s.insert_password_reset(
            Uuid::now_v7(),
            u.id,
            "r2",
            now() - Duration::seconds(1),
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            s.consume_password_reset("r1", now()).await.unwrap(),
            Some(u.id)
        );
        assert_eq!(s.consume_password_reset("r1", now()).await.unwrap(), None);
        assert_eq!(s.consume_password_reset("r2", now()).await.unwrap(), None);
    }
);
