import { describe, expect, it } from 'vitest';
import { TOKEN_AWAY_RULE, TokenHome } from '../../../src/detect/kube/token-home';
import { request } from '../../helpers/kube-requests';
import type { Finding, FindingTokenHome } from '../../../src/model/finding';
import { makeFinding } from '../ship/support';

/** A read of pod `pod`'s token on worker-1, with the home the reading agent saw. */
const readWithHome = (pod: string, home: FindingTokenHome, jti = JTI): Finding =>
  makeFinding({
    source: 'audit',
    rule: 'h1-sa-token-read',
    covers: ['H1'],
    token: { jti, service_account: 'app', namespace: 'default', pod: 'app-0', pod_uid: pod, node: 'worker-1', issued: null, expires: null, kind: 'bound', from: 'file', home },
  });

const POD = '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d';
const JTI = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const T = Date.parse('2026-12-02T10:00:00Z');

/** A kubelet request from node `node` at `ip` (teaches the node's address). */
const kubelet = (node: string, ip: string, extra: Partial<Parameters<typeof request>[0]> = {}) =>
  request({ auditID: `kubelet-${node}-${ip}-${extra.auditID ?? ''}`, atMs: T, username: `system:node:${node}`, sourceIPs: [ip], verb: 'get', resource: 'pods', ...extra });

const podRequest = (auditID: string, ip: string[], jti: string | null = JTI) => request({ auditID, atMs: T + 1000, jti, podUid: POD, node: 'worker-1', sourceIPs: ip });

describe('a node-bound token used away from its node', () => {
  it('says nothing while no address of the node is known (counted)', () => {
    const h = new TokenHome({ host: 'cp' });
    expect(h.onKubeEvent(podRequest('r1', ['198.51.100.7']))).toEqual([]);
    expect(h.stats.homeUnknown).toBe(1);
  });

  it('flags a request from an address that is not the node’s, once per token and address; home requests pass', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    expect(h.onKubeEvent(podRequest('home', ['192.0.2.11']))).toEqual([]);
    const out = h.onKubeEvent(podRequest('away', ['198.51.100.7']));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ rule: TOKEN_AWAY_RULE, severity: 'high', confidence: 'medium', token: { jti: JTI, pod_uid: POD, node: 'worker-1', from: 'api-request' }, kube: { audit_id: 'away' } });
    expect(out[0]!.description).toContain('no pod addresses of that node learnt yet');
    expect(h.onKubeEvent(podRequest('away-again', ['198.51.100.7']))).toEqual([]);
  });

  it('does not let X-Forwarded-For make a foreign request look home', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    expect(h.onKubeEvent(podRequest('xff', ['192.0.2.11', '198.51.100.7']))).toHaveLength(1);
  });

  it('learns pod addresses and pod CIDRs of the node: a pod on the node is home, confidence high elsewhere', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11', { auditID: 's', verb: 'patch', resource: 'pods', subresource: 'status', name: 'app-0', requestObject: { status: { podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }] } } }));
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11', { auditID: 'n', verb: 'patch', resource: 'nodes', name: 'worker-1', namespace: '', requestObject: { spec: { podCIDR: '10.244.2.0/24' } } }));
    expect(h.onKubeEvent(podRequest('pod-ip', ['10.244.1.7']))).toEqual([]);
    expect(h.onKubeEvent(podRequest('pod-cidr', ['10.244.2.33']))).toEqual([]);
    expect(h.onKubeEvent(podRequest('outside', ['10.244.3.3']))[0]).toMatchObject({ confidence: 'high' });
    expect(h.stats).toMatchObject({ nodesLearnt: 1, podAddressesLearnt: 1, podCidrsLearnt: 1 });
  });

  it('names another node when the token is used from that node’s address', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    h.onKubeEvent(kubelet('worker-2', '192.0.2.12'));
    const [f] = h.onKubeEvent(podRequest('from-w2', ['192.0.2.12']));
    expect(f).toMatchObject({ confidence: 'high', indicators: ['token-bound-to-node', 'peer-is-another-node'] });
    expect(f!.description).toContain('node worker-2');
  });

  it('learns no node address from a request that impersonates the kubelet', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    const forged = kubelet('worker-1', '198.51.100.7', { auditID: 'imp' });
    forged.impersonatedUser = { username: 'system:node:worker-1', uid: null, groups: [], extra: {} };
    h.onKubeEvent(forged);
    expect(h.onKubeEvent(podRequest('away', ['198.51.100.7']))).toHaveLength(1);
  });

  it('ignores a malformed credential-id', () => {
    const h = new TokenHome({ host: 'cp' });
    h.onKubeEvent(kubelet('worker-1', '192.0.2.11'));
    expect(h.onKubeEvent(request({ auditID: 'bad', atMs: T, credentialId: 'JTI=a b', podUid: POD, node: 'worker-1', sourceIPs: ['198.51.100.7'] }))).toEqual([]);
  });

  it('learns the node’s and the pod’s addresses from a token read: away is said without any kubelet request', () => {
    const h = new TokenHome({ host: 'cp' });
    h.noteHostFindings([readWithHome(POD, { node: ['192.0.2.11', '2001:db8::11'], pod: ['10.244.1.7'], cut: 0 })]);
    expect(h.onKubeEvent(podRequest('from-pod', ['10.244.1.7']))).toEqual([]);
    expect(h.onKubeEvent(podRequest('from-node', ['192.0.2.11']))).toEqual([]);
    expect(h.onKubeEvent(podRequest('from-node-v6', ['2001:db8::11']))).toEqual([]);
    const out = h.onKubeEvent(podRequest('away', ['203.0.113.50']));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ rule: TOKEN_AWAY_RULE, confidence: 'high', kube: { audit_id: 'away' } });
    expect(h.stats).toMatchObject({ learntFromReads: 1, nodesLearnt: 1, homeUnknown: 0 });
  });

  it('a pod’s own addresses are home for its token only: a pod that added an address to its namespace widens no other pod’s home', () => {
    const OTHER = '0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d';
    const h = new TokenHome({ host: 'cp' });
    // The attacker's pod added 203.0.113.50 to its own namespace before reading its token.
    h.noteHostFindings([readWithHome(OTHER, { node: ['192.0.2.11'], pod: ['10.244.1.8', '203.0.113.50'], cut: 0 }, 'ffffffff-0000-4000-8000-000000000001')]);
    expect(h.onKubeEvent(request({ auditID: 'own', atMs: T + 1000, jti: 'ffffffff-0000-4000-8000-000000000001', podUid: OTHER, node: 'worker-1', sourceIPs: ['203.0.113.50'] }))).toEqual([]);
    // POD's token used from that address is still away: the address is home only for OTHER.
    expect(h.onKubeEvent(podRequest('stolen', ['203.0.113.50']))).toHaveLength(1);
  });

  it('a read whose pod namespace could not be read teaches the node only: the pod network then looks foreign, confidence medium', () => {
    const h = new TokenHome({ host: 'cp' });
    h.noteHostFindings([readWithHome(POD, { node: ['192.0.2.11'], pod: null, cut: 0 })]);
    expect(h.onKubeEvent(podRequest('pod-ip', ['10.244.1.7']))[0]).toMatchObject({ confidence: 'medium' });
  });
});
