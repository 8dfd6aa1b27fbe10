/**
 * Splits a byte stream into newline-terminated lines with absolute end offsets, never handing out half
 * a line, and with a hard cap on how much of one line it will hold: a 10 MB garbage line costs at most
 * `maxLineBytes` of memory, is reported once as oversize, and the next line is read normally.
 *
 * Of an oversize line the first `headBytes` and the last `tailBytes` are kept: an audit event at level
 * RequestResponse (a cluster-wide secret list, say) is huge only because of requestObject and
 * responseObject, while everything a rule needs sits before them and the timestamps after them.
 */

export interface LineSink {
  /** A complete line (without "\n"); `endOffset` is the byte offset just after its newline. */
  line(text: string, endOffset: number): void;
  /** A line longer than the cap was skipped; `bytes` is its full length, head/tail its ends. */
  oversize(bytes: number, endOffset: number, head: Buffer, tail: Buffer): void;
}

export const OVERSIZE_HEAD_BYTES = 64 * 1024;
export const OVERSIZE_TAIL_BYTES = 4 * 1024;

export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Length so far of the current line once it exceeded the cap (0 = not in discard mode). */
  private discarded = 0;
  private head: Buffer = Buffer.alloc(0);
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
    private readonly headBytes = OVERSIZE_HEAD_BYTES,
    private readonly tailBytes = OVERSIZE_TAIL_BYTES,
  ) {}

  /** Bytes held for an unfinished line (not yet a line; not committed). */
  get pendingBytes(): number {
    return this.discarded > 0 ? this.discarded : this.partBytes;
  }

  /** `chunkStart` is the absolute offset of chunk[0]. */
  push(chunk: Buffer, chunkStart: number): void {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl < 0) {
        this.hold(chunk.subarray(from));
        return;
      }
      const piece = chunk.subarray(from, nl);
      const end = chunkStart + nl + 1;
      if (this.discarded === 0 && this.partBytes + piece.length <= this.maxLineBytes) {
        const buf = this.partBytes === 0 ? piece : Buffer.concat([...this.parts, piece]);
        this.reset();
        this.sink.line(buf.toString('utf8'), end);
      } else {
        this.hold(piece, true);
        this.sink.oversize(this.discarded, end, this.head, this.tail);
        this.reset();
      }
      from = nl + 1;
    }
  }

  /**
   * Hand out an unterminated remainder as a final line (used when a rotated file will never grow again).
   * Returns false when there was nothing to flush.
   */
  flushRemainder(endOffset: number): boolean {
    if (this.pendingBytes === 0) return false;
    if (this.discarded > 0) this.sink.oversize(this.discarded, endOffset, this.head, this.tail);
    else this.sink.line(Buffer.concat(this.parts).toString('utf8'), endOffset);
    this.reset();
    return true;
  }

  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.discarded = 0;
    this.head = Buffer.alloc(0);
    this.tail = Buffer.alloc(0);
  }

  /** Keep `rest` for the current line; `forceDiscard` ends a line that is over the cap. */
  private hold(rest: Buffer, forceDiscard = false): void {
    if (this.discarded === 0) {
      if (!forceDiscard && this.partBytes + rest.length <= this.maxLineBytes) {
        if (rest.length === 0) return;
        // Copy: the caller reuses its read buffer.
        this.parts.push(Buffer.from(rest));
        this.partBytes += rest.length;
        return;
      }
      // Over the cap: keep only the ends from now on.
      const all = Buffer.concat([...this.parts, rest]);
      this.head = Buffer.from(all.subarray(0, this.headBytes));
      this.tail = Buffer.from(all.subarray(Math.max(0, all.length - this.tailBytes)));
      this.discarded = all.length;
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    if (rest.length === 0) return;
    this.discarded += rest.length;
    this.tail =
      rest.length >= this.tailBytes
        ? Buffer.from(rest.subarray(rest.length - this.tailBytes))
        : Buffer.concat([this.tail.subarray(Math.max(0, this.tail.length + rest.length - this.tailBytes)), rest]);
  }
}
