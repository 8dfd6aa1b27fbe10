/*
 * A fleet on one machine, for the replica-kill test and bench/fleet.js: collector replicas (real
 * `credwatch collector` processes, dist/ built) on one PostgreSQL, and simulated agents that post
 * gzip NDJSON batches to them the way the agent's shipper does: one batch in flight per agent, the
 * same batch resent until a replica answers 200 (at least once, in order), the other replica tried
 * after a failure (what a load balancer does when a backend dies).
 *
 * Plain CommonJS, shared by the tests (TypeScript) and the benchmark (node).
 */
'use strict';
/* global setTimeout */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const { spawn, execFileSync } = require('node:child_process');
const { freePort } = require('./postgres.cjs');

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'credwatch');

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A self-signed certificate for 127.0.0.1/localhost (openssl CLI). */
function selfSignedCert(dir) {
  const certFile = path.join(dir, 'collector.crt');
  const keyFile = path.join(dir, 'collector.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { certFile, keyFile, ca: fs.readFileSync(certFile, 'utf8') };
}

/** The n-th finding of an agent, like the agent's (about 1.1 KB of JSON), at `timeMs`. */
function fleetFinding(agent, n, timeMs) {
  return {
    id: `${agent}-${n.toString(36)}-${(timeMs % 1e6).toString(36)}`,
    rule: n % 7 ? 'cw-token-read-then-api' : 'cw-sa-token-read',
    title: 'Service account token read then API server contacted',
    description: 'A process read a service account token and connected to the Kubernetes API server.',
    severity: n % 5 ? 'high' : 'critical',
    score: 72,
    confidence: 'high',
    covers: ['H1'],
    mitre: ['T1552.007'],
    time: new Date(timeMs).toISOString(),
    host: agent,
    source: 'audit',
    indicators: ['token-read', 'apiserver-connect'],
    process: {
      pid: 4000 + (n % 30000),
      ppid: 4000,
      exe: '/usr/bin/curl',
      comm: 'curl',
      argv: ['curl', '-k', 'https://10.96.0.1/api/v1/namespaces/default/secrets', '-H', 'Authorization: Bearer [REDACTED]'],
      cwd: '/tmp',
      uid: 0,
      user: 'root',
      auid: 4294967295,
      tty: null,
      interactive: false,
      parents: [{ pid: 4000, exe: '/bin/sh', argv: ['sh', '-c', 'curl ...'] }],
    },
    container: { id: `c0ffee${(n % 97).toString(16).padStart(58, '0')}`, runtime: 'containerd', pod_uid: null },
    kube: null,
    evidence: [
      { event_id: `${n}:1`, time: new Date(timeMs - 5).toISOString(), role: 'token read', records: [{ type: 'SYSCALL', text: `arch=c000003e syscall=257 success=yes exit=3 pid=${4000 + (n % 30000)} comm="curl" exe="/usr/bin/curl"` }] },
    ],
  };
}

/** Agent names and tokens: agent-0000 ... */
function fleetAgents(n) {
  return Array.from({ length: n }, (_, i) => {
    const agent = `agent-${String(i).padStart(4, '0')}`;
    return { agent, token: `tok-${agent}-${sha256(agent).slice(0, 24)}` };
  });
}

/** Collector config for one replica: PostgreSQL storage, password from CREDWATCH_TEST_PGPASSWORD. */
function writeReplicaConfig({ dir, name, port, cert, pgUrl, agents, extra = '' }) {
  const file = path.join(dir, `${name}.yaml`);
  const lines = [
    `listen: 127.0.0.1:${port}`,
    `tls: {cert_file: ${cert.certFile}, key_file: ${cert.keyFile}}`,
    'agents:',
    ...agents.map((a) => `  - {agent: ${a.agent}, token_sha256: ${sha256(a.token)}}`),
    '  - {agent: reader, token_sha256: ' + sha256('reader-token-0123456789abcdef') + ', roles: [query]}',
    'storage:',
    `  url: ${pgUrl}`,
    '  password_env: CREDWATCH_TEST_PGPASSWORD',
    '  sslmode: disable',
    '  pool_max: 8',
    'rate_limit: {requests_per_second: 100000, burst: 100000}',
    'limits: {max_connections: 4096}',
    'log: {level: info}',
    extra,
  ];
  fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  return file;
}

/**
 * Starts `credwatch collector --config FILE` and waits until it listens. Kill timer: a detached
 * watchdog SIGKILLs this pid (only it) after maxSeconds, even if the caller died.
 */
async function startReplica({ config, port, password, maxSeconds = 900, nodeArgs = [] }) {
  const proc = spawn(process.execPath, [...nodeArgs, BIN, 'collector', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CREDWATCH_TEST_PGPASSWORD: password },
  });
  const watchdog = spawn('sh', ['-c', `sleep ${maxSeconds}; kill -9 ${proc.pid} 2>/dev/null`], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  let out = '';
  proc.stdout.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  proc.stderr.on('data', (d) => (out = (out + d.toString()).slice(-20000)));
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const deadline = Date.now() + 30_000;
  while (!out.includes('collector listening')) {
    if (proc.exitCode !== null) throw new Error(`collector exited at start: ${out}`);
    if (Date.now() > deadline) throw new Error(`collector not listening in 30 s: ${out}`);
    await sleep(50);
  }
  const stopWatchdog = () => {
    try {
      process.kill(watchdog.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  return {
    proc,
    pid: proc.pid,
    url: `https://127.0.0.1:${port}`,
    output: () => out,
    exited,
    /** Sends `signal` to this replica's pid and waits for it to exit. */
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      stopWatchdog();
      return r;
    },
  };
}

/** NDJSON + gzip of findings. */
function gzipBatch(findings, level = 1) {
  return zlib.gzipSync(findings.map((f) => JSON.stringify(f)).join('\n') + '\n', { level });
}

/**
 * Runs one simulated agent: posts each batch until some replica answers 200, starting at replica
 * `first` and moving to the next one after a failure. Returns per-batch results.
 * `post(url, body, headers)` does the HTTP (undici request in both callers) and resolves to
 * {status, text, retryAfter}.
 */
async function runAgent({ agent, token, batches, replicas, first = 0, post, onAck, shouldStop = () => false, maxAttempts = 200, intervalMs = 0 }) {
  let r = first % replicas.length;
  const stats = { acked: 0, retries: 0, latenciesMs: [], failures: {} };
  // Paced agents (intervalMs > 0) start a batch every intervalMs, like a shipper's flush interval, at a
  // random phase; unpaced ones send as fast as they are answered (a closed loop: saturation).
  let next = Date.now() + Math.random() * intervalMs;
  for (let b = 0; b < batches.length; b++) {
    if (intervalMs > 0) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      next += intervalMs;
    }
    for (let attempt = 0; ; attempt++) {
      if (shouldStop()) return stats;
      if (attempt >= maxAttempts) throw new Error(`${agent}: batch ${b} not acknowledged after ${maxAttempts} attempts`);
      const t0 = process.hrtime.bigint();
      let status;
      let body = '';
      let retryAfter = NaN;
      try {
        const res = await post(`${replicas[r]}/v1/findings`, batches[b].body, {
          authorization: `Bearer ${token}`,
          'x-credwatch-agent': agent,
          'content-type': 'application/x-ndjson',
          'content-encoding': 'gzip',
        });
        status = res.status;
        body = res.text;
        retryAfter = Number(res.retryAfter);
      } catch (err) {
        status = err.code || 'ERR';
      }
      if (status === 200) {
        stats.latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        stats.acked++;
        onAck(b, JSON.parse(body), replicas[r]);
        break;
      }
      stats.retries++;
      stats.failures[status] = (stats.failures[status] || 0) + 1;
      r = (r + 1) % replicas.length;
      // Like the agent: a 503/429 with Retry-After waits (full jitter up to it); a replica that is
      // gone is left for the next one at once.
      await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.random() * retryAfter * 1000 : 20 + Math.random() * 30);
    }
  }
  return stats;
}

module.exports = { freePort, selfSignedCert, fleetAgents, fleetFinding, writeReplicaConfig, startReplica, gzipBatch, runAgent, sha256, BIN, ROOT };
