/**
 * Bounds on what a finding carries from a process's argv. A process can pass up to 2 MiB of
 * arguments (128 KiB each); a finding is stored, shipped, rendered and logged, so a hostile argv must
 * not make each of those carry megabytes. Each argument keeps its first MAX_ARG_CHARS characters and
 * gets a `…[+N bytes]` marker saying how much was cut; past MAX_ARGS arguments one marker element
 * `…[+N args]` stands for the rest.
 *
 * redactBoundedArgv does both jobs in one, with bounded work: only what can be kept is redacted. Each
 * kept argument is looked at through a window (what is kept plus WINDOW_MARGIN characters of context
 * after it, so a URL's `@` or a JSON value's closing quote just past the cut is still seen); a window
 * that ends inside the argument is redacted as cut text (redactCutText: the start of a secret whose
 * end is past the cut goes too). All windows of one argv together see at most ARGV_WINDOW_BUDGET
 * characters; past it each argument is kept to MIN_ARG_WINDOW characters. So a 2 MiB argv costs the
 * same as a 40 KiB one, and a secret that straddles a cut is replaced whole or from its start.
 */
import { encodeSurrogateEscaped } from '../audit/bytes';
import { redactArgvWith } from './redact/argv';
import { redactCutText, redactText } from './redact/text';

export const MAX_ARG_CHARS = 4096;
export const MAX_ARGS = 256;
/** Context looked at past an argument's cut. */
export const WINDOW_MARGIN = 1024;
/** Characters all windows of one argv may look at together. */
export const ARGV_WINDOW_BUDGET = 32 * 1024;
/** What an argument keeps once the budget is spent. */
export const MIN_ARG_WINDOW = 128;

const SURROGATE = /[\ud800-\udfff]/;
/** The marker a cut argument ends in (here, and in the process table's copies). */
const CUT_MARKER = /…\[\+\d+ bytes\]$/;

/** Bytes the kernel gave for `s`: UTF-8 length, except that a surrogate escape stands for one byte. */
function bytesOf(s: string): number {
  return SURROGATE.test(s) ? encodeSurrogateEscaped(s).length : Buffer.byteLength(s, 'utf8');
}

/** `s` cut to at most `n` characters, never inside a surrogate pair. */
function head(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

function boundArg(arg: string, maxChars: number): string {
  if (arg.length <= maxChars) return arg;
  let cut = maxChars;
  // Do not split a surrogate pair.
  const c = arg.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  const droppedBytes = encodeSurrogateEscaped(arg.slice(cut)).length;
  return `${arg.slice(0, cut)}…[+${droppedBytes} bytes]`;
}

/** argv with every argument at most `maxChars` (+ marker) and at most `maxArgs` (+ one marker) entries. */
export function boundArgv(argv: readonly string[] | null, maxChars = MAX_ARG_CHARS, maxArgs = MAX_ARGS): string[] | null {
  if (argv === null) return null;
  let changed = argv.length > maxArgs;
  for (let i = 0; i < argv.length && !changed; i++) if ((argv[i] as string).length > maxChars) changed = true;
  if (!changed) return argv as string[];
  const n = Math.min(argv.length, maxArgs);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = boundArg(argv[i] as string, maxChars);
  if (argv.length > maxArgs) out.push(`…[+${argv.length - maxArgs} args]`);
  return out;
}

/**
 * The redacted and bounded argv a finding carries: at most `maxArgs` arguments (+ one `…[+N args]`
 * marker), each at most `maxChars` characters + `…[+N bytes]` (N: bytes of the original argument not
 * kept). The arguments past `maxArgs` are never looked at: redaction walks argv forwards only.
 * `lengths`: the exact byte length of each argument when the event builder cut them
 * (src/audit/argv-bound.ts keeps more of each than is looked at here, so only the count needs it).
 */
export function redactBoundedArgv(argv: readonly string[] | null, lengths?: readonly number[], maxChars = MAX_ARG_CHARS, maxArgs = MAX_ARGS): string[] | null {
  if (argv === null) return null;
  const n = Math.min(argv.length, maxArgs);
  const windows = new Array<string>(n);
  const keep = new Array<number>(n);
  const cut = new Array<boolean>(n);
  let budget = ARGV_WINDOW_BUDGET;
  for (let i = 0; i < n; i++) {
    const a = argv[i] as string;
    const room = Math.max(MIN_ARG_WINDOW, budget);
    const w = head(a, Math.min(maxChars + WINDOW_MARGIN, room));
    windows[i] = w;
    keep[i] = Math.min(maxChars, room);
    cut[i] = w.length < a.length;
    budget -= w.length;
  }
  // An argument the process table already cut (its head, then `…[+N bytes]`) is cut text too: the
  // marker is kept aside, the head redacted as cut, the marker put back.
  const marker = new Array<string>(n).fill('');
  for (let i = 0; i < n; i++) {
    const m = CUT_MARKER.exec(windows[i] as string);
    if (m && !cut[i]) {
      marker[i] = m[0];
      windows[i] = (windows[i] as string).slice(0, m.index);
      cut[i] = true;
    }
  }
  const red = redactArgvWith(windows, (s, i) => (cut[i] ? redactCutText(s) : redactText(s)));
  for (let i = 0; i < n; i++) if (marker[i]) red[i] = `${red[i] as string}${marker[i] as string}`;
  const out = red.map((r, i) => {
    const a = argv[i] as string;
    if (!cut[i] && r.length <= (keep[i] as number)) return r;
    // Already cut by the process table, and its head fits: the head (redacted) and its own marker.
    if (marker[i] && r.length - (marker[i] as string).length <= (keep[i] as number)) return r;
    const kept = head(r, keep[i] as number);
    // An argument the builder cut (its head, marker, tail) counts from its exact length.
    return `${kept}…[+${Math.max(0, (lengths?.[i] ?? bytesOf(a)) - bytesOf(kept))} bytes]`;
  });
  if (argv.length > maxArgs) out.push(`…[+${argv.length - maxArgs} args]`);
  return out;
}
