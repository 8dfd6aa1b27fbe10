import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuleFileError, defaultRulesDir, loadRuleDir, parseRuleFile } from '../../../src/detect/rule-loader';

const GOOD = `rules:
  - id: t-rule
    title: T
    description: D
    severity: high
    confidence: medium
    mitre: [T1552.007]
    covers: [H1]
    indicators:
      - id: a
        weight: 2
        anchor: true
        match: { event: exec, argv: 'cat' }
    threshold: 2
`;

function errorOf(text: string): RuleFileError {
  try {
    parseRuleFile(text, 'x.yaml');
  } catch (err) {
    if (err instanceof RuleFileError) return err;
    throw err;
  }
  throw new Error('expected a RuleFileError');
}

describe('rule files', () => {
  it('the shipped pack loads and covers every host row H1-H15', () => {
    const rules = loadRuleDir(defaultRulesDir());
    const covered = new Set(rules.flatMap((r) => r.covers));
    for (let i = 1; i <= 15; i++) expect(covered, `H${i}`).toContain(`H${i}`);
    for (const r of rules) {
      for (const line of r.audit_rules) expect(line).toMatch(/(-k |-F key=)credwatch:/);
      expect(r.mitre).toContain('T1552.007');
    }
    // H12-H14 are adjacent or weak: lower severity than the core rows.
    for (const r of rules.filter((x) => x.covers.some((c) => ['H12', 'H13', 'H14'].includes(c)))) {
      expect(['low', 'medium']).toContain(r.severity);
    }
  });

  it('parses a good file', () => {
    expect(parseRuleFile(GOOD, 'x.yaml').map((r) => r.id)).toEqual(['t-rule']);
  });

  it('names file, line and key for a bad value', () => {
    const err = errorOf(GOOD.replace('severity: high', 'severity: severe'));
    expect(err.message).toMatch(/^x\.yaml:5:15: rules\[0\]\.severity: /);
  });

  it('names the line of an invalid regex', () => {
    const err = errorOf(GOOD.replace("argv: 'cat'", "argv: 'ca(t'"));
    expect(err.message).toMatch(/^x\.yaml:13:37: rules\[0\]\.indicators\[0\]\.match\.argv: invalid regex/);
  });

  it('rejects an unknown key, an unreachable threshold, a missing anchor, a bad audit key', () => {
    expect(errorOf(GOOD.replace('    threshold: 2', '    thresold: 2')).message).toMatch(/x\.yaml:\d+:\d+: rules\[0\].*thresold/);
    expect(errorOf(GOOD.replace('threshold: 2', 'threshold: 5')).message).toMatch(/x\.yaml:14:\d+: rules\[0\]\.threshold: threshold 5 can never be reached/);
    expect(errorOf(GOOD.replace('anchor: true', 'anchor: false')).message).toMatch(/anchor: true/);
    expect(errorOf(GOOD + "    audit_rules: ['-a always,exit -S execve -k other']\n").message).toMatch(/x\.yaml:15:\d+: .*audit_rules\[0\]: audit rules must end with -k credwatch/);
  });

  it('reports YAML syntax errors with a line', () => {
    expect(errorOf('rules:\n  - id: [unclosed\n').message).toMatch(/^x\.yaml:\d+:\d+: /);
  });

  it('rejects duplicate ids across files and unknown sequence references', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rules-'));
    fs.writeFileSync(path.join(dir, 'a.yaml'), GOOD);
    fs.writeFileSync(path.join(dir, 'b.yaml'), GOOD);
    fs.writeFileSync(path.join(dir, 'kube-ignored.yaml'), 'not: a host rule file');
    expect(() => loadRuleDir(dir)).toThrow(/rule id "t-rule" also defined in/);
    fs.writeFileSync(
      path.join(dir, 'b.yaml'),
      GOOD.replace('id: t-rule', 'id: t-seq').replace(/ {4}indicators:[\s\S]*$/, "    sequence:\n      after: [nope]\n      then: [{ event: connect }]\n"),
    );
    expect(() => loadRuleDir(dir)).toThrow(/unknown rule "nope"/);
    fs.rmSync(dir, { recursive: true });
  });
});
