/**
 * Evidence text for Kubernetes findings. The agent must not become a leak: a Secret's data, a
 * TokenRequest's token or a bearer token in an exec command must never reach the store or a shipper.
 *
 * Policy, field by field (structured, then the text rules on every string):
 *  - responseObject never exists past parsing (see ./event.ts);
 *  - in requestObject the values of data / stringData / binaryData, status.token, any key whose name
 *    says secret and the value of an env-style {name, value} pair whose name does are replaced;
 *    arrays of strings (command, args) are redacted as argv (`["--password", "X"]`); a string that
 *    holds JSON (kubectl.kubernetes.io/last-applied-configuration) is parsed and redacted the same way;
 *  - the requestURI's exec `command=` parameters are decoded and redacted as argv, so
 *    `command=--token&command=X` loses X; the rest of the URI goes through the text rules (URL-decoded);
 *  - audit annotations and the user agent: JSON-or-text as above.
 */
import { REDACTED, redactArgv, redactText } from '../detect/redact';
import { isSecretName } from '../detect/redact/secret-names';
import type { KubeAuditEvent } from './event';

export { REDACTED, redactText };

/** Keys whose values are secret material wherever they appear in a request object. */
const SECRET_VALUE_KEYS = new Set(['data', 'stringData', 'binaryData']);
const SECRET_KEY_NAME = /^(token|password|passwd|secret|client-key-data|client-certificate-data|bearerToken|apiKey|api_key)$/i;

/** Evidence must stay small: a pod spec is fine, a 1 MB ConfigMap is not. */
const MAX_REQUEST_OBJECT_CHARS = 8192;
const MAX_DEPTH = 32;

/** A string that is a JSON object or array is redacted as one (and re-serialised); others as text. */
function redactString(s: string, depth: number): string {
  const t = s.trimStart();
  if ((t.startsWith('{') || t.startsWith('[')) && depth < MAX_DEPTH) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) return JSON.stringify(redactValue(parsed, depth + 1, null));
  }
  return redactText(s);
}

function redactValue(v: unknown, depth: number, parentKey: string | null): unknown {
  if (depth > MAX_DEPTH) return REDACTED;
  if (typeof v === 'string') return redactString(v, depth);
  if (Array.isArray(v)) {
    // command/args and exec argv: a flag and its value are separate elements.
    if (v.length > 0 && v.every((x) => typeof x === 'string')) return (redactArgv(v as string[]) as string[]).map((x) => redactString(x, depth));
    return v.map((x) => redactValue(x, depth + 1, parentKey));
  }
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    // Env-style {name, value} pairs: PASSWORD=..., API_TOKEN=... in a pod spec are secrets too.
    const o = v as Record<string, unknown>;
    const secretPair = typeof o.name === 'string' && typeof o.value === 'string' && isSecretName(o.name);
    for (const [k, val] of Object.entries(o)) {
      if (secretPair && k === 'value') {
        out[k] = REDACTED;
        continue;
      }
      if (SECRET_VALUE_KEYS.has(k) && val !== null && typeof val === 'object') {
        // Keep the key names (which secret fields exist is useful), drop every value.
        out[k] = Object.fromEntries(Object.keys(val as object).map((name) => [name, REDACTED]));
      } else if ((SECRET_KEY_NAME.test(k) || isSecretName(k)) && typeof val === 'string') {
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
  const annotations = Object.keys(ev.annotations).length ? (redactValue(ev.annotations, 0, null) as Record<string, unknown>) : undefined;
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
