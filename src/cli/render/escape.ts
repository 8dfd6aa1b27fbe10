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
