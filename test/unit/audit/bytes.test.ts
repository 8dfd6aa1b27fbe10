import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeHex, decodeSurrogateEscaped, encodeSurrogateEscaped, hexToString, isHex } from '../../../src/audit/bytes';
import { tryLoadNative } from '../../helpers/native';

describe('surrogateescape', () => {
  it('decodes valid UTF-8 normally', () => {
    expect(decodeSurrogateEscaped(Buffer.from('grüße €𝄞', 'utf8'))).toBe('grüße €𝄞');
  });

  it('maps each invalid byte 0xNN to U+DCNN and keeps the valid parts', () => {
    expect(decodeSurrogateEscaped(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\udcffb');
    // a truncated 3-byte sequence: both bytes escaped, the following ASCII intact
    expect(decodeSurrogateEscaped(Buffer.from([0xe2, 0x82, 0x41]))).toBe('\udce2\udc82A');
    // overlong encoding of "/" (C0 AF) is invalid UTF-8
    expect(decodeSurrogateEscaped(Buffer.from([0xc0, 0xaf]))).toBe('\udcc0\udcaf');
    // an encoded UTF-16 surrogate (ED A0 80) is invalid UTF-8
    expect(decodeSurrogateEscaped(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\udced\udca0\udc80');
  });

  it('JSON-encodes escaped bytes as \\udcNN', () => {
    expect(JSON.stringify(decodeSurrogateEscaped(Buffer.from([0xff])))).toBe('"\\udcff"');
  });

  it('round-trips arbitrary bytes exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const s = decodeSurrogateEscaped(Buffer.from(bytes));
        expect(encodeSurrogateEscaped(s).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes mixtures of valid multi-byte UTF-8 and invalid bytes like a per-run reference decoder', () => {
    // The reference: Node's UTF-8 decoder on each valid run, U+DCNN for each invalid byte.
    const reference = (b: Buffer): string => {
      let out = '';
      let i = 0;
      while (i < b.length) {
        let ok = 0;
        for (const len of [1, 2, 3, 4]) {
          const part = b.subarray(i, i + len);
          // Valid when it re-encodes to itself: an invalid sequence decodes to U+FFFD, whose encoding
          // EF BF BD differs from it; EF BF BD itself is the valid encoding of U+FFFD, not invalid bytes.
          if (part.length === len && Buffer.from(part.toString('utf8'), 'utf8').equals(part)) {
            ok = len;
            break;
          }
        }
        if (ok === 0) {
          out += String.fromCharCode(0xdc00 + (b[i] as number));
          i++;
        } else {
          out += b.toString('utf8', i, i + ok);
          i += ok;
        }
      }
      return out;
    };
    // A literal U+FFFD in the input is text, not an invalid byte (fast-check found it: seed -1541558982).
    expect(decodeSurrogateEscaped(Buffer.from([0xef, 0xbf, 0xbd]))).toBe(reference(Buffer.from([0xef, 0xbf, 0xbd])));
    expect(reference(Buffer.from([0xef, 0xbf, 0xbd]))).toBe('\ufffd');
    const piece = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }).map((t) => Buffer.from(t, 'utf8')), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a)));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const b = Buffer.concat(pieces);
        expect(decodeSurrogateEscaped(b)).toBe(reference(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes a megabyte of invalid bytes to one string of a megabyte of escapes', () => {
    const b = Buffer.alloc(1 << 20, 0xff);
    const s = decodeSurrogateEscaped(b);
    expect(s.length).toBe(1 << 20);
    expect(s.charCodeAt(0)).toBe(0xdcff);
    expect(encodeSurrogateEscaped(s).equals(b)).toBe(true);
  });

  it('encodes real surrogate pairs as UTF-8, not as escaped bytes', () => {
    expect(encodeSurrogateEscaped('𝄞\udcff').equals(Buffer.from([0xf0, 0x9d, 0x84, 0x9e, 0xff]))).toBe(true);
  });
});

describe('hex', () => {
  it('decodes upper and lower case', () => {
    expect(decodeHex('2F746d70')!.toString()).toBe('/tmp');
    expect(hexToString('2F746D702F6120622063')).toBe('/tmp/a b c');
  });
  it('rejects odd length and non-hex characters', () => {
    expect(decodeHex('ABC')).toBeNull();
    expect(decodeHex('zz')).toBeNull();
    expect(isHex('(null)')).toBe(false);
    expect(isHex('00ff')).toBe(true);
  });
  it('decodes a sub-range without slicing', () => {
    expect(hexToString('xx414243yy', 2, 8)).toBe('ABC');
  });
  it('long values (the built-in decoder) give the same bytes and refuse the same text as short ones', () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) & 0xff));
    const hex = bytes.toString('hex');
    expect(decodeHex(hex)!.equals(bytes)).toBe(true);
    expect(decodeHex(`zz${hex.toUpperCase()}zz`, 2, hex.length + 2)!.equals(bytes)).toBe(true);
    for (const at of [0, 1, 2, 1001, hex.length - 1]) {
      // A bad digit anywhere, in either half of a pair; a UTF-16 unit whose low byte is '1' (U+0131).
      for (const bad of ['g', ' ', '\u0131', '\udc41']) expect(decodeHex(hex.slice(0, at) + bad + hex.slice(at + 1)), `${bad} at ${at}`).toBeNull();
    }
    expect(decodeHex(hex + 'a')).toBeNull();
  });
});

const { native } = tryLoadNative();

describe.skipIf(native === null)('surrogateescape decoding, TypeScript and C++ alike', () => {
  it('gives the same string for 20,000 random byte strings rich in lead, continuation and invalid bytes', () => {
    let x = 99;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    const leads = [0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xc0, 0xc1];
    for (let t = 0; t < 20000; t++) {
      const b = Buffer.alloc(1 + (t % 40));
      for (let i = 0; i < b.length; i++) {
        const r = next() % 10;
        b[i] = r < 3 ? 0x41 + r : r < 5 ? 0x80 + (next() & 0x3f) : r < 7 ? (leads[next() % leads.length] as number) : next() & 0xff;
      }
      expect(decodeSurrogateEscaped(b), b.toString('hex')).toBe(native!.decodeRecordText(b));
    }
  });
});
