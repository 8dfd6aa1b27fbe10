/**
 * Literal strings that every match of a rule regex must contain, so that code which cannot run
 * JavaScript regexes (the native triage in the reader thread) can still rule an event out: if none
 * of the strings occurs in the text, the regex cannot match it.
 *
 * The analysis is conservative (in the spirit of Russ Cox's codesearch trigram analysis, much
 * simplified): for each AST node it computes
 *   exact    - a small set of strings that are exactly everything the node can match, or null;
 *   required - a set S such that every match of the node contains some member of S, or null.
 * When in doubt a node says null ("unknown"); unknown propagates upwards as "no proof", never as a
 * guess. Only ASCII literals are kept: case-insensitive matching of other characters follows
 * Unicode case folding, which the native side does not reproduce.
 */
import { RegExpParser, type AST } from '@eslint-community/regexpp';

/** Largest set an exact cross product or union may grow to before it stops being exact. */
const MAX_SET = 32;
/** Largest character class that still counts as a set of literal characters. */
const MAX_CLASS = 4;

type StrSet = Set<string>;

interface Info {
  exact: StrSet | null;
  required: StrSet | null;
}

const UNKNOWN: Info = { exact: null, required: null };
const ZERO_WIDTH: Info = { exact: new Set(['']), required: null };

const parser = new RegExpParser({ ecmaVersion: 2025 });

/**
 * Strings of which every match of the regex contains at least one, lower-cased (the native side
 * compares ASCII case-insensitively), deduplicated and sorted; null when no such set can be proven.
 * `source` is a regex as rules write it: a leading '(?i)' means the 'i' flag (compileRegex).
 */
export function requiredLiterals(source: string): string[] | null {
  const ignoreCase = source.startsWith('(?i)');
  const body = ignoreCase ? source.slice(4) : source;
  let pattern: AST.Pattern;
  try {
    pattern = parser.parsePattern(body, 0, body.length, { unicode: false, unicodeSets: false });
  } catch {
    return null; // not a regex we understand: no proof
  }
  const best = bestOf(disjunction(pattern.alternatives, ignoreCase));
  if (best === null) return null;
  const out = [...new Set([...best].map(asciiLower))].sort();
  return out.length > 0 && !out.includes('') ? out : null;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** `s` with A-Z lower-cased and nothing else changed (toLowerCase alone also changes non-ASCII letters). */
export function asciiLower(s: string): string {
  // The native lower-casing is ~10x the regex's callback per run; on ASCII text the two agree.
  return NON_ASCII.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s.toLowerCase();
}

function isAscii(code: number): boolean {
  return code < 0x80;
}

/**
 * The better of two candidate required sets: the one whose shortest member is longest, then the one
 * with fewer members. A set with a one- or two-character member thus only wins when nothing longer
 * is on offer; it is still correct, just a weak filter.
 */
function better(a: StrSet | null, b: StrSet | null): StrSet | null {
  if (!usable(b)) return usable(a) ? a : null;
  if (!usable(a)) return b;
  const ma = shortest(a);
  const mb = shortest(b);
  if (ma !== mb) return ma > mb ? a : b;
  return b.size < a.size ? b : a;
}

/** A set proves something only when it is non-empty and has no empty string (which every text holds). */
function usable(s: StrSet | null): s is StrSet {
  return s !== null && s.size > 0 && !s.has('');
}

function shortest(s: StrSet): number {
  let m = Infinity;
  for (const x of s) m = Math.min(m, x.length);
  return m;
}

/** The best required set a node offers: its exact set or its required set. */
function bestOf(info: Info): StrSet | null {
  return better(info.exact, info.required);
}

function cross(a: StrSet, b: StrSet): StrSet | null {
  if (a.size * b.size > MAX_SET) return null;
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return out;
}

function disjunction(alts: readonly AST.Alternative[], ic: boolean): Info {
  let exact: StrSet | null = new Set();
  let required: StrSet | null = new Set();
  for (const alt of alts) {
    const info = sequence(alt.elements, ic);
    if (exact !== null) {
      if (info.exact === null) exact = null;
      else {
        for (const s of info.exact) exact.add(s);
        if (exact.size > MAX_SET) exact = null;
      }
    }
    if (required !== null) {
      const b = bestOf(info);
      if (b === null) required = null;
      else for (const s of b) required.add(s);
    }
  }
  if (exact !== null && exact.size === 0) exact = null; // no alternatives: matches nothing we can name
  return { exact, required: usable(required) ? required : null };
}

/**
 * Concatenation: consecutive exact children join into runs by cross product (a run ends at a child
 * with no exact set or when the product would pass MAX_SET); every run and every child's own best
 * set is a candidate, since each of them is a substring of every match of the whole.
 */
function sequence(elements: readonly AST.Element[], ic: boolean): Info {
  let run: StrSet = new Set(['']);
  let complete = true; // every child exact and no run was cut: the run is the whole's exact set
  let best: StrSet | null = null;
  for (const el of elements) {
    const info = element(el, ic);
    best = better(best, info.required);
    if (info.exact === null) {
      best = better(best, run);
      run = new Set(['']);
      complete = false;
      continue;
    }
    best = better(best, info.exact);
    const joined = cross(run, info.exact);
    if (joined === null) {
      best = better(best, run);
      run = info.exact;
      complete = false;
    } else run = joined;
  }
  best = better(best, run);
  return { exact: complete ? run : null, required: best };
}

function element(el: AST.Element, ic: boolean): Info {
  switch (el.type) {
    case 'Character':
      return literalChars([el.value], ic);
    case 'CharacterClass':
      return characterClass(el, ic);
    case 'CharacterSet':
      return UNKNOWN; // . \d \s \w and friends
    case 'Assertion':
      return ZERO_WIDTH; // ^ $ \b \B and lookarounds consume nothing
    case 'Backreference':
      return UNKNOWN;
    case 'Group':
      // Inline modifiers such as (?i:...) change case rules inside: no proof (Node 20 lacks them anyway).
      return el.modifiers ? UNKNOWN : disjunction(el.alternatives, ic);
    case 'CapturingGroup':
      return disjunction(el.alternatives, ic);
    case 'Quantifier':
      return quantifier(el, ic);
    default:
      return UNKNOWN;
  }
}

function quantifier(q: AST.Quantifier, ic: boolean): Info {
  // min 0: the element may be absent, so it proves nothing about the match.
  if (q.min === 0) return UNKNOWN;
  const inner = element(q.element, ic);
  return { exact: q.min === 1 && q.max === 1 ? inner.exact : null, required: bestOf(inner) };
}

function characterClass(cc: AST.CharacterClass, ic: boolean): Info {
  if (cc.negate || cc.unicodeSets) return UNKNOWN;
  const codes: number[] = [];
  for (const e of cc.elements) {
    if (e.type === 'Character') codes.push(e.value);
    else if (e.type === 'CharacterClassRange') {
      if (e.max.value - e.min.value + 1 > MAX_CLASS) return UNKNOWN;
      for (let c = e.min.value; c <= e.max.value; c++) codes.push(c);
    } else return UNKNOWN; // \d \s \w inside a class
    if (codes.length > MAX_CLASS) return UNKNOWN;
  }
  return codes.length === 0 ? UNKNOWN : literalChars(codes, ic);
}

/** A set of single characters; non-ASCII makes it unusable (see the module comment). */
function literalChars(codes: readonly number[], ic: boolean): Info {
  const out = new Set<string>();
  for (const c of codes) {
    if (!isAscii(c)) return UNKNOWN;
    const ch = String.fromCharCode(c);
    out.add(ic ? asciiLower(ch) : ch);
  }
  return { exact: out, required: null };
}
