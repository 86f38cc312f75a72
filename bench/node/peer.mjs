// The benchmark's Node.js peers: graphile-worker and pg-boss, driven by bench/node_peers.py.
//
//   node peer.mjs prepare graphile|pgboss DSN JOBS
//       installs the system's schema in DSN's (fresh) database and bulk-enqueues JOBS no-op jobs
//       (graphile-worker: one add_jobs() call, as its perfTest's init.js; pg-boss: insert()),
//       then prints "done". The harness ANALYZEs the database afterwards.
//   node peer.mjs drain-graphile DSN CONCURRENCY default|perftest
//       graphile-worker's runOnce() with concurrentJobs=CONCURRENCY (defaults otherwise, or its
//       perfTest's batching settings), started once a line comes on stdin (it prints "ready" once
//       loaded, so that the harness starts several processes together, as raquel_pg's worker
//       processes start on a resumed queue); then prints one JSON line {first, end, jobs}: epoch seconds of
//       the first handler start and of runOnce()'s return (every completion committed), and the
//       jobs this process ran. Its rows are deleted on completion, so nothing is left to read.
//   node peer.mjs drain-graphile-held DSN CONCURRENCY default|perftest
//       the same drain on a pool of this script's (the size graphile-worker would give its own),
//       kept open after the JSON line until stdin closes: the harness reads the CPU of the
//       server processes behind it before they exit (bench/server_cost.py).
//   node peer.mjs work-pgboss DSN LOCAL_CONCURRENCY default|fast [BATCH]
//       a pg-boss worker on queue "noop" until SIGTERM; prints "ready" once work() is registered.
//   node peer.mjs wake-graphile DSN default|perftest  /  wake-pgboss DSN default|notify
//       an idle worker that prints "<payload> <epoch seconds at handler start>" per job, and
//       "ready" once started; until SIGTERM.
//   node peer.mjs produce-pgboss DSN default|notify
//       reads a payload per stdin line, send()s it and prints "<payload> <epoch seconds once the
//       send resolved>" (pg-boss sends its NOTIFY from the insert statement, so its jobs are
//       enqueued with its own client).
//
// Logging: errors only (the handlers are no-ops; graphile-worker would otherwise log every job).

import { performance } from "node:perf_hooks";
import process from "node:process";
import readline from "node:readline";

import * as graphile from "graphile-worker";
import pg from "pg";
import { PgBoss } from "pg-boss";

const now = () => (performance.timeOrigin + performance.now()) / 1000;

const logger = new graphile.Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});

process.env.NO_LOG_SUCCESS = "1";

/** graphile-worker's preset: its defaults, or the settings of its own perfTest/graphile.config.js. */
function graphilePreset(dsn, concurrency, mode) {
  const worker = { connectionString: dsn, concurrentJobs: concurrency };
  if (mode === "perftest") {
    Object.assign(worker, {
      maxPoolSize: concurrency + 1,
      localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    });
  } else if (mode !== "default") {
    throw new Error(`unknown graphile-worker mode ${mode}`);
  }
  return { worker };
}

/** pg-boss's work() options at LOCAL_CONCURRENCY: defaults, or its documented batch settings. */
function pgbossWorkOptions(localConcurrency, mode, batch) {
  if (mode === "default") return { localConcurrency };
  if (mode === "fast") return { localConcurrency, batchSize: batch, burstWhenBatchFull: true };
  throw new Error(`unknown pg-boss mode ${mode}`);
}

function onStop(stop) {
  let stopping = false;
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      Promise.resolve(stop()).then(() => process.exit(0), (error) => {
        console.error(error);
        process.exit(1);
      });
    });
  }
}

async function prepare(system, dsn, jobs) {
  if (system === "graphile") {
    await graphile.runMigrations({ connectionString: dsn, logger });
    const pool = new pg.Pool({ connectionString: dsn });
    const specs = JSON.stringify(Array.from({ length: jobs }, (_, i) => ({ identifier: "noop", payload: { id: i } })));
    await pool.query(
      "select 1 from graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)))",
      [specs]);
    await pool.end();
  } else if (system === "pgboss") {
    const boss = new PgBoss({ connectionString: dsn, supervise: false, schedule: false });
    boss.on("error", (error) => console.error(error));
    await boss.start();
    await boss.createQueue("noop");
    await boss.createQueue("noop_notify", { notify: true });
    for (let done = 0; done < jobs; done += 10000) {
      const count = Math.min(10000, jobs - done);
      await boss.insert("noop", Array.from({ length: count }, (_, i) => ({ data: { id: done + i } })));
    }
    await boss.stop({ graceful: false });
  } else {
    throw new Error(`unknown system ${system}`);
  }
  console.log("done");
}

async function drainGraphile(dsn, concurrency, mode) {
  let first = null;
  let jobs = 0;
  const taskList = {
    noop: async () => {
      if (first === null) first = now();
      jobs += 1;
    },
  };
  const preset = graphilePreset(dsn, concurrency, mode);
  console.log("ready");
  for await (const _line of readline.createInterface({ input: process.stdin })) break;
  await graphile.runOnce({ preset, logger, taskList });
  console.log(JSON.stringify({ first, end: now(), jobs }));
}

async function drainGraphileHeld(dsn, concurrency, mode) {
  let first = null;
  let jobs = 0;
  const taskList = {
    noop: async () => {
      if (first === null) first = now();
      jobs += 1;
    },
  };
  const preset = graphilePreset(dsn, concurrency, mode);
  // graphile-worker's own pool for these settings: pg.Pool({connectionString, max: maxPoolSize}),
  // maxPoolSize 10 unless the preset sets it.
  const pgPool = new pg.Pool({ connectionString: dsn, max: preset.worker.maxPoolSize ?? 10 });
  pgPool.on("error", (error) => console.error(error));
  pgPool.on("connect", (client) => client.on("error", (error) => console.error(error)));
  await graphile.runOnce({ preset, logger, taskList, pgPool });
  console.log(JSON.stringify({ first, end: now(), jobs }));
  for await (const _line of readline.createInterface({ input: process.stdin })) break;
  await pgPool.end();
}

async function workPgboss(dsn, localConcurrency, mode, batch) {
  const boss = new PgBoss({ connectionString: dsn });
  boss.on("error", (error) => console.error(error));
  await boss.start();
  await boss.work("noop", pgbossWorkOptions(localConcurrency, mode, batch), async () => {});
  onStop(() => boss.stop({ graceful: true, timeout: 5000 }));
  console.log("ready");
}

async function wakeGraphile(dsn, mode) {
  const taskList = {
    noop: async (payload) => {
      process.stdout.write(`${payload.p} ${now()}\n`);
    },
  };
  const concurrency = mode === "perftest" ? 24 : 1;
  const runner = await graphile.run({ preset: graphilePreset(dsn, concurrency, mode), logger, taskList,
                                      noHandleSignals: true });
  onStop(() => runner.stop());
  console.log("ready");
}

function pgbossQueue(mode) {
  if (mode === "notify") return "noop_notify";
  if (mode === "default") return "noop";
  throw new Error(`unknown pg-boss wake mode ${mode}`);
}

async function wakePgboss(dsn, mode) {
  const boss = new PgBoss({ connectionString: dsn, useListenNotify: mode === "notify" });
  boss.on("error", (error) => console.error(error));
  await boss.start();
  await boss.work(pgbossQueue(mode), async ([job]) => {
    process.stdout.write(`${job.data.p} ${now()}\n`);
  });
  onStop(() => boss.stop({ graceful: true, timeout: 5000 }));
  console.log("ready");
}

async function producePgboss(dsn, mode) {
  const boss = new PgBoss({ connectionString: dsn, supervise: false, schedule: false });
  boss.on("error", (error) => console.error(error));
  await boss.start();
  const queue = pgbossQueue(mode);
  console.log("ready");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const payload = line.trim();
    await boss.send(queue, { p: payload });
    process.stdout.write(`${payload} ${now()}\n`);
  }
  await boss.stop({ graceful: false });
}

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case "prepare": return prepare(args[0], args[1], Number(args[2]));
    case "drain-graphile": return drainGraphile(args[0], Number(args[1]), args[2]);
    case "drain-graphile-held": return drainGraphileHeld(args[0], Number(args[1]), args[2]);
    case "work-pgboss": return workPgboss(args[0], Number(args[1]), args[2], Number(args[3] || 1));
    case "wake-graphile": return wakeGraphile(args[0], args[1]);
    case "wake-pgboss": return wakePgboss(args[0], args[1]);
    case "produce-pgboss": return producePgboss(args[0], args[1]);
    case "versions": {
      const { createRequire } = await import("node:module");
      const require = createRequire(import.meta.url);
      const version = (name) => JSON.parse(
        (require("node:fs")).readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
      console.log(JSON.stringify({ node: process.version, "graphile-worker": version("graphile-worker"),
                                   "pg-boss": version("pg-boss"), pg: version("pg") }));
      return undefined;
    }
    default: throw new Error(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
