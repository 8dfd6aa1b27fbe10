#!/usr/bin/env node
/*
 * Replay throughput: `credwatch replay --events` against Debian's `ausearch -i -if` on the same large
 * real log, in the same run.
 *
 * Input: a real auditd log recorded on this machine by bench/replay-throughput-record.sh (execve,
 * openat and connect rules under a workload; .bench-data/replay-sample.log). A few seconds give
 * tens of thousands of events; to reach >= 1 million the sample is replicated with rewritten
 * serials and timestamps (copy k shifts every serial by k * span and every timestamp by k * duration,
 * so events stay unique and in order). Records themselves are untouched. Kept out of git
 * (.bench-data/ is ignored).
 *
 * Each tool runs in its own process with stdout piped to this script, which only counts output
 * (newlines for replay, `----` separators for ausearch), so both pay the same pipe cost.
 *
 *   npx tsc -p tsconfig.build.json && node scripts/copy-assets.js
 *   sudo bench/replay-throughput-record.sh 8        # once; needs root and the lab lock
 *   node bench/replay-throughput.js [--events N] [--replay-runs 3] [--skip-ausearch] [--json]
 *
 * Also times replay in findings mode (no --events: detection on, findings printed), counting events
 * from its --stats line.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const DATA = path.join(ROOT, '.bench-data');
const SAMPLE = path.join(DATA, 'replay-sample.log');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const TARGET_EVENTS = Number(arg('--events', '1000000'));
const REPLAY_RUNS = Number(arg('--replay-runs', '3'));
const SKIP_AUSEARCH = process.argv.includes('--skip-ausearch');

const STAMP = /audit\((\d+)\.(\d{3}):(\d+)\)/;

/** Kernel records of the sample (auditd's own DAEMON_* lines carry a separate serial counter). */
function readSample() {
  if (!fs.existsSync(SAMPLE)) {
    console.error(`no ${SAMPLE}: record one first with: sudo bench/replay-throughput-record.sh`);
    process.exit(1);
  }
  const lines = fs.readFileSync(SAMPLE, 'latin1').split('\n').filter((l) => l !== '' && !l.startsWith('type=DAEMON_'));
  let minSerial = Infinity, maxSerial = 0, minMs = Infinity, maxMs = 0;
  const stamps = new Set();
  for (const l of lines) {
    const m = STAMP.exec(l);
    if (!m) continue;
    const serial = Number(m[3]);
    const ms = Number(m[1]) * 1000 + Number(m[2]);
    stamps.add(m[3]);
    if (serial < minSerial) minSerial = serial;
    if (serial > maxSerial) maxSerial = serial;
    if (ms < minMs) minMs = ms;
    if (ms > maxMs) maxMs = ms;
  }
  return { lines, events: stamps.size, serialSpan: maxSerial - minSerial + 1, msSpan: maxMs - minMs + 1000 };
}

async function buildLargeLog(sample) {
  const copies = Math.ceil(TARGET_EVENTS / sample.events);
  const file = path.join(DATA, `replay-${copies}x.log`);
  const sampleMtime = fs.statSync(SAMPLE).mtimeMs;
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs > sampleMtime) return { file, copies, events: copies * sample.events };
  const tmp = `${file}.tmp`;
  const out = fs.createWriteStream(tmp, { encoding: 'latin1' });
  for (let k = 0; k < copies; k++) {
    const parts = [];
    for (const l of sample.lines) {
      const m = STAMP.exec(l);
      if (!m) continue;
      const ms = Number(m[1]) * 1000 + Number(m[2]) + k * sample.msSpan;
      const serial = Number(m[3]) + k * sample.serialSpan;
      const stamp = `audit(${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}:${serial})`;
      parts.push(l.slice(0, m.index) + stamp + l.slice(m.index + m[0].length));
    }
    if (!out.write(parts.join('\n') + '\n')) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r, j) => out.end((e) => (e ? j(e) : r())));
  fs.renameSync(tmp, file);
  return { file, copies, events: copies * sample.events };
}

/** Runs cmd with stdout piped here; counts occurrences of `needle` at line starts. */
function timed(cmd, args, countLinesStartingWith) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Max RSS and CPU seconds (user + sys): on a machine shared with other work, CPU time is what
    // a run costs, wall time also measures how often it was scheduled.
    const child = spawn('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let count = 0;
    let partial = '';
    child.stdout.on('data', (buf) => {
      if (countLinesStartingWith === null) {
        for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) count++;
        return;
      }
      const s = partial + buf.toString('latin1');
      let from = 0;
      for (;;) {
        const nl = s.indexOf('\n', from);
        if (nl < 0) break;
        if (s.startsWith(countLinesStartingWith, from)) count++;
        from = nl + 1;
      }
      partial = s.slice(from);
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const lines = err.trim().split('\n');
      const [rss, user, sys] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
      const maxRssKb = rss;
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err.slice(0, 500)}`));
      resolve({ secs, cpuSecs: user + sys, count, maxRssKb, stderr: lines.slice(0, -1).join('\n') });
    });
  });
}

const JSON_OUT = process.argv.includes('--json');
// With --json, stdout carries one JSON line; the human lines go to stderr.
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

function median(runs) {
  const sorted = [...runs].sort((x, y) => x.secs - y.secs);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const sample = readSample();
  const { file, copies, events } = await buildLargeLog(sample);
  const size = fs.statSync(file).size;
  say(`input: ${path.relative(ROOT, file)} — ${(size / 2 ** 20).toFixed(0)} MiB, ${copies} copies of a ${sample.events}-event sample recorded here = ${events} events`);

  const cli = path.join(ROOT, 'bin/credwatch');
  const runs = [];
  for (let i = 0; i < REPLAY_RUNS; i++) {
    const r = await timed(process.execPath, [cli, 'replay', '--events', '--stats', file], null);
    runs.push(r);
    say(`credwatch replay --events   run ${i + 1}: ${r.count} events in ${r.secs.toFixed(2)} s (${r.cpuSecs.toFixed(2)} s CPU) = ${Math.round(r.count / r.secs)} events/s, max RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB`);
    if (i === 0) say(`  ${r.stderr}`);
  }
  const replay = median(runs);
  const replayRate = replay.count / replay.secs;
  say(`credwatch replay --events   median: ${Math.round(replayRate)} events/s`);

  // Findings mode (no --events): the daemon's pipeline with detection; events counted from --stats.
  const fruns = [];
  for (let i = 0; i < REPLAY_RUNS; i++) {
    const r = await timed(process.execPath, [cli, 'replay', '--json', '--stats', file], null);
    const m = /(\d+) events/.exec(r.stderr);
    r.events = m ? Number(m[1]) : 0;
    fruns.push(r);
    say(`credwatch replay (findings) run ${i + 1}: ${r.events} events, ${r.count} findings in ${r.secs.toFixed(2)} s (${r.cpuSecs.toFixed(2)} s CPU) = ${Math.round(r.events / r.secs)} events/s, max RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB`);
  }
  const f = median(fruns);
  const findingsRate = f.events / f.secs;
  say(`findings mode / --events: ${(f.secs / replay.secs).toFixed(2)}x wall, ${(f.cpuSecs / replay.cpuSecs).toFixed(2)}x CPU`);

  const result = {
    scenario: 'replay',
    file: path.relative(ROOT, file),
    fileMiB: size / 2 ** 20,
    events,
    replayEvents: { events: replay.count, secs: replay.secs, cpuSecs: replay.cpuSecs, eventsPerSec: replayRate, maxRssMiB: Math.max(...runs.map((r) => r.maxRssKb)) / 1024 },
    replayFindings: { events: f.events, findings: f.count, secs: f.secs, cpuSecs: f.cpuSecs, eventsPerSec: findingsRate, maxRssMiB: Math.max(...fruns.map((r) => r.maxRssKb)) / 1024 },
    findingsVsEvents: { wall: f.secs / replay.secs, cpu: f.cpuSecs / replay.cpuSecs },
    ausearch: null,
    ratio: null,
  };
  if (!SKIP_AUSEARCH) {
    const a = await timed('ausearch', ['-i', '-if', file], '----');
    const aRate = a.count / a.secs;
    say(`ausearch -i -if             : ${a.count} events in ${a.secs.toFixed(2)} s (${a.cpuSecs.toFixed(2)} s CPU) = ${Math.round(aRate)} events/s, max RSS ${(a.maxRssKb / 1024).toFixed(0)} MiB`);
    say(`ratio: credwatch replay is ${(replayRate / aRate).toFixed(1)}x ausearch -i`);
    say(`time / ausearch's: replay --events ${(replay.secs / a.secs).toFixed(3)} wall, ${(replay.cpuSecs / a.cpuSecs).toFixed(3)} CPU; findings ${(f.secs / a.secs).toFixed(3)} wall, ${(f.cpuSecs / a.cpuSecs).toFixed(3)} CPU`);
    result.ausearch = { events: a.count, secs: a.secs, cpuSecs: a.cpuSecs, eventsPerSec: aRate, maxRssMiB: a.maxRssKb / 1024 };
    result.timeVsAusearch = { eventsWall: replay.secs / a.secs, eventsCpu: replay.cpuSecs / a.cpuSecs, findingsWall: f.secs / a.secs, findingsCpu: f.cpuSecs / a.cpuSecs };
    result.ratio = replayRate / aRate;
    result.ratioFindings = findingsRate / aRate;
  }
  if (JSON_OUT) process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
