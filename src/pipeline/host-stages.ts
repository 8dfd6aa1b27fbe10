/**
 * The two host stages in their order: enrich (src/enrich/enricher.ts) then detect
 * (src/detect/engine.ts). The audit pipeline runs every event through here, and so do the tests and
 * benches that feed events without records, so no caller can score an event its process table has
 * not seen.
 */
import type { AuditEvent } from '../audit/event';
import { createDetector, type Detector, type DetectorOptions } from '../detect/engine';
import { Enricher, type EnricherOptions } from '../enrich/enricher';
import type { Finding } from '../model/finding';
import type { ProcessNote } from '../native/process-note';
import type { RepeatNote } from '../native/repeat-note';

export class HostStages {
  constructor(
    readonly enricher: Enricher,
    readonly detector: Detector,
  ) {}

  /** One event through both stages, timed as one against the detector's per-event budget. */
  onAuditEvent(ev: AuditEvent, template?: number): Finding[] {
    const t0 = performance.now();
    const out = this.detector.onEvent(this.enricher.enrich(ev), template);
    this.detector.countEventMs(performance.now() - t0);
    return out;
  }

  /**
   * A repeat note (src/native/repeat-note.ts): the detector decides it from its template's outcome, on
   * the enrich stage's view of it, or returns null for the full path. `rebuild` makes the full event
   * (enriched again, which folds nothing new) for a finding that must be built.
   */
  onRepeat(note: RepeatNote, rebuild: () => AuditEvent): Finding[] | null {
    return this.detector.onRepeat(
      note,
      (ev) => this.enricher.enrich(ev),
      () => this.enricher.enrich(rebuild()),
    );
  }

  /** An event the native triage summarized (of `node` in a replay of several): its process facts only, for later events' chains. */
  onProcessNote(note: ProcessNote, node: string | null = null): void {
    this.enricher.noteProcess(note, node);
    this.detector.onProcessNote();
  }

  /** A process note equal to the previous one but for its stamp (replay); false: give it in full. */
  onProcessNoteAgain(pid: number, node: string | null = null): boolean {
    if (!this.enricher.noteProcessAgain(pid, node)) return false;
    this.detector.onProcessNote();
    return true;
  }

  tick(nowMs: number): Finding[] {
    return this.detector.tick(nowMs);
  }
}

/** Both stages from one options object (the enrich options go to the enricher, the rest to the detector). */
export function createHostStages(opts: DetectorOptions & EnricherOptions): HostStages {
  const { processTable, users, podUidOf, containerMeta, objects, tokenClaims, ...detect } = opts;
  return new HostStages(new Enricher({ processTable, users, podUidOf, containerMeta, objects, tokenClaims }), createDetector(detect));
}
