#!/usr/bin/env node
/*
 * `npm run bench`: every scenario, one child process each (each script also runs alone), then a table.
 *
 *   npm run bench [-- --json] [-- --only replay|live-load|latency|memory] [-- --quick]
 *
 * Needs root, the built agent (npx tsc -p tsconfig.build.json && node scripts/copy-assets.js), the
 * addon, gcc, curl, and Debian's auditd/ausearch. The live scenarios take the lab's audit lock
 * (/tmp/credwatch-lab.lock) themselves and leave the kernel audit state as they found it.
 * Full run: ~25 minutes (memory alone holds 10 minutes of load); --quick: ~4 minutes.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const ONLY = onlyAt >= 0 ? args[onlyAt + 1] : null;

const SCENARIOS = [
  { name: 'replay', script: 'replay-throughput.js', args: QUICK ? ['--replay-runs', '1'] : [] },
  { name: 'live-load', script: 'live-load.js', args: [] },
  { name: 'latency', script: 'latency.js', args: [] },
  { name: 'memory', script: 'memory.js', args: [] },
  { name: 'redaction', script: 'redaction-cost.js', args: [] },
];

function runScenario(s) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, s.script), '--json', ...(QUICK ? ['--quick'] : []), ...s.args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(code === 0 ? JSON.parse(line) : { scenario: s.name, error: `exit ${code}` });
      } catch {
        resolve({ scenario: s.name, error: `no JSON result (exit ${code})` });
      }
    });
  });
}

const f0 = (n) => (n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const f1 = (n) => (n === null || n === undefined ? '-' : n.toFixed(1));
const dropsText = (d) => {
  const e = Object.entries(d ?? {});
  return e.length === 0 ? '0' : e.map(([k, v]) => `${k}=${v}`).join(',');
};

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ')).join('\n');
}

function print(results) {
  for (const r of results) {
    if (r.error) {
      console.log(`\n## ${r.scenario}: FAILED (${r.error})`);
      continue;
    }
    if (r.scenario === 'replay') {
      console.log(`\n## Replay throughput (${r.file}, ${f0(r.events)} events, ${f0(r.fileMiB)} MiB)`);
      const rows = [['tool', 'events', 'seconds', 'events/s', 'max RSS MiB']];
      rows.push(['credwatch replay --events', f0(r.replayEvents.events), f1(r.replayEvents.secs), f0(r.replayEvents.eventsPerSec), f0(r.replayEvents.maxRssMiB)]);
      rows.push(['credwatch replay (findings)', f0(r.replayFindings.events), f1(r.replayFindings.secs), f0(r.replayFindings.eventsPerSec), f0(r.replayFindings.maxRssMiB)]);
      if (r.ausearch) rows.push(['ausearch -i', f0(r.ausearch.events), f1(r.ausearch.secs), f0(r.ausearch.eventsPerSec), f0(r.ausearch.maxRssMiB)]);
      console.log(table(rows));
      if (r.ratio) console.log(`ratio replay --events / ausearch -i: ${r.ratio.toFixed(2)}x; findings mode / ausearch -i: ${r.ratioFindings.toFixed(2)}x`);
    } else if (r.scenario === 'live-load') {
      console.log(`\n## Live load (${r.seconds} s per rate, mix exec:open:connect ${r.mix}, default rules)`);
      const rows = [['target exec/s', 'daemon', 'workers', 'exec/s reached', 'CPU %', 'peak RSS MiB', 'kernel lost', 'drops', 'queue waits', 'serial gaps', 'events/s']];
      for (const run of r.runs) {
        const a = run.agent;
        rows.push([run.execRate, 'credwatch', a.workers, f0(a.execPerSec), f1(a.cpuPercent), f0(a.peakRssMiB), a.kernelLost, dropsText(a.drops), a.queueWaits ?? '-', a.serialGaps, f0(a.eventsPerSec)]);
        const b = run.auditd;
        if (b) rows.push(['', 'auditd', b.workers, f0(b.execPerSec), f1(b.cpuPercent), f1(b.peakRssMiB), b.kernelLost, '-', '-', '-', f0(b.eventsPerSec)]);
        if (run.cpuRatio) rows.push(['', 'CPU ratio', '', '', `${run.cpuRatio.toFixed(1)}x`, '', '', '', '', '', '']);
      }
      console.log(table(rows));
    } else if (r.scenario === 'latency') {
      console.log(`\n## Detection latency (syscall time -> finding committed, rule ${r.rule})`);
      const rows = [['condition', 'triggers', 'findings', 'p50 ms', 'p99 ms', 'max ms']];
      rows.push(['idle', r.idle.triggers, r.idle.findings, f0(r.idle.p50Ms), f0(r.idle.p99Ms), f0(r.idle.maxMs)]);
      rows.push([`load ${f0(r.load.execPerSec)} exec/s`, r.load.triggers, r.load.findings, f0(r.load.p50Ms), f0(r.load.p99Ms), f0(r.load.maxMs)]);
      console.log(table(rows));
    } else if (r.scenario === 'memory') {
      console.log('\n## Memory (agent RSS)');
      const rows = [['phase', 'RSS MiB', 'peak MiB', 'kernel lost', 'drops', 'notes']];
      rows.push(['start (idle)', f0(r.startRssMiB), '', '', '', '']);
      rows.push([`after ${r.sustained.minutes} min at ${f0(r.sustained.execPerSec)} exec/s`, f0(r.sustained.rssEndMiB), f0(r.sustained.peakRssMiB), r.sustained.kernelLost, dropsText(r.sustained.drops), `${f0(r.sustained.events)} events`]);
      rows.push([`burst of ${f0(r.burst.size)} connects`, f0(r.burst.rssAfterMiB), f0(r.burst.peakRssMiB), r.burst.kernelLost, dropsText(r.burst.drops), `${f0(r.burst.events)} events, generator ${f0(r.burst.generatorRate)}/s, all taken in ${f1(r.burst.secsToDrain)} s`]);
      rows.push(['5 s after the burst', f0(r.burst.rssAfter5sMiB), '', '', '', '']);
      console.log(table(rows));
    } else if (r.scenario === 'redaction') {
      console.log(`\n## Redaction of hostile command lines (${f0(r.bytes)} bytes each; peer: JSON.stringify of the same argv)`);
      const rows = [['case', 'redaction ms', 'peer ms', 'ratio']];
      for (const c of r.cases) rows.push([c.case, c.boundedMs.toFixed(2), c.peerMs.toFixed(2), `${c.ratio.toFixed(2)}x`]);
      const e = Array.isArray(r.engine) ? r.engine.map((x) => x.ms.toFixed(1)).join(' / ') : '-';
      rows.push(['engine, first finding (cold / warm)', e, '', '']);
      console.log(table(rows));
    }
  }
}

async function main() {
  const picked = SCENARIOS.filter((s) => !ONLY || s.name === ONLY);
  if (picked.length === 0) {
    console.error(`unknown scenario ${ONLY}; one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  if (picked.some((s) => s.name === 'replay') && !fs.existsSync(path.join(ROOT, '.bench-data/replay-sample.log'))) {
    console.error('bench: recording the replay sample first (bench/replay-throughput-record.sh)');
    spawnSync(path.join(__dirname, 'replay-throughput-record.sh'), ['8'], { stdio: 'inherit' });
  }
  const results = [];
  for (const s of picked) {
    console.error(`\n== ${s.name}`);
    results.push(await runScenario(s));
  }
  const all = { quick: QUICK, atIso: new Date().toISOString(), results };
  // The last run's numbers stay on disk (.bench-data is not in git) whichever output was asked for.
  fs.mkdirSync(path.join(ROOT, '.bench-data'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.bench-data', 'last-run.json'), JSON.stringify(all, null, 1) + '\n');
  if (JSON_OUT) process.stdout.write(JSON.stringify(all) + '\n');
  else print(results);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
