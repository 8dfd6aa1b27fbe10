/**
 * The collector against hostile agents (issue 15 item 4), over real TLS on loopback with the real SQLite
 * store: bad input is a 400 naming the line (never a 500, never a stack trace in the log), future times
 * are refused, ids are per agent (with revisions), queries are paged by bytes and cursor and streamed,
 * connections / handshakes / bodies in flight are capped, and the store is synchronous=FULL.
 */
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { queryCollector, streamCollector } from '../../../src/collector/client';
import { parseCollectorConfig } from '../../../src/collector/config';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import { collectorStoreOn, openCollectorStore, queryAll, type CollectorStore } from '../../../src/collector/store';
import type { Finding } from '../../../src/model/finding';
import { openStore } from '../../../src/store';
import { openDatabase } from '../../../src/store/db';
import { bearer, closeAll, ndjson, postFindings } from '../../helpers/collector-http';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { captureLogger, makeFinding } from '../../unit/ship/support';

const TOKEN_A = 'agent-a-token-0123456789abcdef';
const TOKEN_C = 'agent-c-token-0123456789abcdef';
const TOKEN_READER = 'reader-token-0123456789abcdef';
const NOW = Date.UTC(2026, 10, 22, 13, 0, 0);

let pki: TestPki;
let dir: string;
let dbPath: string;
let store: CollectorStore;
let server: CollectorServer;
let logs: ReturnType<typeof captureLogger>;
let agent: Agent;

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'credwatch-collector-hard-'));
  dbPath = join(dir, 'collector.db');
  const config = parseCollectorConfig(
    `
tls: { cert_file: ${pki.server.certFile}, key_file: ${pki.server.keyFile} }
agents:
  - { agent: agent-a, token_sha256: ${sha256Hex(TOKEN_A)} }
  - { agent: agent-c, token_sha256: ${sha256Hex(TOKEN_C)} }
  - { agent: reader, token: ${TOKEN_READER}, roles: [query] }
storage: { path: ${dbPath} }
max_body_bytes: 2097152
query_page_bytes: 1048576
limits: { max_connections: 8, tls_handshake_timeout_ms: 500, max_inflight_bytes: 3145728 }
rate_limit: { requests_per_second: 10000, burst: 10000 }
`,
    'collector.yaml',
    {},
  );
  store = openCollectorStore(config.storage.path);
  logs = captureLogger();
  server = await startCollectorServer({ config, store, logger: logs.logger, now: () => NOW, listen: { host: '127.0.0.1', port: 0 } });
  agent = new Agent({ connect: { ca: pki.ca } });
});

afterAll(() => closeAll([agent, server, store], dir, () => pki.cleanup()));

const post = (body: string, token = TOKEN_A) => postFindings(server.url, body, bearer(token), agent);

const stored = (q = {}) => queryAll(store, q);
const readerTls = () => ({ ca: pki.caFile, token: TOKEN_READER });

describe('bad input is a 400 naming the line, never a 500', () => {
  it('refuses 5,000- and 100,000-deep nesting with 400 and no stack trace in the log', async () => {
    for (const depth of [5000, 100_000]) {
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      const inEvidence = JSON.stringify(makeFinding()).replace(/"evidence":\[/, `"evidence":[${deep},`);
      const res = await post(`${JSON.stringify(makeFinding())}\n${inEvidence}\n`);
      expect(res.status).toBe(400);
      expect(res.json.error).toMatch(/^line 2: field "evidence\.0"/);
      const top = await post(`${deep}\n`);
      expect(top.status).toBe(400);
      expect(top.json.error).toMatch(/^line 1: not a JSON object/);
    }
    expect(logs.lines.some((l) => l.level >= 50)).toBe(false);
    expect(JSON.stringify(logs.lines)).not.toMatch(/"stack"|\n\s+at /);
  });

  it('refuses a wrong-typed container or evidence with 400 naming the line and field, storing nothing', async () => {
    const good = makeFinding();
    const badContainer = await post(ndjson([good, { ...makeFinding(), container: 'x' }]));
    expect(badContainer.status).toBe(400);
    expect(badContainer.json.error).toMatch(/^line 2: field "container": .*nothing from this batch was stored/);
    const badEvidence = await post(ndjson([{ ...makeFinding(), evidence: 'x' }]));
    expect(badEvidence.json.error).toMatch(/^line 1: field "evidence"/);
    const tooLong = await post(ndjson([{ ...makeFinding(), host: 'h'.repeat(300) }]));
    expect(tooLong.json.error).toMatch(/^line 1: field "host"/);
    expect((await stored()).some((f) => f.id === good.id)).toBe(false);
  });

  it('drops keys outside the schema instead of storing them', async () => {
    const f = { ...makeFinding(), extra: { nested: ['x'] } };
    expect((await post(ndjson([f]))).status).toBe(200);
    const back = (await stored()).find((s) => s.id === f.id) as unknown as Record<string, unknown>;
    expect(back).toBeDefined();
    expect(back.extra).toBeUndefined();
  });
});

describe('times outside the skew window', () => {
  it('refuses a finding timed in 9999 (400, line named) so it cannot top every query', async () => {
    const res = await post(ndjson([makeFinding(), { ...makeFinding(), container: null, time: '9999-01-01T00:00:00Z' }]));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^line 2: field "time" is more than 900 s ahead/);
    const older = await post(ndjson([{ ...makeFinding(), time: '2001-01-01T00:00:00Z' }]));
    expect(older.json.error).toMatch(/^line 1: field "time" is older than the collector's retention/);
    const slightlyAhead = makeFinding({ time: new Date(NOW + 60_000).toISOString() });
    expect((await post(ndjson([slightlyAhead]))).status).toBe(200);
  });

  it('a reader skips (and counts) a stored row that is not a valid finding instead of failing', async () => {
    const raw = new Database(dbPath);
    const bogus = JSON.stringify({ container: 'x', time: '9999-01-01T00:00:00Z' });
    raw.prepare(`INSERT INTO fleet_findings (agent, id, revision, time_ms, stored_ms, severity, rule, host, bytes, json) VALUES ('old', 'bogus', 0, ?, 0, 4, 'r', 'h', ?, ?)`).run(Date.parse('9999-01-01T00:00:00Z'), bogus.length, bogus);
    raw.close();
    const valid = (await stored()).length - 1;
    expect(valid).toBeGreaterThan(0);
    const got: Finding[] = [];
    const result = await streamCollector(server.url, {}, readerTls(), (f) => {
      got.push(f);
    });
    expect(result.invalid).toBe(1);
    expect(got.length).toBe(valid);
    expect(got.every((f) => typeof f.id === 'string' && f.id !== 'bogus')).toBe(true);
    const cleanup = new Database(dbPath);
    cleanup.prepare("DELETE FROM fleet_findings WHERE agent = 'old'").run();
    cleanup.close();
  });
});

describe('identity is (agent, id)', () => {
  it("stores node-c's finding that reuses node-a's id, and dedupes each agent's own resend", async () => {
    const f = makeFinding({ id: 'shared-id-1', severity: 'low' });
    expect((await post(ndjson([f]), TOKEN_A)).json).toMatchObject({ accepted: 1, duplicates: 0 });
    const forged = { ...f, severity: 'critical' as const };
    expect((await post(ndjson([forged]), TOKEN_C)).json).toMatchObject({ accepted: 1, duplicates: 0 });
    expect((await post(ndjson([f]), TOKEN_A)).json).toMatchObject({ accepted: 0, duplicates: 1 });
    const both = (await stored()).filter((s) => s.id === 'shared-id-1');
    expect(both.map((s) => s.severity).sort()).toEqual(['critical', 'low']);
  });

  it('replaces a stored finding with a higher revision; an equal or lower one is a duplicate', async () => {
    const base = makeFinding({ id: 'incident-1' });
    expect((await post(ndjson([base]))).json).toMatchObject({ accepted: 1 });
    expect((await post(ndjson([{ ...base, revision: 2, count: 5, title: 'grew' }]))).json).toMatchObject({ accepted: 0, replaced: 1, duplicates: 0 });
    expect((await post(ndjson([{ ...base, revision: 1, title: 'stale' }]))).json).toMatchObject({ replaced: 0, duplicates: 1 });
    expect((await post(ndjson([{ ...base, revision: 2, title: 'same' }]))).json).toMatchObject({ replaced: 0, duplicates: 1 });
    const rows = (await stored()).filter((s) => s.id === 'incident-1');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.title).toBe('grew');
  });
});

describe('queries are paged by bytes and cursor, and streamed', () => {
  it('pages 12 findings of 600 KB through a 1 MB page budget: every one exactly once, newest first', async () => {
    const big = Array.from({ length: 12 }, (_, i) => {
      const f = makeFinding({ rule: 'cw-big', time: new Date(NOW - 3_600_000 + i * 1000).toISOString() });
      f.evidence = [{ event_id: `e${i}`, time: f.time, role: 'r', records: [{ type: 'EXECVE', text: 'a'.repeat(600_000) }] }];
      return f;
    });
    for (const f of big) expect((await post(ndjson([f]))).status).toBe(200);
    // One raw page: at most one such finding fits in 1 MB, so the page holds 1 and names the next.
    const res = await request(`${server.url}/v1/findings?rule=cw-big&limit=100`, { headers: bearer(TOKEN_READER), dispatcher: agent });
    const body = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(body.trim().split('\n')).toHaveLength(1);
    expect(res.headers['x-credwatch-next-cursor']).toMatch(/^\d+\.\d+$/);
    const all = await streamCollector(server.url, { rule: 'cw-big' }, readerTls(), () => {});
    expect(all).toMatchObject({ delivered: 12, invalid: 0, pages: 12 });
    const ids = (await queryCollector(server.url, { rule: 'cw-big' }, readerTls())).map((f) => f.id);
    expect(ids).toEqual(big.map((f) => f.id).reverse());
  });

  it('follows the cursor past the 10,000-row page cap and stops exactly at a limit', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => makeFinding({ rule: 'cw-many', time: new Date(NOW - 7_200_000 + (i % 100)).toISOString() }));
    for (let i = 0; i < many.length; i += 500) expect((await post(ndjson(many.slice(i, i + 500)))).status).toBe(200);
    const ids: string[] = [];
    const r = await streamCollector(server.url, { rule: 'cw-many' }, { ...readerTls(), pageRows: 300 }, (f) => {
      ids.push(f.id);
    });
    expect(r.pages).toBe(9);
    expect(new Set(ids).size).toBe(2500);
    const limited = await queryCollector(server.url, { rule: 'cw-many', limit: 1234 }, { ...readerTls(), pageRows: 500 });
    expect(limited).toHaveLength(1234);
    const bad = await request(`${server.url}/v1/findings?cursor=nope`, { headers: bearer(TOKEN_READER), dispatcher: agent });
    expect(bad.statusCode).toBe(400);
    await bad.body.text();
  });
});

describe('caps on connections, handshakes and bodies in flight', () => {
  const openRaw = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect(server.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
  const closed = (s: Socket): Promise<number> => {
    const t0 = Date.now();
    return new Promise((resolve) => {
      if (s.destroyed) resolve(0);
      s.on('close', () => resolve(Date.now() - t0));
    });
  };

  it('drops a socket that never sends a TLS hello after the handshake timeout (0.5 s here, 120 s before)', async () => {
    const s = await openRaw();
    const ms = await closed(s);
    expect(ms).toBeLessThan(5000);
  });

  it('closes connections beyond max_connections at once and keeps serving after', async () => {
    await agent.close();
    agent = new Agent({ connect: { ca: pki.ca } });
    const held = await Promise.all(Array.from({ length: 8 }, () => openRaw()));
    const extra = await openRaw();
    const ms = await closed(extra);
    expect(ms).toBeLessThan(400); // closed at accept, long before the 500 ms handshake timeout
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await post(ndjson([makeFinding()]))).status).toBe(200);
  });

  it('answers 503 with Retry-After when bodies in flight would pass max_inflight_bytes', async () => {
    // Two 2 MB bodies declared and trickled: the second does not fit in the 3 MB in-flight budget.
    const slow = (): ReturnType<typeof request> =>
      request(`${server.url}/v1/findings`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', 'content-length': String(2_000_000), ...bearer(TOKEN_A) },
        body: Readable.from(
          (async function* () {
            yield Buffer.from('{');
            await new Promise((r) => setTimeout(r, 1500));
            yield Buffer.alloc(2_000_000 - 1, 0x20);
          })(),
        ),
        dispatcher: new Agent({ connect: { ca: pki.ca } }),
      });
    const first = slow();
    await new Promise((r) => setTimeout(r, 300));
    const second = await slow();
    expect(second.statusCode).toBe(503);
    expect(second.headers['retry-after']).toBe('1');
    await second.body.text().catch(() => '');
    const f = await first;
    expect(f.statusCode).toBe(400); // '{' + spaces is not a finding, but it was read: it fit the budget
    await f.body.text();
    expect(server.counters().busy).toBeGreaterThanOrEqual(1);
  });
});

describe('durability', () => {
  it('runs its connection with synchronous=FULL (2), so a 200 means the batch is on disk', async () => {
    const db = openDatabase(join(dir, 'probe.db'));
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // the agent store's NORMAL
    const probe = collectorStoreOn(db);
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    await probe.close();
  });
});

describe('upgrade', () => {
  it('moves findings stored by the previous collector (agent store tables) into the per-agent table, with evidence', async () => {
    const path = join(dir, 'legacy.db');
    const old = openStore(path);
    const f = makeFinding();
    old.insertFindings([f]);
    old.close();
    const upgraded = openCollectorStore(path);
    const rows = await queryAll(upgraded, {});
    expect(rows).toEqual([f]);
    await upgraded.close();
    const again = openCollectorStore(path);
    expect(await queryAll(again, {})).toHaveLength(1);
    await again.close();
  });
});

describe('/metrics', () => {
  it('counts findings by result, batches with latency and rejects by status, for the query role only', async () => {
    const res = await request(`${server.url}/metrics`, { headers: bearer(TOKEN_READER), dispatcher: agent });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
    const c = server.counters();
    expect(value('credwatch_collector_findings_total{result="accepted"}')).toBe(c.accepted);
    expect(value('credwatch_collector_findings_total{result="replaced"}')).toBe(c.replaced);
    expect(value('credwatch_collector_findings_total{result="duplicate"}')).toBe(c.duplicates);
    expect(value('credwatch_collector_batch_seconds_count')).toBe(c.batches);
    expect(value('credwatch_collector_rejects_total{status="400"}')).toBe(c.rejected['400']);
    expect(value('credwatch_collector_rejects_total{status="503"}')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^credwatch_collector_connections \d+$/m);
    const denied = await request(`${server.url}/metrics`, { headers: bearer(TOKEN_A), dispatcher: agent });
    expect(denied.statusCode).toBe(403);
    await denied.body.text();
  });
});
