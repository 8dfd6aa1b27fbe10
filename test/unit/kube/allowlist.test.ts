import { describe, expect, it } from 'vitest';
import type { Finding, KubeContext } from '../../../src/model/finding';
import { KubeAllowlist } from '../../../src/detect/kube/allowlist';
import { makeFinding } from '../store/fixtures';

function kubeFinding(k: Partial<KubeContext>): Finding {
  const kube: KubeContext = {
    user: 'mallory',
    groups: [],
    impersonated_user: null,
    verb: 'list',
    resource: 'secrets',
    subresource: null,
    namespace: 'default',
    name: null,
    source_ips: [],
    user_agent: null,
    response_code: 200,
    audit_id: 'a1',
    ...k,
  };
  return { ...makeFinding(), source: 'kube-audit', kube };
}

describe('KubeAllowlist (detections.allow.k8s_users and namespaces for API-server findings)', () => {
  const allow = new KubeAllowlist({ users: ['system:serviceaccount:monitoring:prometheus'], namespaces: ['kube-system'] });

  it('allows a request by an allowlisted user, and nothing by others', () => {
    expect(allow.allows(kubeFinding({ user: 'system:serviceaccount:monitoring:prometheus' }))).toBe(true);
    expect(allow.allows(kubeFinding({ user: 'mallory' }))).toBe(false);
  });

  it('never allows by user under impersonation, whoever is impersonated', () => {
    expect(allow.allows(kubeFinding({ user: 'system:serviceaccount:monitoring:prometheus', impersonated_user: 'mallory' }))).toBe(false);
    expect(allow.allows(kubeFinding({ user: 'mallory', impersonated_user: 'system:serviceaccount:monitoring:prometheus' }))).toBe(false);
  });

  it('allows a request in an allowlisted namespace', () => {
    expect(allow.allows(kubeFinding({ namespace: 'kube-system' }))).toBe(true);
    expect(allow.allows(kubeFinding({ namespace: null }))).toBe(false);
  });

  it('leaves host findings (no kube context) alone', () => {
    expect(allow.allows(makeFinding())).toBe(false);
  });
});
