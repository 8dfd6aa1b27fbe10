#!/usr/bin/env node
/*
 * Detection latency: from the syscall's audit timestamp to the finding committed in SQLite
 * (findings.stored_ms - findings.time_ms; time_ms is the event's audit time, millisecond resolution),
 * at idle and while the load generator runs at 1,600 exec/s (mix 8:1:1, pod token opens, as in
 * live-load.js), with the agent on its default rules.
 *
 * Trigger: every ~100 ms a NEW process (`curl -s --max-time 1 http://127.0.0.1:2375/_ping`) connects
 * to the Docker API port, which rule h9-docker-remote-api flags. A new process each time because the
 * agent suppresses repeats of a rule by the same process for a while. dockerd listens there in the
 * lab; the rule fires on the connect whatever answers.
 *
 *   node bench/latency.js [--triggers 200] [--quick] [--json]
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const L = require('./lib');
const { MIX, EXEC_SHARE } = require('./live-load');

const RULE = 'h9-docker-remote-api';

function trigger() {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '1', 'http://127.0.0.1:2375/_ping'], { stdio: 'ignore' });
    c.on('exit', resolve);
    c.on('error', resolve);
  });
}

/** Fires `n` triggers ~100 ms apart (each in its own process; not waiting for the previous one). */
async function fire(n) {
  const pending = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + i * 100;
    const wait = due - Date.now();
    if (wait > 0) await L.sleep(wait);
    pending.push(trigger());
  }
  await Promise.all(pending);
}

function latencies(db, afterSeq) {
  const Database = require(path.join(L.ROOT, 'node_modules/better-sqlite3'));
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const rows = conn.prepare('SELECT seq, time_ms, stored_ms FROM findings WHERE rule = ? AND seq > ? ORDER BY seq').all(RULE, afterSeq);
    return { rows: rows.map((r) => r.stored_ms - r.time_ms), lastSeq: rows.length ? rows[rows.length - 1].seq : afterSeq };
  } finally {
    conn.close();
  }
}

function summary(list, sent) {
  const s = [...list].sort((a, b) => a - b);
  return {
    triggers: sent,
    findings: s.length,
    p50Ms: L.percentile(s, 50),
    p99Ms: L.percentile(s, 99),
    maxMs: s.length ? s[s.length - 1] : null,
    meanMs: s.length ? s.reduce((a, b) => a + b, 0) / s.length : null,
  };
}

async function main() {
  const quick = L.flag('--quick');
  const n = Number(L.arg('--triggers', quick ? '50' : '200'));
  const execRate = Number(L.arg('--exec-rate', '1600'));
  const release = await L.acquireLock();
  const before = L.snapshotAuditState();
  const pod = L.createPodTokenVolume();
  const workDir = L.mkWorkDir('latency');
  let agent = null;
  try {
    agent = await L.startAgent({ workDir, podVolume: pod });
    await L.sleep(1000);
    L.log(`latency: idle, ${n} triggers`);
    await fire(n);
    await L.sleep(2000);
    const idle = latencies(agent.db, 0);

    L.log(`latency: under ${execRate} exec/s, ${n} triggers`);
    const seconds = Math.ceil(n / 10) + 4;
    const load = L.runLoadgen({ opsRate: execRate / EXEC_SHARE, seconds, workers: 1, open: pod.token, mix: MIX });
    await L.sleep(2000);
    await fire(n);
    const gen = await load;
    await L.waitAgentDrained(agent);
    await L.sleep(1000);
    const busy = latencies(agent.db, idle.lastSeq);
    const result = {
      scenario: 'latency',
      rule: RULE,
      idle: summary(idle.rows, n),
      load: { ...summary(busy.rows, n), execPerSec: gen.exec / gen.seconds, generator: gen },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    if (agent) await agent.stop().catch((e) => L.log(String(e)));
    pod.cleanup();
    L.checkRestored(before, 'latency');
    release();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
