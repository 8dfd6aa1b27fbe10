/**
 * AgentStats turns cumulative counters into per-tick increases on /metrics: a drop counted once per
 * record however many ticks pass, a serial gap only once it stays open for a tick, and the status
 * snapshot's rates from the counts since the previous snapshot.
 */
import { describe, expect, it } from 'vitest';

import type { DetectorStats } from '../../../src/detect/engine';
import { AgentStats, type StatsSources } from '../../../src/daemon/agent-stats';
import type { RateLimitedLog } from '../../../src/log/rate-limit';
import { createMetrics } from '../../../src/daemon/metrics';
import type { NetlinkCounters } from '../../../src/sources/netlink';

function reader(over: Partial<NetlinkCounters> = {}): NetlinkCounters {
  return {
    received: 0, bytes: 0, batches: 0, delivered: 0, queueDrops: 0, enobufs: 0, truncated: 0, badSender: 0, ignored: 0,
    queued: 0, queueWaits: 0, summarized: 0, summarizedRecords: 0, triagePassed: 0, triageUnsure: 0, triageExpired: 0,
    procSnapshots: 0, repeatNotes: 0, repeatTemplates: 0, repeatEvictions: 0, repeatSkipped: 0, sourceDrops: 0, pending: 0, ...over,
  };
}

function sources(r: NetlinkCounters | null, serialGaps = 0, argvCut = { argvCutEvents: 0, argvCutArgs: 0, argvCutBytes: 0 }): StatsSources {
  const detectorStats = { overBudget: 0, incidents: { evidenceCut: 0, evicted: 0 }, repeats: { collapsed: 0, expanded: {}, built: 0 } } as unknown as DetectorStats;
  const pipelineStats = { serialGaps, incomplete: 0, uringUnknownOps: 0, parseErrors: 0, ...argvCut };
  return {
    reader: r,
    detector: { stats: detectorStats },
    writer: { counters: { accepted: 0, written: 0, duplicates: 0, flushes: 0, writeErrors: 0, dropped: 0, coalesced: 0 } as never },
    pipeline: { stats: pipelineStats } as never,
  };
}

function sinks() {
  const reported: [string, number][] = [];
  const dropLog = { report: (cause: string, n: number) => void reported.push([cause, n]) } as unknown as RateLimitedLog;
  return { metrics: createMetrics({ processMetrics: false }), dropLog, reported };
}

describe('AgentStats', () => {
  it('counts each reader drop once, as the increase since the previous tick', () => {
    const stats = new AgentStats(0);
    const out = sinks();
    stats.publishDeltas(sources(reader({ queueDrops: 5, enobufs: 1 })), out);
    stats.publishDeltas(sources(reader({ queueDrops: 5, enobufs: 1 })), out);
    stats.publishDeltas(sources(reader({ queueDrops: 12, enobufs: 1 })), out);
    expect(out.metrics.snapshotDrops()).toMatchObject({ queue_overflow: 12, enobufs: 1 });
    expect(out.reported).toEqual([['queue_overflow', 5], ['enobufs', 1], ['queue_overflow', 7]]);
  });

  it('reports a serial gap only when it is still open one tick later', () => {
    const stats = new AgentStats(0);
    const out = sinks();
    const gaps = () => out.metrics.snapshotCounters()['credwatch_stream_signals_total{kind="serial_gap"}'] ?? 0;
    stats.publishDeltas(sources(null, 3), out); // three gaps open now
    expect(gaps()).toBe(0);
    stats.publishDeltas(sources(null, 1), out); // two closed (late events arrived): one settled
    expect(gaps()).toBe(1);
  });

  it('publishes the argv cut (events and bytes not decoded) as signals, once per cut', () => {
    const stats = new AgentStats(0);
    const out = sinks();
    const signal = (kind: string): number => out.metrics.snapshotCounters()[`credwatch_stream_signals_total{kind="${kind}"}`] ?? 0;
    stats.publishDeltas(sources(null, 0, { argvCutEvents: 2, argvCutArgs: 5, argvCutBytes: 900_000 }), out);
    stats.publishDeltas(sources(null, 0, { argvCutEvents: 2, argvCutArgs: 5, argvCutBytes: 900_000 }), out);
    expect([signal('argv_cut'), signal('argv_cut_bytes')]).toEqual([2, 900_000]);
    stats.publishDeltas(sources(null, 0, { argvCutEvents: 3, argvCutArgs: 6, argvCutBytes: 1_000_000 }), out);
    expect([signal('argv_cut'), signal('argv_cut_bytes')]).toEqual([3, 1_000_000]);
  });

  it('computes rates over the time since the previous snapshot and keeps the day count', () => {
    const stats = new AgentStats(0);
    const out = sinks();
    stats.loadFindingsToday(() => 4);
    stats.countNewFinding();
    const view = { pid: 1, startedMs: 0, version: 'x', mode: 'unicast', immutable: false, kernel: null, outbox: {}, lastShip: {} };
    stats.records += 300;
    stats.events += 100;
    const first = stats.snapshot(2_000, view, out.metrics, () => 0);
    expect(first.rates).toEqual({ recordsPerSec: 150, eventsPerSec: 50 });
    expect(first.findingsToday).toBe(5);
    stats.records += 10;
    expect(stats.snapshot(4_000, view, out.metrics, () => 0).rates).toEqual({ recordsPerSec: 5, eventsPerSec: 0 });
  });
});
