/**
 * Real service-account-style JWTs for tests: RS256-signed with a key pair the test makes
 * (node:crypto), claims shaped like the API server's bound tokens (or legacy secret-based ones).
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

let key: KeyObject | null = null;

function signingKey(): KeyObject {
  key ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return key;
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

/** A compact JWS over `claims`, signed RS256 with the test's own key. */
export function signJwt(claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', kid: 'credwatch-test-key' }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), signingKey());
  return `${head}.${body}.${b64url(sig)}`;
}

export interface BoundClaimsInput {
  jti?: string;
  namespace?: string;
  serviceAccount?: string;
  pod?: string;
  podUid?: string;
  node?: string;
  nodeUid?: string;
  iat?: number;
  exp?: number;
  aud?: string[];
}

/** Claims of a bound (projected) token as kube-apiserver >= 1.32 issues them. */
export function boundClaims(i: BoundClaimsInput = {}): Record<string, unknown> {
  const iat = i.iat ?? Math.floor(Date.now() / 1000) - 60;
  const ns = i.namespace ?? 'default';
  const sa = i.serviceAccount ?? 'default';
  return {
    aud: i.aud ?? ['https://kubernetes.default.svc.cluster.local'],
    exp: i.exp ?? iat + 3607,
    iat,
    nbf: iat,
    iss: 'https://kubernetes.default.svc.cluster.local',
    jti: i.jti ?? randomUUID(),
    'kubernetes.io': {
      namespace: ns,
      node: { name: i.node ?? 'worker-1', uid: i.nodeUid ?? randomUUID() },
      pod: { name: i.pod ?? 'app-0', uid: i.podUid ?? randomUUID() },
      serviceaccount: { name: sa, uid: randomUUID() },
      warnafter: iat + 3000,
    },
    sub: `system:serviceaccount:${ns}:${sa}`,
  };
}

/** Claims of a legacy secret-based token (no jti, no expiry). */
export function legacyClaims(namespace = 'default', serviceAccount = 'builder', secret = 'builder-token-x7k2p'): Record<string, unknown> {
  return {
    iss: 'kubernetes/serviceaccount',
    'kubernetes.io/serviceaccount/namespace': namespace,
    'kubernetes.io/serviceaccount/secret.name': secret,
    'kubernetes.io/serviceaccount/service-account.name': serviceAccount,
    'kubernetes.io/serviceaccount/service-account.uid': randomUUID(),
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
  };
}
