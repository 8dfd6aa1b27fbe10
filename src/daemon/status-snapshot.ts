/**
 * The daemon publishes a status snapshot (every ~2 s) into agent_state so that `credwatch status`
 * can report on it from another process through a read-only connection, running daemon or not.
 */
import type { StateStore } from '../store/types';

export const STATUS_SNAPSHOT_KEY = 'status';

export interface KernelAuditStatus {
  enabled: number;
  pid: number;
  backlog: number;
  backlogLimit: number;
  lost: number;
  failure: number;
  rateLimit: number;
  backlogWaitTime: number;
}

export interface StatusSnapshot {
  pid: number;
  startedMs: number;
  updatedMs: number;
  version: string;
  mode: 'unicast' | 'multicast' | 'replay' | string;
  /** Kernel audit is locked (enabled=2): the agent runs with the rules it found. */
  immutable: boolean;
  kernel: KernelAuditStatus | null;
  rates: { recordsPerSec: number; eventsPerSec: number };
  counters: Record<string, number>;
  /** Drops by cause. */
  drops: Record<string, number>;
  /** Findings cut to the size cap (`cut`) and set aside by an output (`set_aside`). */
  bounded: Record<string, number>;
  /** Depth per output. */
  outbox: Record<string, number>;
  /** Last successful ship per output, epoch ms. */
  lastShip: Record<string, number | null>;
  findingsToday: number;
}

export function writeStatusSnapshot(state: StateStore, s: StatusSnapshot): void {
  state.set(STATUS_SNAPSHOT_KEY, JSON.stringify(s));
}

/** The last published snapshot, or null when none was written or it cannot be understood. */
export function readStatusSnapshot(state: StateStore): StatusSnapshot | null {
  const raw = state.get(STATUS_SNAPSHOT_KEY);
  if (raw === undefined) return null;
  try {
    const v = JSON.parse(raw) as unknown;
    if (!v || typeof v !== 'object') return null;
    const s = v as Partial<StatusSnapshot>;
    if (typeof s.pid !== 'number' || typeof s.updatedMs !== 'number' || typeof s.startedMs !== 'number') return null;
    // Fill what an older daemon may not have written, so readers need no guards.
    return {
      version: '',
      mode: 'unknown',
      immutable: false,
      kernel: null,
      rates: { recordsPerSec: 0, eventsPerSec: 0 },
      counters: {},
      drops: {},
      bounded: {},
      outbox: {},
      lastShip: {},
      findingsToday: 0,
      ...s,
    } as StatusSnapshot;
  } catch {
    return null;
  }
}
