/**
 * storage.sslmode against a real PostgreSQL serving TLS with a throwaway certificate for 127.0.0.1:
 * verify-full with the CA connects (and the session is encrypted), verify-full without it refuses
 * the unknown issuer, require connects without verifying, disable talks plain text.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollectorConfig } from '../../../src/collector/config';
import { openCollectorStoreFor } from '../../../src/collector/open-store';
import { selfSignedCert, type Cert } from '../../helpers/collector-fleet.cjs';
import { startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';

const why = unavailableReason();
if (why) console.warn(`PostgreSQL TLS tests skipped: ${why}`);

let pg: TestPostgres;
let dir: string;
let cert: Cert;
let db: string;

const configFor = (storage: string) =>
  parseCollectorConfig(`tls: {cert_file: /c.crt, key_file: /c.key}\nagents:\n  - {agent: a, token_sha256: '${'0'.repeat(64)}'}\nstorage: {url: '${db}', password_env: PGPW, connect_timeout_ms: 3000, ${storage}}\n`, 'c.yaml', {
    PGPW: pg.password,
  });

/** Whether the store's own connection is encrypted, as the server sees it. */
async function sslInUse(storage: string): Promise<boolean> {
  const store = await openCollectorStoreFor(configFor(storage));
  try {
    const pool = (store as unknown as { pool: { query(sql: string): Promise<{ rows: { ssl: boolean }[] }> } }).pool;
    return (await pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]!.ssl;
  } finally {
    await store.close();
  }
}

describe.skipIf(why !== null)('collector storage over TLS to PostgreSQL', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-tls-'));
    cert = selfSignedCert(dir);
    pg = await startPostgres({ fsync: false, ssl: cert });
    db = pg.createDatabase('tls');
  });
  afterAll(async () => {
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('verify-full with the CA connects encrypted; without the CA it refuses the unknown issuer', async () => {
    expect(await sslInUse(`sslmode: verify-full, ca_file: ${cert.certFile}`)).toBe(true);
    await expect(openCollectorStoreFor(configFor('sslmode: verify-full'))).rejects.toThrow(/self[- ]signed certificate/);
  });

  it('require encrypts without verifying; disable is plain text', async () => {
    expect(await sslInUse('sslmode: require')).toBe(true);
    expect(await sslInUse('sslmode: disable')).toBe(false);
  });
});
