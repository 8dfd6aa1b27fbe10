/**
 * The fields a Sigma rule (product: kubernetes, service: audit) sees in one API-server audit event,
 * by the dotted path of the audit.k8s.io/v1 Event (src/detect/sigma/fields.ts lists them).
 */
import type { KubeAuditEvent } from '../../kube/event';
import type { FieldGetter } from './compile';

type Value = string | number | null | undefined;

/** Single-valued fields; the list-valued ones (sourceIPs, groups) are below. */
const ONE: Record<string, (ev: KubeAuditEvent) => Value> = {
  verb: (ev) => ev.verb,
  userAgent: (ev) => ev.userAgent,
  requestURI: (ev) => ev.requestURI,
  'responseStatus.code': (ev) => ev.responseCode,
  stage: (ev) => ev.stage,
  level: (ev) => ev.level,
  auditID: (ev) => ev.auditID,
  'objectRef.resource': (ev) => ev.objectRef?.resource,
  'objectRef.subresource': (ev) => ev.objectRef?.subresource,
  'objectRef.namespace': (ev) => ev.objectRef?.namespace,
  'objectRef.name': (ev) => ev.objectRef?.name,
  'objectRef.apiGroup': (ev) => ev.objectRef?.apiGroup,
  'objectRef.apiVersion': (ev) => ev.objectRef?.apiVersion,
  'user.username': (ev) => ev.user.username,
  'user.uid': (ev) => ev.user.uid,
  'impersonatedUser.username': (ev) => ev.impersonatedUser?.username,
};

const MANY: Record<string, (ev: KubeAuditEvent) => readonly string[] | undefined> = {
  sourceIPs: (ev) => ev.sourceIPs,
  'user.groups': (ev) => ev.user.groups,
  'impersonatedUser.groups': (ev) => ev.impersonatedUser?.groups,
};

export function kubeAuditFields(ev: KubeAuditEvent): FieldGetter {
  return (field) => {
    // Own keys only: a field name such as "constructor" must not reach Object.prototype.
    const many = Object.hasOwn(MANY, field) ? MANY[field] : undefined;
    if (many) {
      const v = many(ev);
      return v && v.length > 0 ? v : null;
    }
    const v = Object.hasOwn(ONE, field) ? ONE[field]!(ev) : null;
    return v === null || v === undefined ? null : [String(v)];
  };
}
