/**
 * Who made a request, and whether a rule's exclusions cover it. Exclusion data comes from the rule
 * pack; the one piece of logic with a fixed meaning is the catalogue's "system principal" test.
 */
import type { KubeAuditEvent, KubeUserInfo } from '../../kube/event';
import type { KubeExclude } from './rules';
import { compileGlobRegex, compileRegex, type TextRegex } from '../linear-regex';

/** Glob with `*` (and `?`), anchored, matching across '/'; compiled once per rule. */
export function globToRegExp(glob: string): TextRegex {
  return compileGlobRegex(glob, { full: false });
}

const ANONYMOUS = new Set(['system:anonymous']);

/**
 * PAN is_system_principal: the cluster's own identities. Anonymous is system:* by name but is exactly
 * what we must not excuse.
 */
export function isSystemPrincipal(username: string | null): boolean {
  if (username === null) return false;
  if (ANONYMOUS.has(username)) return false;
  if (username.startsWith('system:serviceaccount:kube-system:')) return true;
  if (username.startsWith('system:') && !username.startsWith('system:serviceaccount:')) return true;
  return (
    username.startsWith('eks:') ||
    username.startsWith('masterclient') ||
    username === 'aksService' ||
    username.startsWith('gke-') ||
    username.startsWith('azure-') ||
    username.endsWith('.iam.gserviceaccount.com')
  );
}

/** "system:serviceaccount:NS:NAME" -> NS */
export function serviceAccountNamespace(username: string | null): string | null {
  if (username === null || !username.startsWith('system:serviceaccount:')) return null;
  const rest = username.slice('system:serviceaccount:'.length);
  const colon = rest.indexOf(':');
  return colon > 0 ? rest.slice(0, colon) : null;
}

export function isAnonymous(u: KubeUserInfo): boolean {
  return u.username === 'system:anonymous' || u.groups.includes('system:unauthenticated');
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === '::ffff:127.0.0.1';
}

export class CompiledExclude {
  private readonly users: TextRegex[];
  private readonly groups: TextRegex[];
  private readonly saNamespaces: Set<string>;
  private readonly userAgents: TextRegex[];
  private readonly names: TextRegex[];
  private readonly uris: TextRegex[];
  readonly images: TextRegex[];

  constructor(private readonly spec: KubeExclude) {
    this.users = spec.users.map(globToRegExp);
    this.groups = spec.groups.map(globToRegExp);
    this.saNamespaces = new Set(spec.sa_namespaces);
    this.userAgents = spec.user_agents.map((r) => compileRegex(r));
    this.names = spec.names.map(globToRegExp);
    this.uris = spec.request_uris.map(globToRegExp);
    this.images = spec.images.map((r) => compileRegex(r));
  }

  /** The reason this event is excluded, or null. */
  reason(ev: KubeAuditEvent): string | null {
    // Impersonation must not be a way around the rule: excuse only when both identities are excused.
    const real = this.principalReason(ev.user, ev);
    if (real === null) return null;
    if (ev.impersonatedUser !== null) {
      const imp = this.principalReason(ev.impersonatedUser, ev);
      if (imp === null) return null;
    }
    return real;
  }

  /** Exclusions that do not depend on the principal (request URI, object name, user agent). */
  requestReason(ev: KubeAuditEvent): string | null {
    const ua = ev.userAgent ?? '';
    if (ua !== '' && this.userAgents.some((r) => r.test(ua))) return 'user_agent';
    const name = ev.objectRef?.name ?? null;
    if (name !== null && this.names.some((r) => r.test(name))) return 'name';
    if (this.uris.some((r) => r.test(ev.requestURI))) return 'request_uri';
    return null;
  }

  private principalReason(u: KubeUserInfo, ev: KubeAuditEvent): string | null {
    const name = u.username;
    if (this.spec.system_principals && isSystemPrincipal(name)) return 'system_principal';
    if (name !== null && this.users.some((r) => r.test(name))) return 'user';
    if (this.groups.length && u.groups.some((g) => this.groups.some((r) => r.test(g)))) return 'group';
    const ns = serviceAccountNamespace(name);
    if (ns !== null && this.saNamespaces.has(ns)) return 'sa_namespace';
    if (
      this.spec.loopback_controllers &&
      ev.sourceIPs.length > 0 &&
      ev.sourceIPs.every(isLoopback) &&
      name !== null &&
      name.startsWith('system:') &&
      !ANONYMOUS.has(name)
    ) {
      return 'loopback_controller';
    }
    return null;
  }
}
