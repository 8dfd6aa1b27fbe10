/**
 * Lossless kernel bytes <-> JavaScript strings ("surrogateescape").
 *
 * The kernel hands us raw bytes (argv, file names, comm, proctitle) that are usually UTF-8 but need
 * not be. A JS string cannot hold arbitrary bytes, and Buffer#toString('utf8') silently replaces bad
 * bytes with U+FFFD, which would lose evidence. We use the convention Python calls "surrogateescape":
 *
 *  - a byte sequence that is valid UTF-8 decodes normally;
 *  - each byte 0xNN (always >= 0x80) that is not part of a valid UTF-8 sequence becomes the lone
 *    surrogate U+DCNN. Valid UTF-8 can never produce a lone surrogate, so the mapping is reversible;
 *  - JSON.stringify writes such a character as "\udcNN", so the JSON output stays valid.
 *
 * encodeSurrogateEscaped() is the exact inverse: decode(bytes) -> encode -> the same bytes.
 */
import { isUtf8 } from 'node:buffer';

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[0x41 + i] = 10 + i;
  HEX_VALUE[0x61 + i] = 10 + i;
}

/** Value of one hex digit character code, or -1. */
export function hexDigit(code: number): number {
  return code < 128 ? (HEX_VALUE[code] as number) : -1;
}

/**
 * Decodes `text[start, end)` as hex into `out` at `outOffset` without intermediate strings.
 * Returns the number of bytes written, or -1 when the range has odd length or a non-hex character.
 */
export function decodeHexInto(text: string, start: number, end: number, out: Uint8Array, outOffset: number): number {
  const len = end - start;
  if (len < 0 || (len & 1) !== 0) return -1;
  let o = outOffset;
  for (let i = start; i < end; i += 2) {
    const hi = hexDigit(text.charCodeAt(i));
    const lo = hexDigit(text.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) return -1;
    out[o++] = (hi << 4) | lo;
  }
  return o - outOffset;
}

/** Not a hex digit (a non-ASCII character included). */
const NOT_HEX = /[^0-9A-Fa-f]/;
/** From this length the built-in decoder (after one regex scan) beats the charCodeAt loop. */
const NATIVE_HEX_FROM = 256;

/** Hex `text[start, end)` to bytes; null when it is not well-formed hex. */
export function decodeHex(text: string, start = 0, end = text.length): Buffer | null {
  const len = end - start;
  if (len < 0 || (len & 1) !== 0) return null;
  if (len >= NATIVE_HEX_FROM) {
    // An argument of a megabyte is two megabytes of hex: decoded in C++ it costs ~1 ms, not ~10. The
    // built-in decoder stops at the first bad pair and reads only the low byte of a UTF-16 unit, so
    // the text is checked first.
    const hex = text.slice(start, end);
    return NOT_HEX.test(hex) ? null : Buffer.from(hex, 'hex');
  }
  const out = Buffer.allocUnsafe(len >> 1);
  return decodeHexInto(text, start, end, out, 0) < 0 ? null : out;
}

/** True when every character of `text[start, end)` is a hex digit and the length is even. */
export function isHex(text: string, start = 0, end = text.length): boolean {
  if (((end - start) & 1) !== 0) return false;
  for (let i = start; i < end; i++) if (hexDigit(text.charCodeAt(i)) < 0) return false;
  return true;
}

/** Bytes to string with surrogateescape (see the module comment). */
export function decodeSurrogateEscaped(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const view = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  // Fast path: the common case is valid UTF-8, which the built-in decoder handles at native speed.
  if (isUtf8(view)) return view.toString('utf8');
  return decodeSlow(view);
}

/** Hex `text[start, end)` straight to a surrogate-escaped string; null when not well-formed hex. */
export function hexToString(text: string, start = 0, end = text.length): string | null {
  const bytes = decodeHex(text, start, end);
  return bytes === null ? null : decodeSurrogateEscaped(bytes);
}

/**
 * The slow path, for text that is not valid UTF-8 (an attacker's argv of 0x80 bytes, say): code units
 * are written into one UTF-16 buffer and decoded once, so a megabyte of invalid bytes is one flat
 * string built in linear time, not a million-piece rope that the next reader has to flatten.
 */
function decodeSlow(b: Buffer): string {
  const n = b.length;
  // Each byte gives at most one UTF-16 unit (a 4-byte sequence gives two), so n units always suffice.
  const units = new Uint16Array(n);
  let u = 0;
  let i = 0;
  while (i < n) {
    const c = b[i] as number;
    if (c < 0x80) {
      units[u++] = c;
      i++;
      continue;
    }
    if (c < 0xc2 || c > 0xf4) {
      // A continuation byte where a character starts, or a byte no UTF-8 sequence starts with.
      units[u++] = 0xdc00 + c;
      i++;
      continue;
    }
    const len = validSequenceLength(b, i, n);
    if (len === 2) {
      units[u++] = ((c & 0x1f) << 6) | ((b[i + 1] as number) & 0x3f);
    } else if (len === 3) {
      units[u++] = ((c & 0x0f) << 12) | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f);
    } else if (len === 4) {
      const cp = ((c & 0x07) << 18) | (((b[i + 1] as number) & 0x3f) << 12) | (((b[i + 2] as number) & 0x3f) << 6) | ((b[i + 3] as number) & 0x3f);
      const v = cp - 0x10000;
      units[u++] = 0xd800 + (v >> 10);
      units[u++] = 0xdc00 + (v & 0x3ff);
    } else {
      // Not valid UTF-8: the byte itself, as a lone low surrogate U+DC80..U+DCFF (surrogateescape).
      units[u++] = 0xdc00 + c;
      i++;
      continue;
    }
    i += len;
  }
  return Buffer.from(units.buffer, units.byteOffset, u * 2).toString('utf16le');
}

/** Length of the valid UTF-8 sequence starting at b[i] (a lead byte >= 0x80), or 0 when invalid. */
function validSequenceLength(b: Buffer, i: number, n: number): number {
  const c = b[i] as number;
  // No closure per byte: a megabyte of non-UTF-8 argv comes through here.
  const c1 = i + 1 < n ? (b[i + 1] as number) : -1;
  if (c >= 0xc2 && c <= 0xdf) {
    return c1 >= 0x80 && c1 <= 0xbf ? 2 : 0;
  }
  const c2 = i + 2 < n ? (b[i + 2] as number) : -1;
  if (c >= 0xe0 && c <= 0xef) {
    // E0 needs A0..BF (no overlongs); ED needs 80..9F (no UTF-16 surrogates).
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return c1 >= lo && c1 <= hi && c2 >= 0x80 && c2 <= 0xbf ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c3 = i + 3 < n ? (b[i + 3] as number) : -1;
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return c1 >= lo && c1 <= hi && c2 >= 0x80 && c2 <= 0xbf && c3 >= 0x80 && c3 <= 0xbf ? 4 : 0;
  }
  return 0;
}

/** The inverse of decodeSurrogateEscaped: lone U+DC80..U+DCFF become the raw byte again. */
export function encodeSurrogateEscaped(str: string): Buffer {
  if (!hasEscapedByte(str)) return Buffer.from(str, 'utf8');
  // One pass writing UTF-8 by hand: a string of a megabyte of escapes between short valid runs made
  // a slice and a write per run (~100 ns a character) when the runs were encoded by Buffer#write.
  const out = Buffer.allocUnsafe(escapedByteLength(str));
  let o = 0;
  const n = str.length;
  for (let i = 0; i < n; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) out[o++] = c;
    else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(str.charCodeAt(i + 1))) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (str.charCodeAt(++i) - 0xdc00);
      out[o++] = 0xf0 | (cp >> 18);
      out[o++] = 0x80 | ((cp >> 12) & 0x3f);
      out[o++] = 0x80 | ((cp >> 6) & 0x3f);
      out[o++] = 0x80 | (cp & 0x3f);
    } else if (c >= 0xdc80 && c <= 0xdcff) out[o++] = c - 0xdc00;
    else if (c >= 0xd800 && c <= 0xdfff) {
      // Any other lone surrogate: U+FFFD, as Buffer#write writes it.
      out[o++] = 0xef;
      out[o++] = 0xbf;
      out[o++] = 0xbd;
    } else {
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    }
  }
  return out;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * `encodeSurrogateEscaped(str).length` without building it: the bytes the kernel gave for a decoded
 * string (a surrogate escape is one byte, any other lone surrogate the three of U+FFFD).
 */
export function escapedByteLength(str: string): number {
  const n = str.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(str.charCodeAt(i + 1))) {
      bytes += 2; // two units, four bytes
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) continue;
    else bytes += 2;
  }
  return bytes;
}

function hasEscapedByte(str: string): boolean {
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return true;
  }
  return false;
}
