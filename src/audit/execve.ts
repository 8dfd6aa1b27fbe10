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
}

export class ArgvBuilder {
  private argc = -1;
  private readonly whole: (string | undefined)[] = [];
  private readonly declaredLen: (number | undefined)[] = [];
  private readonly chunks: ((Buffer | undefined)[] | undefined)[] = [];
  /** Per argument: the chunks' length as written (hex digits count double). */
  private readonly encodedLen: number[] = [];
  private readonly problems: string[] = [];
  private seen = false;

  /** Consumes the fields of one EXECVE record (the cursor is positioned at the record's body). */
  addRecord(cur: FieldCursor): void {
    this.seen = true;
    const text = cur.text;
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
        this.whole[index] = cur.quote !== 0 ? cur.raw() : decodeWholeArg(cur, this.problems, index);
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
        const bytes =
          cur.quote !== 0
            ? Buffer.from(cur.raw(), 'latin1') // quoted chunks are printable ASCII only
            : decodeHex(text, cur.valueStart, cur.valueEnd);
        if (bytes === null) {
          this.problems.push(`argv: a${index}[${chunk}] is not valid hex`);
          continue;
        }
        this.encodedLen[index] = (this.encodedLen[index] ?? 0) + (cur.quote !== 0 ? bytes.length : 2 * bytes.length);
        let list = this.chunks[index];
        if (list === undefined) {
          list = [];
          this.chunks[index] = list;
        }
        list[chunk] = bytes;
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
    for (let i = 0; i < count; i++) {
      const w = this.whole[i];
      if (w !== undefined) {
        argv[i] = w;
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
      const bytes = Buffer.concat(list.filter((b): b is Buffer => b !== undefined));
      const declared = this.declaredLen[i];
      if (declared === undefined) problems.push(`argv: a${i} chunks without a${i}_len`);
      else if (declared !== this.encodedLen[i] && declared !== bytes.length) {
        problems.push(`argv: a${i} has ${bytes.length} bytes (${this.encodedLen[i] ?? 0} as written) but a${i}_len=${declared}`);
      }
      argv[i] = decodeSurrogateEscaped(bytes);
    }
    if (missingArgs > MAX_LISTED_MISSING) problems.push(`argv: ${missingArgs - MAX_LISTED_MISSING} more arguments missing`);
    if (this.argc >= 0 && count > this.argc) problems.push(`argv: ${count} arguments but argc=${this.argc}`);
    return { argv, problems };
  }
}

function decodeWholeArg(cur: FieldCursor, problems: string[], index: number): string {
  if (cur.isAbsent()) return cur.raw(); // "(null)" as an argument value is literal text here
  const bytes = decodeHex(cur.text, cur.valueStart, cur.valueEnd);
  if (bytes === null) {
    problems.push(`argv: a${index} is neither quoted nor hex`);
    return cur.raw();
  }
  return decodeSurrogateEscaped(bytes);
}
