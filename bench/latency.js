#!/usr/bin/env node
/*
 * Detection latency: from the syscall's audit timestamp to the finding's first revision committed in
 * SQLite (findings.stored_ms - findings.time_ms of that revision, read while the bench runs:
 * bench/lib.js watchFirstRevisions; time_ms is the event's audit time, millisecond resolution),
 * at idle and while the load generator runs at 1,600 exec/s (mix 8:1:1, pod token opens, as in
 * live-load.js), with the agent on its default rules.
 *
 * Trigger: every ~100 ms a NEW behaviour: `cat` of the token of its own pod service-account volume under
 * /var/lib/kubelet/pods/<uid>/... (rule h3-kubelet-pod-volume-harvest). Since issue 17 the agent groups
 * hits into incidents (one row per behaviour, updated in place), so triggers that all did the same thing
 * (the h9 curl to one Docker API port this bench used to send) became one incident row and the bench
 * measured one finding; one pod volume per trigger makes each its own incident, and the latency is that
 * of a first finding. Every volume is watched (PodVolumeWatcher) before the first trigger.
 *
 *   node bench/latency.js [--triggers 40] [--exec-rate 1600] [--quick] [--json]
 */
'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const L = require('./lib');
const { MIX, EXEC_SHARE } = require('./live-load');

const RULE = 'h3-kubelet-pod-volume-harvest';

function trigger(pod) {
  return new Promise((resolve) => {
    const c = spawn('cat', [pod.token], { stdio: 'ignore' });
    c.on('exit', resolve);
    c.on('error', resolve);
  });
}

/** Reads each pod's token ~100 ms apart (each in its own process; not waiting for the previous one). */
async function fire(pods) {
  const pending = [];
  const t0 = Date.now();
  for (let i = 0; i < pods.length; i++) {
    const due = t0 + i * 100;
    const wait = due - Date.now();
    if (wait > 0) await L.sleep(wait);
    pending.push(trigger(pods[i]));
  }
  await Promise.all(pending);
}

/** Latency of the first revision of each pod's token-read incident; pods with none are left out. */
function tokenReadLatencies(firsts, pods) {
  const found = [];
  for (const p of pods) {
    const f = L.podTokenIncident(firsts.byObject, p.token);
    if (f && (f.rules.includes(RULE) || f.rule === RULE)) found.push(f.latencyMs);
  }
  return found;
}

async function waitWatched(pods) {
  const deadline = Date.now() + 30_000;
  while (!pods.every((p) => L.auditRules().some((r) => r.includes(p.dir)))) {
    if (Date.now() > deadline) throw new Error('the agent did not watch every pod volume in 30 s');
    await L.sleep(200);
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
  const n = Number(L.arg('--triggers', quick ? '20' : '40'));
  const execRate = Number(L.arg('--exec-rate', '1600'));
  const release = await L.acquireLock();
  const before = L.snapshotAuditState();
  const loadPod = L.createPodTokenVolume();
  const idlePods = Array.from({ length: n }, () => L.createPodTokenVolume());
  const busyPods = Array.from({ length: n }, () => L.createPodTokenVolume());
  const workDir = L.mkWorkDir('latency');
  let agent = null;
  let firsts = null;
  try {
    agent = await L.startAgent({ workDir, podVolume: loadPod });
    await waitWatched([loadPod, ...idlePods, ...busyPods]);
    firsts = L.watchFirstRevisions(agent.db);
    await L.sleep(1000);
    L.log(`latency: idle, ${n} triggers`);
    await fire(idlePods);

    L.log(`latency: under ${execRate} exec/s, ${n} triggers`);
    const seconds = Math.ceil(n / 10) + 4;
    const load = L.runLoadgen({ opsRate: execRate / EXEC_SHARE, seconds, workers: 2, open: loadPod.token, mix: MIX });
    await L.sleep(2000);
    await fire(busyPods);
    const gen = await load;
    await L.waitAgentDrained(agent);
    await L.sleep(1500);
    await agent.stop();
    firsts.close();
    const result = {
      scenario: 'latency',
      rule: RULE,
      loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3),
      firstSeenPastRevision1: firsts.late,
      idle: summary(tokenReadLatencies(firsts, idlePods), n),
      load: { ...summary(tokenReadLatencies(firsts, busyPods), n), execPerSec: gen.exec / gen.seconds, generator: gen },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    firsts?.close();
    if (agent) await agent.stop().catch((e) => L.log(String(e)));
    for (const p of [loadPod, ...idlePods, ...busyPods]) p.cleanup();
    L.checkRestored(before, 'latency');
    release();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
