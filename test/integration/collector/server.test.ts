/**
 * The collector over real TLS on loopback, with the real SQLite store: ingest (idempotent), auth by
 * token and by client certificate, the 4xx answers (and that it keeps serving after them), plain HTTP
 * refused, rate limit, and fleet queries through the client used by `credwatch findings --collector`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { queryCollector } from '../../../src/collector/client';
import { parseCollectorConfig } from '../../../src/collector/config';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import { openCollectorStore, queryAll, type CollectorStore } from '../../../src/collector/store';
import { bearer, closeAll, ndjson, postFindings } from '../../helpers/collector-http';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { captureLogger, makeFinding, makeFindings } from '../../unit/ship/support';

const TOKEN_A = 'agent-a-token-0123456789abcdef';
const TOKEN_READER = 'reader-token-0123456789abcdef';

let pki: TestPki;
let dir: string;
let store: CollectorStore;
let server: CollectorServer;
let logs: ReturnType<typeof captureLogger>;
let agent: Agent;

function configText(extra = ''): string {
  return `
listen: 127.0.0.1:8443
tls:
  cert_file: ${pki.server.certFile}
  key_file: ${pki.server.keyFile}
  client_ca_file: ${pki.caFile}
agents:
  - agent: agent-a
    token_sha256: ${sha256Hex(TOKEN_A)}
  - agent: agent-cert
    hosts: [node-a, node-cert]
  - agent: reader
    token: ${TOKEN_READER}
    roles: [query]
storage:
  path: ${join(dir, 'collector.db')}
max_body_bytes: 65536
rate_limit:
  requests_per_second: 1000
  burst: 1000
${extra}`;
}

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'credwatch-collector-'));
  const config = parseCollectorConfig(configText(), 'collector.yaml', {});
  store = openCollectorStore(config.storage.path);
  logs = captureLogger();
  server = await startCollectorServer({ config, store, logger: logs.logger, listen: { host: '127.0.0.1', port: 0 } });
  agent = new Agent({ connect: { ca: pki.ca } });
});

afterAll(() => closeAll([agent, server, store], dir, () => pki.cleanup()));

const post = (body: Buffer | string, headers: Record<string, string>, dispatcher: Agent = agent) => postFindings(server.url, body, headers, dispatcher);

describe('collector ingest', () => {
  it('stores a gzipped batch, and a resend of it is counted as duplicates, not stored twice', async () => {
    const fs = makeFindings(5);
    const body = gzipSync(ndjson(fs));
    const first = await post(body, { ...bearer(TOKEN_A), 'content-encoding': 'gzip', 'x-credwatch-agent': 'agent-a' });
    expect(first).toMatchObject({ status: 200, json: { accepted: 5, duplicates: 0 } });
    const again = await post(body, { ...bearer(TOKEN_A), 'content-encoding': 'gzip' });
    expect(again).toMatchObject({ status: 200, json: { accepted: 0, duplicates: 5 } });
    const stored = (await queryAll(store, { limit: 100 })).map((f) => f.id);
    for (const f of fs) expect(stored.filter((id) => id === f.id)).toHaveLength(1);
    expect((await store.agents()).find((a) => a.agent === 'agent-a')).toMatchObject({ lastHost: 'node-a', findings: 5, duplicates: 5, batches: 2 });
  });

  it('answers 401 without credentials and with an unknown token, never echoing the token', async () => {
    const none = await post(ndjson([makeFinding()]), {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    const wrong = await post(ndjson([makeFinding()]), bearer('not-a-known-token-zzzz'));
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain('not-a-known-token-zzzz');
    expect(JSON.stringify(logs.lines)).not.toContain('not-a-known-token-zzzz');
    expect(JSON.stringify(logs.lines)).not.toContain(TOKEN_A);
  });

  it('answers 403 when X-Credwatch-Agent names someone else, and to an agent without the query role', async () => {
    expect((await post(ndjson([makeFinding()]), { ...bearer(TOKEN_A), 'x-credwatch-agent': 'agent-b' })).status).toBe(403);
    await expect(queryCollector(server.url, {}, { ca: pki.caFile, token: TOKEN_A })).rejects.toThrow(/403.*role query/);
  });

  it('answers 413 to an oversized body (declared or streamed, or after gunzip) and keeps serving', async () => {
    const big = ndjson(Array.from({ length: 100 }, () => makeFinding()));
    expect(big.length).toBeGreaterThan(65536);
    const declared = await post(big, bearer(TOKEN_A));
    expect(declared.status).toBe(413);
    expect(declared.json.error).toMatch(/over the limit of 65536 bytes/);
    // Chunked, no Content-Length: the limit is enforced while reading.
    const streamed = await request(`${server.url}/v1/findings`, {
      method: 'POST',
      headers: bearer(TOKEN_A),
      body: Readable.from((function* () {
        for (let i = 0; i < 8; i++) yield Buffer.from(big.slice(0, 16384));
      })()),
      dispatcher: agent,
    });
    expect(streamed.headers['content-length']).toBeDefined();
    expect(streamed.statusCode).toBe(413);
    await streamed.body.text();
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(65536);
    const inflated = await post(bomb, { ...bearer(TOKEN_A), 'content-encoding': 'gzip' });
    expect(inflated.status).toBe(413);
    expect(inflated.json.error).toMatch(/decompressed/);
    const ok = await post(ndjson([makeFinding()]), bearer(TOKEN_A));
    expect(ok.status).toBe(200);
  });

  it('answers 400 naming the bad line and stores nothing of that batch', async () => {
    const good = makeFinding();
    const body = `${JSON.stringify(good)}\n{"id": "x", oops\n`;
    const res = await post(body, bearer(TOKEN_A));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^line 2: not valid JSON/);
    expect((await queryAll(store, { limit: 1000 })).some((f) => f.id === good.id)).toBe(false);
    const missing = await post(`${JSON.stringify({ ...good, severity: 'urgent' })}\n`, bearer(TOKEN_A));
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatch(/^line 1: field "severity"/);
  });

  it('refuses plain HTTP on its port (no HTTP answer, connection closed)', async () => {
    const reply = await new Promise<string>((resolve) => {
      const sock = connect(server.port, '127.0.0.1', () => sock.write('POST /v1/findings HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
    });
    expect(reply.startsWith('HTTP/')).toBe(false);
  });

  it('authenticates by client certificate (CN = agent id) and refuses a valid certificate for an unknown agent', async () => {
    const known = pki.client('agent-cert');
    const withCert = new Agent({ connect: { ca: pki.ca, cert: known.cert, key: known.key } });
    const ok = await post(ndjson([makeFinding()]), {}, withCert);
    expect(ok.status).toBe(200);
    await withCert.close();
    const stranger = pki.client('stranger');
    const other = new Agent({ connect: { ca: pki.ca, cert: stranger.cert, key: stranger.key } });
    const refused = await post(ndjson([makeFinding()]), {}, other);
    expect(refused.status).toBe(403);
    await other.close();
  });

  it('answers 403 when an agent bound to hosts sends a finding for another host, storing nothing', async () => {
    const known = pki.client('agent-cert');
    const withCert = new Agent({ connect: { ca: pki.ca, cert: known.cert, key: known.key } });
    const mine = makeFinding({ host: 'node-cert' });
    const res = await post(ndjson([mine, makeFinding({ host: 'node-b' })]), {}, withCert);
    await withCert.close();
    expect(res.status).toBe(403);
    expect(res.json.error).toMatch(/^line 2: agent agent-cert may not report findings for host "node-b"/);
    expect((await queryAll(store, { host: 'node-cert', limit: 10 }))).toHaveLength(0);
  });

  it('names the line of the body in that 403, counting blank lines as the 400s do', async () => {
    const known = pki.client('agent-cert');
    const withCert = new Agent({ connect: { ca: pki.ca, cert: known.cert, key: known.key } });
    const body = `\n${JSON.stringify(makeFinding({ host: 'node-cert' }))}\n\n\n${JSON.stringify(makeFinding({ host: 'node-b' }))}\n`;
    const res = await post(body, {}, withCert);
    await withCert.close();
    expect(res.status).toBe(403);
    expect(res.json.error).toMatch(/^line 5: /);
  });

  it('answers fleet queries as NDJSON with filters, for a principal with the query role', async () => {
    const critical = makeFinding({ severity: 'critical', host: 'node-z', rule: 'cw-kubelet-exec' });
    await post(ndjson([critical, makeFinding({ severity: 'low', host: 'node-z' })]), bearer(TOKEN_A));
    const found = await queryCollector(server.url, { host: 'node-z', minSeverity: 'high' }, { ca: pki.caFile, token: TOKEN_READER });
    expect(found.map((f) => f.id)).toEqual([critical.id]);
    expect(found[0]).toEqual(critical);
    const byRule = await queryCollector(server.url, { rule: 'cw-kubelet-exec', limit: 5 }, { ca: pki.ca, token: TOKEN_READER });
    expect(byRule).toHaveLength(1);
    await expect(queryCollector(server.url, {}, { ca: pki.caFile })).rejects.toThrow(/401/);
    await expect(queryCollector(server.url.replace('https', 'http'), {}, {})).rejects.toThrow(/https/);
  });
});

describe('collector rate limit', () => {
  it('answers 429 with Retry-After once an agent exceeds its burst', async () => {
    const d2 = mkdtempSync(join(tmpdir(), 'credwatch-collector-rl-'));
    const config = parseCollectorConfig(configText().replace(/rate_limit:[\s\S]*$/, 'rate_limit:\n  requests_per_second: 1\n  burst: 3\n'), 'c.yaml', {});
    const s2 = openCollectorStore(join(d2, 'c.db'));
    const srv = await startCollectorServer({ config, store: s2, listen: { host: '127.0.0.1', port: 0 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await request(`${srv.url}/v1/findings`, { method: 'POST', body: ndjson([makeFinding()]), headers: bearer(TOKEN_A), dispatcher: agent });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        await res.body.text();
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await srv.close();
      s2.close();
      rmSync(d2, { recursive: true, force: true });
    }
  });
});

describe('collector configuration', () => {
  it('refuses to run without TLS material, saying so', () => {
    expect(() => parseCollectorConfig('agents:\n  - agent: a\n    token_sha256: ' + '0'.repeat(64) + '\n', 'c.yaml', {})).toThrow(/TLS is required/);
  });
  it('names the line of a bad key', () => {
    const text = configText().replace('max_body_bytes: 65536', 'max_body_bytes: lots');
    const line = text.split('\n').findIndex((l) => l.startsWith('max_body_bytes')) + 1;
    expect(() => parseCollectorConfig(text, 'c.yaml', {})).toThrow(new RegExp(`c\\.yaml:${line}:\\d+: max_body_bytes: expected number`));
  });
  it('refuses a token in a world-readable file and an agent that could never authenticate', () => {
    expect(() => parseCollectorConfig(configText(), 'c.yaml', {}, 0o100644)).toThrow(/world-readable/);
    const noCa = configText().replace(/ {2}client_ca_file: .*\n/, '');
    expect(() => parseCollectorConfig(noCa, 'c.yaml', {})).toThrow(/agents\[1\].*could never authenticate/);
  });
});
