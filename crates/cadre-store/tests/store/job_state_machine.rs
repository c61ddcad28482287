//! Property test of the job state machine: random sequences of every queue
//! operation run against the real store and against a small model of the
//! transitions. After each operation every job's state, attempts, attempt
//! limit and lease epoch must match the model, and each write must have been
//! accepted or refused (stale lease, not found) exactly as the model says.

use std::collections::HashSet;
use std::time::Duration;

use cadre_store::{JobState, Lease, NewJob, Store, StoreError};
use cadre_testkit::Backend;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);
/// How far a failed job's retry is put off.
const RETRY_IN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        max_attempts: i64,
    },
    Claim {
        limit: u32,
    },
    Complete {
        job: usize,
        stale: bool,
    },
    /// Completes every running job in one batch; bit i of the mask makes
    /// the i-th one's lease stale.
    CompleteMany {
        stale_mask: u8,
    },
    Fail {
        job: usize,
        stale: bool,
        retry: bool,
    },
    Release {
        job: usize,
        stale: bool,
    },
    Heartbeat {
        job: usize,
        stale: bool,
    },
    Cancel {
        job: usize,
    },
    RetryNow {
        job: usize,
    },
    Advance {
        secs: u64,
    },
    Rescue,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..=3).prop_map(|max_attempts| Op::Enqueue { max_attempts }),
        3 => (1u32..=3).prop_map(|limit| Op::Claim { limit }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(job, stale)| Op::Complete { job, stale }),
        1 => any::<u8>().prop_map(|stale_mask| Op::CompleteMany { stale_mask }),
        2 => (any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(job, stale, retry)| Op::Fail { job, stale, retry }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(job, stale)| Op::Release { job, stale }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(job, stale)| Op::Heartbeat { job, stale }),
        1 => any::<usize>().prop_map(|job| Op::Cancel { job }),
        1 => any::<usize>().prop_map(|job| Op::RetryNow { job }),
        1 => (0u64..=40).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Rescue),
    ]
}

/// What the model expects of one job.
#[derive(Debug, Clone)]
struct Model {
    id: Uuid,
    state: JobState,
    attempts: i64,
    max_attempts: i64,
    epoch: i64,
    run_at: OffsetDateTime,
    lease_until: Option<OffsetDateTime>,
}

impl Model {
    fn lease(&self, stale: bool) -> Lease {
        Lease {
            job_id: self.id,
            epoch: self.epoch - i64::from(stale),
        }
    }

    /// Whether a write with this lease must be accepted.
    fn holds(&self, stale: bool) -> bool {
        self.state == JobState::Running && !stale
    }
}

fn expect<T: std::fmt::Debug>(
    what: &str,
    accepted: bool,
    result: &Result<T, StoreError>,
) -> Result<(), TestCaseError> {
    match (accepted, result) {
        (true, Ok(_)) | (false, Err(StoreError::StaleLease | StoreError::NotFound)) => Ok(()),
        _ => Err(TestCaseError::fail(format!(
            "{what}: model says accepted={accepted}, store answered {result:?}"
        ))),
    }
}

async fn run_case(store: &Store, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let jobs = store.jobs();
    let queue = format!("prop-{}", Uuid::now_v7().simple());
    let instance = Uuid::now_v7();
    // Whole seconds: both backends store these without rounding.
    let mut clock = cadre_types::time::now()
        .replace_nanosecond(0)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model: Vec<Model> = Vec::new();
    for op in ops {
        let pick = |i: usize| (!model.is_empty()).then(|| i % model.len());
        match op {
            Op::Enqueue { max_attempts } => {
                let (row, created) = store
                    .enqueue(&NewJob {
                        max_attempts,
                        run_at: clock,
                        ..NewJob::new(&queue, "prop.v1", json!({}))
                    })
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(created);
                model.push(Model {
                    id: row.id,
                    state: JobState::Available,
                    attempts: 0,
                    max_attempts,
                    epoch: 0,
                    run_at: clock,
                    lease_until: None,
                });
            }
            Op::Claim { limit } => {
                let ready: HashSet<Uuid> = model
                    .iter()
                    .filter(|m| {
                        matches!(m.state, JobState::Available | JobState::Failed)
                            && m.run_at <= clock
                    })
                    .map(|m| m.id)
                    .collect();
                let claimed = jobs
                    .claim(&queue, limit, LEASE, instance, clock, None)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(claimed.len(), ready.len().min(limit as usize));
                for row in claimed {
                    prop_assert!(ready.contains(&row.id), "claimed a job that was not ready");
                    let m = model.iter_mut().find(|m| m.id == row.id).unwrap();
                    m.state = JobState::Running;
                    m.attempts += 1;
                    m.epoch += 1;
                    m.lease_until = Some(clock + LEASE);
                }
            }
            Op::Complete { job, stale } => {
                let Some(i) = pick(job) else { continue };
                let accepted = model[i].holds(stale);
                let result = jobs.complete_job(model[i].lease(stale), clock).await;
                expect("complete", accepted, &result)?;
                if accepted {
                    model[i].state = JobState::Completed;
                    model[i].lease_until = None;
                }
            }
            Op::CompleteMany { stale_mask } => {
                let running: Vec<(usize, bool)> = model
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.state == JobState::Running)
                    .enumerate()
                    .map(|(bit, (i, _))| (i, stale_mask & (1 << (bit % 8)) != 0))
                    .collect();
                let leases: Vec<Lease> = running
                    .iter()
                    .map(|&(i, stale)| model[i].lease(stale))
                    .collect();
                let done: HashSet<Uuid> = jobs
                    .complete_jobs(&leases, clock)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .into_iter()
                    .collect();
                for (i, stale) in running {
                    prop_assert_eq!(done.contains(&model[i].id), !stale);
                    if !stale {
                        model[i].state = JobState::Completed;
                        model[i].lease_until = None;
                    }
                }
            }
            Op::Fail { job, stale, retry } => {
                let Some(i) = pick(job) else { continue };
                let accepted = model[i].holds(stale);
                let retry_at = retry.then_some(clock + RETRY_IN);
                let result = jobs
                    .fail_job(model[i].lease(stale), "boom", retry_at, clock)
                    .await;
                expect("fail", accepted, &result)?;
                if accepted {
                    let m = &mut model[i];
                    m.lease_until = None;
                    if m.attempts >= m.max_attempts || !retry {
                        m.state = JobState::Dead;
                    } else {
                        m.state = JobState::Failed;
                        m.run_at = clock + RETRY_IN;
                    }
                    prop_assert_eq!(result.ok(), Some(m.state));
                }
            }
            Op::Release { job, stale } => {
                let Some(i) = pick(job) else { continue };
                let accepted = model[i].holds(stale);
                let result = jobs.release_job(model[i].lease(stale), clock).await;
                expect("release", accepted, &result)?;
                if accepted {
                    let m = &mut model[i];
                    m.state = JobState::Available;
                    m.attempts -= 1;
                    m.lease_until = None;
                }
            }
            Op::Heartbeat { job, stale } => {
                let Some(i) = pick(job) else { continue };
                let accepted = model[i].holds(stale);
                let result = jobs
                    .heartbeat_job(model[i].lease(stale), clock + LEASE)
                    .await;
                expect("heartbeat", accepted, &result)?;
                if accepted {
                    model[i].lease_until = Some(clock + LEASE);
                }
            }
            Op::Cancel { job } => {
                let Some(i) = pick(job) else { continue };
                let accepted = matches!(
                    model[i].state,
                    JobState::Available | JobState::Running | JobState::Failed
                );
                let result = jobs.cancel_job(model[i].id, clock).await;
                expect("cancel", accepted, &result)?;
                if accepted {
                    model[i].state = JobState::Cancelled;
                    model[i].lease_until = None;
                }
            }
            Op::RetryNow { job } => {
                let Some(i) = pick(job) else { continue };
                let accepted = matches!(model[i].state, JobState::Failed | JobState::Dead);
                let result = jobs.retry_job_now(model[i].id, clock).await;
                expect("retry now", accepted, &result)?;
                if accepted {
                    let m = &mut model[i];
                    m.state = JobState::Available;
                    m.run_at = clock;
                    if m.attempts >= m.max_attempts {
                        m.max_attempts = m.attempts + 1;
                    }
                }
            }
            Op::Advance { secs } => clock += Duration::from_secs(secs),
            Op::Rescue => {
                let mut expected = 0;
                for m in &mut model {
                    if m.state == JobState::Running && m.lease_until.is_some_and(|u| u < clock) {
                        m.state = JobState::Available;
                        m.lease_until = None;
                        expected += 1;
                    }
                }
                let rescued = jobs
                    .rescue_expired(clock)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(rescued, expected);
            }
        }
        for m in &model {
            let row = jobs
                .job(m.id)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .ok_or_else(|| TestCaseError::fail("a job vanished"))?;
            prop_assert_eq!(row.state(), Some(m.state), "state of {}", m.id);
            prop_assert_eq!(row.attempts, m.attempts, "attempts of {}", m.id);
            prop_assert_eq!(row.max_attempts, m.max_attempts);
            prop_assert_eq!(row.lease_epoch, m.epoch, "epoch of {}", m.id);
            prop_assert_eq!(row.lease_until, m.lease_until, "lease of {}", m.id);
        }
    }
    // Leave nothing running, so later cases' rescue counts stay exact.
    for m in model.iter().filter(|m| m.state == JobState::Running) {
        jobs.cancel_job(m.id, clock)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

fn check(backend: Backend, cases: u32) {
    crate::fixtures::check_property(
        backend,
        cases,
        proptest::collection::vec(op(), 1..40),
        |store, ops| async move { run_case(&store, ops).await },
    );
}

#[test]
fn sqlite() {
    check(Backend::Sqlite, 48);
}

#[test]
fn postgres() {
    check(Backend::Postgres, 32);
}
