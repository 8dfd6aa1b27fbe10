/**
 * Claims of a Kubernetes service-account token, decoded without verifying it and without keeping it.
 *
 * The agent never needs the signature: it does not authenticate anyone, it names which credential was
 * read (the jti is what the API server records on every request made with it). So the token is split,
 * the payload segment alone is base64url-decoded and parsed, the fields we know are copied out with
 * their types checked, and the token text goes out of scope with the caller's buffer.
 *
 * Shapes handled:
 *  - bound (projected) tokens: `jti`, `iat`, `exp`, `sub`, `kubernetes.io.{namespace, pod, node,
 *    serviceaccount}`; the same claims in EKS (IRSA, Pod Identity) and Azure Workload Identity tokens,
 *    which are Kubernetes-issued with another audience;
 *  - legacy secret-based tokens: `kubernetes.io/serviceaccount/{namespace, secret.name,
 *    service-account.name}`, no jti, no expiry;
 *  - any other JWT: kind "other", times if present.
 * Bounded: a payload segment over MAX_PAYLOAD_CHARS is refused before decoding (a 1 MB claim set is an
 * attack on the agent, not a token), and so is a payload whose JSON is not an object.
 */

import type { FindingToken } from '../model/finding';

/** Largest payload segment (base64url characters) decoded; real ones are well under 2 KiB. */
export const MAX_PAYLOAD_CHARS = 16 * 1024;

export type ClaimsRefusal = 'not-jwt' | 'too-large' | 'bad-base64' | 'bad-json';
export type ClaimsResult = { ok: true; token: Omit<FindingToken, 'from'> } | { ok: false; reason: ClaimsRefusal };

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const MAX_FIELD = 256;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short plain string claim, or null (a claim of another type or size is not trusted as a name). */
function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD && !/[\u0000-\u001f]/.test(v) ? v : null;
}

function time(v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 253402300799) return null;
  return new Date(Math.floor(v) * 1000).toISOString();
}

function nested(o: Obj, ...keys: string[]): unknown {
  let cur: unknown = o;
  for (const k of keys) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** Decodes the claims of a compact JWS (`header.payload.signature`); never throws. */
export function decodeTokenClaims(text: string): ClaimsResult {
  const t = text.trim();
  const dot1 = t.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : t.indexOf('.', dot1 + 1);
  if (dot1 <= 0 || dot2 < 0 || t.indexOf('.', dot2 + 1) >= 0) return { ok: false, reason: 'not-jwt' };
  const payload = t.slice(dot1 + 1, dot2);
  if (payload.length > MAX_PAYLOAD_CHARS) return { ok: false, reason: 'too-large' };
  if (!SEGMENT.test(payload) || !SEGMENT.test(t.slice(0, dot1))) return { ok: false, reason: 'bad-base64' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'bad-json' };
  }
  if (!isObj(claims)) return { ok: false, reason: 'bad-json' };
  return { ok: true, token: tokenOfClaims(claims) };
}

function tokenOfClaims(c: Obj): Omit<FindingToken, 'from'> {
  const issued = time(c.iat);
  const expires = time(c.exp);
  const k8s = c['kubernetes.io'];
  if (isObj(k8s)) {
    return {
      jti: str(c.jti),
      service_account: str(nested(k8s, 'serviceaccount', 'name')),
      namespace: str(k8s.namespace),
      pod: str(nested(k8s, 'pod', 'name')),
      pod_uid: str(nested(k8s, 'pod', 'uid')),
      node: str(nested(k8s, 'node', 'name')),
      issued,
      expires,
      kind: 'bound',
    };
  }
  const legacyNs = str(c['kubernetes.io/serviceaccount/namespace']);
  if (legacyNs !== null || c.iss === 'kubernetes/serviceaccount') {
    return {
      jti: str(c.jti),
      service_account: str(c['kubernetes.io/serviceaccount/service-account.name']),
      namespace: legacyNs,
      pod: null,
      pod_uid: null,
      node: null,
      issued,
      expires,
      kind: 'legacy',
      secret_name: str(c['kubernetes.io/serviceaccount/secret.name']),
    };
  }
  const sa = typeof c.sub === 'string' ? /^system:serviceaccount:([^:]{1,63}):([^:]{1,253})$/.exec(c.sub) : null;
  return {
    jti: str(c.jti),
    service_account: sa ? sa[2]! : null,
    namespace: sa ? sa[1]! : null,
    pod: null,
    pod_uid: null,
    node: null,
    issued,
    expires,
    kind: 'other',
  };
}
