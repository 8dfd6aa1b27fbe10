/**
 * Rule regexes run on attacker-written text (command lines, paths, kube request URIs), so they run on
 * RE2 (the re2js port, pure JavaScript): matching time is linear in the text whatever the pattern, and a pattern RE2 cannot
 * run in linear time (backreferences, lookaround) is refused at compile time instead of being able to
 * backtrack for minutes. bench/regex-engines.js has the measurements behind this choice (re2-wasm
 * has a fixed 16 MiB heap and never frees a compiled regex; V8's `l` engine refuses the `i` flag on
 * Node 20, needs a V8 flag, and is 50-200x slower).
 */
import { RE2JS } from 're2js';

/** What matchers need from a compiled rule regex (RE2 and RegExp both have it). */
export interface RuleRegex {
  readonly source: string;
  test(text: string): boolean;
}

/** JS `\s` (ECMAScript WhiteSpace + LineTerminator); RE2's `\s` is only [\t\n\f\r ]. */
const JS_SPACE = '\\t\\n\\x{0b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}';

/**
 * Rules are written in JS regex syntax (the triage reads them with a JS parser), RE2 differs in two
 * places they use: `\uXXXX` (RE2: `\x{XXXX}`) and `\s`, which in JS also matches \v and Unicode
 * spaces, so an attacker's U+00A0 between two words would slip past an RE2 `\s`. `\S` inside a class
 * keeps RE2's meaning (no shipped rule writes it).
 */
export function toRe2Syntax(src: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as string;
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1] as string;
      const hex = /^[0-9a-fA-F]{4}$/.exec(src.slice(i + 2, i + 6));
      if (n === 'u' && hex) {
        out += `\\x{${hex[0]}}`;
        i += 5;
      } else if (n === 's') {
        out += inClass ? JS_SPACE : `[${JS_SPACE}]`;
        i++;
      } else if (n === 'S' && !inClass) {
        out += `[^${JS_SPACE}]`;
        i++;
      } else {
        out += c + n;
        i++;
      }
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return out;
}

/** Compiles `src` on RE2; throws an Error saying why when RE2 refuses it. `ignoreCase`/`dotAll` are the `i`/`s` flags. */
export function compileLinear(src: string, ignoreCase: boolean, dotAll = false): RuleRegex {
  try {
    const re = RE2JS.compile(toRe2Syntax(src), (ignoreCase ? RE2JS.CASE_INSENSITIVE : 0) | (dotAll ? RE2JS.DOTALL : 0));
    // test() needs no submatch positions, so RE2 answers it with its DFA: one pass over the text.
    return { source: src, test: (text) => re.test(text) };
  } catch (err) {
    throw new Error(`not a linear-time regex (RE2 refuses it; no backreferences or lookaround): ${(err as Error).message}`);
  }
}
