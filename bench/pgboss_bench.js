// pg-boss's side of the queue benchmark: the same jobs, one at a time and
// in batches, enqueue -> completion on the same PostgreSQL, in its own schema.
// Usage: node pgboss_bench.js POSTGRES_URL N_SINGLE N_BATCHED
const PgBoss = require('pg-boss');

const WORKERS = 4;
const BATCH_SIZE = 500;
const [conn, nSingle, nBatched] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];

async function run(boss, label, total, batched) {
  const queue = `bench_${label}_${Date.now()}`;
  await boss.createQueue(queue);
  const latencies = [];
  let done = 0;
  let resolve;
  const finished = new Promise((r) => { resolve = r; });
  const start = Date.now();
  // pg-boss fetches a batch, runs it, then waits out its polling interval
  // (0.5 s at least) unless notified: several workers with large batches is
  // its way to go fast, so it gets WORKERS of them.
  const handler = async (jobs) => {
    const now = Date.now();
    for (const j of jobs) latencies.push(now - j.data.t);
    done += jobs.length;
    if (done >= total) resolve();
  };
  for (let w = 0; w < WORKERS; w++) {
    await boss.work(queue, { batchSize: BATCH_SIZE, pollingIntervalSeconds: 0.5 }, handler);
  }
  if (batched) {
    for (let i = 0; i < total; i += 500) {
      const n = Math.min(500, total - i);
      await boss.insert(Array.from({ length: n }, () => ({ name: queue, data: { t: Date.now() } })));
    }
  } else {
    for (let i = 0; i < total; i++) await boss.send(queue, { t: Date.now() });
  }
  await finished;
  const secs = (Date.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))];
  console.log(JSON.stringify({ label, jobsPerSec: total / secs, p50: at(0.5), p99: at(0.99) }));
  await boss.offWork(queue);
}

(async () => {
  const boss = new PgBoss({ connectionString: conn, schema: `pgboss_bench_${Date.now()}` });
  boss.on('error', (e) => console.error(e));
  await boss.start();
  await run(boss, 'single', nSingle, false);
  await run(boss, 'batched', nBatched, true);
  await boss.stop({ graceful: false, wait: false });
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
