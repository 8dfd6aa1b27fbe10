/**
 * Rule regexes run in linear time over bounded text (src/detect/linear-regex.ts), whatever an
 * attacker writes: the security review's cases (h11's etcdctl regex, h5's kubectl regex, the tar
 * regex, `^(a+)+$`) took seconds to minutes on V8's backtracking engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { LinearRegexError, MAX_MATCH_TEXT, compileRegex, matchStats, verifyRegex } from '../../../src/detect/linear-regex';
import { asciiLower, requiredLiterals } from '../../../src/detect/regex-literals';
import { makeEvent } from '../enrich/helpers';

const RULES_DIR = path.join(__dirname, '../../../src/detect/rules');
const REGEX_KEYS = new Set(['argv', 'argv_all', 'path', 'cwd', 'exe_path', 'parent_argv', 'addr', 'user_agents', 'images', 'credential_paths', 'suspicious_commands', 'scripting_user_agents', 'socket_suffix']);

function packRegexes(): string[] {
  const out: string[] = [];
  const walk = (o: unknown, key: string): void => {
    if (typeof o === 'string') {
      if (REGEX_KEYS.has(key)) out.push(o);
    } else if (Array.isArray(o)) o.forEach((x) => walk(x, key));
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, k);
  };
  for (const f of fs.readdirSync(RULES_DIR)) walk(parse(fs.readFileSync(path.join(RULES_DIR, f), 'utf8')), '');
  return out;
}

/** CPU milliseconds of fn (not wall time: the test machine may be busy). */
function cpuMs(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

describe('linear-time rule regexes', () => {
  it('every regex of the shipped pack compiles in RE2', () => {
    const all = packRegexes();
    expect(all.length).toBeGreaterThan(100);
    for (const src of all) expect(() => verifyRegex(src), src).not.toThrow();
  });

  it('refuses backreferences, lookaround and huge counts with the reason', () => {
    expect(() => compileRegex('(a)\\1')).toThrow(/linear time: backreference \\1/);
    expect(() => compileRegex('foo(?=bar)')).toThrow(/lookaround/);
    expect(() => compileRegex('(?<!x)y')).toThrow(/lookaround/);
    expect(() => compileRegex('a{1,5000}')).toThrow(/repetition count/);
    expect(() => compileRegex('a(')).toThrow(LinearRegexError);
  });

  it('`^(a+)+$`, exponential on a backtracking engine, answers at once', () => {
    const re = compileRegex('^(a+)+$');
    const text = 'a'.repeat(5000) + '!';
    let r = true;
    expect(cpuMs(() => (r = re.test(text)))).toBeLessThan(500);
    expect(r).toBe(false);
    expect(re.test('aaaa')).toBe(true);
  });

  it('keeps the (?i) convention and JavaScript semantics for \\b, classes and alternation', () => {
    const re = compileRegex('(?i)\\b(get|describe)\\b.*\\bsecrets?\\b');
    expect(re.test('kubectl GET Secrets -A')).toBe(true);
    expect(re.test('kubectl forget secretsx')).toBe(false);
    expect(compileRegex('--token[= ](eyJ|\\S{20,})').test('kubectl --token=eyJhbGciOi')).toBe(true);
  });

  it('a byte that is not UTF-8 (a lone surrogate) does not blind a rule', () => {
    const re = compileRegex('etcdctl\\b.*\\bget\\b.*/registry/secrets');
    expect(re.test('etcdctl \udcff get /registry/secrets/default/x')).toBe(true);
    expect(re.test('etcdctl get \udc80/registry/secrets')).toBe(true);
  });

  it('a text longer than the cap is matched on its two ends, and the cut is counted', () => {
    const re = compileRegex('kubectl\\b.*\\bsecrets\\b');
    const before = matchStats.textsCut;
    const text = 'kubectl get ' + 'x'.repeat(1 << 20) + ' secrets';
    expect(re.test(text)).toBe(true);
    expect(matchStats.textsCut).toBe(before + 1);
    // The same text tested by the next rule is not cut (nor counted) again.
    expect(compileRegex('kubectl').test(text)).toBe(true);
    expect(matchStats.textsCut).toBe(before + 1);
    expect(re.test('kubectl get ' + 'x'.repeat(MAX_MATCH_TEXT))).toBe(false);
  });

  it('the fields of one event (more than a few) are each prepared once while rules alternate between them', () => {
    const a = compileRegex('kubectl\\b.*\\bsecrets\\b');
    const b = compileRegex('(?i)etcdctl');
    // 20 long argument texts, as an auditd EXECVE record's a0..a19 are asked for rule after rule.
    const texts = Array.from({ length: 20 }, (_, i) => `kubectl ${i} ` + 'x'.repeat(MAX_MATCH_TEXT) + ' secrets');
    const before = matchStats.textsCut;
    for (let round = 0; round < 3; round++) {
      for (const t of texts) {
        expect(a.test(t)).toBe(true);
        expect(b.test(t)).toBe(false);
      }
    }
    expect(matchStats.textsCut).toBe(before + texts.length);
  });

  it('lower-casing for the literal pre-check changes only A-Z (a non-ASCII letter stays as it is)', () => {
    expect(asciiLower('KUBECTL Get SECRETS')).toBe('kubectl get secrets');
    expect(asciiLower('KUBECTL \u0130 \u03a3 \udc80 GET')).toBe('kubectl \u0130 \u03a3 \udc80 get');
  });

  it('a text without any literal the regex needs never reaches RE2 (and still answers right)', () => {
    const src = '(?i)etcdctl\\b.*\\bget\\b';
    expect(requiredLiterals(src)).not.toBeNull();
    const re = compileRegex(src);
    expect(re.test('ls -la /tmp')).toBe(false);
    expect(re.test('ETCDCTL --endpoints x GET /')).toBe(true);
  });
});

describe('the engine on hostile command lines (every shipped rule)', () => {
  const detector = createHostStages({ host: 'node-a', users: null });
  const exec = (argv: string[], exe = '/usr/bin/true') =>
    makeEvent({ process: { pid: 4242, uid: 1000, euid: 1000, auid: 1000, exe, comm: path.basename(exe), argv }, paths: [{ name: exe, nametype: 'NORMAL' } as never] });

  it("the review's cases cost milliseconds, not minutes, and a real indicator after padding is still found", () => {
    const cases: [string, string[]][] = [
      ['h11 etcdctl 24 KB, one argument', ['/bin/true', 'etcdctl get '.repeat(2048)]],
      ['h11 etcdctl 36 KB, split', ['/bin/true', ...'etcdctl get '.repeat(3072).split(' ')]],
      ['h5 kubectl 512 KB argument', ['kubectl', 'get ' + 'secrets '.repeat(65536)]],
      ['tar 256 KB', ['tar', 'cf - '.repeat(52428)]],
    ];
    for (const [name, argv] of cases) {
      const ms = cpuMs(() => detector.onAuditEvent(exec(argv)));
      expect(ms, name).toBeLessThan(1000); // was 5 s to 148 s; bench/hostile-regex.js measures the real figure
    }
    const attack = exec(['/usr/bin/etcdctl', 'get', '/registry/secrets/default/db', '--prefix', 'x'.repeat(200_000)], '/usr/bin/etcdctl');
    const found = detector.onAuditEvent(attack).map((f) => f.rule);
    expect(found).toContain('h11-etcd-direct-access');
  });

  it('property: no generated argv of up to 1 MB built from the rules own literals costs more than a bounded time', () => {
    const literals = [...new Set(packRegexes().flatMap((s) => requiredLiterals(s) ?? []))];
    const piece = fc.oneof(fc.constantFrom(...literals), fc.constantFrom(' ', '/', '-', '=', 'a', '\udcff', '.*'), fc.string({ maxLength: 8 }));
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 4096 }), fc.boolean(), (parts, reps, split) => {
        const unit = parts.join(' ');
        const big = unit.repeat(Math.max(1, Math.min(reps, Math.floor((1 << 20) / Math.max(1, unit.length)))));
        const argv = split ? ['kubectl', ...big.split(' ').slice(0, 50_000)] : ['kubectl', big];
        const ms = cpuMs(() => detector.onAuditEvent(exec(argv)));
        return ms < 1000;
      }),
      { numRuns: 40 },
    );
  });
});

describe('the last-text memo (an alert storm repeats one command line)', () => {
  it('answers a repeated text as RE2 did, and a new text afresh, in any order', () => {
    const prefiltered = compileRegex('docker\\s+exec\\b');
    const plain = compileRegex('^[a-z]+$');
    const texts = ['docker exec abc cat /token', 'ls -l', 'docker exec abc cat /token', 'docker  exec x', 'dockerexec', 'ls -l'];
    const want = [true, false, true, true, false, false];
    for (let round = 0; round < 2; round++) {
      texts.forEach((t, i) => {
        expect(prefiltered.test(t), t).toBe(want[i]);
        expect(prefiltered.test(t), `${t} (again)`).toBe(want[i]);
      });
    }
    expect(['abc', 'abc', 'ab1', 'ab1', 'abc'].map((t) => plain.test(t))).toEqual([true, true, false, false, true]);
  });
});
