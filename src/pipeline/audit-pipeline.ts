/**
 * The one path from raw audit records to findings, shared by the live daemon and `credwatch replay`
 * (docs/architecture.md: "A source yields records, everything after it is shared").
 *
 *   records ─► (live: note the pid so /proc is read while the process exists)
 *           ─► Reassembler ─► AuditEvent ─► Enricher ─► EventView ─► Detector ─► redacted Findings ─► sink
 *
 * Per record the only work added here is, for SYSCALL records on a live stream, one indexOf to find
 * the pid; everything else is the reassembler's and the two host stages' (host-stages.ts). The native reader may also send
 * process notes (events its triage consumed whole) and /proc snapshots: src/native/process-note.ts.
 */
import type { AuditEvent, RawRecord } from '../audit/event';
import { Reassembler, type ReassemblerOptions, type ReassemblerStats } from '../audit/reassembler';
import type { Finding } from '../model/finding';
import { PROCESS_NOTE_TYPE, PROC_SNAPSHOT_TYPE, parseProcSnapshot, parseProcessNote, type ProcessNote } from '../native/process-note';
import { REPEAT_NOTE_TYPE, REPEAT_TEMPLATE_TYPE, RepeatTemplates, parseRepeatNote, parseRepeatTemplate, rebuildRecords, type RepeatNote } from '../native/repeat-note';
import { parseRecord, type ParsedRecord } from '../audit/record';
import { buildEvent } from '../audit/event-builder';
import { recordTypeNumber } from '../audit/record-types';
import type { HostStages } from './host-stages';

const AUDIT_SYSCALL = 1300;

export interface AuditPipelineOptions {
  /** Enrich then detect (createHostStages). */
  stages: HostStages;
  /** Receives every non-empty set of findings, in emission order. */
  onFindings: (findings: Finding[]) => void;
  /** Observes every completed event (metrics, --events); optional. */
  onEvent?: (ev: AuditEvent) => void;
  /**
   * Live stream: read /proc for each new pid as its first SYSCALL record arrives. Off for replay, where
   * the pids belong to another time (and maybe another host).
   */
  live: boolean;
  /**
   * The source reads /proc itself and sends snapshots (native reader, procSnapshots on): the pipeline
   * then leaves /proc alone. Default false.
   */
  nativeProcSnapshots?: boolean;
  /** Observes every process note (an event the native triage summarized); optional. */
  onProcessNote?: (note: ProcessNote) => void;
  /** A pseudo record from the native reader that could not be parsed (a version mismatch): counted. */
  onBadNativeRecord?: (type: number) => void;
  /**
   * Observes every repeat note (src/native/repeat-note.ts): `collapsed` when it was decided without its
   * records, else they were rebuilt and went the full path (and onEvent sees the event); `lost` when the
   * note named a template this side no longer holds (only after dropped batches): the event is gone.
   */
  onRepeatNote?: (note: RepeatNote, outcome: 'collapsed' | 'expanded' | 'lost') => void;
  reassembler?: Omit<ReassemblerOptions, 'onEvent'>;
}

/** Extracts ` pid=N` from a SYSCALL record's text without splitting it. */
export function syscallPid(text: string): number {
  const at = text.indexOf(' pid=');
  if (at < 0) return -1;
  let n = 0;
  let i = at + 5;
  const end = Math.min(text.length, i + 10);
  for (; i < end; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
  }
  return i === at + 5 ? -1 : n;
}

export class AuditPipeline {
  private readonly reassembler: Reassembler;
  private readonly stages: HostStages;
  private readonly live: boolean;
  private readonly onFindings: (findings: Finding[]) => void;
  private readonly onEventHook: ((ev: AuditEvent) => void) | undefined;
  private readonly onNoteHook: ((note: ProcessNote) => void) | undefined;
  private readonly onBadNative: ((type: number) => void) | undefined;
  private readonly onRepeatHook: AuditPipelineOptions['onRepeatNote'];
  private readonly templates = new RepeatTemplates();
  /** Whether the reader announced any template (until then handleEvent skips the serial lookup). */
  private templatesSeen = false;
  private readonly readsProc: boolean;
  private eventsSeen = 0;

  constructor(opts: AuditPipelineOptions) {
    this.stages = opts.stages;
    this.live = opts.live;
    this.onFindings = opts.onFindings;
    this.onEventHook = opts.onEvent;
    this.onNoteHook = opts.onProcessNote;
    this.onBadNative = opts.onBadNativeRecord;
    this.onRepeatHook = opts.onRepeatNote;
    this.readsProc = opts.live && !opts.nativeProcSnapshots;
    // Every stage after the builder reads a bounded argv (src/audit/argv-bound.ts): built that way.
    this.reassembler = new Reassembler({ ...opts.reassembler, argv: 'bounded', onEvent: (ev) => this.handleEvent(ev) });
  }

  /** Feeds one batch of records (one netlink read, or a block of log lines). */
  pushBatch(batch: readonly (RawRecord & { node?: string | null })[], node: string | null = null): void {
    const table = this.readsProc ? this.stages.enricher.processTable : null;
    for (let i = 0; i < batch.length; i++) {
      const rec = batch[i]!;
      if (rec.type >= PROCESS_NOTE_TYPE) {
        this.pushNative(rec, rec.node ?? node);
        continue;
      }
      if (table !== null && rec.type === AUDIT_SYSCALL) {
        const pid = syscallPid(rec.text);
        if (pid > 0) table.noteRecordPid(pid);
      }
      this.reassembler.push(rec, rec.node ?? node);
    }
  }

  private pushNative(rec: RawRecord, node: string | null): void {
    // Each parser returns null for text this version does not understand: counted, never thrown.
    if (rec.type === PROCESS_NOTE_TYPE) {
      const note = parseProcessNote(rec.text);
      if (note === null) return this.badNative(rec.type);
      this.reassembler.noteConsumed(note.serial, note.recordTypes.length);
      this.eventsSeen++;
      if (this.onNoteHook) this.onNoteHook(note);
      this.stages.onProcessNote(note);
    } else if (rec.type === PROC_SNAPSHOT_TYPE) {
      const snap = parseProcSnapshot(rec.text);
      if (snap === null) return this.badNative(rec.type);
      if (this.live) this.stages.enricher.processTable.applyProcSnapshot(snap);
    } else if (rec.type === REPEAT_TEMPLATE_TYPE) {
      const a = parseRepeatTemplate(rec.text);
      if (a === null) return this.badNative(rec.type);
      this.templatesSeen = true;
      this.templates.announce(a);
    } else if (rec.type === REPEAT_NOTE_TYPE) {
      const note = parseRepeatNote(rec.text);
      if (note === null) return this.badNative(rec.type);
      this.pushRepeat(note, node);
    } else {
      this.badNative(rec.type);
    }
  }

  private badNative(type: number): void {
    if (this.onBadNative) this.onBadNative(type);
  }

  /** The template's records never came or were forgotten (batches dropped on the way): the event is lost, and counted. */
  private lostRepeat(note: RepeatNote, node: string | null): void {
    this.reassembler.noteConsumed(note.serial, note.recordTypes.length, node);
    if (this.onRepeatHook) this.onRepeatHook(note, 'lost');
  }

  /** A repeat note: decided by the detector from its template, or rebuilt and sent the full path. */
  private pushRepeat(note: RepeatNote, node: string | null): void {
    const template = this.templates.use(note.template);
    if (!template || !sameTypes(template, note.recordTypes)) {
      this.lostRepeat(note, node);
      return;
    }
    // Rebuilt only when needed (the full path, or a finding to build): most repeats only count.
    let records: RawRecord[] | null | undefined;
    const rebuild = (): RawRecord[] | null => (records === undefined ? (records = rebuildRecords(template, note)) : records);
    const findings = this.stages.onRepeat(note, () => rebuiltEvent(rebuild() ?? [], node));
    if (findings === null) {
      const whole = rebuild();
      if (whole === null) {
        this.lostRepeat(note, node);
        return;
      }
      // The full path, as if the records had come whole; the event refreshes its template's outcome.
      this.templates.expect(note.serial, note.template);
      if (this.onRepeatHook) this.onRepeatHook(note, 'expanded');
      for (const r of whole) this.reassembler.push(r, node);
      return;
    }
    this.reassembler.noteConsumed(note.serial, note.recordTypes.length, node);
    this.eventsSeen++;
    if (this.onRepeatHook) this.onRepeatHook(note, 'collapsed');
    if (findings.length > 0) this.onFindings(findings);
  }

  /** Ages events in flight and lets the detector close its windows; call about once a second. */
  tick(nowMs: number = Date.now()): void {
    this.reassembler.tick(nowMs);
    const late = this.stages.tick(nowMs);
    if (late.length > 0) this.onFindings(late);
  }

  /** Emits everything still in flight (flagged incomplete): end of a replay, or shutdown. */
  flush(): void {
    this.reassembler.flush();
  }

  get stats(): ReassemblerStats & { eventsDetected: number } {
    return { ...this.reassembler.stats, eventsDetected: this.eventsSeen };
  }

  private handleEvent(ev: AuditEvent): void {
    this.eventsSeen++;
    if (this.onEventHook) this.onEventHook(ev);
    const template = this.templatesSeen && !ev.incomplete ? this.templates.takeSerial(ev.serial) : null;
    if (template !== null) this.templates.attach(template, ev.records.map(netlinkRecord));
    const findings = this.stages.onAuditEvent(ev, template ?? undefined);
    if (findings.length > 0) this.onFindings(findings);
  }
}

/** An event record back as the reader sent it (numeric type, the text from `audit(`). */
function netlinkRecord(r: { type: string; text: string }): RawRecord {
  return { type: recordTypeNumber(r.type) ?? 0, text: r.text };
}

/** The full event of a repeat's rebuilt records (the reassembler's parse and build, without its bookkeeping). */
function rebuiltEvent(records: readonly RawRecord[], node: string | null): AuditEvent {
  const parsed: ParsedRecord[] = [];
  for (const r of records) {
    const p = parseRecord(r, node);
    if (!p.failed) parsed.push(p);
  }
  return buildEvent(parsed, false, undefined, { argv: 'bounded' });
}

function sameTypes(records: readonly RawRecord[], types: readonly number[]): boolean {
  if (records.length !== types.length) return false;
  for (let i = 0; i < types.length; i++) if (records[i]!.type !== types[i]) return false;
  return true;
}
