/**
 * `credwatch replay [--events] [--json] [--records] [--stats] FILE...|-`
 *
 * Feeds recorded auditd logs through the same parser and reassembler the daemon uses.
 *  - `--events`: one AuditEvent JSON object per line on stdout, in completion order, redacted like
 *    evidence (argv, title, paths, re-rendered records; see src/detect/redact/event.ts). The raw
 *    `records` (type + original text) are left out unless `--records` is given: they double the
 *    output and every decoded field is already there.
 *  - without `--events`: findings, through the detection engine (see replayFindings below).
 * Without --records, and where the addon is built, --events runs through C++ (./replay-native.ts:
 * same bytes out, most events never become JavaScript objects).
 * Files are read in order as one stream (a log and its rotated predecessors may be given together);
 * `-` is stdin. With several independent streams and more than one core (or --jobs N) the work is
 * spread over worker processes (./replay-parallel.ts; the grouping in ./replay-streams.ts). A file that cannot be read is an error (exit 1) reported before any output.
 * Counters that signal trouble (parse errors, evictions, late records, undecodable values, serial
 * gaps) are summarised on stderr at the end when non-zero; `--stats` always prints all of them.
 * A progress line is drawn on stderr when it is a terminal and the input is larger than 64 MiB
 * (src/cli/render/progress.ts), in both modes.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import type { Command } from 'commander';
import type { AuditEvent } from '../../audit/event';
import { REPLAY_REASSEMBLY, Reassembler, type ReassemblerStats } from '../../audit/reassembler';
import type { RecordParseFailure } from '../../audit/record';
import { readAuditLog, type LineSplitter } from '../../sources/auditlog';
import { redactAuditEvent } from '../../detect/redact/event';
import { RuntimeFailure, UsageError } from '../errors';
import { replayFindings } from './replay-findings';
import { Progress, progressMinBytes } from '../render/progress';
import { stringifyBig } from '../render/escape';
import { NativeEventReplay, nativeReplay } from './replay-native';
import { failOnUnreadable, unreadable, type FileReadCounts, type UnreadableFile } from './replay-unreadable';
import { JOBS_HELP, PARALLEL_MIN_MIB, parseJobs, replayInParallel } from './replay-parallel';

export interface ReplayOptions {
  events?: boolean;
  json?: boolean;
  records?: boolean;
  stats?: boolean;
  rulesDir?: string;
  maxFindingKb?: number;
  jobs?: number;
  /**
   * `--jobs N` worker (replay-worker.ts): the counters and the files nothing could be read of go to
   * the parent, which sums and prints them and fails for those files once every stream has finished.
   */
  onSummary?: (s: EventsSummary) => void;
}

/** What an `--events` run counted, as a `--jobs N` worker hands it to the parent. */
export interface EventsSummary {
  stats: ReassemblerStats;
  src: SourceCounts;
  failures: string[];
  unusable: UnreadableFile[];
  /** Events printed by C++ / built in TypeScript; null when the run was not on the native scanner. */
  native: NativeEventsCounts | null;
}

export interface NativeEventsCounts {
  native: number;
  fallback: number;
}

/** The --stats line of the native scanner in --events mode (one run's, or the workers' summed). */
export function nativeEventsLine(n: NativeEventsCounts): string {
  return `credwatch replay: native scanner: ${n.native} events printed by C++, ${n.fallback} handed up and built in TypeScript, 0 triaged out (--events prints every event)\n`;
}

export interface SourceCounts {
  overlong: number;
  lines: number;
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('Replay recorded auditd logs through the pipeline; prints findings, or events with --events')
    .argument('<files...>', 'auditd log files, or - for stdin')
    .option('--events', 'print the reassembled audit events as JSON lines instead of findings')
    .option('--json', 'JSON output (events are always JSON)')
    .option('--records', 'with --events: include each event\'s raw records')
    .option('--stats', 'print record/event counters on stderr at the end')
    .option('--rules-dir <dir>', 'operator rule directory (host, Kubernetes and Sigma rules) loaded after the built-in pack')
    .option('--max-finding-kb <n>', 'cut findings whose JSON is over N KiB, as the daemon does (storage.max_finding_kb)', parseKb, 64)
    .option('--jobs <n>', `replay independent streams on N cores (default: the cores, at most one per stream, when the input is ${PARALLEL_MIN_MIB} MiB or more, uncompressed; under that, or 1: all files as one stream, in this process). ${JOBS_HELP}`, parseJobs)
    .action(async (files: string[], opts: ReplayOptions) => {
      boundHeapGrowth();
      const parallel = await replayInParallel(files, opts, { checkEventFiles: checkFiles, endEvents: (sum) => endEvents(opts, sum) });
      process.exitCode = parallel ?? (opts.events ? await replayEvents(files, opts) : await replayFindings(files, opts));
    });
}

/**
 * Replay keeps a bounded window of records (REPLAY_REASSEMBLY) but allocates a lot of short-lived
 * garbage around it, and V8 by default lets the old generation grow to several times its live size
 * between full collections: 293-305 MiB peak RSS on the 1M-event bench log for a ~35 MB live set.
 * A growth factor of 2x brings that to 201-205 MiB (findings mode 185-195) for the same CPU time
 * (bench/replay-throughput.js). bin/credwatch starts every command at 1.3x, which suits the agent's
 * RSS; for a batch replay that meant ~10% more CPU in full collections for ~30 MB less, so replay
 * asks for 2x. V8 applies the flag at its next heap-limit computation, so setting it at run time
 * works; only this process is affected.
 */
export function boundHeapGrowth(): void {
  v8.setFlagsFromString('--heap-growing-percent=100');
}

function parseKb(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 8 || n > 4096) throw new UsageError(`--max-finding-kb: expected an integer from 8 to 4096, got ${JSON.stringify(v)}`);
  return n;
}
const OUT_FLUSH_CHARS = 256 * 1024;
const TICK_EVERY_BATCHES = 1;

export interface FileInfo {
  path: string;
  size: number | null;
}

export function checkFiles(files: string[]): FileInfo[] {
  if (files.length === 0) throw new UsageError('replay: give at least one FILE (or - for stdin)');
  if (files.filter((f) => f === '-').length > 1) throw new UsageError('replay: stdin (-) can be given only once');
  return files.map((path) => {
    if (path === '-') return { path, size: null };
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
      fs.accessSync(path, fs.constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      // A file that does not exist is a usage error (a typo: exit 2); one that cannot be read is a runtime failure.
      if (code === 'ENOENT') throw new UsageError(`cannot read ${path}: no such file`);
      throw new RuntimeFailure(`cannot read ${path}: ${code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
    if (st.isDirectory()) throw new RuntimeFailure(`cannot read ${path}: is a directory`);
    if (looksLikeJson(path)) {
      throw new UsageError(`${path} looks like Kubernetes audit JSON; --events shows kernel audit events only (drop --events for findings)`);
    }
    return { path, size: st.size };
  });
}

/** Kubernetes audit logs are JSON lines; auditd lines start with `type=` or `node=`. */
function looksLikeJson(path: string): boolean {
  let fd: number | null = null;
  try {
    fd = fs.openSync(path, 'r');
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, 64, 0);
    const head = buf.toString('utf8', 0, n).trimStart();
    return head.startsWith('{') || head.startsWith('[');
  } catch {
    return false;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** stdout writer that batches small writes and waits for 'drain' when the pipe is full. */
class BufferedOut {
  private buf = '';
  constructor(private readonly stream: NodeJS.WriteStream) {}
  add(s: string): void {
    this.buf += s;
  }
  get pending(): number {
    return this.buf.length;
  }
  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf;
    this.buf = '';
    if (!this.stream.write(chunk)) await waitDrainOrError(this.stream);
  }
}

function waitDrainOrError(stream: NodeJS.WriteStream): Promise<void> {
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

/** Whether an event holds a string long enough for stringifyBig to look at (a huge argv or record). */
function holdsLongText(ev: AuditEvent): boolean {
  for (const a of ev.process?.argv ?? []) if (a.length >= 1024) return true;
  for (const r of ev.records ?? []) if (r.text.length >= 1024) return true;
  return false;
}

/** One `replay --events` line of a TypeScript-built event (also what bench/huge-argv.js times). */
export function eventLine(raw: AuditEvent, withRecords: boolean): string | Buffer {
  // The debugging view is stdout too: the same redaction as findings (secrets never reach stdout).
  // Without --records the raw records are neither redacted nor printed (stringify skips undefined).
  const ev = redactAuditEvent(raw, { records: withRecords });
  if (!withRecords) (ev as { records?: unknown }).records = undefined;
  const json = stringifyBig(ev, holdsLongText(ev));
  return typeof json === 'string' ? json + '\n' : Buffer.concat([json, NEWLINE]);
}

const NEWLINE = Buffer.from('\n');

function failureLine(reason: string, text: string): string {
  return `${reason}: ${text.length > 120 ? text.slice(0, 120) + '...' : text}`;
}

export async function replayEvents(files: string[], opts: ReplayOptions): Promise<number> {
  const infos = checkFiles(files);
  const withRecords = opts.records === true;
  const failures: string[] = [];
  const native = withRecords ? null : nativeReplay();
  if (native !== null) {
    const onFailure = (reason: string, text: string): void => {
      if (failures.length < 5) failures.push(failureLine(reason, text));
    };
    return replayEventsNative(new NativeEventReplay(native, process.stdout, (ev) => eventLine(ev, false), onFailure), infos, failures, opts);
  }
  const out = new BufferedOut(process.stdout);
  const reassembler = new Reassembler({
    // A log's timestamps say nothing about how late a record may be written, so replay ages events
    // by a window of records instead of by time (see Reassembler's maxAgeRecords).
    ...REPLAY_REASSEMBLY,
    onEvent: (ev) => {
      const line = eventLine(ev, withRecords);
      out.add(typeof line === 'string' ? line : line.toString('utf8'));
    },
    onParseError: (f: RecordParseFailure) => {
      if (failures.length < 5) failures.push(failureLine(f.reason, f.text));
    },
  });
  const totalBytes = infos.reduce((a, f) => a + (f.size ?? 0), 0);
  const progress = new Progress(totalBytes, process.stderr.isTTY === true && totalBytes >= progressMinBytes() && !infos.some((f) => f.size === null));
  let bytesBefore = 0;
  let overlong = 0;
  let lines = 0;
  const unusable: UnreadableFile[] = [];

  for (const info of infos) {
    const holder: { splitter?: LineSplitter } = {};
    const before = { records: reassembler.stats.records, parseErrors: reassembler.stats.parseErrors };
    let batches = 0;
    try {
      for await (const batch of readAuditLog(info.path, { onProgress: (b) => progress.update(bytesBefore + b, reassembler.stats.events) }, holder)) {
        for (let i = 0; i < batch.length; i++) {
          const rec = batch[i]!;
          reassembler.push(rec, rec.node);
        }
        if (++batches % TICK_EVERY_BATCHES === 0 && out.pending >= OUT_FLUSH_CHARS) await out.flush();
      }
    } catch (err) {
      await out.flush();
      throw new RuntimeFailure(`reading ${info.path}: ${(err as Error).message}`);
    }
    const st = holder.splitter?.stats;
    if (st) {
      bytesBefore += st.bytes;
      overlong += st.overlongLines;
      lines += st.lines;
    }
    const problem = unreadable(fileName(info), {
      records: reassembler.stats.records - before.records,
      unparsable: reassembler.stats.parseErrors - before.parseErrors,
      overlongLines: st?.overlongLines ?? 0,
    });
    if (problem) unusable.push(problem);
  }
  reassembler.flush();
  await out.flush();
  progress.done();
  return endEvents(opts, { stats: reassembler.stats, src: { overlong, lines }, failures, unusable, native: null });
}

/** The counters printed and the unreadable files failed on, or in a worker all of it handed to the parent. */
function endEvents(opts: ReplayOptions, sum: EventsSummary): number {
  if (opts.onSummary) {
    opts.onSummary(sum);
    return 0;
  }
  // Before the counters line (its last line is what scripts read).
  if (opts.stats && sum.native) process.stderr.write(nativeEventsLine(sum.native));
  summarise(sum.stats, sum.src, sum.failures, opts.stats === true);
  failOnUnreadable(sum.unusable);
  return 0;
}

const fileName = (info: FileInfo): string => (info.path === '-' ? 'stdin' : info.path);

const countsSince = (before: FileReadCounts, now: FileReadCounts): FileReadCounts => ({
  records: now.records - before.records,
  unparsable: now.unparsable - before.unparsable,
  overlongLines: now.overlongLines - before.overlongLines,
});

/** The same contract through C++ (./replay-native.ts); `failures` fills as the run reports them. */
async function replayEventsNative(run: NativeEventReplay, infos: FileInfo[], failures: string[], opts: ReplayOptions): Promise<number> {
  const totalBytes = infos.reduce((a, f) => a + (f.size ?? 0), 0);
  const progress = new Progress(totalBytes, process.stderr.isTTY === true && totalBytes >= progressMinBytes() && !infos.some((f) => f.size === null));
  let bytesBefore = 0;
  const unusable: UnreadableFile[] = [];
  for (const info of infos) {
    let fileBytes = 0;
    const before = run.readCounts();
    try {
      await run.file(info.path, (b, events) => {
        fileBytes = b;
        progress.update(bytesBefore + b, events);
      });
    } catch (err) {
      await run.flushOutput();
      throw new RuntimeFailure(`reading ${info.path}: ${(err as Error).message}`);
    }
    bytesBefore += fileBytes;
    const problem = unreadable(fileName(info), countsSince(before, run.readCounts()));
    if (problem) unusable.push(problem);
  }
  const r = await run.finish();
  progress.done();
  return endEvents(opts, { stats: r.stats, src: { overlong: r.overlong, lines: r.lines }, failures, unusable, native: { native: r.native, fallback: r.fallback } });
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

export function summarise(s: ReassemblerStats, src: SourceCounts, failures: string[], always: boolean): void {
  const trouble = s.parseErrors + s.evicted + s.lateRecords + s.decodeErrors + s.serialGaps + src.overlong + s.uringUnknownOps;
  if (!always && trouble === 0) return;
  const parts = always
    ? [
        `${src.lines} lines`,
        `${s.records} records`,
        `${s.events} events`,
        `${s.incomplete} incomplete`,
        `${s.parseErrors} parse errors`,
        `${s.evicted} evicted`,
        `${s.lateRecords} late records`,
        `${s.decodeErrors} undecodable values`,
        `${s.uringEvents} io_uring ops (${s.uringUnknownOps} of unknown op numbers)`,
        `${s.serialGaps} missing serials`,
        `${src.overlong} overlong lines skipped`,
      ]
    : [
        s.parseErrors ? plural(s.parseErrors, 'parse error') : '',
        s.evicted ? plural(s.evicted, 'event') + ' evicted' : '',
        s.lateRecords ? plural(s.lateRecords, 'late record') : '',
        s.decodeErrors ? plural(s.decodeErrors, 'undecodable value') : '',
        s.uringUnknownOps ? `${plural(s.uringUnknownOps, 'io_uring op')} of unknown op number (kept, kind "other")` : '',
        s.serialGaps ? `${plural(s.serialGaps, 'missing serial')} (gaps)` : '',
        src.overlong ? plural(src.overlong, 'overlong line') + ' skipped' : '',
      ].filter((p) => p !== '');
  process.stderr.write(`credwatch replay: ${parts.join(', ')}\n`);
  for (const f of failures) process.stderr.write(`  parse error: ${f}\n`);
}
