/**
 * A finding with every field of Finding set, optional ones included. Typed `Required<Finding>` so that
 * a field added to Finding fails the type check here until it is given a value, and with it the
 * collector's round-trip test (test/integration/collector/round-trip.test.ts) covers the new field.
 */
import type { Finding } from '../../src/model/finding';

export function fullFinding(over: Partial<Finding> = {}): Required<Finding> {
  const time = new Date(Date.now() - 120_000);
  const iso = (ms: number) => new Date(time.getTime() + ms).toISOString();
  return {
    id: 'full-0001',
    rule: 'cw-sa-token-read',
    title: 'Service account token read by a process outside its pod',
    description: 'A process read a watched token file of another pod.',
    severity: 'critical',
    score: 91.5,
    confidence: 'high',
    covers: ['H1', 'H3'],
    mitre: ['T1552.007'],
    time: time.toISOString(),
    host: 'node-a',
    source: 'audit',
    indicators: ['token-read', 'foreign-reader'],
    process: {
      pid: 4242,
      ppid: 4200,
      exe: '/usr/bin/cat',
      comm: 'cat',
      argv: ['cat', '/var/lib/kubelet/pods/0b5e/volumes/kubernetes.io~projected/kube-api-access/token'],
      cwd: '/',
      uid: 0,
      user: 'root',
      auid: 1000,
      tty: 'pts0',
      interactive: true,
      parents: [{ pid: 4200, exe: '/bin/bash', argv: null }],
    },
    container: { id: 'b'.repeat(64), runtime: 'containerd', pod_uid: '7f1c2a9e-0000-4000-8000-000000000001' },
    object: { class: 'pod-token', pod_uid: '0b5e0000-0000-4000-8000-000000000002', container_id: null, via: 'inode', foreign: true },
    kube: {
      user: 'system:serviceaccount:default:app',
      groups: ['system:serviceaccounts'],
      impersonated_user: null,
      verb: 'get',
      resource: 'secrets',
      subresource: null,
      namespace: 'default',
      name: 'db',
      source_ips: ['10.0.0.7'],
      user_agent: 'curl/8.5.0',
      response_code: 200,
      audit_id: 'c0ffee00-0000-4000-8000-000000000003',
    },
    token: {
      jti: 'jti-0001',
      service_account: 'app',
      namespace: 'default',
      pod: 'app-7d4b9',
      pod_uid: '0b5e0000-0000-4000-8000-000000000002',
      node: 'node-a',
      issued: iso(-3_600_000),
      expires: iso(3_600_000),
      kind: 'bound',
      secret_name: null,
      from: 'file',
    },
    evidence: [{ event_id: '1700000000.123:42', time: iso(-5), role: 'token-read', records: [{ type: 'PATH', text: 'item=0 name="token" inode=1234 dev=00:2a' }] }],
    truncated: { fields: ['process.argv', 'evidence.records.text'], original_bytes: 70_000 },
    rules: ['cw-sa-token-read', 'cw-token-read-then-api'],
    count: 3,
    first_seen: iso(-60_000),
    last_seen: time.toISOString(),
    revision: 2,
    incident: { actor: 'bbbbbbbbbbbb', object: 'pod-token:0b5e0000-0000-4000-8000-000000000002' },
    ...over,
  };
}
