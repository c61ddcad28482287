use cadre_store::{
    ExecutionState, NewExecution, NewJob, NewTask, StepCommit, Store, StoreError, TraceEventRow,
};
use cadre_testkit::store_test;
use cadre_types::Tenant;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{agent, now, org_with_inbox};

/// An org with an agent and `n` queued executions of it.
async fn executions(store: &Store, n: usize) -> (Tenant, Vec<Uuid>) {
    let (tenant, inbox) = org_with_inbox(store).await;
    let agent = agent(store, tenant).await;
    let mut ids = Vec::new();
    for _ in 0..n {
        let task = store
            .tasks()
            .create_task(
                tenant,
                &NewTask {
                    id: Uuid::now_v7(),
                    project_id: inbox,
                    parent_id: None,
                    title: "t".into(),
                    description: String::new(),
                    status: "in_progress".into(),
                    priority: 5,
                    assignee: None,
                    author: ("human".into(), None),
                    at: now(),
                    supervisor_id: None,
                    due_at: None,
                    position: None,
                },
                &[],
                &cadre_store::Actor::system(),
            )
            .await
            .unwrap();
        let id = Uuid::now_v7();
        store
            .executions()
            .create_execution(
                tenant,
                &NewExecution {
                    id,
                    agent_id: agent.id,
                    agent_version: 1,
                    task_id: task.id,
                    parent_id: None,
                    trigger_kind: "user".into(),
                    triggered_by: None,
                    checkpoint: json!({}),
                    forked_from: None,
                    forked_at_step: None,
                    trace_hash: "genesis".into(),
                    at: now(),
                },
                &NewJob::new("q", "x.v1", json!({})),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    (tenant, ids)
}

/// A step that moves an execution from trace head `seq` to `seq + 1`.
fn step(id: Uuid, seq: i64, steps: i64) -> StepCommit {
    let at = now();
    StepCommit {
        execution_id: id,
        lease: None,
        expected_seq: seq,
        expected_control: None,
        release_runner: false,
        state: ExecutionState {
            status: "running".into(),
            steps,
            tokens_in: 0,
            tokens_out: 0,
            cost_nanos: 0,
            models: vec![],
            checkpoint: json!({ "steps": steps }),
            error: None,
            started_at: Some(at),
            finished_at: None,
            clear_control: false,
            clear_input: false,
        },
        events: vec![TraceEventRow {
            seq: seq + 1,
            kind: "decision".into(),
            at,
            data: cadre_store::Json(json!({})),
            prev_hash: "p".into(),
            hash: format!("h{}", seq + 1),
        }],
        snapshot: Some((steps, json!({ "steps": steps }))),
        outputs: vec![],
        tasks: vec![],
        executions: vec![],
        approvals: vec![],
        expired_approvals: vec![],
        memories: vec![],
        intent_started: None,
        intent_finished: None,
        task_done: None,
        task_failed: None,
        agent_id: Uuid::nil(),
        cancel_children: vec![],
        jobs: vec![],
        at,
    }
}

store_test!(
    a_group_commit_applies_each_step_or_refuses_it_alone,
    |db| async move {
        let (tenant, ids) = executions(&db.store, 3).await;
        let batch = [
            (tenant, step(ids[0], 0, 1)),
            // A stale trace head: refused, and only this one.
            (tenant, step(ids[1], 7, 1)),
            (tenant, step(ids[2], 0, 1)),
        ];
        let batch: Vec<_> = batch.iter().map(|(t, c)| (*t, c)).collect();
        let outcomes = db.store.executions().commit_steps(&batch).await.unwrap();
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(&outcomes[1], Err(StoreError::Conflict { constraint }) if constraint == "trace_head"),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_ok(), "{outcomes:?}");
        let read = |id| {
            let store = db.store.clone();
            async move { store.executions().execution(tenant, id).await.unwrap() }
        };
        for (i, expected) in [(0, 1), (1, 0), (2, 1)] {
            let ex = read(ids[i]).await;
            assert_eq!(
                (ex.steps, ex.trace_seq),
                (expected, expected),
                "execution {i}"
            );
            let trace = db.store.executions().trace(tenant, ids[i]).await.unwrap();
            assert_eq!(
                trace.len() as i64,
                expected,
                "no trace event of a refused step"
            );
            assert_eq!(
                db.store
                    .executions()
                    .snapshots_through(tenant, ids[i], 1)
                    .await
                    .unwrap()
                    .len(),
                usize::try_from(expected).unwrap(),
                "no snapshot of a refused step"
            );
        }
    }
);

store_test!(
    a_group_commit_refuses_a_stale_lease_and_keeps_the_last_memory,
    |db| async move {
        let (tenant, ids) = executions(&db.store, 3).await;
        let agent = Uuid::now_v7();
        let remember = |mut c: StepCommit, value: &str| {
            c.memories.push((agent, "k".into(), value.into()));
            c
        };
        // A lease of a job that does not exist is as stale as one taken over.
        let mut stale = remember(step(ids[1], 0, 1), "stale");
        stale.lease = Some(cadre_store::Lease {
            job_id: Uuid::now_v7(),
            epoch: 1,
        });
        // A pause asked for before the step commits comes back with it.
        db.store
            .executions()
            .control_execution(
                tenant,
                ids[2],
                &cadre_store::ControlChange {
                    from: &["queued"],
                    control: Some("pause"),
                    status: None,
                    job: None,
                },
                now(),
            )
            .await
            .unwrap()
            .expect("queued executions can be paused");
        let batch = [
            remember(step(ids[0], 0, 1), "first"),
            stale,
            remember(step(ids[2], 0, 1), "last"),
        ];
        let batch: Vec<_> = batch.iter().map(|c| (tenant, c)).collect();
        let outcomes = db.store.executions().commit_steps(&batch).await.unwrap();
        assert_eq!(
            outcomes[0].as_ref().ok(),
            Some(&cadre_store::StepHead::default())
        );
        assert!(
            matches!(outcomes[1], Err(StoreError::StaleLease)),
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes[2].as_ref().ok().and_then(|h| h.control.as_deref()),
            Some("pause")
        );
        let memories = db
            .store
            .executions()
            .recall(tenant, agent, "", 10)
            .await
            .unwrap();
        assert_eq!(memories, vec![("k".to_owned(), "last".to_owned())]);
        let stale = db
            .store
            .executions()
            .execution(tenant, ids[1])
            .await
            .unwrap();
        assert_eq!(
            (stale.steps, stale.trace_seq),
            (0, 0),
            "the stale step wrote nothing"
        );
    }
);

store_test!(a_refused_step_leaves_no_memory_behind, |db| async move {
    // On PostgreSQL this batch is one statement, whose inserts keep only
    // what the steps whose heads moved wrote.
    let (tenant, ids) = executions(&db.store, 3).await;
    let agent = Uuid::now_v7();
    let remember = |mut c: StepCommit, key: &str| {
        c.memories.push((agent, key.into(), format!("from {key}")));
        c
    };
    let mut stale = remember(step(ids[1], 0, 1), "b");
    stale.lease = Some(cadre_store::Lease {
        job_id: Uuid::now_v7(),
        epoch: 1,
    });
    let batch = [
        remember(step(ids[0], 0, 1), "a"),
        stale,
        remember(step(ids[2], 5, 1), "c"),
    ];
    let batch: Vec<_> = batch.iter().map(|c| (tenant, c)).collect();
    let outcomes = db.store.executions().commit_steps(&batch).await.unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Err(StoreError::StaleLease)),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], Err(StoreError::Conflict { constraint }) if constraint == "trace_head"),
        "{outcomes:?}"
    );
    let memories = db
        .store
        .executions()
        .recall(tenant, agent, "", 10)
        .await
        .unwrap();
    assert_eq!(memories, vec![("a".to_owned(), "from a".to_owned())]);
    for (i, expected) in [(0, 1), (1, 0), (2, 0)] {
        let trace = db.store.executions().trace(tenant, ids[i]).await.unwrap();
        assert_eq!(trace.len(), expected, "execution {i}");
    }
});

store_test!(
    a_batch_with_more_than_appends_refuses_a_step_alone_and_keeps_the_last_memory,
    |db| async move {
        // An expired approval makes a step more than its head and appends,
        // so the batch takes the general path: one transaction, in which
        // PostgreSQL runs the batch statement first, then the rest.
        let (tenant, ids) = executions(&db.store, 3).await;
        let agent = Uuid::now_v7();
        let remember = |mut c: StepCommit, value: &str| {
            c.memories.push((agent, "k".into(), value.into()));
            c
        };
        let mut first = remember(step(ids[0], 0, 1), "first");
        first.expired_approvals.push(Uuid::now_v7());
        let batch = [
            first,
            // A stale trace head: refused, and it writes nothing.
            remember(step(ids[1], 7, 1), "refused"),
            remember(step(ids[2], 0, 1), "last"),
        ];
        let batch: Vec<_> = batch.iter().map(|c| (tenant, c)).collect();
        let outcomes = db.store.executions().commit_steps(&batch).await.unwrap();
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(&outcomes[1], Err(StoreError::Conflict { constraint }) if constraint == "trace_head"),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_ok(), "{outcomes:?}");
        let memories = db
            .store
            .executions()
            .recall(tenant, agent, "", 10)
            .await
            .unwrap();
        assert_eq!(memories, vec![("k".to_owned(), "last".to_owned())]);
        for (i, expected) in [(0, 1), (1, 0), (2, 1)] {
            let ex = db
                .store
                .executions()
                .execution(tenant, ids[i])
                .await
                .unwrap();
            assert_eq!(ex.trace_seq, expected, "execution {i}");
            let trace = db.store.executions().trace(tenant, ids[i]).await.unwrap();
            assert_eq!(trace.len() as i64, expected, "execution {i}'s trace");
        }
    }
);
