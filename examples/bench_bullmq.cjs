// BullMQ's no-op throughput, the peer of examples/bench_redis.rs's "claim + fence + ack" phase: the same job
// count is added first (addBulk, batches of --batch), then --workers Worker instances (one Redis connection
// pair each, as each of our consumers has two) process no-op jobs with --concurrency slots each until all
// are done. Jobs are removed on completion, as our entries are deleted on ack.
// Usage: node examples/bench_bullmq.cjs --port 6390 --tasks 20000 --workers 4 --concurrency 50 --batch 200
// Needs `npm i bullmq` (scripts/bench-queues installs it under target/bench-queues).
const { Queue, Worker } = require('bullmq');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

async function main() {
  const port = arg('port', 6379);
  const tasks = arg('tasks', 20000);
  const workers = arg('workers', 4);
  const concurrency = arg('concurrency', 50);
  const batch = arg('batch', 200);
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}`;
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < tasks; i += batch) {
    const jobs = [];
    for (let j = i; j < Math.min(tasks, i + batch); j++) {
      jobs.push({ name: 'register', data: { id: `t${j}` }, opts: { removeOnComplete: true } });
    }
    await queue.addBulk(jobs);
  }
  const addSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  let done = 0;
  let finish;
  const all = new Promise((resolve) => { finish = resolve; });
  t0 = process.hrtime.bigint();
  const ws = [];
  for (let w = 0; w < workers; w++) {
    const worker = new Worker(name, async () => {}, { connection, concurrency, autorun: true });
    worker.on('completed', () => {
      done += 1;
      if (done === tasks) finish();
    });
    ws.push(worker);
  }
  await all;
  const runSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(ws.map((w) => w.close()));
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  console.log(JSON.stringify({
    tasks, workers, concurrency,
    add_secs: addSecs, add_per_sec: tasks / addSecs,
    process_secs: runSecs, process_per_sec: tasks / runSecs,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
