import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultRulesDir } from '../../../src/detect/rule-loader';
import { loadRuleSet, ruleFilesIn } from '../../../src/detect/rule-set';
import { checkRules, listRules } from '../../../src/cli/commands/rules';
import { UsageError } from '../../../src/cli/errors';

const HOST_RULE = `rules:
  - id: user-cat-token
    title: cat of a token
    description: D
    severity: high
    confidence: medium
    mitre: [T1552.007]
    covers: [H1]
    indicators:
      - id: a
        anchor: true
        match: { event: exec, argv: 'cat /secret' }
`;

const KUBE_RULE = `kind: KubeRulePack
version: 1
rules:
  - id: user-kube-exec
    kind: pod_exec
    title: any exec
    covers: [K4]
    mitre: [T1552.007]
    severity: medium
    confidence: low
    verbs: [create]
    subresources: [exec]
    credential_path_severity: high
    credential_paths: ['/var/run/secrets']
`;

const dirs: string[] = [];
function userDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-ruleset-'));
  fs.chmodSync(dir, 0o755);
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o644 });
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function loadError(dir: string): string {
  try {
    loadRuleSet([dir]);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the rule set to be refused');
}

const pack = loadRuleSet();

describe('rule set: pack first, then rules_dir', () => {
  it('the pack alone: every host and kube rule once, no Sigma', () => {
    expect(pack.host.length).toBeGreaterThan(10);
    expect(pack.kube.map((r) => r.id)).toContain('k8s-pod-exec');
    expect(new Set([...pack.host, ...pack.kube].map((r) => r.id)).size).toBe(pack.host.length + pack.kube.length);
  });

  it('rules_dir adds to the pack instead of replacing it, host and kube alike', () => {
    const set = loadRuleSet([userDir({ 'a.yaml': HOST_RULE, 'b.yaml': KUBE_RULE })]);
    expect(set.host.length).toBe(pack.host.length + 1);
    expect(set.kube.length).toBe(pack.kube.length + 1);
    expect(set.host.find((r) => r.id === 'user-cat-token')?.file).toMatch(/a\.yaml$/);
    expect(set.host.map((r) => r.id)).toContain('h1-sa-token-read');
  });

  it('kind comes from content: kube rules in k8s-rules.yaml, host rules in kube-host.yaml', () => {
    const set = loadRuleSet([userDir({ 'k8s-rules.yaml': KUBE_RULE, 'kube-host.yaml': HOST_RULE })]);
    expect(set.kube.map((r) => r.id)).toContain('user-kube-exec');
    expect(set.host.map((r) => r.id)).toContain('user-cat-token');
  });

  it('a file of no known kind is refused with file:line:col', () => {
    expect(loadError(userDir({ 'x.yaml': 'not: a rule file\n' }))).toMatch(/x\.yaml:1:1: cannot tell the kind of this rule file/);
  });

  it('an existing id is refused unless the entry says override:, at file:line:col', () => {
    const dup = `rules:\n  - id: h1-sa-token-read\n    title: mine\n    description: D\n    severity: low\n    confidence: low\n    mitre: [T1552]\n    covers: [H1]\n    indicators: [{ id: a, anchor: true, match: { event: exec } }]\n`;
    expect(loadError(userDir({ 'dup.yaml': dup }))).toMatch(/dup\.yaml:2:9: rules\[0\]\.id: rule id "h1-sa-token-read" is already defined in .*host-pod-tokens\.yaml; to change it, say override:/);
    expect(loadError(userDir({ 'a.yaml': HOST_RULE, 'b.yaml': HOST_RULE }))).toMatch(/b\.yaml:2:\d+: .*"user-cat-token" is already defined in .*a\.yaml/);
  });

  it('override: replace sets fields, append adds to lists and maps of lists; the source file is kept', () => {
    const over = `rules:
  - id: h5-kubectl-secret-access
    override: { severity: replace, exclusions: append }
    severity: low
    exclusions: [{ program: [my-backup-tool], reason: nightly backup }]
`;
    const kubeOver = `kind: KubeRulePack
version: 1
rules:
  - id: k8s-secret-access
    override: { exclude: append }
    exclude: { users: ['ci-bot'] }
`;
    const set = loadRuleSet([userDir({ 'over.yaml': over, 'over-k.yaml': kubeOver })]);
    const before = pack.host.find((r) => r.id === 'h5-kubectl-secret-access')!;
    const after = set.host.find((r) => r.id === 'h5-kubectl-secret-access')!;
    expect(after.severity).toBe('low');
    expect(after.exclusions.length).toBe(before.exclusions.length + 1);
    expect(after.exclusions.at(-1)?.program).toEqual(['my-backup-tool']);
    expect(after.indicators).toEqual(before.indicators);
    expect(after.file).toBe(before.file);
    expect(after.overridden_by?.[0]).toMatch(/over\.yaml$/);
    const k = set.kube.find((r) => r.id === 'k8s-secret-access')!;
    const k0 = pack.kube.find((r) => r.id === 'k8s-secret-access')!;
    expect(k.exclude.users).toEqual([...k0.exclude.users, 'ci-bot']);
    expect(k.exclude.sa_namespaces).toEqual(k0.exclude.sa_namespaces);
  });

  it('an override is validated again and must name what it changes', () => {
    const bad = `rules:\n  - id: h5-kubectl-secret-access\n    override: { severity: replace }\n    severity: severe\n`;
    expect(loadError(userDir({ 'o.yaml': bad }))).toMatch(/o\.yaml:4:\d+: rules\[0\]\.severity: /);
    const unnamed = `rules:\n  - id: h5-kubectl-secret-access\n    override: { severity: replace }\n    severity: low\n    title: x\n`;
    expect(loadError(userDir({ 'o.yaml': unnamed }))).toMatch(/o\.yaml:5:\d+: .*title is given but not named in override/);
    const scalar = `rules:\n  - id: h5-kubectl-secret-access\n    override: { severity: append }\n    severity: low\n`;
    expect(loadError(userDir({ 'o.yaml': scalar }))).toMatch(/only lists and maps can be appended to/);
    const unknown = `rules:\n  - id: no-such-rule\n    override: { severity: replace }\n    severity: low\n`;
    expect(loadError(userDir({ 'o.yaml': unknown }))).toMatch(/o\.yaml:2:\d+: .*override of unknown rule "no-such-rule"/);
    const wrongKind = `kind: KubeRulePack\nversion: 1\nrules:\n  - id: h1-sa-token-read\n    enabled: false\n`;
    expect(loadError(userDir({ 'o.yaml': wrongKind }))).toMatch(/"h1-sa-token-read" is a host rule/);
  });

  it('enabled: false by id disables a host or a kube rule of the pack', () => {
    const off = `rules:\n  - id: h1-sa-token-read\n    enabled: false\n`;
    const offK = `kind: KubeRulePack\nversion: 1\nrules:\n  - id: k8s-pod-exec\n    enabled: false\n`;
    const set = loadRuleSet([userDir({ '10-off.yaml': off, '20-off.yaml': offK })]);
    expect(set.host.find((r) => r.id === 'h1-sa-token-read')?.enabled).toBe(false);
    expect(set.kube.find((r) => r.id === 'k8s-pod-exec')?.enabled).toBe(false);
  });

  it('files load in name order: a later file can override a rule an earlier one added', () => {
    const later = `rules:\n  - id: user-cat-token\n    override: { severity: replace }\n    severity: critical\n`;
    const set = loadRuleSet([userDir({ '20-later.yaml': later, '10-first.yaml': HOST_RULE })]);
    expect(set.host.find((r) => r.id === 'user-cat-token')?.severity).toBe('critical');
    // The reverse order is an override of a rule not yet loaded.
    expect(loadError(userDir({ '10-later.yaml': later, '20-first.yaml': HOST_RULE }))).toMatch(/override of unknown rule "user-cat-token"/);
  });

  it('a user sequence may follow a pack rule; an unknown one is refused', () => {
    const seq = `rules:\n  - id: user-seq\n    title: T\n    description: D\n    severity: high\n    confidence: low\n    mitre: [T1552.007]\n    covers: [H1]\n    sequence:\n      after: [h1-sa-token-read]\n      then: [{ event: connect }]\n`;
    expect(loadRuleSet([userDir({ 's.yaml': seq })]).host.map((r) => r.id)).toContain('user-seq');
    expect(loadError(userDir({ 's.yaml': seq.replace('[h1-sa-token-read]', '[nope]') }))).toMatch(/unknown rule "nope"/);
  });
});

describe('rule files are trusted like the configuration (issue 15 item 6)', () => {
  it('refuses a group- or world-writable rule file', () => {
    const dir = userDir({ 'a.yaml': HOST_RULE });
    fs.chmodSync(path.join(dir, 'a.yaml'), 0o666);
    expect(loadError(dir)).toMatch(/a\.yaml: refusing a group- or world-writable rule file \(mode 0666\)/);
    fs.chmodSync(path.join(dir, 'a.yaml'), 0o664);
    expect(loadError(dir)).toMatch(/mode 0664/);
  });

  it('refuses a writable rules directory', () => {
    const dir = userDir({ 'a.yaml': HOST_RULE });
    fs.chmodSync(dir, 0o777);
    expect(loadError(dir)).toMatch(/refusing a group- or world-writable rules directory \(mode 0777\)/);
  });

  it.skipIf(process.geteuid?.() !== 0)('refuses a rule file owned by another user (needs root to chown)', () => {
    const dir = userDir({ 'a.yaml': HOST_RULE });
    fs.chownSync(path.join(dir, 'a.yaml'), 1000, 1000);
    expect(loadError(dir)).toMatch(/a\.yaml: refusing a rule file owned by uid 1000/);
  });

  it('refuses a symlink out of the directory, follows one inside it', () => {
    const outside = userDir({ 'evil.yaml': `rules:\n  - id: h1-sa-token-read\n    enabled: false\n` });
    const dir = userDir({ 'a.yaml': HOST_RULE });
    fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'sub', 'k.yml'), KUBE_RULE, { mode: 0o644 });
    fs.symlinkSync(path.join(dir, 'sub', 'k.yml'), path.join(dir, 'b.yaml'));
    expect(loadRuleSet([dir]).kube.map((r) => r.id)).toContain('user-kube-exec');
    fs.symlinkSync(path.join(outside, 'evil.yaml'), path.join(dir, 'c.yaml'));
    expect(loadError(dir)).toMatch(/c\.yaml: refusing a symlink out of the rules directory/);
  });

  it('a missing rules directory is an error, not an empty set', () => {
    expect(loadError('/nonexistent/credwatch-rules')).toMatch(/rules directory does not exist/);
  });
});

describe('rules check / rules list', () => {
  it('the shipped pack checks clean as one set (each file is no longer checked alone)', () => {
    const lines = checkRules(ruleFilesIn(defaultRulesDir()));
    expect(lines.at(-1)).toMatch(/^ok: \d+ host, \d+ Kubernetes audit and 0 Sigma rules/);
    expect(lines.some((l) => /host-endpoints\.yaml: \d+ host rules, valid/.test(l))).toBe(true);
  });

  it('checks a directory (no EISDIR) and names a problem with file:line:col', () => {
    const dir = userDir({ 'a.yaml': HOST_RULE, 'b.yaml': KUBE_RULE });
    expect(checkRules([dir]).slice(0, 2)).toEqual([`${dir}/a.yaml: 1 host rules, valid`, `${dir}/b.yaml: 1 Kubernetes audit rules, valid`]);
    fs.writeFileSync(path.join(dir, 'a.yaml'), HOST_RULE.replace('severity: high', 'severity: severe'));
    expect(() => checkRules([dir])).toThrow(UsageError);
    expect(() => checkRules([dir])).toThrow(/a\.yaml:5:15: rules\[0\]\.severity/);
  });

  it('a missing path is a usage error', () => {
    expect(() => checkRules(['/nonexistent/x.yaml'])).toThrow(/no such file or directory/);
  });

  it('rules list is sorted by id and names each rule file', () => {
    const list = listRules(userDir({ 'zz.yaml': HOST_RULE }));
    const ids = list.map((r) => r.id);
    expect(ids).toEqual([...ids].sort());
    expect(list.find((r) => r.id === 'user-cat-token')?.file).toMatch(/zz\.yaml$/);
    expect(list.find((r) => r.id === 'k8s-pod-exec')?.file).toMatch(/kube-t1552-007\.yaml$/);
  });
});
