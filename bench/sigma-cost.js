#!/usr/bin/env node
/*
 * What loading the SigmaHQ corpus into the engines costs (issue 21): the benign recorded workload
 * (test/fixtures/behaviours/benign.log.gz, 21k events) replayed with the pack alone and with the pack
 * plus every loadable corpus rule (test/fixtures/sigma, copied into a rules directory), alternated in
 * the same run so machine load hits both alike. Reports user+sys CPU of each and their ratio (the
 * number to compare across machines), and the over-budget counts `replay --stats` prints.
 *
 *   node bench/sigma-cost.js [--runs 3]
 *
 * Needs the build (npx tsc -p tsconfig.build.json && node scripts/copy-assets.js). No root, no kernel.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin/credwatch');
const LOG = path.join(ROOT, 'test/fixtures/behaviours/benign.log.gz');
const CORPUS = path.join(ROOT, 'test/fixtures/sigma/rules');
const runsAt = process.argv.indexOf('--runs');
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;

function yamlFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : []));
}

/** A rules directory holding every corpus rule that loads (each file checked alone against the pack). */
function loadableDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-sigma-bench-'));
  fs.chmodSync(dir, 0o755);
  let refused = 0;
  for (const f of yamlFiles(CORPUS)) {
    const one = path.join(dir, path.basename(f));
    fs.copyFileSync(f, one);
    fs.chmodSync(one, 0o644);
    if (spawnSync(process.execPath, [BIN, 'rules', 'check', one]).status !== 0) {
      fs.rmSync(one);
      refused++;
    }
  }
  return { dir, loaded: fs.readdirSync(dir).length, refused };
}

function timed(extra) {
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, BIN, 'replay', '--json', '--stats', ...extra, LOG], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(r.stderr);
  const lines = r.stderr.trim().split('\n');
  const [u, s] = lines[lines.length - 1].split(' ').map(Number);
  const over = /(\d+) events over the (\d+) ms budget \(slowest ([\d.]+) ms\)/.exec(r.stderr);
  return { cpuS: u + s, findings: r.stdout.split('\n').filter(Boolean).length, overBudget: over ? Number(over[1]) : null, slowestMs: over ? Number(over[3]) : null };
}

const { dir, loaded, refused } = loadableDir();
const pack = [];
const sigma = [];
for (let i = 0; i < RUNS; i++) {
  pack.push(timed([]));
  sigma.push(timed(['--rules-dir', dir]));
}
fs.rmSync(dir, { recursive: true, force: true });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p = median(pack.map((r) => r.cpuS));
const s = median(sigma.map((r) => r.cpuS));
console.log(JSON.stringify({ load: os.loadavg()[0], corpus: { loaded, refused }, runs: RUNS, packCpuS: p, sigmaCpuS: s, ratio: Math.round((s / p) * 100) / 100, packFindings: pack[0].findings, sigmaFindings: sigma[0].findings, overBudget: { pack: pack.map((r) => r.overBudget), sigma: sigma.map((r) => r.overBudget) }, slowestMs: { pack: pack.map((r) => r.slowestMs), sigma: sigma.map((r) => r.slowestMs) } }));
