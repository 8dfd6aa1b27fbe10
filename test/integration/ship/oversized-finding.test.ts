/**
 * Issue 15, "one oversized finding stops an output for good", end to end. The input is the review's
 * case: bash started with 350 arguments of 4 KiB that are not UTF-8, running `kubectl exec ... cat
 * <token>` with the same arguments (on main that made a 10.9 MB finding as JSON, 12.8 MB as shipped),
 * between two ordinary token reads. `credwatch replay` runs it through the real pipeline; the findings
 * go into a real agent store and the real shipper delivers them to
 *  - `credwatch collector` (a child process on loopback, TLS, max_body_bytes 256 KiB), queried back
 *    with `credwatch findings --collector`;
 *  - an HTTPS receiver stub speaking Splunk HEC that answers 413 to any body over 256 KiB.
 * With the size cap (default 64 KiB) every finding arrives, the big one cut and marked `truncated`,
 * nothing set aside. The control: the same run with the cap raised to 4 MiB sets the big finding
 * aside at both receivers (their limit bites) while the ordinary ones still arrive.
 *
 * Needs a build (npm run build:ts). Loopback only; no kernel audit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import type { Finding } from '../../../src/model/finding';
import { createShipper, type OutputConfig, type Shipper } from '../../../src/ship/shipper';
import { openStore } from '../../../src/store';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { captureLogger, json, startStub, waitFor } from '../../unit/ship/support';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hostileExecLines, bigNonUtf8ExecLines } = require('../../../bench/hostile-exec.js') as {
  hostileExecLines: (e: { serial: number; pid: number; ses?: number; exe: string; argv: string[] }) => string;
  bigNonUtf8ExecLines: (nArgs: number, argBytes: number, serial: number) => string;
};

const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'bin/credwatch');
const built = existsSync(join(ROOT, 'dist/src/cli/main.js'));
if (!built) console.warn('oversized-finding tests skipped: dist/ is not built (npm run build:ts)');

const LIMIT = 256 * 1024;
const TOKEN = 'oversized-e2e-token-0123456789abcdef';

let pki: TestPki;
let dir: string;
let log: string;

beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'credwatch-oversized-'));
  log = join(dir, 'audit.log');
  writeFileSync(
    log,
    // Each read in a login session of its own: three behaviours, three incidents (one session reading
    // the same token three times would be one incident with count 3).
    hostileExecLines({ serial: 1, pid: 5001, ses: 101, exe: '/usr/bin/cat', argv: ['cat', '/var/run/secrets/kubernetes.io/serviceaccount/token'] }) +
      bigNonUtf8ExecLines(350, 4096, 10) +
      hostileExecLines({ serial: 20, pid: 5020, ses: 102, exe: '/usr/bin/cat', argv: ['cat', '/run/secrets/kubernetes.io/serviceaccount/token'] }),
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

function replay(maxKb: number): { findings: Finding[]; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'replay', '--json', '--max-finding-kb', String(maxKb), log], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  return { findings: r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Finding), stderr: r.stderr };
}

const bytes = (f: Finding): number => Buffer.byteLength(JSON.stringify(f));
const big = (fs: Finding[]): Finding => fs.find((f) => f.process?.exe === '/usr/local/bin/kubectl') as Finding;

/** Stores `findings` in a fresh agent database and ships them to `output` until the outbox is empty. */
async function ship(findings: Finding[], output: OutputConfig): Promise<{ delivered: number; setAside: number; logs: string[] }> {
  const store = openStore(join(mkdtempSync(join(dir, 'agent-')), 'findings.db'));
  store.insertFindings(findings);
  const { logger, lines } = captureLogger();
  const shipper: Shipper = createShipper({ outputs: [output], outbox: store.outbox, host: 'node-a', agentId: 'agent-a', logger, backoff: { baseMs: 20, capMs: 200 } });
  shipper.start();
  try {
    await waitFor(() => store.outbox.depth(output.name) === 0, 60_000, `outbox of ${output.name} empty`);
    const s = shipper.stats()[output.name];
    return { delivered: s?.delivered ?? -1, setAside: s?.setAside ?? -1, logs: lines.map((l) => l.msg) };
  } finally {
    await shipper.stop();
    store.close();
  }
}

describe.skipIf(!built)('the 12.8 MB-argv finding, end to end', () => {
  let capped: Finding[];
  let uncapped: Finding[];
  let stderr: string;
  beforeAll(() => {
    ({ findings: capped, stderr } = replay(64));
    ({ findings: uncapped } = replay(4096));
  }, 240_000);

  it('replay cuts it to the 64 KiB cap, marked, counted; the ordinary findings are untouched', () => {
    expect(capped).toHaveLength(3);
    const b = big(capped);
    const raw = big(uncapped);
    console.log(`[oversized] big finding: ${bytes(raw)} bytes uncut (cap 4 MiB), ${bytes(b)} bytes cut (cap 64 KiB)`);
    expect(bytes(raw)).toBeGreaterThan(LIMIT);
    expect(bytes(b)).toBeLessThanOrEqual(64 * 1024);
    expect(b.truncated?.original_bytes).toBe(bytes(raw));
    expect(b.truncated?.fields).toEqual(expect.arrayContaining(['process.argv', 'process.parents.argv', 'evidence.records.text']));
    // Identity survives the cut: same id, rule, severity, time; the command still readable.
    expect({ id: b.id, rule: b.rule, severity: b.severity, time: b.time }).toEqual({ id: raw.id, rule: raw.rule, severity: raw.severity, time: raw.time });
    expect(b.process?.argv?.slice(0, 6)).toEqual(['kubectl', 'exec', 'web-0', '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token']);
    expect(b.process?.argv).toContainEqual(expect.stringMatching(/^…\[\+\d+ args\]$/));
    for (const f of capped.filter((x) => x !== b)) expect(f.truncated).toBeUndefined();
    expect(capped.filter((x) => x !== b)).toEqual(uncapped.filter((x) => x !== raw));
    expect(stderr).toContain(`1 findings cut to 65536 bytes (${bytes(raw)} bytes before)`);
  });

  it('credwatch collector (256 KiB body limit): all three arrive, the big one cut and marked; nothing set aside', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const cfg = join(dir, 'collector.yaml');
    writeFileSync(
      cfg,
      `listen: 127.0.0.1:${port}\ntls:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n` +
        `agents:\n  - agent: agent-a\n    token_sha256: ${sha256Hex(TOKEN)}\n    roles: [ingest, query]\n` +
        `storage:\n  path: ${join(dir, 'collector', 'collector.db')}\nmax_body_bytes: ${LIMIT}\n`,
      { mode: 0o600 },
    );
    const proc = spawn(process.execPath, [BIN, 'collector', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    const kill = setTimeout(() => proc.kill('SIGKILL'), 150_000);
    try {
      await waitFor(() => out.includes('collector listening'), 20_000, 'collector listening');
      const output: OutputConfig = { name: 'central', type: 'collector', url: `https://127.0.0.1:${port}`, token: TOKEN, tls: { ca_file: pki.caFile }, flush_interval_ms: 50 };

      const control = await ship(uncapped, output);
      expect(control).toMatchObject({ delivered: 2, setAside: 1 });

      const r = await ship(capped, output);
      expect(r).toMatchObject({ delivered: 3, setAside: 0 });

      const q = spawnSync(process.execPath, [BIN, 'findings', '--collector', `https://127.0.0.1:${port}`, '--ca', pki.caFile, '--token-env', 'CW_T', '--json', '--limit', '0'], {
        encoding: 'utf8',
        env: { ...process.env, CW_T: TOKEN, CREDWATCH_DB: '' },
        timeout: 30_000,
        maxBuffer: 64 << 20,
      });
      expect(q.status, q.stderr).toBe(0);
      const got = q.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Finding);
      expect(got.map((f) => f.id).sort()).toEqual(capped.map((f) => f.id).sort());
      const b = got.find((f) => f.id === big(capped).id) as Finding;
      expect(b.truncated).toEqual(big(capped).truncated);
    } finally {
      clearTimeout(kill);
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 180_000);

  it('an HTTPS receiver with a 256 KiB body limit (Splunk HEC): all three arrive, the big one cut; nothing set aside', async () => {
    const received: Finding[] = [];
    const stub = await startStub({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
      if (req.raw.length > LIMIT) return json(res, 413, { text: 'Content too large', code: 27 });
      for (const line of req.body.split('\n').filter((l) => l !== '')) received.push((JSON.parse(line) as { event: Finding }).event);
      json(res, 200, { text: 'Success', code: 0 });
    });
    try {
      const output: OutputConfig = { name: 'hec', type: 'splunk-hec', url: stub.url, token: 'hec-token', gzip: false, tls: { ca_file: pki.caFile }, flush_interval_ms: 50 };
      const control = await ship(uncapped, output);
      expect(control).toMatchObject({ delivered: 2, setAside: 1 });
      expect(control.logs.some((m) => /set aside/.test(m))).toBe(true);

      received.length = 0;
      const r = await ship(capped, output);
      expect(r).toMatchObject({ delivered: 3, setAside: 0 });
      expect(received.map((f) => f.id)).toEqual(capped.map((f) => f.id));
      expect(received.find((f) => f.truncated)?.truncated).toEqual(big(capped).truncated);
    } finally {
      await stub.close();
    }
  }, 180_000);
});
