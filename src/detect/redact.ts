/**
 * Redaction of secrets before anything leaves the detection engine. The agent watches credential
 * theft; it must not become the leak: a `curl -H "Authorization: Bearer eyJ..."` seen in an EXECVE
 * record would otherwise be stored and shipped verbatim.
 *
 * Secrets hide in three encodings in audit evidence: plain text (quoted values, argv, titles), hex
 * (the kernel hex-encodes any value with a space, quote or control byte — a bearer header always is;
 * PROCTITLE is always hex with NUL separators), and argv split across EXECVE records (`a1[0]=`,
 * `a1[1]=`: a token can straddle two records, so those records are re-rendered from the decoded argv).
 */

import { decodeSurrogateEscaped, encodeSurrogateEscaped } from '../audit/bytes';

export const REDACTED = '[REDACTED]';

const SECRET_FLAGS = new Set(['--token', '--password', '--bearer-token', '--client-key-data', '--auth-token', '--secret']);

interface Pattern {
  re: RegExp;
  to: string;
}

// One set of patterns for every source (audit argv and records, Kubernetes audit evidence): URL-encoded
// forms (%20, %3D, +) appear in Kubernetes exec request URIs. `(?!\[REDACTED\])` keeps it idempotent.
const PATTERNS: Pattern[] = [
  // JWTs, also cut short (PROCTITLE stops at 128 bytes): every JWT starts with base64url('{"') = eyJ.
  { re: /eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}/g, to: REDACTED },
  // A shell substitution such as $(cat token) is not the secret itself: keep it as evidence.
  { re: /(authorization:\s*(?:bearer|basic|token)\s+)(?!\$|\[REDACTED\])[^\s'"]+/gi, to: `$1${REDACTED}` },
  { re: /(\bbearer(?:\s+|%20|\+))(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi, to: `$1${REDACTED}` },
  {
    re: /((?<![\w-])--?(?:token|password|passwd|bearer-token|client-key-data|auth-token|secret|client-secret)(?:=|%3D|\s+|\+))(?!\[REDACTED\])[^\s&'",;]+/gi,
    to: `$1${REDACTED}`,
  },
  { re: /(\b(?:password|passwd|secret|token|pwd|access_token|client_secret)(?:=|%3D))(?!\[REDACTED\])[^\s&'",;]+/gi, to: `$1${REDACTED}` },
];

// Every pattern above needs one of these words (case-insensitively a superset of each pattern's own
// literal), so text without any of them comes back unchanged: one scan instead of six regexes for the
// argv elements, record fields and titles of every finding (most hold no secret).
const MAY_HOLD_SECRET = /eyJ|authorization|bearer|token|passw|secret|pwd|key-data/i;

/** Redacts one piece of text. Idempotent. */
export function redactText(s: string): string {
  if (!MAY_HOLD_SECRET.test(s)) return s;
  let out = s;
  for (const p of PATTERNS) {
    p.re.lastIndex = 0;
    out = out.replace(p.re, p.to);
  }
  return out;
}

export function redactNullable(s: string | null): string | null {
  return s === null ? null : redactText(s);
}

/** Redacts argv element by element; the value after a bare `--token`/`--password` goes entirely. */
export function redactArgv(argv: readonly string[] | null): string[] | null {
  if (!argv) return null;
  const out = new Array<string>(argv.length);
  for (let i = 0; i < argv.length; i++) {
    const prev = i > 0 ? argv[i - 1] : undefined;
    out[i] = prev !== undefined && SECRET_FLAGS.has(prev) ? REDACTED : redactText(argv[i] as string);
  }
  return out;
}

const HEX_VALUE = /^(?:[0-9A-Fa-f]{2})+$/;
// key=value where value is "quoted" or a bare token; keys like a1[0] and a1_len included.
const FIELD = /(^|\s)([A-Za-z0-9_[\]]+)=("[^"]*"|[^\s"]+)/g;

function redactHexValue(hex: string, key: string): string {
  const text = decodeSurrogateEscaped(Buffer.from(hex, 'hex'));
  // PROCTITLE separates argv with NUL: redact per argument so one argument's flag is not joined
  // with the next argument's value.
  const parts = key === 'proctitle' ? text.split('\0') : [text];
  const red = key === 'proctitle' ? (redactArgv(parts) as string[]) : parts.map(redactText);
  let changed = false;
  for (let i = 0; i < parts.length; i++) if (parts[i] !== red[i]) changed = true;
  if (!changed) return hex;
  return encodeSurrogateEscaped(red.join('\0')).toString('hex').toUpperCase();
}

/** Redacts a raw record's text, looking inside hex-encoded values too. */
export function redactRecordText(text: string): string {
  const fields = text.replace(FIELD, (all, lead: string, key: string, value: string) => {
    if (value.startsWith('"')) {
      const inner = value.slice(1, -1);
      const red = redactText(inner);
      return red === inner ? all : `${lead}${key}="${red}"`;
    }
    if (value.length >= 16 && HEX_VALUE.test(value)) {
      const red = redactHexValue(value, key);
      return red === value ? all : `${lead}${key}=${red}`;
    }
    return all;
  });
  // Anything outside key=value form (USER msg='...', ENRICHED tails) gets the plain-text pass.
  return redactText(fields);
}

function renderArg(a: string): string {
  // The kernel's rule: hex when the value has a byte < 0x21 or > 0x7e or a double quote.
  return /^[\x21\x23-\x7e]*$/.test(a) ? `"${a}"` : encodeSurrogateEscaped(a).toString('hex').toUpperCase();
}

/** One EXECVE record text rendered from an (already redacted) argv, after the given stamp prefix. */
export function renderExecve(prefix: string, argv: readonly string[]): string {
  const parts = [`argc=${argv.length}`];
  argv.forEach((a, i) => parts.push(`a${i}=${renderArg(a)}`));
  return `${prefix}${parts.join(' ')}`;
}

/**
 * Redacts an event's raw records for evidence. EXECVE records that split an argument across
 * records (`aN[k]=`) are replaced by a single re-rendered EXECVE record built from the redacted argv.
 */
export function redactRecords(
  records: readonly { type: string; text: string }[],
  argv: readonly string[] | null,
): { type: string; text: string }[] {
  const split = argv !== null && records.some((r) => r.type === 'EXECVE' && /\sa\d+\[\d+\]=/.test(r.text));
  const out: { type: string; text: string }[] = [];
  let execveDone = false;
  for (const r of records) {
    if (split && r.type === 'EXECVE') {
      if (execveDone) continue;
      execveDone = true;
      const cut = r.text.indexOf('argc=');
      const prefix = cut >= 0 ? r.text.slice(0, cut) : '';
      out.push({ type: 'EXECVE', text: renderExecve(prefix, redactArgv(argv) ?? []) });
      continue;
    }
    out.push({ type: r.type, text: redactRecordText(r.text) });
  }
  return out;
}
