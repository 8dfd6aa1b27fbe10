/**
 * Agent -> collector end to end over loopback with real TLS (certificates made by openssl in the test)
 * and real SQLite on both sides: the agent's shipper runs in a child process over the agent's outbox,
 * the collector in this process over its own database. A TLS proxy in front of the collector injects
 * the faults. After each scenario every finding is in the collector exactly once and the agent's
 * outbox is empty.
 *
 * Needs a build (the child runs dist/): npx tsc -p tsconfig.build.json && node scripts/copy-assets.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { parseCollectorConfig, type CollectorConfig } from '../../../src/collector/config';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import { collectorStoreOn } from '../../../src/collector/store';
import type { OutputConfig } from '../../../src/ship/shipper';
import { openStore, type FindingStore } from '../../../src/store';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { makeFindings, startStub, waitFor, type RecordedRequest, type Stub } from '../../unit/ship/support';

const DIST_SHIPPER = resolve(__dirname, '../../../dist/src/ship/shipper.js');
const CHILD = resolve(__dirname, 'ship-child.cjs');
const built = existsSync(DIST_SHIPPER) && existsSync(resolve(__dirname, '../../../dist/src/store/index.js'));
if (!built) console.warn('e2e collector tests skipped: dist/ is not built (run npx tsc -p tsconfig.build.json first)');

const TOKEN = 'agent-a-e2e-token-0123456789';

let pki: TestPki;
let dir: string;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Lab {
  agentStore: FindingStore;
  collectorStore: FindingStore;
  config: CollectorConfig;
  collector: CollectorServer | null;
  collectorPort: number;
  startCollector(): Promise<void>;
  stopCollector(): Promise<void>;
  /** Distinct finding ids stored by the collector. */
  collected(): number;
  duplicates(): number;
}

async function lab(): Promise<Lab> {
  dir = mkdtempSync(join(tmpdir(), 'credwatch-e2e-'));
  const agentStore = openStore(join(dir, 'agent', 'findings.db'));
  const collectorStore = openStore(join(dir, 'collector', 'collector.db'));
  const store = collectorStoreOn(collectorStore.db);
  const config = parseCollectorConfig(
    `tls: {cert_file: ${pki.server.certFile}, key_file: ${pki.server.keyFile}}\nagents:\n  - {agent: agent-a, token_sha256: ${sha256Hex(TOKEN)}}\nrate_limit: {requests_per_second: 10000, burst: 10000}\n`,
    'collector.yaml',
    {},
  );
  const l: Lab = {
    agentStore,
    collectorStore,
    config,
    collector: null,
    collectorPort: 0,
    async startCollector() {
      l.collector = await startCollectorServer({ config, store, listen: { host: '127.0.0.1', port: l.collectorPort } });
      l.collectorPort = l.collector.port;
    },
    async stopCollector() {
      await l.collector?.close();
      l.collector = null;
    },
    collected: () => (collectorStore.db.prepare('SELECT count(*) AS n FROM fleet_findings').get() as { n: number }).n,
    duplicates: () => (collectorStore.db.prepare('SELECT json FROM fleet_agents').pluck().all() as string[]).reduce((n, j) => n + (JSON.parse(j) as { duplicates: number }).duplicates, 0),
  };
  cleanup.push(() => {
    agentStore.close();
    collectorStore.close();
  });
  cleanup.push(() => l.stopCollector());
  return l;
}

/** A TLS proxy in front of the collector; `decide` can fail, delay, or pass each request. */
async function proxy(l: Lab, decide: (n: number, req: RecordedRequest) => Promise<number | null> | number | null, delayAfterMs: (n: number) => number = () => 0): Promise<Stub & { forwarded: number }> {
  const upstream = new Agent({ connect: { ca: pki.ca } });
  let n = 0;
  const state = { forwarded: 0 };
  const stub = await startStub(pki.server, async (req, res) => {
    const i = ++n;
    const fail = await decide(i, req);
    if (fail !== null) {
      res.writeHead(fail, { 'content-type': 'text/html' });
      res.end(`<html><body>${fail} from the proxy</body></html>`);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'content-type', 'content-encoding', 'x-credwatch-agent']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const up = await request(`https://127.0.0.1:${l.collectorPort}${req.path}`, { method: 'POST', body: req.raw, headers, dispatcher: upstream });
    const text = await up.body.text();
    state.forwarded++;
    const wait = delayAfterMs(i);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    res.writeHead(up.statusCode, { 'content-type': 'application/json' });
    res.end(text);
  });
  cleanup.push(async () => {
    await stub.close();
    await upstream.close();
  });
  // defineProperty, not Object.assign: assign would copy the getter's value once.
  return Object.defineProperty(stub, 'forwarded', { get: () => state.forwarded }) as Stub & { forwarded: number };
}

interface Child {
  proc: ChildProcess;
  logs: string[];
  exited: Promise<number | null>;
}

function startChild(l: Lab, url: string, over: Partial<OutputConfig> = {}): Child {
  const outputs: OutputConfig[] = [{ name: 'central', type: 'collector', url, token: TOKEN, tls: { ca_file: pki.caFile }, batch_size: 50, flush_interval_ms: 50, timeout_ms: 5000, ...over }];
  const proc = spawn(process.execPath, [CHILD], {
    env: { ...process.env, CW_SHIP_CHILD: JSON.stringify({ db: l.agentStore.path, outputs, backoff: { baseMs: 50, capMs: 400, fastRetries: 4 } }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (d: Buffer) => logs.push(`stderr: ${d.toString()}`));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const child = { proc, logs, exited };
  cleanup.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
  });
  return child;
}

async function stopChild(c: Child): Promise<void> {
  c.proc.kill('SIGTERM');
  expect(await c.exited).toBe(0);
}

function commit(l: Lab, n: number): string[] {
  const fs = makeFindings(n);
  l.agentStore.insertFindings(fs);
  return fs.map((f) => f.id);
}

function assertExactlyOnce(l: Lab, ids: string[]): void {
  const rows = l.collectorStore.db.prepare('SELECT id, count(*) AS n FROM fleet_findings GROUP BY agent, id').all() as { id: string; n: number }[];
  const got = new Map(rows.map((r) => [r.id, r.n]));
  expect(rows.length).toBe(ids.length);
  for (const id of ids) expect(got.get(id)).toBe(1);
  expect(l.agentStore.outbox.depth('central')).toBe(0);
}

describe.skipIf(!built)('agent -> collector end to end (real TLS, real SQLite, shipper in a child process)', () => {
  it('collector down for a while, then back: everything arrives exactly once', async () => {
    const l = await lab();
    await l.startCollector();
    await l.stopCollector(); // keep the port, nobody listening
    const ids = commit(l, 300);
    const child = startChild(l, `https://127.0.0.1:${l.collectorPort}`);
    await waitFor(() => child.logs.some((s) => s.includes('connection refused')), 10_000, 'a refused attempt');
    await new Promise((r) => setTimeout(r, 1000));
    expect(l.agentStore.outbox.depth('central')).toBe(300);
    await l.startCollector();
    await waitFor(() => l.collected() === 300 && l.agentStore.outbox.depth('central') === 0, 15_000, 'all 300 collected');
    ids.push(...commit(l, 20)); // still flowing afterwards
    await waitFor(() => l.collected() === 320, 10_000);
    await stopChild(child);
    assertExactlyOnce(l, ids);
    const refusedLines = child.logs.filter((s) => s.includes('connection refused'));
    expect(refusedLines.length).toBe(1); // one line for the whole outage, not one per retry
  });

  it('agent SIGKILLed mid-batch and restarted: the unacked batch is resent and deduplicated', async () => {
    const l = await lab();
    await l.startCollector();
    // The proxy forwards each batch (the collector stores it) and answers only 1.5 s later: a kill in
    // that window leaves a batch stored but not acked.
    const front = await proxy(l, () => null, (n) => (n === 3 ? 1500 : 0));
    const ids = commit(l, 500);
    const first = startChild(l, front.url, { batch_size: 50 });
    await waitFor(() => front.forwarded === 3, 15_000, 'third batch stored by the collector');
    first.proc.kill('SIGKILL');
    await first.exited;
    expect(l.collected()).toBe(150);
    const cursor = l.agentStore.outbox.depth('central');
    expect(cursor).toBe(400); // batch 3 was stored but never acked
    const second = startChild(l, front.url, { batch_size: 50 });
    await waitFor(() => l.agentStore.outbox.depth('central') === 0, 20_000, 'outbox drained after restart');
    await stopChild(second);
    assertExactlyOnce(l, ids);
    expect(l.duplicates()).toBe(50); // exactly the unacked batch came twice; the collector dropped it
    expect(l.agentStore.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('a 5xx burst from the proxy: backoff, then everything exactly once', async () => {
    const l = await lab();
    await l.startCollector();
    const codes = [502, 503, 503, 500, 504, 503];
    const front = await proxy(l, (n) => codes[n - 1] ?? null);
    const ids = commit(l, 200);
    const child = startChild(l, front.url);
    await waitFor(() => l.agentStore.outbox.depth('central') === 0, 20_000, 'outbox drained');
    await stopChild(child);
    assertExactlyOnce(l, ids);
    expect(front.requests.length).toBe(200 / 50 + codes.length);
    expect(child.logs.filter((s) => s.includes('delivery to central failed')).length).toBeLessThanOrEqual(codes.length);
    expect(child.logs.some((s) => s.includes('resumed after 6 failed attempts'))).toBe(true);
  });

  it('a slow collector (and one answer slower than the timeout): everything exactly once', async () => {
    const l = await lab();
    await l.startCollector();
    const front = await proxy(l, () => null, (n) => (n === 2 ? 2500 : 300));
    const ids = commit(l, 250);
    const child = startChild(l, front.url, { timeout_ms: 1500 });
    await waitFor(() => l.agentStore.outbox.depth('central') === 0, 30_000, 'outbox drained');
    await stopChild(child);
    assertExactlyOnce(l, ids);
    expect(l.duplicates()).toBe(50); // the batch whose answer came too late was resent and dropped by id
    expect(child.logs.some((s) => s.includes('did not answer within 1500 ms'))).toBe(true);
  });
});
