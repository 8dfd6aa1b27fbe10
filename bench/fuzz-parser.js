#!/usr/bin/env node
/*
 * Bad-input endurance: >= 1 million mutated real audit records through the built parser +
 * reassembler + detector (dist/), the same objects `credwatch run` and `replay` use.
 *
 * Records come from every auditd log in test/fixtures/audit and test/fixtures/behaviours; each is either passed through
 * untouched (so events still form and detections still run) or damaged by 1-4 mutations drawn from a
 * seeded PRNG: byte flips, truncation, duplication of a span, splicing with another record, a huge
 * run of one byte (up to 64 KiB), deletion; 1 in 50 records is random bytes. Each pass over the
 * corpus gets fresh serials and times first (so untouched events stay distinct events); mutations
 * then damage stamps too, so reordering, reused serials and absurd stamps all occur.
 *
 * Prints records/s, parse errors, decode problems, events, findings, exceptions (must be 0) and peak
 * RSS. Exit 1 when an exception escaped or RSS grew past --max-rss-mb.
 *
 *   npx tsc -p tsconfig.build.json && node scripts/copy-assets.js
 *   node --expose-gc bench/fuzz-parser.js [--records 1000000] [--seed 1] [--max-rss-mb 512]
 * (with --max-old-space-size=256 a run of millions still completes: memory is bounded, V8 just
 * collects lazily when it may grow)
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist', 'src');
const { Reassembler } = require(path.join(DIST, 'audit', 'reassembler.js'));
const { createHostStages } = require(path.join(DIST, 'pipeline', 'host-stages.js'));
const { logLineHeader } = require(path.join(DIST, 'sources', 'auditlog.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const TOTAL = Number(arg('--records', '1000000'));
const SEED = Number(arg('--seed', '1'));
const MAX_RSS_MB = Number(arg('--max-rss-mb', '512'));

/** mulberry32: small, seedable, good enough to pick mutations reproducibly. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(SEED);
const int = (n) => Math.floor(rand() * n);

function corpus() {
  const out = [];
  const walk = (dir) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (fs.statSync(p).isDirectory()) {
        if (name !== 'golden') walk(p);
      } else if (name.endsWith('.log')) {
        for (const l of fs.readFileSync(p, 'latin1').split('\n')) if (l.includes('audit(')) out.push(l);
      }
    }
  };
  walk(path.join(ROOT, 'test', 'fixtures', 'audit'));
  // Recorded credential-theft behaviours, so that detections fire on the untouched copies.
  walk(path.join(ROOT, 'test', 'fixtures', 'behaviours'));
  return out;
}

const STAMP = /audit\((\d+)\.(\d{3}):(\d+)\)/;

/** A line cut around its `audit(SEC.MS:SERIAL)` stamp so that copies can get fresh stamps. */
function splitStamp(line) {
  const m = STAMP.exec(line);
  if (!m) return { head: line, ms: -1, serial: 0, tail: '' };
  return { head: line.slice(0, m.index), ms: Number(m[1]) * 1000 + Number(m[2]), serial: Number(m[3]), tail: line.slice(m.index + m[0].length) };
}

/** Copy k of the corpus: every serial moved by k * 10^6 and every time by k hours, as replay's bench does. */
function restamp(p, k) {
  if (p.ms < 0) return p.head;
  const ms = p.ms + k * 3_600_000;
  return `${p.head}audit(${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}:${p.serial + k * 1_000_000})${p.tail}`;
}

function mutate(line, pool) {
  if (int(50) === 0) {
    const n = int(400);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(int(256));
    return s;
  }
  if (int(3) === 0) return line; // untouched: keeps events and detections flowing
  let s = line;
  const count = 1 + int(4);
  for (let k = 0; k < count; k++) {
    const at = int(s.length + 1);
    switch (int(6)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(int(256)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at);
        break;
      case 2: {
        const len = 1 + int(200);
        s = s.slice(0, at + len) + s.slice(at, at + len) + s.slice(at);
        break;
      }
      case 3: {
        const o = pool[int(pool.length)];
        s = s.slice(0, at) + o.slice(int(o.length));
        break;
      }
      case 4:
        s = s.slice(0, at) + String.fromCharCode(int(256)).repeat(1 + int(int(20) === 0 ? 65536 : 300)) + s.slice(at);
        break;
      default:
        s = s.slice(0, at) + s.slice(at + 1 + int(50));
    }
  }
  return s;
}

function main() {
  const pool = corpus();
  let clock = Date.now();
  let exceptions = 0;
  let findings = 0;
  let events = 0;
  let problems = 0;
  let peakRss = process.memoryUsage().rss;
  const firstErrors = [];
  const detector = createHostStages({ host: 'fuzz', users: null, now: () => clock });
  const onEvent = (ev) => {
    events++;
    problems += ev.problems ? ev.problems.length : 0;
    try {
      findings += detector.onAuditEvent(ev).length;
    } catch (e) {
      exceptions++;
      if (firstErrors.length < 5) firstErrors.push(`detector: ${e && e.stack}`);
    }
  };
  const reassembler = new Reassembler({ onEvent, now: () => clock, maxAgeMs: 2000 });
  const t0 = process.hrtime.bigint();
  let pushed = 0;
  const stamped = pool.map(splitStamp);
  for (let i = 0; i < TOTAL; i++) {
    const line = mutate(restamp(stamped[i % pool.length], Math.floor(i / pool.length)), pool);
    const h = logLineHeader(line);
    try {
      reassembler.push({ type: h.type, text: line }, h.node);
    } catch (e) {
      exceptions++;
      if (firstErrors.length < 5) firstErrors.push(`reassembler: ${e && e.stack}\n  input: ${JSON.stringify(line.slice(0, 300))}`);
    }
    pushed++;
    // One simulated millisecond per 10 records; tick as the daemon does (about once a second).
    if ((i & 1023) === 0) {
      clock += 100;
      try {
        reassembler.tick(clock);
        findings += detector.tick(clock).length;
      } catch (e) {
        exceptions++;
        if (firstErrors.length < 5) firstErrors.push(`tick: ${e && e.stack}`);
      }
      const rss = process.memoryUsage().rss;
      if (rss > peakRss) peakRss = rss;
    }
  }
  reassembler.flush();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  let heapAfterGcMB = null;
  if (typeof global.gc === 'function') {
    global.gc();
    heapAfterGcMB = Number((process.memoryUsage().heapUsed / 1048576).toFixed(1));
  }
  const s = reassembler.stats;
  const result = {
    records: pushed,
    seconds: Number(secs.toFixed(2)),
    recordsPerSec: Math.round(pushed / secs),
    parseErrors: s.parseErrors,
    decodeErrors: s.decodeErrors,
    eventProblems: problems,
    events,
    incomplete: s.incomplete,
    evicted: s.evicted,
    lateRecords: s.lateRecords,
    findings,
    exceptions,
    peakRssMB: Number((peakRss / 1048576).toFixed(1)),
    // Live heap at the end (run with --expose-gc): what the pipeline retains, not what V8 has yet to collect.
    heapAfterGcMB,
    corpusLines: pool.length,
    seed: SEED,
  };
  console.log(JSON.stringify(result, null, 2));
  for (const e of firstErrors) console.error(e);
  if (exceptions > 0 || result.peakRssMB > MAX_RSS_MB) process.exit(1);
}

main();
