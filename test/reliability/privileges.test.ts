/**
 * Privileges: the daemon keeps only what it needs, and the collector needs nothing.
 *  - `credwatch run` as root: after start, /proc/<pid>/status shows exactly CAP_AUDIT_CONTROL,
 *    CAP_AUDIT_READ and CAP_SYS_PTRACE in the effective, permitted and bounding sets, nothing
 *    inheritable or ambient, no_new_privs set; every thread but Node's signal-blocking inspector
 *    thread has the same; it still produces findings, and SIGTERM leaves the kernel as it was.
 *  - `credwatch collector` as nobody (setpriv --reuid=65534 --regid=65534 --clear-groups), with its
 *    files readable by that user: serves HTTPS, ingests a batch, runs with no capabilities at all.
 * Kernel parts run under the lab lock: flock /tmp/credwatch-lab.lock npx vitest run test/reliability/privileges.test.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/collector/auth';
import { capabilityMask, DAEMON_CAPABILITIES, parseProcStatusCapabilities } from '../../src/daemon/capabilities';
import { makeTestPki } from '../helpers/tls';
import { makeFinding } from '../unit/store/fixtures';
import { CREDWATCH_BIN, cli, freeLoopbackPort, kernelSkipReason, kernelSnapshot, REPO_ROOT, startDaemon, triggerDockerTcp, waitUntil } from './daemon';

const kernelSkip = kernelSkipReason();
if (kernelSkip) console.log(`skipping the daemon privilege test: ${kernelSkip}`);
const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
const collectorSkip = process.getuid?.() !== 0 ? 'not root (cannot switch to nobody)' : !hasSetpriv ? 'setpriv (util-linux) not installed' : !fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js')) ? 'dist/ not built' : null;
if (collectorSkip) console.log(`skipping the unprivileged collector test: ${collectorSkip}`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

describe('daemon capabilities', () => {
  it.skipIf(kernelSkip !== null)('keeps only audit control/read and ptrace, in every thread, and still works', async () => {
    const before = kernelSnapshot();
    const dir = tempDir('credwatch-priv-');
    const db = path.join(dir, 'findings.db');
    const cfg = path.join(dir, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: 127.0.0.1:${await freeLoopbackPort()}\n`, { mode: 0o600 });
    const d = await startDaemon(cfg);
    try {
      const dropped = await d.waitForLog((l) => l.msg === 'capabilities dropped', 10_000, 'capabilities dropped');
      expect(dropped.keep).toEqual(DAEMON_CAPABILITIES);
      const want = capabilityMask(DAEMON_CAPABILITIES);
      const caps = parseProcStatusCapabilities(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'));
      expect(caps.effective).toBe(want);
      expect(caps.permitted).toBe(want);
      expect(caps.bounding).toBe(want);
      expect(caps.inheritable).toBe(0n);
      expect(caps.ambient).toBe(0n);
      expect(caps.noNewPrivs).toBe(true);
      const tasks = fs.readdirSync(`/proc/${d.pid}/task`);
      const privileged = tasks.filter((t) => parseProcStatusCapabilities(fs.readFileSync(`/proc/${d.pid}/task/${t}/status`, 'utf8')).effective !== want);
      // Node's inspector signal thread blocks every signal and cannot take part; nothing else may keep more.
      expect(privileged.length).toBeLessThanOrEqual(1);
      expect(dropped.threadsMissed).toBe(privileged.length);

      triggerDockerTcp();
      await waitUntil('a finding in the db', () => {
        const r = cli(['findings', '--db', db, '--json']);
        return r.status === 0 && r.stdout.trim() !== '';
      }, 15_000, 300);
    } finally {
      const r = await d.stop('SIGTERM');
      expect(r.code).toBe(0);
    }
    expect(kernelSnapshot()).toEqual(before);
  }, 60_000);
});

describe('unprivileged collector', () => {
  it.skipIf(collectorSkip !== null)('runs as nobody with no capabilities, serves HTTPS and ingests', async () => {
    const pki = makeTestPki();
    const dir = tempDir('credwatch-collector-nobody-');
    try {
      // Everything the collector reads must be readable by nobody; its state dir must be its own.
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(pki.dir, 0o755);
      fs.chownSync(pki.server.keyFile, 65534, 65534);
      fs.chmodSync(pki.server.keyFile, 0o600);
      const state = path.join(dir, 'state');
      fs.mkdirSync(state, { mode: 0o700 });
      fs.chownSync(state, 65534, 65534);
      const port = await freeLoopbackPort();
      const token = 'nobody-collector-token-0123456789';
      const cfg = path.join(dir, 'collector.yaml');
      fs.writeFileSync(
        cfg,
        `listen: 127.0.0.1:${port}\ntls:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\nagents:\n  - agent: a\n    token_sha256: ${sha256Hex(token)}\nstorage:\n  path: ${path.join(state, 'collector.db')}\n`,
        { mode: 0o600 },
      );
      fs.chownSync(cfg, 65534, 65534);
      const proc = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, CREDWATCH_BIN, 'collector', '--config', cfg], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
      });
      let out = '';
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      try {
        await waitUntil('collector listening', () => out.includes('collector listening') || proc.exitCode !== null, 20_000);
        expect(out).toContain('collector listening');
        const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
        expect(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m.test(status)).toBe(true);
        const caps = parseProcStatusCapabilities(status);
        expect(caps.effective).toBe(0n);
        expect(caps.permitted).toBe(0n);
        const agent = new Agent({ connect: { ca: pki.ca } });
        const res = await request(`https://127.0.0.1:${port}/v1/findings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
          body: `${JSON.stringify(makeFinding())}\n`,
          dispatcher: agent,
        });
        expect(res.statusCode).toBe(200);
        expect(await res.body.json()).toEqual({ accepted: 1, replaced: 0, duplicates: 0 });
        await agent.close();
        const st = fs.statSync(path.join(state, 'collector.db'));
        expect(st.uid).toBe(65534);
        expect(st.mode & 0o077).toBe(0);
        expect(out).not.toContain(token);
      } finally {
        proc.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    } finally {
      pki.cleanup();
    }
  }, 60_000);
});
