/**
 * PROCTITLE decoding (src/audit/proctitle.ts), including its one-entry cache: a storm repeats one
 * command line, and a cached answer must be the same as a fresh one and never shared with the caller.
 */
import { describe, expect, it } from 'vitest';
import { decodeProctitle } from '../../../src/audit/proctitle';

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex').toUpperCase();

function decode(value: string): ReturnType<typeof decodeProctitle> {
  const text = `proctitle=${value}`;
  return decodeProctitle(text, 'proctitle='.length, text.length, false);
}

describe('decodeProctitle', () => {
  it('splits NUL-separated arguments and joins them for the title', () => {
    expect(decode(hex('curl\0-s\0http://x/'))).toEqual({ title: 'curl -s http://x/', parts: ['curl', '-s', 'http://x/'] });
  });

  it('a repeated value gives the same answer, as a copy the caller may change', () => {
    const v = hex('loadgen\0--child-connect');
    const a = decode(v);
    a?.parts.push('changed');
    const b = decode(v);
    expect(b).toEqual({ title: 'loadgen --child-connect', parts: ['loadgen', '--child-connect'] });
    // another value after the cached one is decoded afresh, and bad hex is still refused
    expect(decode(hex('sh\0-c\0id'))?.parts).toEqual(['sh', '-c', 'id']);
    expect(decode('ZZ')).toBeNull();
    expect(decode(v)?.title).toBe('loadgen --child-connect');
  });
});
