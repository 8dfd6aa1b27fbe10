import { describe, expect, it } from 'vitest';
import { sink } from './log-sink';
import { createLogger } from '../../../src/daemon/logger';


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
});
