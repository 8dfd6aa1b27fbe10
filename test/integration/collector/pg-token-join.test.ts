/**
 * Issue 18 item 6 across replicas: two collector processes (real `credwatch collector`) on one real
 * PostgreSQL. Agent A's token read goes to replica 1, agent B's API request with that jti to replica 2:
 * exactly one linked finding, and a request with another jti is not tied. Then many reads and requests
 * posted at once, each side to a different replica, so both replicas build links concurrently: still one
 * linked finding per read. Agent B's findings come from the real away-from-node detector. Needs dist/.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request as httpRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLEET_TOKEN_RULE } from '../../../src/collector/token-join';
import { TokenHome } from '../../../src/detect/kube/token-home';
import type { Finding, FindingToken } from '../../../src/model/finding';
import { fleetAgents, freePort, selfSignedCert, startReplica, writeReplicaConfig, ROOT, type Replica } from '../../helpers/collector-fleet.cjs';
import { shipFindings } from '../../helpers/collector-http';
import { request } from '../../helpers/kube-requests';
import { startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';
import { makeFinding } from '../../unit/ship/support';

const built = existsSync(join(ROOT, 'dist/src/collector/token-join.js'));
const why = unavailableReason() ?? (built ? null : 'dist/ is not built (npm run build:ts)');
if (why) console.warn(`pg token-join test skipped: ${why}`);

const READER = 'reader-token-0123456789abcdef';
const POD = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const T0 = Date.now() - 120_000;

let pg: TestPostgres;
let dir: string;
let http: Agent;
const replicas: Replica[] = [];
const [worker, control] = fleetAgents(2) as [{ agent: string; token: string }, { agent: string; token: string }];

const claims = (jti: string): FindingToken => ({
  jti,
  service_account: 'app',
  namespace: 'shop',
  pod: 'app-0',
  pod_uid: POD,
  node: 'worker-1',
  issued: new Date(T0 - 60_000).toISOString(),
  expires: new Date(T0 + 3_600_000).toISOString(),
  kind: 'bound',
  from: 'file',
});

const readOf = (jti: string, atMs: number): Finding =>
  makeFinding({ host: 'worker-1', time: new Date(atMs).toISOString(), covers: ['H1'], source: 'audit', token: claims(jti), container: { id: 'c'.repeat(64), runtime: 'containerd', pod_uid: POD } });

/** Agent B's finding for a request with `jti` from a foreign address (the real detector). */
function requestOf(home: TokenHome, jti: string, auditID: string, atMs: number, from = '203.0.113.77'): Finding[] {
  home.onKubeEvent(request({ auditID: `kubelet-${auditID}`, atMs, username: 'system:node:worker-1', sourceIPs: ['192.0.2.11'], verb: 'get', resource: 'pods' }));
  const out = home.onKubeEvent(request({ auditID, atMs, jti, podUid: POD, node: 'worker-1', sourceIPs: [from], verb: 'list', resource: 'secrets', namespace: 'kube-system' }));
  return out.map((f) => ({ ...f, host: 'cp-1' }));
}

const post = (replica: Replica, token: string, findings: Finding[]): Promise<number> => shipFindings(replica.url, token, findings, http);

async function linked(replica: Replica): Promise<Finding[]> {
  const res = await httpRequest(`${replica.url}/v1/findings?rule=${FLEET_TOKEN_RULE}&limit=10000`, { headers: { authorization: `Bearer ${READER}` }, dispatcher: http });
  const text = await res.body.text();
  expect(res.statusCode).toBe(200);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Finding);
}

describe.skipIf(why !== null)('fleet token join across collector replicas on PostgreSQL', () => {
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
    dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-join-'));
    const pgUrl = pg.createDatabase('fleet');
    const cert = selfSignedCert(dir);
    for (const name of ['one', 'two']) {
      const port = await freePort();
      replicas.push(await startReplica({ config: writeReplicaConfig({ dir, name, port, cert, pgUrl, agents: [worker, control] }), port, password: pg.password, maxSeconds: 300 }));
    }
    http = new Agent({ connect: { ca: cert.ca } });
  }, 60_000);
  afterAll(async () => {
    await http?.close();
    for (const r of replicas) await r.kill('SIGKILL');
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a read posted to replica 1 and its request posted to replica 2 make exactly one linked finding; another jti is not tied', { timeout: 60_000 }, async () => {
    const [one, two] = replicas as [Replica, Replica];
    const jti = '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d';
    const otherJti = 'ffffffff-0000-4000-8000-000000000000';
    const home = new TokenHome({ host: 'cp-1' });
    const read = readOf(jti, T0);
    expect(await post(one, worker.token, [read])).toBe(200);
    expect(await linked(one)).toEqual([]);

    const req = requestOf(home, jti, 'req-1', T0 + 5_000);
    const other = requestOf(home, otherJti, 'req-other', T0 + 6_000);
    expect(req).toHaveLength(1);
    expect(other).toHaveLength(1);
    expect(await post(two, control.token, [...req, ...other])).toBe(200);

    // Either replica answers the same: the link is in the database, not in a process.
    for (const r of [one, two]) {
      const got = await linked(r);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ severity: 'critical', host: 'worker-1', token: { jti }, revision: 1, count: 1 });
      expect(got[0]!.description).toContain(worker.agent);
      expect(got[0]!.evidence.map((e) => e.event_id)).toEqual([...read.evidence.map((e) => e.event_id), 'req-1']);
      expect(got[0]!.evidence.map((e) => e.event_id)).not.toContain('req-other');
    }
    // The same batch again, through the other replica: still one row, same revision.
    expect(await post(one, control.token, req)).toBe(200);
    expect(pg.psql(`SELECT count(*) FROM fleet_findings WHERE rule = '${FLEET_TOKEN_RULE}'`, 'fleet').trim()).toBe('1');
    expect((await linked(two))[0]).toMatchObject({ revision: 1 });
  });

  it('reads and requests posted at once to different replicas: one linked finding per read, none twice', { timeout: 60_000 }, async () => {
    const [one, two] = replicas as [Replica, Replica];
    const before = await linked(one);
    const jtis = Array.from({ length: 24 }, (_, i) => `0b1c2d3e-4f5a-4b6c-8d7e-${String(i).padStart(12, '0')}`);
    const home = new TokenHome({ host: 'cp-1' });
    // Even jtis: read to replica 1, request to replica 2; odd: the other way round. All in flight together.
    const posts = jtis.flatMap((jti, i) => {
      const [r, q] = i % 2 === 0 ? [one, two] : [two, one];
      return [post(r, worker.token, [readOf(jti, T0 + i)]), post(q, control.token, requestOf(home, jti, `conc-${i}`, T0 + 1_000 + i))];
    });
    expect(await Promise.all(posts)).toEqual(posts.map(() => 200));
    const got = (await linked(two)).filter((f) => !before.some((b) => b.id === f.id));
    expect(got.map((f) => f.token?.jti).sort()).toEqual([...jtis].sort());
    expect(new Set(got.map((f) => f.id)).size).toBe(jtis.length);
    expect(got.every((f) => f.revision === 1 && f.count === 1)).toBe(true);
    // Stored once each in the database, whichever replica (or both) built it.
    const rows = pg.psql(`SELECT count(*), count(DISTINCT id) FROM fleet_findings WHERE rule = '${FLEET_TOKEN_RULE}'`, 'fleet').trim();
    expect(rows).toBe(`${before.length + jtis.length}|${before.length + jtis.length}`);
  });

  it('a read carrying its pod’s home: requests to either replica, a second one right after the first, revise one link that marks only the away request', { timeout: 60_000 }, async () => {
    const [one, two] = replicas as [Replica, Replica];
    const jti = '4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7a8b';
    const home = new TokenHome({ host: 'cp-1' });
    const read = makeFinding({ ...readOf(jti, T0 + 50_000), token: { ...claims(jti), home: { node: ['192.0.2.11'], pod: ['10.244.1.7'], cut: 0 } } });
    expect(await post(one, worker.token, [read])).toBe(200);
    // Agent B learnt only the kubelet's address: it flags the pod's own address as away from the node too.
    expect(await post(two, control.token, requestOf(home, jti, 'away-1', T0 + 51_000))).toBe(200);
    // Within the second, through the other replica: it has not linked this jti yet, so it joins at once.
    expect(await post(one, control.token, requestOf(home, jti, 'pod-own', T0 + 51_001, '10.244.1.7'))).toBe(200);
    const got = (await linked(two)).filter((f) => f.token?.jti === jti);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ revision: 2, count: 2, indicators: expect.arrayContaining(['used-away-from-home']) });
    const roles = Object.fromEntries(got[0]!.evidence.filter((e) => e.role.startsWith('fleet:api-request')).map((e) => [e.event_id, e.role]));
    expect(roles['away-1']).toMatch(/:away-from-home$/);
    expect(roles['pod-own']).not.toMatch(/away-from-home/);
    expect(pg.psql(`SELECT count(*) FROM fleet_findings WHERE rule = '${FLEET_TOKEN_RULE}' AND id = '${got[0]!.id}'`, 'fleet').trim()).toBe('1');
  });
});
