use cadre_store::{NewUser, StoreError, UserPatch};
use cadre_testkit::store_test;
use cadre_types::PlatformRole;

use crate::fixtures::{now, user};

store_test!(
    the_first_user_is_super_admin_and_later_ones_are_users,
    |db| async move {
        let first = user(&db.store, "first@example.com").await;
        let second = user(&db.store, "second@example.com").await;
        assert_eq!(first.platform_role(), PlatformRole::SuperAdmin);
        assert_eq!(second.platform_role(), PlatformRole::User);
    }
);

store_test!(emails_are_unique_whatever_their_case, |db| async move {
    user(&db.store, "Ada@Example.com").await;
    let err = db
        .store
        .users()
        .create_user(&NewUser {
            id: uuid::Uuid::now_v7(),
            email: "ada@example.COM".into(),
            name: "x".into(),
            password_hash: "h".into(),
            at: now(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let found = db
        .store
        .users()
        .user_by_email("ADA@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.email, "ada@example.com");
});

store_test!(
    a_profile_update_changes_only_what_is_given,
    |db| async move {
        let u = user(&db.store, "p@example.com").await;
        let patch = UserPatch {
            name: Some("New Name".into()),
            ..UserPatch::default()
        };
        let updated = db
            .store
            .users()
            .update_user(u.id, &patch, now())
            .await
            .unwrap();
        assert_eq!(updated.name, "New Name");
        assert_eq!(updated.email, "p@example.com");
        db.store
            .users()
            .set_password(u.id, "new-hash", now())
            .await
            .unwrap();
        assert_eq!(
            db.store
                .users()
                .user_by_id(u.id)
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "new-hash"
        );
    }
);
