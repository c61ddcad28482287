//! Queue throughput: jobs/s from enqueue to completion (one at a time and in
//! batches of 500) and enqueue→start latency, on SQLite and PostgreSQL, with
//! pg-boss on the same PostgreSQL in the same run.
//!
//! Run: `bench/queue.sh` (installs pg-boss), or
//! `cargo run --release -p cadre-bench --bin queue_throughput -- POSTGRES_URL [PGBOSS_DIR]`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cadre_runtime::Supervisor;
use cadre_store::{ConnectOptions, NewJob, Store, Target};
use cadre_worker::{Registry, Worker, WorkerConfig};
use serde_json::json;

const SINGLE: usize = 2_000;
const BATCHED: usize = 20_000;
const BATCH: usize = 500;

struct Run {
    jobs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(store: &Store, total: usize, batched: bool) -> anyhow::Result<Run> {
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(tokio::sync::Notify::new());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let (d, f, l) = (
        Arc::clone(&done),
        Arc::clone(&finished),
        Arc::clone(&latencies),
    );
    let registry = Registry::default().on("bench.v1", move |ctx| {
        let (d, f, l) = (Arc::clone(&d), Arc::clone(&f), Arc::clone(&l));
        async move {
            let waited = (cadre_types::time::now() - ctx.job.created_at).as_seconds_f64() * 1000.0;
            l.lock()
                .map_err(|_| cadre_worker::JobError::Fatal("lock".into()))?
                .push(waited);
            if d.fetch_add(1, Ordering::SeqCst) + 1 == total {
                f.notify_one();
            }
            Ok(())
        }
    });
    let queue = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let config = WorkerConfig {
        queues: vec![(queue.clone(), 64)],
        ..WorkerConfig::default()
    };
    let supervisor = Supervisor::new();
    Worker::new(store.clone(), registry, config, uuid::Uuid::now_v7()).start(&supervisor);
    let job = || NewJob::new(&queue, "bench.v1", json!({}));
    let started = Instant::now();
    if batched {
        for chunk in (0..total).collect::<Vec<_>>().chunks(BATCH) {
            let jobs: Vec<NewJob> = chunk.iter().map(|_| job()).collect();
            store.enqueue_many(&jobs).await?;
        }
    } else {
        for _ in 0..total {
            store.enqueue(&job()).await?;
        }
    }
    tokio::time::timeout(Duration::from_secs(600), finished.notified()).await?;
    let secs = started.elapsed().as_secs_f64();
    supervisor.shutdown(Duration::from_secs(5)).await;
    let mut l = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    l.sort_by(f64::total_cmp);
    let at = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Run {
        jobs_per_sec: total as f64 / secs,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

fn row(name: &str, mode: &str, r: &Run) {
    println!(
        "| {name:<22} | {mode:<13} | {:>10.0} | {:>8.2} | {:>8.2} |",
        r.jobs_per_sec, r.p50_ms, r.p99_ms
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    println!("\n| backend                | mode          | jobs/s     | p50 ms   | p99 ms   |");
    println!("|------------------------|---------------|------------|----------|----------|");
    let dir = tempfile::tempdir()?;
    let sqlite = Store::connect(
        &Target::Sqlite(dir.path().join("bench.db")),
        &ConnectOptions::default(),
    )
    .await?;
    sqlite.migrate().await?;
    row(
        "cadre, SQLite",
        "one at a time",
        &run(&sqlite, SINGLE, false).await?,
    );
    row(
        "cadre, SQLite",
        "batched 500",
        &run(&sqlite, BATCHED, true).await?,
    );

    if let Some(url) = args.get(1) {
        let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
        let options = ConnectOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 16,
            ..ConnectOptions::default()
        };
        let pg = Store::connect(&Target::Postgres(url.clone()), &options).await?;
        pg.migrate().await?;
        row(
            "cadre, PostgreSQL",
            "one at a time",
            &run(&pg, SINGLE, false).await?,
        );
        row(
            "cadre, PostgreSQL",
            "batched 500",
            &run(&pg, BATCHED, true).await?,
        );
        pg.close().await;

        if let Some(pgboss_dir) = args.get(2) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/pgboss_bench.js");
            let out = std::process::Command::new("node")
                .arg(script)
                .arg(url)
                .arg(SINGLE.to_string())
                .arg(BATCHED.to_string())
                .env("NODE_PATH", format!("{pgboss_dir}/node_modules"))
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "pg-boss run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                let r = Run {
                    jobs_per_sec: v["jobsPerSec"].as_f64().unwrap_or(0.0),
                    p50_ms: v["p50"].as_f64().unwrap_or(0.0),
                    p99_ms: v["p99"].as_f64().unwrap_or(0.0),
                };
                let mode = if v["label"] == "single" {
                    "one at a time"
                } else {
                    "batched 500"
                };
                row("pg-boss 10, PostgreSQL", mode, &r);
            }
        }
    }
    Ok(())
}
