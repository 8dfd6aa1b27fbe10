/**
 * Kubernetes API-server audit log source: follows a file of audit.k8s.io Event JSON lines the way the
 * apiserver's log backend (lumberjack) and logrotate leave it, and reads whole files for replay.
 *
 * Guarantees: a line is parsed only once it is complete; rename-rotation finishes the old file before
 * the new one; copytruncate restarts at 0 (counted); the offset of the last complete line and the
 * file's inode are persisted so a restart resumes there (and, after a rotation while stopped, finishes
 * the rotated file first when it is still in the same directory); bad and oversize lines are counted,
 * logged at a bounded rate and skipped without losing the next line.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { StateStore } from '../store/types';
import { parseKubeAuditLine, salvageKubeAuditLine, type KubeAuditEvent } from '../kube/event';
import { LineSplitter } from '../kube/lines';
import { LogWindow, type WarnLogger } from '../log/rate-limit';

export interface KubeBadLine {
  path: string;
  /** Byte offset just after the bad line's newline. */
  endOffset: number;
  error: string;
}

/** pino-compatible subset: the rate-limited warnings' logger, and rotation/truncation notes. */
export interface KubeSourceLogger extends WarnLogger {
  info?(obj: object, msg: string): void;
}

export interface KubeAuditFollowerOptions {
  path: string;
  state?: StateStore;
  onEvent: (ev: KubeAuditEvent) => void;
  onBadLine?: (err: KubeBadLine) => void;
  /** Backstop poll interval when fs.watch misses something (default 1000 ms). */
  pollMs?: number;
  now?: () => number;
  logger?: KubeSourceLogger;
  /** Longest line held in memory; longer ones are skipped and counted (default 4 MiB). */
  maxLineBytes?: number;
  /** Use fs.watch for prompt reads (default true); polling always runs as the backstop. */
  watch?: boolean;
  /** Minimum spacing of StateStore writes while data flows (default 1000 ms); stop() always writes. */
  persistEveryMs?: number;
}

export interface KubeAuditSourceStats {
  /** Complete lines seen (good, bad, empty and oversize). */
  lines: number;
  events: number;
  /** Lines (or EventList items) rejected, including empty and unsalvageable oversize lines. */
  badLines: number;
  emptyLines: number;
  /** Lines over the cap (salvaged or not). */
  oversizeLines: number;
  /** Oversize lines whose event was recovered without its requestObject/responseObject. */
  salvagedLines: number;
  rotations: number;
  truncations: number;
  /** Bytes read from disk. */
  bytes: number;
  /** onEvent threw (logged; the line still counts as delivered). */
  handlerErrors: number;
}

export interface KubeAuditFollowerStats extends KubeAuditSourceStats {
  /** Current file inode and committed offset (just after the last complete line). */
  inode: number | null;
  offset: number;
}

export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
const BAD_LINE_LOG_INTERVAL_MS = 10_000;

export function kubeAuditStateKey(filePath: string): string {
  return `kube_audit:${filePath}`;
}

interface SavedPosition {
  inode: number;
  offset: number;
}

function loadPosition(state: StateStore | undefined, key: string): SavedPosition | null {
  const raw = state?.get(key);
  if (raw === undefined) return null;
  try {
    const v = JSON.parse(raw) as Partial<SavedPosition>;
    if (typeof v.inode === 'number' && typeof v.offset === 'number' && v.offset >= 0) {
      return { inode: v.inode, offset: v.offset };
    }
  } catch {
    /* a corrupt entry means start over: fall through */
  }
  return null;
}

function emptyStats(): KubeAuditSourceStats {
  return { lines: 0, events: 0, badLines: 0, emptyLines: 0, oversizeLines: 0, salvagedLines: 0, rotations: 0, truncations: 0, bytes: 0, handlerErrors: 0 };
}

/** Turns complete lines into events and counts; shared by the follower and batch reading. */
class LineDecoder {
  /** Bad lines and handler errors share one window: at most one warning per interval for the file. */
  private readonly warnings: LogWindow;

  constructor(
    readonly stats: KubeAuditSourceStats,
    private readonly filePath: string,
    private readonly onEvent: (ev: KubeAuditEvent) => void,
    private readonly onBadLine: ((err: KubeBadLine) => void) | undefined,
    private readonly logger: KubeSourceLogger | undefined,
    now: () => number,
  ) {
    this.warnings = new LogWindow(BAD_LINE_LOG_INTERVAL_MS, now);
  }

  line(text: string, endOffset: number): void {
    this.stats.lines++;
    this.deliver(parseKubeAuditLine(text), endOffset, true);
  }

  oversize(bytes: number, endOffset: number, head: Buffer, tail: Buffer): void {
    this.stats.lines++;
    this.stats.oversizeLines++;
    const r = salvageKubeAuditLine(head.toString('utf8'), tail.toString('utf8'));
    if (r.ok) this.stats.salvagedLines++;
    this.deliver(r.ok ? r : { ok: false, error: `line of ${bytes} bytes exceeds the line cap; skipped (${r.error})` }, endOffset, false);
  }

  private deliver(r: ReturnType<typeof parseKubeAuditLine>, endOffset: number, countEmpty: boolean): void {
    if (!r.ok) {
      // A blank line (a writer's trailing newline, a hand-edited file) holds nothing: counted as empty, not bad.
      if (countEmpty && r.error === 'empty line') this.stats.emptyLines++;
      else this.bad(r.error, endOffset, true);
      return;
    }
    for (const msg of r.itemErrors) this.bad(msg, endOffset, true);
    for (const ev of r.events) {
      this.stats.events++;
      try {
        this.onEvent(ev);
      } catch (e) {
        this.stats.handlerErrors++;
        this.warnHandler(ev, e);
      }
    }
  }

  private warnHandler(ev: KubeAuditEvent, e: unknown): void {
    this.warnLimited({ auditID: ev.auditID, err: (e as Error).message, handlerErrors: this.stats.handlerErrors }, 'kube audit event handler failed');
  }

  private bad(error: string, endOffset: number, log: boolean): void {
    this.stats.badLines++;
    this.onBadLine?.({ path: this.filePath, endOffset, error });
    if (log) this.warnLimited({ endOffset, error: error.slice(0, 300), badLines: this.stats.badLines }, 'skipping bad kube audit line');
  }

  /** At most one warning per interval; the next one says how many were held back. */
  private warnLimited(fields: object, msg: string): void {
    if (this.logger === undefined) return;
    const suppressed = this.warnings.take();
    if (suppressed !== null) this.logger.warn({ path: this.filePath, ...fields, suppressed }, msg);
  }
}

export class KubeAuditFollower {
  private readonly opts: Required<Pick<KubeAuditFollowerOptions, 'pollMs' | 'maxLineBytes' | 'persistEveryMs' | 'now'>> &
    KubeAuditFollowerOptions;
  private readonly key: string;
  private readonly counters = emptyStats();
  private readonly decoder: LineDecoder;
  private readonly splitter: LineSplitter;
  private readonly buf = Buffer.allocUnsafe(READ_CHUNK);

  private fh: fsp.FileHandle | null = null;
  private inode: number | null = null;
  /** Offset just after the last complete line: what is persisted. */
  private committed = 0;
  /** Next byte to read (committed + bytes held by the splitter). */
  private readPos = 0;

  private running = false;
  private busy: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private watcher: fs.FSWatcher | null = null;
  private lastPersist = -Infinity;
  private persistedJson: string | null = null;
  private firstOpen = true;

  constructor(opts: KubeAuditFollowerOptions) {
    this.opts = {
      ...opts,
      pollMs: opts.pollMs ?? 1000,
      maxLineBytes: opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      persistEveryMs: opts.persistEveryMs ?? 1000,
      now: opts.now ?? Date.now,
    };
    this.key = kubeAuditStateKey(opts.path);
    this.decoder = new LineDecoder(this.counters, opts.path, opts.onEvent, opts.onBadLine, opts.logger, this.opts.now);
    this.splitter = new LineSplitter(this.opts.maxLineBytes, {
      line: (text, end) => {
        this.committed = end;
        this.decoder.line(text, end);
      },
      oversize: (bytes, end, head, tail) => {
        this.committed = end;
        this.decoder.oversize(bytes, end, head, tail);
      },
    });
  }

  get stats(): KubeAuditFollowerStats {
    return { ...this.counters, inode: this.inode, offset: this.committed };
  }

  /** Opens the file (or waits for it to appear), reads what is there, then follows. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const dir = path.dirname(this.opts.path);
    const base = path.basename(this.opts.path);
    if (this.opts.watch !== false) this.startWatcher(dir, base);
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
    await this.pump();
  }

  private startWatcher(dir: string, base: string): void {
    try {
      // Watch the directory, not the file: a watch on the file follows the renamed inode.
      this.watcher = fs.watch(dir, { persistent: false }, (_evt, name) => {
        if (name === null || String(name).startsWith(base)) this.kick();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null; // polling still runs
      });
    } catch {
      this.watcher = null;
    }
  }

  /** Stops following, finishing the read in progress and persisting the position. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
    if (this.busy) await this.busy;
    this.persist(true);
    await this.fh?.close();
    this.fh = null;
  }

  /** Read now (tests and the webhook-less daemon use the watcher; this is the same entry point). */
  poll(): Promise<void> {
    return this.pump();
  }

  private kick(): void {
    void this.pump().catch((e: unknown) => {
      this.opts.logger?.warn({ path: this.opts.path, err: (e as Error).message }, 'kube audit follower read failed');
    });
  }

  private pump(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    this.busy = (async () => {
      try {
        do {
          this.again = false;
          if (!this.running) break;
          await this.step();
        } while (this.again);
      } finally {
        this.busy = null;
      }
    })();
    return this.busy;
  }

  private async step(): Promise<void> {
    if (this.fh === null) {
      await this.openCurrent();
      if (this.fh === null) return;
    }
    await this.drain();
    let st: fs.Stats | null = null;
    try {
      st = await fsp.stat(this.opts.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st !== null && st.ino !== this.inode) {
      // Renamed away and replaced: the writer may have appended to the old file just before the
      // rename, so finish it before switching.
      await this.drain();
      this.finishFile();
      await this.fh.close();
      this.fh = null;
      this.counters.rotations++;
      this.opts.logger?.info?.({ path: this.opts.path, inode: st.ino }, 'kube audit log rotated');
      await this.openCurrent();
      this.persist(true);
      if (this.fh !== null) await this.drain();
    } else if (st !== null && st.size < this.readPos) {
      this.restartAfterTruncation();
      await this.drain();
    }
    this.persist(false);
  }

  /** Opens `path`; on the first open, resumes from the saved position (see class comment). */
  private async openCurrent(): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.opts.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const st = await fh.stat();
    this.fh = fh;
    this.inode = st.ino;
    this.committed = 0;
    this.readPos = 0;
    this.splitter.reset();
    if (!this.firstOpen) return;
    this.firstOpen = false;
    const saved = loadPosition(this.opts.state, this.key);
    if (saved === null) return;
    if (saved.inode === st.ino) {
      if (saved.offset <= st.size) {
        this.committed = this.readPos = saved.offset;
      } else {
        this.counters.truncations++; // truncated while we were stopped
      }
      return;
    }
    await this.finishRotatedWhileStopped(saved);
  }

  /** The file we were reading was rotated while stopped: finish it if it still sits beside `path`. */
  private async finishRotatedWhileStopped(saved: SavedPosition): Promise<void> {
    const dir = path.dirname(this.opts.path);
    const base = path.basename(this.opts.path);
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name === base || !name.startsWith(base)) continue;
      const full = path.join(dir, name);
      let st: fs.Stats;
      try {
        st = await fsp.stat(full);
      } catch {
        continue;
      }
      if (st.ino !== saved.inode || !st.isFile() || saved.offset > st.size) continue;
      const current = { fh: this.fh, inode: this.inode };
      const old = await fsp.open(full, 'r');
      this.fh = old;
      this.inode = st.ino;
      this.committed = this.readPos = saved.offset;
      try {
        await this.drain();
        this.finishFile();
      } finally {
        await old.close();
      }
      this.counters.rotations++;
      this.fh = current.fh;
      this.inode = current.inode;
      this.committed = this.readPos = 0;
      this.splitter.reset();
      this.persist(true); // the rotated file is done: never re-read it after a crash
      return;
    }
  }

  private restartAfterTruncation(): void {
    this.counters.truncations++;
    this.opts.logger?.info?.({ path: this.opts.path, at: this.readPos }, 'kube audit log truncated; reading from 0');
    this.splitter.reset();
    this.committed = this.readPos = 0;
  }

  /** Reads from readPos to EOF. */
  private async drain(): Promise<void> {
    const fh = this.fh;
    if (fh === null) return;
    if (this.committed > 0) {
      // copytruncate followed by new writes can leave the file longer than our offset again; the
      // byte before a committed offset is always the newline we consumed, so check it.
      const probe = await fh.read(this.buf, 0, 1, this.committed - 1);
      if (probe.bytesRead === 1 && this.buf[0] !== 0x0a) this.restartAfterTruncation();
      else if (probe.bytesRead === 0) return; // shorter than our offset: step() sees the truncation
    }
    for (;;) {
      const { bytesRead } = await fh.read(this.buf, 0, this.buf.length, this.readPos);
      if (bytesRead === 0) return;
      this.counters.bytes += bytesRead;
      const start = this.readPos;
      this.readPos += bytesRead;
      this.splitter.push(this.buf.subarray(0, bytesRead), start);
      this.persist(false);
    }
  }

  /** A rotated file will not grow again: its unterminated tail is the writer's last line. */
  private finishFile(): void {
    this.splitter.flushRemainder(this.readPos);
  }

  private persist(force: boolean): void {
    const state = this.opts.state;
    if (state === undefined || this.inode === null) return;
    const t = this.opts.now();
    if (!force && t - this.lastPersist < this.opts.persistEveryMs) return;
    const json = JSON.stringify({ inode: this.inode, offset: this.committed });
    this.lastPersist = t;
    if (json === this.persistedJson) return;
    state.set(this.key, json);
    this.persistedJson = json;
  }
}

export interface KubeAuditReadResult {
  events: KubeAuditEvent[];
  stats: KubeAuditSourceStats;
  badLines: KubeBadLine[];
}

export interface KubeAuditReadOptions {
  maxLineBytes?: number;
  logger?: KubeSourceLogger;
  /** Streaming consumers: called per event instead of collecting into `events`. */
  onEvent?: (ev: KubeAuditEvent) => void;
}

/** Reads a stream of audit JSON lines to its end (replay of a file or stdin). */
export function readKubeAuditStream(stream: Readable, name: string, opts: KubeAuditReadOptions = {}): Promise<KubeAuditReadResult> {
  const events: KubeAuditEvent[] = [];
  const badLines: KubeBadLine[] = [];
  const stats = emptyStats();
  const onEvent = opts.onEvent ?? ((ev: KubeAuditEvent) => void events.push(ev));
  const decoder = new LineDecoder(stats, name, onEvent, (b) => badLines.length < 1000 && badLines.push(b), opts.logger, Date.now);
  const splitter = new LineSplitter(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, decoder);
  let offset = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      stats.bytes += b.length;
      splitter.push(b, offset);
      offset += b.length;
    });
    stream.on('error', reject);
    stream.on('end', () => {
      splitter.flushRemainder(offset);
      resolve({ events, stats, badLines });
    });
  });
}

/** Reads a whole audit log file (replay). */
export function readKubeAuditFile(filePath: string, opts: KubeAuditReadOptions = {}): Promise<KubeAuditReadResult> {
  return readKubeAuditStream(fs.createReadStream(filePath), filePath, opts);
}
