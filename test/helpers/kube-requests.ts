/**
 * API-server audit events as kube-apiserver >= 1.32 writes them for a request made with a bound
 * service-account token (credential-id, pod and node in user.extra), parsed by the real parser.
 */
import { parseKubeAuditLine, type KubeAuditEvent } from '../../src/kube/event';

export interface RequestInput {
  auditID: string;
  atMs: number;
  jti?: string | null;
  /** Raw credential-id value (overrides jti). */
  credentialId?: string;
  podUid?: string | null;
  podName?: string;
  node?: string | null;
  username?: string;
  sourceIPs?: string[];
  verb?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  stage?: string;
  userAgent?: string;
  annotations?: Record<string, string>;
  requestObject?: unknown;
  subresource?: string;
}

export function requestLine(i: RequestInput): string {
  const extra: Record<string, string[]> = {};
  const cred = i.credentialId ?? (i.jti ? `JTI=${i.jti}` : undefined);
  if (cred !== undefined) extra['authentication.kubernetes.io/credential-id'] = [cred];
  if (i.podUid) {
    extra['authentication.kubernetes.io/pod-name'] = [i.podName ?? 'app-0'];
    extra['authentication.kubernetes.io/pod-uid'] = [i.podUid];
  }
  if (i.node) extra['authentication.kubernetes.io/node-name'] = [i.node];
  const ns = i.namespace ?? 'default';
  const resource = i.resource ?? 'secrets';
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: i.requestObject !== undefined ? 'Request' : 'Metadata',
    auditID: i.auditID,
    stage: i.stage ?? 'ResponseComplete',
    requestURI: `/api/v1/namespaces/${ns}/${resource}${i.name ? `/${i.name}` : ''}${i.subresource ? `/${i.subresource}` : ''}`,
    verb: i.verb ?? 'list',
    user: {
      username: i.username ?? `system:serviceaccount:${ns}:app`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      extra,
    },
    sourceIPs: i.sourceIPs ?? ['10.244.1.7'],
    userAgent: i.userAgent ?? 'curl/8.5.0',
    objectRef: { resource, namespace: ns, name: i.name, subresource: i.subresource, apiVersion: 'v1' },
    responseStatus: { code: 200 },
    ...(i.requestObject !== undefined ? { requestObject: i.requestObject } : {}),
    ...(i.annotations ? { annotations: i.annotations } : {}),
    requestReceivedTimestamp: new Date(i.atMs).toISOString(),
    stageTimestamp: new Date(i.atMs + 3).toISOString(),
  });
}

export function request(i: RequestInput): KubeAuditEvent {
  const r = parseKubeAuditLine(requestLine(i));
  if (!r.ok) throw new Error(r.error);
  return r.event;
}
