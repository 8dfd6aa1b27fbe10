/**
 * The enrich stage: what the host knows about an event beyond its records. It owns the state that
 * grows from the event stream (the process table, the container each runtime shim last worked on,
 * the credential readers per container) and the lookups (users, pod of a container, watched objects,
 * token claims), and hands the detector an EventView over them. The detector only scores that view.
 *
 * Per event the work here is the process table's fold and, for a runtime's exec, one argv match;
 * everything else on the view is computed only when a rule asks (src/enrich/event-view.ts).
 */
import type { AuditEvent } from '../audit/event';
import type { FindingToken } from '../model/finding';
import type { ProcessNote } from '../native/process-note';
import type { CgroupIdentity } from './cgroup';
import { EventView, runtimeTarget, type ContainerMeta, type ViewContext } from './event-view';
import { ProcessTable } from './process-table';
import { ReaderBaseline } from './reader-baseline';
import { UserDb } from './users';
import { WatchedObjects, type ObjectHit } from './watched-objects';

export interface EnricherOptions {
  processTable?: ProcessTable;
  /** uid -> user name; null disables lookups (replay of another host's log). Default: this host's. */
  users?: UserDb | null;
  /** Container id -> pod uid when the cgroup did not say. */
  podUidOf?: (containerId: string) => string | null;
  containerMeta?: (containerId: string) => ContainerMeta | null;
  /** The watched objects (by inode); the agent registers each watch it installs. Default: empty. */
  objects?: WatchedObjects;
  /** Claims of a pod token a finding's event read (src/enrich/token-claims.ts); absent in replay. */
  tokenClaims?: { claimsFor(hit: ObjectHit): FindingToken | null };
}

/** Shim pids remembered with the container their last `runc exec` child worked on. */
const SHIM_MAX = 4096;

export class Enricher {
  readonly processTable: ProcessTable;
  /** Which object a watch hit touched; register installed `-w` rules here (applyRules). */
  readonly objects: WatchedObjects;
  /** shim pid -> container its last `runc exec` child worked on (replay has no cgroups). */
  private readonly shimIndex = new Map<number, CgroupIdentity>();
  private readonly ctx: ViewContext;

  constructor(opts: EnricherOptions = {}) {
    this.processTable = opts.processTable ?? new ProcessTable();
    this.objects = opts.objects ?? new WatchedObjects();
    const users = opts.users === undefined ? new UserDb() : opts.users;
    this.ctx = {
      table: this.processTable,
      podUidOf: opts.podUidOf,
      containerMeta: opts.containerMeta,
      shimContainer: (pid: number) => this.shimIndex.get(pid) ?? null,
      readers: new ReaderBaseline(),
      objects: this.objects,
      tokenClaims: opts.tokenClaims,
      userName: users ? (uid) => users.userName(uid) : undefined,
    };
  }

  /** Folds the event into the process table and returns the detector's view of it. */
  enrich(ev: AuditEvent): EventView {
    this.processTable.observe(ev);
    const v = new EventView(ev, this.ctx);
    if (ev.syscall && v.kind === 'exec') this.noteRuntimeExec(v);
    return v;
  }

  /** An event the native triage summarized: only its process facts are kept (parent chains, joins). */
  noteProcess(note: ProcessNote): void {
    this.processTable.observeProcess(note, note.timeMs);
  }

  /** A process note equal to the last one but for its stamp (see ProcessTable.observedAgain). */
  noteProcessAgain(pid: number, timeMs: number): boolean {
    return this.processTable.observedAgain(pid, timeMs);
  }

  private noteRuntimeExec(v: EventView): void {
    const ppid = v.ev.process?.ppid;
    const prog = v.exeBase;
    const argv = v.argv;
    if (!ppid || !argv || (prog !== 'runc' && prog !== 'crun')) return;
    const target = runtimeTarget(prog, argv, v.cwd);
    if (!target) return;
    this.shimIndex.delete(ppid);
    this.shimIndex.set(ppid, target);
    if (this.shimIndex.size > SHIM_MAX) {
      const oldest = this.shimIndex.keys().next();
      if (!oldest.done) this.shimIndex.delete(oldest.value);
    }
  }
}
