/**
 * The agent's audit reader and its read mode: one NetlinkSource at a time, reopened in the other
 * mode when the lifecycle says so (auditd starting beside us, or gone). It owns the current source,
 * the loop that drains it, and the mode string `credwatch status` shows; the kernel side of a switch
 * (yield grace, releasing the pid) stays with AuditLifecycle.
 */
import type { RawRecord } from '../audit/event';
import type { NativeTriageSpec } from '../native/types';
import { NetlinkSource, type NetlinkCounters } from '../sources/netlink';
import type { AuditLifecycle, ReadMode } from './audit-lifecycle';
import type { Logger } from './logger';

export interface AuditReaderDeps {
  lifecycle: AuditLifecycle;
  logger: Logger;
  /** Every batch, in order, from whichever source is current. */
  onBatch: (batch: RawRecord[]) => void;
  /** The triage spec for the rules in force now (null: off). */
  triage: () => NativeTriageSpec | null;
  /** True once the agent is shutting down: no switch starts, a reader error is expected. */
  stopping: () => boolean;
  /** After a successful switch (the agent refreshes its info metric). */
  onSwitched?: (mode: ReadMode) => void;
}

export class AuditReader {
  private source: NetlinkSource | null = null;
  private readLoop: Promise<void> | null = null;
  private current = 'starting';

  constructor(private readonly deps: AuditReaderDeps) {}

  /** "unicast", "multicast", "starting" or "switching-to-<mode>". */
  get mode(): string {
    return this.current;
  }

  /** A source has been opened (and not lost in a failed switch). */
  get reading(): boolean {
    return this.source !== null;
  }

  async open(mode: ReadMode): Promise<void> {
    const source = new NetlinkSource();
    // The lifecycle owns rules and status fields; the source only reads (and, in unicast, registers
    // the reading socket as the audit pid, which must come from that socket: src/sources/netlink.ts).
    // Under load each read returns a full batch (256 records), idle it returns one: a queue of 1024
    // batches rides out event-loop pauses (GC, a slow disk) of well over a second at 20k records/s,
    // and bounds the worst case to ~260k records in memory.
    await source.open({
      mode,
      queueLimit: 1024,
      pendingLimit: 1024,
      overflow: mode === 'unicast' ? 'block' : 'drop',
      procSnapshots: true,
      triage: this.deps.triage(),
    });
    this.source = source;
    this.current = mode;
    this.readLoop = this.consume(source);
  }

  /** Closes the current source and reopens in `mode`; on failure falls back to multicast. */
  async switchTo(mode: ReadMode, reason: string): Promise<void> {
    if (this.current === mode || this.deps.stopping()) return;
    const old = this.source;
    this.current = `switching-to-${mode}`;
    try {
      if (old) await old.close();
      await this.readLoop;
      await this.open(mode);
      this.deps.lifecycle.switchedMode(mode, reason);
      this.deps.onSwitched?.(mode);
    } catch (err) {
      this.deps.logger.error({ error: err instanceof Error ? err.message : String(err), mode }, 'could not switch audit read mode');
      if (mode === 'unicast') await this.open('multicast').catch(() => undefined);
    }
  }

  /** New rules may care about events the old triage let go: the reader gets the new spec at once. */
  setTriage(spec: NativeTriageSpec | null): void {
    this.source?.setTriage(spec);
  }

  counters(): NetlinkCounters | null {
    return this.source?.counters() ?? null;
  }

  /** Closes the source and waits until its last batch went through onBatch. */
  async close(): Promise<void> {
    await this.source?.close();
    await this.readLoop;
  }

  private async consume(source: NetlinkSource): Promise<void> {
    try {
      for await (const batch of source) this.deps.onBatch(batch);
    } catch (err) {
      if (!this.deps.stopping()) this.deps.logger.error({ error: err instanceof Error ? err.message : String(err) }, 'audit reader failed');
    }
  }
}
