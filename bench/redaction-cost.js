#!/usr/bin/env node
/*
 * Redaction cost on hostile command lines (issue 15 item 3). For each case, an argv of about 524 KB:
 *   bounded  redactBoundedArgv (what the engine runs: windows over what a finding keeps)
 *   full     redactArgv then boundArgv (every byte through the text rules: the earlier way; 26 s on
 *            'http://a:b@ ' repeated before the Name: value rule stopped scanning every value)
 *   peer     JSON.stringify(argv): a linear pass over the same bytes, timed in the same run, so the
 *            ratio bounded/peer says "a few passes per byte" whatever the machine's load.
 * Then the engine's first finding on the 524 KB kubectl line (detector.onAuditEvent, cold and warm).
 * Prints one JSON line per case (median ms of 5 runs), then a summary line (`npm run bench -- --only
 * redaction` reads it).
 *
 *   node bench/redaction-cost.js [--bytes 524288] [--full]   (--full also times the earlier way)
 *
 * Needs the build (npm run build:ts). Runs in-process, no root.
 */
'use strict';
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src');
const { redactBoundedArgv, boundArgv } = require(path.join(dist, 'detect/bound.js'));
const { redactArgv } = require(path.join(dist, 'detect/redact.js'));
const { createHostStages } = require(path.join(dist, 'pipeline/host-stages.js'));
const { AuditPipeline } = require(path.join(dist, 'pipeline/audit-pipeline.js'));
const { linesToRecords } = require(path.join(dist, 'sources/auditlog.js'));
const { hostileExecLines, HOSTILE_CASES } = require('./hostile-exec');

const args = process.argv.slice(2);
const at = args.indexOf('--bytes');
const B = at >= 0 ? Number(args[at + 1]) : 524288;
const FULL = args.includes('--full');

const CASES = {
  ...Object.fromEntries(Object.entries(HOSTILE_CASES).map(([k, f]) => [k, f(B).argv])),
  'sh -c words': ['sh', '-c', 'password '.repeat(Math.floor(B / 9))],
  'URL userinfo repeated': ['sh', '-c', 'http://a:b@ '.repeat(Math.floor(B / 12))],
  'Name: value repeated': ['sh', '-c', 'Authorization: '.repeat(Math.floor(B / 15))],
  'percent-encoded words': ['sh', '-c', '%20token'.repeat(Math.floor(B / 8))],
  'JSON of secret flags': ['curl', '-d', JSON.stringify({ a: Array(Math.floor(B / 12)).fill('--token x') })],
  '65k secret flags': Array(Math.floor(B / 8)).fill('--token'),
  'PEM headers': ['sh', '-c', '-----BEGIN PRIVATE KEY-----x-----END '.repeat(Math.floor(B / 37))],
  'escaped JSON backslashes': ['sh', '-c', '\\'.repeat(B - 20) + '"auth\\":\\"x'],
};

function median(fn, runs = 5) {
  const t = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return +t.sort((a, b) => a - b)[Math.floor(runs / 2)].toFixed(3);
}

const rows = [];
for (const [name, argv] of Object.entries(CASES)) {
  const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a), 0);
  const peer = median(() => JSON.stringify(argv));
  const bounded = median(() => redactBoundedArgv(argv));
  const full = FULL ? median(() => boundArgv(redactArgv(argv)), 1) : null;
  const row = { case: name, bytes, boundedMs: bounded, peerMs: peer, ratio: +(bounded / Math.max(peer, 0.001)).toFixed(2), fullMs: full };
  rows.push(row);
  if (!args.includes('--json')) console.log(JSON.stringify(row));
}

// The engine's first finding on the review's 524 KB kubectl line (h5 fires): cold, then warm.
function engineFinding() {
  const text = hostileExecLines({ ...HOSTILE_CASES.kubectlOneArg(B), serial: 1 });
  const times = [];
  for (let i = 0; i < 3; i++) {
    const detector = createHostStages({ host: 'bench', users: null });
    let findings = 0;
    const p = new AuditPipeline({ stages: detector, live: false, onFindings: (f) => (findings += f.length) });
    const recs = linesToRecords(text.replace(/:1\)/g, `:${i + 1})`).trimEnd().split('\n'));
    const s = process.hrtime.bigint();
    p.pushBatch(recs);
    p.flush();
    times.push({ ms: +(Number(process.hrtime.bigint() - s) / 1e6).toFixed(2), findings });
  }
  return times;
}
let engine = null;
try {
  engine = engineFinding();
} catch (err) {
  engine = { error: err.message };
}
const worst = rows.reduce((a, r) => (r.boundedMs > a.boundedMs ? r : a), rows[0]);
console.log(JSON.stringify({ scenario: 'redaction', bytes: B, cases: rows, worstBoundedMs: worst.boundedMs, worstCase: worst.case, maxRatio: Math.max(...rows.map((r) => r.ratio)), engine, load: require('node:os').loadavg() }));
