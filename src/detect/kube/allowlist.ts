/**
 * The operator allowlist for API-server audit findings (config detections.allow.k8s_users and
 * detections.allow.namespaces): a finding whose request was made by an allowlisted user, or touched an
 * allowlisted namespace, is not raised. A request made under impersonation is never allowlisted by
 * user: the allowlist names who may act, and impersonating someone is acting as someone else.
 */
import type { Finding } from '../../model/finding';

export interface KubeAllowConfig {
  users: readonly string[];
  namespaces: readonly string[];
}

export class KubeAllowlist {
  private readonly users: ReadonlySet<string>;
  private readonly namespaces: ReadonlySet<string>;

  constructor(cfg: KubeAllowConfig) {
    this.users = new Set(cfg.users);
    this.namespaces = new Set(cfg.namespaces);
  }

  allows(f: Finding): boolean {
    const k = f.kube;
    if (k === null) return false;
    if (k.namespace !== null && this.namespaces.has(k.namespace)) return true;
    return k.impersonated_user === null && k.user !== null && this.users.has(k.user);
  }
}
