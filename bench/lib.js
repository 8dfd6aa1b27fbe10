/*
 * Shared parts of the live benchmarks (live-load, latency, memory): the lab lock, kernel audit state,
 * the load generator, a running `credwatch run` agent and a running Debian auditd, and /proc readings.
 *
 * Everything that changes global audit state is undone by the same code that did it: the agent
 * restores the kernel itself on SIGTERM; for auditd we delete exactly the rules we added (by their
 * text), stop auditd by pid and put enabled / backlog_limit / backlog_wait_time back, also when the
 * bench itself is interrupted (SIGINT, SIGTERM, SIGHUP) or exits on an error (onAbort).
 */
'use strict';
/* global setTimeout, setInterval, clearInterval, fetch */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const CLK_TCK = 100;
const PAGE = 4096;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const flag = (name) => process.argv.includes(name);

/** Prints progress on stderr, so stdout carries only the JSON result. */
function log(...a) {
  process.stderr.write(a.join(' ') + '\n');
}

/** The lab's audit lock (test/helpers/lab-lock.cjs; CREDWATCH_BENCH_LOCKED=1 when the caller holds it). */
const { acquireLabLock: acquireLock } = require('../test/helpers/lab-lock.cjs');

/** `auditctl -s` as an object of numbers. */
function auditStatus() {
  const out = execFileSync('auditctl', ['-s'], { encoding: 'utf8' });
  const s = {};
  for (const line of out.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) s[k] = Number(v);
  }
  return s;
}

function auditRules() {
  return execFileSync('auditctl', ['-l'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim() !== '' && l.trim() !== 'No rules');
}

/** auditctl 3.0.9 lists an io_uring rule (it has no io_uring list) with "(null)" for the list name. */
const UNLISTABLE = /^-a \S*\(null\)/;
/** The prefix of a rule carried as its kernel payload (hex) instead of auditctl text. */
const NATIVE_RULE = 'native:';

/**
 * The kernel's rules as `auditctl -l` lists them, except that each io_uring rule, which auditctl 3.0.9
 * can neither print nor add, is given as `native:<hex>`: the kernel's own payload of it (our addon's
 * AUDIT_LIST_RULES, in kernel order), so that startAuditd can add exactly that rule back through the
 * addon. The auditd peer then runs every rule the agent ran.
 */
function kernelRulesForPeer() {
  const lines = auditRules();
  if (!lines.some((l) => UNLISTABLE.test(l))) return lines;
  const { listRules } = require(path.join(ROOT, 'dist/src/native/binding'));
  const { decodeRule } = require(path.join(ROOT, 'dist/src/audit/rules'));
  const uring = listRules().filter((b) => decodeRule(b).list === 'io_uring');
  let k = 0;
  return lines.map((l) => (UNLISTABLE.test(l) && k < uring.length ? NATIVE_RULE + uring[k++].toString('hex') : l));
}

/** Fails loudly if the kernel is not as the lab baseline expects before a run (someone else's rules). */
function snapshotAuditState() {
  const s = auditStatus();
  return { enabled: s.enabled, pid: s.pid, backlog_limit: s.backlog_limit, backlog_wait_time: s.backlog_wait_time, rules: auditRules() };
}

function checkRestored(before, label) {
  const after = snapshotAuditState();
  const diffs = [];
  for (const k of ['enabled', 'pid', 'backlog_limit', 'backlog_wait_time']) if (after[k] !== before[k]) diffs.push(`${k} ${before[k]} -> ${after[k]}`);
  if (after.rules.join('\n') !== before.rules.join('\n')) diffs.push(`rules differ: ${after.rules.length} now, ${before.rules.length} before`);
  if (diffs.length > 0) log(`WARNING after ${label}: audit state not as found: ${diffs.join('; ')}`);
  return diffs;
}

/**
 * Runs `undo` (synchronous) if this process exits or is interrupted before the returned release() is
 * called: a bench stopped by Ctrl-C, `timeout` or an uncaught error still puts the kernel back.
 * A signal then ends the process with the usual 128+signal status. SIGKILL cannot be caught.
 */
const ABORT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
function onAbort(undo) {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    undo();
  };
  const onSignal = (sig) => {
    once();
    process.exit(128 + os.constants.signals[sig]);
  };
  process.on('exit', once);
  for (const s of ABORT_SIGNALS) process.on(s, onSignal);
  return () => {
    done = true;
    process.removeListener('exit', once);
    for (const s of ABORT_SIGNALS) process.removeListener(s, onSignal);
  };
}

/** Puts enabled, backlog_limit and backlog_wait_time back as `before` had them (only what differs). */
function restoreAuditStatus(before) {
  const now = auditStatus();
  if (now.enabled !== before.enabled) execFileSync('auditctl', ['-e', String(before.enabled)], { stdio: 'ignore' });
  if (now.backlog_limit !== before.backlog_limit) execFileSync('auditctl', ['-b', String(before.backlog_limit)], { stdio: 'ignore' });
  if (now.backlog_wait_time !== before.backlog_wait_time) execFileSync('auditctl', ['--backlog_wait_time', String(before.backlog_wait_time)], { stdio: 'ignore' });
}

/**
 * CPU (utime+stime), peak RSS and kernel `lost` of process `pid` while `run()` works (the load and its
 * drain); `run`'s result comes back as `result`.
 */
async function measureWindow(pid, run) {
  const t0Threads = threadCpu(pid);
  const s0 = procStat(pid);
  const k0 = auditStatus();
  const rss = rssSampler(pid);
  const t0 = Date.now();
  const result = await run();
  const windowSecs = (Date.now() - t0) / 1000;
  const s1 = procStat(pid);
  const threads = threadCpuDelta(t0Threads, threadCpu(pid));
  const k1 = auditStatus();
  const peakRss = rss.stop();
  return { result, windowSecs, cpuSecs: s1.cpuSecs - s0.cpuSecs, threads, peakRssMiB: peakRss / 2 ** 20, finalRssMiB: s1.rssBytes / 2 ** 20, kernelLost: k1.lost - k0.lost };
}

/** utime+stime seconds of each thread of `pid`, summed by thread name (node's helper threads share one); the main thread is `NAME (main)`. */
function threadCpu(pid) {
  const out = {};
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const st = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (st === null) continue; // the thread ended between the listing and the read
    const name = String(tid) === String(pid) ? `${st.comm} (main)` : st.comm;
    out[name] = (out[name] ?? 0) + st.cpuSecs;
  }
  return out;
}

/** Per thread name, the CPU seconds spent between two threadCpu() readings (only names that used any). */
function threadCpuDelta(before, after) {
  const out = {};
  for (const [name, secs] of Object.entries(after)) {
    const d = secs - (before[name] ?? 0);
    if (d > 0) out[name] = Math.round(d * 100) / 100;
  }
  return out;
}

/**
 * `perf record -g` of process `pid` into `file` until stop() (nothing when `file` is unset): where the
 * reader thread and the kernel spend, which --cpu-prof cannot see. Resolves once perf wrote its file.
 */
function startPerfRecord(pid, file) {
  if (!file) return { stop: async () => undefined };
  const child = spawn('perf', ['record', '-q', '-F', String(process.env.CREDWATCH_BENCH_PERF_HZ ?? 999), '-g', '-p', String(pid), '-o', file], { stdio: 'ignore' });
  const done = new Promise((r) => child.on('exit', r));
  return {
    async stop() {
      child.kill('SIGINT');
      await Promise.race([done, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

/** The agent's drops by cause between two scrapes (only causes that grew). */
function dropsBetween(m0, m1) {
  const drops = {};
  for (const k of Object.keys(m1)) {
    if (!k.startsWith('credwatch_drops_total')) continue;
    const n = m1[k] - (m0[k] ?? 0);
    if (n > 0) drops[/cause="([^"]*)"/.exec(k)?.[1] ?? k] = n;
  }
  return drops;
}

/** Compiles bench/loadgen.c into a temp dir once per process. */
let loadgenPath = null;
function buildLoadgen() {
  if (loadgenPath) return loadgenPath;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-loadgen-'));
  const out = path.join(dir, 'loadgen');
  execFileSync('gcc', ['-O2', '-Wall', '-o', out, path.join(__dirname, 'loadgen.c')], { stdio: 'inherit' });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  loadgenPath = out;
  return out;
}

/** Runs the load generator; resolves with its JSON line. `opsRate` 0 = as fast as it can. */
function runLoadgen({ opsRate, seconds, workers = 1, open, mix = '8:1:1', count = 0, unix, childConnect = false }) {
  const args = ['--rate', String(opsRate), '--seconds', String(seconds), '--workers', String(workers), '--mix', mix];
  if (count > 0) args.push('--count', String(count));
  if (open) args.push('--open', open);
  if (unix) args.push('--unix', unix);
  if (childConnect) args.push('--child-connect');
  return new Promise((resolve, reject) => {
    const child = spawn(buildLoadgen(), args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`loadgen exited ${code}`));
      resolve(JSON.parse(out.trim()));
    });
  });
}

/** comm, utime+stime in seconds and RSS in bytes from a proc(5) stat file (a process's or a thread's), or null when it is gone. */
function readStat(file) {
  let stat;
  try {
    stat = fs.readFileSync(file, 'latin1');
  } catch {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after "comm": state(3) ... utime(14) stime(15) ... rss(24), 1-based in proc(5).
  return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuSecs: (Number(f[11]) + Number(f[12])) / CLK_TCK, rssBytes: Number(f[21]) * PAGE };
}

/** utime+stime in seconds and RSS in bytes of one process, or null when it is gone. */
function procStat(pid) {
  return readStat(`/proc/${pid}/stat`);
}

/** Samples RSS every `ms` and remembers the peak, until stop(). */
function rssSampler(pid, ms = 250) {
  let peak = 0;
  const t = setInterval(() => {
    const s = procStat(pid);
    if (s && s.rssBytes > peak) peak = s.rssBytes;
  }, ms);
  return {
    stop() {
      clearInterval(t);
      const s = procStat(pid);
      if (s && s.rssBytes > peak) peak = s.rssBytes;
      return peak;
    },
  };
}

/**
 * A pod service-account volume as the kubelet lays it out (a plain directory here: the watch is the
 * same), so the agent's default rules put a `-w ... -p r` watch on it (PodVolumeWatcher) and the
 * generator's opens of its token are audited. Removes only what it created.
 */
function createPodTokenVolume() {
  const uid = crypto.randomUUID();
  const madeKubelet = !fs.existsSync('/var/lib/kubelet');
  const madePods = !fs.existsSync('/var/lib/kubelet/pods');
  const dir = path.join('/var/lib/kubelet/pods', uid, 'volumes', 'kubernetes.io~projected', 'kube-api-access-bench');
  fs.mkdirSync(dir, { recursive: true });
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'bench-not-a-real-token\n', { mode: 0o600 });
  return {
    dir,
    token,
    cleanup() {
      fs.rmSync(path.join('/var/lib/kubelet/pods', uid), { recursive: true, force: true });
      // The parents go only if this run made them and they are empty again.
      for (const [d, made] of [['/var/lib/kubelet/pods', madePods], ['/var/lib/kubelet', madeKubelet]]) {
        if (!made) continue;
        try {
          fs.rmdirSync(d);
        } catch {
          /* not empty: someone else uses it now */
        }
      }
    },
  };
}

/** Prometheus text -> { 'series{labels}': value }. */
async function scrape(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

function sumSeries(m, prefix, exclude = []) {
  let n = 0;
  for (const [k, v] of Object.entries(m)) if (k.startsWith(prefix) && !exclude.some((e) => k.includes(e))) n += v;
  return n;
}

function freePort() {
  return 20000 + Math.floor(Math.random() * 20000);
}

/** NODE_OPTIONS the systemd unit gives the agent (V8 heap flags), so the bench runs it as deployed. */
/** The node flags bin/credwatch's `#!/usr/bin/env -S node ...` line gives the agent when run as a program. */
function launcherNodeFlags() {
  const first = fs.readFileSync(path.join(ROOT, 'bin/credwatch'), 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter((a) => a !== '') : [];
}

function unitNodeOptions() {
  const unit = fs.readFileSync(path.join(ROOT, 'systemd/credwatch.service'), 'utf8');
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1]?.trim() ?? '';
}

/**
 * Starts `credwatch run` with the default rules; only storage.path and metrics.listen are set.
 * CREDWATCH_BENCH_CPU_PROF=DIR starts it as `node --cpu-prof --cpu-prof-dir=DIR`.
 */
async function startAgent({ workDir, podVolume }) {
  const port = freePort();
  const db = path.join(workDir, 'findings.db');
  const cfg = path.join(workDir, 'config.yaml');
  fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: "127.0.0.1:${port}"\n`);
  // CREDWATCH_BENCH_NODE_ARGS: extra node flags for the agent (e.g. --heapsnapshot-signal=SIGUSR2).
  const nodeArgs = [...launcherNodeFlags(), ...(process.env.CREDWATCH_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')];
  const prof = process.env.CREDWATCH_BENCH_CPU_PROF;
  if (prof) {
    fs.mkdirSync(prof, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${prof}`);
  }
  const logFile = path.join(workDir, 'agent.log');
  const logFd = fs.openSync(logFile, 'w');
  const env = { ...process.env, NODE_OPTIONS: [unitNodeOptions(), process.env.NODE_OPTIONS ?? ''].join(' ').trim() };
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bin/credwatch'), 'run', '--config', cfg], { stdio: ['ignore', logFd, logFd], env });
  fs.closeSync(logFd);
  let exited = null;
  const exit = new Promise((r) => child.on('exit', (code, sig) => r((exited = { code, sig }))));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`agent exited at start (${JSON.stringify(exited)}): ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) throw new Error('agent did not start in 20 s');
    try {
      const m = await scrape(port);
      const rules = auditRules();
      const ready = m['credwatch_info{version="0.1.0",mode="unicast"}'] === 1 || Object.keys(m).some((k) => k.startsWith('credwatch_info') && k.includes('mode="unicast"'));
      if (ready && (!podVolume || rules.some((r) => r.includes(podVolume.dir)))) break;
    } catch {
      /* not listening yet */
    }
    await sleep(200);
  }
  return {
    pid: child.pid,
    port,
    db,
    logFile,
    rules: kernelRulesForPeer(),
    metrics: () => scrape(port),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const r = await Promise.race([exit, sleep(30_000).then(() => null)]);
      if (!r) {
        child.kill('SIGKILL');
        await exit;
        throw new Error('agent did not stop in 30 s');
      }
      return r;
    },
    /** The agent's final reader counters line (logged at stop). */
    readerReport() {
      for (const line of fs.readFileSync(logFile, 'utf8').split('\n').reverse()) {
        if (!line.includes('"audit reader stopped"')) continue;
        try {
          return JSON.parse(line);
        } catch {
          return null;
        }
      }
      return null;
    },
  };
}

/*
 * "Drained" = kernel backlog 0 and the daemon's intake over the last second down to background noise
 * (other processes on the lab machine exec now and then; 300 records/s is far below any load rate).
 */
async function waitDrained(readCount, noisePerSec, maxMs = 30_000) {
  const t0 = Date.now();
  let last = await readCount();
  for (;;) {
    await sleep(1000);
    const now = await readCount();
    const backlog = auditStatus().backlog;
    if (backlog === 0 && now - last <= noisePerSec) return Date.now() - t0;
    if (Date.now() - t0 > maxMs) return Date.now() - t0;
    last = now;
  }
}

/** Waits until the agent has taken everything the load produced. */
function waitAgentDrained(agent) {
  return waitDrained(async () => sumSeries(await agent.metrics(), 'credwatch_records_total'), 300);
}

/** A rule line from `auditctl -l` turned into the arguments that add (-a/-w) or delete (-d/-W) it. */
function ruleArgs(line, del) {
  const a = line.trim().split(/\s+/);
  if (del) {
    if (a[0] === '-a') a[0] = '-d';
    else if (a[0] === '-w') a[0] = '-W';
  }
  return a;
}

/**
 * Debian auditd writing its raw log to a tmpfs we mount, with exactly `rules` loaded by auditctl and
 * the agent's backlog settings. stop() undoes everything.
 */
async function startAuditd({ workDir, rules, backlogLimit }) {
  const before = auditStatus();
  const tmpfs = path.join(workDir, 'auditd-log');
  fs.mkdirSync(tmpfs, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1536m', 'credwatch-bench', tmpfs]);
  const conf = path.join(workDir, 'auditd-conf');
  fs.mkdirSync(path.join(conf, 'plugins'), { recursive: true });
  fs.writeFileSync(
    path.join(conf, 'auditd.conf'),
    [
      'local_events = yes',
      'write_logs = yes',
      `log_file = ${tmpfs}/audit.log`,
      'log_group = root',
      'log_format = RAW',
      'flush = INCREMENTAL_ASYNC',
      'freq = 50',
      'max_log_file = 1400',
      'num_logs = 1',
      'max_log_file_action = IGNORE',
      'space_left = 2',
      'space_left_action = IGNORE',
      'admin_space_left = 1',
      'admin_space_left_action = IGNORE',
      'disk_full_action = IGNORE',
      'disk_error_action = IGNORE',
      'q_depth = 2000',
      'overflow_action = SYSLOG',
      `plugin_dir = ${conf}/plugins`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const child = spawn('/usr/sbin/auditd', ['-n', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let exited = false;
  const exit = new Promise((r) => child.on('exit', () => r((exited = true))));
  const added = [];
  const skippedRules = [];
  let nativeRules = 0;
  const deleteAdded = () => {
    for (const r of added.splice(0).reverse()) {
      if (!r.startsWith(NATIVE_RULE)) {
        spawnSync('auditctl', ruleArgs(r, true), { stdio: 'ignore' });
        continue;
      }
      try {
        require(path.join(ROOT, 'dist/src/native/binding')).deleteRule(Buffer.from(r.slice(NATIVE_RULE.length), 'hex'));
      } catch {
        /* already gone */
      }
    }
  };
  // Interrupted: no time to wait for auditd, so kill it and put the kernel back synchronously.
  const release = onAbort(() => {
    deleteAdded();
    if (!exited) child.kill('SIGKILL');
    restoreAuditStatus(before);
    spawnSync('umount', ['-l', tmpfs], { stdio: 'ignore' });
  });
  const cleanup = async () => {
    deleteAdded();
    if (!exited) child.kill('SIGTERM');
    await Promise.race([exit, sleep(10_000)]);
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    restoreAuditStatus(before);
    spawnSync('umount', [tmpfs], { stdio: 'ignore' });
    release();
  };
  try {
    const deadline = Date.now() + 10_000;
    while (auditStatus().pid !== child.pid) {
      if (exited || Date.now() > deadline) throw new Error(`auditd did not register: ${stderr.slice(-500)}`);
      await sleep(50);
    }
    execFileSync('auditctl', ['-b', String(backlogLimit)], { stdio: 'ignore' });
    for (const r of rules) {
      // Debian's auditctl 3.0.9 has no io_uring list: it lists the agent's io_uring rules as
      // "-a always,(null) ..." and cannot add them. Given as their kernel payload (kernelRulesForPeer)
      // they are added through our addon, byte for byte the agent's; as auditctl text they cannot be,
      // and are counted in skippedRules.
      if (r.startsWith(NATIVE_RULE)) {
        require(path.join(ROOT, 'dist/src/native/binding')).addRule(Buffer.from(r.slice(NATIVE_RULE.length), 'hex'));
        added.push(r);
        nativeRules++;
        continue;
      }
      if (UNLISTABLE.test(r)) {
        skippedRules.push(r);
        continue;
      }
      execFileSync('auditctl', ruleArgs(r, false), { stdio: 'ignore' });
      added.push(r);
    }
    execFileSync('auditctl', ['-e', '1'], { stdio: 'ignore' });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    pid: child.pid,
    logFile: path.join(tmpfs, 'audit.log'),
    skippedRules,
    /** io_uring rules added through the addon (auditctl cannot). */
    nativeRules,
    stop: cleanup,
  };
}

/** Waits until auditd has written everything the load produced (log growth: ~200 bytes a record). */
function waitAuditdDrained(auditd) {
  const size = () => {
    try {
      return fs.statSync(auditd.logFile).size;
    } catch {
      return 0;
    }
  };
  return waitDrained(async () => size(), 300 * 200);
}

/** Rules as the agent installed them, minus its own never-audit-me rule (it names the agent's pid). */
function agentRulesForAuditd(agentRules) {
  return agentRules.filter((r) => !r.includes('credwatch:self'));
}

function mkWorkDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `credwatch-bench-${name}-`));
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * The first revision of every finding, as the agent stored it. An incident is updated in place (a later
 * event joins it: revision 2 about a second later, stored as a new row in place of the old), so a row
 * read at the end holds the update's stored_ms and the first finding's latency is lost. This reads the
 * new rows every `pollMs` while a bench runs and keeps, per incident object, the first revision it saw:
 * { latencyMs (stored_ms - time_ms), revision, rule, rules }. One first seen past revision 1 (its first
 * row was replaced within a poll) counts in `late`: its latency is an upper bound. close() reads the
 * last rows and stops.
 */
function watchFirstRevisions(db, pollMs = 20) {
  const Database = require(path.join(ROOT, 'node_modules/better-sqlite3'));
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  const rows = conn.prepare('SELECT seq, json, time_ms, stored_ms FROM findings WHERE seq > ? ORDER BY seq');
  const ids = new Set();
  const out = { byObject: new Map(), late: 0, close };
  let seq = 0;
  const poll = () => {
    for (const r of rows.all(seq)) {
      seq = r.seq;
      const f = JSON.parse(r.json);
      if (ids.has(f.id)) continue;
      ids.add(f.id);
      if ((f.revision ?? 1) > 1) out.late++;
      const object = f.incident?.object ?? null;
      if (!out.byObject.has(object)) out.byObject.set(object, { latencyMs: r.stored_ms - r.time_ms, revision: f.revision ?? 1, rule: f.rule, rules: f.rules ?? [f.rule] });
    }
  };
  const timer = setInterval(poll, pollMs);
  let open = true;
  function close() {
    if (!open) return;
    open = false;
    clearInterval(timer);
    poll();
    conn.close();
  }
  return out;
}

/**
 * A pod token read's incident among watchFirstRevisions' objects: named by the command line (its exec
 * went out first), or by the watched object its open showed (an exec held as a possible alias of the
 * actor's other object, then keyed by the object: src/detect/incidents.ts).
 */
function podTokenIncident(byObject, token) {
  return byObject.get(`file:${token}`) ?? byObject.get(`object:pod-token:${token}`);
}

module.exports = {
  ROOT,
  sleep,
  arg,
  flag,
  log,
  acquireLock,
  auditStatus,
  auditRules,
  onAbort,
  restoreAuditStatus,
  measureWindow,
  startPerfRecord,
  dropsBetween,
  snapshotAuditState,
  checkRestored,
  buildLoadgen,
  runLoadgen,
  procStat,
  rssSampler,
  createPodTokenVolume,
  scrape,
  sumSeries,
  startAgent,
  waitAgentDrained,
  startAuditd,
  waitAuditdDrained,
  agentRulesForAuditd,
  mkWorkDir,
  percentile,
  watchFirstRevisions,
  podTokenIncident,
};
