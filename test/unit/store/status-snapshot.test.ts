import { describe, expect, it } from 'vitest';
import { readStatusSnapshot, writeStatusSnapshot, type StatusSnapshot } from '../../../src/daemon/status-snapshot';
import type { StateStore } from '../../../src/store/types';

function memState(): StateStore & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: (k) => map.get(k), set: (k, v) => void map.set(k, v) };
}

const snap: StatusSnapshot = {
  pid: 123,
  startedMs: 1,
  updatedMs: 2,
  version: '0.1.0',
  mode: 'unicast',
  immutable: false,
  kernel: { enabled: 1, pid: 123, backlog: 0, backlogLimit: 8192, lost: 0, failure: 1, rateLimit: 0, backlogWaitTime: 60000 },
  rates: { recordsPerSec: 10, eventsPerSec: 3 },
  counters: { records: 100 },
  drops: { enobufs: 1 },
  bounded: { cut: 2 },
  outbox: { collector: 4 },
  lastShip: { collector: 5, hec: null },
  findingsToday: 7,
};

describe('status snapshot', () => {
  it('round-trips through the state store under key "status"', () => {
    const st = memState();
    expect(readStatusSnapshot(st)).toBeNull();
    writeStatusSnapshot(st, snap);
    expect(st.map.has('status')).toBe(true);
    expect(readStatusSnapshot(st)).toEqual(snap);
  });

  it('returns null for garbage and fills fields an older writer left out', () => {
    const st = memState();
    st.set('status', '{not json');
    expect(readStatusSnapshot(st)).toBeNull();
    st.set('status', JSON.stringify({ pid: 1, startedMs: 1, updatedMs: 2 }));
    expect(readStatusSnapshot(st)?.drops).toEqual({});
  });
});
