/**
 * `replay --events` through the native scanner (native/replay_events.h, issue 23): the file's bytes go
 * to C++ in large reads, and C++ splits lines, parses record headers, reassembles events exactly as
 * src/audit/reassembler.ts does and prints the JSON line of each event it fully understands and whose
 * strings redaction would leave as they are (src/detect/redact/plain-spec.ts). Every other event comes
 * back as its record lines, at its place in the output, and is built, redacted and printed here by the
 * TypeScript path (buildEvent, redactAuditEvent). So boring events never become JavaScript strings or
 * objects, and the output is the TypeScript path's, byte for byte
 * (test/integration/replay/fast-path.test.ts).
 *
 * Used when the addon is built with the scanner and --records is not asked for; CREDWATCH_REPLAY_NATIVE=0
 * forces the TypeScript path (the differential test compares the two).
 */
import { buildEvent, type BuildCounters } from '../../audit/event-builder';
import { decodeSurrogateEscaped } from '../../audit/bytes';
import { parseRecord, type ParsedRecord } from '../../audit/record';
import { AUDIT_MESSAGE_TYPES } from '../../audit/record-type-table';
import { recordTypeNumber } from '../../audit/record-types';
import { X86_64_SYSCALL_NAMES } from '../../audit/syscalls-x86_64';
import type { ReassemblerStats } from '../../audit/reassembler';
import { PLAIN_TEXT_SPEC } from '../../detect/redact/plain-spec';
import { loadNative } from '../../native/binding';
import type { NativeBinding, NativeReplayEventScanner, NativeReplaySpec, NativeReplayStep } from '../../native/types';
import { readLogBytes } from '../../sources/auditlog';
import type { FileReadCounts } from './replay-unreadable';

/** Large reads: a line may be up to 1 MiB, and fewer crossings into C++ cost less. */
const READ_BYTES = 4 << 20;
/** Each of the two output buffers: a 4 MiB read gives ~2.6 MiB of JSON lines. */
const OUT_BYTES = 8 << 20;

/** The addon when it has the scanner and the native path is not turned off; else null. */
export function nativeReplay(env: NodeJS.ProcessEnv = process.env): NativeBinding | null {
  if (env.CREDWATCH_REPLAY_NATIVE === '0') return null;
  try {
    const native = loadNative();
    return typeof native.ReplayEventScanner === 'function' ? native : null;
  } catch {
    return null; // no addon here (replay needs none): the TypeScript path
  }
}

export function replaySpec(): NativeReplaySpec {
  let maxNr = 0;
  for (const nr of X86_64_SYSCALL_NAMES.keys()) maxNr = Math.max(maxNr, nr);
  const names = new Array<string>(maxNr + 1).fill('');
  for (const [nr, name] of X86_64_SYSCALL_NAMES) names[nr] = name;
  return {
    typeNumbers: AUDIT_MESSAGE_TYPES.map(([name, num]) => [name, num]),
    x86_64Syscalls: names,
    plain: PLAIN_TEXT_SPEC,
    lookupType: (name) => recordTypeNumber(decodeSurrogateEscaped(name)) ?? 0,
  };
}

/**
 * Output in two alternating buffers that C++ writes into: a buffer is reused only once its last write
 * has gone out (the write callback), so at most two chunks' output are in flight (that is also the
 * backpressure) and steady replay allocates no output memory. A step whose output does not fit gets
 * a Buffer of its own.
 */
class TwoBufferOut {
  private readonly targets = [Buffer.allocUnsafeSlow(OUT_BYTES), Buffer.allocUnsafeSlow(OUT_BYTES)];
  private readonly inFlight: (Promise<void> | null)[] = [null, null];
  private turn = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  /** The next target buffer, once free. */
  async next(): Promise<Buffer> {
    this.turn ^= 1;
    const wait = this.inFlight[this.turn];
    if (wait) await wait;
    this.inFlight[this.turn] = null;
    return this.targets[this.turn] as Buffer;
  }

  /** Writes the pieces of one step (in the target just taken) as one writev. */
  write(parts: (Buffer | string)[]): void {
    const live = parts.filter((p) => p.length > 0);
    if (live.length === 0) return;
    this.stream.cork();
    let done!: Promise<void>;
    for (let k = 0; k < live.length; k++) {
      if (k < live.length - 1) this.stream.write(live[k] as Buffer | string);
      else done = new Promise((resolve, reject) => this.stream.write(live[k] as Buffer | string, (err) => (err ? reject(err) : resolve())));
    }
    this.stream.uncork();
    // A failed write rejects here and again where the buffer is awaited; only the latter reports.
    done.catch(() => {});
    this.inFlight[this.turn] = done;
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight.filter((p) => p !== null));
  }
}

export interface NativeReplayResult {
  stats: ReassemblerStats;
  lines: number;
  overlong: number;
  /** Printed by C++ / built here. */
  native: number;
  fallback: number;
}

export class NativeEventReplay {
  private readonly scanner: NativeReplayEventScanner;
  private readonly out: TwoBufferOut;
  private readonly counters: Required<BuildCounters> = { decodeErrors: 0, uringEvents: 0, uringUnknownOps: 0, argvCutEvents: 0, argvCutArgs: 0, argvCutBytes: 0 };

  constructor(
    native: NativeBinding,
    stream: NodeJS.WriteStream,
    private readonly eventLine: (ev: ReturnType<typeof buildEvent>) => string | Buffer,
    private readonly onParseError: (reason: string, text: string) => void,
  ) {
    const Scanner = native.ReplayEventScanner;
    if (Scanner === undefined) throw new Error('the native addon has no ReplayEventScanner');
    this.scanner = new Scanner(replaySpec());
    this.out = new TwoBufferOut(stream);
  }

  /** One file (or stdin); `onBytes` sees the running byte count of this file. */
  file(path: string, onBytes: (bytes: number, events: number) => void): Promise<void> {
    return this.chunks(readLogBytes(path, READ_BYTES), onBytes);
  }

  /** One file's bytes in any chunks (each valid only until the next step: C++ copies what it keeps). */
  async chunks(source: AsyncIterable<Buffer> | Iterable<Buffer>, onBytes: (bytes: number, events: number) => void = () => {}): Promise<void> {
    let bytes = 0;
    for await (const chunk of source) {
      bytes += chunk.length;
      const target = await this.out.next();
      this.take(this.scanner.push(chunk, target), target);
      onBytes(bytes, this.scanner.stats().events);
    }
    const target = await this.out.next();
    this.take(this.scanner.endFile(target), target);
  }

  /** Records read, unparsable and overlong lines so far (deltas around a file are that file's). */
  readCounts(): FileReadCounts {
    const s = this.scanner.stats();
    return { records: s.records, unparsable: s.parseErrors, overlongLines: s.overlongLines };
  }

  /** What is printed so far (a read failed: the error follows it). */
  async flushOutput(): Promise<void> {
    await this.out.drain();
  }

  async finish(): Promise<NativeReplayResult> {
    const target = await this.out.next();
    this.take(this.scanner.flush(target), target);
    await this.out.drain();
    const s = this.scanner.stats();
    return {
      stats: {
        records: s.records,
        events: s.events,
        incomplete: s.incomplete,
        evicted: s.evicted,
        parseErrors: s.parseErrors,
        serialGaps: s.serialGaps,
        lateRecords: s.lateRecords,
        ...this.counters,
      },
      lines: s.lines,
      overlong: s.overlongLines,
      native: s.native,
      fallback: s.fallback,
    };
  }

  /** Interleaves the C++ lines with the events built here, each at its offset, and writes them. */
  private take(step: NativeReplayStep, target: Buffer): void {
    const [written, fbBytes, meta, failures] = step;
    const out = typeof written === 'number' ? target.subarray(0, written) : written;
    for (const [reason, text] of failures) this.onParseError(reason, decodeSurrogateEscaped(text));
    if (meta === null || fbBytes === null) {
      this.out.write([out]);
      return;
    }
    const parts: (Buffer | string)[] = [];
    let prev = 0;
    for (let k = 0; k < meta.length; ) {
      const at = meta[k] as number;
      const incomplete = meta[k + 1] === 1;
      const n = meta[k + 2] as number;
      k += 3;
      if (at > prev) parts.push(out.subarray(prev, at));
      prev = at;
      const records: ParsedRecord[] = [];
      for (let i = 0; i < n; i++, k += 2) {
        const start = meta[k] as number;
        const text = decodeSurrogateEscaped(fbBytes, start, start + (meta[k + 1] as number));
        const rec = parseRecord({ type: 0, text });
        // C++ parsed this line with the same rules: a failure here is a bug in one of the two.
        if (rec.failed) throw new Error(`native replay passed a record TypeScript cannot parse (${rec.reason})`);
        records.push(rec);
      }
      parts.push(this.eventLine(buildEvent(records, incomplete, this.counters)));
    }
    parts.push(out.subarray(prev));
    this.out.write(parts);
  }
}
