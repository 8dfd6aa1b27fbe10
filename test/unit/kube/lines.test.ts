import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../../src/kube/lines';

function collect(max: number) {
  const out: (string | { oversize: number; end: number })[] = [];
  const ends: number[] = [];
  const s = new LineSplitter(max, {
    line: (t, end) => {
      out.push(t);
      ends.push(end);
    },
    oversize: (bytes, end) => {
      out.push({ oversize: bytes, end });
      ends.push(end);
    },
  });
  return { s, out, ends };
}

describe('LineSplitter', () => {
  it('hands out complete lines with the absolute offset after each newline, across chunk boundaries', () => {
    const { s, out, ends } = collect(100);
    const text = Buffer.from('ab\ncd\nefg\nh');
    s.push(text.subarray(0, 4), 0);
    s.push(text.subarray(4, 8), 4);
    s.push(text.subarray(8), 8);
    expect(out).toEqual(['ab', 'cd', 'efg']);
    expect(ends).toEqual([3, 6, 10]);
    expect(s.pendingBytes).toBe(1);
  });

  it('keeps a split multi-byte character intact', () => {
    const { s, out } = collect(100);
    const b = Buffer.from('é\n');
    s.push(b.subarray(0, 1), 0);
    s.push(b.subarray(1), 1);
    expect(out).toEqual(['é']);
  });

  it('skips a line longer than the cap in bounded memory and reads the next line', () => {
    const { s, out } = collect(16);
    s.push(Buffer.from('0123456789'), 0);
    s.push(Buffer.alloc(1000, 0x41), 10);
    expect(s.pendingBytes).toBe(1010);
    s.push(Buffer.from('tail\nnext\n'), 1010);
    expect(out).toEqual([{ oversize: 1014, end: 1015 }, 'next']);
  });

  it('keeps the head and the tail of an oversize line', () => {
    let got: { head: string; tail: string } | null = null;
    const s = new LineSplitter(10, { line: () => undefined, oversize: (_b, _e, head, tail) => (got = { head: head.toString(), tail: tail.toString() }) }, 4, 3);
    s.push(Buffer.from('abcdefgh'), 0);
    s.push(Buffer.from('ijklmnop'), 8);
    s.push(Buffer.from('qrstuvwxyz\n'), 16);
    expect(got).toEqual({ head: 'abcd', tail: 'xyz' });
  });

  it('flushRemainder hands out an unterminated tail once', () => {
    const { s, out } = collect(100);
    s.push(Buffer.from('a\nlast'), 0);
    expect(s.flushRemainder(6)).toBe(true);
    expect(s.flushRemainder(6)).toBe(false);
    expect(out).toEqual(['a', 'last']);
  });
});
