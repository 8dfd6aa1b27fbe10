/** The human-readable `credwatch status` report. Every value from the snapshot is escaped: it is data. */
import type { StatusSnapshot } from '../../daemon/status-snapshot';
import { fitCell } from './escape';
import { formatDuration, formatTime } from './time';

export interface StatusReport {
  db: string;
  running: boolean;
  /** Why we think the daemon is not running (absent when running). */
  notRunningReason?: string;
  snapshotAgeMs: number | null;
  uptimeMs: number | null;
  findingsToday: number;
  outbox: Record<string, number>;
  lastShip: Record<string, number | null>;
  snapshot: StatusSnapshot | null;
}

const e = (s: string | number) => fitCell(String(s), 200);

function kv(rec: Record<string, number | null>, fmt: (v: number | null) => string): string {
  const keys = Object.keys(rec).sort();
  return keys.length === 0 ? 'none' : keys.map((k) => `${e(k)} ${fmt(rec[k] ?? null)}`).join(', ');
}

export function renderStatus(r: StatusReport, nowMs: number): string {
  const out: string[] = [];
  const s = r.snapshot;
  if (r.running && s) {
    out.push(`daemon:        running (pid ${s.pid}, up ${formatDuration(r.uptimeMs ?? 0)}, version ${e(s.version)}, mode ${e(s.mode)})`);
  } else {
    out.push(`daemon:        not running (${r.notRunningReason ?? 'unknown'})`);
  }
  out.push(`database:      ${e(r.db)}`);
  if (r.running && s) {
    if (s.kernel) {
      const k = s.kernel;
      out.push(
        `kernel audit:  enabled ${k.enabled}${k.enabled === 2 ? ' (immutable)' : ''}, pid ${k.pid}${k.pid === s.pid ? ' (credwatch)' : ''}, ` +
          `backlog ${k.backlog}/${k.backlogLimit}, lost ${k.lost}, failure ${k.failure}, rate_limit ${k.rateLimit}, backlog_wait_time ${k.backlogWaitTime}`,
      );
    } else {
      out.push('kernel audit:  not read (replay or no access)');
    }
    if (s.immutable) out.push('               audit rules are immutable (enabled=2): running with the rules already loaded');
    out.push(`rates:         ${s.rates.recordsPerSec.toFixed(1)} records/s, ${s.rates.eventsPerSec.toFixed(1)} events/s`);
    out.push(`drops:         ${kv(s.drops, (v) => String(v ?? 0))}`);
    const signal = (kind: string): number => s.counters[`credwatch_stream_signals_total{kind="${kind}"}`] ?? 0;
    // Findings kept but changed to stay within bounds, and the hostile-input guards: never silent.
    const b = s.bounded;
    out.push(
      `size bounds:   ${b.cut ?? 0} findings cut to the size cap (marked truncated), ${b.set_aside ?? 0} set aside (refused alone as too large by an output, kept locally), ` +
        `${signal('argv_cut')} argvs cut to what the stages read (${signal('argv_cut_bytes')} bytes not decoded); ` +
        `${signal('match_text_cut')} texts cut for matching, ${signal('event_over_budget')} events over the time budget`,
    );
    const repeat = (outcome: string): number => s.counters[`credwatch_repeats_total{outcome="${outcome}"}`] ?? 0;
    if (repeat('noted') > 0 || repeat('template') > 0) {
      let expanded = 0;
      for (const [k, v] of Object.entries(s.counters)) if (k.startsWith('credwatch_repeats_total{outcome="expanded_')) expanded += v;
      out.push(
        `repeats:       ${repeat('noted')} events sent as repeat notes of ${repeat('template')} templates (${repeat('template_evicted')} evicted, ${repeat('skipped')} not eligible); ` +
          `${repeat('collapsed')} decided from their template, ${expanded} sent the full path, ${s.drops.repeat_template_unknown ?? 0} lost (template unknown)`,
      );
    }
    if (signal('io_uring_audit_unavailable') > 0) out.push('io_uring:      NOT audited: the kernel has no io_uring audit filter list (Linux >= 5.16)');
    else if (signal('io_uring_audited') > 0) out.push(`io_uring:      audited (opens of watched objects, connects); unknown ops seen ${signal('uring_unknown_op')}`);
  }
  out.push(`findings today (UTC): ${r.findingsToday}`);
  out.push(`outbox depth:  ${kv(r.outbox, (v) => String(v ?? 0))}`);
  out.push(`last ship:     ${kv(r.lastShip, (v) => (v === null ? 'never' : `${formatTime(v)} (${formatDuration(nowMs - v)} ago)`))}`);
  return out.join('\n') + '\n';
}
