/**
 * `credwatch findings --collector URL`: the fleet view through a real collector over loopback HTTPS
 * (certificates made by openssl in the test), the CLI in a child process.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollectorConfig } from '../../../src/collector/config';
import { encodeFinding } from '../../../src/collector/finding-schema';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import { openCollectorStore, type CollectorStore } from '../../../src/collector/store';
import type { Finding } from '../../../src/model/finding';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { makeFinding } from '../../unit/store/fixtures';
import { builtCliExists, cliAsync, jsonLines } from './helpers';

const enc = (fs: Finding[]) => fs.map(encodeFinding);

const built = builtCliExists();
if (!built) console.log('skipping CLI tests: dist/ is missing; run `npx tsc -p tsconfig.build.json && node scripts/copy-assets.js` first');

const READER_TOKEN = 'cli-reader-token-0123456789abcdef';

describe.skipIf(!built)('credwatch findings --collector', () => {
  let pki: TestPki;
  let dir: string;
  let store: CollectorStore;
  let server: CollectorServer;
  const now = Date.now();

  beforeAll(async () => {
    pki = makeTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cli-coll-'));
    const config = parseCollectorConfig(
      `tls:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n` +
        `agents:\n  - agent: reader\n    token: ${READER_TOKEN}\n    roles: [query]\n` +
        `storage:\n  path: ${path.join(dir, 'state', 'collector.db')}\n`,
      'collector.yaml',
      {},
    );
    store = openCollectorStore(config.storage.path);
    store.ingest('node-a', enc([makeFinding({ id: 'from-a', host: 'node-a', time: now - 60_000, severity: 'high' })]), now);
    store.ingest('node-b', enc([makeFinding({ id: 'from-b', host: 'node-b', time: now - 30_000, severity: 'low' })]), now);
    server = await startCollectorServer({ config, store, listen: { host: '127.0.0.1', port: 0 } });
  });
  afterAll(async () => {
    await server?.close();
    store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    pki?.cleanup();
  });

  const env = { CW_READER_TOKEN: READER_TOKEN };

  it('lists findings of all hosts, newest first, with filters passed to the collector', async () => {
    const r = await cliAsync(['findings', '--collector', server.url, '--ca', pki.caFile, '--token-env', 'CW_READER_TOKEN', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((jsonLines(r.stdout) as Finding[]).map((f) => f.host)).toEqual(['node-b', 'node-a']);

    const hi = await cliAsync(['findings', '--collector', server.url, '--ca', pki.caFile, '--token-env', 'CW_READER_TOKEN', '--json', '--min-severity', 'high'], env);
    expect((jsonLines(hi.stdout) as Finding[]).map((f) => f.id)).toEqual(['from-a']);
  });

  it('shows a HOST column in the table', async () => {
    const r = await cliAsync(['findings', '--collector', server.url, '--ca', pki.caFile, '--token-env', 'CW_READER_TOKEN'], env);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/\bHOST\b/);
    expect(r.stdout).toContain('node-a');
  });

  it('a missing token variable is a usage error (2); a wrong token or unknown CA a runtime failure (1)', async () => {
    const noVar = await cliAsync(['findings', '--collector', server.url, '--ca', pki.caFile, '--token-env', 'CW_NOT_SET']);
    expect(noVar.code).toBe(2);
    expect(noVar.stderr).toContain('CW_NOT_SET');

    const wrong = await cliAsync(['findings', '--collector', server.url, '--ca', pki.caFile, '--token-env', 'CW_READER_TOKEN'], { CW_READER_TOKEN: 'nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/querying the collector .* failed: collector answered 401/);
    expect(wrong.stderr).not.toContain('nope');

    const noCa = await cliAsync(['findings', '--collector', server.url, '--token-env', 'CW_READER_TOKEN'], env);
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/querying the collector .* failed/);
    expect(noCa.stderr).toContain('unable to verify the first certificate');
  });

  it('--db and --collector together is a usage error', async () => {
    const r = await cliAsync(['findings', '--collector', server.url, '--db', '/tmp/x.db']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--db and --collector');
  });
});
