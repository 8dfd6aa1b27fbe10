/**
 * Rebuilds argv from an event's EXECVE records, exactly, byte for byte.
 *
 * What the kernel writes (kernel/auditsc.c, audit_log_execve_info):
 *  - `argc=N` only in the first EXECVE record;
 *  - a short argument as `aN="text"` (printable ASCII without `"`) or `aN=HEX` (anything else);
 *  - an argument too long for one record as `aN_len=L` followed by `aN[0]=...`, `aN[1]=...` chunks,
 *    possibly spread over several EXECVE records. L is the length of the argument *as written in
 *    the record*: hex digits when hex-encoded (so twice its bytes), bytes when quoted. Since Linux
 *    4.8 every chunk of one argument shares the encoding, and an argument longer than the kernel's
 *    7500-byte buffer is always hex. Older kernels wrote L as the byte length; both are accepted.
 *    Chunks are decoded to bytes and concatenated before UTF-8 decoding (a multi-byte character may
 *    straddle two chunks), and each chunk is decoded by its own form in case a kernel mixes them.
 * Records may arrive out of order; everything is stored by index and assembled at the end.
 * Problems (missing argument, length mismatch, missing chunk) are reported, never thrown.
 */
import type { FieldCursor } from './record';
import { decodeHex, decodeSurrogateEscaped } from './bytes';
import { ARG_HEAD_CHARS, ARG_MIN_CHARS, ARG_TAIL_CHARS, ARGV_KEEP_CHARS, ARGV_TAIL_RESERVE, PieceReader, boundedArg, pieceBytes, pieceSlice, type ArgvCut, type Piece } from './argv-bound';

/**
 * Bounds on what a damaged or hostile record can make us allocate. The kernel's own limits are far
 * larger in theory (MAX_ARG_STRINGS) but argv must fit in a quarter of the stack rlimit, and an
 * argument is at most 128 KiB (MAX_ARG_STRLEN), i.e. 35 chunks of 7500 hex digits. Beyond these we
 * keep what we have and say so in `problems` instead of allocating a billion slots.
 */
const MAX_ARGV = 65_536;
const MAX_CHUNKS = 1024;
/** Missing-argument problems listed one by one; the rest are summarised in one line. */
const MAX_LISTED_MISSING = 20;

export interface ArgvResult {
  argv: string[];
  problems: string[];
  /** Present when the argv was built bounded and something was cut (see ./argv-bound.ts). */
  cut?: ArgvCut;
}

/**
 * 'exact': every argument byte for byte (`replay --events`). 'bounded': what every later stage reads
 * and no more (./argv-bound.ts); the hex of the rest is never decoded.
 */
export type ArgvMode = 'exact' | 'bounded';

export class ArgvBuilder {
  private argc = -1;
  /**
   * A whole argument: decoded (exact mode; quoted ones in both modes), or where its hex sits (bounded
   * mode, decoded in build()).
   */
  private readonly whole: (string | Piece | undefined)[] = [];
  private readonly declaredLen: (number | undefined)[] = [];
  /** Chunks: decoded bytes (exact mode), or where they sit in their record (bounded mode). */
  private readonly chunks: ((Buffer | Piece | undefined)[] | undefined)[] = [];
  /** Per argument: the chunks' length as written (hex digits count double). */
  private readonly encodedLen: number[] = [];
  private readonly problems: string[] = [];
  private seen = false;

  constructor(private readonly mode: ArgvMode = 'exact') {}

  /** Consumes the fields of one EXECVE record (the cursor is positioned at the record's body). */
  addRecord(cur: FieldCursor): void {
    this.seen = true;
    const text = cur.text;
    const bounded = this.mode === 'bounded';
    while (cur.next()) {
      const ks = cur.keyStart;
      const ke = cur.keyEnd;
      if (cur.keyIs('argc')) {
        const n = cur.int();
        if (n !== null && n >= 0) this.argc = n;
        continue;
      }
      if (text.charCodeAt(ks) !== 97 /* a */) continue;
      let p = ks + 1;
      let index = 0;
      let digits = 0;
      for (; p < ke; p++) {
        const c = text.charCodeAt(p);
        if (c < 48 || c > 57) break;
        index = index * 10 + (c - 48);
        digits++;
      }
      if (digits === 0) continue;
      if (index >= MAX_ARGV) {
        this.problems.push(`argv: a${index} is beyond the ${MAX_ARGV}-argument bound; ignored`);
        continue;
      }
      if (p === ke) {
        // "(null)" as an argument value is literal text here.
        if (cur.quote !== 0 || cur.isAbsent()) this.whole[index] = cur.raw();
        else if (bounded) this.whole[index] = { text, start: cur.valueStart, end: cur.valueEnd, hex: true };
        else this.whole[index] = decodeWholeArg({ text, start: cur.valueStart, end: cur.valueEnd, hex: true }, this.problems, index);
      } else if (text.startsWith('_len', p) && p + 4 === ke) {
        const n = cur.int();
        if (n !== null) this.declaredLen[index] = n;
      } else if (text.charCodeAt(p) === 91 /* [ */ && text.charCodeAt(ke - 1) === 93 /* ] */) {
        let chunk = 0;
        let cd = 0;
        for (let q = p + 1; q < ke - 1; q++) {
          const c = text.charCodeAt(q);
          if (c < 48 || c > 57) {
            cd = -1;
            break;
          }
          chunk = chunk * 10 + (c - 48);
          cd++;
        }
        if (cd <= 0) continue;
        if (chunk >= MAX_CHUNKS) {
          this.problems.push(`argv: a${index}[${chunk}] is beyond the ${MAX_CHUNKS}-chunk bound; ignored`);
          continue;
        }
        const piece: Piece = { text, start: cur.valueStart, end: cur.valueEnd, hex: cur.quote === 0 };
        const n = pieceBytes(piece);
        // Bounded: the hex of a chunk nobody reads is not even checked (the kernel writes only hex).
        const value = bounded ? (n < 0 ? null : piece) : pieceSlice(piece, 0, n);
        if (value === null) {
          this.problems.push(`argv: a${index}[${chunk}] is not valid hex`);
          continue;
        }
        this.encodedLen[index] = (this.encodedLen[index] ?? 0) + (piece.end - piece.start);
        let list = this.chunks[index];
        if (list === undefined) {
          list = [];
          this.chunks[index] = list;
        }
        list[chunk] = value;
      }
    }
  }

  get hasRecords(): boolean {
    return this.seen;
  }

  build(): ArgvResult {
    const problems = this.problems.slice();
    let count = Math.max(this.argc, this.whole.length, this.chunks.length, this.declaredLen.length);
    if (this.argc < 0) problems.push('argv: no argc (first EXECVE record missing)');
    if (count > MAX_ARGV) {
      problems.push(`argv: argc=${this.argc} is beyond the ${MAX_ARGV}-argument bound; argv cut there`);
      count = MAX_ARGV;
    }
    let missingArgs = 0;
    const argv: string[] = new Array<string>(count);
    // Bounded mode: per argument not decoded yet, where its bytes are (see boundArgv).
    const readers: (PieceReader | undefined)[] = new Array<PieceReader | undefined>(count);
    for (let i = 0; i < count; i++) {
      const w = this.whole[i];
      if (w !== undefined) {
        if (typeof w === 'string') argv[i] = w;
        else readers[i] = new PieceReader([w]);
        continue;
      }
      const list = this.chunks[i];
      if (list === undefined) {
        argv[i] = '';
        if (++missingArgs <= MAX_LISTED_MISSING) problems.push(`argv: a${i} missing`);
        continue;
      }
      let missing = false;
      for (let k = 0; k < list.length; k++) if (list[k] === undefined) missing = true;
      if (missing) problems.push(`argv: a${i} has missing chunks`);
      let bytes: number;
      if (this.mode === 'bounded') {
        const reader = new PieceReader(list.filter((b): b is Piece => b !== undefined && !Buffer.isBuffer(b)));
        readers[i] = reader;
        bytes = reader.total;
      } else {
        const whole = Buffer.concat(list.filter((b): b is Buffer => b !== undefined && Buffer.isBuffer(b)));
        argv[i] = decodeSurrogateEscaped(whole);
        bytes = whole.length;
      }
      const declared = this.declaredLen[i];
      if (declared === undefined) problems.push(`argv: a${i} chunks without a${i}_len`);
      else if (declared !== this.encodedLen[i] && declared !== bytes) {
        problems.push(`argv: a${i} has ${bytes} bytes (${this.encodedLen[i] ?? 0} as written) but a${i}_len=${declared}`);
      }
    }
    if (missingArgs > MAX_LISTED_MISSING) problems.push(`argv: ${missingArgs - MAX_LISTED_MISSING} more arguments missing`);
    if (this.argc >= 0 && count > this.argc) problems.push(`argv: ${count} arguments but argc=${this.argc}`);
    if (this.mode === 'exact') return { argv, problems };
    const cut = boundArgv(argv, readers, (i) => this.whole[i] !== undefined, problems);
    return cut === null ? { argv, problems } : { argv, problems, cut };
  }
}

function decodeWholeArg(p: Piece, problems: string[], index: number): string {
  const bytes = decodeHex(p.text, p.start, p.end);
  if (bytes === null) {
    problems.push(`argv: a${index} is neither quoted nor hex`);
    return p.text.slice(p.start, p.end);
  }
  return decodeSurrogateEscaped(bytes);
}

/**
 * Bounded mode: fills the arguments still undecoded (those with a reader) within the bounds of
 * ./argv-bound.ts, cuts quoted ones past the budget, and returns what was cut (null: nothing).
 */
function boundArgv(argv: string[], readers: readonly (PieceReader | undefined)[], isWhole: (i: number) => boolean, problems: string[]): ArgvCut | null {
  const n = argv.length;
  const lengths = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const r = readers[i];
    // A decoded argument here is quoted (printable ASCII), "(null)" or missing: a byte per character.
    lengths[i] = r ? r.total : (argv[i] as string).length;
  }
  // Full bound from the front while the budget lasts, and for the arguments ending the command line.
  const full = new Array<boolean>(n).fill(false);
  let budget = ARGV_KEEP_CHARS;
  for (let i = 0; i < n && budget > 0; i++) {
    full[i] = true;
    budget -= Math.min(lengths[i] as number, ARG_HEAD_CHARS + ARG_TAIL_CHARS);
  }
  let reserve = ARGV_TAIL_RESERVE;
  for (let i = n - 1; i >= 0 && reserve > 0; i--) {
    full[i] = true;
    reserve -= (lengths[i] as number) + 1;
  }
  let args = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const r = readers[i];
    const headChars = full[i] ? ARG_HEAD_CHARS : ARG_MIN_CHARS;
    const tailChars = full[i] ? ARG_TAIL_CHARS : 0;
    if (r === undefined) {
      const a = argv[i] as string;
      if (a.length > headChars + tailChars) {
        const dropped = a.length - headChars - tailChars;
        argv[i] = tailChars > 0 ? `${a.slice(0, headChars)}…[+${dropped} bytes]…${a.slice(a.length - tailChars)}` : `${a.slice(0, headChars)}…[+${dropped} bytes]`;
        args++;
        bytes += dropped;
      }
      continue;
    }
    const b = boundedArg(r, headChars, tailChars);
    if (b !== null) {
      argv[i] = b.text;
      args++;
      bytes += b.cutBytes;
      continue;
    }
    // Short enough to keep whole, or malformed where it was read (a forged log: the kernel writes
    // only well-formed hex): decoded in full and reported as the exact build reports it.
    argv[i] = r.decodeAll(problems, i, isWhole(i));
  }
  return args === 0 ? null : { lengths, args, bytes };
}
