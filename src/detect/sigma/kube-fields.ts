/**
 * The fields a Sigma rule (product: kubernetes, service: audit) sees in one API-server audit event,
 * by the dotted path of the audit.k8s.io/v1 Event (src/detect/sigma/fields.ts lists them).
 */
import type { KubeAuditEvent } from '../../kube/event';
import type { FieldGetter } from './compile';

function one(v: string | number | null | undefined): string[] | null {
  return v === null || v === undefined ? null : [String(v)];
}

export function kubeAuditFields(ev: KubeAuditEvent): FieldGetter {
  return (field) => {
    const o = ev.objectRef;
    switch (field) {
      case 'verb':
        return one(ev.verb);
      case 'userAgent':
        return one(ev.userAgent);
      case 'requestURI':
        return one(ev.requestURI);
      case 'sourceIPs':
        return ev.sourceIPs.length ? ev.sourceIPs : null;
      case 'responseStatus.code':
        return one(ev.responseCode);
      case 'stage':
        return one(ev.stage);
      case 'level':
        return one(ev.level);
      case 'auditID':
        return one(ev.auditID);
      case 'objectRef.resource':
        return one(o?.resource);
      case 'objectRef.subresource':
        return one(o?.subresource);
      case 'objectRef.namespace':
        return one(o?.namespace);
      case 'objectRef.name':
        return one(o?.name);
      case 'objectRef.apiGroup':
        return one(o?.apiGroup);
      case 'objectRef.apiVersion':
        return one(o?.apiVersion);
      case 'user.username':
        return one(ev.user.username);
      case 'user.uid':
        return one(ev.user.uid);
      case 'user.groups':
        return ev.user.groups.length ? ev.user.groups : null;
      case 'impersonatedUser.username':
        return one(ev.impersonatedUser?.username);
      case 'impersonatedUser.groups':
        return ev.impersonatedUser?.groups.length ? ev.impersonatedUser.groups : null;
      default:
        return null;
    }
  };
}
