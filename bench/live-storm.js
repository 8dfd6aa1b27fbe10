#!/usr/bin/env node
/*
 * Alert storm (issue 17): 1,000 new processes a second for 60 s, each one connecting to
 * /var/run/docker.sock (bench/loadgen.c --child-connect: fork, connect, exit) — every one a true H7 hit —
 * while `credwatch run` runs with its default rules; then the same load and the agent's exact kernel
 * rules under Debian's auditd writing a RAW log to a tmpfs, in the same run, for the CPU ratio.
 *
 * During the storm an unrelated attack runs every few seconds: `cat` of a pod service-account token
 * under /var/lib/kubelet/pods/<uid>/... (H3; one pod volume per attack, so each is its own behaviour).
 * Its latency is syscall time (the finding's audit time) -> finding committed (findings.stored_ms).
 *
 * Reported per daemon: CPU % (utime+stime delta / load seconds), peak RSS, kernel `lost` delta; for the
 * agent also drops by cause, findings stored (rows) against distinct behaviours (1 storm + the attacks),
 * the storm incident's count and revision, and the attack latencies (p50/p99/max).
 *
 *   flock /tmp/credwatch-lab.lock node bench/live-storm.js [--seconds 60] [--rate 1000] [--attacks 20] [--json]
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { setInterval, clearInterval } = require('node:timers');
const L = require('./lib');

const SOCKET = '/var/run/docker.sock';

function runAttacks(pods, seconds) {
  const every = (seconds * 1000) / (pods.length + 1);
  const done = [];
  let i = 0;
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (i >= pods.length) {
        clearInterval(t);
        Promise.all(done).then(resolve);
        return;
      }
      const pod = pods[i++];
      done.push(
        new Promise((r) => {
          const child = spawn('cat', [pod.token], { stdio: 'ignore' });
          child.on('exit', r);
          child.on('error', r);
        }),
      );
    }, every);
  });
}

async function measure(kind, { seconds, rate, pods, rules }) {
  const workDir = L.mkWorkDir(`storm-${kind}`);
  let firsts = null;
  const daemon = kind === 'agent' ? await L.startAgent({ workDir, podVolume: pods[pods.length - 1] }) : await L.startAuditd({ workDir, rules, backlogLimit: 8192 });
  try {
    if (kind === 'agent') {
      // Every attack's pod volume must be watched before the load starts.
      const deadline = Date.now() + 20_000;
      while (!pods.every((p) => L.auditRules().some((r) => r.includes(p.dir)))) {
        if (Date.now() > deadline) throw new Error('the agent did not watch every pod volume in 20 s');
        await L.sleep(200);
      }
      firsts = L.watchFirstRevisions(daemon.db);
    }
    await L.sleep(1000);
    const m0 = kind === 'agent' ? await daemon.metrics() : null;
    const w = await L.measureWindow(daemon.pid, async () => {
      const [gen] = await Promise.all([L.runLoadgen({ opsRate: rate, seconds, mix: '1:0:0', unix: SOCKET, childConnect: true }), runAttacks(pods, seconds)]);
      return { gen, drainMs: kind === 'agent' ? await L.waitAgentDrained(daemon) : await L.waitAuditdDrained(daemon) };
    });
    const { gen, drainMs } = w.result;
    const out = {
      generator: gen,
      processesPerSec: gen.exec / gen.seconds,
      cpuPercent: (w.cpuSecs / gen.seconds) * 100,
      cpuSecs: w.cpuSecs,
      peakRssMiB: w.peakRssMiB,
      kernelLost: w.kernelLost,
      drainMs,
      windowSecs: w.windowSecs,
    };
    if (kind === 'agent') {
      // Let the last tick emit the storm incident's final revision and the writer commit it.
      await L.sleep(1500);
      const m1 = await daemon.metrics();
      const drops = L.dropsBetween(m0, m1);
      out.drops = drops;
      out.dropsTotal = Object.values(drops).reduce((a, b) => a + b, 0);
      out.signals = {};
      for (const k of Object.keys(m1)) if (k.startsWith('credwatch_stream_signals_total')) out.signals[/kind="([^"]*)"/.exec(k)?.[1] ?? k] = m1[k] - (m0[k] ?? 0);
      // Repeat collapse (native/repeat_cache.h, src/detect/repeat-outcomes.ts), by outcome.
      out.repeats = {};
      for (const k of Object.keys(m1)) if (k.startsWith('credwatch_repeats_total')) out.repeats[/outcome="([^"]*)"/.exec(k)?.[1] ?? k] = m1[k] - (m0[k] ?? 0);
      out.events = L.sumSeries(m1, 'credwatch_events_total') - L.sumSeries(m0, 'credwatch_events_total');
      out.findingsOpened = L.sumSeries(m1, 'credwatch_findings_total') - L.sumSeries(m0, 'credwatch_findings_total');
      out.kernelRules = L.agentRulesForAuditd(daemon.rules);
      await daemon.stop();
      firsts.close();
      Object.assign(out, readStore(daemon.db, pods, firsts));
    }
    return out;
  } finally {
    firsts?.close();
    await daemon.stop().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * The behaviour key actor (src/detect/behaviour-key.ts) of this bench's own processes (the load and the
 * attacks): the audit login session if there is one, else the topmost ancestor below pid 1. On a shared
 * machine other people's processes touch the docker socket during the run too: their incidents are other
 * behaviours and are reported apart, not counted against this bench's storm.
 */
function ownActor() {
  const ses = fs.readFileSync('/proc/self/sessionid', 'utf8').trim();
  if (ses !== '4294967295' && /^\d+$/.test(ses)) return `host-session:${ses}`;
  let pid = process.pid;
  let top = null;
  for (let i = 0; i < 64 && pid > 1; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    top = `host:${pid}:${f[19]}`;
    pid = Number(f[1]);
  }
  return top;
}

/**
 * What the agent stored: rows, by rule, the storm incident, and each attack's latency (that of the
 * attack incident's first revision: bench/lib.js watchFirstRevisions).
 */
function readStore(dbPath, pods, firsts) {
  const Database = require(path.join(__dirname, '..', 'node_modules', 'better-sqlite3'));
  const db = new Database(dbPath, { readonly: true });
  try {
    const all = db.prepare('SELECT json FROM findings').all().map((r) => JSON.parse(r.json));
    const me = ownActor();
    const findings = all.filter((f) => f.incident?.actor === me);
    const others = all.filter((f) => f.incident?.actor !== me);
    const byRule = {};
    for (const f of findings) byRule[f.rule] = (byRule[f.rule] ?? 0) + 1;
    const storm = findings.filter((f) => f.incident?.object === `unix:${SOCKET.replace(/^\/var\/run\//, '/run/')}`);
    const latencies = [];
    let attacksFound = 0;
    for (const p of pods) {
      const f = L.podTokenIncident(firsts.byObject, p.token);
      if (!f) continue;
      attacksFound++;
      latencies.push(f.latencyMs);
    }
    latencies.sort((a, b) => a - b);
    return {
      benchActor: me,
      firstSeenPastRevision1: firsts.late,
      storedFindings: findings.length,
      otherActors: others.map((f) => ({ actor: f.incident?.actor ?? null, object: f.incident?.object ?? null, rule: f.rule, count: f.count ?? 1 })),
      storedByRule: byRule,
      stormIncidents: storm.map((f) => ({ id: f.id, actor: f.incident?.actor, rules: f.rules, count: f.count, revision: f.revision, evidence: f.evidence?.length })),
      attacks: pods.length,
      attacksFound,
      attackLatencyMs: { p50: L.percentile(latencies, 50), p99: L.percentile(latencies, 99), max: latencies[latencies.length - 1] ?? null, all: latencies },
    };
  } finally {
    db.close();
  }
}

function table(r) {
  const a = r.agent;
  const d = r.auditd;
  const f = (n, digits = 1) => (n === null || n === undefined ? '-' : Number(n).toFixed(digits));
  return [
    `storm: ${r.rate} new processes/s x ${r.seconds} s, each connecting to ${SOCKET}; ${r.attacks} unrelated token reads during it`,
    '',
    '| | agent | auditd |',
    '|---|---|---|',
    `| processes/s reached | ${f(a.processesPerSec, 0)} | ${f(d?.processesPerSec, 0)} |`,
    `| CPU % of one core | ${f(a.cpuPercent)} | ${f(d?.cpuPercent)} |`,
    `| CPU ratio agent/auditd | ${f(r.cpuRatio, 2)} | |`,
    `| peak RSS MiB | ${f(a.peakRssMiB)} | ${f(d?.peakRssMiB)} |`,
    `| kernel lost | ${a.kernelLost} | ${d?.kernelLost ?? '-'} |`,
    `| agent drops | ${a.dropsTotal} ${JSON.stringify(a.drops)} | |`,
    `| findings stored / distinct behaviours (this bench's actor) | ${a.storedFindings} / ${1 + r.attacks} ${JSON.stringify(a.storedByRule)} | |`,
    `| findings of other actors (other users of the machine) | ${a.otherActors.length} ${JSON.stringify(a.otherActors.map((o) => `${o.actor} ${o.object} x${o.count}`))} | |`,
    `| storm incident(s) | ${a.stormIncidents.map((s) => `count ${s.count}, revision ${s.revision}, rules ${s.rules?.join('+')}`).join('; ')} | |`,
    `| repeat collapse | ${JSON.stringify(a.repeats ?? {})} | |`,
    `| attacks found | ${a.attacksFound} / ${a.attacks} | |`,
    `| attack latency ms p50 / p99 / max | ${a.attackLatencyMs.p50} / ${a.attackLatencyMs.p99} / ${a.attackLatencyMs.max} | |`,
    `| load average at start | ${r.loadavg.join(' ')} | |`,
  ].join('\n');
}

async function main() {
  const seconds = Number(L.arg('--seconds', '60'));
  const rate = Number(L.arg('--rate', '1000'));
  const attacks = Number(L.arg('--attacks', '20'));
  const release = await L.acquireLock();
  const before = L.snapshotAuditState();
  const pods = Array.from({ length: attacks }, () => L.createPodTokenVolume());
  try {
    const loadavg = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3);
    L.log(`live-storm: agent, ${rate} processes/s, ${seconds} s`);
    const agent = await measure('agent', { seconds, rate, pods });
    L.checkRestored(before, 'agent run');
    let auditd = null;
    if (!L.flag('--no-auditd')) {
      L.log(`live-storm: auditd, same rules and load`);
      auditd = await measure('auditd', { seconds, rate, pods, rules: agent.kernelRules });
      L.checkRestored(before, 'auditd run');
    }
    delete agent.kernelRules;
    const result = { scenario: 'live-storm', seconds, rate, attacks, loadavg, agent, auditd, cpuRatio: auditd && auditd.cpuPercent > 0 ? agent.cpuPercent / auditd.cpuPercent : null };
    process.stdout.write(L.flag('--json') ? JSON.stringify(result) + '\n' : table(result) + '\n\n' + JSON.stringify(result) + '\n');
  } finally {
    for (const p of pods) p.cleanup();
    L.checkRestored(before, 'storm');
    release();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
