/**
 * The one path from raw audit records to findings, shared by the live daemon and `credwatch replay`
 * (DESIGN.md: "a source yields records, everything after it is shared").
 *
 *   records ─► (live: note the pid so /proc is read while the process exists)
 *           ─► Reassembler ─► AuditEvent ─► Detector ─► redacted Findings ─► sink
 *
 * Per record the only work added here is, for SYSCALL records on a live stream, one indexOf to find
 * the pid; everything else is the reassembler's and the detector's.
 */
import type { AuditEvent, RawRecord } from '../audit/event';
import { Reassembler, type ReassemblerOptions, type ReassemblerStats } from '../audit/reassembler';
import type { Detector } from '../detect/engine';
import type { Finding } from '../detect/finding';

const AUDIT_SYSCALL = 1300;

export interface AuditPipelineOptions {
  detector: Detector;
  /** Receives every non-empty set of findings, in emission order. */
  onFindings: (findings: Finding[]) => void;
  /** Observes every completed event (metrics, --events); optional. */
  onEvent?: (ev: AuditEvent) => void;
  /**
   * Live stream: read /proc for each new pid as its first SYSCALL record arrives. Off for replay, where
   * the pids belong to another time (and maybe another host).
   */
  live: boolean;
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
  private readonly detector: Detector;
  private readonly live: boolean;
  private readonly onFindings: (findings: Finding[]) => void;
  private readonly onEventHook: ((ev: AuditEvent) => void) | undefined;
  private eventsSeen = 0;

  constructor(opts: AuditPipelineOptions) {
    this.detector = opts.detector;
    this.live = opts.live;
    this.onFindings = opts.onFindings;
    this.onEventHook = opts.onEvent;
    this.reassembler = new Reassembler({ ...opts.reassembler, onEvent: (ev) => this.handleEvent(ev) });
  }

  /** Feeds one batch of records (one netlink read, or a block of log lines). */
  pushBatch(batch: readonly (RawRecord & { node?: string | null })[], node: string | null = null): void {
    const table = this.live ? this.detector.processTable : null;
    for (let i = 0; i < batch.length; i++) {
      const rec = batch[i]!;
      if (table !== null && rec.type === AUDIT_SYSCALL) {
        const pid = syscallPid(rec.text);
        if (pid > 0) table.noteRecordPid(pid);
      }
      this.reassembler.push(rec, rec.node ?? node);
    }
  }

  /** Ages events in flight and lets the detector close its windows; call about once a second. */
  tick(nowMs: number = Date.now()): void {
    this.reassembler.tick(nowMs);
    const late = this.detector.tick(nowMs);
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
    const findings = this.detector.onAuditEvent(ev);
    if (findings.length > 0) this.onFindings(findings);
  }
}
