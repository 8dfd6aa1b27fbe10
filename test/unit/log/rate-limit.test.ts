import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LogWindow, RateLimitedLog } from '../../../src/log/rate-limit';
import { createLogger } from '../../../src/daemon/logger';
import { readKubeAuditStream } from '../../../src/sources/kube-audit';
import { sink } from '../daemon/log-sink';

describe('LogWindow', () => {
  it('writes the first occurrence, holds back repeats within the interval, and reports them on the next line', () => {
    let t = 0;
    const w = new LogWindow(1000, () => t);
    expect(w.take()).toBe(0);
    t = 500;
    expect(w.take()).toBeNull();
    expect(w.take(2)).toBeNull();
    t = 1000;
    expect(w.take()).toBe(3);
    expect(w.total).toBe(5);
  });

  it('reopen lets the next occurrence through at once and keeps what was held back', () => {
    let t = 0;
    const w = new LogWindow(1000, () => t);
    w.take();
    t = 10;
    expect(w.take()).toBeNull();
    w.reopen();
    expect(w.take()).toBe(1);
    expect(w.take()).toBeNull();
  });

  it('drain hands over what is held back once, and counts as a line written', () => {
    let t = 0;
    const w = new LogWindow(1000, () => t);
    w.take();
    w.take();
    t = 100;
    expect(w.drain()).toBe(1);
    expect(w.drain()).toBe(0);
    t = 1050;
    expect(w.take()).toBeNull(); // the drained line was written at t=100
  });
});

describe('RateLimitedLog', () => {
  it('one line per cause per interval, counts carried into the next line', () => {
    const s = sink();
    let t = 0;
    const r = new RateLimitedLog(createLogger('info', s.stream), 10_000, () => t);
    r.report('enobufs', 2, 'dropped');
    r.report('enobufs', 3, 'dropped');
    r.report('queue_overflow', 1, 'dropped');
    t = 5000;
    r.report('enobufs', 4, 'dropped');
    t = 10_000;
    r.report('enobufs', 1, 'dropped');
    r.report('enobufs', 0, 'dropped'); // nothing to say
    r.flush();
    expect(s.lines.map((l) => [l.cause, l.count, l.total])).toEqual([
      ['enobufs', 2, 2],
      ['queue_overflow', 1, 1],
      ['enobufs', 8, 10],
    ]);
  });

  it('flush writes only the causes with occurrences held back', () => {
    const s = sink();
    let t = 0;
    const r = new RateLimitedLog(createLogger('info', s.stream), 10_000, () => t);
    r.report('a', 1, 'dropped');
    r.report('b', 1, 'dropped');
    t = 1;
    r.report('b', 2, 'dropped');
    r.flush();
    expect(s.lines.map((l) => [l.cause, l.count, l.total, l.msg])).toEqual([
      ['a', 1, 1, 'dropped'],
      ['b', 1, 1, 'dropped'],
      ['b', 2, 3, 'dropped (final count)'],
    ]);
  });
});

describe('the kube audit reader uses the same policy', () => {
  it('a flood of bad lines gives one warning per interval, the rest counted', async () => {
    const warnings: Record<string, unknown>[] = [];
    const logger = { warn: (obj: object) => void warnings.push(obj as Record<string, unknown>) };
    const lines = Array.from({ length: 50 }, (_, i) => `not json ${i}\n`).join('');
    const res = await readKubeAuditStream(Readable.from([lines]), 'flood.log', { logger });
    expect(res.stats.badLines).toBe(50);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ path: 'flood.log', suppressed: 0 });
  });
});
