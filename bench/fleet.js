/*
 * Fleet benchmark for the collector on PostgreSQL (issue 20), all on this machine:
 *   - a PostgreSQL 15 server (fsync on, synchronous_commit on: acknowledged = durable), temp dir, loopback;
 *   - 2 collector replicas (`credwatch collector`, real processes) on it;
 *   - N simulated agents (default 200) posting gzip NDJSON batches (default 500 findings, the agent's
 *     batch_size) through both replicas, one batch in flight each, resending after a failure;
 *   - one replica SIGKILLed mid-load (default at 40% acknowledged); afterwards every acknowledged
 *     finding must be stored exactly once;
 *   - then `credwatch findings --collector ... --limit 0 --json` reads everything back through the
 *     surviving replica, with its peak RSS (/usr/bin/time).
 *
 *   npm run build:ts && node bench/fleet.js [--agents 200] [--findings 1000000] [--batch 500]
 *                                           [--kill-at 0.4] [--no-kill] [--no-query] [--cpu-prof-dir DIR]
 *                                           [--rate FINDINGS_PER_S]   (paced agents: latency at that load)
 *
 * Bodies are made and gzipped before the clock starts (agents gzip on their own machines). The machine
 * is shared: the result carries the load average and the CPU seconds of each process, so runs can be
 * compared by ratio. Prints progress on stderr and one JSON object on stdout.
 */
'use strict';
/* global setTimeout, setInterval, clearInterval, clearTimeout */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn } = require('node:child_process');
const { Agent, request } = require('undici');
const { startPostgres } = require('../test/helpers/postgres.cjs');
const F = require('../test/helpers/collector-fleet.cjs');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const flag = (name) => process.argv.includes(name);
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

const AGENTS = Number(arg('--agents', 200));
const TOTAL = Number(arg('--findings', 1_000_000));
const BATCH = Number(arg('--batch', 500));
const KILL_AT = flag('--no-kill') ? null : Number(arg('--kill-at', 0.4));
/** Offered load in findings/s (paced agents); 0 = saturation (each agent sends as fast as answered). */
const RATE = Number(arg('--rate', 0));
const CLK_TCK = 100;

/** user+system CPU seconds of a pid (from /proc; 0 once it is gone). */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0;
  }
}
/** CPU seconds of PostgreSQL: the postmaster and all its backends (children of the timeout wrapper's child). */
function pgCpuSeconds(rootPid) {
  let total = 0;
  const walk = (pid) => {
    total += cpuSeconds(pid);
    let kids = '';
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    } catch {
      return;
    }
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) walk(Number(k));
  };
  walk(rootPid);
  return total;
}

function percentile(xs, p) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-fleet-'));
  const result = { agents: AGENTS, findings: TOTAL, batch: BATCH, offered_per_s: RATE || 'saturation', cores: os.cpus().length, loadavg_start: os.loadavg().map((x) => +x.toFixed(2)) };
  log(`fleet bench: ${AGENTS} agents, ${TOTAL} findings in batches of ${BATCH}, 2 replicas; load ${result.loadavg_start.join(' ')}`);
  // Settings a collector database would get (docs/shipping.md): durable commits, bigger WAL.
  const pg = await startPostgres({
    fsync: true,
    maxSeconds: 3600,
    settings: { shared_buffers: '1GB', max_wal_size: '8GB', checkpoint_timeout: '15min', wal_compression: 'on', synchronous_commit: 'on' },
  });
  const replicas = [];
  try {
    const pgUrl = pg.createDatabase('fleet');
    const cert = F.selfSignedCert(dir);
    const agents = F.fleetAgents(AGENTS);
    for (const name of ['a', 'b']) {
      const port = await F.freePort();
      const config = F.writeReplicaConfig({ dir, name, port, cert, pgUrl, agents, extra: 'max_body_bytes: 2097152' });
      const prof = arg('--cpu-prof-dir', null);
      replicas.push(await F.startReplica({ config, port, password: pg.password, maxSeconds: 3600, nodeArgs: ['--max-semi-space-size=16', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])] }));
    }

    // Bodies first: per agent, its share of the findings in batches, times over the last hour.
    const t0 = Date.now();
    const perAgent = Math.ceil(TOTAL / AGENTS);
    let made = 0;
    let rawBytes = 0;
    let gzBytes = 0;
    const work = agents.map((ag) => {
      const batches = [];
      for (let n = 0; n < perAgent && made < TOTAL; n += BATCH) {
        const fsOf = [];
        for (let j = n; j < Math.min(perAgent, n + BATCH) && made < TOTAL; j++, made++) fsOf.push(F.fleetFinding(ag.agent, j, t0 - 3_600_000 + Math.floor((j / perAgent) * 3_500_000)));
        const text = fsOf.map((f) => JSON.stringify(f)).join('\n') + '\n';
        rawBytes += Buffer.byteLength(text);
        const body = zlib.gzipSync(text, { level: 6 });
        gzBytes += body.length;
        batches.push({ body, n: fsOf.length });
      }
      return { ...ag, batches };
    });
    result.finding_json_bytes_avg = Math.round(rawBytes / TOTAL);
    result.gzip_ratio = +(rawBytes / gzBytes).toFixed(1);
    log(`bodies ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(gzBytes / 1e6).toFixed(0)} MB gzip)`);

    const http = new Agent({ connect: { ca: cert.ca, timeout: 30_000 }, connections: AGENTS, pipelining: 1, keepAliveTimeout: 30_000 });
    const post = async (url, body, headers) => {
      const res = await request(url, { method: 'POST', body, headers, dispatcher: http, headersTimeout: 60_000, bodyTimeout: 60_000 });
      return { status: res.statusCode, text: await res.body.text(), retryAfter: res.headers['retry-after'] };
    };
    const cpu0 = { a: cpuSeconds(replicas[0].pid), b: cpuSeconds(replicas[1].pid), pg: pgCpuSeconds(pg.pid()), bench: process.cpuUsage() };
    let acked = 0;
    let accepted = 0;
    let duplicates = 0;
    let killAtMs = null;
    let killPromise = null;
    let ackedAtKill = 0;
    let cpuBAtKill = null;
    const perSecond = new Map();
    const start = process.hrtime.bigint();
    const elapsedMs = () => Number(process.hrtime.bigint() - start) / 1e6;
    const progress = setInterval(() => log(`  ${(elapsedMs() / 1000).toFixed(0)} s: ${acked} acknowledged (${Math.round(acked / (elapsedMs() / 1000))}/s)`), 5000);
    const runs = work.map((w, i) =>
      F.runAgent({
        agent: w.agent,
        token: w.token,
        batches: w.batches,
        replicas: replicas.map((r) => r.url),
        first: i,
        post,
        maxAttempts: 1000,
        intervalMs: RATE > 0 ? (AGENTS * BATCH * 1000) / RATE : 0,
        onAck: (k, answer) => {
          acked += w.batches[k].n;
          accepted += answer.accepted;
          duplicates += answer.duplicates;
          const sec = Math.floor(elapsedMs() / 1000);
          perSecond.set(sec, (perSecond.get(sec) || 0) + w.batches[k].n);
          if (KILL_AT !== null && killPromise === null && acked >= KILL_AT * TOTAL) {
            killAtMs = elapsedMs();
            ackedAtKill = acked;
            log(`  SIGKILL replica b (pid ${replicas[1].pid}) at ${(killAtMs / 1000).toFixed(1)} s, ${acked} acknowledged`);
            cpuBAtKill = cpuSeconds(replicas[1].pid) - cpu0.b;
            killPromise = replicas[1].kill('SIGKILL');
          }
        },
      }),
    );
    const stats = await Promise.all(runs);
    const wallMs = elapsedMs();
    clearInterval(progress);
    await http.close();
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpu = {
      replica_a_s: +(cpuSeconds(replicas[0].pid) - cpu0.a).toFixed(1),
      replica_b_s: +(killPromise ? cpuBAtKill : cpuSeconds(replicas[1].pid) - cpu0.b).toFixed(1),
      postgres_s: +(pgCpuSeconds(pg.pid()) - cpu0.pg).toFixed(1),
      bench_agents_s: +((benchCpu.user + benchCpu.system) / 1e6).toFixed(1),
    };
    // CPU per acknowledged finding, whatever share of the machine this run got (it is shared).
    cpu.us_per_finding = {
      replicas: +(((cpu.replica_a_s + cpu.replica_b_s) / acked) * 1e6).toFixed(1),
      postgres: +((cpu.postgres_s / acked) * 1e6).toFixed(1),
      agents: +((cpu.bench_agents_s / acked) * 1e6).toFixed(1),
    };
    const perFinding = cpu.us_per_finding.replicas + cpu.us_per_finding.postgres + cpu.us_per_finding.agents;
    // What the same work would sustain with the machine's cores to itself (CPU-bound estimate).
    result.findings_per_s_if_cores_were_ours = Math.round((os.cpus().length * 1e6) / perFinding);
    if (killPromise) result.kill = { signal: (await killPromise).signal, at_s: +(killAtMs / 1000).toFixed(1), acknowledged_before: ackedAtKill };

    const latencies = stats.flatMap((s) => s.latenciesMs);
    const failures = {};
    for (const s of stats) for (const [k, v] of Object.entries(s.failures)) failures[k] = (failures[k] || 0) + v;
    // Sustained: the median of whole seconds, first and last second left out (ramp up and tail).
    const secs = [...perSecond.keys()].sort((a, b) => a - b);
    const inner = secs.slice(1, -1).map((s) => perSecond.get(s));
    const before = killAtMs === null ? [] : secs.filter((s) => s >= 1 && s < Math.floor(killAtMs / 1000)).map((s) => perSecond.get(s));
    const after = killAtMs === null ? [] : secs.filter((s) => s > Math.ceil(killAtMs / 1000) + 1 && s < secs[secs.length - 1]).map((s) => perSecond.get(s));
    Object.assign(result, {
      wall_s: +(wallMs / 1000).toFixed(1),
      findings_per_s_overall: Math.round(acked / (wallMs / 1000)),
      findings_per_s_sustained_median: percentile(inner, 50),
      findings_per_s_two_replicas_median: before.length ? percentile(before, 50) : null,
      findings_per_s_one_replica_after_kill_median: after.length ? percentile(after, 50) : null,
      batch_latency_ms: { p50: +percentile(latencies, 50).toFixed(1), p99: +percentile(latencies, 99).toFixed(1), max: +Math.max(...latencies).toFixed(1) },
      resends: stats.reduce((n, s) => n + s.retries, 0),
      resend_causes: failures,
      answers: { accepted, duplicates },
      cpu,
    });

    // Exactly once: every acknowledged finding stored, none twice.
    const [rows, distinct] = pg.psql('SELECT count(*), count(DISTINCT (agent, id)) FROM fleet_findings', 'fleet').trim().split('|').map(Number);
    const sizes = pg.psql(
      "SELECT pg_database_size('fleet'), (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'fleet_findings'::regclass), pg_total_relation_size('fleet_finding_keys')",
      'fleet',
    ).trim().split('|').map(Number);
    result.exactly_once = { acknowledged: acked, rows, distinct, ok: rows === acked && distinct === acked && acked === TOTAL };
    result.db_bytes_per_million = {
      database: Math.round((sizes[0] / rows) * 1e6),
      findings_partitions: Math.round((sizes[1] / rows) * 1e6),
      keys: Math.round((sizes[2] / rows) * 1e6),
    };
    log(`stored ${rows} rows (${distinct} distinct) for ${acked} acknowledged; database ${(sizes[0] / 1e9).toFixed(2)} GB`);

    if (!flag('--no-query')) {
      // Read everything back through the surviving replica with the CLI; peak RSS from GNU time.
      const env = { ...process.env, CW_READER: 'reader-token-0123456789abcdef' };
      const q0 = Date.now();
      const out = await new Promise((resolve, reject) => {
        const p = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, F.BIN, 'findings', '--collector', replicas[0].url, '--ca', cert.certFile, '--token-env', 'CW_READER', '--limit', '0', '--json'], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let lines = 0;
        let bytes = 0;
        let err = '';
        p.stdout.on('data', (d) => {
          bytes += d.length;
          for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
        });
        p.stderr.on('data', (d) => (err += d.toString()));
        const timer = setTimeout(() => p.kill('SIGKILL'), 20 * 60_000);
        p.on('exit', (code) => {
          clearTimeout(timer);
          const m = /maxrss_kb=(\d+)/.exec(err);
          if (code !== 0) reject(new Error(`findings CLI exited ${code}: ${err.slice(-500)}`));
          else resolve({ lines, bytes, maxrssKb: m ? Number(m[1]) : null });
        });
      });
      result.cli_query = {
        findings: out.lines,
        ok: out.lines === rows,
        seconds: +((Date.now() - q0) / 1000).toFixed(1),
        findings_per_s: Math.round(out.lines / ((Date.now() - q0) / 1000)),
        mb_out: +(out.bytes / 1e6).toFixed(0),
        peak_rss_mb: out.maxrssKb ? +(out.maxrssKb / 1024).toFixed(0) : null,
      };
      log(`CLI read ${out.lines} findings in ${result.cli_query.seconds} s, peak RSS ${result.cli_query.peak_rss_mb} MB`);
    }
    result.loadavg_end = os.loadavg().map((x) => +x.toFixed(2));
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const r of replicas) await r.kill('SIGTERM').catch(() => undefined);
    await pg.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
