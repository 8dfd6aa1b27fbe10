#!/usr/bin/env node
/*
 * What one exec with a ~1.2 MB argv costs (issue 15: it was 50-130 ms an event): 10 arguments of
 * 120 KB, chunked by the kernel into aN[k] hex records (2.4 MB of log text), in three shapes: ASCII
 * letters, words with spaces, and bytes that are not UTF-8 (every one a surrogate escape), and a
 * curl whose last argument ends in a bearer token (rules fire: the finding path is timed too), a shell
 * command that reads the pod token and calls the API with it, then 1.2 MB of arguments (several rules
 * fire on one event), and the curl again with the Sigma corpus (test/fixtures/sigma, the files that load)
 * in a rules directory, as `--rules-dir` loads it (findings stage only). Stages:
 *   build     parse, reassemble, buildEvent with the bounded argv the agent's pipeline builds
 *             (src/audit/argv-bound.ts)
 *   exact     the same with the exact argv (`replay --events`; before the bound, `build` was this)
 *   events    exact + the line `replay --events` prints (redaction by structure, JSON)
 *   findings  the daemon's pipeline with the rule pack (bounded argv and redaction, finding cap)
 *   peer      JSON.stringify of the same argv: one linear pass over the bytes, timed in the same run
 * Median ms of 9 events each (the first 3 warm up), and the load average.
 *
 *   npm run build:ts && node bench/huge-argv.js [--json] [--cpu]
 */
'use strict';
const os = require('node:os');
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src');
const { hostileExecLines } = require('./hostile-exec');
const { Reassembler, REPLAY_REASSEMBLY } = require(path.join(dist, 'audit/reassembler.js'));
const { linesToRecords } = require(path.join(dist, 'sources/auditlog.js'));
const { eventLine } = require(path.join(dist, 'cli/commands/replay.js'));
const { createHostStages } = require(path.join(dist, 'pipeline/host-stages.js'));
const { FindingCap } = require(path.join(dist, 'detect/finding-cap.js'));
const { AuditPipeline } = require(path.join(dist, 'pipeline/audit-pipeline.js'));

const ARGS = 10;
const ARG_BYTES = 120_000;
const WARM = 3;
const RUNS = 9;

const SHAPES = {
  ascii: (k, i) => 0x61 + ((k * 7 + i) % 26),
  words: (k, i) => (k % 9 === 0 ? 0x20 : 0x61 + ((k + i) % 26)),
  nonUtf8: (k, i) => 0x80 + ((k * 31 + i) % 128),
  curlToken: null,
  multiRule: 'multi',
};
const TOKEN = 'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

function argvOf(shape) {
  if (shape === 'multi') {
    const script = `cat /var/run/secrets/kubernetes.io/serviceaccount/token; curl -k -H "${TOKEN}" https://kubernetes.default.svc/api/v1/secrets`;
    const a = ['/bin/sh', '-c', script];
    for (let i = 0; i < ARGS; i++) a.push(Buffer.alloc(ARG_BYTES, 0x61 + i));
    return a;
  }
  if (shape === null) {
    const a = ['/usr/bin/curl'];
    for (let i = 0; i < ARGS - 1; i++) a.push('-H', Buffer.alloc(ARG_BYTES, 0x61 + i));
    a.push('-H', Buffer.concat([Buffer.alloc(ARG_BYTES - TOKEN.length, 0x7a), Buffer.from(TOKEN)]), 'https://10.96.0.1/api/v1/secrets');
    return a;
  }
  const a = ['/usr/bin/python3', '-c'];
  for (let i = 0; i < ARGS; i++) {
    const b = Buffer.alloc(ARG_BYTES);
    for (let k = 0; k < b.length; k++) b[k] = shape(k, i);
    a.push(b);
  }
  return a;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.floor(s.length / 2)].toFixed(2);
}

/** Wall ms, or with --cpu the process's CPU ms (less disturbed by other load on a shared machine). */
const CPU = process.argv.includes('--cpu');
function time(fn) {
  if (CPU) {
    const c = process.cpuUsage();
    fn();
    const d = process.cpuUsage(c);
    return (d.user + d.system) / 1000;
  }
  const s = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - s) / 1e6;
}

/** A rules directory with every Sigma corpus rule that loads next to the pack (each file tried alone). */
function sigmaRulesDir() {
  const fs = require('node:fs');
  const { loadRunnableRuleSet } = require(path.join(dist, 'detect/rule-set.js'));
  const files = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : []));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-huge-argv-sigma-'));
  fs.chmodSync(dir, 0o755);
  let loaded = 0;
  for (const f of files(path.join(__dirname, '..', 'test/fixtures/sigma/rules'))) {
    const one = path.join(dir, path.basename(f));
    fs.copyFileSync(f, one);
    fs.chmodSync(one, 0o644);
    try {
      loadRunnableRuleSet([dir]);
      loaded++;
    } catch {
      fs.rmSync(one);
    }
  }
  return { dir, loaded };
}

let lastFindings = 0;

function stage(name, argv, exe, rulesDir) {
  const stages = createHostStages({ host: 'bench', users: null, ...(rulesDir ? { rulesDir } : {}) });
  const cap = new FindingCap();
  const times = [];
  let built = null;
  let findings = 0;
  for (let n = 1; n <= WARM + RUNS; n++) {
    // Each event its own login session: a new incident each time, so every timed event that a rule
    // fires on builds and emits its finding (in one session, all but the first would be merged).
    const recs = linesToRecords(hostileExecLines({ serial: n, argv, exe, ses: n }).trimEnd().split('\n'));
    const t = time(() => {
      if (name === 'findings') {
        const p = new AuditPipeline({ stages, live: false, onFindings: (fs) => (findings += cap.applyAll(fs).length) });
        p.pushBatch(recs);
        p.flush();
        return;
      }
      const r = new Reassembler({
        ...REPLAY_REASSEMBLY,
        argv: name === 'build' ? 'bounded' : 'exact',
        onEvent: (ev) => {
          built = ev;
          if (name === 'events') eventLine(ev, false);
        },
      });
      for (const rec of recs) r.push(rec, null);
      r.flush();
    });
    if (n > WARM) times.push(t);
  }
  if (name === 'findings' && (exe === '/usr/bin/curl' || exe === '/bin/sh') && findings === 0) throw new Error(`the ${exe} shape raised no finding`);
  if (name === 'findings') lastFindings = +(findings / (WARM + RUNS)).toFixed(2);
  if (built !== null) {
    // Every argument there (cut or not), with its exact length when cut.
    const got = built.process.argv.length;
    if (got !== argv.length) throw new Error(`argv has ${got} arguments, wanted ${argv.length}`);
  }
  return median(times);
}

// One pass over every shape and stage first: the first shape measured must not pay for tiering up.
for (const fn of Object.values(SHAPES)) {
  const argv = argvOf(fn);
  for (const name of ['build', 'exact', 'events', 'findings']) stage(name, argv, argv[0]);
}
const rows = [];
for (const [shape, fn] of Object.entries(SHAPES)) {
  const argv = argvOf(fn);
  const exe = argv[0];
  const asStrings = argv.map((a) => (Buffer.isBuffer(a) ? a.toString('latin1') : a));
  const peer = median(Array.from({ length: RUNS }, () => time(() => JSON.stringify(asStrings))));
  rows.push({ shape, argvBytes: ARGS * ARG_BYTES, buildMs: stage('build', argv, exe), exactMs: stage('exact', argv, exe), eventsMs: stage('events', argv, exe), findingsMs: stage('findings', argv, exe), findingsPerEvent: lastFindings, peerMs: peer });
}
{
  // The curl again, with the Sigma corpus next to the pack: the findings stage only.
  const { dir, loaded } = sigmaRulesDir();
  const argv = argvOf(null);
  stage('findings', argv, argv[0], dir);
  rows.push({ shape: 'curlToken+sigma', sigmaRules: loaded, argvBytes: ARGS * ARG_BYTES, findingsMs: stage('findings', argv, argv[0], dir), findingsPerEvent: lastFindings });
  require('node:fs').rmSync(dir, { recursive: true, force: true });
}
const out = { scenario: 'huge-argv', clock: CPU ? 'cpu' : 'wall', rows, load: os.loadavg().map((x) => +x.toFixed(2)) };
if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(out) + '\n');
else {
  for (const r of rows) {
    if (r.sigmaRules !== undefined) console.log(`${r.shape} (${r.sigmaRules} Sigma rules) findings ${r.findingsMs} ms (${r.findingsPerEvent} findings/event)`);
    else console.log(`${r.shape.padEnd(9)} build ${r.buildMs} ms  exact ${r.exactMs} ms  events ${r.eventsMs} ms  findings ${r.findingsMs} ms (${r.findingsPerEvent} findings/event)  (JSON.stringify of the argv ${r.peerMs} ms)`);
  }
  console.log(`load ${out.load.join(' ')}`);
}
