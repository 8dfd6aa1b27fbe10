/**
 * The collector server on the PostgreSQL store (in this process, real TLS, real PostgreSQL): a batch
 * is acknowledged after its commit; with the database down the answer is 503 with Retry-After and
 * nothing is acknowledged; once it is back the agent's resend is stored; /metrics shows the pool and
 * the database errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { parseCollectorConfig } from '../../../src/collector/config';
import { openCollectorStoreFor } from '../../../src/collector/open-store';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import type { CollectorStore } from '../../../src/collector/store';
import { BIN, ROOT, selfSignedCert } from '../../helpers/collector-fleet.cjs';
import { closeAll } from '../../helpers/collector-http';
import { freePort, startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';
import { makeFinding } from '../../unit/ship/support';

const why = unavailableReason();
if (why) console.warn(`PostgreSQL server tests skipped: ${why}`);
const TOKEN = 'pg-server-agent-token-0123456789';
const READER = 'pg-server-reader-token-012345678';

let pg: TestPostgres;
let dir: string;
let store: CollectorStore;
let server: CollectorServer;
let http: Agent;

const post = async (findings: object[]) => {
  const res = await request(`${server.url}/v1/findings`, {
    method: 'POST',
    body: gzipSync(findings.map((f) => JSON.stringify(f)).join('\n')),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' },
    dispatcher: http,
  });
  return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, unknown> };
};
const fresh = () => makeFinding({ time: new Date(Date.now() - 60_000).toISOString() });

describe.skipIf(why !== null)('collector server on PostgreSQL', () => {
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
    dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-server-'));
    const cert = selfSignedCert(dir);
    const url = pg.createDatabase('srv');
    const config = parseCollectorConfig(
      `tls: {cert_file: ${cert.certFile}, key_file: ${cert.keyFile}}\nagents:\n  - {agent: a, token_sha256: ${sha256Hex(TOKEN)}}\n  - {agent: r, token_sha256: ${sha256Hex(READER)}, roles: [query]}\n` +
        `storage: {url: '${url}', password_env: PGPW, sslmode: disable, connect_timeout_ms: 1000}\nrate_limit: {requests_per_second: 1000, burst: 1000}\n`,
      'c.yaml',
      { PGPW: pg.password },
    );
    store = await openCollectorStoreFor(config);
    server = await startCollectorServer({ config, store, listen: { host: '127.0.0.1', port: 0 } });
    http = new Agent({ connect: { ca: cert.ca } });
  });
  afterAll(() => closeAll([http, server, store, pg && { close: () => pg.destroy() }], dir));

  it('acknowledges a committed batch, answers 503 + Retry-After while the database is down, and stores the resend after', async () => {
    const first = [fresh(), fresh()];
    expect(await post(first)).toMatchObject({ status: 200, json: { accepted: 2, duplicates: 0 } });
    // The acknowledged rows are visible to any other connection: committed.
    expect(pg.psql('SELECT count(*) FROM fleet_findings', 'srv').trim()).toBe('2');

    await pg.stop();
    const batch = [fresh(), fresh(), fresh()];
    const down = await post(batch);
    expect(down.status).toBe(503);
    expect(Number(down.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(String(down.json.error)).toMatch(/database is unavailable.*nothing was stored/);
    expect(server.counters().dbUnavailable).toBe(1);

    await pg.start();
    expect(await post(batch)).toMatchObject({ status: 200, json: { accepted: 3 } });
    expect(pg.psql('SELECT count(*) FROM fleet_findings', 'srv').trim()).toBe('5');

    const metrics = await request(`${server.url}/metrics`, { headers: { authorization: `Bearer ${READER}` }, dispatcher: http });
    const text = await metrics.body.text();
    expect(text).toMatch(/credwatch_collector_db_errors_total 1\b/);
    expect(text).toMatch(/credwatch_collector_rejects_total\{status="503"\} 1\b/);
    expect(text).toMatch(/credwatch_collector_db_pool_connections\{state="total"\} [1-9]/);
    expect(text).toMatch(/credwatch_collector_findings_total\{result="accepted"\} 5\b/);
  });

  it('sheds a batch unparsed (503, Retry-After 1) while batches queue for database connections', async () => {
    // The real store, with the pool reported saturated: 5 waiting for 1 connection.
    const saturated: CollectorStore = { ...store, poolStats: () => ({ max: 1, total: 1, idle: 0, waiting: 5 }) };
    const config = parseCollectorConfig(
      `tls: {cert_file: ${join(dir, 'collector.crt')}, key_file: ${join(dir, 'collector.key')}}\nagents:\n  - {agent: a, token_sha256: ${sha256Hex(TOKEN)}}\nrate_limit: {requests_per_second: 1000, burst: 1000}\n`,
      'c.yaml',
      {},
    );
    const busy = await startCollectorServer({ config, store: saturated, listen: { host: '127.0.0.1', port: 0 } });
    try {
      const before = pg.psql('SELECT count(*) FROM fleet_findings', 'srv').trim();
      const res = await request(`${busy.url}/v1/findings`, { method: 'POST', body: JSON.stringify(fresh()), headers: { authorization: `Bearer ${TOKEN}` }, dispatcher: http });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(((await res.body.json()) as { error: string }).error).toMatch(/database connections all in use/);
      expect(busy.counters().busy).toBe(1);
      expect(pg.psql('SELECT count(*) FROM fleet_findings', 'srv').trim()).toBe(before);
    } finally {
      await busy.close();
    }
  });

  it.skipIf(!existsSync(join(ROOT, 'dist/src/collector/pg-store.js')))('credwatch collector exits 1 naming the database (without its password) when it cannot reach it', async () => {
    const cert = selfSignedCert(dir);
    const port = await freePort();
    const secret = 'the-db-password-9c1d7e';
    const cfg = join(dir, 'unreachable.yaml');
    writeFileSync(
      cfg,
      `listen: 127.0.0.1:${await freePort()}\ntls: {cert_file: ${cert.certFile}, key_file: ${cert.keyFile}}\nagents:\n  - {agent: a, token_sha256: ${sha256Hex(TOKEN)}}\n` +
        `storage: {url: 'postgres://credwatch:${secret}@127.0.0.1:${port}/fleet', sslmode: disable, connect_timeout_ms: 1000}\n`,
      { mode: 0o600 },
    );
    const r = spawnSync(process.execPath, [BIN, 'collector', '--config', cfg], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot open storage postgres://credwatch@127.0.0.1:${port}/fleet`);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });
});
