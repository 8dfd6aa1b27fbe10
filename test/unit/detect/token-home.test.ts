import { describe, expect, it } from 'vitest';
import { TOKEN_AWAY_RULE, TokenHome } from '../../../src/detect/kube/token-home';
import { request } from '../../helpers/kube-requests';

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
});
