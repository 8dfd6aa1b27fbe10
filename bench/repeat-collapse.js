#!/usr/bin/env node
/*
 * Repeat collapse, JavaScript side (issue 17): CPU per storm event in the detector pipeline when the
 * reader's repeat notes arrive (native/repeat_cache.h) against the same storm as whole records (what
 * the reader sent before: every event passed by the triage takes the full path). Same process, same
 * run, so the ratio holds under load; the reader thread's own cost is in bench/live-storm.js.
 *
 * The storm: fork children of one process, each connecting to /var/run/docker.sock (a true H7 hit),
 * with the /proc snapshot the reader sends for each new pid. Records go through the native triage
 * (triageRecords test hook) once with repeats on and once off, then into an AuditPipeline in batches.
 *
 *   npm run build:ts && node bench/repeat-collapse.js [--events 60000] [--json] [--notes-only (for --cpu-prof)]
 */
'use strict';
const path = require('node:path');
const D = path.join(__dirname, '..', 'dist', 'src');
const { loadNative } = require(path.join(D, 'native/binding'));
const { createHostStages } = require(path.join(D, 'pipeline/host-stages'));
const { nativeTriageFor } = require(path.join(D, 'daemon/native-triage'));
const { AuditPipeline } = require(path.join(D, 'pipeline/audit-pipeline'));
const { ProcessTable } = require(path.join(D, 'enrich/process-table'));
const { PROC_SNAPSHOT_TYPE } = require(path.join(D, 'native/process-note'));

const arg = (n, d) => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : d);
const EVENTS = Number(arg('--events', '60000'));
const hex = (s) => Buffer.from(s).toString('hex').toUpperCase();

function storm(n) {
  const out = [];
  const title = hex('/usr/local/bin/loadgen\0--child-connect');
  let t = 1_795_355_795_000;
  for (let i = 0; i < n; i++) {
    const serial = 900_000 + i;
    const pid = 20_000 + (i % 30_000);
    t += 1;
    const h = `audit(${Math.floor(t / 1000)}.${String(t % 1000).padStart(3, '0')}:${serial}): `;
    out.push({ type: PROC_SNAPSHOT_TYPE, text: `${pid}\0${19_999}\0${t + i}\0loadgen\0${'0::/user.slice/user-1000.slice/session-3.scope\n'}`, snapshot: true });
    out.push({ type: 1300, text: `${h}arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=7ffe93262170 a2=6e a3=0 items=1 ppid=19999 pid=${pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="loadgen" exe="/usr/local/bin/loadgen" key="credwatch:connect"` });
    out.push({ type: 1306, text: `${h}saddr=${hex('\u0001\u0000/var/run/docker.sock')}` });
    out.push({ type: 1307, text: `${h}cwd="/home/dev"` });
    out.push({ type: 1302, text: `${h}item=0 name="/var/run/docker.sock" inode=16637958 dev=fe:00 mode=0140660 ouid=0 ogid=105 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0` });
    out.push({ type: 1327, text: `${h}proctitle=${title}` });
    out.push({ type: 1320, text: h });
  }
  return out;
}

/** The reader's output for `records`: triage per event (snapshots kept in place, as the reader sends them). */
function readerOutput(native, spec, records) {
  const out = [];
  // One triage run over everything keeps the repeat cache warm, as the reader thread's is.
  const plain = records.filter((r) => !r.snapshot);
  const items = native.triageRecords(spec, plain).items;
  // Put each snapshot back ahead of its event's first item.
  const snaps = records.filter((r) => r.snapshot);
  let s = 0;
  let lastSerial = -1;
  for (const it of items) {
    const m = /audit\(\d+\.\d+:(\d+)\)/.exec(it.text);
    const serial = m ? Number(m[1]) : lastSerial;
    if (serial !== lastSerial && s < snaps.length) out.push(snaps[s++]);
    lastSerial = serial;
    out.push({ type: it.type, text: it.text });
  }
  return out;
}

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function runPipeline(items) {
  const stages = createHostStages({ host: 'bench', users: null, processTable: new ProcessTable() });
  const detector = stages.detector;
  let findings = 0;
  const pipeline = new AuditPipeline({ stages, live: true, nativeProcSnapshots: true, onFindings: (f) => (findings += f.length) });
  const t0 = cpuUs();
  for (let i = 0; i < items.length; i += 600) pipeline.pushBatch(items.slice(i, i + 600));
  pipeline.flush();
  const us = cpuUs() - t0;
  return { usPerEvent: us / EVENTS, findings, stats: detector.stats.repeats, events: detector.stats.events, incidents: detector.stats.incidents.opened };
}

function main() {
  const native = loadNative();
  const base = nativeTriageFor(createHostStages({ host: 'bench', users: null }).detector).spec;
  const records = storm(EVENTS);
  const whole = readerOutput(native, { ...base, repeats: false }, records);
  const notes = readerOutput(native, { ...base, repeats: true }, records);
  if (process.argv.includes('--notes-only')) {
    // For --cpu-prof: the repeat-note path alone.
    for (let i = 0; i < 3; i++) runPipeline(notes);
    return;
  }
  // Warm both paths (JIT), then measure alternately.
  runPipeline(whole.slice(0, 7000));
  runPipeline(notes.slice(0, 7000));
  const full = runPipeline(whole);
  const collapsed = runPipeline(notes);
  const full2 = runPipeline(whole);
  const collapsed2 = runPipeline(notes);
  const r = {
    scenario: 'repeat-collapse',
    events: EVENTS,
    loadavg: require('node:fs').readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3),
    fullUsPerEvent: Math.min(full.usPerEvent, full2.usPerEvent),
    collapsedUsPerEvent: Math.min(collapsed.usPerEvent, collapsed2.usPerEvent),
    collapsedStats: collapsed.stats,
    sameIncidents: full.incidents === collapsed.incidents && full.events === collapsed.events,
  };
  r.ratio = r.collapsedUsPerEvent / r.fullUsPerEvent;
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    process.stdout.write(
      `repeat collapse, ${EVENTS} storm events (JS pipeline CPU, load ${r.loadavg.join(' ')}):\n` +
        `  whole records (full path): ${r.fullUsPerEvent.toFixed(1)} us/event\n` +
        `  repeat notes:              ${r.collapsedUsPerEvent.toFixed(1)} us/event (${(r.ratio * 100).toFixed(0)}% of full)\n` +
        `  ${JSON.stringify(r.collapsedStats)} same incidents opened and events: ${r.sameIncidents}\n`,
    );
  }
}

main();
