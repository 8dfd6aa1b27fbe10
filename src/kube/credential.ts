/**
 * The credential an API request was made with, as the API server recorded it in `user.extra`.
 *
 * With ServiceAccountTokenJTI and ServiceAccountTokenPodNodeInfo (GA in 1.32) the API server adds to
 * every request authenticated by a bound service-account token:
 *   authentication.kubernetes.io/credential-id  ["JTI=<jti>"]     (x509 clients: "X509SHA256=<hex>")
 *   authentication.kubernetes.io/pod-name / pod-uid               (since 1.22 for pod-bound tokens)
 *   authentication.kubernetes.io/node-name / node-uid             (tokens bound to a pod on a node)
 * Some distributions and older audit pipelines wrote the keys under `authentication.k8s.io/`; both
 * spellings are read, the current one first.
 *
 * Only the authenticated `user` is read, never `impersonatedUser`: a client that may impersonate sets
 * the impersonated user's extra fields itself (Impersonate-Extra-* headers), so a "credential-id"
 * there is the client's claim, not the API server's finding.
 *
 * The values are the attacker's as much as anyone's (a token the attacker minted elsewhere, a proxy in
 * front of the API server): a credential-id of a wrong shape is not used as a join key, and is counted.
 */
import type { FindingToken } from '../model/finding';
import type { KubeAuditEvent } from './event';

export interface RequestCredential {
  /** The JWT ID of the token used, from `JTI=<jti>`; null when the request carries no usable one. */
  jti: string | null;
  /** "jti", "x509" (a client certificate: not a token), "other" (a kind we do not know), or null (none). */
  kind: 'jti' | 'x509' | 'other' | null;
  /** A credential-id was present but not of a shape we accept (counted by the caller). */
  malformed: boolean;
  podName: string | null;
  podUid: string | null;
  nodeName: string | null;
  nodeUid: string | null;
  /** `system:serviceaccount:<ns>:<name>` split; null for other users. */
  serviceAccount: { namespace: string; name: string } | null;
}

const PREFIXES = ['authentication.kubernetes.io/', 'authentication.k8s.io/'];

/**
 * jti values the API server issues are UUIDs; other issuers use other opaque strings. What we accept
 * is bounded and plain so a join key can never carry markup, separators or megabytes.
 */
const JTI_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME_RE = /^[a-z0-9.-]{1,253}$/;
const SA_RE = /^system:serviceaccount:([a-z0-9-]{1,63}):([a-z0-9.-]{1,253})$/;

function first(extra: Record<string, string[]>, key: string): string | null {
  for (const p of PREFIXES) {
    const v = extra[p + key];
    if (v !== undefined && v.length > 0) return v[0] ?? null;
  }
  return null;
}

function plain(v: string | null, re: RegExp): string | null {
  return v !== null && re.test(v) ? v : null;
}

/** Parses `JTI=<jti>` (and recognises `X509SHA256=`); anything else is malformed. */
export function parseCredentialId(v: string | null): Pick<RequestCredential, 'jti' | 'kind' | 'malformed'> {
  if (v === null) return { jti: null, kind: null, malformed: false };
  const eq = v.indexOf('=');
  const kind = eq > 0 ? v.slice(0, eq) : '';
  const value = eq > 0 ? v.slice(eq + 1) : '';
  if (kind === 'JTI') return JTI_RE.test(value) ? { jti: value, kind: 'jti', malformed: false } : { jti: null, kind: 'jti', malformed: true };
  if (kind === 'X509SHA256') return { jti: null, kind: 'x509', malformed: !/^[0-9a-f]{64}$/.test(value) };
  if (/^[A-Z0-9]{1,32}$/.test(kind) && value.length > 0 && value.length <= 256) return { jti: null, kind: 'other', malformed: false };
  return { jti: null, kind: null, malformed: true };
}

/** The credential of the authenticated user of a request. */
export function requestCredential(ev: Pick<KubeAuditEvent, 'user'>): RequestCredential {
  const extra = ev.user.extra;
  const sa = ev.user.username === null ? null : SA_RE.exec(ev.user.username);
  const id = parseCredentialId(first(extra, 'credential-id'));
  // Written out rather than spread: adding properties to a spread clone is V8's slow path on Node 20.
  return {
    jti: id.jti,
    kind: id.kind,
    malformed: id.malformed,
    podName: plain(first(extra, 'pod-name'), NAME_RE),
    podUid: plain(first(extra, 'pod-uid'), UUID_RE),
    nodeName: plain(first(extra, 'node-name'), NAME_RE),
    nodeUid: plain(first(extra, 'node-uid'), UUID_RE),
    serviceAccount: sa ? { namespace: sa[1]!, name: sa[2]! } : null,
  };
}

/**
 * The peer address of a request. `sourceIPs` lists X-Forwarded-For entries, then X-Real-Ip, then the
 * connection's remote address last: the client writes the first ones, so only the last is evidence of
 * where the request came from (as seen by the API server; a load balancer in front shows its address).
 */
export function requestPeer(ev: KubeAuditEvent): string | null {
  const ips = ev.sourceIPs;
  return ips.length > 0 ? (ips[ips.length - 1] ?? null) : null;
}

/**
 * The request's credential as a finding's `token` (claims as the API server saw them), or undefined
 * when the request was not made with a service-account token.
 */
export function requestToken(ev: Pick<KubeAuditEvent, 'credential' | 'annotations'>): FindingToken | undefined {
  const c = ev.credential;
  if (c.serviceAccount === null && c.jti === null && c.podUid === null) return undefined;
  return {
    jti: c.jti,
    service_account: c.serviceAccount?.name ?? null,
    namespace: c.serviceAccount?.namespace ?? null,
    pod: c.podName,
    pod_uid: c.podUid,
    node: c.nodeName,
    issued: null,
    expires: null,
    // The API server annotates requests made with a secret-based token (LegacyServiceAccountTokenTracking).
    kind: c.podUid !== null || c.jti !== null ? 'bound' : ev.annotations['authentication.k8s.io/legacy-token'] !== undefined ? 'legacy' : 'other',
    from: 'api-request',
  };
}
