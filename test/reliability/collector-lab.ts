/**
 * A credwatch collector in the test process (real TLS with throwaway certificates, real SQLite), for
 * daemon tests that ship: stop and start it on the same port, count what arrived.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha256Hex } from '../../src/collector/auth';
import { parseCollectorConfig } from '../../src/collector/config';
import { startCollectorServer, type CollectorServer } from '../../src/collector/server';
import { collectorStoreOn } from '../../src/collector/store';
import { openStore, type FindingStore } from '../../src/store';
import { makeTestPki, type TestPki } from '../helpers/tls';
import { freeLoopbackPort } from './daemon';

export const AGENT_TOKEN = 'reliability-agent-token-0123456789';

export interface CollectorLab {
  pki: TestPki;
  port: number;
  store: FindingStore;
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  /** Distinct finding ids stored. */
  ids(): Set<string>;
  /** Rows stored (== ids().size when nothing was stored twice). */
  rows(): number;
  /** The `ship:` entry for the agent's config (YAML). */
  shipYaml(flushMs?: number, port?: number): string;
  close(): Promise<void>;
}

export async function collectorLab(dir: string): Promise<CollectorLab> {
  const pki = makeTestPki();
  const port = await freeLoopbackPort();
  fs.mkdirSync(path.join(dir, 'collector'), { recursive: true, mode: 0o700 });
  const store = openStore(path.join(dir, 'collector', 'collector.db'));
  const cstore = collectorStoreOn(store.db);
  const config = parseCollectorConfig(
    `tls: {cert_file: ${pki.server.certFile}, key_file: ${pki.server.keyFile}}\nagents:\n  - {agent: '${os.hostname()}', token_sha256: ${sha256Hex(AGENT_TOKEN)}}\nrate_limit: {requests_per_second: 10000, burst: 10000}\n`,
    'collector.yaml',
    {},
  );
  let server: CollectorServer | null = null;
  const lab: CollectorLab = {
    pki,
    port,
    store,
    async start() {
      if (server === null) server = await startCollectorServer({ config, store: cstore, listen: { host: '127.0.0.1', port } });
    },
    async stop() {
      const s = server;
      server = null;
      await s?.close();
    },
    running: () => server !== null,
    ids: () => new Set((store.db.prepare('SELECT id FROM fleet_findings').all() as { id: string }[]).map((r) => r.id)),
    rows: () => (store.db.prepare('SELECT count(*) AS n FROM fleet_findings').get() as { n: number }).n,
    shipYaml: (flushMs = 200, viaPort = port) =>
      `ship:\n  - name: central\n    type: collector\n    url: https://127.0.0.1:${viaPort}\n    token: ${AGENT_TOKEN}\n    flush_interval_ms: ${flushMs}\n    timeout_ms: 3000\n    tls:\n      ca_file: ${pki.caFile}\n`,
    async close() {
      await lab.stop();
      store.close();
      pki.cleanup();
    },
  };
  return lab;
}
