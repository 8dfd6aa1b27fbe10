/**
 * Every regex a rule applies to attacker-written text (command lines, paths, user agents, names) runs
 * here, in linear time. V8's own engine backtracks: `etcdctl\b.*\bget\b.*(...)` over 24 KB of
 * repeated "etcdctl get " took minutes, and while the JavaScript thread is stuck the kernel's unicast
 * backpressure stalls every audited process on the node. RE2 (re2js, the pure-JavaScript port of
 * Google's automaton engine: no build, no download; see rule-regex.ts and bench/regex-engines.js for
 * why not re2-wasm or V8's `l` flag) guarantees time linear in the text, and refuses the constructs
 * that cannot run that way (backreferences, lookaround), so a rule that needs them is refused when
 * it is loaded, not when an attacker finds it.
 *
 * Linear is not free, so two more bounds: each regex first asks for the literals every match must
 * contain (regex-literals.ts, the analysis the native triage uses) and a text holding none of them
 * never reaches RE2; and the text itself is bounded (MAX_MATCH_TEXT).
 */
import { RegExpParser, visitRegExpAST, type AST } from '@eslint-community/regexpp';
import { compileLinear, type RuleRegex } from './rule-regex';
import { asciiLower, requiredLiterals } from './regex-literals';

/** A compiled rule regex: the one shape rule-regex.ts declares, under the name matchers use. */
export type TextRegex = RuleRegex;

export class LinearRegexError extends Error {}

/**
 * The longest text a regex is run over. RE2 is linear but not free (about 0.1 µs a character for a
 * `.*` pattern matching late: 35 ms for 1 MB), and an argument can be 128 KiB with up to 2 MiB of
 * arguments: a longer text is matched as its first and last halves of this size joined
 * by a marker, and the cut is counted (matchStats.textsCut). Indicators are short and near either end
 * of a command line (the program and its verb at the start, the object or flag anywhere, usually
 * before padding an attacker appends); what padding in the middle hides is the known cost.
 */
export const MAX_MATCH_TEXT = 8192;
const HALF = MAX_MATCH_TEXT / 2;
const CUT_MARKER = ' \u2026[cut] ';

/** The same source compiles once per process (SIGHUP reloads, many rules sharing a pattern); bounded. */
const MAX_PROGRAMS = 20_000;
const programs = new Map<string, RuleRegex>();

/** Counters for status and metrics (read as totals; the agent reports deltas). */
export const matchStats = { textsCut: 0, programs: 0, compileErrors: 0 };

/**
 * Compiles a rule regex (`(?i)` at the start means case-insensitive: JavaScript has no inline
 * flags). Throws LinearRegexError naming the reason when the pattern is not valid JavaScript regex
 * syntax (what rule authors write, and what the literal analysis parses) or cannot run in linear
 * time.
 */
export function compileRegex(source: string): TextRegex {
  const ignoreCase = source.startsWith('(?i)');
  const body = ignoreCase ? source.slice(4) : source;
  let ast: AST.Pattern;
  try {
    new RegExp(body, ignoreCase ? 'i' : ''); // syntax as rule authors know it
    ast = parser.parsePattern(body, 0, body.length, { unicode: false, unicodeSets: false });
  } catch (err) {
    throw new LinearRegexError(`invalid regex: ${(err as Error).message}`);
  }
  const why = nonLinearConstruct(ast);
  if (why) throw new LinearRegexError(`regex cannot run in linear time: ${why}`);
  const literals = requiredLiterals(source);
  return literals === null ? new Re2Only(source, body, ignoreCase) : new Prefiltered(source, body, ignoreCase, literals);
}

const parser = new RegExpParser({ ecmaVersion: 2025 });

/** What RE2 cannot run (and so what a backtracking engine would need), or null. */
function nonLinearConstruct(ast: AST.Pattern): string | null {
  let why: string | null = null;
  visitRegExpAST(ast, {
    onBackreferenceEnter: (n) => void (why ??= `backreference ${n.raw}`),
    onAssertionEnter: (n) => {
      if (n.kind === 'lookahead' || n.kind === 'lookbehind') why ??= `lookaround ${n.raw}`;
    },
    onQuantifierEnter: (n) => {
      const big = Math.max(n.min, n.max === Infinity ? 0 : n.max);
      if (big > 1000) why ??= `repetition count over 1000 in ${n.raw}`;
    },
  });
  return why;
}

/**
 * Compiles (and interns) an RE2 program, on first use: most rules never see a text that holds their
 * literals, and startup stays cheap for the CLI.
 * Construction was already checked against everything RE2 refuses; `verifyRegex` compiles at once,
 * for `rules check` and the pack's tests.
 */
export function verifyRegex(source: string): void {
  const ignoreCase = source.startsWith('(?i)');
  compileRegex(source);
  program(ignoreCase ? source.slice(4) : source, ignoreCase);
}

function program(body: string, ignoreCase: boolean): RuleRegex {
  const key = `${ignoreCase ? 'i' : ''}/${body}`;
  let re: RuleRegex | undefined = programs.get(key);
  if (re) return re;
  if (programs.size >= MAX_PROGRAMS) {
    throw new LinearRegexError(`too many distinct regexes (limit ${MAX_PROGRAMS}): the rule set is too large`);
  }
  try {
    re = compileLinear(body, ignoreCase);
  } catch (err) {
    throw new LinearRegexError((err as Error).message);
  }
  programs.set(key, re);
  matchStats.programs = programs.size;
  return re;
}

class Re2Only implements TextRegex {
  private re: RuleRegex | null = null;
  /**
   * The last text this regex judged and its answer: a pattern is applied to one field (a command line,
   * a path), and in an alert storm that field is the same text event after event, so RE2 runs once.
   */
  private memoText: string | null = null;
  private memoResult = false;

  constructor(
    readonly source: string,
    private readonly body: string,
    private readonly ignoreCase: boolean,
  ) {}

  test(text: string): boolean {
    if (text === this.memoText) return this.memoResult;
    const r = this.judge(text);
    this.memoText = text;
    this.memoResult = r;
    return r;
  }

  protected judge(text: string): boolean {
    if (this.re === null) {
      try {
        this.re = program(this.body, this.ignoreCase);
      } catch {
        // Not reachable for a pattern the construction checks passed (the pack's tests compile every
        // shipped regex); should RE2 still refuse one, it is counted, never run on V8's engine.
        matchStats.compileErrors++;
        return false;
      }
    }
    return this.re.test(prepared(text));
  }
}

class Prefiltered extends Re2Only {
  constructor(
    source: string,
    body: string,
    ignoreCase: boolean,
    readonly literals: readonly string[],
  ) {
    super(source, body, ignoreCase);
  }

  protected override judge(text: string): boolean {
    const lower = lowered(text);
    for (let i = 0; i < this.literals.length; i++) {
      if (lower.includes(this.literals[i] as string)) return super.judge(text);
    }
    return false;
  }
}

// The same texts (one event's command line, exe, cwd; a Sigma rule's fields, an auditd EXECVE record's
// arguments once for each of its records) are tested by many rules in turn: each is prepared once and
// kept in a small map of recent texts. It was a ring of 4: an event with more fields than that (a long
// argv's a0..aN, asked again for each of its 160 EXECVE records) prepared every field again each time,
// ~10 ms an event with the Sigma corpus. Both the literal pre-check and RE2 see the bounded text, so
// the two always agree.
interface Prepared {
  prepared: string;
  lower: string | null;
}
/** Texts kept; and the characters their keys may hold together (a key keeps its whole text alive), but for one text longer than that. */
const RECENT_TEXTS = 64;
const RECENT_TEXT_CHARS = 1 << 20;
const recentTexts = new Map<string, Prepared>();
let recentChars = 0;

function slot(text: string): Prepared {
  const hit = recentTexts.get(text);
  if (hit !== undefined) return hit;
  let b = text;
  if (text.length > MAX_MATCH_TEXT) {
    b = text.slice(0, HALF) + CUT_MARKER + text.slice(-HALF);
    matchStats.textsCut++;
  }
  if (recentTexts.size >= RECENT_TEXTS || recentChars + text.length > RECENT_TEXT_CHARS) {
    recentTexts.clear();
    recentChars = 0;
  }
  // A text past the budget is still kept, alone: the next rule asks for it again.
  const p: Prepared = { prepared: wellFormed(b), lower: null };
  recentTexts.set(text, p);
  recentChars += text.length;
  return p;
}

function prepared(text: string): string {
  return slot(text).prepared;
}

function lowered(text: string): string {
  const p = slot(text);
  return (p.lower ??= asciiLower(p.prepared));
}

/**
 * The literals every match of `re` contains, as compileRegex proved them (regex-literals.ts), or null
 * when none are proven: what a prefilter over several regexes may look for without parsing them again.
 */
export function literalsOf(re: TextRegex): readonly string[] | null {
  if (re instanceof Prefiltered) return re.literals;
  if (re instanceof Re2Only) return null;
  return requiredLiterals(re.source);
}

/**
 * The text a regex's literal pre-check looks in: bounded like the text RE2 runs on, lower-cased.
 * A prefilter that looks for a regex's required literals here is never narrower than the regex.
 */
export function literalHaystack(text: string): string {
  return lowered(text);
}

interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * Bytes that are not UTF-8 arrive as lone surrogates (surrogateescape, src/audit/bytes.ts). An RE2
 * built on UTF-8 (re2-wasm did) answers false for a text holding one, whatever the pattern: one stray
 * 0xff argument would blind every rule. Each lone surrogate becomes U+FFFD for matching only (the
 * finding keeps the bytes), so no engine's handling of them matters.
 */
function wellFormed(text: string): string {
  const s = text as unknown as WellFormedString;
  return s.isWellFormed() ? text : s.toWellFormed();
}

/**
 * A glob (`*` any run, `?` one character; in a full-path glob `*` stops at '/' and `**` crosses it)
 * as a TextRegex: globs are matched against attacker-chosen names too (argv0 can be 128 KB).
 */
export function compileGlobRegex(glob: string, opts: { full: boolean }): TextRegex {
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*') {
      if (opts.full && glob[i + 1] === '*') {
        src += '[\\s\\S]*';
        i++;
      } else src += opts.full ? '[^/]*' : '[\\s\\S]*';
    } else if (ch === '?') src += '[\\s\\S]';
    else src += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return compileRegex(`^${src}$`);
}
