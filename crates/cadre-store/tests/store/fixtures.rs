//! Small builders shared by the store tests.

use cadre_store::{NewOrg, NewUser, OrgRow, Store, UserRow};
use cadre_types::{Plan, Tenant};
use time::OffsetDateTime;
use uuid::Uuid;

pub fn now() -> OffsetDateTime {
    cadre_types::time::now()
}

pub async fn user(store: &Store, email: &str) -> UserRow {
    store
        .users()
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            email: email.into(),
            name: "Test User".into(),
            password_hash: "$argon2id$placeholder".into(),
            at: now(),
        })
        .await
        .unwrap()
}

pub async fn org(store: &Store, owner: Uuid, slug: &str) -> (OrgRow, Tenant) {
    let org = store
        .orgs()
        .create_org(&NewOrg {
            id: Uuid::now_v7(),
            name: format!("Org {slug}"),
            slug: slug.into(),
            plan: Plan::Free,
            owner,
            inbox_id: Uuid::now_v7(),
            at: now(),
        })
        .await
        .unwrap();
    let tenant = Tenant::new(org.id);
    (org, tenant)
}
