import { describe, expect, it } from 'vitest';
import * as fc from 'fast-check';
import { asciiLower, requiredLiterals } from '../../../src/detect/regex-literals';
import { compileRegex, type MatchSpec } from '../../../src/detect/rule-schema';
import { defaultRulesDir, loadRuleDir } from '../../../src/detect/rule-loader';

/** Every regex source in the shipped host rule pack (indicators, exclusions, sequences). */
function shippedRegexes(): string[] {
  const out = new Set<string>();
  const fromMatch = (m: MatchSpec): void => {
    for (const k of ['argv', 'path', 'cwd', 'exe_path', 'parent_argv'] as const) if (m[k] !== undefined) out.add(m[k]);
    for (const a of m.argv_all ?? []) out.add(a);
    if (m.sockaddr?.addr !== undefined) out.add(m.sockaddr.addr);
    if (m.sockaddr?.path !== undefined) out.add(m.sockaddr.path);
  };
  for (const r of loadRuleDir(defaultRulesDir())) {
    for (const i of r.indicators) fromMatch(i.match);
    for (const e of r.exclusions) fromMatch(e);
    for (const t of r.sequence?.then ?? []) fromMatch(t);
  }
  return [...out].sort();
}

const TRICKY = [
  '\\bcreate\\s+token\\b',
  '(?i)https?://x',
  '^(docker|nerdctl|podman)\\s+',
  'ab?c',
  '(get|describe)',
  '(?i)(pass|secret|token|credential|key)',
  'foo(bar)+baz',
  '(ab|cd){2}',
  '[Kk]ubectl',
  '(?i)[a-c]x[yY]z',
  'a{3}bc',
  '(?:(?:a|b)(c|d)){1,2}e',
  'ab*c',
  '(x|y|)z',
  '[^a]bc',
  'a.bcd',
  '(?i)KuBeCtL\\s+get',
  '\\x41B\\u0043',
  '(?i)\\x41bc',
  'q(u|v)+(w|xy)*z',
  '(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)',
  '(?i)[A-D][A-D][A-D]',
  'é+abc',
  '(?i)Straße|kubectl',
  '\\.sock$|^/run/',
  '(^|[\\s=])/var/run/',
  '--token[= ](eyJ|\\S{20,})',
  '[.]x[.]y',
  '\\d+\\.\\d+\\.\\d+\\.\\d+:(2375|2376)',
];

describe('requiredLiterals: examples', () => {
  it.each([
    ['\\bcreate\\s+token\\b', ['create']],
    ['^(docker|nerdctl|podman)\\s+', ['docker', 'nerdctl', 'podman']],
    ['(get|describe)', ['describe', 'get']],
    ['(docker|containerd|crio)\\.sock$', ['containerd.sock', 'crio.sock', 'docker.sock']],
    ['^169\\.254\\.169\\.254$', ['169.254.169.254']],
    ['[56]x', ['5x', '6x']],
    ['(?i)KUBECTL', ['kubectl']],
    ['Kubectl', ['kubectl']],
    ['(ab|cd){2}', ['ab', 'cd']],
  ])('%s -> %j', (src, want) => {
    expect(requiredLiterals(src)).toEqual(want);
  });

  it('(?i)https?://x gives one literal that every match holds (http or ://x)', () => {
    const got = requiredLiterals('(?i)https?://x');
    expect(got === null ? null : got.length).toBe(1);
    expect(['http', '://x']).toContain(got?.[0]);
  });

  it('foo(bar)+baz: one of the three words (bar may repeat, so foobar is not exact)', () => {
    const got = requiredLiterals('foo(bar)+baz');
    expect(got?.length).toBe(1);
    expect(['foo', 'bar', 'baz']).toContain(got?.[0]);
  });

  it('(?i) with a non-ASCII letter: only the ASCII run counts (Unicode case folding is not reproduced)', () => {
    expect(requiredLiterals('(?i)école')).toEqual(['cole']);
    expect(requiredLiterals('(?i)é')).toBeNull();
  });

  it.each(['a|\\s', '.*', '', '\\s+', '(a|)', 'x?', '[^/]+', '(\\w+)\\1', '[a-z]+'])('%j -> null (nothing provable)', (src) => {
    expect(requiredLiterals(src)).toBeNull();
  });

  it('ab?c: null or a set of characters every match holds', () => {
    const got = requiredLiterals('ab?c');
    if (got !== null) for (const l of got) expect(['a', 'c']).toContain(l);
  });

  it('prefers the set whose shortest member is longest', () => {
    expect(requiredLiterals('ab\\s+abcdef\\s+abcd')).toEqual(['abcdef']);
    expect(requiredLiterals('(ab|abcdefgh)\\s+(abc|abcd)')).toEqual(['abc', 'abcd']);
  });

  it('cuts a cross product past 32 strings instead of giving up', () => {
    // 2^6 = 64 combinations: the run ends before the last pair but still proves something.
    const got = requiredLiterals('(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)');
    expect(got).not.toBeNull();
    expect((got ?? []).length).toBeLessThanOrEqual(32);
  });

  it('lower-cases every output, also for case-sensitive regexes', () => {
    for (const src of [...TRICKY, ...shippedRegexes()]) {
      for (const l of requiredLiterals(src) ?? []) expect(l, src).toBe(asciiLower(l));
    }
  });

  it('never returns an empty array, an empty string or a non-ASCII literal', () => {
    for (const src of [...TRICKY, ...shippedRegexes()]) {
      const got = requiredLiterals(src);
      if (got === null) continue;
      expect(got.length, src).toBeGreaterThan(0);
      for (const l of got) {
        expect(l.length, src).toBeGreaterThan(0);
        expect(/^[\x00-\x7f]*$/.test(l), src).toBe(true);
      }
    }
  });

  it('finds a literal for most shipped regexes (the triage depends on them)', () => {
    const all = shippedRegexes();
    const none = all.filter((s) => requiredLiterals(s) === null);
    console.log(`requiredLiterals: ${all.length - none.length}/${all.length} shipped regexes give literals; none for:\n  ${none.join('\n  ')}`);
    expect(all.length).toBeGreaterThan(20);
    expect(none.length).toBeLessThan(all.length / 4);
  });
});

/** Random-case variant: flips ASCII letters (a match of an (?i) regex stays a match). */
function flipCase(s: string, flips: readonly boolean[]): string {
  let out = '';
  let i = 0;
  for (const ch of s) {
    const f = flips[i++ % Math.max(1, flips.length)] ?? false;
    out += f && /[a-zA-Z]/.test(ch) ? (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) : ch;
  }
  return out;
}

/** Word-ish pieces of the regex source, so random strings often come close to matching. */
function piecesOf(src: string): string[] {
  const words = src.match(/[A-Za-z0-9_./:=-]{2,}/g) ?? [];
  return [...new Set([...words, ...words.map((w) => w.replace(/\\/g, '')), ' ', '/', '.', ':', '=', '-', '"'])];
}

function checkProperty(src: string): void {
  const re = compileRegex(src);
  const lits = requiredLiterals(src);
  if (lits === null) return; // nothing claimed, nothing to check
  const holds = (s: string): boolean => !re.test(s) || lits.some((l) => asciiLower(s).includes(l));

  const ic = src.startsWith('(?i)');
  const body = ic ? src.slice(4) : src;
  // fast-check cannot generate for \\b / \\B: generate with a space at each \\b (a boundary next to
  // a word character) and no \\B, and keep the strings that match the real regex.
  const generable = body.replace(/(?<!\\)((?:\\\\)*)\\([bB])/g, (_m, pre: string, b: string) => pre + (b === 'b' ? ' ' : ''));
  let matching: fc.Arbitrary<string> | null = null;
  try {
    matching = fc.stringMatching(new RegExp(generable), { maxLength: 200 });
  } catch (err) {
    console.log(`stringMatching cannot generate for ${src}: ${(err as Error).message}; random strings only`);
  }
  if (matching) {
    let matched = 0;
    const runs = 300;
    fc.assert(
      fc.property(matching, fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }), (s, flips) => {
        const t = ic ? flipCase(s, flips) : s;
        if (!re.test(t)) return;
        matched++;
        expect(holds(t), `${JSON.stringify(t)} matches ${src} but holds none of ${JSON.stringify(lits)}`).toBe(true);
      }),
      { numRuns: runs },
    );
    // Without this the property could pass vacuously.
    expect(matched, `only ${matched}/${runs} generated strings matched ${src}`).toBeGreaterThan(runs / 10);
  }
  const pieces = piecesOf(src);
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 4 })), { maxLength: 12 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
      (parts, flips) => {
        const s = flipCase(parts.join(''), flips);
        expect(holds(s), `${JSON.stringify(s)} matches ${src} but holds none of ${JSON.stringify(lits)}`).toBe(true);
      },
    ),
    { numRuns: 300 },
  );
}

describe('requiredLiterals: every match holds a literal (property)', () => {
  it.each(TRICKY)('hand-written %s', (src) => checkProperty(src));
  it.each(shippedRegexes())('shipped %s', (src) => checkProperty(src));
});
