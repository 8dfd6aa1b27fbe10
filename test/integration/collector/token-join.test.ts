/**
 * Issue 18 item 6: the collector links a token read reported by agent A (a worker) with the API
 * requests agent B (the control plane) reported for the same jti: one linked finding, stored once and
 * revised as requests join it. Real collector over TLS on loopback, real SQLite store; agent B's
 * findings come from the real away-from-node detector over API-server audit events.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { parseCollectorConfig } from '../../../src/collector/config';
import { startCollectorServer, type CollectorServer } from '../../../src/collector/server';
import { openCollectorStore, queryAll, type CollectorStore } from '../../../src/collector/store';
import { COLLECTOR_AGENT, FLEET_TOKEN_RULE } from '../../../src/collector/token-join';
import { TokenHome } from '../../../src/detect/kube/token-home';
import type { Finding, FindingToken } from '../../../src/model/finding';
import { closeAll, shipFindings } from '../../helpers/collector-http';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { request } from '../../helpers/kube-requests';
import { makeFinding } from '../../unit/ship/support';

const TOKEN_A = 'worker-a-token-0123456789abcdef';
const TOKEN_B = 'control-b-token-0123456789abcdef';
const JTI = '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d';
const POD = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const T0 = Date.now() - 60_000;

let pki: TestPki;
let dir: string;
let store: CollectorStore;
let server: CollectorServer;
let agent: Agent;

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'credwatch-tokenjoin-'));
  const config = parseCollectorConfig(
    `listen: 127.0.0.1:8443
tls:
  cert_file: ${pki.server.certFile}
  key_file: ${pki.server.keyFile}
agents:
  - agent: worker-a
    token_sha256: ${sha256Hex(TOKEN_A)}
  - agent: control-b
    token_sha256: ${sha256Hex(TOKEN_B)}
storage:
  path: ${join(dir, 'collector.db')}
rate_limit:
  requests_per_second: 1000
  burst: 1000
`,
    'collector.yaml',
    {},
  );
  store = openCollectorStore(config.storage.path);
  server = await startCollectorServer({ config, store, listen: { host: '127.0.0.1', port: 0 } });
  agent = new Agent({ connect: { ca: pki.ca } });
});

afterAll(() => closeAll([agent, server, store], dir, () => pki.cleanup()));

const ship = (token: string, findings: Finding[]): Promise<number> => shipFindings(server.url, token, findings, agent);

const claims: FindingToken = { jti: JTI, service_account: 'app', namespace: 'shop', pod: 'app-0', pod_uid: POD, node: 'worker-1', issued: new Date(T0 - 60_000).toISOString(), expires: new Date(T0 + 3_600_000).toISOString(), kind: 'bound', from: 'file' };

/** Agent B's findings: the real away-from-node detector over the API server's events. */
function controlPlaneFindings(jti: string, auditID: string, atMs: number, home: TokenHome, from = '203.0.113.77'): Finding[] {
  home.onKubeEvent(request({ auditID: `kubelet-${auditID}`, atMs, username: 'system:node:worker-1', sourceIPs: ['192.0.2.11'], verb: 'get', resource: 'pods' }));
  return home.onKubeEvent(request({ auditID, atMs, jti, podUid: POD, node: 'worker-1', sourceIPs: [from], verb: 'list', resource: 'secrets', namespace: 'kube-system' }));
}

const linkedOf = async (): Promise<Finding[]> => (await queryAll(store, {})).filter((f) => f.rule === FLEET_TOKEN_RULE);

describe('fleet token join in the collector', () => {
  it('links agent A’s read with agent B’s request of the same jti, once; revises it as requests join; other jtis stay apart', async () => {
    const home = new TokenHome({ host: 'cp-1' });
    const read = makeFinding({ host: 'worker-1', time: new Date(T0).toISOString(), covers: ['H1'], source: 'audit', token: claims, container: { id: 'c'.repeat(64), runtime: 'containerd', pod_uid: POD } });
    expect(await ship(TOKEN_A, [read])).toBe(200);
    expect(await linkedOf()).toEqual([]);

    const first = controlPlaneFindings(JTI, 'req-1', T0 + 5_000, home);
    const other = controlPlaneFindings('ffffffff-0000-4000-8000-000000000000', 'req-other', T0 + 6_000, home);
    expect(first).toHaveLength(1);
    expect(other).toHaveLength(1);
    expect(await ship(TOKEN_B, [...first.map((f) => ({ ...f, host: 'cp-1' })), ...other])).toBe(200);
    let linked = await linkedOf();
    expect(linked).toHaveLength(1);
    expect(linked[0]).toMatchObject({ severity: 'critical', host: 'worker-1', token: { jti: JTI }, container: { pod_uid: POD }, revision: 1, count: 1 });
    expect(linked[0]!.description).toContain('worker-a');
    expect(linked[0]!.evidence.map((e) => e.event_id)).toEqual([...read.evidence.map((e) => e.event_id), 'req-1']);

    // The same batch again changes nothing; a second request (from another address: agent B reports
    // one away-from-node finding per token and address) revises the one linked finding.
    expect(await ship(TOKEN_B, first)).toBe(200);
    expect(await ship(TOKEN_B, controlPlaneFindings(JTI, 'req-2', T0 + 7_000, home, '198.51.100.23'))).toBe(200);
    linked = await linkedOf();
    expect(linked).toHaveLength(1);
    expect(linked[0]).toMatchObject({ revision: 2, count: 2 });
    expect(linked[0]!.evidence.map((e) => e.event_id)).toEqual(expect.arrayContaining(['req-1', 'req-2']));
    expect(linked[0]!.evidence.map((e) => e.event_id)).not.toContain('req-other');
    expect(server.counters()).toMatchObject({ tokenLinks: 2, tokenLinkErrors: 0 });
    expect((await store.agents()).map((a) => a.agent)).toContain(COLLECTOR_AGENT);
  });

  it('joins in either order (the request reported before the read), and not within one agent', async () => {
    const jti = '0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e';
    const home = new TokenHome({ host: 'cp-1' });
    const before = (await linkedOf()).length;
    expect(await ship(TOKEN_B, controlPlaneFindings(jti, 'early-req', T0 + 20_000, home))).toBe(200);
    // agent B also reports a read of that token: its own trail's business, not the fleet join's
    expect(await ship(TOKEN_B, [makeFinding({ host: 'cp-1', time: new Date(T0 + 10_000).toISOString(), token: { ...claims, jti } })])).toBe(200);
    expect((await linkedOf()).length).toBe(before);
    expect(await ship(TOKEN_A, [makeFinding({ host: 'worker-1', time: new Date(T0 + 10_000).toISOString(), token: { ...claims, jti } })])).toBe(200);
    const linked = (await linkedOf()).filter((f) => f.token?.jti === jti);
    expect(linked).toHaveLength(1);
    expect(linked[0]!.evidence.map((e) => e.event_id)).toContain('early-req');
  });
});
