/**
 * Redaction of secrets before anything leaves the detection engine. The agent watches credential
 * theft; it must not become the leak: a `curl -H "Authorization: Bearer eyJ..."` seen in an EXECVE
 * record would otherwise be stored and shipped verbatim.
 *
 * By construction, not by a list of places: argv is redacted by structure (./redact/argv: which flag
 * takes a secret, for which program), text by decoding layers then rules (./redact/text), and raw
 * records are re-rendered from the redacted values, never passed through:
 *  - EXECVE records (one or many, split `aN[k]=` chunks included) become one EXECVE record rendered
 *    from the redacted argv; without a decoded argv they are left out;
 *  - every other record is parsed into fields; quoted values go through the text rules, hex values
 *    (the kernel hex-encodes a value with a space, quote or control byte; PROCTITLE always) are
 *    decoded, redacted and re-encoded (PROCTITLE per NUL-separated argument, as argv);
 *  - a PROCTITLE record of an event whose argv is known is rendered from the redacted argv (its
 *    first bytes, as many as the kernel wrote): the kernel cuts the title at 128 bytes, which can
 *    leave a secret without the context that names it (`https://u:SECRET` before its `@`). Without
 *    an argv it is redacted as argv, the last argument as cut text when the title is at that cap;
 *  - what is left outside key=value form (USER msg='...', ENRICHED tails) gets the text rules.
 */
import { decodeSurrogateEscaped, encodeSurrogateEscaped } from '../audit/bytes';
import { redactArgvWith } from './redact/argv';
import { REDACTED } from './redact/marker';
import { redactCutText, redactText } from './redact/text';

export { REDACTED, redactText };

export function redactNullable(s: string | null): string | null {
  return s === null ? null : redactText(s);
}

/** Redacts argv: secret flags take their value (attached or the next argument); every argument gets the text rules. */
export function redactArgv(argv: readonly string[] | null): string[] | null {
  if (!argv) return null;
  return redactArgvWith(argv, redactText);
}

const HEX_VALUE = /^(?:[0-9A-Fa-f]{2})+$/;
// key=value where value is "quoted" or a bare token; keys like a1[0] and a1_len included.
const FIELD = /(^|\s)([A-Za-z0-9_[\]]+)=("[^"]*"|[^\s"]+)/g;

/** The kernel's PROCTITLE cap (MAX_PROCTITLE_AUDIT_LEN): a title this long was cut. */
const PROCTITLE_MAX = 128;

function redactTitleArgv(bytes: Buffer): string {
  const args = decodeSurrogateEscaped(bytes).split('\0');
  const cutAt = bytes.length >= PROCTITLE_MAX ? args.length - 1 : -1;
  return redactArgvWith(args, (s, i) => (i === cutAt ? redactCutText(s) : redactText(s))).join('\0');
}

function redactHexValue(hex: string, key: string): string {
  const bytes = Buffer.from(hex, 'hex');
  const text = decodeSurrogateEscaped(bytes);
  // PROCTITLE separates argv with NUL: redact it as argv, so `--token` and its value stay paired.
  const red = key === 'proctitle' ? redactTitleArgv(bytes) : redactText(text);
  if (red === text) return hex;
  return encodeSurrogateEscaped(red).toString('hex').toUpperCase();
}

/** Redacts a raw (non-EXECVE) record's text field by field, looking inside hex-encoded values too. */
export function redactRecordText(text: string): string {
  const fields = text.replace(FIELD, (all, lead: string, key: string, value: string) => {
    if (value.startsWith('"')) {
      const inner = value.slice(1, -1);
      const red = redactText(inner);
      return red === inner ? all : `${lead}${key}=${renderArg(red)}`;
    }
    if (HEX_VALUE.test(value)) {
      const red = redactHexValue(value, key);
      return red === value ? all : `${lead}${key}=${red}`;
    }
    return all;
  });
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
 * Redacts an event's raw records for evidence. `argv` is the event's argv, redacted here unless the
 * caller says it already is (`argvRedacted`; the caller may also have bounded it): the EXECVE records are replaced
 * by one rendered from it, or dropped when it is null (an incomplete event: its raw EXECVE text is
 * never kept).
 */
export function redactRecords(records: readonly { type: string; text: string }[], argv: readonly string[] | null, opts: { argvRedacted?: boolean } = {}): { type: string; text: string }[] {
  const out: { type: string; text: string }[] = [];
  // A caller holding the redacted argv (event-redaction.ts: findingArgv) says so, and it is not walked
  // again (0.25 ms for a 1.2 MB argv's bounded windows); any other argv is redacted here.
  const shown = argv === null || opts.argvRedacted === true ? argv : redactArgv(argv);
  let execveDone = false;
  for (const r of records) {
    if (r.type === 'EXECVE') {
      if (execveDone || argv === null) continue;
      execveDone = true;
      const cut = r.text.indexOf('argc=');
      const prefix = cut >= 0 ? r.text.slice(0, cut) : (/^[^)]*\):\s*/.exec(r.text)?.[0] ?? '');
      // Redacting again is a no-op for a redacted argv, and makes a raw one safe.
      out.push({ type: 'EXECVE', text: renderExecve(prefix, shown ?? []) });
      continue;
    }
    if (r.type === 'PROCTITLE' && shown !== null) {
      const title = renderProctitle(r.text, shown);
      if (title !== null) {
        out.push({ type: r.type, text: title });
        continue;
      }
    }
    out.push({ type: r.type, text: redactRecordText(r.text) });
  }
  return out;
}

const PROCTITLE_FIELD = /(^|\s)proctitle=("[^"]*"|[0-9A-Fa-f]+)(?=\s|$)/;

/**
 * A PROCTITLE record re-rendered from the redacted argv: its first N bytes NUL-joined, N the length
 * the kernel wrote. Null when the record has no proctitle field we can read.
 */
function renderProctitle(text: string, argv: readonly string[]): string | null {
  const m = PROCTITLE_FIELD.exec(text);
  if (!m) return null;
  const v = m[2] as string;
  const n = v.startsWith('"') ? Buffer.byteLength(v.slice(1, -1), 'latin1') : v.length >> 1;
  const bytes = encodeSurrogateEscaped(argv.join('\0')).subarray(0, n);
  const shown = /^[\x21\x23-\x7e]*$/.test(bytes.toString('latin1')) ? `"${bytes.toString('latin1')}"` : bytes.toString('hex').toUpperCase();
  return `${text.slice(0, m.index)}${m[1] as string}proctitle=${shown}${text.slice(m.index + m[0].length)}`;
}
