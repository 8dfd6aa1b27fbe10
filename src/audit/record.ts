/**
 * Parses one audit record, from either form:
 *   netlink payload:  `audit(1700000000.123:4567): k=v k="v" ...`       (type number given separately)
 *   auditd log line:  `[node=HOST ]type=NAME msg=audit(1700000000.123:4567): k=v ...`
 * The log line may carry the ENRICHED format's 0x1d separator followed by UPPERCASE interpreted
 * fields (`UID="root"`); those are kept apart (`enrichedStart`) so they never shadow raw fields.
 *
 * Parsing only finds the header (type, node, timestamp, serial) and the body's bounds. Fields are
 * read lazily by walking the body with a reusable FieldCursor; nothing is split eagerly. A malformed
 * record returns a RecordParseFailure (counted by the caller) instead of throwing.
 */
import type { RawRecord } from './event';
import { recordTypeName, recordTypeNumber } from './record-types';
import { hexToString } from './bytes';

export interface ParsedRecord {
  readonly failed: false;
  type: number;
  /** The name auditd wrote (`SYSCALL`), or the table name for the number; `UNKNOWN[n]` if unknown. */
  typeName: string;
  node: string | null;
  /** Seconds part of the audit timestamp. */
  sec: number;
  /** Milliseconds part (0..999). */
  ms: number;
  serial: number;
  /** "SEC.MS:SERIAL" exactly as written. */
  id: string;
  /** Original text (the whole log line, or the netlink payload). */
  text: string;
  /** Start of the `k=v` body in `text`. */
  bodyStart: number;
  /** End of the raw body (the 0x1d separator, or the end of the text). */
  bodyEnd: number;
  /** Start of the ENRICHED interpreted fields after 0x1d, or -1. */
  enrichedStart: number;
}

export interface RecordParseFailure {
  readonly failed: true;
  reason: string;
  text: string;
}

export type RecordParseResult = ParsedRecord | RecordParseFailure;

const AUDIT_OPEN = 'audit(';
const MAX_DATE_SECONDS = 8_640_000_000_000;

function fail(reason: string, text: string): RecordParseFailure {
  return { failed: true, reason, text };
}

/** What readAuditStamp() read last (one object, overwritten by each call: no allocation per record). */
export const auditStamp = { sec: 0, ms: 0, serial: 0, fractionDigits: 0, end: 0 };

/**
 * Reads `SECONDS.MILLIS:SERIAL)` from `pos` (just after `audit(`), digits only and without slicing, into
 * auditStamp (`end`: the position of the closing parenthesis). Null when it is one, else the reason it
 * is not. The one reader of a record stamp: parseRecord and the reader's repeat notes (native/repeat-note.ts).
 */
export function readAuditStamp(text: string, pos: number): string | null {
  let sec = 0;
  let digits = 0;
  let c = text.charCodeAt(pos);
  while (c >= 48 && c <= 57) {
    sec = sec * 10 + (c - 48);
    c = text.charCodeAt(++pos);
    digits++;
  }
  if (digits === 0 || c !== 46 /* . */) return 'bad audit timestamp seconds';
  // Past what a Date can hold (year 275760): a damaged line, and toISOString() would throw on it.
  if (sec > MAX_DATE_SECONDS) return 'audit timestamp out of range';
  c = text.charCodeAt(++pos);
  let ms = 0;
  digits = 0;
  let msDigits = 0;
  while (c >= 48 && c <= 57) {
    // Only the first three fractional digits are milliseconds; the kernel always prints three.
    if (msDigits < 3) {
      ms = ms * 10 + (c - 48);
      msDigits++;
    }
    c = text.charCodeAt(++pos);
    digits++;
  }
  if (digits === 0 || c !== 58 /* : */) return 'bad audit timestamp milliseconds';
  const fractionDigits = digits;
  while (msDigits < 3) {
    ms *= 10;
    msDigits++;
  }
  c = text.charCodeAt(++pos);
  let serial = 0;
  digits = 0;
  while (c >= 48 && c <= 57) {
    serial = serial * 10 + (c - 48);
    c = text.charCodeAt(++pos);
    digits++;
  }
  if (digits === 0 || c !== 41 /* ) */) return 'bad audit serial';
  auditStamp.sec = sec;
  auditStamp.ms = ms;
  auditStamp.serial = serial;
  auditStamp.fractionDigits = fractionDigits;
  auditStamp.end = pos;
  return null;
}

/**
 * Parses a record. `raw.type` is authoritative when it is non-zero (netlink); for log lines the
 * `type=` name in the text is used when raw.type is 0. `node` overrides a `node=` prefix.
 */
export function parseRecord(raw: RawRecord, node?: string | null): RecordParseResult {
  const text = raw.text;
  let pos = 0;
  let parsedNode: string | null = null;
  let typeName: string | null = null;
  let type = raw.type;

  if (text.startsWith('node=')) {
    const sp = text.indexOf(' ', 5);
    if (sp < 0) return fail('node= without a following field', text);
    parsedNode = text.slice(5, sp);
    pos = sp + 1;
  }
  if (text.startsWith('type=', pos)) {
    const sp = text.indexOf(' ', pos + 5);
    if (sp < 0) return fail('type= without a following field', text);
    typeName = text.slice(pos + 5, sp);
    pos = sp + 1;
    if (text.startsWith('msg=', pos)) pos += 4;
    // A name we have no number for (a newer auditd) keeps its name and type 0: it still belongs
    // to its event, it just cannot complete one early.
    if (type === 0) type = recordTypeNumber(typeName) ?? 0;
    if (typeName.startsWith('UNKNOWN[') && type > 0) typeName = recordTypeName(type);
  }
  if (!text.startsWith(AUDIT_OPEN, pos)) return fail('missing audit( timestamp', text);
  pos += AUDIT_OPEN.length;
  const idStart = pos;

  const bad = readAuditStamp(text, pos);
  if (bad !== null) return fail(bad, text);
  const { sec, ms, serial } = auditStamp;
  pos = auditStamp.end;
  const id = text.slice(idStart, pos);
  pos++;
  if (text.charCodeAt(pos) === 58 /* : */) pos++;
  while (text.charCodeAt(pos) === 32) pos++;

  if (type <= 0 && typeName === null) return fail('record without a type', text);
  const sepAt = text.indexOf('\x1d', pos);
  return {
    failed: false,
    type,
    typeName: typeName ?? recordTypeName(type),
    node: node !== undefined && node !== null ? node : parsedNode,
    sec,
    ms,
    serial,
    id,
    text,
    bodyStart: pos,
    bodyEnd: sepAt < 0 ? text.length : sepAt,
    enrichedStart: sepAt < 0 ? -1 : sepAt + 1,
  };
}

/**
 * Walks `key=value` fields of a record body by index. Reuse one cursor for many records: it holds
 * only numbers and the text reference, so iterating a record allocates nothing until a caller
 * slices a key or value out.
 *
 * Values: `"..."` (quoted, no escapes: the kernel hex-encodes anything containing a quote),
 * `'...'` (the USER_* `msg='...'` sub-payload; with `descend` the cursor walks into it and yields
 * its fields as if they were top-level), or a bare token up to the next space. Tokens without `=`
 * (AVC's `avc:  denied  { read } for`) are skipped.
 */
export class FieldCursor {
  text = '';
  keyStart = 0;
  keyEnd = 0;
  /** Value bounds exclude the quotes. */
  valueStart = 0;
  valueEnd = 0;
  /** 34 for "...", 39 for '...', 0 for bare. */
  quote = 0;
  private pos = 0;
  private end = 0;
  private outerEnd = -1;
  private descend = false;

  reset(text: string, start: number, end: number, descend = true): this {
    this.text = text;
    this.pos = start;
    this.end = end;
    this.outerEnd = -1;
    this.descend = descend;
    return this;
  }

  /** Reset to a parsed record's raw body (enriched fields excluded). */
  resetRecord(rec: ParsedRecord, descend = true): this {
    return this.reset(rec.text, rec.bodyStart, rec.bodyEnd, descend);
  }

  next(): boolean {
    const text = this.text;
    for (;;) {
      let pos = this.pos;
      const end = this.end;
      while (pos < end && text.charCodeAt(pos) === 32) pos++;
      if (pos >= end) {
        if (this.outerEnd >= 0) {
          // Finished a msg='...' sub-payload: continue after its closing quote.
          this.pos = this.end + 1;
          this.end = this.outerEnd;
          this.outerEnd = -1;
          continue;
        }
        this.pos = pos;
        return false;
      }
      const tokenStart = pos;
      while (pos < end) {
        const c = text.charCodeAt(pos);
        if (c === 61 /* = */ || c === 32) break;
        pos++;
      }
      if (pos >= end || text.charCodeAt(pos) === 32 || pos === tokenStart) {
        // Not a key=value token; skip it.
        this.pos = pos + (pos === tokenStart ? 1 : 0);
        continue;
      }
      this.keyStart = tokenStart;
      this.keyEnd = pos;
      pos++; // past '='
      const q = text.charCodeAt(pos);
      if (q === 34 || q === 39) {
        let close = text.indexOf(q === 34 ? '"' : "'", pos + 1);
        // An unterminated quote runs to the end of the body rather than failing the record.
        if (close < 0 || close > end) close = end;
        if (q === 39 && this.descend && this.outerEnd < 0) {
          this.outerEnd = end;
          this.pos = pos + 1;
          this.end = close;
          continue;
        }
        this.quote = q;
        this.valueStart = pos + 1;
        this.valueEnd = close;
        this.pos = close + 1;
        return true;
      }
      const vStart = pos;
      // The built-in search beats a charCodeAt loop on the long bare values (hex argv, proctitle).
      pos = text.indexOf(' ', pos);
      if (pos < 0 || pos > end) pos = end;
      this.quote = 0;
      this.valueStart = vStart;
      this.valueEnd = pos;
      this.pos = pos;
      return true;
    }
  }

  /** True when the current key equals `name` (no allocation). */
  keyIs(name: string): boolean {
    const len = this.keyEnd - this.keyStart;
    return len === name.length && this.text.startsWith(name, this.keyStart);
  }

  key(): string {
    return this.text.slice(this.keyStart, this.keyEnd);
  }

  /** The value as written (quotes removed). */
  raw(): string {
    return this.text.slice(this.valueStart, this.valueEnd);
  }

  /** `(null)` and `?` mean absent. */
  isAbsent(): boolean {
    if (this.quote !== 0) return false;
    const len = this.valueEnd - this.valueStart;
    return (len === 6 && this.text.startsWith('(null)', this.valueStart)) || (len === 1 && this.text.charCodeAt(this.valueStart) === 63);
  }

  /**
   * A kernel "untrusted string" (comm, exe, cwd, name, aN, key, proctitle): quoted means literal,
   * bare means hex of the raw bytes (decoded with surrogateescape); `(null)`/`?` mean null. A bare
   * value that is not valid hex is returned as written rather than lost.
   */
  untrusted(): string | null {
    if (this.quote !== 0) return this.raw();
    if (this.isAbsent()) return null;
    return hexToString(this.text, this.valueStart, this.valueEnd) ?? this.raw();
  }

  /** Decimal integer (optionally negative); null when absent or not a number. */
  int(): number | null {
    let pos = this.valueStart;
    const end = this.valueEnd;
    if (pos >= end) return null;
    let neg = false;
    if (this.text.charCodeAt(pos) === 45) {
      neg = true;
      pos++;
      if (pos >= end) return null;
    }
    let n = 0;
    for (; pos < end; pos++) {
      const c = this.text.charCodeAt(pos);
      if (c < 48 || c > 57) return null;
      n = n * 10 + (c - 48);
    }
    return neg ? -n : n;
  }
}

/**
 * Convenience (not for hot paths): all fields of a record as a plain object of raw values, with
 * msg='...' sub-fields flattened in. Later duplicates do not overwrite earlier ones.
 */
export function recordFields(rec: ParsedRecord): Record<string, string> {
  const out: Record<string, string> = {};
  const cur = new FieldCursor().resetRecord(rec);
  while (cur.next()) {
    const k = cur.key();
    if (!(k in out)) out[k] = cur.raw();
  }
  return out;
}

/** The ENRICHED interpreted fields (`UID="root"`), empty when the line has none. */
export function enrichedFields(rec: ParsedRecord): Record<string, string> {
  const out: Record<string, string> = {};
  if (rec.enrichedStart < 0) return out;
  const cur = new FieldCursor().reset(rec.text, rec.enrichedStart, rec.text.length, false);
  while (cur.next()) out[cur.key()] = cur.raw();
  return out;
}
