/**
 * `replay --events` through the native scanner (native/replay_events.h, issue 23): the file's bytes go
 * to C++ in large reads, and C++ splits lines, parses record headers, reassembles events exactly as
 * src/audit/reassembler.ts does and prints the JSON line of each event it fully understands and whose
 * strings redaction would leave as they are (src/detect/redact/plain-spec.ts). Every other event comes
 * back as its record lines, at its place in the output, and is built, redacted and printed here by the
 * TypeScript path (buildEvent, redactAuditEvent). So boring events never become JavaScript strings or
 * objects, and the output is the TypeScript path's, byte for byte
 * (test/integration/replay/fast-path.test.ts).
 *
 * Used when the addon is built with the scanner and --records is not asked for; CREDWATCH_REPLAY_NATIVE=0
 * forces the TypeScript path (the differential test compares the two).
 */
import { buildEvent, type BuildCounters, type BuildOptions } from '../../audit/event-builder';
import { decodeSurrogateEscaped } from '../../audit/bytes';
import { parseRecord, type ParsedRecord } from '../../audit/record';
import { AUDIT_MESSAGE_TYPES } from '../../audit/record-type-table';
import { recordTypeNumber } from '../../audit/record-types';
import { X86_64_SYSCALL_NAMES } from '../../audit/syscalls-x86_64';
import type { ReassemblerStats } from '../../audit/reassembler';
import { PLAIN_TEXT_SPEC } from '../../detect/redact/plain-spec';
import { loadNative } from '../../native/binding';
import type { NativeBinding, NativeReplayEventScanner, NativeReplaySpec, NativeReplayStats, NativeReplayStep, NativeTriageSpec } from '../../native/types';
import type { AuditEvent } from '../../audit/event';
import { parseProcessNote, type ProcessNote } from '../../native/process-note';
import { parseRepeatNote, parseRepeatTemplate, rebuildRecords, REPEAT_TEMPLATES_KEPT, type RepeatNote } from '../../native/repeat-note';
import { readLogBytes } from '../../sources/auditlog';
import type { FileReadCounts } from './replay-unreadable';
import { isAscii } from 'node:buffer';

/** Large reads: a line may be up to 1 MiB, and fewer crossings into C++ cost less. */
const READ_BYTES = 4 << 20;
/** Each of the two output buffers: a 4 MiB read gives ~2.6 MiB of JSON lines. */
const OUT_BYTES = 8 << 20;

/** The addon when it has the scanner and the native path is not turned off; else null. */
export function nativeReplay(env: NodeJS.ProcessEnv = process.env): NativeBinding | null {
  if (env.CREDWATCH_REPLAY_NATIVE === '0') return null;
  try {
    const native = loadNative();
    return typeof native.ReplayEventScanner === 'function' ? native : null;
  } catch {
    return null; // no addon here (replay needs none): the TypeScript path
  }
}

export function replaySpec(): NativeReplaySpec {
  let maxNr = 0;
  for (const nr of X86_64_SYSCALL_NAMES.keys()) maxNr = Math.max(maxNr, nr);
  const names = new Array<string>(maxNr + 1).fill('');
  for (const [nr, name] of X86_64_SYSCALL_NAMES) names[nr] = name;
  return {
    typeNumbers: AUDIT_MESSAGE_TYPES.map(([name, num]) => [name, num]),
    x86_64Syscalls: names,
    plain: PLAIN_TEXT_SPEC,
    lookupType: (name) => recordTypeNumber(decodeSurrogateEscaped(name)) ?? 0,
  };
}

/**
 * Output in two alternating buffers that C++ writes into: a buffer is reused only once its last write
 * has gone out (the write callback), so at most two chunks' output are in flight (that is also the
 * backpressure) and steady replay allocates no output memory. A step whose output does not fit gets
 * a Buffer of its own.
 */
class TwoBufferOut {
  private readonly targets = [Buffer.allocUnsafeSlow(OUT_BYTES), Buffer.allocUnsafeSlow(OUT_BYTES)];
  private readonly inFlight: (Promise<void> | null)[] = [null, null];
  private turn = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  /** The next target buffer, once free. */
  async next(): Promise<Buffer> {
    this.turn ^= 1;
    const wait = this.inFlight[this.turn];
    if (wait) await wait;
    this.inFlight[this.turn] = null;
    return this.targets[this.turn] as Buffer;
  }

  /** Writes the pieces of one step (in the target just taken) as one writev. */
  write(parts: (Buffer | string)[]): void {
    const live = parts.filter((p) => p.length > 0);
    if (live.length === 0) return;
    this.stream.cork();
    let done!: Promise<void>;
    for (let k = 0; k < live.length; k++) {
      if (k < live.length - 1) this.stream.write(live[k] as Buffer | string);
      else done = new Promise((resolve, reject) => this.stream.write(live[k] as Buffer | string, (err) => (err ? reject(err) : resolve())));
    }
    this.stream.uncork();
    // A failed write rejects here and again where the buffer is awaited; only the latter reports.
    done.catch(() => {});
    this.inFlight[this.turn] = done;
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight.filter((p) => p !== null));
  }
}

export interface NativeReplayResult {
  stats: ReassemblerStats;
  lines: number;
  overlong: number;
  /** Printed by C++ / built here. */
  native: number;
  fallback: number;
}

export class NativeEventReplay {
  private readonly scanner: NativeReplayEventScanner;
  private readonly out: TwoBufferOut;
  private readonly counters: Required<BuildCounters> = { decodeErrors: 0, uringEvents: 0, uringUnknownOps: 0, argvCutEvents: 0, argvCutArgs: 0, argvCutBytes: 0 };

  constructor(
    native: NativeBinding,
    stream: NodeJS.WriteStream,
    private readonly eventLine: (ev: ReturnType<typeof buildEvent>) => string | Buffer,
    private readonly onParseError: (reason: string, text: string) => void,
  ) {
    const Scanner = native.ReplayEventScanner;
    if (Scanner === undefined) throw new Error('the native addon has no ReplayEventScanner');
    this.scanner = new Scanner(replaySpec());
    this.out = new TwoBufferOut(stream);
  }

  /** One file (or stdin); `onBytes` sees the running byte count of this file. */
  file(path: string, onBytes: (bytes: number, events: number) => void): Promise<void> {
    return this.chunks(readLogBytes(path, READ_BYTES), onBytes);
  }

  /** One file's bytes in any chunks (each valid only until the next step: C++ copies what it keeps). */
  async chunks(source: AsyncIterable<Buffer> | Iterable<Buffer>, onBytes: (bytes: number, events: number) => void = () => {}): Promise<void> {
    let bytes = 0;
    for await (const chunk of source) {
      bytes += chunk.length;
      const target = await this.out.next();
      this.take(this.scanner.push(chunk, target), target);
      onBytes(bytes, this.scanner.stats().events);
    }
    const target = await this.out.next();
    this.take(this.scanner.endFile(target), target);
  }

  /** Records read, unparsable and overlong lines so far (deltas around a file are that file's). */
  readCounts(): FileReadCounts {
    const s = this.scanner.stats();
    return { records: s.records, unparsable: s.parseErrors, overlongLines: s.overlongLines };
  }

  /** What is printed so far (a read failed: the error follows it). */
  async flushOutput(): Promise<void> {
    await this.out.drain();
  }

  async finish(): Promise<NativeReplayResult> {
    const target = await this.out.next();
    this.take(this.scanner.flush(target), target);
    await this.out.drain();
    const s = this.scanner.stats();
    return {
      stats: {
        records: s.records,
        events: s.events,
        incomplete: s.incomplete,
        evicted: s.evicted,
        parseErrors: s.parseErrors,
        serialGaps: s.serialGaps,
        lateRecords: s.lateRecords,
        ...this.counters,
      },
      lines: s.lines,
      overlong: s.overlongLines,
      native: s.native,
      fallback: s.fallback,
    };
  }

  /** Interleaves the C++ lines with the events built here, each at its offset, and writes them. */
  private take(step: NativeReplayStep, target: Buffer): void {
    const [written, fbBytes, meta, failures] = step;
    const out = typeof written === 'number' ? target.subarray(0, written) : written;
    for (const [reason, text] of failures) this.onParseError(reason, decodeSurrogateEscaped(text));
    if (meta === null || fbBytes === null) {
      this.out.write([out]);
      return;
    }
    const parts: (Buffer | string)[] = [];
    let prev = 0;
    forEachFallback(fbBytes, meta, this.counters, (at, ev) => {
      if (at > prev) parts.push(out.subarray(prev, at));
      prev = at;
      parts.push(this.eventLine(ev));
    });
    parts.push(out.subarray(prev));
    this.out.write(parts);
  }
}

/** Findings need only what the stages read of an argv, as AuditPipeline builds it (src/audit/argv-bound.ts). */
const BOUNDED_ARGV: BuildOptions = { argv: 'bounded' };

/** Builds each fallback event of a step (see replay_events_js.cc), in order, with its offset in `out`. */
function forEachFallback(fbBytes: Buffer, meta: Uint32Array, counters: BuildCounters, each: (at: number, ev: AuditEvent) => void, build?: BuildOptions): void {
  for (let k = 0; k < meta.length; ) {
    const at = meta[k] as number;
    const incomplete = meta[k + 1] === 1;
    const n = meta[k + 2] as number;
    k += 3;
    const records: ParsedRecord[] = [];
    for (let i = 0; i < n; i++, k += 2) {
      const start = meta[k] as number;
      const text = decodeSurrogateEscaped(fbBytes, start, start + (meta[k + 1] as number));
      const rec = parseRecord({ type: 0, text });
      // C++ parsed this line with the same rules: a failure here is a bug in one of the two.
      if (rec.failed) throw new Error(`native replay passed a record TypeScript cannot parse (${rec.reason})`);
      records.push(rec);
    }
    each(at, buildEvent(records, incomplete, counters, build));
  }
}

/** Where findings-mode replay sends what the scanner hands up, in the log's event order. */
export interface FindingsSink {
  /**
   * An event some rule might fire on (or one the triage did not understand): built in full. With
   * `template`, the event is (or, expanded, stands again for) that repeat template: the detector keeps
   * its outcome for the template's repeats.
   */
  onEvent(ev: AuditEvent, template?: number): void;
  /**
   * A repeat of a template's event (native/repeat_cache.h): decided from the template's outcome, as
   * the live agent decides it (HostStages.onRepeat); false when it must take the full path after all
   * (`rebuild` makes the full event for a finding that must be built).
   */
  onRepeat(note: RepeatNote, rebuild: () => AuditEvent): boolean;
  /** A boring event of `node` (null: no `node=` prefix), as the process facts the enrich stage keeps from it. */
  onNote(note: ProcessNote, node: string | null): void;
  /**
   * `count` boring non-exec events right after another of the same process whose note held the same
   * facts (only the stamps and record types differ), the latest at `timeMs`: returns false when they
   * must be given to onNote after all.
   */
  onNoteAgain(pid: number, timeMs: number, count: number, node: string | null): boolean;
}

/** Counters of one event's build, to add again for each repeat decided without a build. */
type Counts = Required<BuildCounters>;
const COUNT_KEYS = ['decodeErrors', 'uringEvents', 'uringUnknownOps', 'argvCutEvents', 'argvCutArgs', 'argvCutBytes'] as const;

/** A repeat template's lines as the log has them (each "audit(" at prefixLens[i]), for repeats that are rebuilt. */
interface ReplayTemplate {
  lines: string[];
  prefixLens: number[];
  types: number[];
  /** What building the template's event added to the build counters. */
  counts: Counts;
}

/** An announcement waiting for its event, the next fallback one. */
interface PendingTemplate {
  template: number;
  serial: number;
  prefixLens: number[];
  types: number[];
}

/** A comma list of small decimal numbers as C++ writes it, or null. */
function numberList(s: string | undefined): number[] | null {
  if (s === undefined || !/^\d{1,10}(,\d{1,10})*$/.test(s)) return null;
  return s.split(',').map(Number);
}

/** The `n`th NUL after offset `from` (-1 when there are fewer). */
function nthNul(text: string, from: number, n: number): number {
  let at = from;
  for (let i = 0; i < n; i++) {
    at = text.indexOf('\0', at + 1);
    if (at < 0) return -1;
  }
  return at;
}

/** Fields of a note: kind, serial, time, record types, then the process facts (pid ... has-cwd), then an exec's argv. */
const STAMP_FIELDS = 4;
const FACT_FIELDS = 9;

/**
 * Findings mode (replay without --events) through the native scanner: the C++ reassembler as for
 * --events, then the native triage (native/triage.h) with the rule pack's spec plus opens
 * (nativeTriageFor): a boring event comes up as a process note - the same summary the live reader
 * sends - and every other event as its records, built here. So only events a rule might care about
 * become AuditEvents, and the process table still sees every process (parents, cwd, runtime execs
 * always pass). The differential test (test/integration/replay/findings-fast-path.test.ts) holds the
 * findings equal to the TypeScript path's.
 */
export class NativeFindingsReplay {
  private readonly scanner: NativeReplayEventScanner;
  private readonly counters: Required<BuildCounters> = { decodeErrors: 0, uringEvents: 0, uringUnknownOps: 0, argvCutEvents: 0, argvCutArgs: 0, argvCutBytes: 0 };
  /** Notes the scanner wrote that this version could not parse (a bug between the two sides). */
  badNotes = 0;
  /** Notes taken as a repeat of the previous one (onNoteAgain), not parsed. */
  notesAgain = 0;
  /** The last note handed to the sink when nothing came after it (else null), and its pid: an `a` run repeats its facts. */
  private lastNote: string | null = null;
  private lastPid = 0;
  /** The node the notes are of (`N` items; null: no `node=` prefix), as the scanner last said. */
  private node: string | null = null;
  /** Repeat notes decided from their template's outcome, and those rebuilt for the full path. */
  repeatsCollapsed = 0;
  repeatsExpanded = 0;
  /** Repeat notes naming a template this side does not hold (a bug between the two sides; each an event lost). */
  repeatsLost = 0;
  /**
   * Templates, least recently touched dropped first: touched on announcement and use in the order the
   * scanner touches its 64 (RepeatCache::kMaxTemplates), so every template a note names is among these.
   */
  private readonly templates = new Map<number, ReplayTemplate | null>();
  private pending: PendingTemplate | null = null;
  /** The counters after the last fallback event was handled (a build's own counts are the difference). */
  private readonly countsBefore: Counts = { ...this.counters };

  constructor(
    native: NativeBinding,
    triage: NativeTriageSpec,
    private readonly sink: FindingsSink,
  ) {
    const Scanner = native.ReplayEventScanner;
    if (Scanner === undefined) throw new Error('the native addon has no ReplayEventScanner');
    this.scanner = new Scanner(replaySpec(), triage);
  }

  /** One file's bytes in any chunks; `onBytes` sees the running byte count of this file. */
  async file(path: string, onBytes: (bytes: number, events: number) => void = () => {}): Promise<void> {
    let bytes = 0;
    for await (const chunk of readLogBytes(path, READ_BYTES)) {
      bytes += chunk.length;
      this.take(this.scanner.push(chunk));
      onBytes(bytes, this.scanner.stats().events);
    }
    this.take(this.scanner.endFile());
  }

  /** End of input: every event in flight is handed up. */
  finish(): void {
    this.take(this.scanner.flush());
  }

  stats(): NativeReplayStats & Required<BuildCounters> {
    return { ...this.scanner.stats(), ...this.counters };
  }

  private take(step: NativeReplayStep): void {
    const [written, fbBytes, meta, , noteEnds] = step;
    if (typeof written === 'number') throw new Error('native replay: findings mode writes no target');
    let noteStart = 0;
    let n = 0;
    // All ASCII (the usual case): one string for the step, each note a slice of it (byte offsets are
    // then character offsets). Else each note is decoded on its own, surrogate escapes and all.
    const ascii = noteEnds && isAscii(written) ? written.toString('latin1') : null;
    const noteText = (start: number, end: number): string => (ascii !== null ? ascii.slice(start, end) : decodeSurrogateEscaped(written, start, end));
    const notesUpTo = (at: number): void => {
      for (; noteEnds && n < noteEnds.length && noteStart < at; n++) {
        const end = noteEnds[n] as number;
        const text = noteText(noteStart, end);
        noteStart = end;
        this.note(text);
      }
    };
    if (meta !== null && fbBytes !== null) {
      forEachFallback(fbBytes, meta, this.counters, (at, ev) => {
        notesUpTo(at);
        this.lastNote = null; // the event may have changed the process table
        const t = this.pending;
        this.pending = null;
        if (t !== null && t.serial === ev.serial && ev.records.length === t.types.length) {
          this.touch(t.template, { lines: ev.records.map((r) => r.text), prefixLens: t.prefixLens, types: t.types, counts: this.countsSince() });
          this.sink.onEvent(ev, t.template);
        } else {
          if (t !== null) this.badNotes++; // an announcement not followed by its event: its repeats are lost, and counted
          this.sink.onEvent(ev);
        }
        Object.assign(this.countsBefore, this.counters);
      }, BOUNDED_ARGV);
    }
    notesUpTo(Number.POSITIVE_INFINITY);
  }

  private countsSince(): Counts {
    const d = { ...this.counters };
    for (const k of COUNT_KEYS) d[k] -= this.countsBefore[k];
    return d;
  }

  /** Touches a template as RepeatCache does (an announcement reserves its id, the event fills it in). */
  private touch(template: number, t: ReplayTemplate | null): void {
    this.templates.delete(template);
    this.templates.set(template, t);
    if (this.templates.size > REPEAT_TEMPLATES_KEPT) this.templates.delete(this.templates.keys().next().value as number);
  }

  /** `T\0id\0header\0types\0prefix lengths` (native/replay_events.h): the next fallback event is the template. */
  private announce(text: string): void {
    const f = text.split('\0');
    const a = f.length === 5 ? parseRepeatTemplate(`${f[1]}\0${f[2]}`) : null;
    const types = numberList(f[3]);
    const prefixLens = numberList(f[4]);
    if (a === null || types === null || prefixLens === null || types.length !== prefixLens.length) {
      this.badNotes++;
      return;
    }
    this.touch(a.template, null);
    this.pending = { template: a.template, serial: a.serial, prefixLens, types };
  }

  /** `R\0` and a repeat note: decided by the detector from the template's outcome, or rebuilt for the full path. */
  private repeat(text: string): void {
    this.lastNote = null; // the repeat folds its process facts in
    const note = parseRepeatNote(text.slice(2));
    if (note === null) {
      this.badNotes++;
      return;
    }
    const t = this.templates.get(note.template);
    if (t === undefined || t === null || !sameList(t.types, note.recordTypes)) {
      this.repeatsLost++;
      return;
    }
    this.touch(note.template, t);
    // Built only for a finding that must be built (its counts are the template's, added below).
    const decided = this.sink.onRepeat(note, () => {
      const ev = rebuiltEvent(t, note, { ...ZERO_COUNTS });
      // The scanner signed these lines with the masks rebuildRecords fills in: a bug between the two sides.
      if (ev === null) throw new Error('native replay: a repeat note whose template cannot be rebuilt');
      return ev;
    });
    if (decided) {
      this.repeatsCollapsed++;
      for (const k of COUNT_KEYS) this.counters[k] += t.counts[k];
      return;
    }
    // The full path, as if the lines had come whole; the event refreshes its template's outcome.
    const ev = rebuiltEvent(t, note, this.counters);
    if (ev === null) {
      this.repeatsLost++;
      return;
    }
    this.repeatsExpanded++;
    this.sink.onEvent(ev, note.template);
  }

  /**
   * A process note in full, or an item of repeat collapse (announce, repeat) or a run of notes that
   * repeat the previous one's process facts (again). An exec note always goes in full (it replaces
   * the argv); the scanner compares what follows it with its facts without the argv, which is what
   * observeProcess of a non-exec event would leave unchanged after it.
   */
  private note(text: string): void {
    const kind = text.charCodeAt(0);
    if (kind === 97 /* a */) return this.again(text);
    if (kind === 84 /* T */) return this.announce(text);
    if (kind === 82 /* R */) return this.repeat(text);
    if (kind === 78 /* N */) return this.noteNode(text);
    const note = parseProcessNote(text);
    if (note === null) {
      this.badNotes++;
      this.lastNote = null;
      return;
    }
    this.sink.onNote(note, this.node);
    this.lastNote = text;
    this.lastPid = note.pid;
  }

  /** `N\0` and `0` (no `node=` prefix) or `1` and the node's name: the notes that follow are of that node. */
  private noteNode(text: string): void {
    const flag = text.charCodeAt(2);
    if (text.charCodeAt(1) !== 0 || (flag !== 48 && flag !== 49) || (flag === 48 && text.length !== 3)) {
      this.badNotes++;
      return;
    }
    this.node = flag === 48 ? null : text.slice(3);
    this.lastNote = null; // an 'a' run never spans two nodes (the scanner starts its comparison again)
  }

  /** The process facts of the last note (from the NUL before its pid; an exec's without its argv), or null. */
  private lastFacts(): string | null {
    const text = this.lastNote;
    const at = text === null ? -1 : nthNul(text, -1, STAMP_FIELDS);
    if (text === null || at < 0) return null;
    const argvAt = text.charCodeAt(0) === 101 /* e */ ? nthNul(text, at, FACT_FIELDS) : -1;
    return text.slice(at, argvAt < 0 ? text.length : argvAt);
  }

  /**
   * `a\0COUNT\0TIME` (8 and 16 digits): COUNT non-exec notes right after the last one, of its process
   * facts, the latest at TIME. Only the entry's LRU place changes (observedAgain); if
   * the entry is gone after all, the notes are given in full, rebuilt from the facts kept here.
   */
  private again(text: string): void {
    const count = text.length === 27 ? Number(text.slice(2, 10)) : NaN;
    const timeMs = Number(text.slice(11));
    if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(timeMs) || this.lastNote === null) {
      this.badNotes++; // the two sides disagree on what came before: a bug, counted and reported
      return;
    }
    this.notesAgain += count;
    if (this.sink.onNoteAgain(this.lastPid, timeMs, count, this.node)) return;
    const facts = this.lastFacts() ?? '';
    for (let i = 0; i < count; i++) {
      const note = parseProcessNote(`o\u00000\u0000${timeMs}\u00000${facts}`);
      if (note === null) this.badNotes++;
      else this.sink.onNote(note, this.node);
    }
  }
}

const ZERO_COUNTS: Counts = { decodeErrors: 0, uringEvents: 0, uringUnknownOps: 0, argvCutEvents: 0, argvCutArgs: 0, argvCutBytes: 0 };

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The event a repeat note stands for, from its template's lines: each line's prefix kept, the rest
 * rebuilt as the live path rebuilds netlink records (rebuildRecords: the note's stamp, pid and a0..a3),
 * so the lines are the ones in the log, byte for byte, and the event is what the full path builds.
 * Null when the template's lines are not of the shape the scanner signs (it could not have matched).
 */
function rebuiltEvent(t: ReplayTemplate, note: RepeatNote, counters: Counts): AuditEvent | null {
  const rebuilt = rebuildRecords(t.lines.map((line, i) => ({ type: t.types[i] as number, text: line.slice(t.prefixLens[i]) })), note);
  if (rebuilt === null) return null;
  const records: ParsedRecord[] = [];
  for (let i = 0; i < rebuilt.length; i++) {
    const rec = parseRecord({ type: 0, text: (t.lines[i] as string).slice(0, t.prefixLens[i]) + (rebuilt[i] as { text: string }).text });
    if (rec.failed) return null;
    records.push(rec);
  }
  return buildEvent(records, false, counters, BOUNDED_ARGV);
}
