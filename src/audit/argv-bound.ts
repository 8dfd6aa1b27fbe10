/**
 * The bounded argv the agent's pipeline works on (issue 15: a 1.2 MB argv must cost milliseconds).
 *
 * A process may pass ~2 MiB of arguments; every consumer after the event builder reads only a bounded
 * part of them: matching sees the first and last MAX_MATCH_TEXT/2 characters of a text
 * (detect/linear-regex.ts), a finding's argv keeps 4 KiB of each argument plus 1 KiB of context for
 * redaction (detect/bound.ts), the process table 4 KiB of the whole (enrich/process-table.ts). So the
 * builder decodes only that much, and never the hex of the rest:
 *  - each argument longer than ARG_HEAD_CHARS + ARG_TAIL_CHARS keeps its first ARG_HEAD_CHARS and last
 *    ARG_TAIL_CHARS characters around the marker `…[+N bytes]…` (N: the bytes not kept, exactly);
 *  - arguments are kept that way while ARGV_KEEP_CHARS lasts, front first, and so are the last
 *    arguments that make up the command line's final ARGV_TAIL_RESERVE characters; an argument in
 *    between keeps ARG_MIN_CHARS characters and `…[+N bytes]` at its end;
 *  - the exact byte length of every argument is kept (ArgvCut.lengths), and the cut is counted.
 * With these numbers every text matching, the finding's argv and the process table see is the same
 * as with the exact argv (test/unit/audit/argv-bound.test.ts): the bound changes cost, not results.
 * `replay --events` still builds the exact argv (ReassemblerOptions.argv = 'exact').
 */
import { decodeHex, decodeSurrogateEscaped, escapedByteLength } from './bytes';

/** Characters an argument keeps at its start: bound.ts's MAX_ARG_CHARS + WINDOW_MARGIN, and more. */
export const ARG_HEAD_CHARS = 6144;
/** Characters an argument keeps at its end: linear-regex.ts's MAX_MATCH_TEXT / 2. */
export const ARG_TAIL_CHARS = 4096;
/** Characters all arguments kept in full bound may hold together, front first. */
export const ARGV_KEEP_CHARS = 128 * 1024;
/** The command line's last characters, always kept (matching sees the tail of the joined argv). */
export const ARGV_TAIL_RESERVE = 4096;
/** What an argument between the front budget and the tail reserve keeps (bound.ts's MIN_ARG_WINDOW). */
export const ARG_MIN_CHARS = 128;

/** What the builder cut of an argv; absent from an event whose argv is whole. */
export interface ArgvCut {
  /** Exact byte length of every argument, as the kernel gave it. */
  lengths: number[];
  /** Arguments cut. */
  args: number;
  /** Bytes not kept, over all arguments. */
  bytes: number;
}

/** Where an argument (or one chunk of it) sits in its record's text: decoded only when read. */
export interface Piece {
  text: string;
  start: number;
  end: number;
  /** Hex digits (two per byte), else a quoted value (printable ASCII, one character per byte). */
  hex: boolean;
}

/** Bytes `piece` stands for. An odd hex length is malformed: -1. */
export function pieceBytes(p: Piece): number {
  const n = p.end - p.start;
  if (!p.hex) return n;
  return (n & 1) === 0 ? n >> 1 : -1;
}

/** Bytes [from, to) of `piece` (offsets in bytes); null when that hex is malformed. */
export function pieceSlice(p: Piece, from: number, to: number): Buffer | null {
  if (p.hex) return decodeHex(p.text, p.start + 2 * from, p.start + 2 * to);
  return Buffer.from(p.text.slice(p.start + from, p.start + to), 'latin1');
}

/**
 * The end of the longest prefix of `b` that no UTF-8 sequence straddles: decoding `b[0, end)` gives
 * an exact prefix of decoding the whole argument (a partial sequence at the cut would otherwise turn
 * into surrogate escapes the whole argument does not have).
 */
export function safePrefixEnd(b: Uint8Array, end: number): number {
  for (let k = 1; k <= 3 && end - k >= 0; k++) {
    const c = b[end - k] as number;
    if (c < 0x80) return end;
    if (c >= 0xc0) return (c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2) > k ? end - k : end;
  }
  return end;
}

/** The start of the longest suffix of `b[start..]` that no UTF-8 sequence straddles (see safePrefixEnd). */
export function safeSuffixStart(b: Uint8Array, start: number): number {
  let s = start;
  for (let k = 0; k < 3 && s < b.length; k++, s++) {
    const c = b[s] as number;
    if (c < 0x80 || c >= 0xc0) return s;
  }
  return s;
}

/** The first `n` UTF-16 units of `s`, never ending inside a surrogate pair. */
export function headUnits(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

/** The last `n` UTF-16 units of `s`, never starting inside a surrogate pair. */
export function tailUnits(s: string, n: number): string {
  if (s.length <= n) return s;
  const at = s.length - n;
  const c = s.charCodeAt(at - 1);
  return s.slice(c >= 0xd800 && c <= 0xdbff ? at + 1 : at);
}

/**
 * Bytes to read next when `want` bytes gave only `got` of the `chars` units needed: the rate seen so
 * far with a margin, at least 64 more, at most the worst case (three bytes a unit: then it is enough).
 */
function nextWant(want: number, got: number, chars: number): number {
  const guess = Math.ceil((want * chars * 1.1) / Math.max(1, got)) + 8;
  return Math.min(3 * chars + 3, Math.max(guess, want + 64));
}

/**
 * Reads the bytes of one argument made of `pieces` (in order) from either end without decoding the
 * middle. `offsets[i]` is where piece i starts in the argument.
 */
export class PieceReader {
  private readonly offsets: number[];
  readonly total: number;

  constructor(private readonly pieces: readonly Piece[]) {
    this.offsets = new Array<number>(pieces.length);
    let at = 0;
    for (let i = 0; i < pieces.length; i++) {
      this.offsets[i] = at;
      at += Math.max(0, pieceBytes(pieces[i] as Piece)); // malformed: decodeAll reports it
    }
    this.total = at;
  }

  /** Bytes [from, to) of the argument; null when a piece read is malformed. */
  bytes(from: number, to: number): Buffer | null {
    const parts: Buffer[] = [];
    for (let i = 0; i < this.pieces.length; i++) {
      const start = this.offsets[i] as number;
      const p = this.pieces[i] as Piece;
      const end = start + pieceBytes(p);
      if (end <= from || start >= to) continue;
      const b = pieceSlice(p, Math.max(from, start) - start, Math.min(to, end) - start);
      if (b === null) return null;
      parts.push(b);
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /**
   * The whole argument decoded. A malformed piece (only a forged log has one: the kernel writes
   * well-formed hex) is reported and left out; a malformed whole argument is kept as written.
   */
  decodeAll(problems: string[], index: number, whole: boolean): string {
    const parts: Buffer[] = [];
    for (const p of this.pieces) {
      const b = pieceSlice(p, 0, pieceBytes(p));
      if (b !== null) parts.push(b);
      else if (whole) {
        problems.push(`argv: a${index} is neither quoted nor hex`);
        return p.text.slice(p.start, p.end);
      } else problems.push(`argv: a${index} has a chunk that is not valid hex`);
    }
    return decodeSurrogateEscaped(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
  }

  /** At least `chars` UTF-16 units from the start (or all): the decoded head, exact. */
  head(chars: number): string | null {
    // One byte gives at most one unit; a character of three bytes gives one: read more until enough.
    for (let want = chars + 3; ; ) {
      const to = Math.min(this.total, want);
      const b = this.bytes(0, to);
      if (b === null) return null;
      const s = decodeSurrogateEscaped(b, 0, to === this.total ? b.length : safePrefixEnd(b, b.length));
      if (s.length >= chars || to === this.total || want >= 3 * chars + 3) return headUnits(s, chars);
      want = nextWant(want, s.length, chars);
    }
  }

  /** At least `chars` UTF-16 units from the end (or all): the decoded tail, exact. */
  tail(chars: number): string | null {
    for (let want = chars + 3; ; ) {
      const from = Math.max(0, this.total - want);
      const b = this.bytes(from, this.total);
      if (b === null) return null;
      const s = decodeSurrogateEscaped(b, from === 0 ? 0 : safeSuffixStart(b, 0));
      if (s.length >= chars || from === 0 || want >= 3 * chars + 3) return tailUnits(s, chars);
      want = nextWant(want, s.length, chars);
    }
  }
}

/**
 * One argument kept to `headChars` + `tailChars` characters around a `…[+N bytes]…` marker (a
 * `…[+N bytes]` at its end when tailChars is 0). Null when the argument is short enough to keep whole
 * (the caller decodes it) or a piece read is malformed (the caller decodes it whole and reports it).
 */
export function boundedArg(reader: PieceReader, headChars: number, tailChars: number): { text: string; cutBytes: number } | null {
  if (reader.total <= headChars + tailChars) return null;
  const head = reader.head(headChars);
  const tail = tailChars > 0 ? reader.tail(tailChars) : '';
  if (head === null || tail === null) return null;
  const cutBytes = reader.total - escapedByteLength(head) - escapedByteLength(tail);
  // A multi-byte argument may decode to fewer characters than its bytes: head and tail then cover it.
  if (cutBytes <= 0) return null;
  return { text: tailChars > 0 ? `${head}…[+${cutBytes} bytes]…${tail}` : `${head}…[+${cutBytes} bytes]`, cutBytes };
}
