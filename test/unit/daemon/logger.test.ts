import { describe, expect, it } from 'vitest';
import { sink } from './log-sink';
import { RateLimitedLog, createLogger } from '../../../src/daemon/logger';


describe('logger', () => {
  it('writes JSON lines at the configured level and redacts tokens', () => {
    const s = sink();
    const log = createLogger('warn', s.stream);
    log.info('hidden');
    log.warn({ output: { name: 'hec', token: 'abc' } }, 'shown');
    expect(s.lines).toHaveLength(1);
    expect(s.lines[0]).toMatchObject({ level: 'warn', msg: 'shown', output: { name: 'hec', token: '[redacted]' } });
    expect(typeof s.lines[0]?.time).toBe('string');
  });

  it('RateLimitedLog: one line per cause per interval, counts carried into the next line', () => {
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
});
