/**
 * The agent's running counts and what `credwatch status` shows of them. The parts (reader, pipeline,
 * detector, writer) keep cumulative counters; once a tick this turns each into the increase since the
 * last tick and hands it to /metrics by cause (drops, triage, signals), so the status snapshot and
 * /metrics read the same numbers. Record and event rates are computed here for the status snapshot.
 */
import { matchStats } from '../detect/linear-regex';
import type { DetectorStats, RepeatStats } from '../detect/engine';
import type { AuditPipeline } from '../pipeline/audit-pipeline';
import type { BatchWriterCounters } from '../store/batch-writer';
import type { NetlinkCounters } from '../sources/netlink';
import type { RateLimitedLog } from '../log/rate-limit';
import type { Metrics } from './metrics';
import type { StatusSnapshot } from './status-snapshot';

/** Where the counts go: the metrics registry and the rate-limited drop log. */
export interface StatsSinks {
  metrics: Metrics;
  dropLog: RateLimitedLog;
}

/** The cumulative counters read each tick. */
export interface StatsSources {
  reader: NetlinkCounters | null;
  detector: { stats: DetectorStats };
  /** The Kubernetes detector measures the same per-event budget. */
  kube?: { stats: { overBudget: number } };
  writer: { counters: Readonly<BatchWriterCounters> };
  pipeline: Pick<AuditPipeline, 'stats'>;
}

/** What the snapshot needs from the agent besides the counts. */
export type SnapshotView = Pick<StatusSnapshot, 'pid' | 'startedMs' | 'version' | 'mode' | 'immutable' | 'kernel' | 'outbox' | 'lastShip'>;

function dayStartMs(now: number): number {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export class AgentStats {
  /** Records and events seen (a process note counts as the records it stands for). */
  records = 0;
  events = 0;
  private rate: { atMs: number; records: number; events: number; recordsPerSec: number; eventsPerSec: number };
  private findingsToday = 0;
  private todayStart: number;

  private lastNetlink: NetlinkCounters | null = null;
  private lastIncidentCuts = { evidenceCut: 0, evicted: 0, coalesced: 0 };
  /** The settled serial-gap count at the last tick, and the reassembler's raw count then. */
  private lastGaps = 0;
  private prevGapSample = 0;
  private lastIncomplete = 0;
  private lastUringUnknown = 0;
  private lastArgvCut = { events: 0, bytes: 0 };
  private lastTextsCut = matchStats.textsCut;
  private lastCompileErrors = matchStats.compileErrors;
  private lastOverBudget = 0;
  private lastParseErrors = 0;

  constructor(now = Date.now()) {
    this.rate = { atMs: now, records: 0, events: 0, recordsPerSec: 0, eventsPerSec: 0 };
    this.todayStart = dayStartMs(now);
  }

  /** Findings stored since local midnight: from the store at start and at each day change. */
  loadFindingsToday(countSince: (ms: number) => number): void {
    this.findingsToday = countSince(this.todayStart);
  }

  /** A finding opened (later revisions of an incident are not new findings). */
  countNewFinding(): void {
    this.findingsToday++;
  }

  /** Turns the reader's and the pipeline's cumulative counters into drops by cause. */
  publishDeltas(src: StatsSources, { metrics, dropLog }: StatsSinks): void {
    const c = src.reader;
    if (c) {
      const prev = this.lastNetlink;
      const delta = (k: keyof NetlinkCounters): number => Math.max(0, c[k] - (prev ? prev[k] : 0));
      const drops: [string, number][] = [
        ['queue_overflow', delta('queueDrops')],
        ['enobufs', delta('enobufs')],
        ['truncated', delta('truncated')],
        ['source_backlog', delta('sourceDrops')],
      ];
      metrics.countSignal('reader_pause', delta('queueWaits'));
      metrics.countTriage('summarized', delta('summarized'));
      metrics.countTriage('passed', delta('triagePassed'));
      metrics.countTriage('unsure', delta('triageUnsure'));
      metrics.countTriage('expired', delta('triageExpired'));
      metrics.countRepeat('noted', delta('repeatNotes'));
      metrics.countRepeat('template', delta('repeatTemplates'));
      metrics.countRepeat('template_evicted', delta('repeatEvictions'));
      metrics.countRepeat('skipped', delta('repeatSkipped'));
      for (const [cause, n] of drops) {
        if (n > 0) {
          metrics.countDrop(cause, n);
          dropLog.report(cause, n, 'audit records dropped in the agent');
        }
      }
      this.lastNetlink = c;
    }
    // Incident cuts lose no finding (the event is counted in the incident's `count`) but must be visible.
    const inc = src.detector.stats.incidents;
    metrics.countSignal('incident_evidence_cut', inc.evidenceCut - this.lastIncidentCuts.evidenceCut);
    metrics.countSignal('incident_evicted', inc.evicted - this.lastIncidentCuts.evicted);
    // Revisions superseded before they were written (the later one carries everything): not a loss.
    const coalesced = src.writer.counters.coalesced;
    metrics.countSignal('revision_coalesced', coalesced - this.lastIncidentCuts.coalesced);
    this.lastIncidentCuts = { evidenceCut: inc.evidenceCut, evicted: inc.evicted, coalesced };
    this.publishRepeats(src.detector.stats.repeats, metrics);
    const st = src.pipeline.stats;
    // Serial gaps are a loss signal only in unicast mode with every event audited; the kernel numbers
    // events it never sends (filtered syscalls), so gaps are reported as a counter, not as drops.
    // The reassembler's count is net: an event that completes after a later one (two CPUs exiting
    // syscalls at once) opens a gap that closes when it arrives. Only a gap still open one tick later
    // is reported, or every such reorder spanning a tick would count as a gap for good.
    const settledGaps = Math.min(st.serialGaps, this.prevGapSample);
    this.prevGapSample = st.serialGaps;
    metrics.countSignal('serial_gap', settledGaps - this.lastGaps); // ignores a decrease
    this.lastGaps = settledGaps;
    metrics.countSignal('incomplete_event', st.incomplete - this.lastIncomplete);
    this.lastIncomplete = st.incomplete;
    // io_uring ops whose number we do not know: kept (kind "other"), counted so nobody mistakes silence for coverage.
    metrics.countSignal('uring_unknown_op', st.uringUnknownOps - this.lastUringUnknown);
    this.lastUringUnknown = st.uringUnknownOps;
    // argv cut to what the stages read (src/audit/argv-bound.ts): nothing lost to them, but an
    // argv of a megabyte is odd and must be visible; the finding says so with its `…[+N bytes]`.
    metrics.countSignal('argv_cut', st.argvCutEvents - this.lastArgvCut.events);
    metrics.countSignal('argv_cut_bytes', st.argvCutBytes - this.lastArgvCut.bytes);
    this.lastArgvCut = { events: st.argvCutEvents, bytes: st.argvCutBytes };
    // Hostile-input guards (linear-regex.ts, engine.ts): texts cut for matching, slow evaluations.
    metrics.countSignal('match_text_cut', matchStats.textsCut - this.lastTextsCut);
    this.lastTextsCut = matchStats.textsCut;
    metrics.countSignal('regex_compile_error', matchStats.compileErrors - this.lastCompileErrors);
    this.lastCompileErrors = matchStats.compileErrors;
    const over = src.detector.stats.overBudget + (src.kube?.stats.overBudget ?? 0);
    metrics.countSignal('event_over_budget', over - this.lastOverBudget);
    this.lastOverBudget = over;
    if (st.parseErrors > this.lastParseErrors) metrics.countDrop('parse_error', st.parseErrors - this.lastParseErrors);
    this.lastParseErrors = st.parseErrors;
  }

  private lastRepeats = { collapsed: 0, built: 0, expanded: {} as Record<string, number> };

  /** The detector's side of repeat collapse, as deltas (its counters are cumulative). */
  private publishRepeats(r: RepeatStats, metrics: Metrics): void {
    const last = this.lastRepeats;
    metrics.countRepeat('collapsed', r.collapsed - last.collapsed);
    metrics.countRepeat('built', r.built - last.built);
    for (const [why, n] of Object.entries(r.expanded)) metrics.countRepeat(`expanded_${why}`, n - (last.expanded[why] ?? 0));
    this.lastRepeats = { collapsed: r.collapsed, built: r.built, expanded: { ...r.expanded } };
  }

  /** The status snapshot at `now`: rates since the previous snapshot, counters as /metrics has them. */
  snapshot(now: number, view: SnapshotView, metrics: Metrics, countSince: (ms: number) => number): StatusSnapshot {
    const secs = Math.max(0.001, (now - this.rate.atMs) / 1000);
    this.rate = {
      atMs: now,
      records: this.records,
      events: this.events,
      recordsPerSec: (this.records - this.rate.records) / secs,
      eventsPerSec: (this.events - this.rate.events) / secs,
    };
    if (now - this.todayStart >= 86_400_000) {
      this.todayStart = dayStartMs(now);
      this.findingsToday = countSince(this.todayStart);
    }
    return {
      pid: view.pid,
      startedMs: view.startedMs,
      updatedMs: now,
      version: view.version,
      mode: view.mode,
      immutable: view.immutable,
      kernel: view.kernel,
      rates: { recordsPerSec: Math.round(this.rate.recordsPerSec * 10) / 10, eventsPerSec: Math.round(this.rate.eventsPerSec * 10) / 10 },
      counters: metrics.snapshotCounters(),
      drops: metrics.snapshotDrops(),
      bounded: metrics.snapshotBounded(),
      outbox: view.outbox,
      lastShip: view.lastShip,
      findingsToday: this.findingsToday,
    };
  }
}
