#!/usr/bin/env node
/*
 * A collector replica's CPU per finding for what it does to a batch before the database (issue 20):
 * gunzip, split, JSON.parse, check, encode for the insert. Two ways in the same run, alternating
 * rounds on the same bodies, so their ratio holds whatever the shared machine's load:
 *   compiled  parseNdjsonFindings as the collector runs it (the validator compiled from the schema,
 *             each finding encoded once)
 *   zod       the earlier way: zod's safeParse per finding, then JSON.stringify of its copy
 * Prints CPU µs per finding (median of the rounds) and the load average, as one JSON object.
 *
 *   npm run build:ts && node bench/collector-ingest.js [--findings 100000] [--batch 500] [--rounds 5]
 *
 * In-process, no database, no root; run it under the lab lock like any CPU bench.
 */
'use strict';
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { fleetFinding } = require('../test/helpers/collector-fleet.cjs');

const dist = path.join(__dirname, '..', 'dist', 'src', 'collector');
const { parseNdjsonFindings } = require(path.join(dist, 'ingest.js'));
const { ingestedFindingSchema } = require(path.join(dist, 'finding-schema.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : dflt;
}
const TOTAL = arg('--findings', 100_000);
const BATCH = arg('--batch', 500);
const ROUNDS = arg('--rounds', 5);

const now = Date.now();
const bodies = [];
for (let n = 0; n < TOTAL; n += BATCH) {
  const lines = [];
  for (let j = n; j < Math.min(TOTAL, n + BATCH); j++) lines.push(JSON.stringify(fleetFinding(`agent-${j % 200}`, j, now - 3_600_000 + j)));
  bodies.push(zlib.gzipSync(lines.join('\n') + '\n'));
}

/** The earlier per-finding path, kept here only as the rival. */
function zodWay(body) {
  const text = zlib.gunzipSync(body).toString('utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = ingestedFindingSchema.safeParse(JSON.parse(line));
    if (!parsed.success) throw new Error('bench finding refused');
    out.push({ finding: parsed.data, json: JSON.stringify(parsed.data) });
  }
  return out;
}
const compiledWay = (body) => parseNdjsonFindings(zlib.gunzipSync(body));

function cpuUsPerFinding(fn) {
  const t = process.cpuUsage();
  let n = 0;
  for (const b of bodies) n += fn(b).length;
  const d = process.cpuUsage(t);
  return (d.user + d.system) / n;
}

const ways = { compiled: compiledWay, zod: zodWay };
const samples = { compiled: [], zod: [] };
for (const fn of Object.values(ways)) cpuUsPerFinding(fn); // warm up: JIT, and ajv compiles on first use
for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of Object.entries(ways)) samples[name].push(cpuUsPerFinding(fn));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  scenario: 'collector-ingest',
  findings: TOTAL,
  batch: BATCH,
  rounds: ROUNDS,
  cpu_us_per_finding: { compiled: +median(samples.compiled).toFixed(2), zod: +median(samples.zod).toFixed(2) },
  loadavg: os.loadavg().map((x) => +x.toFixed(2)),
};
result.zod_over_compiled = +(result.cpu_us_per_finding.zod / result.cpu_us_per_finding.compiled).toFixed(2);
process.stdout.write(JSON.stringify(result) + '\n');
