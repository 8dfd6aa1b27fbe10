import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleSet, loadRunnableRuleSet } from '../../../../src/detect/rule-set';
import type { AuditEvent } from '../../../../src/audit/event';
import { createDetector } from '../../../../src/detect/engine';
import { createKubeDetector } from '../../../../src/detect/kube';
import type { SigmaRule } from '../../../../src/detect/sigma/compile';
import type { Finding } from '../../../../src/model/finding';
import { compileTriageSpec } from '../../../../src/detect/triage-spec';
import { parseKubeAuditLine } from '../../../../src/kube/event';
import { makeEvent } from '../../enrich/helpers';
import { matchStats } from '../../../../src/detect/linear-regex';

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

  it('wildcards: * any run, ? one character, backslash escapes them', () => {
    const m = load(RULE("    sel:\n        CommandLine|contains: 'cat */token'\n        Image: '/usr/bin/?at'\n    condition: sel"));
    expect(m({ Image: '/usr/bin/cat', CommandLine: 'cat /run/secrets/x/token' })).toBe(true);
    expect(m({ Image: '/usr/bin/bat', CommandLine: 'cat /run/token' })).toBe(true);
    expect(m({ Image: '/usr/bin/scat', CommandLine: 'cat /run/token' })).toBe(false);
    const lit = load(RULE("    sel:\n        CommandLine: 'echo \\*'\n    condition: sel"));
    expect(lit({ CommandLine: 'echo *' })).toBe(true);
    expect(lit({ CommandLine: 'echo x' })).toBe(false);
  });

  it('text tests are rule regexes: a long hostile command line is cut and counted, not scanned whole', () => {
    const m = load(RULE('    sel:\n        CommandLine|endswith: /token\n    condition: sel'));
    const before = matchStats.textsCut;
    expect(m({ CommandLine: 'cat ' + 'a'.repeat(100_000) + ' /run/token' })).toBe(true);
    expect(matchStats.textsCut).toBe(before + 1);
  });

  it('a plain value a numeric field can never hold is refused, not loaded to never fire', () => {
    const kube = '    product: kubernetes\n    service: audit';
    expect(refusal(RULE("    sel:\n        responseStatus.code: 'ALLOW'\n    condition: sel", kube))).toMatch(/r\.yml:12:\d+: .*responseStatus\.code is a number in every event: "ALLOW" can never match/);
  });
});

describe('Sigma rules at run time (rules_dir)', () => {
  const exec = (pid: number, exe: string, argv: string[]): AuditEvent =>
    makeEvent({
      id: `1800000000.000:${pid}`,
      serial: pid,
      syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
      process: { pid, ppid: 1, exe, argv, comm: path.basename(exe), cwd: '/' },
      records: [{ type: 'SYSCALL', text: `audit(1800000000.000:${pid}): arch=c000003e syscall=59 success=yes exit=0 pid=${pid} exe="${exe}"` }],
    });

  it('enabled: false in a rules file switches a Sigma rule off (listed, not run), whichever file is read first; override: and unknown ids are refused with file:line', () => {
    const dir = sigmaDir(RULE('    sel:\n        Image|endswith: /whoami\n    condition: sel'));
    const id = 'sigma-0b9c1c39-1111-4c1e-9a1e-000000000001';
    fs.writeFileSync(path.join(dir, '00-local.yaml'), `rules:\n  - id: ${id}\n    enabled: false\n`, { mode: 0o644 });
    const set = loadRuleSet([dir]);
    expect(set.sigma.find((r) => r.id === id)).toMatchObject({ enabled: false, overridden_by: [path.join(dir, '00-local.yaml')] });
    const d = createDetector({ host: 'n', users: null, rules: [], sigma: set.sigma });
    expect(d.sigmaRules()).toEqual([]);
    expect(d.onAuditEvent(exec(990, '/usr/bin/whoami', ['whoami']))).toEqual([]);
    fs.writeFileSync(path.join(dir, '00-local.yaml'), `rules:\n  - id: ${id}\n    enabled: true\n`, { mode: 0o644 });
    expect(createDetector({ host: 'n', users: null, rules: [], sigma: loadRuleSet([dir]).sigma }).onAuditEvent(exec(991, '/usr/bin/whoami', ['whoami'])).map((f) => f.rule)).toEqual([id]);
    fs.writeFileSync(path.join(dir, '00-local.yaml'), `rules:\n  - id: ${id}\n    severity: low\n    override: {severity: replace}\n`, { mode: 0o644 });
    expect(() => loadRuleSet([dir])).toThrow(/00-local\.yaml:4:.*Sigma rule: it can be switched with enabled/s);
    fs.writeFileSync(path.join(dir, '00-local.yaml'), `rules:\n  - id: sigma-00000000-0000-0000-0000-000000000000\n    enabled: false\n`, { mode: 0o644 });
    expect(() => loadRuleSet([dir])).toThrow(/00-local\.yaml:2:.*unknown Sigma rule "sigma-00000000-0000-0000-0000-000000000000"/s);
  });

  it('repeats of a behaviour only a Sigma rule flags are one incident: 50 execs of whoami give one finding, counted 50 times', () => {
    const dir = sigmaDir(RULE('    sel:\n        Image|endswith: /whoami\n    condition: sel'));
    const d = createDetector({ host: 'n', users: null, rules: [], sigma: loadRuleSet([dir]).sigma });
    const out: Finding[] = [...d.onAuditEvent(exec(899, '/usr/bin/bash', ['bash']))];
    // One shell (the actor: the process-tree root on a host) runs whoami 50 times.
    for (let i = 0; i < 50; i++) {
      const ev = exec(900 + i, '/usr/bin/whoami', ['whoami']);
      out.push(...d.onAuditEvent({ ...ev, process: { ...ev.process!, ppid: 899 } }));
    }
    out.push(...d.tick(Date.parse('2027-01-15T08:00:00Z')));
    const ids = new Set(out.map((f) => f.id));
    expect(ids.size).toBe(1);
    const last = out.reduce((a, b) => ((b.revision ?? 1) > (a.revision ?? 1) ? b : a));
    expect(last).toMatchObject({ rule: 'sigma-0b9c1c39-1111-4c1e-9a1e-000000000001', count: 50 });
  });

  it('the host engine loads process_creation and auditd Sigma rules from rules_dir and fires them', () => {
    const dir = sigmaDir(RULE('    sel:\n        Image|endswith: /kubectl\n        CommandLine|contains|all: [get, secret]\n    condition: sel'));
    fs.writeFileSync(
      path.join(dir, 's.yml'),
      RULE('    sel:\n        type: SYSCALL\n        SYSCALL: execve\n        exe|endswith: /nsenter\n    condition: sel', '    product: linux\n    service: auditd').replace('000000000001', '000000000002'),
      { mode: 0o644 },
    );
    const d = createDetector({ host: 'n', users: null, rulesDir: dir });
    expect(d.sigmaRules().map((r) => r.target).sort()).toEqual(['auditd', 'process_creation']);
    // The Sigma rule and the pack's h5 say the same thing about one behaviour: one incident with both.
    const found = d.onAuditEvent(exec(700, '/usr/bin/kubectl', ['kubectl', 'get', 'secrets', '-A']));
    expect(found).toHaveLength(1);
    expect(found[0]!.rules).toEqual(expect.arrayContaining(['sigma-0b9c1c39-1111-4c1e-9a1e-000000000001', 'h5-kubectl-secret-access']));
    expect(found[0]).toMatchObject({ severity: 'high', mitre: expect.arrayContaining(['T1552.007']), indicators: expect.arrayContaining(['sigma:sel']) });
    const alone = createDetector({ host: 'n', users: null, rules: [], sigma: d.sigmaRules() as SigmaRule[] }).onAuditEvent(exec(700, '/usr/bin/kubectl', ['kubectl', 'get', 'secrets', '-A']));
    expect(alone[0]).toMatchObject({ rule: 'sigma-0b9c1c39-1111-4c1e-9a1e-000000000001', severity: 'high', mitre: ['T1552.007'], indicators: ['sigma:sel'], title: 'Test rule' });
    const rulesOf = (evs: Finding[]): string[] => evs.flatMap((x) => x.rules ?? [x.rule]);
    expect(rulesOf(d.onAuditEvent(exec(701, '/usr/bin/nsenter', ['nsenter', '-t', '1'])))).toContain('sigma-0b9c1c39-1111-4c1e-9a1e-000000000002');
    expect(rulesOf(d.onAuditEvent(exec(702, '/usr/bin/kubectl', ['kubectl', 'get', 'pods'])))).not.toContain('sigma-0b9c1c39-1111-4c1e-9a1e-000000000001');
    // Every exec must reach the engine: the native triage lets them all through, and the kernel audits them.
    expect(compileTriageSpec(d.rules(), [], d.sigmaRules()).execAll).toBe(true);
    expect(createDetector({ host: 'n', users: null, rules: [], sigma: d.sigmaRules() as SigmaRule[] }).requiredAuditRules()).toContain('-a always,exit -F arch=b64 -S execve,execveat -k credwatch:exec');
    // reload() picks up a changed directory; a broken file keeps the old rules.
    fs.rmSync(path.join(dir, 's.yml'));
    d.reload();
    expect(d.sigmaRules().map((r) => r.target)).toEqual(['process_creation']);
    fs.writeFileSync(path.join(dir, 'z.yml'), 'title: x\nid: z1\nlogsource: {product: windows}\ndetection: {sel: {a: b}, condition: sel}\n', { mode: 0o644 });
    expect(() => d.reload()).toThrow(/z\.yml:3:\d+: logsource: unsupported logsource/);
    expect(d.sigmaRules().length).toBe(1);
    fs.rmSync(dir, { recursive: true });
  });

  it('the Kubernetes detector runs kubernetes/audit Sigma rules', () => {
    const dir = sigmaDir(RULE("    sel:\n        verb: create\n        objectRef.resource: pods\n        objectRef.subresource: exec\n    filter:\n        user.username|startswith: 'system:'\n    condition: sel and not filter", '    product: kubernetes\n    service: audit'));
    const set = loadRunnableRuleSet([dir]);
    const k = createKubeDetector({ host: 'n', rules: set.kube, sigma: set.sigma });
    const line = (user: string, id: string): string =>
      JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: id, stage: 'ResponseComplete', requestURI: '/api/v1/namespaces/a/pods/p/exec', verb: 'create', user: { username: user }, sourceIPs: ['10.1.1.1'], objectRef: { resource: 'pods', subresource: 'exec', namespace: 'a', name: 'p' }, responseStatus: { code: 101 }, requestReceivedTimestamp: '2026-01-10T10:00:00Z' });
    const run = (l: string) => {
      const p = parseKubeAuditLine(l);
      if (!p.ok) throw new Error(p.error);
      return k.onKubeEvent(p.event).filter((f) => f.rule.startsWith('sigma-'));
    };
    const [f] = run(line('mallory', 'a1'));
    expect(f).toMatchObject({ rule: 'sigma-0b9c1c39-1111-4c1e-9a1e-000000000001', source: 'kube-audit', severity: 'high', kube: { user: 'mallory', verb: 'create', subresource: 'exec' } });
    expect(run(line('system:serviceaccount:kube-system:x', 'a2'))).toEqual([]);
    k.setRules(set.kube, []);
    expect(run(line('mallory', 'a3'))).toEqual([]);
    fs.rmSync(dir, { recursive: true });
  });
});
