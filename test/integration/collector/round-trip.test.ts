/**
 * Every field of a finding survives the collector: posted by an agent, stored, and read back through
 * the client of `credwatch findings --collector`, on both stores (SQLite and PostgreSQL), it is the
 * same finding. A finding that leaves out the fields with defaults comes back with them filled in, and
 * a key outside the schema is dropped.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { queryCollector } from '../../../src/collector/client';
import { parseCollectorConfig } from '../../../src/collector/config';
import { ingestedFindingSchema, type IngestedFinding } from '../../../src/collector/finding-schema';
import { openCollectorStoreFor } from '../../../src/collector/open-store';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import type { CollectorStore } from '../../../src/collector/store';
import type { Finding } from '../../../src/model/finding';
import { selfSignedCert } from '../../helpers/collector-fleet.cjs';
import { bearer, closeAll, ndjson, postFindings } from '../../helpers/collector-http';
import { fullFinding } from '../../helpers/full-finding';
import { startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';

const TOKEN = 'round-trip-agent-token-0123456789';
const READER = 'round-trip-reader-token-012345678';
const why = unavailableReason();
if (why) console.warn(`PostgreSQL round trip skipped: ${why}`);

interface Stack {
  store: CollectorStore;
  server: CollectorServer;
  ca: string;
  close: () => Promise<void>;
}

async function startStack(storage: (dir: string) => string, env: Record<string, string> = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'credwatch-round-trip-'));
  const cert = selfSignedCert(dir);
  const config = parseCollectorConfig(
    `tls: {cert_file: ${cert.certFile}, key_file: ${cert.keyFile}}\nagents:\n  - {agent: a, token_sha256: ${sha256Hex(TOKEN)}}\n  - {agent: r, token_sha256: ${sha256Hex(READER)}, roles: [query]}\n${storage(dir)}\n`,
    'c.yaml',
    env,
  );
  const store = await openCollectorStoreFor(config);
  const server = await startCollectorServer({ config, store, listen: { host: '127.0.0.1', port: 0 } });
  return {
    store,
    server,
    ca: cert.ca,
    close: () => closeAll([server, store], dir),
  };
}

/** Posts one gzip NDJSON batch, as an agent does. */
async function post(stack: Stack, findings: object[]): Promise<{ status: number; json: unknown }> {
  const http = new Agent({ connect: { ca: stack.ca } });
  try {
    const r = await postFindings(stack.server.url, gzipSync(ndjson(findings)), { ...bearer(TOKEN), 'content-encoding': 'gzip' }, http);
    return { status: r.status, json: r.json };
  } finally {
    await http.close();
  }
}

function roundTrips(stack: () => Stack): void {
  it('a finding with every field (object, token, truncated, revision, rules, incident...) comes back unchanged', async () => {
    const full = fullFinding({ id: 'rt-full' });
    expect(await post(stack(), [full])).toEqual({ status: 200, json: { accepted: 1, replaced: 0, duplicates: 0 } });
    const back = await queryCollector(stack().server.url, {}, { ca: stack().ca, token: READER });
    expect(back.find((f) => f.id === 'rt-full')).toStrictEqual(full);
  });

  it('fields with defaults are filled in and keys outside the schema dropped, as the schema says', async () => {
    const bare = { id: 'rt-bare', rule: 'r', title: 't', severity: 'low', time: new Date(Date.now() - 60_000).toISOString(), host: 'node-a', source: 'audit', extra: { x: 1 } };
    expect((await post(stack(), [bare])).status).toBe(200);
    const back = (await queryCollector(stack().server.url, {}, { ca: stack().ca, token: READER })).find((f) => f.id === 'rt-bare');
    const { extra: _dropped, ...known } = bare;
    expect(back).toStrictEqual(ingestedFindingSchema.parse(known));
    expect(back).not.toHaveProperty('extra');
  });
}

it('the collector schema has every field of Finding', () => {
  // Compile-time: a field of Finding that the schema lacks makes this type a non-never union.
  expectTypeOf<Exclude<keyof Finding, keyof IngestedFinding>>().toBeNever();
  expect(Object.keys(ingestedFindingSchema.shape).sort()).toEqual(Object.keys(fullFinding()).sort());
});

describe('round trip on SQLite', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack((dir) => `storage: {path: ${join(dir, 'collector.db')}}`);
  });
  afterAll(async () => s?.close());
  roundTrips(() => s);
});

describe.skipIf(why !== null)('round trip on PostgreSQL', () => {
  let pg: TestPostgres;
  let s: Stack;
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
    const url = pg.createDatabase('rt');
    s = await startStack(() => `storage: {url: '${url}', password_env: PGPW, sslmode: disable}`, { PGPW: pg.password });
  });
  afterAll(async () => {
    await s?.close();
    await pg?.destroy();
  });
  roundTrips(() => s);
});
