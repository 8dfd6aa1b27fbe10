/**
 * `credwatch replay --jobs N`: independent streams of input (replay-streams.ts) replayed on several
 * cores, each stream in order in a worker process (replay-worker.ts, a fork of this build running the
 * sequential replay functions), at most N at a time.
 *
 *  - Findings: the parent runs replayFindings as ever, but its host files are read by the workers
 *    (RemoteHostReplay): it walks all files in recorded time order, takes each host file's findings
 *    from its worker when that file is done, and runs the Kubernetes files, the token trail, token
 *    home, the finding cap and the output itself. So the joins see the host findings in the order the
 *    sequential run emits them, and the output is the sequential run's whenever the streams are
 *    independent (test/integration/replay/parallel.test.ts).
 *  - --events: each stream's lines exactly as `replay --events` of that stream alone prints them,
 *    streams one after another in the order of their first file on the command line. The stream
 *    whose turn it is writes straight to stdout; the others write to a temporary file (under TMPDIR)
 *    that is copied out and removed at its turn, so memory stays bounded whatever the output size.
 *
 * A file nothing could be read of does not stop anything: every stream finishes, then the run fails
 * (exit 1) naming those files, as the sequential run does. A worker that fails (a read error such as
 * a truncated gzip, a crash) stops the others; its message is the error, with the exit code it would
 * have had. Counters (--stats), the native scanner's among them, are summed over the workers. No
 * progress line.
 *
 * Without --jobs, an input under parallelMinBytes() is replayed in this process: a worker costs a
 * process start, the modules and the rule pack (~0.3-0.6 s of CPU each), which 2 cores only win back
 * on a few hundred MiB (bench/replay-parallel.js --copies 1,4,8,31). An explicit --jobs N always uses workers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import type { ReassemblerStats } from '../../audit/reassembler';
import { looksLikeKubeAudit } from '../../kube/event';
import type { Finding } from '../../model/finding';
import { maybeGunzip, peekStream } from '../../sources/decompress';
import { RuntimeFailure, UsageError } from '../errors';
import type { EventsSummary, FileInfo, ReplayOptions } from './replay';
import { addCounters, replayFindings, sumNativeCounts, WorkerFailure, type HostFileResult, type HostRunCounters, type NativeFindingsCounts, type RemoteHostReplay } from './replay-findings';
import { firstNode, groupStreams } from './replay-streams';

export const JOBS_HELP =
  'Files are one stream when they share a rotation name (audit.log, audit.log.1, audit.log.2.gz in one directory) or the node= name of their first record; ' +
  'stdin is a stream of its own. Below the size a worker\'s start-up (~0.5 s) is not won back on, the output is the same either way, only slower with workers; an explicit --jobs N always uses them. Findings are those of --jobs 1 when the streams share no processes; --events prints each stream\'s lines in order, streams in the order of their first file.';

const MAX_JOBS = 64;

/**
 * The input size (uncompressed bytes, all files) from which the default --jobs uses workers. Measured
 * on 2 cores, 2 streams of the bench sample (bench/replay-parallel.js --copies 1,2,4): --jobs 2 took
 * 1.43x (--events) / 1.63x (findings) the wall time of --jobs 1 at 30 MiB, 1.31x / 1.54x at 60 MiB,
 * 1.13x / 1.19x at 121 MiB (load 1.6-2.1); on a quiet machine 1.00x / 1.06x at 242 MiB and
 * 0.76x / 0.75x at 940 MiB. A straight line through them crosses 1.0 near 230-250 MiB.
 */
export const PARALLEL_MIN_MIB = 256;
const PARALLEL_MIN_BYTES = PARALLEL_MIN_MIB * 2 ** 20;

/** PARALLEL_MIN_BYTES, or CREDWATCH_REPLAY_JOBS_MIN_BYTES when set (tests, and inputs unlike the bench's). */
export function parallelMinBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.CREDWATCH_REPLAY_JOBS_MIN_BYTES);
  return env.CREDWATCH_REPLAY_JOBS_MIN_BYTES !== undefined && Number.isInteger(v) && v >= 0 ? v : PARALLEL_MIN_BYTES;
}

/**
 * The bytes a replay of these files reads after decompression, as far as is known without reading
 * them: a plain file's size, a gzip's from its trailer (ISIZE, the last member's size mod 4 GiB: never
 * taken below the compressed size). Infinity when a size is unknown (it keeps the workers): stdin, and
 * anything but a regular file, which is not even opened here: a byte read from a pipe (`<(zcat ...)`)
 * would be gone for the replay, and a FIFO's open waits for its writer.
 */
export function inputBytes(files: readonly string[]): number {
  let total = 0;
  for (const file of files) {
    if (file === '-') return Number.POSITIVE_INFINITY;
    let fd: number | null = null;
    try {
      if (!fs.statSync(file).isFile()) return Number.POSITIVE_INFINITY;
      fd = fs.openSync(file, 'r');
      const size = fs.fstatSync(fd).size;
      total += isGzip(fd) ? Math.max(size, gzipTrailerSize(fd, size)) : size;
    } catch {
      return Number.POSITIVE_INFINITY; // unreadable: the checks further on say why
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  }
  return total;
}

function isRegularFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return true; // missing or unreadable: the checks of the run say which, as ever
  }
}

function isGzip(fd: number): boolean {
  const magic = Buffer.alloc(2);
  return fs.readSync(fd, magic, 0, 2, 0) === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
}

function gzipTrailerSize(fd: number, size: number): number {
  if (size < 18) return 0;
  const tail = Buffer.alloc(4);
  return fs.readSync(fd, tail, 0, 4, size - 4) === 4 ? tail.readUInt32LE(0) : 0;
}

/** A worker's exit when its stdout reader closed the pipe (128 + SIGPIPE): the parent then ends with 0, as main.ts does. */
export const READER_GONE_EXIT = 141;

export function parseJobs(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_JOBS) throw new UsageError(`--jobs: expected an integer from 1 to ${MAX_JOBS}, got ${JSON.stringify(v)}`);
  return n;
}

/** The options a worker needs (what commander parsed, without the parent-only ones). */
type TaskOptions = Pick<ReplayOptions, 'events' | 'json' | 'records' | 'stats' | 'rulesDir' | 'maxFindingKb'>;

export type WorkerTask = { kind: 'events' | 'findings'; files: string[]; opts: TaskOptions };

export type ToParent =
  | { t: 'summary'; summary: EventsSummary }
  | { t: 'findings'; findings: Finding[] }
  | { t: 'file'; records: number; parseErrors: number; overlongLines: number }
  | { t: 'end'; counters: HostRunCounters; native: NativeFindingsCounts | null }
  | { t: 'error'; message: string; exitCode: number };

export interface EventsHooks {
  checkEventFiles: (files: string[]) => FileInfo[];
  /** Prints the summed counters and fails for the unreadable files, as the sequential run ends; its exit code. */
  endEvents: (sum: EventsSummary) => number;
}

/**
 * Runs the replay on several workers and returns its exit code, or null when there is nothing to
 * spread (--jobs 1, one core, or one stream): the caller then replays here, in this process.
 */
export async function replayInParallel(files: string[], opts: ReplayOptions, hooks: EventsHooks): Promise<number | null> {
  const jobs = opts.jobs ?? os.availableParallelism();
  if (jobs <= 1 || files.length < 2 || files.filter((f) => f === '-').length > 1) return null;
  // With --stats, which way the run went (before every counter line: the last is what scripts read).
  const note = (text: string): void => void (opts.stats && process.stderr.write(`${opts.events ? 'credwatch replay' : 'replay'}: --jobs: ${text}\n`));
  const min = parallelMinBytes();
  if (opts.jobs === undefined) {
    const bytes = inputBytes(files);
    if (bytes < min) {
      note(`in this process: the input (${mib(bytes)} MiB) is under the ${mib(min)} MiB from which the default uses workers`);
      return null;
    }
  }
  if (opts.events) hooks.checkEventFiles(files); // the sequential checks and messages, before any output
  // A pipe given by name (<(zcat ...), a FIFO) can be read once: this process would take its head, and
  // its worker could not read it again. stdin is the exception: its worker reads it from this process.
  const readOnce = files.find((f) => f !== '-' && !isRegularFile(f));
  if (readOnce !== undefined) {
    note(`in this process: ${readOnce} is not a regular file (it can be read only once)`);
    return null;
  }
  const heads = await peekHeads(files);
  if (heads === null) return null; // an input that cannot be read: the sequential path says which, as ever
  const host = files.map((file, i) => ({ file, head: heads[i]! })).filter((x) => opts.events || x.head === null || !looksLikeKubeAudit(x.head));
  const streams = groupStreams(host.map((x) => ({ file: x.file, node: x.head === null ? null : firstNode(x.head) })));
  if (streams.length < 2) return null;
  const task = taskOptions(opts);
  note(`${streams.length} streams on ${Math.min(jobs, streams.length)} worker processes`);
  if (opts.events) return replayEventsParallel(files, streams.map((s) => s.map((i) => host[i]!.file)), Math.min(jobs, streams.length), task, hooks);
  return replayFindings(files, { ...opts, remote: new WorkerHostReplay(Math.min(jobs, streams.length), task) });
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function taskOptions(o: ReplayOptions): TaskOptions {
  const t: TaskOptions = {};
  if (o.events !== undefined) t.events = o.events;
  if (o.json !== undefined) t.json = o.json;
  if (o.records !== undefined) t.records = o.records;
  if (o.stats !== undefined) t.stats = o.stats;
  if (o.rulesDir !== undefined) t.rulesDir = o.rulesDir;
  if (o.maxFindingKb !== undefined) t.maxFindingKb = o.maxFindingKb;
  return t;
}

/** Each file's first bytes, decompressed, as text (null for stdin, which is read once, by its worker); null when one fails. */
async function peekHeads(files: string[]): Promise<(string | null)[] | null> {
  const heads: (string | null)[] = [];
  for (const file of files) {
    if (file === '-') {
      heads.push(null);
      continue;
    }
    const raw = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    try {
      const input = await maybeGunzip(raw);
      heads.push((await peekStream(input)).subarray(0, 4096).toString('utf8'));
      // Only the head was wanted: a fault further on (a truncated gzip) is the worker's to report.
      input.on('error', () => {});
      input.destroy();
    } catch {
      return null;
    } finally {
      raw.destroy();
    }
  }
  return heads;
}

const WORKER = path.join(__dirname, 'replay-worker.js');

/**
 * A worker runs as this process does (bin/credwatch's V8 flags come with process.execArgv) but with
 * 1 MiB semi-spaces, and one malloc arena: what the tree holds is the sum over the parent and every
 * worker, and most of a worker's is the same baseline N times (node, the modules, the rule pack).
 * Measured on 2 x 470 MiB, findings mode, --jobs 2 (bench/replay-parallel.js): each worker's peak RSS
 * went from 121-125 to 109-110 MiB, wall time within noise. A replay's garbage is short-lived either
 * way, and a worker's one thread does all of its allocation (the reader is on it too).
 */
function workerProcess(): { execArgv: string[]; env: NodeJS.ProcessEnv } {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size'));
  execArgv.push('--max-semi-space-size=1');
  return { execArgv, env: { MALLOC_ARENA_MAX: '1', ...process.env } };
}

/** One worker process and what it has said; `done` settles when it has ended (or failed). */
class Worker {
  readonly child: ChildProcess;
  readonly done: Promise<void>;
  private finalMessage = false;
  /** Why this worker was stopped (another one failed): that failure is the error, not this one's SIGTERM. */
  private stoppedFor: Error | null = null;
  constructor(
    task: WorkerTask,
    stdio: { stdin: 'ignore' | 'inherit' | 'pipe'; stdout: 'inherit' | number },
    onMessage: (m: ToParent) => void,
  ) {
    this.child = fork(WORKER, [], { ...workerProcess(), stdio: [stdio.stdin, stdio.stdout, 'inherit', 'ipc'], serialization: 'advanced' });
    const name = task.files.map((f) => (f === '-' ? 'stdin' : f)).join(', ');
    let failure: Error | null = null;
    this.child.on('message', (m: ToParent) => {
      if (m.t === 'error') failure = m.exitCode === 2 ? new UsageError(m.message) : new WorkerFailure(m.message);
      if (m.t === 'summary' || m.t === 'end') this.finalMessage = true;
      if (failure === null) onMessage(m);
    });
    this.done = new Promise((resolve, reject) => {
      this.child.on('error', (err) => reject(new WorkerFailure(`replay worker for ${name}: ${err.message}`)));
      this.child.once('exit', (code, signal) => {
        if (code === READER_GONE_EXIT) process.exit(0);
        if (failure) reject(failure);
        else if (this.stoppedFor) reject(this.stoppedFor);
        else if (code === 0 && this.finalMessage) resolve();
        else reject(new WorkerFailure(`replay worker for ${name} died (${signal ?? `exit code ${code}`}) before it finished`));
      });
    });
    this.done.catch(() => {}); // awaited by the caller; no unhandled rejection while it waits elsewhere
    // A child that died at once fails the send; its exit (above) says so.
    this.child.send(task, (err) => void err);
  }

  stop(reason: Error): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.stoppedFor ??= reason;
    this.child.kill();
  }
}

/** Runs `count` tasks at most `jobs` at a time, in order; a failure stops the rest and is thrown by `all`. */
class Pool {
  private next = 0;
  private readonly workers: (Worker | null)[];
  private readonly started: { resolve: (w: Worker) => void; promise: Promise<Worker> }[];
  private failed: Error | null = null;
  constructor(
    private readonly count: number,
    private readonly jobs: number,
    private readonly launch: (k: number) => Worker,
  ) {
    this.workers = new Array<Worker | null>(count).fill(null);
    this.started = Array.from({ length: count }, () => {
      let resolve!: (w: Worker) => void;
      const promise = new Promise<Worker>((r) => (resolve = r));
      return { resolve, promise };
    });
  }

  begin(): void {
    for (let i = 0; i < this.jobs; i++) this.launchNext();
  }

  /** Worker k once it has been started. */
  worker(k: number): Promise<Worker> {
    return this.started[k]!.promise;
  }

  private launchNext(): void {
    if (this.failed !== null || this.next >= this.count) return;
    const k = this.next++;
    const w = this.launch(k);
    this.workers[k] = w;
    this.started[k]!.resolve(w);
    w.done.then(
      () => this.launchNext(),
      (err: Error) => this.fail(err),
    );
  }

  /** The first failure stops every other worker, which then fails with it. */
  fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.workers) w?.stop(this.failed);
  }

  /** The run is over (or abandoned): no worker outlives it. */
  stopAll(): void {
    for (const w of this.workers) w?.stop(this.failed ?? new RuntimeFailure('replay stopped'));
  }
}

async function replayEventsParallel(files: string[], streams: string[][], jobs: number, opts: TaskOptions, hooks: EventsHooks): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-replay-'));
  // The temporary files go with this process however it ends: main.ts exits at once on EPIPE.
  const removeTmp = (): void => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('exit', removeTmp);
  const summaries: (EventsSummary | null)[] = streams.map(() => null);
  const outFile: (string | null)[] = streams.map(() => null);
  let printed = 0; // streams whose output is all on stdout
  const pool = new Pool(streams.length, jobs, (k) => {
    // The stream whose turn it is writes to stdout itself; a later one to its own file.
    let stdout: 'inherit' | number = 'inherit';
    let fd: number | null = null;
    if (k !== printed) {
      outFile[k] = path.join(tmp, `stream-${k}.jsonl`);
      fd = fs.openSync(outFile[k]!, 'w', 0o600);
      stdout = fd;
    }
    const files = streams[k]!;
    const w = new Worker({ kind: 'events', files, opts }, { stdin: files.includes('-') ? 'inherit' : 'ignore', stdout }, (m) => {
      if (m.t === 'summary') summaries[k] = m.summary;
    });
    if (fd !== null) fs.closeSync(fd); // the child holds its own copy
    return w;
  });
  try {
    pool.begin();
    for (let k = 0; k < streams.length; k++) {
      const w = await pool.worker(k);
      await w.done;
      const file = outFile[k];
      if (file !== null && file !== undefined) {
        await pipe(fs.createReadStream(file, { highWaterMark: 1 << 20 }), process.stdout, { end: false });
        fs.rmSync(file);
      }
      printed = k + 1;
    }
  } catch (err) {
    pool.fail(err as Error);
    throw err;
  } finally {
    pool.stopAll();
    removeTmp();
    process.off('exit', removeTmp);
  }
  // Every stream has finished (a file nothing could be read of does not stop the others, as in the
  // sequential run): the counters summed, then the exit-1 error naming those files in command-line order.
  return hooks.endEvents(sumSummaries(summaries as EventsSummary[], files));
}

const sum = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0);

/** The workers' --events summaries as one run's: counters summed, samples and unreadable files in input order. */
export function sumSummaries(all: readonly EventsSummary[], files: readonly string[]): EventsSummary {
  const stats = { ...all[0]!.stats };
  for (const s of all.slice(1)) for (const k of Object.keys(stats) as (keyof ReassemblerStats)[]) stats[k] += s.stats[k];
  const counts = all.map((s) => s.native);
  const native = counts.every((n) => n !== null) ? { native: sum(counts.map((n) => n!.native)), fallback: sum(counts.map((n) => n!.fallback)) } : null;
  const position = (name: string): number => files.indexOf(name === 'stdin' ? '-' : name);
  return {
    stats,
    src: { overlong: sum(all.map((s) => s.src.overlong)), lines: sum(all.map((s) => s.src.lines)) },
    failures: all.flatMap((s) => s.failures).slice(0, 5),
    unusable: all.flatMap((s) => s.unusable).sort((x, y) => position(x.file) - position(y.file)),
    native,
  };
}

interface StreamState {
  files: string[];
  stdin: Readable | null;
  /** Findings sent since the last file mark. */
  buffered: Finding[];
  results: Deferred<HostFileResult>[];
  marks: number;
  asked: number;
  end: Deferred<{ findings: Finding[]; counters: HostRunCounters; native: NativeFindingsCounts | null }>;
}

/** The host side of a findings replay, in worker processes (see RemoteHostReplay in replay-findings.ts). */
class WorkerHostReplay implements RemoteHostReplay {
  private readonly streams: StreamState[] = [];
  private readonly streamOf = new Map<string, number>();
  private pool: Pool | null = null;

  constructor(
    private readonly jobs: number,
    private readonly opts: TaskOptions,
  ) {}

  start(inputs: { file: string; input: Readable; head: string }[]): void {
    const groups = groupStreams(inputs.map((x) => ({ file: x.file, node: firstNode(x.head) })));
    for (const g of groups) {
      const files = g.map((i) => inputs[i]!.file);
      const k = this.streams.length;
      for (const f of files) this.streamOf.set(f, k);
      const stdin = g.map((i) => inputs[i]!).find((x) => x.file === '-')?.input ?? null;
      this.streams.push({ files, stdin, buffered: [], results: files.map(() => deferred()), marks: 0, asked: 0, end: deferred() });
    }
    // Files are read again by their workers: the sniffing streams are dropped here, and a fault
    // further on in one (a truncated gzip) is the worker's to report.
    for (const x of inputs) {
      if (x.file === '-') continue;
      x.input.on('error', () => {});
      x.input.destroy();
    }
    this.pool = new Pool(this.streams.length, Math.min(this.jobs, this.streams.length), (k) => this.launch(k));
    this.pool.begin();
  }

  private launch(k: number): Worker {
    const s = this.streams[k]!;
    const w = new Worker({ kind: 'findings', files: s.files, opts: this.opts }, { stdin: s.stdin ? 'pipe' : 'ignore', stdout: 'inherit' }, (m) => {
      if (m.t === 'findings') for (const f of m.findings) s.buffered.push(f);
      else if (m.t === 'file') {
        s.results[s.marks++]?.resolve({ findings: s.buffered, records: m.records, parseErrors: m.parseErrors, overlongLines: m.overlongLines });
        s.buffered = [];
      } else if (m.t === 'end') s.end.resolve({ findings: s.buffered, counters: m.counters, native: m.native });
    });
    if (s.stdin && w.child.stdin) {
      const to = w.child.stdin;
      to.on('error', () => {}); // the worker's own exit says why it stopped reading
      s.stdin.pipe(to);
    }
    w.done.catch((err: Error) => this.failAll(err));
    return w;
  }

  private failAll(err: Error): void {
    this.pool?.fail(err);
    for (const s of this.streams) {
      for (const r of s.results) r.reject(err);
      s.end.reject(err);
    }
  }

  file(file: string): Promise<HostFileResult> {
    const s = this.streams[this.streamOf.get(file)!]!;
    return s.results[s.asked++]!.promise;
  }

  async end(): Promise<{ findings: Finding[]; counters: HostRunCounters; native: NativeFindingsCounts | null }> {
    try {
      const ends = await Promise.all(this.streams.map((s) => s.end.promise));
      const counters = { ...ends[0]!.counters };
      for (const e of ends.slice(1)) addCounters(counters, e.counters);
      return { findings: ends.flatMap((e) => e.findings), counters, native: sumNativeCounts(ends.map((e) => e.native)) };
    } finally {
      this.pool?.stopAll();
    }
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}
