//! Engine overhead per durable step with an instant model (the in-process
//! `scripted` provider): the same 10-call tool loop as
//! `bench/langgraph_steps.py`, serial (p50/p99 of step-to-step time) and
//! with 64 executions at once (durable steps/s), on SQLite
//! (`synchronous=FULL`) and PostgreSQL; then LangGraph on the same
//! databases; then the memory 10,000 executions parked for approval add.
//!
//! Run: `bench/engine.sh` (installs LangGraph), or
//! `cargo run --release -p cadre-bench --bin engine_steps -- [POSTGRES_URL] [PYTHON]`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![expect(
    clippy::disallowed_methods,
    reason = "the benchmark stands in for the authorization layer"
)]

use std::time::{Duration, Instant};

/// The allocator `cadre` itself uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cadre_engine::egress::{AllowList, Egress};
use cadre_engine::{Engine, EngineConfig, advance_job};
use cadre_llm::catalog::Defaults;
use cadre_runtime::Supervisor;
use cadre_store::{
    AgentSpec, ConnectOptions, ExecutionFilter, NewExecution, NewOrg, NewTask, NewUser,
    OrgModelRow, Page, Store, Target,
};
use cadre_types::{Plan, Tenant};
use cadre_worker::{Registry, Worker, WorkerConfig};
use serde_json::json;
use uuid::Uuid;

const CALLS: usize = 10;
const SERIAL_RUNS: usize = 20;
const CONCURRENT: usize = 64;
const CONCURRENT_ROUNDS: usize = 2;
const PARKED: usize = 10_000;

struct Bench {
    store: Store,
    tenant: Tenant,
    agent: Uuid,
    inbox: Uuid,
}

fn script(parks: bool) -> String {
    let mut answers: Vec<serde_json::Value> = (0..CALLS)
        .map(|i| {
            json!({ "toolCalls": [{ "id": format!("call_{i}"), "name": "remember",
                                   "arguments": { "key": format!("k{i}"), "value": "v" } }],
                    "usage": { "inputTokens": 50, "outputTokens": 10 } })
        })
        .collect();
    if parks {
        answers = vec![
            json!({ "toolCalls": [{ "id": "call_http", "name": "http_request",
                                              "arguments": { "method": "GET", "url": "https://example.com/" } }] }),
        ];
    }
    answers.push(json!({ "text": "done", "usage": { "inputTokens": 50, "outputTokens": 5 } }));
    serde_json::to_string(&answers).unwrap_or_default()
}

async fn setup(store: Store) -> anyhow::Result<Bench> {
    store.migrate().await?;
    let now = cadre_types::time::now();
    let user = store
        .users()
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            email: format!("bench-{}@example.com", Uuid::now_v7().simple()),
            name: "Bench".into(),
            password_hash: "-".into(),
            at: now,
        })
        .await?;
    let inbox = Uuid::now_v7();
    let org = store
        .orgs()
        .create_org(&NewOrg {
            id: Uuid::now_v7(),
            name: "Bench".into(),
            slug: format!("bench-{}", Uuid::now_v7().simple()),
            plan: Plan::Enterprise,
            owner: user.id,
            inbox_id: inbox,
            at: now,
        })
        .await?;
    let tenant = Tenant::new(org.id);
    let model = |name: &str, parks: bool| OrgModelRow {
        name: name.into(),
        provider: "scripted".into(),
        base_url: None,
        api_key_sealed: None,
        input_price_per_mtok: Some("1".into()),
        output_price_per_mtok: Some("2".into()),
        context_window: None,
        script: Some(script(parks)),
        updated_at: now,
    };
    store
        .models()
        .replace_org_models(tenant, &[model("loop", false), model("parks", true)])
        .await?;
    let spec = |model: &str| AgentSpec {
        name: "Bench".into(),
        kind: "executor".into(),
        role: String::new(),
        description: String::new(),
        instructions: "Record ten facts.".into(),
        model: model.into(),
        tools: vec![
            "add_output".into(),
            "remember".into(),
            "http_request".into(),
        ],
        approval_policy: json!({ "default": "auto" }),
        skills: vec![],
        limits: json!({ "maxSteps": 100, "maxCostUsd": "100" }),
        title: None,
        reports_to: None,
        template_id: None,
    };
    let agent = store
        .agents()
        .create_agent(tenant, Uuid::now_v7(), &spec("loop"), None, now)
        .await?;
    store
        .agents()
        .create_agent(tenant, Uuid::now_v7(), &spec("parks"), None, now)
        .await?;
    Ok(Bench {
        store,
        tenant,
        agent: agent.id,
        inbox,
    })
}

fn engine(store: &Store, supervisor: &Supervisor) -> anyhow::Result<Engine> {
    let keyring = cadre_identity::secrets::Keyring::new(&[7; 32], &[])?;
    let llm = cadre_engine::models::Llm {
        gateway: cadre_llm::Gateway::default(),
        defaults: Defaults {
            openai_api_key: None,
            openai_base_url: "http://127.0.0.1:9".into(),
            anthropic_api_key: None,
            anthropic_base_url: "http://127.0.0.1:9".into(),
            client: reqwest::Client::new(),
        },
    };
    Ok(Engine::new(
        store.clone(),
        cadre_identity::secrets::Secrets::new(store.clone(), keyring),
        llm,
        Egress::new(AllowList::default())?,
        // Unstreamed answers, as LangGraph's fake chat model gives them.
        EngineConfig {
            stream_model_calls: false,
            ..EngineConfig::default()
        },
        // Steps are announced as in `cadre serve`, though nobody listens.
        cadre_realtime::Realtime::memory(supervisor, cadre_realtime::Limits::default()),
    ))
}

fn start_workers(store: &Store, slots: usize) -> anyhow::Result<Supervisor> {
    let supervisor = Supervisor::new();
    let engine = engine(store, &supervisor)?;
    let registry = Registry::default().on(cadre_engine::ADVANCE, move |ctx| {
        let engine = engine.clone();
        async move { engine.run(ctx).await }
    });
    let config = WorkerConfig {
        queues: vec![(cadre_engine::QUEUE.to_owned(), slots)],
        ..WorkerConfig::default()
    };
    Worker::new(store.clone(), registry, config, Uuid::now_v7()).start(&supervisor);
    Ok(supervisor)
}

/// Creates and queues executions of `agent`; returns their ids.
async fn launch(b: &Bench, agent: Uuid, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let version = b.store.agents().agent(b.tenant, agent).await?.version;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let at = cadre_types::time::now();
        let task = b
            .store
            .tasks()
            .create_task(
                b.tenant,
                &NewTask {
                    id: Uuid::now_v7(),
                    project_id: b.inbox,
                    parent_id: None,
                    title: "Record ten facts".into(),
                    description: String::new(),
                    status: "in_progress".into(),
                    priority: 5,
                    assignee: None,
                    author: ("human".into(), None),
                    at,
                    supervisor_id: None,
                    due_at: None,
                    position: None,
                },
                &[],
                &cadre_store::Actor::system(),
            )
            .await?;
        let id = Uuid::now_v7();
        let execution = NewExecution {
            id,
            agent_id: agent,
            agent_version: version,
            task_id: task.id,
            parent_id: None,
            trigger_kind: "user".into(),
            triggered_by: None,
            checkpoint: cadre_engine::checkpoint::Checkpoint::default().to_json(),
            forked_from: None,
            forked_at_step: None,
            trace_hash: cadre_engine::trace::GENESIS.into(),
            at,
        };
        let job = advance_job(id, b.tenant.org_id(), "start", Duration::from_secs(600));
        b.store
            .executions()
            .create_execution(b.tenant, &execution, &job)
            .await?;
        ids.push(id);
    }
    b.store.jobs_added(cadre_engine::QUEUE).await;
    Ok(ids)
}

/// Waits until `n` executions of the org have `status` (checked every
/// 10 ms: a count query competes with the engine for the two cores).
async fn wait_for(b: &Bench, status: &str, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let filter = ExecutionFilter {
        status: Some(status.into()),
        ..ExecutionFilter::default()
    };
    loop {
        let (_, total) = b
            .store
            .executions()
            .executions(
                b.tenant,
                &filter,
                Page {
                    page: 1,
                    page_size: 1,
                },
            )
            .await?;
        if total >= n {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "executions did not reach {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    steps_per_sec: f64,
}

async fn serial(b: &Bench) -> anyhow::Result<Figures> {
    let supervisor = start_workers(&b.store, 1)?;
    let mut gaps = Vec::new();
    let mut steps = 0;
    let started = Instant::now();
    let mut done = 0;
    for _ in 0..SERIAL_RUNS {
        let ids = launch(b, b.agent, 1).await?;
        done += 1;
        wait_for(b, "completed", done).await?;
        let trace = b.store.executions().trace(b.tenant, ids[0]).await?;
        // Step-to-step: each event's time is when its step began.
        for pair in trace.windows(2) {
            gaps.push((pair[1].at - pair[0].at).as_seconds_f64() * 1000.0);
        }
        steps += b
            .store
            .executions()
            .execution(b.tenant, ids[0])
            .await?
            .steps;
    }
    let secs = started.elapsed().as_secs_f64();
    supervisor.shutdown(Duration::from_secs(5)).await;
    gaps.sort_by(f64::total_cmp);
    let at = |q: f64| {
        gaps.get(((gaps.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Figures {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        steps_per_sec: steps as f64 / secs,
    })
}

async fn concurrent(b: &Bench) -> anyhow::Result<Figures> {
    let supervisor = start_workers(&b.store, CONCURRENT)?;
    let before = completed(b).await?;
    let started = Instant::now();
    let cpu_before = cpu_secs();
    for _ in 0..CONCURRENT_ROUNDS {
        launch(b, b.agent, CONCURRENT).await?;
    }
    wait_for(
        b,
        "completed",
        before + (CONCURRENT * CONCURRENT_ROUNDS) as u64,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    supervisor.shutdown(Duration::from_secs(5)).await;
    // Each execution: 10 model calls with a tool call each, then the answer.
    let steps = (CONCURRENT * CONCURRENT_ROUNDS * (2 * CALLS + 1)) as f64;
    // Steadier than steps/s on a shared machine: CPU time is not stolen time.
    println!(
        "|           | (this process's CPU: {:.0} µs a step)                      |",
        cpu / steps * 1e6
    );
    Ok(Figures {
        p50_ms: 0.0,
        p99_ms: 0.0,
        steps_per_sec: steps / secs,
    })
}

async fn completed(b: &Bench) -> anyhow::Result<u64> {
    let filter = ExecutionFilter {
        status: Some("completed".into()),
        ..ExecutionFilter::default()
    };
    Ok(b.store
        .executions()
        .executions(
            b.tenant,
            &filter,
            Page {
                page: 1,
                page_size: 1,
            },
        )
        .await?
        .1)
}

/// CPU time this process has used (user + system), from /proc/self/stat
/// (in USER_HZ ticks, 100 a second on Linux).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces).
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// RSS added by executions parked waiting for approval (measured once they
/// are all parked and the workers idle).
async fn parked(b: &Bench) -> anyhow::Result<(f64, f64)> {
    let parks = b
        .store
        .agents()
        .agents(
            b.tenant,
            Page {
                page: 1,
                page_size: 10,
            },
        )
        .await?
        .0
        .into_iter()
        .find(|a| a.model == "parks")
        .map(|a| a.id)
        .ok_or_else(|| anyhow::anyhow!("no parking agent"))?;
    let supervisor = start_workers(&b.store, CONCURRENT)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_mib();
    launch(b, parks, PARKED).await?;
    wait_for(b, "waiting_approval", PARKED as u64).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_mib();
    supervisor.shutdown(Duration::from_secs(5)).await;
    Ok((before, after))
}

fn row(who: &str, backend: &str, mode: &str, f: &Figures) {
    println!(
        "| {who:<9} | {backend:<10} | {mode:<13} | {:>8.2} | {:>8.2} | {:>10.0} |",
        f.p50_ms, f.p99_ms, f.steps_per_sec
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let pg_url = args.get(1).filter(|u| !u.is_empty()).cloned();
    let python = args.get(2).cloned();
    println!("\n| system    | backend    | mode          | p50 ms   | p99 ms   | steps/s    |");
    println!("|-----------|------------|---------------|----------|----------|------------|");
    let dir = tempfile::tempdir()?;
    let sqlite = Store::connect(
        &Target::Sqlite(dir.path().join("bench.db")),
        &ConnectOptions::default(),
    )
    .await?;
    let b = setup(sqlite).await?;
    row("cadre", "SQLite", "serial", &serial(&b).await?);
    row("cadre", "SQLite", "64 concurrent", &concurrent(&b).await?);
    let (before, after) = parked(&b).await?;
    println!(
        "\n{PARKED} executions parked for approval (SQLite): RSS {before:.1} MiB -> {after:.1} MiB (+{:.1} MiB)\n",
        after - before
    );
    b.store.close().await;

    if let Some(url) = &pg_url {
        let options = ConnectOptions {
            pg_schema: Some(format!("bench_{}", Uuid::now_v7().simple())),
            max_connections: 16,
            ..ConnectOptions::default()
        };
        let b = setup(Store::connect(&Target::Postgres(url.clone()), &options).await?).await?;
        row("cadre", "PostgreSQL", "serial", &serial(&b).await?);
        row(
            "cadre",
            "PostgreSQL",
            "64 concurrent",
            &concurrent(&b).await?,
        );
        b.store.close().await;
    }

    if let Some(python) = python {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/langgraph_steps.py"
        );
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(dir.path().join("langgraph.db"))
            .arg(pg_url.unwrap_or_default())
            .arg(SERIAL_RUNS.to_string())
            .arg(CONCURRENT.to_string())
            .arg(CONCURRENT_ROUNDS.to_string())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "LangGraph run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let f = Figures {
                p50_ms: v["p50_ms"].as_f64().unwrap_or(0.0),
                p99_ms: v["p99_ms"].as_f64().unwrap_or(0.0),
                steps_per_sec: v["steps_per_sec"].as_f64().unwrap_or(0.0),
            };
            let backend = if v["backend"] == "sqlite" {
                "SQLite"
            } else {
                "PostgreSQL"
            };
            row("LangGraph", backend, v["mode"].as_str().unwrap_or(""), &f);
        }
    }
    Ok(())
}
