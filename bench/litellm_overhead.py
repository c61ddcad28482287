"""LiteLLM's side of the gateway-overhead benchmark: the same upstream,
called directly with httpx and through litellm.acompletion."""
import asyncio
import statistics
import sys
import time

from importlib.metadata import version

import httpx
import litellm

URL, N, SECS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
LEVELS = [1, 2, 4, 8, 16, 32, 64, 128]
P99_BUDGET_MS = 10.0
BODY = {"model": "bench", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
litellm.telemetry = False
litellm.suppress_debug_info = True


async def direct(client):
    r = await client.post(f"{URL}/chat/completions", json=BODY)
    assert r.json()["choices"][0]["message"]["content"] == "ok"


async def via_litellm(_client):
    r = await litellm.acompletion(model="openai/bench", api_base=URL, api_key="sk-bench",
                                  messages=BODY["messages"], max_tokens=1)
    assert r.choices[0].message.content == "ok"


async def sequential(call, client):
    for _ in range(200):
        await call(client)
    samples = []
    for _ in range(N):
        t = time.perf_counter()
        await call(client)
        samples.append((time.perf_counter() - t) * 1000)
    return samples


async def load(call, client, concurrency):
    start = time.perf_counter()
    samples = []

    async def worker():
        while time.perf_counter() - start < SECS:
            t = time.perf_counter()
            await call(client)
            samples.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.sort()
    return len(samples) / (time.perf_counter() - start), samples[(len(samples) - 1) * 99 // 100]


async def throughput(call, client):
    """The best calls/s whose p99 stays within the budget, and its concurrency."""
    best = (0.0, 0)
    for level in LEVELS:
        rps, p99 = await load(call, client, level)
        if p99 > P99_BUDGET_MS:
            break
        if rps > best[0]:
            best = (rps, level)
    return best


def row(name, samples, best):
    rps, level = best
    s = sorted(samples)
    p50, p99 = s[round((len(s) - 1) * 0.50)], s[round((len(s) - 1) * 0.99)]
    print(f"| {name:<28} | {p50:>8.3f} | {p99:>8.3f} | {statistics.fmean(s):>8.3f} | {rps:>10.0f} | {level:>5} |")
    return p50, p99


async def main():
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=max(LEVELS))) as client:
        d = await sequential(direct, client)
        lite = await sequential(via_litellm, client)
        d_rps = await throughput(direct, client)
        l_rps = await throughput(via_litellm, client)
    d50, d99 = row("httpx direct (Python)", d, d_rps)
    l50, l99 = row(f"LiteLLM {version('litellm')} acompletion", lite, l_rps)
    print(f"\nLiteLLM adds p50 {l50 - d50:+.3f} ms, p99 {l99 - d99:+.3f} ms")


asyncio.run(main())
