/**
 * Issue 15 item 1: rule regexes are linear-time (RE2). The security review's inputs that held V8's
 * backtracking engine for seconds to minutes, and a pattern RE2 cannot run, refused with file:line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleDir } from '../../../src/detect/rule-loader';
import { compileRegex } from '../../../src/detect/rule-schema';

const H11 = 'etcdctl\\b.*\\bget\\b.*(/registry/(secrets|serviceaccounts)|--prefix)';
const H5 = '\\b(get|describe|edit)\\b.*\\b(secrets?|serviceaccounts?|sa|configmaps?|cm)\\b';

function ms(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('linear-time rule regexes', () => {
  // Regression guards (timings proper are in bench/regex-engines.js): on V8's backtracking engine the
  // h11 case took 40 s at 24 KB and the h5 one 133 s at 524 KB.
  it('h11 on 24 KB of repeated "etcdctl get " answers in under 1 s, and still matches when it should', () => {
    const re = compileRegex(H11);
    const text = '/bin/true ' + 'etcdctl get '.repeat(2048);
    expect(ms(() => expect(re.test(text)).toBe(false))).toBeLessThan(1000);
    expect(re.test(text + '--prefix')).toBe(true);
  });

  it('h5 on 524 KB of repeated "get " answers in under 1 s', () => {
    const re = compileRegex(H5);
    expect(ms(() => expect(re.test('kubectl ' + 'get '.repeat(131072))).toBe(false))).toBeLessThan(1000);
    expect(re.test('kubectl get secrets')).toBe(true);
  });

  it('^(a+)+$ is accepted (RE2 runs it linear-time) and answers on 1 MB in under 1 s', () => {
    const re = compileRegex('^(a+)+$');
    expect(ms(() => expect(re.test('a'.repeat(1 << 20) + '!')).toBe(false))).toBeLessThan(1000);
  });

  it('keeps JS meaning for \\s (U+00A0, \\v) and \\uXXXX, and (?i)', () => {
    expect(compileRegex('\\bcreate\\s+token\\b').test('create\u00a0token')).toBe(true);
    expect(compileRegex('a\\sb').test('a\vb')).toBe(true);
    expect(compileRegex('\\u0041B').test('AB')).toBe(true);
    expect(compileRegex('(?i)authorization:\\s*bearer\\s').test('AUTHORIZATION: Bearer x')).toBe(true);
  });

  it.each([['backreference', '(a)\\1'], ['lookahead', 'kubectl(?=x)'], ['lookbehind', '(?<=x)get']])('refuses a %s', (_n, src) => {
    expect(() => compileRegex(src)).toThrow(/linear time/);
  });

  it('a rule file with a backreference is refused at load, naming file and line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-rules-'));
    const yaml = [
      'rules:',
      '  - id: t-backref',
      '    title: backreference',
      '    description: refused',
      '    severity: high',
      '    confidence: low',
      '    mitre: [T1552.007]',
      '    indicators:',
      '      - id: i',
      '        anchor: true',
      '        match:',
      '          event: exec',
      "          argv: '(etcdctl) \\1'",
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'bad.yaml'), yaml);
    expect(() => loadRuleDir(dir)).toThrow(/bad\.yaml:13.*linear time/s);
  });
});
