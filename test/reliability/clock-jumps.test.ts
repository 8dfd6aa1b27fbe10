/**
 * Clock jumps. The reassembler ages events on the wall clock (live streams); the detector's
 * sequence windows use event time, which the kernel also takes from the wall clock. With a fake
 * clock injected (the real system clock is never touched):
 *  - a jump forward emits the events in flight (aged out) and nothing is lost: records arriving later
 *    for those events are counted as late and still delivered; nothing throws;
 *  - a jump backward does not stall ageing for the length of the jump: events in flight still
 *    complete maxAgeMs after the jump;
 *  - the detector's tick with jumping time neither throws nor emits anything by itself, and its
 *    state stays bounded.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event';
import { Reassembler } from '../../src/audit/reassembler';
import { createHostStages } from '../../src/pipeline/host-stages';

const HOUR = 3_600_000;

/** A syscall event's records (no EOE yet) at audit time `sec`, serial `serial`. */
function syscallRecords(sec: number, serial: number): { type: number; text: string }[] {
  const stamp = `audit(${sec}.000:${serial}):`;
  return [
    { type: 1300, text: `${stamp} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=${1000 + serial} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="true" exe="/usr/bin/true" key="credwatch:exec"` },
    { type: 1309, text: `${stamp} argc=1 a0="true"` },
  ];
}
const eoe = (sec: number, serial: number) => ({ type: 1320, text: `audit(${sec}.000:${serial}): ` });

function rig(maxAgeMs = 2000) {
  let clock = 1_700_000_000_000;
  const events: AuditEvent[] = [];
  const r = new Reassembler({ maxAgeMs, now: () => clock, onEvent: (ev) => events.push(ev) });
  return {
    r,
    events,
    set: (t: number) => (clock = t),
    get: () => clock,
  };
}

describe('reassembler under clock jumps', () => {
  it('a jump forward ages out what is in flight without losing records; late parts are delivered, flagged', () => {
    const t = rig();
    // One complete event first so the stream is known to carry EOE.
    for (const rec of syscallRecords(1_700_000_000, 1)) t.r.push(rec);
    t.r.push(eoe(1_700_000_000, 1));
    for (let s = 2; s <= 10; s++) for (const rec of syscallRecords(1_700_000_000, s)) t.r.push(rec);
    t.set(t.get() + HOUR);
    t.r.tick();
    expect(t.events.length).toBe(10);
    // The EOEs arrive after the jump: each is a late record of an emitted event, still delivered.
    for (let s = 2; s <= 10; s++) t.r.push(eoe(1_700_000_000, s));
    t.r.flush();
    expect(t.r.stats.lateRecords).toBe(9);
    const records = t.events.reduce((n, ev) => n + ev.records.length, 0);
    expect(records).toBe(t.r.stats.records);
    expect(t.r.stats.parseErrors).toBe(0);
  });

  it('a jump backward does not stall ageing: events in flight complete maxAgeMs after the jump', () => {
    const t = rig(2000);
    for (const rec of syscallRecords(1_700_000_000, 1)) t.r.push(rec);
    t.r.push(eoe(1_700_000_000, 1));
    for (let s = 2; s <= 5; s++) for (const rec of syscallRecords(1_700_000_000, s)) t.r.push(rec);
    expect(t.events.length).toBe(1);
    t.set(t.get() - HOUR);
    t.r.tick();
    // New events after the jump too.
    for (let s = 6; s <= 8; s++) for (const rec of syscallRecords(1_700_000_000 - 3600, s)) t.r.push(rec);
    t.set(t.get() + 1000);
    t.r.tick();
    expect(t.events.length).toBe(1); // not yet: only 1 s since the jump
    t.set(t.get() + 1500);
    t.r.tick();
    expect(t.events.length).toBe(8); // everything in flight aged out 2 s after the jump, not an hour
    expect(t.events.slice(1).every((ev) => ev.incomplete)).toBe(true);
  });

  it('the in-flight set stays bounded whatever the clock does', () => {
    const t = rig(2000);
    let serial = 1;
    for (let round = 0; round < 50; round++) {
      t.set(t.get() + (round % 2 === 0 ? -HOUR : HOUR / 2));
      for (let i = 0; i < 200; i++) for (const rec of syscallRecords(1_700_000_000 + round, serial++)) t.r.push(rec);
      t.r.tick();
      expect((t.r as unknown as { inFlightCount: number }).inFlightCount).toBeLessThanOrEqual(4096);
    }
    t.r.flush();
    expect(t.events.reduce((n, ev) => n + ev.records.length, 0)).toBe(t.r.stats.records);
  });
});

describe('detector under clock jumps', () => {
  it('tick with time jumping both ways neither throws nor invents findings', () => {
    let clock = 1_700_000_000_000;
    const det = createHostStages({ host: 'clock', users: null, now: () => clock });
    for (const jump of [HOUR, -2 * HOUR, 24 * HOUR, -24 * HOUR, 0]) {
      clock += jump;
      expect(det.tick(clock)).toEqual([]);
    }
    expect(det.detector.stats.findings).toBe(0);
  });
});
