/**
 * Evidence text for Kubernetes findings. The agent must not become a leak: a Secret's data, a
 * TokenRequest's token or a bearer token in an exec command must never reach the store or a shipper.
 *
 * Policy: responseObject never exists past parsing (see ./event.ts); in requestObject the values of
 * data / stringData / binaryData, status.token and any token/password-like key are replaced; then the
 * whole evidence text goes through JWT / bearer / --token= / password= scrubbing.
 */
import { REDACTED, redactText } from '../detect/redact';
import type { KubeAuditEvent } from './event';

export { REDACTED, redactText };

/** Keys whose values are secret material wherever they appear in a request object. */
const SECRET_VALUE_KEYS = new Set(['data', 'stringData', 'binaryData']);
const SECRET_KEY_NAME = /^(token|password|passwd|secret|client-key-data|client-certificate-data|bearerToken|apiKey|api_key)$/i;

const SECRET_ENV_NAME = /pass|secret|token|credential|private|api_?key|access_?key|auth/i;

/** Evidence must stay small: a pod spec is fine, a 1 MB ConfigMap is not. */
const MAX_REQUEST_OBJECT_CHARS = 8192;

function redactValue(v: unknown, depth: number, parentKey: string | null): unknown {
  if (depth > 32) return REDACTED;
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1, parentKey));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    // Env-style {name, value} pairs: PASSWORD=..., API_TOKEN=... in a pod spec are secrets too.
    const o = v as Record<string, unknown>;
    const secretPair = typeof o.name === 'string' && typeof o.value === 'string' && SECRET_ENV_NAME.test(o.name);
    for (const [k, val] of Object.entries(o)) {
      if (secretPair && k === 'value') {
        out[k] = REDACTED;
        continue;
      }
      if (SECRET_VALUE_KEYS.has(k) && val !== null && typeof val === 'object') {
        // Keep the key names (which secret fields exist is useful), drop every value.
        out[k] = Object.fromEntries(Object.keys(val as object).map((name) => [name, REDACTED]));
      } else if (SECRET_KEY_NAME.test(k) && typeof val === 'string') {
        out[k] = REDACTED;
      } else if (parentKey === 'status' && k === 'token') {
        out[k] = REDACTED;
      } else {
        out[k] = redactValue(val, depth + 1, k);
      }
    }
    return out;
  }
  return v;
}

export function redactRequestObject(obj: unknown): unknown {
  if (obj === null || obj === undefined) return null;
  const red = redactValue(obj, 0, null);
  const text = JSON.stringify(red);
  if (text.length > MAX_REQUEST_OBJECT_CHARS) {
    const kind = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>).kind : undefined;
    return { truncated: true, kind: typeof kind === 'string' ? kind : null, chars: text.length };
  }
  return red;
}

/** The compact JSON evidence record for one event, in the audit.k8s.io/v1 field names. */
export function kubeEvidenceText(ev: KubeAuditEvent): string {
  const view = {
    kind: 'Event',
    apiVersion: ev.apiVersion ?? 'audit.k8s.io/v1',
    level: ev.level,
    auditID: ev.auditID,
    stage: ev.stage,
    requestURI: ev.requestURI,
    verb: ev.verb,
    user: ev.user,
    impersonatedUser: ev.impersonatedUser ?? undefined,
    sourceIPs: ev.sourceIPs,
    userAgent: ev.userAgent ?? undefined,
    objectRef: ev.objectRef ?? undefined,
    responseStatus: ev.responseCode === null ? undefined : { code: ev.responseCode },
    requestObject: ev.requestObject === null ? undefined : redactRequestObject(ev.requestObject),
    requestReceivedTimestamp: ev.requestReceivedTimestamp ?? undefined,
    stageTimestamp: ev.stageTimestamp ?? undefined,
    annotations: Object.keys(ev.annotations).length ? ev.annotations : undefined,
  };
  return redactText(JSON.stringify(view));
}
