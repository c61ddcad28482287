use cadre_store::areas::audit::verify_chain;
use cadre_store::{AuditFilter, ChainCheck, NewAuditEntry, Page};
use cadre_testkit::store_test;
use serde_json::json;

use crate::fixtures::{now, org, user};

fn entry(action: &str, n: u32) -> NewAuditEntry {
    NewAuditEntry {
        actor_type: "user".into(),
        actor_id: Some(format!("user-{n}")),
        action: action.into(),
        resource_type: Some("project".into()),
        resource_id: Some(n.to_string()),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test\nagent".into()),
        details: json!({"z": 1, "a": {"nested": [n]}}),
    }
}

store_test!(
    appended_entries_form_a_valid_chain_per_org,
    |db| async move {
        let owner = user(&db.store, "o@example.com").await;
        let (a_org, a) = org(&db.store, owner.id, "a").await;
        let (b_org, _) = org(&db.store, owner.id, "b").await;
        for n in 0..3 {
            db.store
                .audit()
                .append_audit(a_org.id, &entry("project.created", n), now())
                .await
                .unwrap();
        }
        db.store
            .audit()
            .append_audit(b_org.id, &entry("project.created", 9), now())
            .await
            .unwrap();

        // Read back from the database (JSON and timestamps round-trip) and verify.
        let chain = db.store.audit().audit_chain(a_org.id).await.unwrap();
        assert_eq!(
            chain.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(verify_chain(&chain), ChainCheck::Valid { entries: 3 });
        assert_eq!(
            verify_chain(&db.store.audit().audit_chain(b_org.id).await.unwrap()),
            ChainCheck::Valid { entries: 1 }
        );

        let (page, total) = db
            .store
            .audit()
            .audit_entries(
                a,
                &AuditFilter::default(),
                Page {
                    page: 1,
                    page_size: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!((total, page[0].seq), (3, 3), "newest first");
        let only = AuditFilter {
            actor_id: Some("user-1".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            db.store
                .audit()
                .audit_entries(
                    a,
                    &only,
                    Page {
                        page: 1,
                        page_size: 20
                    }
                )
                .await
                .unwrap()
                .1,
            1
        );
    }
);

store_test!(
    an_altered_entry_breaks_the_chain_at_that_entry,
    |db| async move {
        let owner = user(&db.store, "o@example.com").await;
        let (o, _) = org(&db.store, owner.id, "a").await;
        for n in 0..4 {
            db.store
                .audit()
                .append_audit(o.id, &entry("x", n), now())
                .await
                .unwrap();
        }
        let mut chain = db.store.audit().audit_chain(o.id).await.unwrap();
        chain[2].action = "tampered".into();
        assert_eq!(
            verify_chain(&chain),
            ChainCheck::Broken {
                first_bad_seq: 3,
                entries: 4
            }
        );
        let mut chain = db.store.audit().audit_chain(o.id).await.unwrap();
        chain.remove(1);
        assert!(
            matches!(
                verify_chain(&chain),
                ChainCheck::Broken {
                    first_bad_seq: 2,
                    ..
                }
            ),
            "a deleted row breaks the chain"
        );
    }
);

store_test!(concurrent_appends_keep_the_chain_intact, |db| async move {
    let owner = user(&db.store, "o@example.com").await;
    let (o, _) = org(&db.store, owner.id, "a").await;
    let mut handles = Vec::new();
    for n in 0..16 {
        let store = db.store.clone();
        handles.push(tokio::spawn(async move {
            store
                .audit()
                .append_audit(o.id, &entry("parallel", n), now())
                .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(
        verify_chain(&db.store.audit().audit_chain(o.id).await.unwrap()),
        ChainCheck::Valid { entries: 16 }
    );
});
