import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleSet, loadRunnableRuleSet } from '../../../../src/detect/rule-set';

function sigmaDir(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-sigma-'));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'r.yml'), text, { mode: 0o644 });
  return dir;
}

const RULE = (detection: string, logsource = '    product: linux\n    category: process_creation'): string => `title: Test rule
id: 0b9c1c39-1111-4c1e-9a1e-000000000001
author: credwatch tests
tags:
    - attack.credential-access
    - attack.t1552.007
logsource:
${logsource}
detection:
${detection}
level: high
`;

function load(text: string) {
  const dir = sigmaDir(text);
  try {
    const r = loadRuleSet([dir]).sigma[0]!;
    return (fields: Record<string, string>) => r.matches((f) => (f in fields ? [fields[f]!] : null));
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

function refusal(text: string): string {
  const dir = sigmaDir(text);
  try {
    loadRuleSet([dir]);
  } catch (err) {
    return (err as Error).message;
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
  throw new Error('expected a refusal');
}

describe('Sigma compiler', () => {
  it('level -> severity, tags -> mitre, kind from content', () => {
    const dir = sigmaDir(RULE('    sel:\n        Image|endswith: /kubectl\n    condition: sel'));
    const [r] = loadRuleSet([dir]).sigma;
    expect(r).toMatchObject({ severity: 'high', mitre: ['T1552.007'], target: 'process_creation', id: 'sigma-0b9c1c39-1111-4c1e-9a1e-000000000001' });
    fs.rmSync(dir, { recursive: true });
  });

  it('contains/startswith/endswith are case-insensitive string tests; all needs every value', () => {
    const m = load(RULE('    sel:\n        Image|endswith: /kubectl\n        CommandLine|contains|all: [get, secret]\n    condition: sel'));
    expect(m({ Image: '/usr/bin/KUBECTL', CommandLine: 'kubectl Get SECRETS -A' })).toBe(true);
    expect(m({ Image: '/usr/bin/kubectl', CommandLine: 'kubectl get pods' })).toBe(false);
    expect(m({ Image: '/usr/bin/kubectl.sh', CommandLine: 'get secret' })).toBe(false);
  });

  it('1 of, all of, not and parentheses', () => {
    const m = load(RULE("    sel_a:\n        Image|endswith: /cat\n    sel_b:\n        CommandLine|contains: token\n    filter_x:\n        User: root\n    condition: (1 of sel_*) and not filter_x"));
    expect(m({ Image: '/bin/cat', User: 'bob' })).toBe(true);
    expect(m({ CommandLine: 'x token', User: 'bob' })).toBe(true);
    expect(m({ Image: '/bin/cat', User: 'root' })).toBe(false);
    const all = load(RULE('    sel_a:\n        Image|endswith: /cat\n    sel_b:\n        CommandLine|contains: token\n    condition: all of sel_*'));
    expect(all({ Image: '/bin/cat', CommandLine: 'cat token' })).toBe(true);
    expect(all({ Image: '/bin/cat', CommandLine: 'cat x' })).toBe(false);
  });

  it('windash, base64offset, cidr, re and null', () => {
    expect(load(RULE('    sel:\n        CommandLine|windash|contains: -token\n    condition: sel'))({ CommandLine: 'x /token y' })).toBe(true);
    const b64 = load(RULE('    sel:\n        CommandLine|base64offset|contains: /var/run/secrets\n    condition: sel'));
    for (const pre of ['', 'a', 'ab']) expect(b64({ CommandLine: 'echo ' + Buffer.from(pre + '/var/run/secrets/x').toString('base64') })).toBe(true);
    expect(b64({ CommandLine: 'echo /var/run/secrets' })).toBe(false);
    const kube = '    product: kubernetes\n    service: audit';
    const cidr = load(RULE('    sel:\n        sourceIPs|cidr: 10.0.0.0/8\n        verb: get\n    condition: sel', kube));
    expect(cidr({ sourceIPs: '10.2.3.4', verb: 'get' })).toBe(true);
    expect(cidr({ sourceIPs: '11.2.3.4', verb: 'get' })).toBe(false);
    const re = load(RULE("    sel:\n        CommandLine|re: 'cat\\s+/etc/shadow'\n    condition: sel"));
    expect(re({ CommandLine: 'cat   /etc/shadow' })).toBe(true);
    const nul = load(RULE('    sel:\n        Image|endswith: /cat\n        User: null\n    condition: sel'));
    expect(nul({ Image: '/bin/cat' })).toBe(true);
    expect(nul({ Image: '/bin/cat', User: 'x' })).toBe(false);
  });

  it('what cannot be mapped is refused with file:line:col and why', () => {
    expect(refusal(RULE('    sel:\n        Hashes|contains: abc\n    condition: sel'))).toMatch(/r\.yml:12:\d+: detection\.sel\.Hashes\|contains: field "Hashes" cannot be mapped/);
    expect(refusal(RULE('    sel:\n        Image|expand: x\n    condition: sel'))).toMatch(/r\.yml:12:\d+: .*modifier "expand" is not supported/);
    expect(refusal(RULE('    sel:\n        Image: x\n    condition: sel | count() > 5'))).toMatch(/r\.yml:13:\d+: .*aggregations and pipes are not supported/);
    expect(refusal(RULE('    keywords:\n        - evil\n    condition: keywords'))).toMatch(/keyword searches .* are not supported/);
    expect(refusal(RULE('    sel:\n        Image: x\n    condition: sel', '    product: windows\n    category: process_creation'))).toMatch(/r\.yml:8:\d+: logsource: unsupported logsource/);
    expect(refusal(RULE('    sel:\n        Image: x\n    condition: nosuch'))).toMatch(/"nosuch" names no selection/);
  });

  it('the agent refuses a Sigma file in rules_dir instead of loading it and never running it', () => {
    const dir = sigmaDir(RULE('    sel:\n        Image|endswith: /kubectl\n    condition: sel'));
    expect(() => loadRunnableRuleSet([dir])).toThrow(/r\.yml:1:1: Sigma rules are checked by `credwatch rules check` but the agent does not run them yet/);
    fs.rmSync(dir, { recursive: true });
  });
});
