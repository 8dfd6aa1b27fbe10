/** `storage.url` (PostgreSQL) in the collector config: what is accepted, refused, and never shown. */
import { inspect } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCollectorConfig } from '../../../src/collector/config';
import { pgPoolConfig } from '../../../src/collector/pg-config';

const SECRET = 'hunter2-s3cret-Pa55';
const base = (storage: string) => `tls: {cert_file: /c.crt, key_file: /c.key}\nagents:\n  - {agent: a, token_sha256: '${'0'.repeat(64)}'}\nstorage:\n${storage}`;
const problems = (text: string, env: Record<string, string> = {}, mode?: number): string => {
  try {
    parseCollectorConfig(text, 'c.yaml', env, mode);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('collector storage.url', () => {
  it('keeps SQLite the default, and PostgreSQL options to PostgreSQL', () => {
    const c = parseCollectorConfig(base('  retention_days: 9\n'), 'c.yaml', {});
    expect(c.pg).toBeUndefined();
    expect(c.storage.path).toBe('/var/lib/credwatch-collector/collector.db');
    expect(problems(base('  sslmode: require\n'))).toMatch(/storage\.sslmode: applies to PostgreSQL only/);
    expect(problems(base('  path: /x.db\n  url: postgres://u@db/x\n  password_env: P\n'), { P: 'x' })).toMatch(/storage\.path: give storage\.path \(SQLite\) or storage\.url/);
  });

  it('reads url, sslmode, CA and the password from the environment into pool options', () => {
    const c = parseCollectorConfig(base('  url: postgres://credwatch@db.example:6543/fleet\n  password_env: CW_PG\n  sslmode: verify-ca\n  pool_max: 7\n'), 'c.yaml', { CW_PG: SECRET });
    expect(c.pg).toMatchObject({ url: 'postgres://credwatch@db.example:6543/fleet', sslmode: 'verify-ca', poolMax: 7 });
    const dir = mkdtempSync(join(tmpdir(), 'credwatch-pgcfg-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), 'CA PEM');
      const p = pgPoolConfig({ ...c.pg!, caFile: join(dir, 'ca.crt') });
      expect(p).toMatchObject({ host: 'db.example', port: 6543, database: 'fleet', user: 'credwatch', password: SECRET, max: 7 });
      expect(p.ssl).toMatchObject({ rejectUnauthorized: true, ca: 'CA PEM' });
      // verify-ca checks the chain, not the name; require encrypts without verifying (libpq's meanings).
      expect((p.ssl as { checkServerIdentity?: unknown }).checkServerIdentity).toBeTypeOf('function');
      expect(pgPoolConfig({ ...c.pg!, sslmode: 'require' }).ssl).toMatchObject({ rejectUnauthorized: false });
      expect((pgPoolConfig({ ...c.pg!, sslmode: 'verify-full' }).ssl as { checkServerIdentity?: unknown }).checkServerIdentity).toBeUndefined();
      expect(pgPoolConfig({ ...c.pg!, sslmode: 'disable' }).ssl).toBe(false);
      writeFileSync(join(dir, 'pw'), `${SECRET}-file\n`);
      expect(pgPoolConfig({ ...c.pg!, password: undefined, passwordFile: join(dir, 'pw') }).password).toBe(`${SECRET}-file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never shows the password: not in the parsed config, its JSON, inspection, or any problem message', () => {
    const c = parseCollectorConfig(base(`  url: postgres://credwatch:${SECRET}@db/fleet\n`), 'c.yaml', {}, 0o100600);
    expect(c.storage.url).toBe('postgres://credwatch@db/fleet');
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(inspect(c, { depth: 10 })).not.toContain(SECRET);
    expect(pgPoolConfig(c.pg!).password).toBe(SECRET);
    const bad = [
      problems(base(`  url: postgres://credwatch:${SECRET}@db/fleet\n`), {}, 0o100640),
      problems(base(`  url: "postgres://credwatch:${SECRET}@db:notaport/fleet"\n`)),
      problems(base(`  url: "mysql://credwatch:${SECRET}@db/fleet"\n`), {}, 0o100600),
      problems(base(`  url: postgres://credwatch:${SECRET}@db/fleet\n  password_env: X\n`), { X: 'y' }, 0o100600),
      problems(base(`  url: postgres://credwatch:${SECRET}@db/fleet?sslmode=disable\n`), {}, 0o100600),
    ];
    expect(bad[0]).toMatch(/holds a password and the file is readable by group or others/);
    expect(bad[1]).toMatch(/not a URL; it is not shown/);
    expect(bad[2]).toMatch(/postgres:\/\/ or postgresql:\/\//);
    expect(bad[3]).toMatch(/password one way only/);
    expect(bad[4]).toMatch(/"\?sslmode=" is not read here/);
    for (const m of bad) expect(m).not.toContain(SECRET);
  });

  it('names a missing password variable and half a client certificate', () => {
    expect(problems(base('  url: postgres://u@db/x\n  password_env: NOPE\n'))).toMatch(/environment variable NOPE is not set/);
    expect(problems(base('  url: postgres://u@db/x\n  cert_file: /a.crt\n'))).toMatch(/storage\.cert_file: cert_file and key_file go together/);
  });
});
