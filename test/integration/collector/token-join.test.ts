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

/** The links once `ok` holds of them (the throttle's timer re-joins within about a second), or after 5 s. */
async function waitForLinked(ok: (l: Finding[]) => boolean): Promise<Finding[]> {
  const end = Date.now() + 5_000;
  let l = await linkedOf();
  while (!ok(l) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    l = await linkedOf();
  }
  return l;
}

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
    // one away-from-node finding per token and address) revises the one linked finding, within the
    // link throttle's second (the link exists: its re-join waits for the next interval).
    expect(await ship(TOKEN_B, first)).toBe(200);
    expect(await ship(TOKEN_B, controlPlaneFindings(JTI, 'req-2', T0 + 7_000, home, '198.51.100.23'))).toBe(200);
    linked = await waitForLinked((l) => l.some((f) => f.revision === 2));
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

  it('a storm of request batches for one token: linked at the first, then about one stored revision a second, ending with every request', async () => {
    const jti = '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f';
    const home = new TokenHome({ host: 'cp-1' });
    expect(await ship(TOKEN_A, [makeFinding({ host: 'worker-1', time: new Date(T0 + 30_000).toISOString(), covers: ['H1'], source: 'audit', token: { ...claims, jti } })])).toBe(200);
    const linksBefore = server.counters().tokenLinks;
    const n = 30;
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      // One away-from-node finding per token and address: each batch from its own address.
      expect(await ship(TOKEN_B, controlPlaneFindings(jti, `storm-${i}`, T0 + 31_000 + i, home, `198.51.100.${i + 1}`))).toBe(200);
      if (i === 0) expect((await linkedOf()).filter((f) => f.token?.jti === jti), 'linked at the first request batch').toHaveLength(1);
    }
    const elapsedS = (Date.now() - t0) / 1000;
    const linked = await waitForLinked((l) => l.some((f) => f.token?.jti === jti && f.count === n));
    const mine = linked.filter((f) => f.token?.jti === jti);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ count: n, revision: n });
    const stored = server.counters().tokenLinks - linksBefore;
    // One at the first batch, then at most one per interval while the storm lasted, and the last one.
    expect(stored).toBeLessThanOrEqual(Math.ceil(elapsedS) + 3);
    expect(stored).toBeLessThan(n);
    expect(server.counters().tokenLinksHeld).toBeGreaterThan(0);
  });

  it('the link says which requests came from away: not from the node’s or the pod’s addresses that the read carried', async () => {
    const jti = '3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a';
    const home = new TokenHome({ host: 'cp-1' });
    const token: FindingToken = { ...claims, jti, home: { node: ['192.0.2.11'], pod: ['10.244.1.7', 'fd00::7'], cut: 0 } };
    expect(await ship(TOKEN_A, [makeFinding({ host: 'worker-1', time: new Date(T0 + 40_000).toISOString(), covers: ['H1'], source: 'audit', token })])).toBe(200);
    // Agent B knows only the node's kubelet address, so both requests are "away from node" there; the
    // read's home says the pod's own address (spelt as the API server spells IPv6) is home.
    expect(await ship(TOKEN_B, [...controlPlaneFindings(jti, 'from-thief', T0 + 41_000, home, '203.0.113.9'), ...controlPlaneFindings(jti, 'from-pod', T0 + 41_001, home, 'fd00:0:0::7')])).toBe(200);
    const [link] = (await linkedOf()).filter((f) => f.token?.jti === jti);
    expect(link).toBeDefined();
    expect(link!.indicators).toContain('used-away-from-home');
    const roles = Object.fromEntries(link!.evidence.filter((e) => e.role.startsWith('fleet:api-request')).map((e) => [e.event_id, e.role]));
    expect(roles['from-thief']).toMatch(/:away-from-home$/);
    expect(roles['from-pod']).not.toMatch(/away-from-home/);
    expect(link!.token?.home).toEqual(token.home);
  });
});
