use cadre_store::{NewProject, Page, ProjectPatch, StoreError};
use cadre_testkit::store_test;
use uuid::Uuid;

use crate::fixtures::{now, org, user};

fn project(name: &str) -> NewProject {
    NewProject {
        id: Uuid::now_v7(),
        name: name.into(),
        description: String::new(),
        workflow_states: vec!["todo".into(), "done".into()],
        auto_run: true,
        require_review: false,
        at: now(),
    }
}

store_test!(a_project_of_another_org_is_not_found, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (a_org, a) = org(&db.store, owner.id, "a").await;
    let (_, b) = org(&db.store, owner.id, "b").await;
    let p = db
        .store
        .projects()
        .create_project(a, &project("Launch"))
        .await
        .unwrap();
    assert_eq!(
        db.store.projects().project_org(p.id).await.unwrap(),
        Some(a_org.id)
    );
    assert!(matches!(
        db.store.projects().project(b, p.id).await.unwrap_err(),
        StoreError::NotFound
    ));
    let patch = ProjectPatch {
        name: Some("x".into()),
        ..ProjectPatch::default()
    };
    assert!(matches!(
        db.store
            .projects()
            .update_project(b, p.id, &patch, now())
            .await
            .unwrap_err(),
        StoreError::NotFound
    ));
    assert!(matches!(
        db.store
            .projects()
            .delete_project(b, p.id, now())
            .await
            .unwrap_err(),
        StoreError::NotFound
    ));
    assert_eq!(
        db.store.projects().project(a, p.id).await.unwrap().name,
        "Launch"
    );
});

store_test!(projects_page_and_soft_delete, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (_, t) = org(&db.store, owner.id, "a").await;
    for i in 0..3 {
        db.store
            .projects()
            .create_project(t, &project(&format!("P{i}")))
            .await
            .unwrap();
    }
    let (page, total) = db
        .store
        .projects()
        .projects(
            t,
            Page {
                page: 2,
                page_size: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 4, "Inbox and three more");
    let names: Vec<_> = page.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["P1", "P2"]);
    db.store
        .projects()
        .delete_project(t, page[0].id, now())
        .await
        .unwrap();
    assert_eq!(
        db.store
            .projects()
            .projects(
                t,
                Page {
                    page: 1,
                    page_size: 20
                }
            )
            .await
            .unwrap()
            .1,
        3
    );
    assert_eq!(
        db.store.projects().project_org(page[0].id).await.unwrap(),
        None,
        "deleted projects are gone for everyone"
    );
});

store_test!(the_inbox_cannot_be_deleted, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (_, t) = org(&db.store, owner.id, "a").await;
    let (page, _) = db
        .store
        .projects()
        .projects(
            t,
            Page {
                page: 1,
                page_size: 20,
            },
        )
        .await
        .unwrap();
    let err = db
        .store
        .projects()
        .delete_project(t, page[0].id, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { constraint } if constraint == "default_project"),
        "{err:?}"
    );
});
