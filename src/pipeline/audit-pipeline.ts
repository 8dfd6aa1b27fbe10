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
  private readonly readsProc: boolean;
  private eventsSeen = 0;

  constructor(opts: AuditPipelineOptions) {
    this.stages = opts.stages;
    this.live = opts.live;
    this.onFindings = opts.onFindings;
    this.onEventHook = opts.onEvent;
    this.onNoteHook = opts.onProcessNote;
    this.onBadNative = opts.onBadNativeRecord;
    this.readsProc = opts.live && !opts.nativeProcSnapshots;
    this.reassembler = new Reassembler({ ...opts.reassembler, onEvent: (ev) => this.handleEvent(ev) });
  }

  /** Feeds one batch of records (one netlink read, or a block of log lines). */
  pushBatch(batch: readonly (RawRecord & { node?: string | null })[], node: string | null = null): void {
    const table = this.readsProc ? this.stages.enricher.processTable : null;
    for (let i = 0; i < batch.length; i++) {
      const rec = batch[i]!;
      if (rec.type >= PROCESS_NOTE_TYPE) {
        this.pushNative(rec);
        continue;
      }
      if (table !== null && rec.type === AUDIT_SYSCALL) {
        const pid = syscallPid(rec.text);
        if (pid > 0) table.noteRecordPid(pid);
      }
      this.reassembler.push(rec, rec.node ?? node);
    }
  }

  private pushNative(rec: RawRecord): void {
    if (rec.type === PROCESS_NOTE_TYPE) {
      const note = parseProcessNote(rec.text);
      if (note === null) {
        if (this.onBadNative) this.onBadNative(rec.type);
        return;
      }
      this.reassembler.noteConsumed(note.serial, note.recordTypes.length);
      this.eventsSeen++;
      if (this.onNoteHook) this.onNoteHook(note);
      this.stages.onProcessNote(note);
    } else if (rec.type === PROC_SNAPSHOT_TYPE) {
      const snap = parseProcSnapshot(rec.text);
      if (snap === null) {
        if (this.onBadNative) this.onBadNative(rec.type);
        return;
      }
      if (this.live) this.stages.enricher.processTable.applyProcSnapshot(snap);
    } else if (this.onBadNative) {
      this.onBadNative(rec.type);
    }
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
    const findings = this.stages.onAuditEvent(ev);
    if (findings.length > 0) this.onFindings(findings);
  }
}
