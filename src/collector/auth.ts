/**
 * Who is talking to the collector: an agent (or a reader) identified by a bearer token or by the CN of
 * a client certificate that the configured client CA verified. Tokens are kept only as SHA-256 digests
 * and compared in constant time; a presented token never reaches a log line or a response.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

export type Role = 'ingest' | 'query';

export interface PrincipalConfig {
  agent: string;
  /** SHA-256 (hex) of the token; preferred over `token` so the file holds no usable secret. */
  token_sha256?: string | undefined;
  /** Token resolved from `token` or `token_env` at config load. */
  token?: string | undefined;
  roles: Role[];
  /** When set, this agent may only send findings whose `host` is in the list (no forging for others). */
  hosts?: string[] | undefined;
}

export interface Principal {
  agent: string;
  roles: Role[];
  hosts?: string[] | undefined;
  via: 'token' | 'certificate';
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; status: 401 | 403; error: string };

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

export class Authenticator {
  private readonly byDigest = new Map<string, PrincipalConfig>();
  private readonly byAgent = new Map<string, PrincipalConfig>();

  constructor(principals: readonly PrincipalConfig[]) {
    for (const p of principals) {
      this.byAgent.set(p.agent, p);
      const digest = p.token_sha256?.toLowerCase() ?? (p.token !== undefined ? sha256Hex(p.token) : undefined);
      if (digest !== undefined) this.byDigest.set(digest, p);
    }
  }

  authenticate(req: IncomingMessage): AuthResult {
    const certAgent = verifiedClientCn(req);
    const header = req.headers.authorization;
    let tokenPrincipal: PrincipalConfig | undefined;
    if (header !== undefined) {
      const m = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(header);
      if (!m) return { ok: false, status: 401, error: 'Authorization header must be "Bearer <token>"' };
      const digest = sha256Hex(m[1]!);
      const candidate = this.byDigest.get(digest);
      // The map lookup already matched the digest; compare again in constant time so that no code path
      // depends on how much of a wrong token was right.
      if (candidate && timingSafeEqual(Buffer.from(digest, 'hex'), Buffer.from(candidateDigest(candidate), 'hex'))) tokenPrincipal = candidate;
      if (!tokenPrincipal) return { ok: false, status: 401, error: 'unknown token' };
    }
    if (tokenPrincipal) {
      if (certAgent !== null && certAgent !== tokenPrincipal.agent) {
        return { ok: false, status: 403, error: 'client certificate and token name different agents' };
      }
      return { ok: true, principal: { agent: tokenPrincipal.agent, roles: tokenPrincipal.roles, hosts: tokenPrincipal.hosts, via: 'token' } };
    }
    if (certAgent !== null) {
      const p = this.byAgent.get(certAgent);
      if (!p) return { ok: false, status: 403, error: 'client certificate is valid but its CN is not a configured agent' };
      return { ok: true, principal: { agent: p.agent, roles: p.roles, hosts: p.hosts, via: 'certificate' } };
    }
    return { ok: false, status: 401, error: 'authentication required: bearer token or client certificate' };
  }
}

function candidateDigest(p: PrincipalConfig): string {
  return p.token_sha256?.toLowerCase() ?? sha256Hex(p.token ?? '');
}

/** CN of a client certificate that passed verification against the client CA, else null. */
export function verifiedClientCn(req: IncomingMessage): string | null {
  const sock = req.socket as TLSSocket;
  if (typeof sock.getPeerCertificate !== 'function' || !sock.authorized) return null;
  const cert = sock.getPeerCertificate();
  const cn = cert?.subject?.CN;
  if (typeof cn === 'string' && cn !== '') return cn;
  if (Array.isArray(cn) && typeof cn[0] === 'string') return cn[0];
  return null;
}

/** Token bucket per key: `burst` requests at once, refilled at `perSecond`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns 0 when allowed, else the ms to wait before the next request would be allowed. */
  take(key: string): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      // Bound memory against many distinct keys (unauthenticated addresses): forget the oldest.
      if (this.buckets.size >= 10_000) {
        const first = this.buckets.keys().next().value;
        if (first !== undefined) this.buckets.delete(first);
      }
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }
}
