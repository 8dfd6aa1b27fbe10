/**
 * stringifyBig and jsonString (src/cli/render/escape.ts) write exactly what JSON.stringify writes:
 * `replay --events` uses them for the long strings of a non-UTF-8 argv (surrogate escapes), where
 * V8's own escaping costs ~90 ns a character.
 */
import { describe, expect, it } from 'vitest';

import { jsonString, stringifyBig } from '../../../src/cli/render/escape';

/** A string of `n` UTF-16 units drawn from `units` (xorshift, fixed seed). */
function textOf(units: number[], n: number, seed: number): string {
  const u = new Uint16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = units[(x >>> 0) % units.length] as number;
  }
  return Buffer.from(u.buffer).toString('utf16le');
}

const ASCII_AND_ESCAPES = [0x41, 0x20, 0x22, 0x5c, 0x7f, 0x00, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1b, 0x1f, 0xdc80, 0xdcff, 0xdc41];
const EVERYTHING = [...ASCII_AND_ESCAPES, 0xe9, 0x2028, 0xfeff, 0xd834, 0xdd1e, 0xd800, 0xdbff, 0xdc00, 0xdfff];

describe('JSON text of long strings', () => {
  it('jsonString is JSON.stringify of one string: ASCII output, any other character, lone and paired surrogates', () => {
    for (const [units, seed] of [
      [ASCII_AND_ESCAPES, 1],
      [EVERYTHING, 2],
      [EVERYTHING, 3],
      [[0xd834, 0xdd1e], 4],
      [[0xdc80], 5],
    ] as const) {
      const s = textOf([...units], 4000, seed);
      expect(jsonString(s)).toBe(JSON.stringify(s));
    }
    expect(jsonString('')).toBe('""');
    expect(jsonString('\ud800')).toBe('"\\ud800"');
    expect(jsonString('a\udc00')).toBe('"a\\udc00"');
  });

  it('stringifyBig gives JSON.stringify of the whole value, long surrogate strings at any depth', () => {
    const big = textOf(EVERYTHING, 5000, 7);
    const value = { id: 'x', argv: ['sh', big, `${big}tail`], nested: { title: big, list: [[big]] }, n: -0, t: '\u0000cw', nil: null, u: undefined };
    expect(stringifyBig(value, true).toString()).toBe(JSON.stringify(value));
    expect(stringifyBig(value, false)).toBe(JSON.stringify(value));
    // A value that itself looks like the placeholder stays what it is.
    const lookalike = { a: '\u0000cw123:0', b: big };
    expect(stringifyBig(lookalike, true).toString()).toBe(JSON.stringify(lookalike));
  });
});
