/**
 * Repeat collapse, the JavaScript half of native/repeat_cache.h. The reader thread announces a passed
 * exec/connect event as a template (`REPEAT_TEMPLATE_TYPE`: id and header, its records follow), and
 * replaces a later event whose records equal the template's but for the audit stamp and the SYSCALL
 * pid and arguments by a repeat note (`REPEAT_NOTE_TYPE`: template id, header, pid, record types,
 * a0..a3).
 *
 * The note carries exactly what the reader masked, so the records can always be rebuilt here from the
 * template's (`rebuildRecords`) when JavaScript cannot prove the repeat decides the same as its template
 * (src/detect/repeat-outcomes.ts): the event then takes the full path, as if it had come whole.
 */
import type { RawRecord } from '../audit/event';
import { auditStamp, readAuditStamp } from '../audit/record';

export const REPEAT_TEMPLATE_TYPE = 0x10003;
export const REPEAT_NOTE_TYPE = 0x10004;

/**
 * Templates remembered here. The reader keeps 64 (RepeatCache::kMaxTemplates) and touches one on every
 * announcement and note, as this side does, in the same order: the reader's set is always among this
 * side's twice as many most recently touched, so a note never names a template this side forgot
 * (unless a batch was dropped on the way, which is counted as a drop already).
 */
export const REPEAT_TEMPLATES_KEPT = 128;

export interface RepeatTemplateAnnouncement {
  template: number;
  /** `audit(SEC.MS:SERIAL): ` of the records that follow. */
  header: string;
  serial: number;
}

export interface RepeatNote {
  template: number;
  header: string;
  serial: number;
  sec: number;
  ms: number;
  /** "SEC.MS:SERIAL", the event id the full path would give it. */
  id: string;
  timeMs: number;
  pid: number;
  recordTypes: number[];
  /** The SYSCALL record's a0..a3 values (hex text), masked by the reader like the pid. */
  args: string[];
}

/**
 * The reader's header of an event, `audit(SEC.MMM:SERIAL): ` (ParseRecordHeader's bodyOffset: three
 * millisecond digits, at most one space), read from `from` by the records' own stamp reader; the stamp
 * is left in auditStamp. The header must end exactly at `to`.
 */
function readHeader(text: string, from: number, to: number): boolean {
  if (!text.startsWith('audit(', from) || readAuditStamp(text, from + 6) !== null || auditStamp.fractionDigits !== 3) return false;
  const close = auditStamp.end;
  if (text.charCodeAt(close + 1) !== 58 /* : */) return false;
  const end = close + 2 + (text.charCodeAt(close + 2) === 32 ? 1 : 0);
  return end === to && Number.isSafeInteger(auditStamp.sec) && Number.isSafeInteger(auditStamp.serial);
}

function positiveInt(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,15}$/.test(s)) return null;
  return Number(s);
}

/** Null for text this version does not understand (counted by the caller). */
export function parseRepeatTemplate(text: string): RepeatTemplateAnnouncement | null {
  const f = text.split('\0');
  const template = positiveInt(f[0]);
  if (template === null || f.length !== 2 || !readHeader(f[1]!, 0, f[1]!.length)) return null;
  return { template, header: f[1]!, serial: auditStamp.serial };
}

/** Digits of `s` from `from` to `to` as a number, or -1 (empty, not digits, or over 15 digits). */
function digitsAt(s: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function isHexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** The four comma-separated a0..a3 from `from` to the end (each 1-16 hex digits; read by char code: one per storm event), or null. */
function hexArgs(text: string, from: number): string[] | null {
  const args: string[] = [];
  let start = from;
  for (let i = from; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 44;
    if (c !== 44) {
      if (!isHexDigit(c) || i - start >= 16) return null;
      continue;
    }
    if (i === start || args.length === 4) return null;
    args.push(text.slice(start, i));
    start = i + 1;
  }
  return args.length === 4 ? args : null;
}

/**
 * Null for text this version does not understand (counted by the caller). One per storm event: read
 * with indexOf and char codes, no split or regex.
 */
export function parseRepeatNote(text: string): RepeatNote | null {
  const a = text.indexOf('\0');
  const b = a < 0 ? -1 : text.indexOf('\0', a + 1);
  const c = b < 0 ? -1 : text.indexOf('\0', b + 1);
  const d = c < 0 ? -1 : text.indexOf('\0', c + 1);
  if (d < 0 || text.indexOf('\0', d + 1) >= 0) return null;
  const args = hexArgs(text, d + 1);
  if (args === null) return null;
  const template = digitsAt(text, 0, a);
  const pid = digitsAt(text, b + 1, c);
  // The header: audit(SEC.MMM:SERIAL): with an optional space.
  const h = a + 1;
  if (template < 0 || pid < 0 || !readHeader(text, h, b)) return null;
  const { sec, ms, serial } = auditStamp;
  const close = auditStamp.end;
  const recordTypes: number[] = [];
  for (let from = c + 1; ; ) {
    const comma = text.indexOf(',', from);
    const end = comma < 0 || comma > d ? d : comma;
    const t = digitsAt(text, from, end);
    if (t < 0) return null;
    recordTypes.push(t);
    if (end === d) break;
    from = comma + 1;
  }
  return { template, header: text.slice(h, b), serial, sec, ms, id: text.slice(h + 6, close), timeMs: sec * 1000 + ms, pid, recordTypes, args };
}

/** The SYSCALL fields the reader masks, in order, each searched after the previous one's value. */
const MASKED = [' a0=', ' a1=', ' a2=', ' a3=', ' pid='];

/** Length of a netlink record's `audit(...): ` header, as native ParseRecordHeader() takes it. */
function headerLength(text: string): number {
  const close = text.indexOf(')');
  if (close < 0 || text.charCodeAt(close + 1) !== 58 /* : */) return -1;
  return text.charCodeAt(close + 2) === 32 ? close + 3 : close + 2;
}

/**
 * The records of the event a note stands for: the template's records with the note's header on each and
 * its a0..a3 and pid in the SYSCALL record (each the first " name=" after the previous, as the reader
 * masked them). Null when the
 * template's records are not of the shape the reader signs (then the note could not have matched).
 */
export function rebuildRecords(template: readonly RawRecord[], note: RepeatNote): RawRecord[] | null {
  if (template.length !== note.recordTypes.length) return null;
  const out: RawRecord[] = new Array<RawRecord>(template.length);
  for (let i = 0; i < template.length; i++) {
    const rec = template[i]!;
    if (rec.type !== note.recordTypes[i]) return null;
    const h = headerLength(rec.text);
    if (h < 0) return null;
    let text = note.header + rec.text.slice(h);
    if (i === 0) {
      const values = [...note.args, String(note.pid)];
      let from = 0;
      for (let m = 0; m < MASKED.length; m++) {
        const at = text.indexOf(MASKED[m]!, from);
        if (at < 0) return null;
        const start = at + MASKED[m]!.length;
        const end = text.indexOf(' ', start);
        if (end < 0) return null;
        text = text.slice(0, start) + values[m]! + text.slice(end);
        from = start + values[m]!.length;
      }
    }
    out[i] = { type: rec.type, text };
  }
  return out;
}

/**
 * The templates' records, least recently touched dropped first (see REPEAT_TEMPLATES_KEPT). An
 * announcement reserves the id; the records are attached when the event they belong to is complete.
 */
export class RepeatTemplates {
  private readonly byId = new Map<number, RawRecord[] | null>();
  /** serial -> template id, for events announced whose records are still being reassembled. */
  private readonly pendingBySerial = new Map<number, number>();

  constructor(private readonly kept = REPEAT_TEMPLATES_KEPT) {}

  announce(a: RepeatTemplateAnnouncement): void {
    this.touch(a.template, null);
    this.pendingBySerial.set(a.serial, a.template);
    // An announced event that never completes (cut short, lost) must not pin its serial for ever.
    if (this.pendingBySerial.size > this.kept) this.pendingBySerial.delete(this.pendingBySerial.keys().next().value as number);
  }

  /** The template an event of this serial was announced as (consumed), or null. */
  takeSerial(serial: number): number | null {
    const t = this.pendingBySerial.get(serial);
    if (t === undefined) return null;
    this.pendingBySerial.delete(serial);
    return t;
  }

  /** A rebuilt event is announced again under its template: its records come back to this id. */
  expect(serial: number, template: number): void {
    this.pendingBySerial.set(serial, template);
  }

  attach(template: number, records: readonly RawRecord[]): void {
    if (this.byId.has(template)) this.byId.set(template, records.map((r) => ({ type: r.type, text: r.text })));
  }

  /** The template's records (touching it), undefined when forgotten, null when they never came. */
  use(template: number): RawRecord[] | null | undefined {
    const r = this.byId.get(template);
    if (r === undefined) return undefined;
    this.touch(template, r);
    return r;
  }

  private touch(template: number, records: RawRecord[] | null): void {
    this.byId.delete(template);
    this.byId.set(template, records);
    if (this.byId.size > this.kept) this.byId.delete(this.byId.keys().next().value as number);
  }
}
