/*
 * A throwaway PostgreSQL server for tests and bench/fleet.js: Debian's PostgreSQL 15 binaries
 * (/usr/lib/postgresql/15/bin, package postgresql-15; CREDWATCH_PG_BIN overrides), a data directory in
 * a temp dir, listening on 127.0.0.1 on a free port, password (SCRAM) authentication, its socket in
 * the temp dir. As root it runs as the `postgres` user (PostgreSQL refuses to run as root).
 *
 * Kill timer: the server runs under `timeout`, so a test run that dies leaves no server behind for
 * longer than `maxSeconds`; it is also stopped when this process exits.
 *
 * Plain CommonJS so that the benchmark (node, no TypeScript) and the tests share it.
 */
'use strict';
/* global setTimeout */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');

const BIN = process.env.CREDWATCH_PG_BIN || '/usr/lib/postgresql/15/bin';

/** Why PostgreSQL tests cannot run here, or null when they can. */
function unavailableReason() {
  if (!fs.existsSync(path.join(BIN, 'initdb'))) return `PostgreSQL 15 is not installed (${BIN}/initdb missing; scripts/install-test-deps.sh installs postgresql-15)`;
  if (process.getuid && process.getuid() === 0 && userIds('postgres') === null) return 'running as root and there is no postgres user to run the server as';
  return null;
}

function userIds(name) {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** A port free on 127.0.0.1 now (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a server. Options: user (default credwatch), password (default random), fsync (default true:
 * the bench measures durable commits; tests may turn it off), settings ({name: value} extra -c flags),
 * maxSeconds (kill timer, default 1800), ssl ({certFile, keyFile}: TLS on, with that certificate).
 */
async function startPostgres(opts = {}) {
  const why = unavailableReason();
  if (why) throw new Error(why);
  const user = opts.user || 'credwatch';
  const password = opts.password || crypto.randomBytes(12).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-pg-'));
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pwfile');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  const ids = process.getuid && process.getuid() === 0 ? userIds('postgres') : null;
  if (ids) {
    fs.chownSync(dir, ids.uid, ids.gid);
    fs.chownSync(pwfile, ids.uid, ids.gid);
  }
  const asUser = ids ? { uid: ids.uid, gid: ids.gid } : {};
  const init = spawnSync(path.join(BIN, 'initdb'), ['-D', data, '-U', user, `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], {
    encoding: 'utf8',
    cwd: dir,
    ...asUser,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  fs.rmSync(pwfile);
  const tls = {};
  if (opts.ssl) {
    // PostgreSQL wants its key owned by the server's user and not readable by others.
    for (const [name, src] of [['server.crt', opts.ssl.certFile], ['server.key', opts.ssl.keyFile]]) {
      const dst = path.join(dir, name);
      fs.copyFileSync(src, dst);
      fs.chmodSync(dst, 0o600);
      if (ids) fs.chownSync(dst, ids.uid, ids.gid);
    }
    Object.assign(tls, { ssl: 'on', ssl_cert_file: path.join(dir, 'server.crt'), ssl_key_file: path.join(dir, 'server.key') });
  }
  const port = opts.port || (await freePort());
  const settings = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    fsync: opts.fsync === false ? 'off' : 'on',
    max_connections: '200',
    shared_buffers: '256MB',
    log_min_messages: 'warning',
    ...tls,
    ...(opts.settings || {}),
  };
  const maxSeconds = opts.maxSeconds || 1800;
  let proc = null;
  let exited = null;
  const log = path.join(dir, 'server.log');

  const start = async () => {
    const args = ['-s', 'INT', '-k', '10', String(maxSeconds), path.join(BIN, 'postgres'), '-D', data];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const out = fs.openSync(log, 'a');
    proc = spawn('timeout', args, { stdio: ['ignore', out, out], cwd: dir, ...asUser });
    fs.closeSync(out);
    exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = spawnSync(path.join(BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q'], { timeout: 5000 });
      if (ready.status === 0) return;
      if (proc.exitCode !== null) throw new Error(`PostgreSQL exited at start: ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`PostgreSQL not ready in 30 s: ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
      await sleep(100);
    }
  };

  /** Fast shutdown (SIGINT: abort sessions, checkpoint), or SIGQUIT/SIGKILL-like immediate with mode 'immediate'. */
  const stop = async (mode = 'fast') => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    // timeout(1) passes INT/QUIT/TERM on to postgres (fast / immediate / smart shutdown).
    proc.kill(mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
    await exited;
    proc = null;
  };

  const onExit = () => {
    if (proc && proc.exitCode === null) proc.kill('SIGINT');
  };
  process.on('exit', onExit);
  await start();

  const url = `postgres://${user}@127.0.0.1:${port}/postgres`;
  return {
    dir,
    port,
    user,
    password,
    /** postgres://USER@127.0.0.1:PORT/postgres, without the password. */
    url,
    /** The URL of another database on this server. */
    urlFor: (db) => `postgres://${user}@127.0.0.1:${port}/${db}`,
    /** node-postgres connection options for `database` (default postgres). */
    connection: (database = 'postgres') => ({ host: '127.0.0.1', port, user, password, database }),
    /** Runs SQL through psql; returns stdout (unaligned, tuples only). */
    psql(sql, database = 'postgres') {
      const r = spawnSync(path.join(BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
        encoding: 'utf8',
        env: { ...process.env, PGPASSWORD: password },
        timeout: 120_000,
      });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout;
    },
    /** A fresh database (name: letters, digits, _). */
    createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      this.psql(`CREATE DATABASE ${name}`);
      return `postgres://${user}@127.0.0.1:${port}/${name}`;
    },
    running: () => proc !== null && proc.exitCode === null,
    pid: () => (proc ? proc.pid : null),
    start,
    stop,
    log: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''),
    /** Stops the server and removes its directory. */
    async destroy() {
      await stop();
      process.off('exit', onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startPostgres, unavailableReason, freePort, PG_BIN: BIN };
