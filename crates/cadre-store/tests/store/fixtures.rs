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

/// A fresh org with a fresh owner, and the id of its `Inbox` project.
pub async fn org_with_inbox(store: &Store) -> (Tenant, Uuid) {
    let owner = user(store, &format!("{}@example.com", Uuid::now_v7().simple())).await;
    let (_, tenant) = org(store, owner.id, &format!("o{}", Uuid::now_v7().simple())).await;
    let page = cadre_store::Page {
        page: 1,
        page_size: 10,
    };
    let inbox = store.projects().projects(tenant, page).await.unwrap().0[0].id;
    (tenant, inbox)
}

/// An agent of the org with plain defaults.
pub async fn agent(store: &Store, tenant: Tenant) -> cadre_store::AgentRow {
    let spec = cadre_store::AgentSpec {
        name: "A".into(),
        kind: "executor".into(),
        role: String::new(),
        description: String::new(),
        instructions: "x".into(),
        model: "m".into(),
        tools: vec![],
        approval_policy: serde_json::json!({}),
        skills: vec![],
        limits: serde_json::json!({}),
        title: None,
        reports_to: None,
        template_id: None,
    };
    store
        .agents()
        .create_agent(tenant, Uuid::now_v7(), &spec, None, now())
        .await
        .unwrap()
}

/// Runs a property test: `cases` inputs drawn from `strategy`, each given to
/// `run` against one test database of `backend` (none: skipped, as the
/// store tests are when PostgreSQL is not configured).
pub fn check_property<S, F, Fut>(backend: cadre_testkit::Backend, cases: u32, strategy: S, run: F)
where
    S: proptest::strategy::Strategy,
    F: Fn(Store, S::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), proptest::test_runner::TestCaseError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = runtime.block_on(cadre_testkit::TestDb::new(backend)) else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    });
    let outcome = runner.run(&strategy, |value| {
        runtime.block_on(run(db.store.clone(), value))
    });
    runtime.block_on(db.cleanup());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
