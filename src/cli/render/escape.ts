/**
 * Making untrusted strings (process names, argv, audit records: all attacker-controlled) safe to print
 * on a terminal. Control characters would let an attacker move the cursor, recolour or erase lines,
 * or fake table rows; bidi overrides can reorder what is shown. We escape them visibly and
 * unambiguously (a literal backslash becomes "\\"), and cut long values with a marker that says how
 * much was left out.
 */
import stringWidth from 'string-width';

/** C0, DEL, C1, backslash, invisible/bidi format characters, line/paragraph separators, lone surrogates. */
const UNSAFE =
  /[\x00-\x1f\x7f-\x9f\\\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSAFE_ONE = new RegExp(`^(?:${UNSAFE.source})$`);

function escapeOne(ch: string): string {
  switch (ch) {
    case '\\':
      return '\\\\';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
  }
  const code = ch.charCodeAt(0);
  if (code < 0x80) return '\\x' + code.toString(16).padStart(2, '0');
  return '\\u' + code.toString(16).padStart(4, '0');
}

/** Escapes every unsafe character; returns the input itself when nothing needs escaping. */
export function escapeControl(s: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(s) ? s.replace(UNSAFE, escapeOne) : s;
}

/** Terminal columns a (control-free) string takes: wide CJK and emoji count two, combining marks none. */
export function displayWidth(s: string): number {
  return stringWidth(s);
}

/**
 * Escapes and fits into `max` terminal columns (string-width: a wide character takes two). When cut,
 * ends with "…[+N bytes]" where N is the UTF-8 size of the part of the original value left out; never
 * cuts inside an escape sequence. A value is also cut at 4 x `max` UTF-16 units, so a run of
 * zero-width characters cannot make one cell as long as the attacker likes.
 */
export function fitCell(s: string, max: number): string {
  const escaped = escapeControl(s);
  if (escaped.length <= 4 * max && displayWidth(escaped) <= max) return escaped;
  // The marker can only be shorter than this (fewer bytes remain than the whole value holds).
  const markerRoom = `…[+${Buffer.byteLength(s, 'utf8')} bytes]`.length;
  // A cell narrower than the marker (a column cut down to fit the terminal) ends with a bare "…".
  const bare = max <= markerRoom + 1;
  const budget = bare ? Math.max(1, max - 1) : max - markerRoom;
  let out = '';
  let width = 0;
  let consumed = 0;
  for (const ch of s) {
    const piece = UNSAFE_ONE.test(ch) ? escapeOne(ch) : ch;
    const w = displayWidth(piece);
    if (width + w > budget || out.length + piece.length > 4 * budget) break;
    out += piece;
    width += w;
    consumed += ch.length;
  }
  return bare ? `${out}…` : `${out}…[+${Buffer.byteLength(s.slice(consumed), 'utf8')} bytes]`;
}

/** Strings from this length are checked for lone surrogates before JSON.stringify sees them. */
const LONG_STRING = 1024;

interface WellFormedString {
  isWellFormed(): boolean;
}

/** A lone surrogate anywhere (String#isWellFormed: native, where a loop here cost ~1 ns a character). */
function hasLoneSurrogate(s: string): boolean {
  return !(s as unknown as WellFormedString).isWellFormed();
}

const HEX = '0123456789abcdef';

/**
 * JSON.stringify(s) for one string, by a linear loop into one byte buffer (the same text, byte for
 * byte): ASCII as is or escaped, a lone surrogate (a surrogate-escaped byte) as \uXXXX, any other
 * character as UTF-8; read back as Latin-1 when the output is all ASCII, else as UTF-8.
 */
export function jsonString(s: string): string {
  const { bytes, ascii } = jsonStringBytes(s);
  return bytes.toString(ascii ? 'latin1' : 'utf8');
}

/** jsonString as UTF-8 bytes (no JavaScript string made: what is printed anyway). */
export function jsonStringBytes(s: string): { bytes: Buffer; ascii: boolean } {
  const bytes = Buffer.allocUnsafe(jsonStringRoom(s));
  const { end, ascii } = jsonStringInto(bytes, 0, s);
  return { bytes: bytes.subarray(0, end), ascii };
}

/** Bytes jsonStringInto may write for `s`: six a UTF-16 unit at most (\uXXXX; UTF-8 takes three, or four for a pair of two units), and the quotes. */
function jsonStringRoom(s: string): number {
  return 6 * s.length + 2;
}

/** jsonStringBytes written into `bytes` at `at` (room: jsonStringRoom); where it ended, and whether all it wrote was ASCII. */
function jsonStringInto(bytes: Buffer, at: number, s: string): { end: number; ascii: boolean } {
  let o = at;
  let ascii = true;
  bytes[o++] = 0x22;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      bytes[o++] = c;
    } else if (c < 0x80) {
      o = escapeAsciiInto(bytes, o, c);
    } else if (c < 0x800) {
      ascii = false;
      bytes[o++] = 0xc0 | (c >> 6);
      bytes[o++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      ascii = false;
      bytes[o++] = 0xe0 | (c >> 12);
      bytes[o++] = 0x80 | ((c >> 6) & 0x3f);
      bytes[o++] = 0x80 | (c & 0x3f);
    } else if (c <= 0xdbff && isLowSurrogate(s.charCodeAt(i + 1))) {
      // A real surrogate pair: one character, four bytes of UTF-8.
      ascii = false;
      const cp = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      bytes[o++] = 0xf0 | (cp >> 18);
      bytes[o++] = 0x80 | ((cp >> 12) & 0x3f);
      bytes[o++] = 0x80 | ((cp >> 6) & 0x3f);
      bytes[o++] = 0x80 | (cp & 0x3f);
    } else {
      o = unicodeEscapeInto(bytes, o, c); // a lone surrogate: well-formed JSON.stringify writes \uXXXX
    }
  }
  bytes[o++] = 0x22;
  return { end: o, ascii };
}

const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** `"`, `\\`, DEL and C0 controls as JSON.stringify writes them. */
function escapeAsciiInto(out: Uint8Array, o: number, c: number): number {
  if (c === 0x22 || c === 0x5c) {
    out[o++] = 0x5c;
    out[o++] = c;
    return o;
  }
  if (c >= 0x20) {
    out[o++] = c; // DEL: JSON.stringify leaves it as is
    return o;
  }
  const short = c === 8 ? 0x62 : c === 9 ? 0x74 : c === 10 ? 0x6e : c === 12 ? 0x66 : c === 13 ? 0x72 : 0;
  if (short !== 0) {
    out[o++] = 0x5c;
    out[o++] = short;
    return o;
  }
  return unicodeEscapeInto(out, o, c);
}

/** Lower-case hex digit codes, by value. */
const HEX_CODE = Uint8Array.from(HEX, (ch) => ch.charCodeAt(0));

/** `\uXXXX`, lower-case hex, as JSON.stringify writes it. */
function unicodeEscapeInto(out: Uint8Array, o: number, c: number): number {
  out[o++] = 0x5c;
  out[o++] = 0x75;
  out[o++] = HEX_CODE[(c >> 12) & 15] as number;
  out[o++] = HEX_CODE[(c >> 8) & 15] as number;
  out[o++] = HEX_CODE[(c >> 4) & 15] as number;
  out[o++] = HEX_CODE[c & 15] as number;
  return o;
}

/**
 * JSON.stringify(value), with long strings that hold lone surrogates (surrogate-escaped bytes of a
 * non-UTF-8 argv) escaped by jsonStringBytes: V8 escapes those at ~90 ns a character, so a 1.2 MB argv
 * of such bytes took ~100 ms to print. Everything else is JSON.stringify's own output. `worth` says
 * cheaply whether the value can hold a long string at all (most events cannot: no replacer then).
 * The result is UTF-8 bytes when such strings were found (they are printed, never read again).
 */
export function stringifyBig(value: unknown, worth: boolean): string | Buffer {
  if (!worth) return JSON.stringify(value);
  const subs: string[] = [];
  const tag = `\u0000cw${Math.random().toString(36).slice(2)}:`;
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < LONG_STRING || !hasLoneSurrogate(v)) return v;
    subs.push(v);
    return `${tag}${subs.length - 1}`;
  });
  if (subs.length === 0) return json;
  // Each placeholder comes out as "\u0000cwTAG:N" (JSON.stringify escapes the NUL). Everything is
  // written into one buffer: a part per string then Buffer.concat copied the 7 MB of a 1.2 MB
  // non-UTF-8 argv's escapes once more (2.5 ms).
  const quoted = `"\\u0000${tag.slice(1)}`;
  let room = 3 * json.length;
  for (const x of subs) room += jsonStringRoom(x);
  const out = Buffer.allocUnsafe(room);
  let o = 0;
  let last = 0;
  for (let at = json.indexOf(quoted); at >= 0; at = json.indexOf(quoted, last)) {
    const end = json.indexOf('"', at + quoted.length);
    o += out.write(json.slice(last, at), o, 'utf8');
    o = jsonStringInto(out, o, subs[Number(json.slice(at + quoted.length, end))] as string).end;
    last = end + 1;
  }
  o += out.write(json.slice(last), o, 'utf8');
  return out.subarray(0, o);
}

/** Characters a terminal would still render strangely even inside JSON text (JSON.stringify leaves them raw). */
const JSON_UNSAFE = /[\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * One JSON document on one line. JSON.stringify already escapes C0 controls and lone surrogates;
 * this also escapes DEL, C1 (0x9b is a one-byte CSI) and bidi/invisible characters. Still valid JSON
 * with the same value.
 */
export function toJsonLine(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
