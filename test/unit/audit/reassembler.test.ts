import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { Reassembler, type ReassemblerOptions } from '../../../src/audit/reassembler';
import { fixtureLines, fixtureStreams, reassembleLines } from './fixtures';

const rec = (type: number, serial: number, body = '', ts = '1700000000.000') => ({ type, text: `audit(${ts}:${serial}): ${body}` });

function collector(opts: Omit<Partial<ReassemblerOptions>, 'onEvent'> = {}) {
  const events: AuditEvent[] = [];
  const r = new Reassembler({ ...opts, onEvent: (e) => events.push(e) });
  return { r, events };
}

describe('Reassembler completion rules', () => {
  it('completes a syscall event on EOE', () => {
    const { r, events } = collector();
    r.push(rec(1300, 10, 'arch=c000003e syscall=59 success=yes exit=0 pid=1'));
    r.push(rec(1327, 10, 'proctitle=6C73'));
    expect(events).toHaveLength(0);
    r.push(rec(1320, 10));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: '1700000000.000:10', types: ['SYSCALL', 'PROCTITLE', 'EOE'], incomplete: false });
    expect(events[0]!.time).toBe('2023-11-14T22:13:20.000Z');
  });

  it('emits user-space messages at once as single-record events', () => {
    const { r, events } = collector();
    r.push(rec(1123, 11, "pid=1 uid=0 msg='cwd=\"/\" cmd=6C73 res=success'"));
    r.push(rec(1006, 12, 'pid=1 uid=0 old-auid=4294967295 auid=0 res=1')); // LOGIN is kernel: waits
    expect(events.map((e) => e.types)).toEqual([['USER_CMD']]);
    expect(r.inFlight).toBe(1);
  });

  it('builds the event from whatever record arrives first (EXECVE before SYSCALL)', () => {
    const { r, events } = collector();
    r.push(rec(1309, 13, 'argc=1 a0="id"'));
    r.push(rec(1300, 13, 'arch=c000003e syscall=59 success=yes exit=0 pid=7 comm="id"'));
    r.push(rec(1320, 13));
    expect(events[0]!.types).toEqual(['EXECVE', 'SYSCALL', 'EOE']);
    expect(events[0]!.process).toMatchObject({ pid: 7, comm: 'id', argv: ['id'] });
  });

  it('ages events without EOE on the wall clock when idle (tick), flagging syscall events incomplete', () => {
    let now = 1000;
    const { r, events } = collector({ maxAgeMs: 2000, now: () => now });
    r.push(rec(1300, 19, 'syscall=1')); // this stream carries EOE...
    r.push(rec(1320, 19));
    events.length = 0;
    r.push(rec(1300, 20, 'syscall=42 success=no exit=-115')); // ...so a SYSCALL without one is cut short
    r.push(rec(1305, 21, 'op=add_rule key="credwatch:x" list=4 res=1')); // CONFIG_CHANGE alone
    now = 2999;
    r.tick();
    expect(events).toHaveLength(0);
    now = 3000;
    r.tick();
    expect(events.map((e) => [e.serial, e.incomplete])).toEqual([
      [20, true], // a SYSCALL without its EOE: the end was not seen
      [21, false], // a lone CONFIG_CHANGE: nothing else was coming
    ]);
    expect(events[1]!.key).toBe('credwatch:x');
    expect(r.stats.incomplete).toBe(1);
  });

  it('does not flag events incomplete on a stream that never carries EOE (auditd 3.x logs)', () => {
    let now = 0;
    const { r, events } = collector({ maxAgeMs: 2000, now: () => now });
    r.push(rec(1300, 22, 'syscall=59'));
    r.push(rec(1309, 22, 'argc=1 a0="id"'));
    now = 5000;
    r.tick();
    expect(events.map((e) => [e.types.join(','), e.incomplete])).toEqual([['SYSCALL,EXECVE', false]]);
  });

  it('replay ages by a window of records, not by timestamps', () => {
    const { r, events } = collector({ maxAgeRecords: 3 });
    r.push(rec(1300, 23, 'syscall=59', '1700000000.000'));
    r.push(rec(1300, 24, 'syscall=59', '1700009999.000')); // hours later in audit time: still open
    r.push(rec(1302, 23, 'item=0 name="/x"', '1700000000.000'));
    expect(events).toHaveLength(0);
    r.push(rec(1300, 25, 'syscall=59', '1700009999.000')); // 3 records after event 23 began: it is done
    expect(events.map((e) => e.types.join(','))).toEqual(['SYSCALL,PATH']);
    expect(r.stats.lateRecords).toBe(0);
  });

  it('bounds events in flight: evicts the oldest, counted, never dropped', () => {
    const { r, events } = collector({ maxInFlight: 3, maxAgeMs: Infinity });
    r.push(rec(1320, 99)); // an EOE: this stream carries them, so evicted syscall events are cut short
    events.length = 0;
    for (let s = 1; s <= 5; s++) r.push(rec(1300, s, 'syscall=2'));
    expect(events.map((e) => e.serial)).toEqual([1, 2]);
    expect(events.every((e) => e.incomplete)).toBe(true);
    expect(r.stats.evicted).toBe(2);
    r.flush();
    expect(events.map((e) => e.serial)).toEqual([1, 2, 3, 4, 5]);
    expect(r.stats).toMatchObject({ events: 6, evicted: 2, incomplete: 5 }); // 6 = the EOE-only event too
  });

  it('emits a late record as its own incomplete event and counts it', () => {
    const { r, events } = collector();
    r.push(rec(1300, 30, 'syscall=59'));
    r.push(rec(1320, 30));
    r.push(rec(1302, 30, 'item=0 name="/bin/ls"'));
    r.flush();
    expect(events.map((e) => [e.types.join(','), e.incomplete])).toEqual([
      ['SYSCALL,EOE', false],
      ['PATH', true],
    ]);
    expect(events[1]!.paths[0]!.name).toBe('/bin/ls');
    expect(r.stats.lateRecords).toBe(1);
  });

  it('keys by node as well as serial', () => {
    const { r, events } = collector();
    r.push(rec(1300, 40, 'syscall=1'), 'a');
    r.push(rec(1300, 40, 'syscall=2'), 'b');
    r.push(rec(1320, 40), 'b');
    r.push(rec(1320, 40), 'a');
    expect(events.map((e) => [e.node, e.syscall!.nr])).toEqual([
      ['b', 2],
      ['a', 1],
    ]);
  });

  it('treats the same serial with another timestamp as another event', () => {
    const { r, events } = collector();
    r.push(rec(1300, 50, 'syscall=1', '1700000000.000'));
    r.push(rec(1300, 50, 'syscall=2', '1800000000.000'));
    r.push(rec(1320, 50, '', '1800000000.000'));
    // The first is finished when the second arrives; no EOE had been seen yet, so it is not flagged.
    expect(events.map((e) => [e.id, e.incomplete])).toEqual([
      ['1700000000.000:50', false],
      ['1800000000.000:50', false],
    ]);
  });

  it('counts parse errors and carries on', () => {
    const { r, events } = collector();
    r.push({ type: 1300, text: 'not a record' });
    r.push(rec(1320, 60));
    expect(r.stats.parseErrors).toBe(1);
    expect(events).toHaveLength(1);
  });
});

describe('serial gaps', () => {
  it('counts serials skipped forward and takes back ones that arrive late', () => {
    const { r } = collector();
    for (const s of [100, 101, 104]) r.push(rec(1123, s, 'pid=1'));
    expect(r.stats.serialGaps).toBe(2); // 102 and 103 missing
    r.push(rec(1123, 103, 'pid=1'));
    expect(r.stats.serialGaps).toBe(1);
  });

  it('does not count a restart (huge jump) or another node as a gap', () => {
    const { r } = collector();
    r.push(rec(1123, 5, 'pid=1'));
    r.push(rec(1123, 9_000_000, 'pid=1'));
    r.push(rec(1123, 7, 'pid=1'), 'other');
    expect(r.stats.serialGaps).toBe(0);
  });
});

/** Deterministic PRNG (mulberry32) so shuffled fixtures are the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const stampOf = (line: string): string => /audit\(([^)]*)\)/.exec(line)![1]!;

/** Interleaves the events' records randomly while keeping each event's own record order. */
function interleave(lines: string[], seed: number): string[] {
  const groups = new Map<string, string[]>();
  for (const l of lines) {
    const k = stampOf(l);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(l);
  }
  const queues = [...groups.values()];
  const rand = rng(seed);
  const out: string[] = [];
  while (queues.length > 0) {
    const i = Math.floor(rand() * queues.length);
    out.push(queues[i]!.shift()!);
    if (queues[i]!.length === 0) queues.splice(i, 1);
  }
  return out;
}

/** Shuffles records within each event too, keeping only EOE last (it is what completes an event). */
function scramble(lines: string[], seed: number): string[] {
  const rand = rng(seed);
  const groups = new Map<string, string[]>();
  for (const l of lines) {
    const k = stampOf(l);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(l);
  }
  const shuffled: string[] = [];
  for (const g of groups.values()) {
    const eoe = g.filter((l) => l.includes('type=EOE'));
    const rest = g.filter((l) => !l.includes('type=EOE'));
    for (let i = rest.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [rest[i], rest[j]] = [rest[j]!, rest[i]!];
    }
    shuffled.push(...rest, ...eoe);
  }
  return interleave(shuffled, seed + 1);
}

/** Events compared regardless of emission order and of record order inside an event. */
function canonical(events: AuditEvent[]): unknown[] {
  return events
    .map((e) => ({ ...e, records: undefined, types: [...e.types].sort() }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

describe('interleaved and out-of-order input', () => {
  it('go-libaudit out_of_order.log reassembles to the same events as normal.log', () => {
    const normal = reassembleLines(fixtureLines('go-libaudit/testdata/normal.log'));
    const ooo = reassembleLines(fixtureLines('go-libaudit/testdata/out_of_order.log'));
    expect(ooo.stats.lateRecords).toBe(0);
    expect(canonical(ooo.events)).toEqual(canonical(normal.events));
    expect(ooo.events).toHaveLength(5);
  });

  const twins = [
    'OMS-Auditd-Plugin/TestEventData.raw_test_events.log',
    'OMS-Auditd-Plugin/TestEventData.oversized_event.log',
    'hub/auditd-suid-crash.log',
    'go-libaudit/aucoalesce/testdata/ubuntu-17.04-linux-4.10.0.yaml',
    'go-libaudit/aucoalesce/testdata/ubuntu-16.10-linux-4.8.0.yaml',
  ];
  for (const rel of twins) {
    it(`${rel}: interleaving events (seeded) gives exactly the same events`, () => {
      for (const lines of fixtureStreams(rel)) {
        const ordered = reassembleLines(lines);
        for (const seed of [1, 2, 3]) {
          const mixed = reassembleLines(interleave(lines, seed));
          expect(mixed.stats.lateRecords).toBe(0);
          const strip = (evs: AuditEvent[]) => evs.map((e) => ({ ...e, records: undefined })).sort((a, b) => (a.id < b.id ? -1 : 1));
          expect(strip(mixed.events)).toEqual(strip(ordered.events));
        }
      }
    });
    it(`${rel}: shuffling records inside events too (EOE kept last) gives the same events`, () => {
      for (const lines of fixtureStreams(rel)) {
        const ordered = reassembleLines(lines);
        for (const seed of [7, 8, 9]) {
          const mixed = reassembleLines(scramble(lines, seed));
          expect(canonical(mixed.events)).toEqual(canonical(ordered.events));
        }
      }
    });
  }
});
