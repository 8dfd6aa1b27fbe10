#!/usr/bin/env node
/*
 * The live path's JavaScript cost, in one process (issue 23): the records of a real benign load
 * (bench/live-load.js's mix at 1,000 exec/s, recorded by Debian's auditd with the agent's own kernel
 * rules) go through the reader thread's triage (the addon's triageRecords hook: the same C++ code) and
 * then into an AuditPipeline in batches of 25 ms of event time, as the reader's linger sends them.
 * Prints CPU per exec and per event, and the V8 heap after each round, so a change to the main
 * thread's per-event work can be measured (and profiled: --cpu-prof) in seconds, without the kernel.
 *
 * Not in it: the reader thread itself (recvmmsg, the triage's own CPU), DeliverToJs (records become
 * JS objects in C++ on the live path; here they already are), /proc snapshots (the recorded pids are
 * gone), metrics. bench/live-load.js measures the whole agent.
 *
 * The log is recorded once when missing (needs root, auditd and gcc; takes the lab lock):
 *   CREDWATCH_BENCH_KEEP_AUDITD_LOG=.bench-data/live-mix-1000.log node bench/live-load.js --rates 1000 --seconds 20
 *
 *   npm run build:ts && node bench/live-pipeline.js [--log PATH] [--rounds 5] [--json]
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const D = path.join(__dirname, '..', 'dist', 'src');
const { loadNative } = require(path.join(D, 'native/binding'));
const { createHostStages } = require(path.join(D, 'pipeline/host-stages'));
const { nativeTriageFor } = require(path.join(D, 'daemon/native-triage'));
const { AuditPipeline } = require(path.join(D, 'pipeline/audit-pipeline'));
const { ProcessTable } = require(path.join(D, 'enrich/process-table'));
const { logLineHeader } = require(path.join(D, 'sources/auditlog'));
const { readAuditStamp, auditStamp } = require(path.join(D, 'audit/record'));

const arg = (n, d) => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : d);
const LOG = arg('--log', path.join(__dirname, '..', '.bench-data', 'live-mix-1000.log'));
const ROUNDS = Number(arg('--rounds', '5'));
const LINGER_MS = 25;
const EOE = 1320;

function recordLog() {
  if (fs.existsSync(LOG)) return;
  process.stderr.write(`live-pipeline: recording ${LOG} (20 s of bench/live-load.js at 1,000 exec/s)\n`);
  fs.mkdirSync(path.dirname(LOG), { recursive: true });
  execFileSync(process.execPath, [path.join(__dirname, 'live-load.js'), '--rates', '1000', '--seconds', '20', '--json'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, CREDWATCH_BENCH_KEEP_AUDITD_LOG: LOG },
  });
}

/**
 * The log's records as the netlink socket gives them ({type, text: "audit(...): body"}), each event
 * closed by an EOE as the kernel sends one (auditd does not write them), and its time in ms.
 */
function netlinkRecords(text) {
  const out = [];
  let lastSerial = null;
  let lastHeader = null;
  for (const line of text.split('\n')) {
    const { type } = logLineHeader(line);
    const at = line.indexOf('audit(');
    if (type === 0 || at < 0 || (type >= 1100 && type < 1300)) continue; // unknown, or auditd's own DAEMON_*/USER_* lines
    if (readAuditStamp(line, at + 6) !== null) continue;
    const header = line.slice(at, auditStamp.end + 3); // `audit(SEC.MS:SERIAL): `
    if (lastSerial !== null && auditStamp.serial !== lastSerial) out.push({ type: EOE, text: lastHeader, ms: 0 });
    lastSerial = auditStamp.serial;
    lastHeader = header;
    out.push({ type, text: line.slice(at), ms: auditStamp.sec * 1000 + auditStamp.ms });
  }
  if (lastHeader) out.push({ type: EOE, text: lastHeader, ms: 0 });
  return out;
}

/** The reader's items for the records, cut into the batches its 25 ms linger makes (by event time). */
function readerBatches(native, spec, records) {
  const batches = [];
  let start = 0;
  let t0 = records[0]?.ms ?? 0;
  for (let i = 0; i <= records.length; i++) {
    const r = records[i];
    if (i < records.length && (r.ms === 0 || r.ms - t0 < LINGER_MS || r.type === EOE)) continue;
    const slice = records.slice(start, i).map(({ type, text }) => ({ type, text }));
    if (slice.length > 0) batches.push(slice);
    start = i;
    if (r) t0 = r.ms;
  }
  // One triage over everything, as the reader thread's state (held events, repeat cache) carries on,
  // then its items cut into as many batches of equal size (the triage reorders what it holds, so the
  // items cannot be cut at the same records).
  const all = native.triageRecords(spec, batches.flat()).items.map(({ type, text }) => ({ type, text }));
  const size = Math.ceil(all.length / batches.length);
  const out = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function main() {
  recordLog();
  const records = netlinkRecords(fs.readFileSync(LOG, 'latin1'));
  const execs = records.filter((r) => r.type === 1309).length; // one EXECVE record per exec
  const events = records.filter((r) => r.type === EOE).length;
  const native = loadNative();
  const stages = createHostStages({ host: 'bench', users: null, processTable: new ProcessTable() });
  const spec = nativeTriageFor(stages.detector).spec;
  const batches = readerBatches(native, spec, records);
  const items = batches.reduce((n, b) => n + b.length, 0);
  let findings = 0;
  // One pipeline across rounds: a live agent's process table and incidents stay full and warm.
  const pipeline = new AuditPipeline({ stages, live: true, nativeProcSnapshots: true, onFindings: (f) => (findings += f.length) });
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = cpuUs();
    for (const b of batches) pipeline.pushBatch(b);
    const us = cpuUs() - t0;
    if (global.gc) global.gc();
    const heap = process.memoryUsage();
    rounds.push({ usPerExec: us / execs, usPerEvent: us / events, heapUsedMiB: heap.heapUsed / 2 ** 20, rssMiB: heap.rss / 2 ** 20 });
  }
  pipeline.flush();
  const steady = rounds.slice(1);
  const best = Math.min(...steady.map((x) => x.usPerExec));
  const result = {
    scenario: 'live-pipeline',
    log: path.basename(LOG),
    execs,
    events,
    items,
    batches: batches.length,
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3),
    rounds,
    bestUsPerExec: best,
    // At 1,000 exec/s, the main thread's share of one core this work alone would take.
    percentAt1000ExecPerSec: (best * 1000) / 1e4,
    findings,
    detector: { events: stages.detector.stats.events, repeats: stages.detector.stats.repeats },
  };
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(
      `live pipeline, ${execs} execs / ${events} events / ${items} reader items in ${batches.length} batches (load ${result.loadavg.join(' ')}):\n` +
        rounds.map((x, i) => `  round ${i + 1}: ${x.usPerExec.toFixed(2)} us/exec, ${x.usPerEvent.toFixed(2)} us/event, heap ${x.heapUsedMiB.toFixed(1)} MiB, rss ${x.rssMiB.toFixed(1)} MiB\n`).join('') +
        `  best after the first: ${best.toFixed(2)} us/exec = ${result.percentAt1000ExecPerSec.toFixed(2)}% of a core at 1,000 exec/s\n`,
    );
  }
}

main();
