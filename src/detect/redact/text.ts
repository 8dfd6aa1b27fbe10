/**
 * Redaction of one piece of free text: an argument, a record field, a shell `-c` string, a Kubernetes
 * request URI. Layers, in order:
 *  1. decode: %XX (URL encoding, repeatedly, for %25-escaped layers) so `Authorization%3A%20Bearer%20`
 *     is scanned as the header it is; when a secret is found in the decoded text, the redacted decoded
 *     text is what is kept (an encoded original is never returned with a secret in it);
 *  2. shapes: JWTs, AKIA/ASIA keys, Vault/GitHub/GitLab/Slack tokens, PEM private key bodies;
 *  3. named values: `Header: value` and `name: value`, `NAME=value` / `name%3Dvalue`, `"key": "value"`
 *     and `scheme://user:pass@` whose name says secret (see ./secret-names);
 *  4. command text (holds whitespace): split into words and walked as argv, so `--token X` or
 *     `mysql -pX` inside `sh -c "..."` goes as it would as real arguments;
 *  5. cut text (redactCutText: an argument's window, a PROCTITLE at the kernel's 128 bytes): a secret
 *     whose closing context (the `@` of a URL, the quote ending a JSON value, the rest of a key) lies
 *     past the cut is recognised by its start and redacted to the end.
 * JSON held as escaped text inside JSON (`\"auth\":\"X\"`, any depth) and JSON string arrays
 * (`"--token","X"`) are matched in text too, so JSON that is cut or nested still loses its secrets.
 * Every regex is linear on attacker text: no nested quantifiers, and the ones that scan a name start
 * only where a name starts (a lookbehind), so a long run of name characters is scanned once.
 */
import { redactArgvWith } from './argv';
import { redactJsonValue } from './json';
import { REDACTED } from './marker';
import { PROGRAM_HINT, isSecretHeader, isSecretLongFlag, isSecretName } from './secret-names';

// Each rule below needs one of these (case-insensitively), so text without any comes back unchanged:
// one scan instead of a dozen for the argv elements and record fields of every finding.
const MAY_HOLD_SECRET =
  /pass|pwd|secret|token|key|auth|cookie|session|credential|bearer|eyJ|AKIA|ASIA|hv[sbr]\.|gh[pousr]_|github_pat|glpat-|xox[abprs]-|PRIVATE|%[0-9A-Fa-f]{2}|:\/\/[^\s/]*@/i;

const SHAPES: { re: RegExp; to: string }[] = [
  // JWTs, also cut short (PROCTITLE stops at 128 bytes): every JWT starts with base64url('{"') = eyJ.
  { re: /eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}/g, to: REDACTED },
  // A key id is 20 characters; one followed by more letters is still a key id with text glued on.
  { re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])/g, to: REDACTED },
  { re: /\bhv[sbr]\.[A-Za-z0-9_-]{20,}/g, to: REDACTED },
  { re: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,})/g, to: REDACTED },
  // A bearer credential outside an Authorization header (--header=Bearer X, "Bearer X" in a config).
  { re: /(\bbearer\s+)(?!\$|\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi, to: `$1${REDACTED}` },
];

// `Name:` of a `Name: value` pair (headers, YAML). The name starts where no name character precedes
// it; the value (up to the end of the line or a quote) is looked for only after a secret name.
const NAMED_COLON = /(?<![A-Za-z0-9_-])([A-Za-z][A-Za-z0-9_-]{0,127})([ \t]*:[ \t]*)/g;
// NAME=value, name%3Dvalue, --flag=value (the last also done by argv; here for free text).
const NAMED_EQ = /(?<![A-Za-z0-9_.-])(-{0,2}[A-Za-z_][A-Za-z0-9_.-]{0,127})(=|%3[Dd])([^\s&'",;]*)/g;
// "key": "value" in JSON text (docker config.json auth, "password": "..."), and the same escaped as a
// string inside JSON (\"auth\":\"X\", \\\"auth\\\":...): the quote is any run of backslashes then ".
// An escaped value runs to the first escaped quote; a value never closed (cut text) runs to the end.
const NAMED_JSON = /"([A-Za-z0-9_.-]{1,128})"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
const NAMED_JSON_ESCAPED = /(?<!\\)(\\+")([A-Za-z0-9_.-]{1,128})\\+"(\s*:\s*)(\\+")((?:[^"\\]|\\+[^"\\])*)/g;
// A JSON string array holding a secret long flag and its value: "--token","X" (plain or escaped).
const JSON_FLAG_PAIR = /(?<!\\)(\\*")(--[A-Za-z][A-Za-z0-9_-]{0,127})\\*"(\s*,\s*)(\\*")((?:[^"\\]|\\+[^"\\])*)/g;
// scheme://user:password@ (userinfo in any URL: git, postgres, redis, https).
const URL_USERINFO = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^/\s:@]*:)([^/\s@]+)@/g;
const OPENSSL_PASS = /(-pass(?:in|out)?\s+pass:)(\S+)/g;

const AUTH_SCHEME = /^(?:bearer|basic|token|digest|negotiate|aws4-hmac-sha256)\s+/i;

/** Values that are references, not the secret: $VAR, $(cmd), already redacted. */
function isReference(v: string): boolean {
  return v === '' || v.startsWith('$') || v.startsWith(REDACTED);
}

/** The value of a `Name: value` pair: what follows the separator up to a line end or a quote. */
function valueEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x0d || c === 0x22 || c === 0x27) return i;
  }
  return s.length;
}

function redactColonValue(name: string, sep: string, value: string): string | null {
  if (!isSecretHeader(name) || isReference(value.trim())) return null;
  const scheme = AUTH_SCHEME.exec(value);
  if (scheme) {
    const rest = value.slice(scheme[0].length);
    return isReference(rest) ? null : `${name}${sep}${scheme[0]}${REDACTED}`;
  }
  return `${name}${sep}${REDACTED}`;
}

/**
 * `Name: value` pairs, left to right. Only a secret name has its value looked at, and a secret value
 * is consumed whole; so a header later on the same line (`q=curl -H X-Auth-Token: X` after `https:`)
 * is still seen, and no position is scanned more than a bounded number of times.
 */
function redactNamedColons(s: string): string {
  let out = '';
  let last = 0;
  NAMED_COLON.lastIndex = 0;
  for (let m = NAMED_COLON.exec(s); m !== null; m = NAMED_COLON.exec(s)) {
    const [head, name, sep] = m as unknown as [string, string, string];
    if (!isSecretHeader(name)) continue;
    const from = m.index + head.length;
    const end = valueEnd(s, from);
    const red = redactColonValue(name, sep, s.slice(from, end));
    if (red === null) continue;
    out += s.slice(last, m.index) + red;
    last = end;
    NAMED_COLON.lastIndex = end;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** PEM private key bodies, BEGIN to END (or to the end of a cut text); one pass, output built once. */
function redactPem(s: string): string {
  let out = '';
  let last = 0;
  let from = 0;
  for (;;) {
    const begin = s.indexOf('-----BEGIN ', from);
    if (begin < 0) break;
    const headEnd = s.indexOf('-----', begin + 11);
    if (headEnd < 0) break;
    const bodyStart = headEnd + 5;
    from = bodyStart;
    if (!s.slice(begin + 11, headEnd).includes('PRIVATE KEY')) continue;
    const end = s.indexOf('-----END', bodyStart);
    const stop = end < 0 ? s.length : end;
    out += `${s.slice(last, bodyStart)}${REDACTED}`;
    last = stop;
    if (end < 0) break;
    from = stop;
  }
  return last === 0 ? s : out + s.slice(last);
}

function redactLayer(s: string): string {
  let out = s;
  for (const p of SHAPES) {
    p.re.lastIndex = 0;
    out = out.replace(p.re, p.to);
  }
  if (out.includes('PRIVATE KEY')) out = redactPem(out);
  if (out.includes(':')) {
    out = redactNamedColons(out);
    if (out.includes('@')) out = out.replace(URL_USERINFO, (all, head: string, pw: string) => (isReference(pw) ? all : `${head}${REDACTED}@`));
  }
  if (out.includes('=') || out.includes('%3')) {
    out = out.replace(NAMED_EQ, (all, name: string, eq: string, value: string) => (isSecretName(name) && !isReference(value) ? `${name}${eq}${REDACTED}` : all));
  }
  if (out.includes('"')) {
    out = out.replace(NAMED_JSON, (all, name: string, sep: string, value: string) => (isSecretName(name) && !isReference(value) ? `"${name}"${sep}"${REDACTED}"` : all));
    if (out.includes('\\')) {
      out = out.replace(NAMED_JSON_ESCAPED, (all, q1: string, name: string, sep: string, q2: string, value: string) =>
        isSecretName(name) && !isReference(value) ? `${q1}${name}${q1}${sep}${q2}${REDACTED}` : all,
      );
    }
    if (out.includes('--')) {
      out = out.replace(JSON_FLAG_PAIR, (all, q1: string, flag: string, sep: string, q2: string, value: string) =>
        isSecretLongFlag(flag) && !isReference(value) ? `${q1}${flag}${q1}${sep}${q2}${REDACTED}` : all,
      );
    }
  }
  if (out.includes('pass:')) out = out.replace(OPENSSL_PASS, `$1${REDACTED}`);
  return out;
}

/** Percent-decoding that never throws: a malformed or non-UTF-8 sequence decodes byte-wise. */
function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

const WORD = /\S+/g;

/** Command text: words walked as argv (quotes stripped for classification, kept in the output). */
function redactCommandText(s: string): string {
  const words: { start: number; end: number; lead: string; trail: string; core: string }[] = [];
  WORD.lastIndex = 0;
  for (let m = WORD.exec(s); m !== null; m = WORD.exec(s)) {
    const w = m[0];
    const lead = /^['"(]*/.exec(w)?.[0] ?? '';
    const trail = w.length > lead.length ? (/['");&|]*$/.exec(w.slice(lead.length))?.[0] ?? '') : '';
    words.push({ start: m.index, end: m.index + w.length, lead, trail, core: w.slice(lead.length, w.length - trail.length) });
  }
  if (words.length < 2) return s;
  // Each `;`/`&&`/`|` starts a new command: argv0 of each segment decides its short flags.
  let out = '';
  let last = 0;
  let seg: typeof words = [];
  const flush = (): void => {
    if (seg.length === 0) return;
    const red = redactArgvWith(
      seg.map((w) => w.core),
      (x) => x,
    );
    seg.forEach((w, k) => {
      out += s.slice(last, w.start) + w.lead + (red[k] as string) + w.trail;
      last = w.end;
    });
    seg = [];
  };
  for (const w of words) {
    seg.push(w);
    if (/[;&|]$/.test(w.trail) || w.core === '&&' || w.core === '||' || w.core === '|') flush();
  }
  flush();
  return out + s.slice(last);
}

const MAX_DECODE_LAYERS = 3;

const MAX_JSON_CHARS = 1 << 20;

/** Text that is a JSON object or array is redacted as a structure (string arrays as argv). */
function redactJsonText(s: string): string | null {
  const t = s.trimStart();
  if (!(t.startsWith('{') || t.startsWith('[')) || s.length > MAX_JSON_CHARS) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const red = JSON.stringify(redactJsonValue(parsed, redactText));
  return red === JSON.stringify(parsed) ? s : red;
}

/** Redacts one piece of text. Idempotent. */
export function redactText(s: string): string {
  const asJson = redactJsonText(s);
  if (asJson !== null) return asJson;
  const hasSpace = /\s/.test(s);
  const hint = MAY_HOLD_SECRET.test(s);
  if (!hint && !(hasSpace && PROGRAM_HINT.test(s))) return s;
  let out = hint ? redactLayer(s) : s;
  if (hasSpace) out = redactCommandText(out);
  // Encoded layers: scan the decoded text; keep the redacted decoded text only when it differs.
  let cur = out;
  // includes('%') first: a scan for one character, where the regex tried every position (0.8 ms a 1.2 MB argv).
  for (let layer = 0; layer < MAX_DECODE_LAYERS && cur.includes('%') && /%[0-9A-Fa-f]{2}/.test(cur); layer++) {
    const decoded = percentDecode(cur.replace(/\+/g, ' '));
    if (decoded === cur) break;
    const red = redactText(decoded);
    if (red !== decoded) return red;
    cur = decoded;
  }
  return out;
}

// Cut text: the start of a secret whose end is past the cut. Each is tried on the text's last part only
// (the last run without whitespace, or from the last quote), so the work is one pass over the text.
const CUT_URL_USERINFO = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^/\s:@]*:)([^/\s@]+)$/;
const CUT_JSON_VALUE = /"([A-Za-z0-9_.-]{1,128})"(\s*:\s*)"((?:[^"\\]|\\.)*)$/;
const CUT_TOKEN = /^(?:(?:AKIA|ASIA)[0-9A-Z]{0,16}|hv[sbr]\.[A-Za-z0-9_-]*|(?:gh[pousr]_|github_pat_|glpat-|xox[abprs]-)[A-Za-z0-9_-]*|eyJ[A-Za-z0-9_.-]*)$/;
/** [A-Za-z0-9_.-] by character code. */
function isTokenCode(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x2d;
}

/** Not what /\s/ matches, by character code (the regex on a one-character string per character cost ~30 ns each). */
function isNotSpaceCode(c: number): boolean {
  if (c > 0x20 && c < 0x7f) return true;
  return !(
    c === 0x20 ||
    (c >= 0x09 && c <= 0x0d) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

function lastRun(s: string, inRun: (c: number) => boolean): number {
  let i = s.length;
  while (i > 0 && inRun(s.charCodeAt(i - 1))) i--;
  return i;
}

/**
 * Redacts a text known to be cut at its end (an argument's window, a PROCTITLE at the kernel's 128
 * bytes): the text rules, then what can only be the start of a secret — `scheme://user:pass` without
 * its `@`, `"auth": "X` without its closing quote, the first characters of a key or token shape.
 */
export function redactCutText(s: string): string {
  let out = redactText(s);
  // A URL's userinfo needs a scheme: without `://` neither the last word is looked for nor the regex
  // run (it tries every start in the word, ~8 ns a character).
  if (out.includes('://')) {
    const wordAt = lastRun(out, isNotSpaceCode);
    const url = CUT_URL_USERINFO.exec(out.slice(wordAt));
    if (url && !isReference(url[2] as string)) out = `${out.slice(0, wordAt + url.index)}${url[1] as string}${REDACTED}`;
  }
  // An unclosed `"name": "value`: its value opens at the last quote, its name is between the two before.
  const open = out.lastIndexOf('"');
  const nameOpen = open > 0 ? out.lastIndexOf('"', out.lastIndexOf('"', open - 1) - 1) : -1;
  if (nameOpen >= 0) {
    const json = CUT_JSON_VALUE.exec(out.slice(nameOpen));
    if (json && json.index === 0 && isSecretName(json[1] as string) && !isReference(json[3] as string)) {
      out = `${out.slice(0, nameOpen)}"${json[1] as string}"${json[2] as string}"${REDACTED}`;
    }
  }
  const tokenAt = lastRun(out, isTokenCode);
  if (tokenAt < out.length && CUT_TOKEN.test(out.slice(tokenAt))) out = `${out.slice(0, tokenAt)}${REDACTED}`;
  return out;
}
