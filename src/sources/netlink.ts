/**
 * The live record source: audit records from the kernel over NETLINK_AUDIT, as an async iterable of
 * batches (`for await (const batch of source)`), so a busy stream costs one promise per batch, not
 * per record.
 *
 * A pure reader: open() opens the socket in a mode, batches arrive, counters() counts them, close()
 * closes it. It installs no rule and sets no status field; which rules, enabled and backlog settings,
 * and their restore, belong to AuditLifecycle (src/daemon/audit-lifecycle.ts).
 *
 * The one kernel change made here is the unicast registration (AUDIT_SET pid), because it is part of
 * reading in unicast: the kernel sends unicast records to the netlink port that registered, so only
 * the reading socket can claim it (native socket.start() does). Releasing it is not the reader's: the
 * lifecycle lets the pid go when the agent switches to multicast or shuts down, and a closed port left
 * registered is reset by the kernel on its next send (see takeOverIfDead). A caller reading in unicast
 * without a lifecycle (tests) clears the pid itself with the native control.
 */
import type { RawRecord } from '../audit/event';
import { createAuditControl, createAuditSocket } from '../native/binding';
import type { AuditControl, AuditSocketFactory } from '../native/binding';
import { AuditError, isAuditError } from '../native/errors';
import { isProcessAlive, processName } from '../native/process-alive';
import type { AuditSocketCounters, AuditSocketMode, NativeAuditSocket, NativeTriageSpec } from '../native/types';
import { recordsRepresented } from '../native/process-note';

export interface NetlinkOpenOptions {
  mode: AuditSocketMode;
  /** Batches the native queue holds for the JavaScript thread (default 64). */
  queueLimit?: number;
  /** Full native queue: 'drop' and count (default) or 'block' reading (backpressure to the kernel). */
  overflow?: 'drop' | 'block';
  /** Records per batch at most (default 256). */
  batchMaxRecords?: number;
  /** SO_RCVBUF of the reading socket in bytes (default 4 MiB). */
  receiveBuffer?: number;
  /** /proc snapshots from the reader thread (see AuditSocketOptions.procSnapshots). */
  procSnapshots?: boolean;
  /** Native triage spec to start with (see setTriage()). */
  triage?: NativeTriageSpec | null;
  /** Batches held for a consumer that has not called next() yet (default 64); beyond, dropped and counted. */
  pendingLimit?: number;
}

export interface NetlinkOpenReport {
  mode: AuditSocketMode;
  /** Unicast only: the pid of a dead audit daemon whose registration the kernel dropped for us. */
  tookOverFrom: number | null;
}

export interface NetlinkCounters extends AuditSocketCounters {
  /** Records dropped because the consumer of this iterable did not pull (pendingLimit reached). */
  sourceDrops: number;
  /** Batches waiting for the consumer right now. */
  pending: number;
}

export interface NetlinkSourceDeps {
  /** Read-only here: the status, to see who holds the audit pid. */
  control?: Pick<AuditControl, 'getStatus'>;
  openSocket?: AuditSocketFactory;
  isProcessAlive?: (pid: number) => boolean;
  ownPid?: number;
}

const ZERO_COUNTERS: AuditSocketCounters = {
  received: 0,
  bytes: 0,
  batches: 0,
  delivered: 0,
  queueDrops: 0,
  enobufs: 0,
  truncated: 0,
  badSender: 0,
  ignored: 0,
  queued: 0,
  queueWaits: 0,
  summarized: 0,
  summarizedRecords: 0,
  triagePassed: 0,
  triageUnsure: 0,
  triageExpired: 0,
  procSnapshots: 0,
  repeatNotes: 0,
  repeatTemplates: 0,
  repeatEvictions: 0,
  repeatSkipped: 0,
};

/**
 * Starts a unicast reader, taking over from a dead audit daemon if needed.
 *
 * The kernel refuses AUDIT_SET pid with EEXIST while a daemon is registered. But before that check it
 * probes the registered netlink port with an AUDIT_REPLACE message, and when the port is gone (the
 * daemon died and its socket closed) the send fails with ECONNREFUSED and the kernel drops the
 * registration itself (audit_replace -> auditd_send_unicast_skb -> auditd_reset). Verified on this
 * kernel (6.18): a process that registered and exited leaves its pid in the status, and our first
 * AUDIT_SET succeeds. So a dead holder never blocks us; on EEXIST we still look at the holder and
 * retry once if it is dead (it may have died between the two calls). A live holder (auditd) is
 * reported by pid and name; the caller can read in multicast mode beside it.
 */
export function takeOverIfDead(
  start: () => void,
  control: Pick<AuditControl, 'getStatus'>,
  alive: (pid: number) => boolean = isProcessAlive,
  ownPid: number = process.pid,
): { tookOverFrom: number | null } {
  const before = control.getStatus().pid;
  const previous = (pid: number): number | null => (pid === 0 || pid === ownPid ? null : pid);
  try {
    start();
    return { tookOverFrom: previous(before) };
  } catch (err) {
    if (!isAuditError(err, 'EEXIST')) throw err;
    const holder = control.getStatus().pid;
    if (holder !== 0 && alive(holder)) {
      throw new AuditError(
        `audit pid is held by live process ${holder} (${processName(holder)}); read in multicast mode beside it`,
        err.syscall,
        err.errno,
      );
    }
    start();
    return { tookOverFrom: previous(holder) };
  }
}

interface Waiter {
  resolve: (r: IteratorResult<RawRecord[]>) => void;
  reject: (err: unknown) => void;
}

export class NetlinkSource implements AsyncIterable<RawRecord[]> {
  private readonly control: Pick<AuditControl, 'getStatus'>;
  private readonly openSocket: AuditSocketFactory;
  private readonly alive: (pid: number) => boolean;
  private readonly ownPid: number;

  private socket: NativeAuditSocket | null = null;
  private state: 'idle' | 'open' | 'closed' = 'idle';

  private pending: RawRecord[][] = [];
  private pendingLimit = 64;
  private sourceDrops = 0;
  private waiter: Waiter | null = null;
  private failure: Error | null = null;
  private ended = false;
  private closedWaiters: (() => void)[] = [];

  constructor(deps: NetlinkSourceDeps = {}) {
    this.control = deps.control ?? createAuditControl();
    this.openSocket = deps.openSocket ?? createAuditSocket;
    this.alive = deps.isProcessAlive ?? isProcessAlive;
    this.ownPid = deps.ownPid ?? process.pid;
  }

  /** Opens the reader (in unicast, registering it as the audit pid); on failure closes it and throws. */
  async open(options: NetlinkOpenOptions): Promise<NetlinkOpenReport> {
    if (this.state !== 'idle') throw new Error('NetlinkSource: open() may be called once');
    this.state = 'open';
    this.pendingLimit = options.pendingLimit ?? 64;
    const report: NetlinkOpenReport = { mode: options.mode, tookOverFrom: null };
    try {
      const socket = this.openSocket({
        mode: options.mode,
        queueLimit: options.queueLimit,
        batchMaxRecords: options.batchMaxRecords,
        overflow: options.overflow,
        receiveBuffer: options.receiveBuffer,
        procSnapshots: options.procSnapshots,
        onBatch: (batch) => this.onBatch(batch),
        onError: (err) => this.onError(err),
        onClosed: () => this.onClosed(),
      });
      if (options.triage) socket.setTriage(options.triage);
      if (options.mode === 'unicast') {
        report.tookOverFrom = takeOverIfDead(() => socket.start(), this.control, this.alive, this.ownPid).tookOverFrom;
      } else {
        socket.start();
      }
      // Only a started socket is waited on in close(): one that never started reports no close.
      this.socket = socket;
      return report;
    } catch (err) {
      await this.close().catch(() => undefined);
      throw err;
    }
  }

  /** Closes the reader. Resolves when the last batch is delivered; the iteration then ends. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    if (this.socket !== null && wasOpen) {
      const closed = new Promise<void>((resolve) => this.closedWaiters.push(resolve));
      this.socket.close();
      await closed;
    } else {
      this.onClosed();
    }
  }

  /** Native counters plus this source's own (records dropped for a consumer that does not pull). */
  counters(): NetlinkCounters {
    const native = this.socket?.getCounters() ?? ZERO_COUNTERS;
    return { ...native, sourceDrops: this.sourceDrops, pending: this.pending.length };
  }

  /** Changes the reader's triage (rule reload); null turns it off. */
  setTriage(spec: NativeTriageSpec | null): void {
    this.socket?.setTriage(spec);
  }

  /** Let the process exit while reading (the reader keeps the event loop alive by default). */
  unref(): void {
    this.socket?.unref();
  }

  ref(): void {
    this.socket?.ref();
  }

  private onBatch(batch: RawRecord[]): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: batch, done: false });
      return;
    }
    if (this.pending.length >= this.pendingLimit) {
      for (const rec of batch) this.sourceDrops += recordsRepresented(rec);
      return;
    }
    this.pending.push(batch);
  }

  private onError(err: Error): void {
    if (this.failure === null) this.failure = err;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      this.failure = null;
      w.reject(err);
    }
  }

  private onClosed(): void {
    this.ended = true;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
    for (const resolve of this.closedWaiters.splice(0)) resolve();
  }

  /** Batches in arrival order; ends after close() once the last batch is delivered; rejects on a reader failure. */
  [Symbol.asyncIterator](): AsyncIterator<RawRecord[]> {
    return {
      next: (): Promise<IteratorResult<RawRecord[]>> => {
        const batch = this.pending.shift();
        if (batch !== undefined) return Promise.resolve({ value: batch, done: false });
        if (this.failure !== null) {
          const err = this.failure;
          this.failure = null;
          return Promise.reject(err);
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        if (this.waiter !== null) return Promise.reject(new Error('NetlinkSource: one consumer at a time'));
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      // Leaving a for-await loop does not close the source: close() must be awaited (it drains the last batch).
      return: (): Promise<IteratorResult<RawRecord[]>> => Promise.resolve({ value: undefined, done: true }),
    };
  }
}
