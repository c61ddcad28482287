//! Real-time fan-out: cadre's WebSocket (`cadre serve`, SQLite) against a
//! Socket.IO server (Node.js, `bench/socketio_fanout.js`), both driven by
//! the same Rust client in this process, one after the other:
//! - idle connections: the server's RSS before and after opening them;
//! - latency: an event of about 1 KB fanned out to `SUBSCRIBERS`
//!   connections, from just before it is published to its arrival at each
//!   subscriber (p50/p99 over `ROUNDS` events);
//! - throughput: `BURST` events published at once, deliveries per second
//!   until the last subscriber has the last one.
//!
//! cadre publishes through its REST API (a task created and committed to
//! the database, which announces `task_created`); Socket.IO's publisher
//! sends straight to the server. The event text is padded to the same
//! length for both.
//!
//! Run: `bench/realtime.sh` (installs Socket.IO, builds, raises the file
//! limit as far as the machine allows).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![expect(
    clippy::disallowed_methods,
    reason = "the benchmark's client tasks are its own, joined before it exits"
)]

mod bare;
mod client;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Idle connections opened (the machine allows 20,000 open files per
/// process; the server needs a few more than its connections).
const CONNECTIONS: usize = 19_000;
/// Of which this many listen to the channel the events go to.
const SUBSCRIBERS: usize = 10_000;
const ROUNDS: usize = 20;
const BURST: usize = 50;

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Cadre,
    SocketIo,
}

struct Figures {
    rss_before_kib: u64,
    rss_after_kib: u64,
    event_bytes: usize,
    p50_ms: f64,
    p99_ms: f64,
    delivered_per_s: f64,
    /// The server process's CPU time per delivered event.
    cpu_us_per_delivery: f64,
    /// This process's (the client's and publisher's), for comparison.
    client_cpu_us_per_delivery: f64,
}

/// User and system CPU time of a process so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at 3.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name).
    Ok((ticks(11) + ticks(12)) / 100.0)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_until(
    what: &str,
    deadline: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    while !done() {
        if Instant::now() > until {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens one connection and, for Socket.IO, completes its handshake; for
/// cadre, subscribes to `channel`.
async fn open(protocol: Protocol, url: &str, channel: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    match protocol {
        Protocol::Cadre => {
            let subscribe =
                json!({"type": "subscribe", "payload": {"channel": channel}}).to_string();
            socket.send(Message::Text(subscribe.into())).await?;
            loop {
                if let Some(Message::Text(t)) = socket.next().await.transpose()? {
                    if t.contains("\"subscribed\"") {
                        break;
                    }
                    bail!("subscription refused: {t}");
                }
            }
        }
        Protocol::SocketIo => {
            // Engine.IO open packet, then connect to the default namespace.
            let open = socket.next().await.transpose()?.context("no open packet")?;
            if !open.to_text().unwrap_or_default().starts_with('0') {
                bail!("not an Engine.IO open packet: {open:?}");
            }
            socket.send(Message::Text("40".into())).await?;
            loop {
                let msg = socket
                    .next()
                    .await
                    .transpose()?
                    .context("closed during the handshake")?;
                if msg.to_text().unwrap_or_default().starts_with("40") {
                    break;
                }
            }
        }
    }
    Ok(socket)
}

/// Opens `CONNECTIONS` connections (the first `SUBSCRIBERS` on the
/// events' channel) off the runtime: the client blocks while it opens them.
async fn open_all(
    port: u16,
    greeting: client::Greeting,
    targets: Vec<client::Target>,
) -> anyhow::Result<client::Listening> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tokio::task::spawn_blocking(move || client::open_all(addr, greeting, &targets)).await?
}

/// Publishes the events numbered in the range, all at once.
type Publish<'a> = Box<
    dyn FnMut(
            std::ops::Range<u32>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>>
        + 'a,
>;

/// The events of the throughput burst.
fn burst_events() -> std::ops::Range<u32> {
    ROUNDS as u32..(ROUNDS + BURST) as u32
}

/// Latency rounds and a burst, then closes every client.
async fn measure(
    clients: client::Listening,
    mut publish: Publish<'_>,
    pid: u32,
    rss_before: u64,
) -> anyhow::Result<Figures> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid)?;
    let cpu_before = cpu_seconds(pid)?;
    let client_cpu_before = cpu_seconds(std::process::id())?;
    let subscribers = SUBSCRIBERS as u64;
    let mut sent = Vec::new();
    for n in 0..ROUNDS as u32 {
        let at = Instant::now();
        publish(n..n + 1).await?;
        sent.push((n, at));
        let target = subscribers * u64::from(n + 1);
        wait_until("a round's deliveries", Duration::from_secs(60), || {
            clients.delivered.load(Ordering::Relaxed) >= target
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_burst = clients.delivered.load(Ordering::Relaxed);
    let burst_start = Instant::now();
    publish(burst_events()).await?;
    let target = before_burst + subscribers * BURST as u64;
    wait_until("the burst's deliveries", Duration::from_secs(120), || {
        clients.delivered.load(Ordering::Relaxed) >= target
    })
    .await?;
    let burst = burst_start.elapsed();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let client_cpu = cpu_seconds(std::process::id())? - client_cpu_before;
    let seen = tokio::task::spawn_blocking(move || clients.finish()).await??;
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(n, at)| {
            sent.iter()
                .find(|(s, _)| s == n)
                .map(|(_, t0)| at.duration_since(*t0).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Figures {
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        event_bytes: 0,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        delivered_per_s: (subscribers * BURST as u64) as f64 / burst.as_secs_f64(),
        cpu_us_per_delivery: cpu * 1e6 / (subscribers * (ROUNDS + BURST) as u64) as f64,
        client_cpu_us_per_delivery: client_cpu * 1e6
            / (subscribers * (ROUNDS + BURST) as u64) as f64,
    })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn cadre(binary: &str) -> anyhow::Result<Figures> {
    println!("cadre: starting `cadre serve` (SQLite)");
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let server = Server(
        Command::new(binary)
            .args([
                "--data-dir",
                &dir.path().display().to_string(),
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .env("CADRE_LIMITS_ENABLED", "false")
            .env("CADRE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting cadre")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = Instant::now();
    while http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .is_err()
    {
        if up.elapsed() > Duration::from_secs(30) {
            bail!("cadre did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move {
            let resp = req.send().await?;
            let status = resp.status();
            let json: Value = resp.json().await?;
            if !status.is_success() {
                bail!("{status}: {json}");
            }
            Ok::<Value, anyhow::Error>(json["data"].clone())
        }
    };
    let session = post(
        "/api/v1/auth/signup",
        None,
        json!({"email": "bench@example.com", "password": "correct horse battery", "name": "Bench"}),
    )
    .await?;
    let token = session["accessToken"]
        .as_str()
        .context("no token")?
        .to_owned();
    let org = id_of(&post("/api/v1/orgs", Some(&token), json!({"name": "Bench"})).await?)?;
    let projects = format!("/api/v1/orgs/{org}/projects");
    let events_project = id_of(&post(&projects, Some(&token), json!({"name": "Events"})).await?)?;
    let quiet = id_of(&post(&projects, Some(&token), json!({"name": "Quiet"})).await?)?;
    println!("  getting {CONNECTIONS} WebSocket tokens");
    let gate = Arc::new(Semaphore::new(32));
    let mut requests = Vec::new();
    for n in 0..CONNECTIONS {
        let (gate, http, base, token) =
            (Arc::clone(&gate), http.clone(), base.clone(), token.clone());
        let channel = if n < SUBSCRIBERS {
            format!("project:{events_project}")
        } else {
            format!("project:{quiet}")
        };
        requests.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let ws = ws_token(&http, &base, &token).await?;
            Ok::<_, anyhow::Error>(client::Target {
                path: format!("/ws?token={ws}"),
                channel,
            })
        }));
    }
    let mut targets = Vec::with_capacity(CONNECTIONS);
    for r in requests {
        targets.push(r.await??);
    }
    // Measured after the tokens were issued: what the connections add.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(server.0.id())?;
    let clients = open_all(port, client::Greeting::Subscribe, targets).await?;
    // Titles are padded so the event (as the WebSocket carries it) is
    // about 1 KB.
    let title = |n: u32| format!("bench-{n}-{}", "x".repeat(488));
    // The burst is one task template applied: its tasks are created in one
    // transaction, and their events published together.
    let tasks: Vec<Value> = burst_events()
        .map(|n| json!({"key": format!("t{n}"), "title": title(n)}))
        .collect();
    let template = id_of(
        &post(
            &format!("/api/v1/orgs/{org}/templates"),
            Some(&token),
            json!({"name": "Burst", "tasks": tasks}),
        )
        .await?,
    )?;
    let publish: Publish<'_> = Box::new(|events| {
        let fut = if events.len() == 1 {
            post(
                &format!("/api/v1/projects/{events_project}/tasks"),
                Some(&token),
                json!({"title": title(events.start)}),
            )
        } else {
            post(
                &format!("/api/v1/templates/{template}/apply"),
                Some(&token),
                json!({"projectId": events_project}),
            )
        };
        let expected = events.len() == 1 || events == burst_events();
        Box::pin(async move {
            anyhow::ensure!(expected, "the template holds the burst's events only");
            fut.await.map(|_| ())
        })
    });
    let mut figures = measure(clients, publish, server.0.id(), rss_before).await?;
    figures.event_bytes = event_bytes(port, &http, &base, &token, &events_project).await?;
    Ok(figures)
}

/// The `id` of what an API call created.
fn id_of(data: &Value) -> anyhow::Result<String> {
    Ok(data["id"]
        .as_str()
        .with_context(|| format!("no id in {data}"))?
        .to_owned())
}

/// A single-use WebSocket token for the session `token`.
async fn ws_token(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let resp: Value = http
        .post(format!("{base}/api/v1/auth/ws-token"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    Ok(resp["data"]["token"]
        .as_str()
        .context("no ws token")?
        .to_owned())
}

/// The size of one `task_created` message as a subscriber receives it.
async fn event_bytes(
    port: u16,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    project: &str,
) -> anyhow::Result<usize> {
    let ws = ws_token(http, base, token).await?;
    let mut socket = open(
        Protocol::Cadre,
        &format!("ws://127.0.0.1:{port}/ws?token={ws}"),
        &format!("project:{project}"),
    )
    .await?;
    http.post(format!("{base}/api/v1/projects/{project}/tasks"))
        .bearer_auth(token)
        .json(&json!({"title": format!("bench-999-{}", "x".repeat(488))}))
        .send()
        .await?;
    loop {
        if let Some(Message::Text(t)) = socket.next().await.transpose()?
            && t.contains("task_created")
        {
            return Ok(t.len());
        }
    }
}

async fn socketio(node: &str, script: &str, event_bytes: usize) -> anyhow::Result<Figures> {
    println!("Socket.IO: starting `node {script}`");
    let port = free_port()?;
    let server = Server(
        Command::new(node)
            .args([script, &port.to_string()])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node")?,
    );
    let url = |room: &str| {
        format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket&room={room}")
    };
    let up = Instant::now();
    loop {
        match open(Protocol::SocketIo, &url("probe"), "").await {
            Ok(probe) => {
                drop(probe);
                break;
            }
            Err(_) if up.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.context("Socket.IO did not start")),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(server.0.id())?;
    let targets = (0..CONNECTIONS - 1)
        .map(|n| client::Target {
            path: format!(
                "/socket.io/?EIO=4&transport=websocket&room={}",
                if n < SUBSCRIBERS { "org" } else { "idle" }
            ),
            channel: String::new(),
        })
        .collect();
    let clients = open_all(port, client::Greeting::SocketIo, targets).await?;
    // Opened last: it never answers the server's pings, and the
    // measurement is over long before the server would give up on it.
    let publisher = Arc::new(Mutex::new(
        open(Protocol::SocketIo, &url("publisher"), "").await?,
    ));
    // The same length on the wire as cadre's event.
    let frame = |n: u32, pad: usize| {
        format!(
            r#"42["publish",{{"title":"bench-{n}-{}"}}]"#,
            "x".repeat(pad)
        )
    };
    let overhead = frame(0, 0).len() - r#"42["publish","#.len() + r#"42["event","#.len();
    let pad = event_bytes.saturating_sub(overhead);
    let publish: Publish<'_> = Box::new(move |events| {
        let publisher = Arc::clone(&publisher);
        Box::pin(async move {
            let mut publisher = publisher.lock().await;
            for n in events {
                publisher.feed(Message::Text(frame(n, pad).into())).await?;
            }
            publisher.flush().await?;
            Ok(())
        })
    });
    let mut figures = measure(clients, publish, server.0.id(), rss_before).await?;
    figures.event_bytes = overhead + pad;
    Ok(figures)
}

/// The floor (see `bare.rs`): this binary again, as a bare server.
async fn bare_server(event_bytes: usize) -> anyhow::Result<Figures> {
    println!("bare: starting the floor server (one write per subscriber, no WebSocket library)");
    let (port, control) = (free_port()?, free_port()?);
    let server = Server(
        Command::new(std::env::current_exe()?)
            .args([
                "--bare",
                &port.to_string(),
                &control.to_string(),
                &event_bytes.to_string(),
            ])
            .spawn()
            .context("starting the bare server")?,
    );
    let up = Instant::now();
    let publisher = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", control)).await {
            Ok(stream) => break Arc::new(Mutex::new(stream)),
            Err(_) if up.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(anyhow::Error::from(e).context("the bare server did not start")),
        }
    };
    let rss_before = rss_kib(server.0.id())?;
    let targets = (0..CONNECTIONS)
        .map(|n| client::Target {
            path: "/ws".into(),
            channel: if n < SUBSCRIBERS {
                "project:events"
            } else {
                "project:quiet"
            }
            .into(),
        })
        .collect();
    let clients = open_all(port, client::Greeting::Subscribe, targets).await?;
    let publish: Publish<'_> = Box::new(move |events| {
        let publisher = Arc::clone(&publisher);
        Box::pin(async move {
            use tokio::io::AsyncWriteExt as _;
            let line = format!("{} {}\n", events.start, events.end);
            publisher.lock().await.write_all(line.as_bytes()).await?;
            Ok(())
        })
    });
    let mut figures = measure(clients, publish, server.0.id(), rss_before).await?;
    figures.event_bytes = event_bytes;
    Ok(figures)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--bare") {
        let numbers: Vec<usize> = args.skip(1).filter_map(|a| a.parse().ok()).collect();
        let [port, control, bytes] = numbers[..] else {
            bail!("usage: realtime_fanout --bare PORT CONTROL_PORT EVENT_BYTES");
        };
        return bare::serve(u16::try_from(port)?, u16::try_from(control)?, bytes);
    }
    let cadre_bin = args.next().unwrap_or_else(|| "target/release/cadre".into());
    let node = args.next().unwrap_or_else(|| "node".into());
    let script = args
        .next()
        .unwrap_or_else(|| "bench/socketio_fanout.js".into());

    let ours = cadre(&cadre_bin).await?;
    let peer = socketio(&node, &script, ours.event_bytes).await?;
    let floor = bare_server(ours.event_bytes).await?;

    println!();
    println!(
        "{CONNECTIONS} connections, {SUBSCRIBERS} of them subscribed; latency over {ROUNDS} events; throughput over a burst of {BURST}"
    );
    println!(
        "| server    | event bytes | RSS before | RSS with conns | KiB/conn | p50 ms | p99 ms | delivered/s | server CPU µs/delivery | client CPU µs/delivery |"
    );
    println!(
        "|-----------|-------------|------------|----------------|----------|--------|--------|-------------|------------------------|------------------------|"
    );
    for (name, f) in [("cadre", &ours), ("Socket.IO", &peer), ("bare", &floor)] {
        let per = f.rss_after_kib.saturating_sub(f.rss_before_kib) as f64 / CONNECTIONS as f64;
        println!(
            "| {name:<9} | {:>11} | {:>7} MiB | {:>11} MiB | {per:>8.1} | {:>6.2} | {:>6.2} | {:>11.0} | {:>22.2} | {:>22.2} |",
            f.event_bytes,
            f.rss_before_kib / 1024,
            f.rss_after_kib / 1024,
            f.p50_ms,
            f.p99_ms,
            f.delivered_per_s,
            f.cpu_us_per_delivery,
            f.client_cpu_us_per_delivery
        );
    }
    let per_conn =
        ours.rss_after_kib.saturating_sub(ours.rss_before_kib) as f64 / CONNECTIONS as f64;
    println!();
    println!(
        "cadre at 20,000 connections (per-connection cost × 20,000): {:.0} MiB added",
        per_conn * 20_000.0 / 1024.0
    );
    println!(
        "delivered messages/s, cadre ÷ Socket.IO: {:.1}×",
        ours.delivered_per_s / peer.delivered_per_s
    );
    Ok(())
}
