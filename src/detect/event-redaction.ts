/**
 * The redacted parts of one event that every finding on it carries: the process's bounded, redacted
 * argv and the evidence records. Several rules firing on one event each build a finding (and the
 * incident key reads the argv too); each used to redact the same argv again: with a 1.2 MB argv that
 * was ~1.7 ms a time, three to five times an event. Computed once per event and served to that event
 * only: the memo is keyed by the EventView, which is built for one event and never reused.
 *
 * What is served is a fresh copy of the array each time, so no finding can change another's.
 */
import type { EventView } from '../enrich/event-view';
import { redactBoundedArgv } from './bound';
import { redactRecords } from './redact';

type Records = { type: string; text: string }[];

interface Memo {
  argv?: string[] | null;
  records?: Records;
}

const memos = new WeakMap<EventView, Memo>();

function memoOf(v: EventView): Memo {
  let m = memos.get(v);
  if (m === undefined) {
    m = {};
    memos.set(v, m);
  }
  return m;
}

function own(argv: readonly string[] | null): string[] | null {
  return argv === null ? null : argv.slice();
}

/**
 * The argv a finding shows for the event's process: the event's own (with the builder's exact
 * lengths), else the process table's; bounded and redacted (bound.ts).
 */
export function findingArgv(v: EventView): string[] | null {
  const m = memoOf(v);
  if (m.argv === undefined) m.argv = redactBoundedArgv(v.argv, v.argvLengths);
  return own(m.argv);
}

/**
 * The event's records as evidence (redact.ts): its EXECVE records rendered from the event's own argv
 * (the same bounded redaction as findingArgv), never the process table's.
 */
export function evidenceRecords(v: EventView): Records {
  const m = memoOf(v);
  if (m.records === undefined) {
    const argv = v.ev.process?.argv ? findingArgv(v) : null;
    m.records = redactRecords(v.ev.records, argv, { argvRedacted: true });
  }
  return m.records.map((r) => ({ ...r }));
}
