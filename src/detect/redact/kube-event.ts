/**
 * Evidence text for Kubernetes findings. The agent must not become a leak: a Secret's data, a
 * TokenRequest's token or a bearer token in an exec command must never reach the store or a shipper.
 *
 * Policy, field by field (structured, then the text rules on every string):
 *  - responseObject never exists past parsing (see src/kube/event.ts);
 *  - in requestObject the values of data / stringData / binaryData, status.token, any key whose name
 *    says secret and the value of an env-style {name, value} pair whose name does are replaced;
 *    arrays of strings (command, args) are redacted as argv (`["--password", "X"]`); a string that
 *    holds JSON (kubectl.kubernetes.io/last-applied-configuration) is parsed and redacted the same way;
 *  - the requestURI's exec `command=` parameters are decoded and redacted as argv, so
 *    `command=--token&command=X` loses X; the rest of the URI goes through the text rules (URL-decoded);
 *  - audit annotations and the user agent: JSON-or-text as above.
 */
import type { KubeAuditEvent } from '../../kube/event';
import { REDACTED, redactArgv, redactText } from '../redact';
import { redactJsonValue } from './json';

export { REDACTED, redactText };

/** Evidence must stay small: a pod spec is fine, a 1 MB ConfigMap is not. */
const MAX_REQUEST_OBJECT_CHARS = 8192;

function redactValue(v: unknown): unknown {
  return redactJsonValue(v, redactText);
}

export function redactRequestObject(obj: unknown): unknown {
  if (obj === null || obj === undefined) return null;
  const red = redactValue(obj);
  const text = JSON.stringify(red);
  if (text.length > MAX_REQUEST_OBJECT_CHARS) {
    const kind = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>).kind : undefined;
    return { truncated: true, kind: typeof kind === 'string' ? kind : null, chars: text.length };
  }
  return red;
}

/** An exec/attach request URI with its `command=` parameters redacted as one argv. */
export function redactRequestUri(uri: string): string {
  const q = uri.indexOf('?');
  if (q < 0) return redactText(uri);
  const params = uri.slice(q + 1).split('&');
  const cmdAt: number[] = [];
  const cmds: string[] = [];
  params.forEach((p, i) => {
    if (!p.startsWith('command=')) return;
    let v = p.slice('command='.length).replace(/\+/g, ' ');
    try {
      v = decodeURIComponent(v);
    } catch {
      // Malformed escapes: scan the text as it is.
    }
    cmdAt.push(i);
    cmds.push(v);
  });
  if (cmds.length > 0) {
    const red = redactArgv(cmds) as string[];
    cmdAt.forEach((at, k) => {
      if (red[k] !== cmds[k]) params[at] = `command=${encodeURIComponent(red[k] as string)}`;
    });
  }
  return redactText(`${uri.slice(0, q)}?${params.join('&')}`);
}

/** The compact JSON evidence record for one event, in the audit.k8s.io/v1 field names. */
export function kubeEvidenceText(ev: KubeAuditEvent): string {
  const annotations = Object.keys(ev.annotations).length ? (redactValue(ev.annotations) as Record<string, unknown>) : undefined;
  const view = {
    kind: 'Event',
    apiVersion: ev.apiVersion ?? 'audit.k8s.io/v1',
    level: ev.level,
    auditID: ev.auditID,
    stage: ev.stage,
    requestURI: redactRequestUri(ev.requestURI),
    verb: ev.verb,
    user: ev.user,
    impersonatedUser: ev.impersonatedUser ?? undefined,
    sourceIPs: ev.sourceIPs,
    userAgent: ev.userAgent === null || ev.userAgent === undefined ? undefined : redactText(ev.userAgent),
    objectRef: ev.objectRef ?? undefined,
    responseStatus: ev.responseCode === null ? undefined : { code: ev.responseCode },
    requestObject: ev.requestObject === null ? undefined : redactRequestObject(ev.requestObject),
    requestReceivedTimestamp: ev.requestReceivedTimestamp ?? undefined,
    stageTimestamp: ev.stageTimestamp ?? undefined,
    annotations,
  };
  // The fields are redacted one by one above; the text pass over the whole is a second net.
  return redactText(JSON.stringify(view));
}
