/**
 * A whole AuditEvent redacted for printing (`credwatch replay --events`): the debugging view of an
 * event is stdout too, so it follows the evidence rules — argv by structure, the title as argv, every
 * attacker-written string through the text rules, raw records re-rendered (see ../redact.ts).
 */
import type { AuditEvent } from '../../audit/event';
import { redactArgv, redactNullable, redactRecords } from '../redact';

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
  const argv = p ? redactArgv(p.argv) : null;
  return {
    ...ev,
    process: p
      ? {
          ...p,
          comm: redactNullable(p.comm),
          exe: redactNullable(p.exe),
          cwd: redactNullable(p.cwd),
          argv,
          // The decoded title joins arguments with spaces, losing their boundaries: when the argv is
          // known and redaction changed it, the title is rendered from the redacted argv (at most its length),
          // else redacted as words.
          title: p.title === null ? null : argv && argv.some((a, i) => a !== p.argv?.[i]) ? argv.join(' ').slice(0, p.title.length) : redactNullable(p.title),
        }
      : null,
    paths: ev.paths.map((x) => ({ ...x, name: redactNullable(x.name) })),
    sockaddr: ev.sockaddr ? { ...ev.sockaddr, path: redactNullable(ev.sockaddr.path) } : null,
    ...(ev.problems ? { problems: ev.problems.map((x) => redactNullable(x) as string) } : {}),
    records: opts.records === false ? [] : redactRecords(ev.records, argv),
  };
}
