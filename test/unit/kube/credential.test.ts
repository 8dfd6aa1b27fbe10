import { describe, expect, it } from 'vitest';
import { parseCredentialId, requestPeer } from '../../../src/kube/credential';
import { parseKubeAuditLine, type KubeAuditEvent } from '../../../src/kube/event';

function event(user: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeAuditEvent {
  const r = parseKubeAuditLine(
    JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'a1', stage: 'ResponseComplete', verb: 'get', requestURI: '/api/v1/namespaces/x/secrets', user, sourceIPs: ['1.2.3.4', '10.0.0.5'], ...extra }),
  );
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

const POD_UID = '6f1b7d2a-8c3e-4f5a-9b0c-1d2e3f4a5b6c';

describe('the credential of an API request (user.extra)', () => {
  it('parses credential-id JTI=, pod and node from the authenticated user', () => {
    const ev = event({
      username: 'system:serviceaccount:shop:cart',
      extra: {
        'authentication.kubernetes.io/credential-id': ['JTI=2b7c6a1e-0d4f-4a7e-8f3b-5c9d0e1f2a3b'],
        'authentication.kubernetes.io/pod-name': ['cart-0'],
        'authentication.kubernetes.io/pod-uid': [POD_UID],
        'authentication.kubernetes.io/node-name': ['worker-2'],
        'authentication.kubernetes.io/node-uid': ['0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'],
      },
    });
    expect(ev.credential).toEqual({
      jti: '2b7c6a1e-0d4f-4a7e-8f3b-5c9d0e1f2a3b',
      kind: 'jti',
      malformed: false,
      podName: 'cart-0',
      podUid: POD_UID,
      nodeName: 'worker-2',
      nodeUid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
      serviceAccount: { namespace: 'shop', name: 'cart' },
    });
  });

  it('reads the older authentication.k8s.io/ spelling of the keys', () => {
    const ev = event({ username: 'system:serviceaccount:a:b', extra: { 'authentication.k8s.io/credential-id': ['JTI=abc-1'], 'authentication.k8s.io/pod-uid': [POD_UID] } });
    expect(ev.credential).toMatchObject({ jti: 'abc-1', podUid: POD_UID });
  });

  it('ignores what an impersonating client claims in the impersonated user', () => {
    const ev = event({ username: 'admin', extra: {} }, { impersonatedUser: { username: 'system:serviceaccount:a:b', extra: { 'authentication.kubernetes.io/credential-id': ['JTI=forged'], 'authentication.kubernetes.io/pod-uid': [POD_UID] } } });
    expect(ev.credential).toMatchObject({ jti: null, kind: null, podUid: null, serviceAccount: null });
  });

  it('flags credential-ids of a wrong shape and never uses them as a key', () => {
    for (const bad of ['JTI=', 'JTI=a b', `JTI=${'x'.repeat(129)}`, 'JTI=<script>', 'garbage', '=x', 'X509SHA256=zz']) {
      expect(parseCredentialId(bad), bad).toMatchObject({ jti: null, malformed: true });
    }
    expect(parseCredentialId('X509SHA256=' + 'a'.repeat(64))).toEqual({ jti: null, kind: 'x509', malformed: false });
    expect(parseCredentialId('OIDC=sub-1')).toEqual({ jti: null, kind: 'other', malformed: false });
    expect(parseCredentialId(null)).toEqual({ jti: null, kind: null, malformed: false });
  });

  it('drops pod and node values that are not plain names or uids', () => {
    const ev = event({ username: 'system:serviceaccount:a:b', extra: { 'authentication.kubernetes.io/pod-uid': ['not-a-uid'], 'authentication.kubernetes.io/node-name': ['Evil Node/../x'] } });
    expect(ev.credential).toMatchObject({ podUid: null, nodeName: null });
  });

  it('takes the connection address (the last sourceIP), not what X-Forwarded-For claims', () => {
    expect(requestPeer(event({ username: 'x' }))).toBe('10.0.0.5');
  });
});
