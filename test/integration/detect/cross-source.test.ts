/**
 * Cross-source join: the recorded in-pod token read (real kernel audit, fixtures/behaviours) followed
 * by an API-server audit event whose bound service-account token names the same pod.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CROSS_SOURCE_RULE, CrossSourceCorrelator } from '../../../src/detect/cross-source';
import { parseKubeAuditLine, type KubeAuditEvent } from '../../../src/kube/event';
import { BEHAVIOURS, replay } from './replay';

const pod = JSON.parse(fs.readFileSync(path.join(BEHAVIOURS, 'pod.json'), 'utf8')) as { containerId: string; podUid: string };
const TOKEN_FRAGMENT = 'eyJhbGciOi';

function apiRequest(podUid: string, atMs: number, auditID: string, stage = 'ResponseComplete'): KubeAuditEvent {
  const line = JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID,
    stage,
    requestURI: '/api/v1/namespaces/default/secrets',
    verb: 'list',
    user: {
      username: 'system:serviceaccount:default:app',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/pod-name': ['app-0'], 'authentication.kubernetes.io/pod-uid': [podUid] },
    },
    sourceIPs: ['10.244.0.7'],
    userAgent: 'curl/7.88.1',
    objectRef: { resource: 'secrets', namespace: 'default', apiVersion: 'v1' },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: new Date(atMs).toISOString(),
    stageTimestamp: new Date(atMs + 3).toISOString(),
  });
  const r = parseKubeAuditLine(line);
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

async function tokenReadInPod() {
  const { findings } = await replay('pod-cat-token.log', { podUidOf: (id) => (id === pod.containerId ? pod.podUid : null) });
  // The correlator keeps the latest read per pod.
  const read = [...findings].reverse().find((f) => f.container?.pod_uid === pod.podUid && f.covers.some((c) => c === 'H1' || c === 'H2'));
  if (!read) throw new Error('the recorded pod token read produced no in-pod finding');
  return { findings, read };
}

describe('token read in a pod, then an API request with that pod’s token', () => {
  it('links both events in one critical finding carrying the pod, the process and the API request', async () => {
    const { findings, read } = await tokenReadInPod();
    const c = new CrossSourceCorrelator({ host: 'lab-node' });
    c.noteHostFindings(findings);
    const out = c.onKubeEvent(apiRequest(pod.podUid, Date.parse(read.time) + 30_000, 'req-1'));
    expect(out).toHaveLength(1);
    const f = out[0]!;
    expect(f.rule).toBe(CROSS_SOURCE_RULE);
    expect(f.severity).toBe('critical');
    expect(f.covers).toEqual(expect.arrayContaining([...read.covers, 'K1']));
    expect(f.container).toEqual(read.container);
    expect(f.kube?.user).toBe('system:serviceaccount:default:app');
    const ids = f.evidence.map((e) => e.event_id);
    expect(ids).toEqual(expect.arrayContaining([...read.evidence.map((e) => e.event_id), 'req-1']));
    expect(JSON.stringify(f)).not.toContain(TOKEN_FRAGMENT);
    // Same input, same id: shipping stays idempotent.
    const again = new CrossSourceCorrelator({ host: 'lab-node' });
    again.noteHostFindings(findings);
    expect(again.onKubeEvent(apiRequest(pod.podUid, Date.parse(read.time) + 30_000, 'req-1'))[0]!.id).toBe(f.id);
  });

  it('does not join another pod, a request before the read, one outside the window, an earlier stage, or the same request twice', async () => {
    const { findings, read } = await tokenReadInPod();
    const at = Date.parse(read.time);
    const c = new CrossSourceCorrelator({ host: 'lab-node', windowMs: 60_000 });
    c.noteHostFindings(findings);
    expect(c.onKubeEvent(apiRequest('00000000-0000-0000-0000-000000000000', at + 1_000, 'other-pod'))).toEqual([]);
    expect(c.onKubeEvent(apiRequest(pod.podUid, at - 1_000, 'before'))).toEqual([]);
    expect(c.onKubeEvent(apiRequest(pod.podUid, at + 61_000, 'too-late'))).toEqual([]);
    expect(c.onKubeEvent(apiRequest(pod.podUid, at + 1_000, 'staged', 'ResponseStarted'))).toEqual([]);
    expect(c.onKubeEvent(apiRequest(pod.podUid, at + 1_000, 'once'))).toHaveLength(1);
    expect(c.onKubeEvent(apiRequest(pod.podUid, at + 2_000, 'once'))).toEqual([]);
  });
});
