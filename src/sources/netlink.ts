/**
 * The live record source: audit records from the kernel over NETLINK_AUDIT, as an async iterable of
 * batches (`for await (const batch of source)`), so a busy stream costs one promise per batch, not
 * per record.
 *
 * start() makes the kernel changes asked for and remembers each one; stop() undoes exactly those:
 * it deletes the rules this source added (by payload, in reverse order), puts back the status fields
 * it changed unless someone else changed them since, releases the audit pid only if it is still ours,
 * and closes the socket. Rules that were already present are not ours to remove and are left alone.
 *
 * Which rules to install and whether to read as the audit daemon is the caller's policy (see
 * src/daemon/); with `rules: []` and `enable: false` this is a pure reader.
 */
import { readFileSync } from 'node:fs';

import type { RawRecord } from '../audit/event';
import { createAuditControl, createAuditSocket } from '../native/binding';
import type { AuditControl, AuditSocketFactory } from '../native/binding';
import { AuditError, isAuditError } from '../native/errors';
import type { AuditSocketCounters, AuditSocketMode, AuditStatus, NativeAuditSocket, NativeTriageSpec } from '../native/types';
import { recordsRepresented } from '../native/process-note';

export interface NetlinkStartOptions {
  mode: AuditSocketMode;
  /** Set enabled=1 when audit is off (0). Never touches enabled=2 (immutable). */
  enable: boolean;
  /** Kernel backlog_limit (records queued in the kernel before loss); unchanged when absent. */
  backlogLimit?: number;
  /** Kernel backlog_wait_time (jiffies a process waits when the backlog is full); unchanged when absent. */
  backlogWaitTime?: number;
  /** Encoded audit_rule_data payloads (src/audit/rules/wire.ts), added in order. */
  rules: Buffer[];
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
  /** Leave audit enabled on stop even if this source enabled it (DESIGN: "never disable audit on exit"). */
  keepEnabled?: boolean;
}

export type ChangedField = 'enabled' | 'pid' | 'backlogLimit' | 'backlogWaitTime';

export interface FieldChange {
  field: ChangedField;
  before: number;
  after: number;
}

export interface NetlinkStartReport {
  mode: AuditSocketMode;
  /** enabled=2: the configuration is locked until reboot; nothing was changed, the reader runs. */
  immutable: boolean;
  before: AuditStatus;
  changes: FieldChange[];
  added: number;
  /** Rules that were already in the kernel (EEXIST): not added by us, so not removed by stop(). */
  alreadyPresent: Buffer[];
  /** Unicast only: the pid of a dead audit daemon whose registration the kernel dropped for us. */
  tookOverFrom: number | null;
}

export interface NetlinkStopReport {
  removed: number;
  /** Rules we added that were gone already (someone deleted them). */
  missing: number;
  restored: FieldChange[];
  /** Fields someone else changed after us: left as they are. */
  leftAlone: FieldChange[];
  releasedPid: boolean;
  /** Failures on the way out; every step is still attempted. */
  errors: Error[];
}

export interface NetlinkCounters extends AuditSocketCounters {
  /** Records dropped because the consumer of this iterable did not pull (pendingLimit reached). */
  sourceDrops: number;
  /** Batches waiting for the consumer right now. */
  pending: number;
}

export interface NetlinkSourceDeps {
  control?: AuditControl;
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
};

/** True when `pid` names a live (not zombie) process. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

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
  private readonly control: AuditControl;
  private readonly openSocket: AuditSocketFactory;
  private readonly alive: (pid: number) => boolean;
  private readonly ownPid: number;

  private socket: NativeAuditSocket | null = null;
  private mode: AuditSocketMode = 'unicast';
  private changes: FieldChange[] = [];
  private added: Buffer[] = [];
  private keepEnabled = false;
  private state: 'idle' | 'running' | 'stopped' = 'idle';

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

  /** Opens the reader and applies the requested kernel changes; on failure undoes what it did and throws. */
  async start(options: NetlinkStartOptions): Promise<NetlinkStartReport> {
    if (this.state !== 'idle') throw new Error('NetlinkSource: start() may be called once');
    this.state = 'running';
    this.mode = options.mode;
    this.keepEnabled = options.keepEnabled ?? false;
    this.pendingLimit = options.pendingLimit ?? 64;
    const before = this.control.getStatus();
    const immutable = before.enabled === 2;
    const report: NetlinkStartReport = {
      mode: options.mode,
      immutable,
      before,
      changes: this.changes,
      added: 0,
      alreadyPresent: [],
      tookOverFrom: null,
    };
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
        this.socket = socket;
        this.changes.push({ field: 'pid', before: before.pid, after: this.ownPid });
      } else {
        socket.start();
        this.socket = socket;
      }
      if (!immutable) {
        this.changeField('backlogLimit', before.backlogLimit, options.backlogLimit);
        this.changeField('backlogWaitTime', before.backlogWaitTime, options.backlogWaitTime);
        for (const rule of options.rules) {
          try {
            this.control.addRule(rule);
            this.added.push(rule);
          } catch (err) {
            if (!isAuditError(err, 'EEXIST')) throw err;
            report.alreadyPresent.push(rule);
          }
        }
        if (options.enable && before.enabled === 0) this.changeField('enabled', 0, 1);
      }
      report.added = this.added.length;
      return report;
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private changeField(field: 'enabled' | 'backlogLimit' | 'backlogWaitTime', before: number, after: number | undefined): void {
    if (after === undefined || after === before) return;
    this.control.setStatus({ [field]: after });
    this.changes.push({ field, before, after });
  }

  /** Undoes exactly what start() did, then closes the reader. Resolves when the last batch is delivered. */
  async stop(): Promise<NetlinkStopReport> {
    const report: NetlinkStopReport = {
      removed: 0,
      missing: 0,
      restored: [],
      leftAlone: [],
      releasedPid: false,
      errors: [],
    };
    if (this.state === 'stopped') return report;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    const attempt = (step: () => void): void => {
      try {
        step();
      } catch (err) {
        report.errors.push(err as Error);
      }
    };
    for (const rule of [...this.added].reverse()) {
      attempt(() => {
        try {
          this.control.deleteRule(rule);
          report.removed++;
        } catch (err) {
          if (!isAuditError(err, 'ENOENT')) throw err;
          report.missing++;
        }
      });
    }
    this.added = [];
    let now: AuditStatus | null = null;
    attempt(() => {
      now = this.control.getStatus();
    });
    for (const change of [...this.changes].reverse()) {
      if (now === null) break;
      const current: AuditStatus = now;
      if (change.field === 'pid') {
        // Only the registered daemon's process may clear the pid, and only ours is ours to clear.
        if (current.pid === this.ownPid) {
          attempt(() => {
            this.control.setStatus({ pid: 0 });
            report.releasedPid = true;
          });
        }
        continue;
      }
      if (change.field === 'enabled' && this.keepEnabled) {
        report.leftAlone.push(change);
        continue;
      }
      if (current[change.field] !== change.after) {
        report.leftAlone.push(change);
        continue;
      }
      attempt(() => {
        this.control.setStatus({ [change.field]: change.before });
        report.restored.push(change);
      });
    }
    this.changes = [];
    if (this.socket !== null && wasRunning) {
      const closed = new Promise<void>((resolve) => this.closedWaiters.push(resolve));
      this.socket.close();
      await closed;
    } else {
      this.onClosed();
    }
    if (report.errors.length > 0) {
      throw new AggregateError(report.errors, `NetlinkSource.stop: ${report.errors.length} step(s) failed`);
    }
    return report;
  }

  /** Native counters plus this source's own (records dropped for a consumer that does not pull). */
  counters(): NetlinkCounters {
    const native = this.socket?.getCounters() ?? ZERO_COUNTERS;
    return { ...native, sourceDrops: this.sourceDrops, pending: this.pending.length };
  }

  kernelStatus(): AuditStatus {
    return this.control.getStatus();
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

  /** Batches in arrival order; ends after stop() once the last batch is delivered; rejects on a reader failure. */
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
      // Leaving a for-await loop does not stop the source: stop() undoes kernel changes and must be awaited.
      return: (): Promise<IteratorResult<RawRecord[]>> => Promise.resolve({ value: undefined, done: true }),
    };
  }
}
