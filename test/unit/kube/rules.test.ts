import { describe, expect, it } from 'vitest';
import { defaultKubeRuleFiles, KubeRuleError, loadKubeRules, parseKubeRules } from '../../../src/detect/kube';

const minimal = (body: string) => `kind: KubeRulePack
version: 1
rules:
${body}`;

const goodRule = `  - id: k8s-x
    kind: node_proxy
    title: X
    covers: [K5]
    mitre: [T1552.007]
    severity: high
    confidence: medium
    kubelet_exec_severity: critical
`;

function errorOf(fn: () => unknown): KubeRuleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KubeRuleError) return e;
    throw e;
  }
  throw new Error('expected a KubeRuleError');
}

describe('kube rule pack', () => {
  it('the shipped pack loads and covers K1 to K8', () => {
    const files = defaultKubeRuleFiles();
    expect(files.length).toBeGreaterThan(0);
    const rules = loadKubeRules(files);
    const covered = new Set(rules.flatMap((r) => r.covers));
    expect([...covered].sort()).toEqual(['K1', 'K2', 'K3', 'K4', 'K5', 'K6', 'K7', 'K8']);
    expect(rules.every((r) => r.mitre.includes('T1552.007'))).toBe(true);
  });

  it('applies defaults to a minimal rule', () => {
    const [r] = parseKubeRules(minimal(goodRule));
    expect(r).toMatchObject({ id: 'k8s-x', enabled: true, exclude: { system_principals: false, users: [] } });
  });

  it('names the file, line and key of a bad value', () => {
    const e = errorOf(() => parseKubeRules(minimal(goodRule.replace('severity: high', 'severity: severe')), 'pack.yaml'));
    expect(e.file).toBe('pack.yaml');
    expect(e.line).toBe(9);
    expect(e.message).toMatch(/^pack\.yaml:9: rules\.0\.severity: /);
  });

  it('rejects unknown keys (typos) with their line', () => {
    const e = errorOf(() => parseKubeRules(minimal(goodRule + '    exclud: {}\n')));
    expect(e.line).toBe(4);
    expect(e.message).toMatch(/exclud/);
  });

  it('rejects an invalid regular expression', () => {
    const text = minimal(goodRule + "    exclude:\n      user_agents: ['(unclosed']\n");
    const e = errorOf(() => parseKubeRules(text));
    expect(e.line).toBe(13);
    expect(e.message).toMatch(/invalid regex/i);
  });

  it('reports YAML syntax errors with a line', () => {
    const e = errorOf(() => parseKubeRules('kind: KubeRulePack\nversion: 1\nrules: [\n  {id: "a"\n'));
    expect(e.line).not.toBeNull();
  });

  it('rejects duplicate ids and unknown kinds', () => {
    expect(errorOf(() => parseKubeRules(minimal(goodRule + goodRule))).message).toMatch(/duplicate rule id k8s-x/);
    expect(errorOf(() => parseKubeRules(minimal(goodRule.replace('node_proxy', 'nope')))).message).toMatch(/rules\.0\.kind/);
  });

  it('reports an unreadable file', () => {
    expect(errorOf(() => loadKubeRules(['/nonexistent/kube-x.yaml'])).message).toMatch(/cannot read rule file/);
  });
});
