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

/** Large reads: a line may be up to 1 MiB, and fewer crossings into C++ cost less. */
const READ_BYTES = 4 << 20;
/** Write when this much output is waiting (and wait for the pipe). */
const FLUSH_BYTES = 1 << 20;

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

/** Output as Buffers and strings, written in large pieces. */
class ByteOut {
  private parts: (Buffer | string)[] = [];
  private bytes = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  add(part: Buffer | string): void {
    if (part.length === 0) return;
    this.parts.push(part);
    this.bytes += part.length;
  }
  get pending(): number {
    return this.bytes;
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = Buffer.concat(this.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
    this.parts = [];
    this.bytes = 0;
    if (!this.stream.write(chunk)) await waitDrain(this.stream);
  }
}

function waitDrain(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      stream.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      stream.off('drain', onDrain);
      reject(err);
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
  });
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
  private readonly out: ByteOut;
  private readonly counters: Required<BuildCounters> = { decodeErrors: 0, uringEvents: 0, uringUnknownOps: 0 };

  constructor(
    native: NativeBinding,
    stream: NodeJS.WriteStream,
    private readonly eventLine: (ev: ReturnType<typeof buildEvent>) => string,
    private readonly onParseError: (reason: string, text: string) => void,
  ) {
    const Scanner = native.ReplayEventScanner;
    if (Scanner === undefined) throw new Error('the native addon has no ReplayEventScanner');
    this.scanner = new Scanner(replaySpec());
    this.out = new ByteOut(stream);
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
      this.take(this.scanner.push(chunk));
      if (this.out.pending >= FLUSH_BYTES) await this.out.flush();
      onBytes(bytes, this.scanner.stats().events);
    }
    this.take(this.scanner.endFile());
  }

  /** What is printed so far (a read failed: the error follows it). */
  async flushOutput(): Promise<void> {
    await this.out.flush();
  }

  async finish(): Promise<NativeReplayResult> {
    this.take(this.scanner.flush());
    await this.out.flush();
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

  /** Interleaves the C++ lines with the events built here, each at its offset. */
  private take(step: NativeReplayStep): void {
    const [out, fbBytes, meta, failures] = step;
    for (const [reason, text] of failures) this.onParseError(reason, decodeSurrogateEscaped(text));
    if (meta === null || fbBytes === null) {
      this.out.add(out);
      return;
    }
    let prev = 0;
    for (let k = 0; k < meta.length; ) {
      const at = meta[k] as number;
      const incomplete = meta[k + 1] === 1;
      const n = meta[k + 2] as number;
      k += 3;
      if (at > prev) this.out.add(out.subarray(prev, at));
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
      this.out.add(this.eventLine(buildEvent(records, incomplete, this.counters)));
    }
    this.out.add(out.subarray(prev));
  }
}
