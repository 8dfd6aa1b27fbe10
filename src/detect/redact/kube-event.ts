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
import { MAX_ARGS, redactBoundedArgv } from '../bound';
import { REDACTED, redactText } from '../redact';
import { redactJsonValue } from './json';
import { redactCutText } from './text';

export { REDACTED, redactText };

/** Evidence must stay small: a pod spec is fine, a 1 MB ConfigMap is not. */
const MAX_REQUEST_OBJECT_CHARS = 8192;
/** A request URI is kept to this many characters once its exec commands are redacted and bounded. */
const MAX_URI_CHARS = 64 * 1024;

function redactValue(v: unknown): unknown {
  return redactJsonValue(v, redactText);
}

/**
 * Redaction replaces values, so an object far over the limit cannot come under it: such an object is
 * summarised without being walked (a 4 MB pod spec would otherwise be redacted string by string, then
 * dropped). The summary holds no content, so no secret.
 */
const UNREDACTABLE_CHARS = 8 * MAX_REQUEST_OBJECT_CHARS;

/** `chars` when the size is known; `over_chars` when counting stopped there (the object is larger). */
function summary(obj: unknown, size: { chars: number } | { over_chars: number }): unknown {
  const kind = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>).kind : undefined;
  return { truncated: true, kind: typeof kind === 'string' ? kind : null, ...size };
}

/**
 * About how many characters `obj` takes as JSON, counting no further than `limit` (then limit + 1):
 * without recursion and without building the text, so an object nested 100,000 deep (JSON.parse takes
 * it; JSON.stringify and any recursive walk overflow the stack) or 4 MB wide costs at most `limit` steps.
 */
export function jsonCharsUpTo(obj: unknown, limit: number): number {
  let chars = 0;
  const stack: unknown[] = [obj];
  while (stack.length > 0 && chars <= limit) {
    const v = stack.pop();
    if (typeof v === 'string') chars += v.length + 2;
    else if (Array.isArray(v)) {
      chars += 2 + v.length;
      for (let i = 0; i < v.length && stack.length <= limit; i++) stack.push(v[i]);
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      chars += 2 + keys.length * 4;
      for (let i = 0; i < keys.length && stack.length <= limit; i++) {
        chars += keys[i]!.length;
        stack.push((v as Record<string, unknown>)[keys[i]!]);
      }
    } else chars += String(v).length;
  }
  return chars > limit || stack.length > 0 ? limit + 1 : chars;
}

export function redactRequestObject(obj: unknown): unknown {
  if (obj === null || obj === undefined) return null;
  // The redaction walk stops at a fixed depth (./json.ts), so what it returns is safe to stringify.
  if (jsonCharsUpTo(obj, UNREDACTABLE_CHARS) > UNREDACTABLE_CHARS) return summary(obj, { over_chars: UNREDACTABLE_CHARS });
  const red = redactValue(obj);
  const text = JSON.stringify(red);
  if (text.length > MAX_REQUEST_OBJECT_CHARS) return summary(obj, { chars: text.length });
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
    // As a finding's argv: redacted and bounded in one (src/detect/bound.ts); past MAX_ARGS the
    // command= parameters give way to one `command=…[+N args]`.
    const red = redactBoundedArgv(cmds) as string[];
    cmdAt.forEach((at, k) => {
      if (k < MAX_ARGS) {
        if (red[k] !== cmds[k]) params[at] = `command=${encodeURIComponent(red[k] as string)}`;
      } else params[at] = k === MAX_ARGS ? `command=${encodeURIComponent(red[MAX_ARGS] as string)}` : '';
    });
  }
  const kept = params.filter((p) => p !== '');
  const rest = `${uri.slice(0, q)}?${kept.join('&')}`;
  // The other parameters and the path are attacker-written too: bounded like an argument, as cut text.
  return rest.length > MAX_URI_CHARS ? `${redactCutText(rest.slice(0, MAX_URI_CHARS))}…[+${rest.length - MAX_URI_CHARS} chars]` : redactText(rest);
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
