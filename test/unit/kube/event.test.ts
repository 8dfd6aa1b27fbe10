import { describe, expect, it } from 'vitest';
import { effectiveUser, kubeRequestPod, looksLikeKubeAudit, parseKubeAuditLine, salvageKubeAuditLine, type KubeAuditEvent } from '../../../src/kube/event';

const v1 = {
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'RequestResponse',
  auditID: 'id-1',
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/app/secrets/db',
  verb: 'get',
  user: { username: 'alice', uid: 'u1', groups: ['devs', 'system:authenticated'], extra: { scopes: ['a', 'b'] } },
  impersonatedUser: { username: 'bob', groups: ['system:authenticated'] },
  sourceIPs: ['10.0.0.1', '10.0.0.2'],
  userAgent: 'curl/8.5.0',
  objectRef: { resource: 'secrets', namespace: 'app', name: 'db', apiGroup: '', apiVersion: 'v1' },
  responseStatus: { metadata: {}, code: 200 },
  requestObject: { kind: 'DeleteOptions' },
  responseObject: { kind: 'Secret', data: { password: 'aHVudGVyMg==' } },
  requestReceivedTimestamp: '2026-01-10T10:00:00.123456Z',
  stageTimestamp: '2026-01-10T10:00:00.200000Z',
  annotations: { 'authorization.k8s.io/decision': 'allow' },
};

function ok(line: string): KubeAuditEvent {
  const r = parseKubeAuditLine(line);
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

describe('parseKubeAuditLine', () => {
  it('normalises an audit.k8s.io/v1 event and drops responseObject', () => {
    const ev = ok(JSON.stringify(v1));
    expect(ev).toMatchObject({
      apiVersion: 'audit.k8s.io/v1',
      auditID: 'id-1',
      stage: 'ResponseComplete',
      verb: 'get',
      requestURI: '/api/v1/namespaces/app/secrets/db',
      objectRef: { resource: 'secrets', subresource: null, namespace: 'app', name: 'db', apiGroup: '', apiVersion: 'v1' },
      user: { username: 'alice', uid: 'u1', groups: ['devs', 'system:authenticated'], extra: { scopes: ['a', 'b'] } },
      impersonatedUser: { username: 'bob', uid: null, groups: ['system:authenticated'], extra: {} },
      sourceIPs: ['10.0.0.1', '10.0.0.2'],
      userAgent: 'curl/8.5.0',
      responseCode: 200,
      annotations: { 'authorization.k8s.io/decision': 'allow' },
      requestObject: { kind: 'DeleteOptions' },
      timeMs: Date.parse('2026-01-10T10:00:00.123Z'),
    });
    expect(JSON.stringify(ev)).not.toContain('aHVudGVyMg');
    expect(effectiveUser(ev).username).toBe('bob');
  });

  it('accepts the v1beta1 shape: timestamp instead of requestReceivedTimestamp, group in objectRef.apiVersion', () => {
    const ev = ok(
      JSON.stringify({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1beta1',
        metadata: { creationTimestamp: '2018-10-25T13:58:49Z' },
        level: 'Request',
        timestamp: '2018-10-25T13:58:49Z',
        auditID: 'b1',
        stage: 'ResponseComplete',
        requestURI: '/apis/apps/v1beta1/namespaces/default/deployments',
        verb: 'create',
        user: { username: 'minikube-user', groups: ['system:masters'] },
        sourceIPs: ['192.168.99.1'],
        objectRef: { resource: 'deployments', namespace: 'default', apiVersion: 'apps/v1beta1' },
        responseStatus: { metadata: {}, code: 201 },
      }),
    );
    expect(ev.objectRef?.apiGroup).toBe('apps');
    expect(ev.requestReceivedTimestamp).toBe('2018-10-25T13:58:49Z');
    expect(ev.timeMs).toBe(Date.parse('2018-10-25T13:58:49Z'));
    expect(ev.userAgent).toBeNull();
  });

  it('accepts events without apiVersion or kind (old Falco fixtures)', () => {
    const { apiVersion: _a, kind: _k, ...bare } = v1;
    const ev = ok(JSON.stringify(bare));
    expect(ev.apiVersion).toBeNull();
    expect(ev.auditID).toBe('id-1');
  });

  it('expands an EventList into its events and reports bad items without dropping good ones', () => {
    const r = parseKubeAuditLine(
      JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [v1, { ...v1, auditID: 'id-2' }, { ...v1, verb: 5 }] }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.events.map((e) => e.auditID)).toEqual(['id-1', 'id-2']);
    expect(r.itemErrors).toEqual(['items[2].verb: expected string, got number']);
  });

  it.each([
    ['broken JSON', '{"kind":"Event",', /^invalid JSON/],
    ['a JSON array', '[{"kind":"Event"}]', /expected a JSON object, got array/],
    ['a JSON string', '"hello"', /expected a JSON object, got string/],
    ['an empty line', '   ', /^empty line$/],
    ['verb of the wrong type', JSON.stringify({ ...v1, verb: ['get'] }), /^verb: expected string, got array/],
    ['missing auditID', JSON.stringify({ ...v1, auditID: undefined }), /^auditID: missing/],
    ['sourceIPs not an array', JSON.stringify({ ...v1, sourceIPs: '10.0.0.1' }), /^sourceIPs: expected array of strings/],
    ['code as a string', JSON.stringify({ ...v1, responseStatus: { code: '200' } }), /^responseStatus.code: expected integer/],
    ['user not an object', JSON.stringify({ ...v1, user: 'alice' }), /^user: expected object/],
    ['objectRef.name a number', JSON.stringify({ ...v1, objectRef: { resource: 'secrets', name: 1 } }), /^objectRef.name: expected string/],
    ['another API kind', JSON.stringify({ kind: 'Pod', apiVersion: 'v1' }), /^kind: expected "Event"/],
    ['another apiVersion', JSON.stringify({ ...v1, apiVersion: 'v1' }), /^apiVersion: not an audit.k8s.io event/],
    ['an empty EventList', JSON.stringify({ kind: 'EventList', items: [] }), /EventList has no items/],
    ['a 1 MB garbage line', 'x'.repeat(1024 * 1024), /^invalid JSON/],
  ])('rejects %s with a clear error', (_name, line, error) => {
    const r = parseKubeAuditLine(line);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });
});

describe('looksLikeKubeAudit', () => {
  it('tells k8s audit JSON lines from auditd text', () => {
    expect(looksLikeKubeAudit(`\n${JSON.stringify(v1)}\n`)).toBe(true);
    expect(looksLikeKubeAudit('type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59')).toBe(false);
    expect(looksLikeKubeAudit('node=h1 type=EXECVE msg=audit(1.2:3): argc=1 a0="ls"')).toBe(false);
    expect(looksLikeKubeAudit('')).toBe(false);
  });
});

describe('kubeRequestPod', () => {
  it('reads the pod a bound service-account token belongs to from user.extra', () => {
    const ev = ok(
      JSON.stringify({
        ...v1,
        impersonatedUser: undefined,
        user: {
          username: 'system:serviceaccount:app:web',
          extra: {
            'authentication.kubernetes.io/pod-name': ['web-0'],
            'authentication.kubernetes.io/pod-uid': ['6f1c2a9e-0d4b-4c55-9a57-1f2e3d4c5b6a'],
            'authentication.kubernetes.io/node-name': ['worker-1'],
          },
        },
      }),
    );
    expect(kubeRequestPod(ev)).toEqual({ podName: 'web-0', podUid: '6f1c2a9e-0d4b-4c55-9a57-1f2e3d4c5b6a', nodeName: 'worker-1' });
    expect(kubeRequestPod(ok(JSON.stringify(v1)))).toBeNull();
  });
});

describe('salvageKubeAuditLine', () => {
  const line = JSON.stringify({ ...v1, requestObject: { big: 'x'.repeat(100) } });
  it('closes the head before the first bulky object and takes timestamps and annotations from the tail', () => {
    const r = salvageKubeAuditLine(line.slice(0, line.indexOf('"requestObject"') + 30), line.slice(-300));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toMatchObject({ auditID: 'id-1', verb: 'get', requestObject: null, timeMs: Date.parse('2026-01-10T10:00:00.123Z'), stageTimestamp: '2026-01-10T10:00:00.200000Z' });
    expect(r.event.annotations).toEqual({ 'authorization.k8s.io/decision': 'allow' });
  });
  it('fails clearly on garbage', () => {
    const r = salvageKubeAuditLine('A'.repeat(1000), 'A'.repeat(100));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/without a requestObject/);
  });
});
