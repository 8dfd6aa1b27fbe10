/**
 * Issue 18 live: a stolen service-account token followed from the pod where it was read to the API
 * requests made with it. The real agent (`credwatch run`) on the real kernel and dockerd; a kubelet-style
 * token volume holding a real JWT (RS256, signed by a key this test makes) with a jti; the agent tailing
 * an API-server audit log file the test appends to and receiving the API server's webhook EventLists
 * over HTTPS with a client certificate.
 *
 *  - the read in the pod: the finding carries the token's claims (jti, pod, node), never the token;
 *  - requests with that jti from a foreign address (file and webhook) and one with the pod's own newer
 *    jti: exactly one "stolen token used" finding naming the stolen-jti requests, the other not tied;
 *    and the foreign address is "used away from its node". The finding is there at the first request
 *    (revised as the second joins), with the trail's window set to an hour: it cannot be the trail closing;
 *  - away from home without any kubelet request: a second pod on a node no kubelet request names, an
 *    address in its own network namespace (added as a CNI would); the read carries that home, so a
 *    request from the pod's address is home and one from elsewhere is away (trail and away finding);
 *  - rotation: the kubelet swaps ..data to a new token; a read then carries the new jti.
 *
 * Needs root, kernel audit and docker; run under the lab lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/e2e/token-trail.test.ts
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding';
import { SA_DIR_IN_POD, startPod, type Pod } from '../helpers/pod-layout';
import { boundClaims, signJwt } from '../helpers/jwt';
import { requestLine } from '../helpers/kube-requests';
import { parseFibTrieLocal } from '../../src/enrich/netns-addresses';
import { kernelSnapshot, labSkipReason, setUpLab, type KernelSnapshot, type Lab } from './lab/attack-lab';
import { run, runOk } from './lab/commands';
import { CREDWATCH_BIN } from './lab/daemon';
import { freeLoopbackPort, startDaemon, type RunningDaemon } from './lab/daemon';
import { tearDownLab } from './lab/teardown';
import { describeFindings, readFindings, stateKey, waitForNewFindings, waitForSettledFindings } from './lab/findings';

const reason = labSkipReason() ?? (process.env.CREDWATCH_E2E_AGENT_IMAGE_TAR ? 'the agent image run has no kube_audit config' : null);
if (reason) console.warn(`[skip] e2e token trail: ${reason}`);

const NODE = 'lab-worker-1';
const NODE_IP = '192.0.2.11';
const THIEF_IP = '203.0.113.50';
const JTI = randomUUID();
const NEWER_JTI = randomUUID();
const FINDING_TIMEOUT_MS = 20_000;
// The trail keeps taking requests into its finding for an hour (detections.token_trail): a linked
// finding seen within FINDING_TIMEOUT_MS was sent at its first request, not when the trail closed.
const TRAIL_WINDOW_S = 3600;
// The second pod: on a node no kubelet request ever names, with an address of its own.
const NODE_2 = 'lab-worker-2';
const JTI_2 = randomUUID();
const POD_2_IP = '10.250.0.7';
const THIEF_2_IP = '198.51.100.99';

describe.skipIf(reason !== null)('e2e: a stolen token followed to the API requests made with it', () => {
  let lab: Lab | null = null;
  let pod: Pod | null = null;
  let pod2: Pod | null = null;
  let daemon: RunningDaemon | null = null;
  let kernelBefore: KernelSnapshot | null = null;
  let auditLog = '';
  let webhookPort = 0;
  const tokens: string[] = [];
  const seen = new Set<string>();
  let readAt = 0;

  const p = (): Pod => pod as Pod;
  const leaks = (raw: string): string[] =>
    tokens.flatMap((t) => [t, t.split('.').slice(0, 2).join('.'), t.split('.')[2]!]).filter((s) => raw.includes(s));

  function postWebhook(lines: string[]): Promise<number> {
    const client = lab!.pki.client('kube-apiserver');
    const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: lines.map((l) => JSON.parse(l) as unknown) });
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: webhookPort, method: 'POST', path: '/audit', ca: lab!.pki.ca, cert: client.cert, key: client.key, servername: 'localhost', headers: { 'content-type': 'application/json' }, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async function readInPod(): Promise<void> {
    await runOk('docker', ['exec', p().containerId, 'cat', `${SA_DIR_IN_POD}/token`]);
  }

  /** The kubelet's atomic writer: a new generation dir, ..data_tmp renamed over ..data, the old dir removed. */
  function rotate(token: string): void {
    const vol = p().volumeDir;
    const oldGen = fs.readlinkSync(path.join(vol, '..data'));
    const newGen = `..2026_12_02_11_00_00.${Date.now()}`;
    fs.mkdirSync(path.join(vol, newGen));
    for (const n of ['ca.crt', 'namespace']) fs.copyFileSync(path.join(vol, oldGen, n), path.join(vol, newGen, n));
    fs.writeFileSync(path.join(vol, newGen, 'token'), token, { mode: 0o644 });
    fs.symlinkSync(newGen, path.join(vol, '..data_tmp'));
    fs.renameSync(path.join(vol, '..data_tmp'), path.join(vol, '..data'));
    fs.rmSync(path.join(vol, oldGen), { recursive: true });
  }

  async function statusDrops(): Promise<Record<string, number>> {
    const r = await run(process.execPath, [CREDWATCH_BIN, 'status', '--json', '--db', daemon!.dbPath], { timeoutMs: 20_000 });
    const rep = JSON.parse(r.stdout) as { running: boolean; snapshot: { drops: Record<string, number> } };
    expect(rep.running).toBe(true);
    return rep.snapshot.drops;
  }

  beforeAll(async () => {
    kernelBefore = kernelSnapshot();
    lab = await setUpLab();
    pod = startPod({
      mountParent: path.join(lab.dir, 'kubelet'),
      tmpfsSize: '8m', // room for the 1 MB-payload token of the bad-input case
      token: (podUid) => {
        const t = signJwt(boundClaims({ jti: JTI, podUid, pod: 'lab-pod', node: NODE, namespace: 'default', serviceAccount: 'default' }));
        tokens.push(t);
        return t;
      },
    });
    lab.defer('pod', () => pod?.cleanup());
    pod2 = startPod({
      mountParent: path.join(lab.dir, 'kubelet'),
      token: (podUid) => {
        const t = signJwt(boundClaims({ jti: JTI_2, podUid, pod: 'lab-pod-2', node: NODE_2, namespace: 'default', serviceAccount: 'default' }));
        tokens.push(t);
        return t;
      },
    });
    lab.defer('pod 2', () => pod2?.cleanup());
    // What a CNI does: an address in the pod's own network namespace (the pod runs with --network none).
    await runOk('nsenter', ['-t', String(pod2.containerPid), '-n', 'ip', 'addr', 'add', `${POD_2_IP}/32`, 'dev', 'lo']);
    auditLog = path.join(lab.dir, 'apiserver-audit.log');
    fs.writeFileSync(auditLog, '');
    webhookPort = await freeLoopbackPort();
    const server = lab.pki.server;
    daemon = await startDaemon(
      lab.dir,
      [
        'kube_audit:',
        `  - path: ${auditLog}`,
        '  - webhook:',
        `      listen: 127.0.0.1:${webhookPort}`,
        '      path: /audit',
        `      tls: {cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${lab.pki.caFile}}`,
        'detections:',
        '  token_trail:',
        `    window_seconds: ${TRAIL_WINDOW_S}`,
        '',
      ].join('\n'),
    );
    await daemon.waitForLog((l) => l.msg === 'credwatch running', 30_000, 'the agent to report "credwatch running"');
    await daemon.waitForLog((l) => l.msg === 'kube audit webhook listening', 5_000, 'the webhook to listen');
    await daemon.waitForLog((l) => l.msg === 'pod token watches updated', 15_000, 'the pod token watch');
    await new Promise((r) => setTimeout(r, 1000));
    for (const f of (await readFindings(daemon.dbPath)).findings) seen.add(stateKey(f));
  }, 180_000);

  afterAll(async () => {
    const problems = await tearDownLab('e2e token trail', {
      daemon,
      lab,
      kernelBefore,
      afterStop: (d) => {
        const logged = d.logs.map((l) => JSON.stringify(l)).join('\n') + d.stderr();
        return leaks(logged).length > 0 ? ['the raw token reached the agent log'] : [];
      },
    });
    expect(problems.filter((x) => x.includes('raw token'))).toEqual([]);
  }, 120_000);

  it('the read in the pod carries the token’s claims, not the token', async () => {
    await readInPod();
    const isRead = (f: Finding): boolean => f.token?.jti === JTI && f.container?.pod_uid === p().podUid;
    const r = await waitForNewFindings(daemon!.dbPath, seen, (fresh) => fresh.some(isRead), FINDING_TIMEOUT_MS);
    const read = r.fresh.find(isRead);
    expect(read, `no read finding with the token's jti; new findings:\n${describeFindings(r.fresh)}`).toBeDefined();
    expect(read!.token).toMatchObject({ jti: JTI, pod_uid: p().podUid, pod: 'lab-pod', node: NODE, service_account: 'default', namespace: 'default', kind: 'bound', from: 'file' });
    expect(leaks(r.raw)).toEqual([]);
    for (const f of r.fresh) seen.add(stateKey(f));
    readAt = Date.parse(read!.time);
  }, 60_000);

  it('exactly one linked finding for the stolen jti (file and webhook), the newer jti not tied, and the foreign address flagged', async () => {
    expect(readAt).toBeGreaterThan(0);
    const t = Date.now();
    const stolen = { jti: JTI, podUid: p().podUid, podName: 'lab-pod', node: NODE, sourceIPs: [THIEF_IP], userAgent: 'kubectl/v1.32.0' };
    fs.appendFileSync(
      auditLog,
      [
        requestLine({ auditID: 'kubelet-1', atMs: t, username: `system:node:${NODE}`, sourceIPs: [NODE_IP], verb: 'get', resource: 'pods' }),
        // The kubelet reporting the pod's address (audit level Request for pods/status): home for its requests.
        requestLine({ auditID: 'kubelet-status', atMs: t + 50, username: `system:node:${NODE}`, sourceIPs: [NODE_IP], verb: 'patch', resource: 'pods', name: 'lab-pod', subresource: 'status', requestObject: { status: { podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }] } } }),
        requestLine({ ...stolen, auditID: 'stolen-file-1', atMs: t + 100, verb: 'list', resource: 'secrets', namespace: 'kube-system' }),
        requestLine({ auditID: 'own-newer', atMs: t + 200, jti: NEWER_JTI, podUid: p().podUid, node: NODE, sourceIPs: ['10.244.1.7'], verb: 'get', resource: 'configmaps' }),
      ].join('\n') + '\n',
    );
    // The webhook batch carries its own kubelet request: it may be read before the file's lines.
    expect(await postWebhook([requestLine({ auditID: 'kubelet-2', atMs: t + 250, username: `system:node:${NODE}`, sourceIPs: [NODE_IP], verb: 'get', resource: 'nodes' }), requestLine({ ...stolen, auditID: 'stolen-webhook-1', atMs: t + 300, verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'cluster-admin-token' })])).toBe(200);
    const trail = (fs_: Finding[]) => fs_.filter((f) => f.rule === 'seq-stolen-token-used');
    // The first revision: there while the trail's hour-long window is open, so sent at the first request.
    const r = await waitForNewFindings(daemon!.dbPath, seen, (fresh) => trail(fresh).length > 0, FINDING_TIMEOUT_MS);
    const firstSeen = trail(r.fresh);
    expect(firstSeen, `no linked finding while the trail is open; new findings:\n${describeFindings(r.fresh)}`).toHaveLength(1);
    expect(Date.now() - t).toBeLessThan(TRAIL_WINDOW_S * 1000);
    expect(firstSeen[0]!.evidence.map((e) => e.event_id)).toEqual(expect.arrayContaining(['stolen-file-1']));
    // Then the webhook's request joins it as a revision of the same finding, not a second finding.
    const settled = await waitForSettledFindings(daemon!.dbPath, seen, (fresh) => trail(fresh).some((f) => f.evidence.some((e) => e.event_id === 'stolen-webhook-1')), 2_500, FINDING_TIMEOUT_MS);
    const after = settled.fresh;
    for (const x of after) seen.add(stateKey(x));
    const linked = trail(after);
    expect(linked, `new findings:\n${describeFindings(after)}`).toHaveLength(1);
    const f = linked[0]!;
    expect(f.id).toBe(firstSeen[0]!.id);
    expect(f.revision ?? 0).toBeGreaterThanOrEqual(firstSeen[0]!.revision ?? 0);
    expect(f).toMatchObject({ severity: 'critical', confidence: 'high', token: { jti: JTI }, container: { pod_uid: p().podUid } });
    const requests = f.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => e.event_id);
    expect(requests.sort()).toEqual(['stolen-file-1', 'stolen-webhook-1']);
    // The pod's own newer token, from the pod's address: in no trail or away-from-node finding.
    const away = after.filter((x) => x.rule === 'kube-token-used-away-from-node');
    expect([...linked, ...away].flatMap((x) => x.evidence.map((e) => e.event_id))).not.toContain('own-newer');
    // One away-from-node finding per token and address: both stolen requests came from THIEF_IP.
    expect(away).toHaveLength(1);
    expect(['stolen-file-1', 'stolen-webhook-1']).toContain(away[0]!.kube?.audit_id);
    expect(away.every((x) => x.token?.jti === JTI)).toBe(true);
    expect(leaks((await readFindings(daemon!.dbPath)).raw)).toEqual([]);
  }, 90_000);

  it('away from home without the kubelet’s requests: the read carries the pod’s own address and the node’s; a request from elsewhere is away', async () => {
    const q = pod2!;
    await runOk('docker', ['exec', q.containerId, 'cat', `${SA_DIR_IN_POD}/token`]);
    const isRead = (f: Finding): boolean => f.source === 'audit' && f.token?.jti === JTI_2 && f.container?.pod_uid === q.podUid;
    const r = await waitForNewFindings(daemon!.dbPath, seen, (fresh) => fresh.some(isRead), FINDING_TIMEOUT_MS);
    const read = r.fresh.find(isRead);
    expect(read, `no read finding in pod 2; new findings:\n${describeFindings(r.fresh)}`).toBeDefined();
    // The pod's namespace as the kernel has it (loopback left out): only the address the "CNI" added.
    expect(read!.token?.home?.pod).toEqual([POD_2_IP]);
    const nodeAddrs = parseFibTrieLocal(fs.readFileSync('/proc/1/net/fib_trie', 'latin1'));
    expect(read!.token?.home?.node).toEqual(expect.arrayContaining(nodeAddrs));
    for (const f of r.fresh) seen.add(stateKey(f));

    const t = Date.now();
    const req = { jti: JTI_2, podUid: q.podUid, podName: 'lab-pod-2', node: NODE_2, verb: 'list', resource: 'secrets', namespace: 'default' };
    // No kubelet request for lab-worker-2 anywhere in the stream: only the read says where home is.
    fs.appendFileSync(auditLog, [requestLine({ ...req, auditID: 'pod2-home', atMs: t, sourceIPs: [POD_2_IP] }), requestLine({ ...req, auditID: 'pod2-away', atMs: t + 100, sourceIPs: [THIEF_2_IP] })].join('\n') + '\n');
    const wanted = (fresh: Finding[]): boolean =>
      fresh.some((f) => f.rule === 'kube-token-used-away-from-node' && f.token?.jti === JTI_2) &&
      fresh.some((f) => f.rule === 'seq-stolen-token-used' && f.token?.jti === JTI_2 && f.evidence.some((e) => e.event_id === 'pod2-away'));
    const got = await waitForSettledFindings(daemon!.dbPath, seen, wanted, 2_500, FINDING_TIMEOUT_MS);
    for (const f of got.fresh) seen.add(stateKey(f));
    const away = got.fresh.filter((f) => f.rule === 'kube-token-used-away-from-node' && f.token?.jti === JTI_2);
    expect(away.map((f) => f.kube?.audit_id), `new findings:\n${describeFindings(got.fresh)}`).toEqual(['pod2-away']);
    expect(away[0]!.confidence).toBe('high');
    const linked = got.fresh.filter((f) => f.rule === 'seq-stolen-token-used' && f.token?.jti === JTI_2);
    expect(linked).toHaveLength(1);
    const roles = Object.fromEntries(linked[0]!.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => [e.event_id, e.role]));
    expect(roles).toEqual({ 'pod2-home': 'sequence:api-request:jti', 'pod2-away': 'sequence:api-request:jti:away-from-home' });
    expect(linked[0]!.indicators).toContain('used-away-from-home');
    expect(leaks(got.raw)).toEqual([]);
  }, 60_000);

  it('after the kubelet rotates the token, a read carries the new jti', async () => {
    const rotated = signJwt(boundClaims({ jti: NEWER_JTI, podUid: p().podUid, pod: 'lab-pod', node: NODE }));
    tokens.push(rotated);
    rotate(rotated);
    await new Promise((r) => setTimeout(r, 1500));
    await readInPod();
    const isNew = (f: Finding): boolean => f.source === 'audit' && f.token?.jti === NEWER_JTI && f.container?.pod_uid === p().podUid;
    const r = await waitForNewFindings(daemon!.dbPath, seen, (fresh) => fresh.some(isNew), FINDING_TIMEOUT_MS);
    expect(r.fresh.some(isNew), `no read with the rotated jti; new findings:\n${describeFindings(r.fresh)}`).toBe(true);
    expect(r.fresh.filter((f) => f.source === 'audit' && f.token?.jti === JTI).map((f) => f.rule)).toEqual([]);
    expect(leaks(r.raw)).toEqual([]);
  }, 60_000);

  it('bad input is counted in credwatch status and crashes nothing: a token that is not a JWT, a 1 MB payload, wrong-shaped credential-ids', async () => {
    const before = await statusDrops();
    const huge = signJwt({ ...boundClaims({ podUid: p().podUid }), pad: 'x'.repeat(1024 * 1024) });
    tokens.push(huge);
    const podRead = (f: Finding): boolean => f.source === 'audit' && f.container?.pod_uid === p().podUid && f.rules?.includes('h1-sa-token-read') === true;
    const opens = (f: Finding): string[] => f.evidence.filter((e) => e.role.includes('h1-sa-token-read:')).map((e) => e.event_id);
    const opensBefore = new Set((await readFindings(daemon!.dbPath)).findings.filter(podRead).flatMap(opens));
    for (const [what, token] of [['not a JWT', 'this is not a token at all\n'], ['1 MB payload', huge]] as const) {
      rotate(token);
      await new Promise((r) => setTimeout(r, 1500));
      await readInPod();
      // The incident of the pod's token reads grows by revisions (the docker exec CLI, the exec in the
      // pod, its open): judge it once its open is in and nothing more arrives.
      const hasNewOpen = (f: Finding): boolean => podRead(f) && opens(f).some((id) => !opensBefore.has(id));
      const r = await waitForSettledFindings(daemon!.dbPath, seen, (fresh) => fresh.some(hasNewOpen), 2_500, FINDING_TIMEOUT_MS);
      const read = r.fresh.find(hasNewOpen);
      expect(read, `${what}: the read still raises its finding (its open in the evidence); new findings:\n${describeFindings(r.fresh)}`).toBeDefined();
      expect(read!.token, `${what}: no claims`).toBeUndefined();
      for (const id of opens(read!)) opensBefore.add(id);
      for (const f of r.fresh) seen.add(stateKey(f));
    }
    fs.appendFileSync(auditLog, ['JTI=', 'JTI=a b', `JTI=${'%'.repeat(5000)}`].map((c, i) => requestLine({ auditID: `bad-cred-${i}`, atMs: Date.now(), credentialId: c, podUid: p().podUid, node: NODE })).join('\n') + '\n');
    const grew = (k: string, d: Record<string, number>): number => (d[k] ?? 0) - (before[k] ?? 0);
    const end = Date.now() + 10_000;
    let drops = await statusDrops();
    while (Date.now() < end && !(grew('token_claims_not_jwt', drops) >= 1 && grew('token_claims_file_too_large', drops) >= 1 && grew('kube_credential_malformed', drops) >= 3)) {
      await new Promise((r) => setTimeout(r, 500));
      drops = await statusDrops();
    }
    expect({ notJwt: grew('token_claims_not_jwt', drops), tooLarge: grew('token_claims_file_too_large', drops), malformed: grew('kube_credential_malformed', drops) }).toEqual({ notJwt: 1, tooLarge: 1, malformed: 3 });
    expect(daemon!.exited()).toBe(false);
  });
});
