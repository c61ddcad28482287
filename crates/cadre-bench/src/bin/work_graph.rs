//! Work graph over HTTP: create 10,000 tasks each with a dependency on an
//! earlier one (tasks/s, 16 clients), list and filter the 10,000-task
//! project (p50/p99), and query the graph around a task of a 1,000-node DAG
//! (p50/p99). Prints one table row per server; `bench/work-graph.sh` runs it
//! against cadre (SQLite and PostgreSQL) and the FastAPI peer.
//!
//! Run: `work_graph BASE_URL TOKEN PROJECT_ID LABEL`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const TASKS: usize = 10_000;
const CLIENTS: usize = 16;
const DAG_NODES: usize = 1_000;
const QUERIES: usize = 300;
const STATES: [&str; 4] = ["draft", "in_progress", "review", "complete"];
const WORDS: [&str; 8] = [
    "alpha", "beta", "gamma", "delta", "launch", "report", "review", "invoice",
];

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {json}");
        }
        Ok(json)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path}: {status} {json}");
        }
        Ok(json)
    }

    async fn task(&self, project: &str, i: u64) -> anyhow::Result<String> {
        let body = json!({
            "title": format!("{} task {i}", WORDS[(i % 8) as usize]),
            "description": format!("Work item {i} about {}", WORDS[((i / 8) % 8) as usize]),
            "priority": 1 + (i % 10),
            "status": STATES[(i % 4) as usize],
        });
        let created = self
            .post(&format!("/api/v1/projects/{project}/tasks"), body)
            .await?;
        created["data"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("no task id")
    }
}

/// xorshift: the benchmark needs spread, not quality.
fn next(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    x
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn timed(client: &Client, paths: &[String]) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(paths.len());
    for path in paths {
        let start = Instant::now();
        client.get(path).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, project, label] = args.as_slice() else {
        bail!("usage: work_graph BASE_URL TOKEN PROJECT_ID LABEL");
    };
    let client = Arc::new(Client {
        http: reqwest::Client::new(),
        base: base.clone(),
        token: token.clone(),
    });

    // 1. 10,000 tasks, each but the first depending on an earlier one.
    let created = Arc::new(Mutex::new(Vec::<String>::with_capacity(TASKS)));
    let counter = Arc::new(AtomicUsize::new(0));
    let seed = Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, created, counter, seed, project) = (
            client.clone(),
            created.clone(),
            counter.clone(),
            seed.clone(),
            project.clone(),
        );
        workers.push(async move {
            loop {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= TASKS {
                    return Ok::<_, anyhow::Error>(());
                }
                let id = client.task(&project, i as u64).await?;
                let upstream = {
                    let done = created.lock().await;
                    (!done.is_empty())
                        .then(|| done[(next(&seed) % done.len() as u64) as usize].clone())
                };
                if let Some(up) = upstream {
                    client
                        .post(
                            &format!("/api/v1/tasks/{id}/dependencies"),
                            json!({ "dependsOn": up }),
                        )
                        .await?;
                }
                created.lock().await.push(id);
            }
        });
    }
    // One task, many requests in flight: the load generator waits on I/O.
    futures_util::future::try_join_all(workers).await?;
    let create_secs = start.elapsed().as_secs_f64();
    let tasks_per_sec = TASKS as f64 / create_secs;

    // 2. List and filter the 10,000-task project.
    let paths: Vec<String> = (0..QUERIES)
        .map(|i| {
            let q = match i % 4 {
                0 => format!("?page={}&pageSize=50", 1 + i % 100),
                1 => format!("?status={}&pageSize=50", STATES[i % 4 / 2]),
                2 => format!("?q={}&pageSize=50", WORDS[i % 8]),
                _ => format!("?status=review&q={}&page=2&pageSize=50", WORDS[i % 8]),
            };
            format!("/api/v1/projects/{project}/tasks{q}")
        })
        .collect();
    let (list_p50, list_p99) = timed(&client, &paths).await?;

    // 3. A 1,000-node DAG: each node depends on one or two of the 50
    // before it, so it is deep and connected; query around its middle.
    let mut dag = Vec::with_capacity(DAG_NODES);
    for i in 0..DAG_NODES {
        let id = client.task(project, (TASKS + i) as u64).await?;
        if i > 0 {
            let edges = 1 + next(&seed) % 2;
            let mut ups = Vec::new();
            for _ in 0..edges {
                let back = 1 + (next(&seed) as usize % i.min(50));
                let up: &String = &dag[i - back];
                if !ups.contains(up) {
                    ups.push(up.clone());
                }
            }
            for up in ups {
                client
                    .post(
                        &format!("/api/v1/tasks/{id}/dependencies"),
                        json!({ "dependsOn": up }),
                    )
                    .await?;
            }
        }
        dag.push(id);
    }
    let middle = &dag[DAG_NODES / 2];
    let around = client
        .get(&format!("/api/v1/tasks/{middle}/dependencies"))
        .await?;
    let nodes = around["data"]["nodes"].as_array().map_or(0, Vec::len);
    let graph_paths: Vec<String> = (0..100)
        .map(|_| format!("/api/v1/tasks/{middle}/dependencies"))
        .collect();
    let (graph_p50, graph_p99) = timed(&client, &graph_paths).await?;

    println!(
        "| {label:<22} | {tasks_per_sec:>9.0} | {list_p50:>8.2} | {list_p99:>8.2} | {nodes:>5} | {graph_p50:>8.2} | {graph_p99:>8.2} |"
    );
    Ok(())
}
