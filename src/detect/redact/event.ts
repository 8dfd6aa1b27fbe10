/**
 * A whole AuditEvent redacted for printing (`credwatch replay --events`): the debugging view of an
 * event is stdout too, so it follows the evidence rules — argv by structure, the title as argv, every
 * attacker-written string through the text rules, raw records re-rendered (see ../redact.ts).
 */
import type { AuditEvent } from '../../audit/event';
import { redactRecords, redactText } from '../redact';
import { redactArgvWith } from './argv';

/**
 * redactText is a pure function of its input, and a log repeats the same comm, exe, cwd and paths
 * over and over: remember recent short results (bounded: cleared when full) so `replay --events`
 * scans each distinct string once. Only this per-field printing path uses it.
 */
const MEMO_MAX_ENTRIES = 4096;
const MEMO_MAX_CHARS = 256;
const memo = new Map<string, string>();

function redactMemo(s: string): string {
  if (s.length > MEMO_MAX_CHARS) return redactText(s);
  let red = memo.get(s);
  if (red === undefined) {
    red = redactText(s);
    if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
    memo.set(s, red);
  }
  return red;
}

function redactField(s: string | null): string | null {
  return s === null ? null : redactMemo(s);
}

export interface RedactEventOptions {
  /**
   * Redact (re-render) the raw records too. Default true. `replay --events` without `--records`
   * drops them from the output, and re-rendering every record's text was most of its cost.
   * Without it the result has `records: []`: nothing unredacted is ever returned.
   */
  records?: boolean;
}

export function redactAuditEvent(ev: AuditEvent, opts: RedactEventOptions = {}): AuditEvent {
  const p = ev.process;
  // redactArgv(argv) with the remembered text rules: the argv structure is walked every time.
  const argv = p && p.argv ? redactArgvWith(p.argv, redactMemo) : null;
  return {
    ...ev,
    process: p
      ? {
          ...p,
          comm: redactField(p.comm),
          exe: redactField(p.exe),
          cwd: redactField(p.cwd),
          argv,
          // The decoded title joins arguments with spaces, losing their boundaries: when the argv is
          // known and redaction changed it, the title is rendered from the redacted argv (at most its length),
          // else redacted as words.
          title: p.title === null ? null : argv && argv.some((a, i) => a !== p.argv?.[i]) ? argv.join(' ').slice(0, p.title.length) : redactField(p.title),
        }
      : null,
    paths: ev.paths.map((x) => ({ ...x, name: redactField(x.name) })),
    sockaddr: ev.sockaddr ? { ...ev.sockaddr, path: redactField(ev.sockaddr.path) } : null,
    ...(ev.problems ? { problems: ev.problems.map((x) => redactField(x) as string) } : {}),
    records: opts.records === false ? [] : redactRecords(ev.records, argv, { argvRedacted: true }),
  };
}
