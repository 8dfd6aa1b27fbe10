/**
 * Splits a byte stream into newline-terminated lines with absolute end offsets, never handing out half
 * a line, and with a hard cap on how much of one line it will hold: a 10 MB garbage line costs at most
 * `maxLineBytes` of memory, is reported once as oversize, and the next line is read normally.
 */

export interface LineSink {
  /** A complete line (without "\n"); `endOffset` is the byte offset just after its newline. */
  line(text: string, endOffset: number): void;
  /** A line longer than the cap was skipped; `bytes` is its full length. */
  oversize(bytes: number, endOffset: number): void;
}

export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes of the current line that were thrown away because it exceeded the cap. */
  private discarded = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  /** Bytes held for an unfinished line (not yet a line; not committed). */
  get pendingBytes(): number {
    return this.partBytes + this.discarded;
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
      if (this.discarded > 0 || this.partBytes + piece.length > this.maxLineBytes) {
        this.sink.oversize(this.discarded + this.partBytes + piece.length, end);
        this.reset();
      } else {
        const buf = this.partBytes === 0 ? piece : Buffer.concat([...this.parts, piece]);
        this.reset();
        this.sink.line(buf.toString('utf8'), end);
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
    if (this.discarded > 0) this.sink.oversize(this.discarded + this.partBytes, endOffset);
    else this.sink.line(Buffer.concat(this.parts).toString('utf8'), endOffset);
    this.reset();
    return true;
  }

  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.discarded = 0;
  }

  private hold(rest: Buffer): void {
    if (rest.length === 0) return;
    if (this.discarded > 0) {
      this.discarded += rest.length;
      return;
    }
    if (this.partBytes + rest.length > this.maxLineBytes) {
      this.discarded = this.partBytes + rest.length;
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    // Copy: the caller reuses its read buffer.
    this.parts.push(Buffer.from(rest));
    this.partBytes += rest.length;
  }
}
