/**
 * Reads auditd log files (or stdin) as batches of raw records, streaming: a file of any size is
 * read in chunks, split into lines without a line-length assumption (EXECVE lines run to ~9 KB,
 * anything up to `maxLineBytes` is accepted; longer lines are counted and skipped), and a missing
 * final newline still yields the last line.
 *
 * Bytes are decoded as UTF-8 when valid (the common case: auditd hex-encodes untrusted values)
 * and with surrogateescape (src/audit/bytes.ts) otherwise, so nothing is replaced or lost.
 */
import { createReadStream, closeSync, openSync, readSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { RawRecord } from '../audit/event';
import { decodeSurrogateEscaped } from '../audit/bytes';
import { recordTypeNumber } from '../audit/record-types';
import { isGzipHead, maybeGunzip } from './decompress';

export interface LogRecord extends RawRecord {
  /** `node=` prefix, null when absent. */
  node: string | null;
}

export interface AuditLogStats {
  bytes: number;
  lines: number;
  /** Lines longer than maxLineBytes, skipped. */
  overlongLines: number;
}

export interface AuditLogOptions {
  maxLineBytes?: number;
  /** Called after each chunk with the running byte count (for progress displays). */
  onProgress?: (bytesRead: number) => void;
}

const DEFAULT_MAX_LINE = 1 << 20;

/**
 * Type number and node from a log line's prefix: `[node=HOST ]type=NAME ...`. Returns type 0 when
 * the name is unknown (the record parser then keeps the name) and for lines without `type=`.
 */
export function logLineHeader(line: string): { type: number; node: string | null } {
  let pos = 0;
  let node: string | null = null;
  if (line.startsWith('node=')) {
    const sp = line.indexOf(' ', 5);
    if (sp < 0) return { type: 0, node: null };
    node = line.slice(5, sp);
    pos = sp + 1;
  }
  if (!line.startsWith('type=', pos)) return { type: 0, node };
  let end = line.indexOf(' ', pos + 5);
  if (end < 0) end = line.length;
  return { type: recordTypeNumber(line.slice(pos + 5, end)) ?? 0, node };
}

/** Splits a byte stream into lines; keeps the partial last line between chunks. */
export class LineSplitter {
  readonly stats: AuditLogStats = { bytes: 0, lines: 0, overlongLines: 0 };
  private carry: Buffer[] = [];
  private carryLen = 0;
  private skippingOverlong = false;
  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE) {}

  /** Complete lines in `chunk` (without their newline), decoded. */
  push(chunk: Buffer, out: string[]): void {
    this.stats.bytes += chunk.length;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      if (this.carryLen === 0 && !this.skippingOverlong) {
        // Fast path: a run of complete lines inside this chunk.
        const lastNl = chunk.lastIndexOf(10);
        this.decodeLines(chunk.subarray(start, lastNl), out);
        start = lastNl + 1;
        break;
      }
      if (this.skippingOverlong) {
        this.skippingOverlong = false;
      } else {
        this.carry.push(chunk.subarray(start, nl));
        const line = Buffer.concat(this.carry, this.carryLen + nl - start);
        this.decodeLines(line, out);
      }
      this.carry = [];
      this.carryLen = 0;
      start = nl + 1;
    }
    if (start < chunk.length && !this.skippingOverlong) {
      const rest = chunk.subarray(start);
      this.carryLen += rest.length;
      if (this.carryLen > this.maxLineBytes) {
        this.stats.overlongLines++;
        this.skippingOverlong = true;
        this.carry = [];
        this.carryLen = 0;
      } else {
        // Copy: the stream may reuse its chunk buffers.
        this.carry.push(Buffer.from(rest));
      }
    }
  }

  /** The last line when the input did not end with a newline. */
  end(out: string[]): void {
    if (this.carryLen > 0 && !this.skippingOverlong) this.decodeLines(Buffer.concat(this.carry, this.carryLen), out);
    this.carry = [];
    this.carryLen = 0;
  }

  private decodeLines(bytes: Buffer, out: string[]): void {
    if (bytes.length === 0) {
      this.stats.lines++;
      return;
    }
    if (isUtf8(bytes)) {
      this.splitInto(bytes.toString('utf8'), out);
      return;
    }
    let s = 0;
    for (;;) {
      const nl = bytes.indexOf(10, s);
      const e = nl < 0 ? bytes.length : nl;
      this.stats.lines++;
      if (e > this.maxLineBytes + s) this.stats.overlongLines++;
      else if (e > s) out.push(decodeSurrogateEscaped(bytes, s, e));
      if (nl < 0) break;
      s = nl + 1;
    }
  }

  private splitInto(text: string, out: string[]): void {
    let s = 0;
    for (;;) {
      const nl = text.indexOf('\n', s);
      const e = nl < 0 ? text.length : nl;
      this.stats.lines++;
      if (e - s > this.maxLineBytes) this.stats.overlongLines++;
      else if (e > s) out.push(text.slice(s, e));
      if (nl < 0) break;
      s = nl + 1;
    }
  }
}

/** Turns decoded lines into records (type from the `type=` name, node from `node=`). */
export function linesToRecords(lines: string[]): LogRecord[] {
  const out: LogRecord[] = new Array<LogRecord>(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] as string;
    const h = logLineHeader(text);
    out[i] = { type: h.type, text, node: h.node };
  }
  return out;
}

/**
 * Yields batches of records from a readable byte stream (a file stream or process.stdin).
 * Empty lines are skipped. The splitter's stats are available through `stats` when given.
 */
export async function* readAuditLogStream(
  input: Readable | AsyncIterable<Buffer>,
  opts: AuditLogOptions = {},
  stats?: { splitter?: LineSplitter },
): AsyncGenerator<LogRecord[]> {
  const splitter = new LineSplitter(opts.maxLineBytes ?? DEFAULT_MAX_LINE);
  if (stats) stats.splitter = splitter;
  const lines: string[] = [];
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    lines.length = 0;
    splitter.push(buf, lines);
    if (opts.onProgress) opts.onProgress(splitter.stats.bytes);
    if (lines.length > 0) yield linesToRecords(lines);
  }
  lines.length = 0;
  splitter.end(lines);
  if (lines.length > 0) yield linesToRecords(lines);
}

const READ_CHUNK = 1 << 20;

/**
 * A regular file as 1 MiB reads into two reused Buffers. A read stream allocates a fresh 1 MiB
 * Buffer per chunk, and those wait for a garbage collection to be freed: on a 1 GB log that was
 * ~65 MB of RSS. Each yielded chunk is valid only until the next step; LineSplitter copies what it
 * keeps (the partial last line) and decodes the rest at once.
 */
export async function* readFileChunks(path: string, chunkBytes = READ_CHUNK): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  // Two buffers: the next read runs (in the thread pool) while the caller works on this chunk.
  const bufs = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
  let turn = 0;
  let next: Promise<{ bytesRead: number }> | null = fh.read(bufs[0] as Buffer, 0, chunkBytes, null);
  try {
    for (;;) {
      const { bytesRead } = await next;
      next = null;
      if (bytesRead === 0) return;
      const cur = bufs[turn] as Buffer;
      turn ^= 1;
      next = fh.read(bufs[turn] as Buffer, 0, chunkBytes, null);
      yield cur.subarray(0, bytesRead);
    }
  } finally {
    // A caller that stops early (an error, a closed pipe) leaves a read in flight: let it end first.
    if (next !== null) await next.catch(() => undefined);
    await fh.close();
  }
}

/**
 * A regular file that does not start with the gzip magic: it can be read (again) from its start with
 * readFileChunks. Pipes, devices and stdin cannot be read twice, and gzip needs its stream.
 */
export function isPlainRegularFile(path: string): boolean {
  if (path === '-' || !statSync(path).isFile()) return false;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return !isGzipHead(head.subarray(0, readSync(fd, head, 0, 2, 0)));
  } finally {
    closeSync(fd);
  }
}

/**
 * The bytes of `path` ('-' for stdin), gzip content decompressed: a plain file as reads into one
 * reused buffer (each chunk valid until the next step), anything else as its stream's chunks.
 */
export async function* readLogBytes(path: string, chunkBytes = READ_CHUNK): AsyncGenerator<Buffer> {
  if (isPlainRegularFile(path)) {
    yield* readFileChunks(path, chunkBytes);
    return;
  }
  const input: Readable = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  for await (const chunk of (await maybeGunzip(input)) as AsyncIterable<Buffer | string>) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

/** Opens `path` ('-' for stdin) and yields batches of records; gzip content is decompressed. */
export async function* readAuditLog(path: string, opts: AuditLogOptions = {}, stats?: { splitter?: LineSplitter }): AsyncGenerator<LogRecord[]> {
  yield* readAuditLogStream(readLogBytes(path), opts, stats);
}
