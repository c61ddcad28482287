//! The work graph in the store: dependencies stay acyclic (property test
//! against a model), versions and rollback, edit locks, stale writes and
//! the once-only auto-run claim.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cadre_store::{
    Actor, NewExecution, NewInput, NewJob, NewTask, Page, Store, StoreError, TaskPatch, TaskWrite,
};
use cadre_testkit::{Backend, store_test};
use cadre_types::Tenant;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{agent, now, org_with_inbox};

struct Org {
    tenant: Tenant,
    inbox: Uuid,
}

async fn new_org(store: &Store) -> Org {
    let (tenant, inbox) = org_with_inbox(store).await;
    Org { tenant, inbox }
}

fn new_task(project: Uuid, title: &str) -> NewTask {
    NewTask {
        id: Uuid::now_v7(),
        project_id: project,
        parent_id: None,
        title: title.into(),
        description: String::new(),
        status: "draft".into(),
        priority: 5,
        assignee: None,
        author: ("human".into(), None),
        supervisor_id: None,
        due_at: None,
        position: None,
        at: now(),
    }
}

fn alice() -> Actor {
    Actor::new("user", Some(Uuid::from_u128(1)))
}

fn write(actor: Actor, expected: Option<i64>) -> TaskWrite {
    TaskWrite {
        actor,
        expected_version: expected,
        at: now(),
    }
}

async fn tasks(store: &Store, org: &Org, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let t = new_task(org.inbox, &format!("t{i}"));
        store
            .tasks()
            .create_task(org.tenant, &t, &[], &alice())
            .await
            .unwrap();
        ids.push(t.id);
    }
    ids
}

#[derive(Debug, Clone)]
enum Op {
    Add { task: usize, depends_on: usize },
    Remove { edge: usize },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n, 0..n).prop_map(|(task, depends_on)| Op::Add { task, depends_on }),
        1 => any::<usize>().prop_map(|edge| Op::Remove { edge }),
    ]
}

/// Whether `to` is reachable from `from` following "depends on" edges.
fn reaches(edges: &HashSet<(usize, usize)>, from: usize, to: usize) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if seen.insert(at) {
            stack.extend(edges.iter().filter(|(t, _)| *t == at).map(|(_, d)| *d));
        }
    }
    false
}

const NODES: usize = 7;

async fn run_case(store: &Store, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let org = new_org(store).await;
    let ids = tasks(store, &org, NODES).await;
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut model: HashSet<(usize, usize)> = HashSet::new();
    let mut edge_ids: Vec<((usize, usize), Uuid)> = Vec::new();
    let fail = |m: String| TestCaseError::fail(m);
    for op in ops {
        match op {
            Op::Add { task, depends_on } => {
                let result = store
                    .graph()
                    .add_dependency(org.tenant, ids[task], ids[depends_on], &alice(), now())
                    .await;
                let closes = task == depends_on || reaches(&model, depends_on, task);
                match result {
                    Ok(edge) => {
                        prop_assert!(!closes, "accepted {task} -> {depends_on}, a cycle");
                        prop_assert!(!model.contains(&(task, depends_on)), "accepted a duplicate");
                        model.insert((task, depends_on));
                        edge_ids.push(((task, depends_on), edge.id));
                    }
                    Err(StoreError::Cycle { path }) => {
                        prop_assert!(closes, "refused {task} -> {depends_on}: no cycle");
                        // The path is a real cycle through the new edge:
                        // task, depends_on, …, task, each depending on the next.
                        let path: Vec<usize> = path.iter().map(|id| index[id]).collect();
                        prop_assert_eq!(path.first(), Some(&task));
                        prop_assert_eq!(path.last(), Some(&task));
                        prop_assert_eq!(path.get(1), Some(&depends_on));
                        let with_new: HashSet<(usize, usize)> =
                            model.iter().copied().chain([(task, depends_on)]).collect();
                        for pair in path.windows(2) {
                            prop_assert!(
                                with_new.contains(&(pair[0], pair[1])),
                                "path {path:?} uses a missing edge {pair:?}"
                            );
                        }
                    }
                    Err(StoreError::Conflict { .. }) => {
                        prop_assert!(model.contains(&(task, depends_on)), "refused a new edge");
                    }
                    Err(e) => return Err(fail(format!("add: {e}"))),
                }
            }
            Op::Remove { edge } => {
                if edge_ids.is_empty() {
                    continue;
                }
                let (pair, id) = edge_ids.remove(edge % edge_ids.len());
                store
                    .graph()
                    .delete_dependency(org.tenant, ids[pair.0], id, &alice(), now())
                    .await
                    .map_err(|e| fail(format!("remove: {e}")))?;
                model.remove(&pair);
            }
        }
    }
    // What the store holds is what the model holds.
    let mut stored = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        for edge in store.graph().upstream(org.tenant, *id).await.unwrap() {
            stored.insert((i, index[&edge.depends_on]));
        }
    }
    prop_assert_eq!(stored, model);
    Ok(())
}

fn check(backend: Backend, cases: u32) {
    crate::fixtures::check_property(
        backend,
        cases,
        proptest::collection::vec(op(NODES), 1..30),
        |store, ops| async move { run_case(&store, ops).await },
    );
}

#[test]
fn random_dependency_changes_never_leave_a_cycle_sqlite() {
    check(Backend::Sqlite, 40);
}

#[test]
fn random_dependency_changes_never_leave_a_cycle_postgres() {
    check(Backend::Postgres, 24);
}

store_test!(
    rollback_restores_fields_and_inputs_as_a_new_version,
    |db| async move {
        let store = &db.store;
        let org = new_org(store).await;
        let t = new_task(org.inbox, "Draft the launch post");
        let input = NewInput {
            id: Uuid::now_v7(),
            kind: "text".into(),
            label: "tone".into(),
            position: None,
            content: json!({ "text": "friendly" }),
            at: now(),
        };
        let tasks = store.tasks();
        tasks
            .create_task(org.tenant, &t, std::slice::from_ref(&input), &alice())
            .await
            .unwrap();
        let v1 = tasks.task_version(org.tenant, t.id, 1).await.unwrap();
        let patch = TaskPatch {
            title: Some("Rewritten".into()),
            priority: Some(9),
            ..TaskPatch::default()
        };
        tasks
            .update_task(org.tenant, t.id, &patch, &write(alice(), Some(1)))
            .await
            .unwrap();
        tasks
            .delete_input(org.tenant, t.id, input.id, &write(alice(), None))
            .await
            .unwrap();
        let changed = tasks.task(org.tenant, t.id).await.unwrap();
        assert_eq!((changed.title.as_str(), changed.version), ("Rewritten", 3));
        assert!(
            tasks
                .task_inputs(org.tenant, t.id)
                .await
                .unwrap()
                .is_empty()
        );

        let back = tasks
            .rollback_task(org.tenant, t.id, 1, &write(alice(), Some(3)))
            .await
            .unwrap();
        assert_eq!(back.version, 4, "a rollback is a new version");
        assert_eq!(back.title, "Draft the launch post");
        assert_eq!(back.priority, 5);
        let inputs = tasks.task_inputs(org.tenant, t.id).await.unwrap();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].id, input.id);
        assert_eq!(inputs[0].content.0, json!({ "text": "friendly" }));
        let v4 = tasks.task_version(org.tenant, t.id, 4).await.unwrap();
        assert_eq!(v4.snapshot.0, v1.snapshot.0, "version 4 equals version 1");
        assert_eq!(v4.change_type, "rollback");
        let versions = tasks.task_versions(org.tenant, t.id).await.unwrap();
        let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, vec![4, 3, 2, 1]);
    }
);

store_test!(
    a_stale_write_is_refused_and_changes_nothing,
    |db| async move {
        let store = &db.store;
        let org = new_org(store).await;
        let t = new_task(org.inbox, "t");
        store
            .tasks()
            .create_task(org.tenant, &t, &[], &alice())
            .await
            .unwrap();
        let patch = TaskPatch {
            title: Some("first".into()),
            ..TaskPatch::default()
        };
        store
            .tasks()
            .update_task(org.tenant, t.id, &patch, &write(alice(), Some(1)))
            .await
            .unwrap();
        let late = TaskPatch {
            title: Some("second".into()),
            ..TaskPatch::default()
        };
        let err = store
            .tasks()
            .update_task(org.tenant, t.id, &late, &write(alice(), Some(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Stale { current: 2 }), "{err:?}");
        let row = store.tasks().task(org.tenant, t.id).await.unwrap();
        assert_eq!((row.title.as_str(), row.version), ("first", 2));
    }
);

store_test!(
    a_lock_refuses_other_writers_until_it_expires,
    |db| async move {
        let store = &db.store;
        let org = new_org(store).await;
        let t = new_task(org.inbox, "t");
        let tasks = store.tasks();
        tasks
            .create_task(org.tenant, &t, &[], &alice())
            .await
            .unwrap();
        let bob = Actor::new("user", Some(Uuid::from_u128(2)));
        let start = now();
        let until = cadre_types::time::normalize(start + Duration::from_secs(60));
        tasks
            .lock_task(org.tenant, t.id, &alice(), until, start)
            .await
            .unwrap();

        let patch = TaskPatch {
            title: Some("bob's".into()),
            ..TaskPatch::default()
        };
        let refused = tasks
            .update_task(org.tenant, t.id, &patch, &write(bob.clone(), None))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::Locked { holder_type, holder_id, .. }
            if holder_type == "user" && *holder_id == alice().id),
            "{refused:?}"
        );
        let stolen = tasks
            .lock_task(org.tenant, t.id, &bob, until, start)
            .await
            .unwrap_err();
        assert!(matches!(stolen, StoreError::Locked { .. }), "{stolen:?}");
        let released_by_other = tasks
            .unlock_task(org.tenant, t.id, &bob, start)
            .await
            .unwrap_err();
        assert!(matches!(released_by_other, StoreError::Locked { .. }));
        // The holder writes through its own lock.
        tasks
            .update_task(org.tenant, t.id, &patch, &write(alice(), None))
            .await
            .unwrap();
        // Once expired, the lock blocks no one (no cleanup needed).
        let later = TaskWrite {
            actor: bob.clone(),
            expected_version: None,
            at: until + Duration::from_secs(1),
        };
        let after = tasks
            .update_task(org.tenant, t.id, &patch, &later)
            .await
            .unwrap();
        assert_eq!(after.version, 3);
        tasks
            .lock_task(
                org.tenant,
                t.id,
                &bob,
                until + Duration::from_secs(120),
                later.at,
            )
            .await
            .unwrap();
        let row = tasks.task(org.tenant, t.id).await.unwrap();
        assert_eq!(row.lock_holder_id, bob.id);
    }
);

store_test!(an_auto_run_is_claimed_once, |db| async move {
    let store = &db.store;
    let org = new_org(store).await;
    let agent = agent(store, org.tenant).await;
    let mut t = new_task(org.inbox, "t");
    t.assignee = Some(("agent".into(), agent.id));
    store
        .tasks()
        .create_task(org.tenant, &t, &[], &alice())
        .await
        .unwrap();
    let execution = |id: Uuid| NewExecution {
        id,
        agent_id: agent.id,
        agent_version: 1,
        task_id: t.id,
        parent_id: None,
        trigger_kind: "auto_run".into(),
        triggered_by: None,
        checkpoint: json!({}),
        forked_from: None,
        forked_at_step: None,
        trace_hash: "genesis".into(),
        at: now(),
    };
    let job = NewJob::new("prop-none", "noop.v1", json!({}));
    let first = Uuid::now_v7();
    let claims = futures_util::future::join_all((0..4).map(|i| {
        let e = if i == 0 {
            execution(first)
        } else {
            execution(Uuid::now_v7())
        };
        let job = job.clone();
        async move {
            store
                .graph()
                .claim_auto_run(org.tenant, t.id, &e, &job)
                .await
        }
    }))
    .await;
    let won = claims.iter().filter(|c| matches!(c, Ok(true))).count();
    assert_eq!(won, 1, "{claims:?}");
    let row = store.tasks().task(org.tenant, t.id).await.unwrap();
    let (executions, total) = store
        .executions()
        .executions(
            org.tenant,
            &cadre_store::ExecutionFilter {
                task_id: Some(t.id),
                ..Default::default()
            },
            Page {
                page: 1,
                page_size: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(row.auto_run_execution_id, Some(executions[0].id));
});

store_test!(
    a_projects_graph_holds_its_tasks_their_edges_and_far_ends_up_to_a_limit,
    |db| async move {
        let store = &db.store;
        let org = new_org(store).await;
        let ids = tasks(store, &org, 3).await;
        let other = cadre_store::NewProject {
            id: Uuid::now_v7(),
            name: "Legal".into(),
            description: String::new(),
            workflow_states: vec!["todo".into(), "done".into()],
            auto_run: false,
            require_review: false,
            at: now(),
        };
        store
            .projects()
            .create_project(org.tenant, &other)
            .await
            .unwrap();
        let far = new_task(other.id, "Legal review");
        store
            .tasks()
            .create_task(org.tenant, &far, &[], &alice())
            .await
            .unwrap();
        let graph = store.graph();
        // t1 ← t0, far ← t2: one edge inside, one reaching the other project.
        graph
            .add_dependency(org.tenant, ids[1], ids[0], &alice(), now())
            .await
            .unwrap();
        graph
            .add_dependency(org.tenant, far.id, ids[2], &alice(), now())
            .await
            .unwrap();

        let whole = graph
            .project_graph(org.tenant, org.inbox, 10)
            .await
            .unwrap();
        let nodes: Vec<Uuid> = whole.nodes.iter().map(|t| t.id).collect();
        assert_eq!(nodes, [ids[0], ids[1], ids[2], far.id]);
        let edges: Vec<(Uuid, Uuid)> = whole
            .edges
            .iter()
            .map(|e| (e.task_id, e.depends_on))
            .collect();
        assert_eq!(edges, [(ids[1], ids[0]), (far.id, ids[2])]);

        // Past the limit, a task and its edges are left out, and so is a far
        // end only it reached.
        let two = graph.project_graph(org.tenant, org.inbox, 2).await.unwrap();
        let nodes: Vec<Uuid> = two.nodes.iter().map(|t| t.id).collect();
        assert_eq!(nodes, [ids[0], ids[1]]);
        let edges: Vec<(Uuid, Uuid)> = two
            .edges
            .iter()
            .map(|e| (e.task_id, e.depends_on))
            .collect();
        assert_eq!(edges, [(ids[1], ids[0])]);

        // Another org's tenant sees nothing of it.
        let stranger = new_org(store).await;
        let none = graph
            .project_graph(stranger.tenant, org.inbox, 10)
            .await
            .unwrap();
        assert!(none.nodes.is_empty() && none.edges.is_empty());
    }
);
