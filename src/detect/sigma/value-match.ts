/**
 * One Sigma field condition: `Field|mod|mod: value(s)`. Every comparison of text runs as a rule
 * regex (linear-regex.ts: RE2, the literal pre-check and the MAX_MATCH_TEXT bound), exactly like the
 * host and kube rules, because the text is the attacker's: a Sigma rule gets no other matcher.
 *
 * Sigma semantics: plain values compare whole and case-insensitively; `*` and `?` in a value are
 * wildcards (`\*`, `\?`, `\\` escape them); `contains`/`startswith`/`endswith` anchor accordingly;
 * `re` is an unanchored, case-sensitive regex; `base64` compares with the base64 of the value and
 * `base64offset|contains` looks for any of its three offsets; `windash` also tries `-` and `/` for a
 * leading dash; `cidr` tests an IPv4 address. A list of values is any-of, or all-of with `all`.
 */
import { compileRegex, literalsOf, type TextRegex } from '../linear-regex';

export const SUPPORTED_MODIFIERS = new Set(['contains', 'startswith', 'endswith', 're', 'all', 'cidr', 'windash', 'base64', 'base64offset']);

export interface FieldTest {
  field: string;
  modifiers: string[];
  values: (string | null)[];
  test: (values: readonly string[] | null) => boolean;
  /**
   * Lower-cased strings of which a field value the test accepts holds at least one (compared with the
   * bounded, lower-cased text the regexes see: linear-regex.ts literalHaystack), or null when no such
   * set is known (an absent field accepted, a cidr, a regex without required literals). The Sigma
   * prefilter (prefilter.ts) skips a rule whose every path needs a literal the event does not hold.
   */
  literals: readonly string[] | null;
}

function base64Variants(s: string, offset: boolean): string[] {
  const b = Buffer.from(s, 'utf8');
  if (!offset) return [b.toString('base64')];
  // The three encodings of s at offsets 0..2 inside a longer base64 text, trimmed to stable characters.
  const starts = [0, 2, 3];
  const ends = [0, -3, -2];
  return [0, 1, 2].map((i) => {
    const enc = Buffer.concat([Buffer.alloc(i), b]).toString('base64');
    const end = ends[(b.length + i) % 3] ?? 0;
    return enc.slice(starts[i], end === 0 ? undefined : end);
  });
}

function ipv4(s: string): number | null {
  if (s.length > 15) return null;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return null;
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function cidrTest(cidr: string): (v: string) => boolean {
  const [net, bitsText] = cidr.split('/');
  const base = ipv4(net ?? '');
  const bits = Number(bitsText ?? '32');
  if (base === null || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`cidr: only IPv4 networks are supported, not "${cidr}"`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (v) => {
    const ip = ipv4(v);
    return ip !== null && ((ip & mask) >>> 0) === ((base & mask) >>> 0);
  };
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/]/g;

function escapeRegex(s: string): string {
  return s.replace(REGEX_SPECIAL, '\\$&');
}

/** A Sigma value as a regex body: `*` any run, `?` one character, backslash escapes those two and itself. */
export function sigmaValueRegex(v: string, wildcards: boolean): string {
  if (!wildcards) return escapeRegex(v);
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const ch = v[i] as string;
    const next = v[i + 1];
    if (ch === '\\' && (next === '*' || next === '?' || next === '\\')) {
      out += escapeRegex(next);
      i++;
    } else if (ch === '*') out += '[\\s\\S]*';
    else if (ch === '?') out += '[\\s\\S]';
    else out += escapeRegex(ch);
  }
  return out;
}

type Op = 'equals' | 'contains' | 'startswith' | 'endswith';

function anchored(body: string, op: Op): string {
  return op === 'contains' ? body : op === 'startswith' ? `^${body}` : op === 'endswith' ? `${body}$` : `^${body}$`;
}

/** Builds the test for one field condition; throws with a reason when it cannot be mapped. */
export function fieldTest(field: string, modifiers: string[], raw: unknown): FieldTest {
  for (const m of modifiers) if (!SUPPORTED_MODIFIERS.has(m)) throw new Error(`modifier "${m}" is not supported`);
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0) throw new Error(`${field}: an empty list of values matches nothing`);
  const values = list.map((v) => {
    if (v === null) return null;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(`${field}: values must be strings, numbers or null`);
  });
  const all = modifiers.includes('all');
  const ops = modifiers.filter((m) => m === 'contains' || m === 'startswith' || m === 'endswith' || m === 're' || m === 'cidr');
  if (ops.length > 1) throw new Error(`modifiers ${ops.join(' and ')} cannot be combined`);
  const op = ops[0] ?? 'equals';
  const b64 = modifiers.includes('base64offset') ? 'offset' : modifiers.includes('base64') ? 'plain' : null;
  if (b64 === 'offset' && op !== 'contains') throw new Error('base64offset needs contains (the encoded value sits inside a longer text)');
  if (b64 && (op === 're' || op === 'cidr')) throw new Error(`base64 cannot be combined with ${op}`);
  const windash = modifiers.includes('windash');
  if (windash && (op === 're' || op === 'cidr')) throw new Error(`windash cannot be combined with ${op}`);
  /** The regex for one value, or (any-of) for several: one RE2 program and one literal pre-check. */
  const textRegex = (vs: readonly string[]): TextRegex => {
    try {
      if (op === 're') return compileRegex(vs[0] as string);
      let needles = [...vs];
      if (windash) needles = [...new Set(needles.flatMap((n) => (/^[-/]/.test(n) ? ['-' + n.slice(1), '/' + n.slice(1)] : [n])))];
      // base64 text is case-sensitive and has no wildcards; everything else compares case-insensitively.
      const bodies = b64 ? needles.flatMap((n) => base64Variants(n, b64 === 'offset')).map((n) => sigmaValueRegex(n, false)) : needles.map((n) => sigmaValueRegex(n, true));
      const alt = bodies.length === 1 ? (bodies[0] as string) : `(?:${bodies.join('|')})`;
      return compileRegex(`${b64 ? '' : '(?i)'}${anchored(alt, op as Op)}`);
    } catch (err) {
      throw new Error(`${field}: ${(err as Error).message}`);
    }
  };
  /** One value's test, and the regex it runs (null for a cidr). */
  const one = (v: string): { fn: (x: string) => boolean; re: TextRegex | null } => {
    if (op === 'cidr') return { fn: cidrTest(v), re: null };
    const re = textRegex([v]);
    return { fn: (x) => re.test(x), re };
  };
  const wantsAbsent = values.includes(null);
  const present = values.filter((v): v is string => v !== null);
  let compiled: { fn: (x: string) => boolean; re: TextRegex | null }[];
  if (all || op === 'cidr' || op === 're' || present.length <= 1) compiled = present.map(one);
  else {
    const re = textRegex(present);
    compiled = [{ fn: (x) => re.test(x), re }];
  }
  const tests = compiled.map((c) => c.fn);
  const test = (got: readonly string[] | null): boolean => {
    if (got === null || got.length === 0) return all ? present.length === 0 && wantsAbsent : wantsAbsent;
    const hit = (t: (x: string) => boolean): boolean => {
      for (let i = 0; i < got.length; i++) if (t(got[i] as string)) return true;
      return false;
    };
    // A present field never satisfies a null value; with `all`, a null among the values cannot hold.
    return all ? !wantsAbsent && tests.every(hit) : tests.some(hit);
  };
  return { field, modifiers, values, test, literals: testLiterals(compiled.map((c) => c.re), all, wantsAbsent) };
}

/**
 * What a value the test accepts must contain. Any-of values: the union of each regex's literals (one
 * without any means none). All-of: every regex must match, so the literals of any one will do (the
 * set with the longest shortest literal: the most selective). An accepted absent field: none.
 */
function testLiterals(res: readonly (TextRegex | null)[], all: boolean, wantsAbsent: boolean): readonly string[] | null {
  if (wantsAbsent || res.length === 0) return null;
  const sets = res.map((re) => (re === null ? null : literalsOf(re)));
  if (all) {
    let best: readonly string[] | null = null;
    for (const s of sets) if (s && (best === null || minLength(s) > minLength(best))) best = s;
    return best;
  }
  if (sets.some((x) => x === null)) return null;
  return [...new Set(sets.flatMap((x) => x!))].sort();
}

function minLength(xs: readonly string[]): number {
  return xs.reduce((m, x) => Math.min(m, x.length), Infinity);
}
