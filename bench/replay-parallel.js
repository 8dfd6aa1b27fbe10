#!/usr/bin/env node
/*
 * `credwatch replay --jobs N` (issue 23): S independent streams replayed with --jobs 1 (one process,
 * today's path) and --jobs 2.., in findings mode and --events, in the same run; wall and CPU time and
 * the peak memory of the whole process tree (parent + workers, sampled from /proc every 50 ms, summed):
 * RSS, which counts the pages of the node binary and the addon that every process maps once per
 * process, and PSS (smaps_rollup), which shares them out: the memory the tree really takes.
 *
 * Input: S streams built from the real sample (.bench-data/replay-sample.log, recorded by
 * bench/replay-throughput-record.sh), each in its own directory as `audit.log` (so grouped by name:
 * the sample has no node=), made of C copies with shifted serials and timestamps as
 * bench/replay-throughput.js does. No lab lock: it reads files only.
 *
 *   npm run build:ts && node bench/replay-parallel.js [--streams 2] [--copies 8|1,2,4,8] [--jobs 2] [--runs 3]
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { setInterval, clearInterval } = require('node:timers');

const ROOT = path.join(__dirname, '..');
const SAMPLE = path.join(ROOT, '.bench-data', 'replay-sample.log');
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const STREAMS = arg('streams', 2);
// --copies 1,2,4,8: one table line per size, for the crossover of the default --jobs (replay-parallel.ts
// PARALLEL_MIN_BYTES).
const COPIES_LIST = (process.argv.includes('--copies') ? process.argv[process.argv.indexOf('--copies') + 1] : '8').split(',').map(Number);
let COPIES = COPIES_LIST[0];
const JOBS = arg('jobs', 2);
const RUNS = arg('runs', 3);
const STAMP = /audit\((\d+)\.(\d{3}):(\d+)\)/;

function buildStreams() {
  const lines = fs.readFileSync(SAMPLE, 'latin1').split('\n').filter((l) => STAMP.test(l));
  let minS = Infinity, maxS = 0, minMs = Infinity, maxMs = 0;
  for (const l of lines) {
    const m = STAMP.exec(l);
    const ms = Number(m[1]) * 1000 + Number(m[2]);
    minS = Math.min(minS, Number(m[3])); maxS = Math.max(maxS, Number(m[3]));
    minMs = Math.min(minMs, ms); maxMs = Math.max(maxMs, ms);
  }
  const dir = path.join(ROOT, '.bench-data', `parallel-${STREAMS}x${COPIES}`);
  const files = [];
  for (let s = 0; s < STREAMS; s++) {
    const file = path.join(dir, `node-${s}`, 'audit.log');
    files.push(file);
    if (fs.existsSync(file) && fs.statSync(file).mtimeMs > fs.statSync(SAMPLE).mtimeMs) continue;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, 'w');
    for (let k = 0; k < COPIES; k++) {
      const out = lines.map((l) => {
        const m = STAMP.exec(l);
        const ms = Number(m[1]) * 1000 + Number(m[2]) + k * (maxMs - minMs + 1000);
        const serial = Number(m[3]) + k * (maxS - minS + 1);
        return l.slice(0, m.index) + `audit(${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}:${serial})` + l.slice(m.index + m[0].length);
      });
      fs.writeSync(fd, out.join('\n') + '\n', null, 'latin1');
    }
    fs.closeSync(fd);
  }
  return files;
}

/** Proportional set size (KiB) of a process, or 0 when it is gone. */
function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** RSS and PSS (KiB) of pid and all its descendants, from /proc. */
function treeMemKb(root) {
  const kids = new Map();
  const rss = new Map();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      rss.set(Number(p), Number(f[21]) * 4);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(p));
    } catch { /* gone */ }
  }
  let sum = 0;
  let pss = 0;
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    sum += rss.get(p) ?? 0;
    // /usr/bin/time is the root; node and its workers are below it.
    if (p !== root) pss += pssKb(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return { rss: sum, pss };
}

function run(args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%U %S', process.execPath, ...launcherFlags(), path.join(ROOT, 'bin/credwatch'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let newlines = 0, err = '', peak = 0, peakPss = 0;
    const timer = setInterval(() => {
      const m = treeMemKb(child.pid);
      peak = Math.max(peak, m.rss);
      peakPss = Math.max(peakPss, m.pss);
    }, 50);
    child.stdout.on('data', (b) => {
      for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) newlines++;
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      clearInterval(timer);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const last = err.trim().split('\n').pop().split(' ').map(Number);
      if (code !== 0) return reject(new Error(`exit ${code}: ${err.slice(0, 400)}`));
      // /usr/bin/time counts the CPU of every waited-for descendant (the workers) too.
      resolve({ secs, cpu: last[0] + last[1], newlines, peakMiB: peak / 1024, pssMiB: peakPss / 1024 });
    });
  });
}

/** bin/credwatch's shebang flags (bench/lib.js launcherNodeFlags), so node runs as the CLI would. */
function launcherFlags() {
  const first = fs.readFileSync(path.join(ROOT, 'bin/credwatch'), 'utf8').split('\n')[0];
  return first.split(/\s+/).filter((a) => a.startsWith('--'));
}

async function main() {
  for (const c of COPIES_LIST) {
    COPIES = c;
    await size();
  }
}

async function size() {
  const files = buildStreams();
  const size = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  console.log(`input: ${STREAMS} streams x ${COPIES} copies of the sample, ${(size / 2 ** 20).toFixed(0)} MiB; load ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  for (const mode of [['--events'], ['--json']]) {
    const res = {};
    for (let r = 0; r < RUNS; r++) {
      // Alternate so that load changes hit both alike.
      for (const jobs of [1, JOBS]) (res[jobs] ??= []).push(await run(['replay', ...mode, '--jobs', String(jobs), ...files]));
    }
    const med = (xs, k) => [...xs].map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const line = (j) => `--jobs ${j}: wall ${med(res[j], 'secs').toFixed(2)} s, CPU ${med(res[j], 'cpu').toFixed(2)} s, peak tree RSS ${med(res[j], 'peakMiB').toFixed(0)} MiB (PSS ${med(res[j], 'pssMiB').toFixed(0)}), ${res[j][0].newlines} lines`;
    console.log(`${mode[0] === '--events' ? 'events  ' : 'findings'} ${line(1)} | ${line(JOBS)} | wall ratio ${(med(res[JOBS], 'secs') / med(res[1], 'secs')).toFixed(2)}`);
  }
  console.log(`load after: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
