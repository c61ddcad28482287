use cadre_store::{NewInvitation, OrgPatch, Page, StoreError};
use cadre_testkit::store_test;
use cadre_types::{Role, Tenant};
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{now, org, user};

store_test!(creating_an_org_makes_its_owner_and_inbox, |db| async move {
    let owner = user(&db.store, "owner@example.com").await;
    let (created, tenant) = org(&db.store, owner.id, "acme").await;
    assert_eq!(created.plan, "free");
    assert_eq!(
        db.store
            .orgs()
            .membership(owner.id, created.id)
            .await
            .unwrap()
            .map(|(r, _)| r),
        Some(Role::Owner)
    );
    let (projects, total) = db
        .store
        .projects()
        .projects(
            tenant,
            Page {
                page: 1,
                page_size: 20,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(projects[0].name, "Inbox");
    assert!(projects[0].is_default);
    assert_eq!(
        projects[0].workflow_states.0,
        vec!["draft", "in_progress", "review", "complete"]
    );
    let mine = db.store.orgs().orgs_of_user(owner.id).await.unwrap();
    assert_eq!((mine.len(), mine[0].role.as_str()), (1, "owner"));
});

store_test!(a_taken_slug_is_a_conflict, |db| async move {
    let owner = user(&db.store, "owner@example.com").await;
    org(&db.store, owner.id, "acme").await;
    let err = db
        .store
        .orgs()
        .create_org(&cadre_store::NewOrg {
            id: Uuid::now_v7(),
            name: "Other".into(),
            slug: "acme".into(),
            plan: cadre_types::Plan::Free,
            owner: owner.id,
            inbox_id: Uuid::now_v7(),
            at: now(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // Nothing of the failed org remains (one transaction).
    assert_eq!(
        db.store.orgs().orgs_of_user(owner.id).await.unwrap().len(),
        1
    );
});

store_test!(a_non_member_has_no_role, |db| async move {
    let owner = user(&db.store, "owner@example.com").await;
    let stranger = user(&db.store, "stranger@example.com").await;
    let (created, _) = org(&db.store, owner.id, "acme").await;
    assert_eq!(
        db.store
            .orgs()
            .membership(stranger.id, created.id)
            .await
            .unwrap()
            .map(|(r, _)| r),
        None
    );
    assert_eq!(
        db.store
            .orgs()
            .membership(owner.id, Uuid::now_v7())
            .await
            .unwrap(),
        None
    );
});

store_test!(
    the_last_owner_cannot_be_demoted_or_removed,
    |db| async move {
        let owner = user(&db.store, "owner@example.com").await;
        let (_, tenant) = org(&db.store, owner.id, "acme").await;
        let demote = db
            .store
            .orgs()
            .set_member_role(tenant, owner.id, Role::Admin)
            .await
            .unwrap_err();
        assert!(
            matches!(&demote, StoreError::Conflict { constraint } if constraint == "last_owner"),
            "{demote:?}"
        );
        let remove = db
            .store
            .orgs()
            .remove_member(tenant, owner.id)
            .await
            .unwrap_err();
        assert!(
            matches!(&remove, StoreError::Conflict { constraint } if constraint == "last_owner"),
            "{remove:?}"
        );

        // With a second owner, the first can step down.
        let second = user(&db.store, "second@example.com").await;
        invite_and_accept(
            &db.store,
            tenant,
            owner.id,
            second.id,
            "second@example.com",
            Role::Owner,
        )
        .await;
        let changed = db
            .store
            .orgs()
            .set_member_role(tenant, owner.id, Role::Admin)
            .await
            .unwrap();
        assert_eq!(changed.role, "admin");
        assert_eq!(db.store.orgs().members(tenant).await.unwrap().len(), 2);
    }
);

store_test!(an_invitation_is_accepted_once, |db| async move {
    let owner = user(&db.store, "owner@example.com").await;
    let invitee = user(&db.store, "invitee@example.com").await;
    let (created, tenant) = org(&db.store, owner.id, "acme").await;
    let invitation = invite_and_accept(
        &db.store,
        tenant,
        owner.id,
        invitee.id,
        "Invitee@example.com",
        Role::Viewer,
    )
    .await;
    assert_eq!(
        db.store
            .orgs()
            .membership(invitee.id, created.id)
            .await
            .unwrap()
            .map(|(r, _)| r),
        Some(Role::Viewer)
    );
    let again = db
        .store
        .orgs()
        .accept_invitation(invitation, invitee.id, now())
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");
});

store_test!(org_changes_stay_inside_the_tenant, |db| async move {
    let owner = user(&db.store, "owner@example.com").await;
    let (_, a) = org(&db.store, owner.id, "a").await;
    let (_, b) = org(&db.store, owner.id, "b").await;
    let patch = OrgPatch {
        name: Some("Renamed".into()),
        ..OrgPatch::default()
    };
    db.store.orgs().update_org(a, &patch, now()).await.unwrap();
    assert_eq!(db.store.orgs().org(b).await.unwrap().name, "Org b");
    db.store.orgs().delete_org(a).await.unwrap();
    assert!(matches!(
        db.store.orgs().org(a).await.unwrap_err(),
        StoreError::NotFound
    ));
    assert!(db.store.orgs().org(b).await.is_ok());
});

async fn invite_and_accept(
    store: &cadre_store::Store,
    tenant: Tenant,
    by: Uuid,
    user: Uuid,
    email: &str,
    role: Role,
) -> Uuid {
    let token_hash = format!("hash-{}", Uuid::now_v7());
    let inv = store
        .orgs()
        .create_invitation(
            tenant,
            &NewInvitation {
                id: Uuid::now_v7(),
                email: email.into(),
                role,
                token_hash: token_hash.clone(),
                invited_by: by,
                expires_at: now() + Duration::days(7),
                at: now(),
            },
        )
        .await
        .unwrap();
    assert_eq!(inv.email, email.to_lowercase());
    let found = store
        .orgs()
        .invitation_by_token(&token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, inv.id);
    store
        .orgs()
        .accept_invitation(inv.id, user, now())
        .await
        .unwrap();
    inv.id
}

store_test!(
    pending_invitations_leave_the_list_when_accepted_expired_or_withdrawn,
    |db| async move {
        let owner = user(&db.store, "owner@example.com").await;
        let invitee = user(&db.store, "invitee@example.com").await;
        let (_, tenant) = org(&db.store, owner.id, "acme").await;
        let (_, other) = org(&db.store, owner.id, "other").await;
        let invite = |email: &str, expires_in: Duration| NewInvitation {
            id: Uuid::now_v7(),
            email: email.into(),
            role: Role::Member,
            token_hash: format!("hash-{}", Uuid::now_v7()),
            invited_by: owner.id,
            expires_at: now() + expires_in,
            at: now(),
        };
        let orgs = db.store.orgs();
        let waiting = invite("waiting@example.com", Duration::days(7));
        let stale = invite("stale@example.com", Duration::seconds(-1));
        let withdrawn = invite("withdrawn@example.com", Duration::days(7));
        for inv in [&waiting, &stale, &withdrawn] {
            orgs.create_invitation(tenant, inv).await.unwrap();
        }
        invite_and_accept(
            &db.store,
            tenant,
            owner.id,
            invitee.id,
            "invitee@example.com",
            Role::Viewer,
        )
        .await;

        // Another tenant can neither withdraw it nor see it.
        let refused = orgs
            .revoke_invitation(other, withdrawn.id)
            .await
            .unwrap_err();
        assert!(matches!(refused, StoreError::NotFound), "{refused:?}");
        assert!(
            orgs.pending_invitations(other, now())
                .await
                .unwrap()
                .is_empty()
        );

        orgs.revoke_invitation(tenant, withdrawn.id).await.unwrap();
        assert!(
            orgs.invitation_by_token(&withdrawn.token_hash)
                .await
                .unwrap()
                .is_none()
        );
        let again = orgs
            .revoke_invitation(tenant, withdrawn.id)
            .await
            .unwrap_err();
        assert!(matches!(again, StoreError::NotFound), "{again:?}");

        let pending: Vec<String> = orgs
            .pending_invitations(tenant, now())
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.email)
            .collect();
        assert_eq!(pending, ["waiting@example.com"]);
    }
);
