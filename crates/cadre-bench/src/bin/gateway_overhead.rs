//! Gateway overhead: latency the model gateway adds over calling the same
//! local OpenAI-compatible upstream directly, and throughput under
//! concurrency — for Cadre's gateway and for LiteLLM's SDK in the same run.
//!
//! Run: `bench/gateway-overhead.sh` (installs the pinned LiteLLM), or
//! `cargo run --release -p cadre-bench --bin gateway_overhead -- [python-with-litellm]`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![expect(clippy::disallowed_methods, reason = "the benchmark owns its tasks")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use cadre_llm::providers::openai::OpenAiCompatible;
use cadre_llm::{ChatRequest, Endpoint, Gateway, Message};
use serde_json::{Value, json};

const SEQUENTIAL: usize = 2_000;
/// Concurrency levels tried when looking for the best throughput whose p99
/// stays within [`P99_BUDGET`].
const LEVELS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
const P99_BUDGET: Duration = Duration::from_millis(10);
const LOAD_FOR: Duration = Duration::from_secs(3);

async fn upstream() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|Json(req): Json<Value>| async move {
            Json(json!({"id": "c1", "object": "chat.completion", "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/v1"))
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "bench".into(),
        messages: vec![Message::user("ping")],
        max_tokens: Some(1),
        ..ChatRequest::default()
    }
}

async fn direct_once(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let body = json!({"model": "bench", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1});
    let resp: Value = client
        .post(format!("{url}/chat/completions"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(resp["choices"][0]["message"]["content"] == "ok");
    Ok(())
}

async fn sequential<F, Fut>(mut call: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..200 {
        call().await?; // warm-up
    }
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        call().await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// Calls per second and p99 with `concurrency` callers for [`LOAD_FOR`].
async fn load<F, Fut>(call: Arc<F>, concurrency: usize) -> anyhow::Result<(f64, Duration)>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = Arc::clone(&call);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while started.elapsed() < LOAD_FOR {
                let t = Instant::now();
                call().await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all
        .get((all.len().saturating_sub(1)) * 99 / 100)
        .copied()
        .unwrap_or_default();
    Ok((rps, p99))
}

/// The best calls/s whose p99 stays within the budget, and at what concurrency.
async fn throughput<F, Fut>(call: F) -> anyhow::Result<(f64, usize)>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let mut best = (0.0, 0);
    for level in LEVELS {
        let (rps, p99) = load(Arc::clone(&call), level).await?;
        if p99 > P99_BUDGET {
            break;
        }
        if rps > best.0 {
            best = (rps, level);
        }
    }
    Ok(best)
}

fn row(name: &str, samples: &mut [Duration], (rps, level): (f64, usize)) {
    let (p50, p99, mean) = cadre_bench::summary(samples);
    println!("| {name:<28} | {p50:>8.3} | {p99:>8.3} | {mean:>8.3} | {rps:>10.0} | {level:>5} |");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = upstream().await?;
    let client = reqwest::Client::new();
    let provider = Arc::new(OpenAiCompatible::new(
        "bench",
        url.clone(),
        Some("sk-bench".into()),
        client.clone(),
    ));
    let endpoint = Endpoint {
        provider,
        model: "bench".into(),
        prices: None,
    };
    let gateway = Gateway::default();

    let c = client.clone();
    let u = url.clone();
    let mut direct = sequential(|| direct_once(&c, &u)).await?;
    let (g, e) = (gateway.clone(), endpoint.clone());
    let mut via = sequential(|| {
        let (g, e) = (g.clone(), e.clone());
        async move {
            g.chat(std::slice::from_ref(&e), &request()).await?;
            Ok(())
        }
    })
    .await?;
    let (c, u) = (client.clone(), url.clone());
    let direct_rps = throughput(move || {
        let (c, u) = (c.clone(), u.clone());
        async move { direct_once(&c, &u).await }
    })
    .await?;
    let via_rps = throughput(move || {
        let (g, e) = (gateway.clone(), endpoint.clone());
        async move {
            g.chat(std::slice::from_ref(&e), &request()).await?;
            Ok(())
        }
    })
    .await?;

    println!(
        "\nlatency: {SEQUENTIAL} sequential calls; calls/s: the best of {LEVELS:?} concurrent callers ({}s each) with p99 <= {} ms",
        LOAD_FOR.as_secs(),
        P99_BUDGET.as_millis()
    );
    println!(
        "\n| client                       | p50 ms   | p99 ms   | mean ms  | calls/s    | conc. |"
    );
    println!(
        "|------------------------------|----------|----------|----------|------------|-------|"
    );
    row("reqwest direct (Rust)", &mut direct, direct_rps);
    row("cadre-llm Gateway", &mut via, via_rps);
    let (d50, d99, _) = cadre_bench::summary(&mut direct);
    let (v50, v99, _) = cadre_bench::summary(&mut via);
    println!(
        "\ncadre-llm adds p50 {:+.3} ms, p99 {:+.3} ms",
        v50 - d50,
        v99 - d99
    );

    if let Some(python) = std::env::args().nth(1) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/litellm_overhead.py"
        );
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(&url)
            .arg(SEQUENTIAL.to_string())
            .arg(LOAD_FOR.as_secs().to_string())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "the LiteLLM run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    } else {
        println!(
            "(pass a python with litellm installed to compare: see bench/gateway-overhead.sh)"
        );
    }
    Ok(())
}
