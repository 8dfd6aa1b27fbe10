/**
 * URINGOP (type 1336) records: the io_uring op is what the event is, whatever syscall carried it
 * (io_uring_enter for inline completions, none for io-wq workers). Bad input — an op number we do
 * not know, fields we do not know — is parsed, counted and emitted, never dropped.
 */
import { describe, expect, it } from 'vitest';
import { eventKind } from '../../../src/enrich/event-view';
import { reassembleLines, fixtureLines } from './fixtures';

const LOG = 'recorded/credwatch-lab-io_uring.log';

describe('URINGOP events', () => {
  const { events, stats } = reassembleLines(fixtureLines(LOG));
  const bySerial = (n: number) => events.find((e) => e.serial === n)!;

  it('an inline openat: the op from URINGOP, the process from SYSCALL, PATH/CWD attached, kind open', () => {
    const ev = bySerial(4077);
    expect(ev.uring).toEqual({ op: 18, name: 'openat', success: true, exit: 0 });
    expect(ev.syscall?.name).toBe('io_uring_enter');
    expect(ev.process?.exe).toBe('/tmp/uring-read');
    expect(ev.process?.cwd).toBe('/root');
    expect(ev.paths[0]).toMatchObject({ nametype: 'NORMAL', inode: 2146673, dev: '00:2a' });
    expect(ev.key).toBe('credwatch:pod-token');
    expect(eventKind(ev)).toBe('open');
  });

  it('a connect retried by io_uring (two URINGOP records): the final outcome, the SOCKADDR, kind connect', () => {
    const ev = bySerial(4078);
    expect(ev.types).toEqual(['URINGOP', 'URINGOP', 'SYSCALL', 'SOCKADDR', 'EOE']);
    expect(ev.uring).toEqual({ op: 16, name: 'connect', success: true, exit: 0 });
    expect(ev.sockaddr).toMatchObject({ family: 'unix', path: '/run/docker.sock' });
    expect(eventKind(ev)).toBe('connect');
  });

  it('a worker op without SYSCALL: URINGOP stands in for it (arch io_uring, pid and key from URINGOP)', () => {
    const ev = bySerial(4079);
    expect(ev.syscall).toEqual({ arch: 'io_uring', nr: 18, name: 'openat', success: true, exit: 0 });
    expect(ev.process).toMatchObject({ pid: 28406, ppid: 28396, uid: 0, exe: null });
    expect(ev.key).toBe('credwatch:node-cred');
    expect(eventKind(ev)).toBe('open');
  });

  it('an unknown op number with unknown fields is emitted, kind other, with a problem, and counted', () => {
    const ev = bySerial(4080);
    expect(ev.uring).toEqual({ op: 250, name: null, success: true, exit: 0 });
    expect(ev.problems).toEqual(['uringop: unknown io_uring op 250']);
    expect(ev.key).toBe('credwatch:probe');
    expect(eventKind(ev)).toBe('other');
    expect(ev.records.some((r) => r.text.includes('future_field=7'))).toBe(true);
    expect(stats.uringEvents).toBe(4);
    expect(stats.uringUnknownOps).toBe(1);
    expect(stats.events).toBe(4);
    expect(stats.parseErrors).toBe(0);
  });

  it('a URINGOP record with no uring_op at all is still an event, counted as unknown', () => {
    const r = reassembleLines([
      'type=URINGOP msg=audit(1796195591.000:5000): success=no exit=-22 pid=7 uid=0 key=(null)',
      'type=EOE msg=audit(1796195591.000:5000): ',
    ]);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]?.uring).toEqual({ op: null, name: null, success: false, exit: -22 });
    expect(r.events[0]?.problems).toEqual(['uringop: unknown io_uring op (missing)']);
    expect(r.stats.uringUnknownOps).toBe(1);
  });
});
