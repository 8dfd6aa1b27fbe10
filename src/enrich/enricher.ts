/**
 * The enrich stage: what the host knows about an event beyond its records. It owns the state that
 * grows from the event stream (the process table, the container each runtime shim last worked on,
 * the credential readers per container; the first two per node, see NodeState) and the lookups (users, pod of a container, watched objects,
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

/**
 * Nodes with a state of their own at once (a central log of many nodes, replayed as one stream). The
 * least recently seen node's state is forgotten past this, and counted (`nodeStatesForgotten`): its
 * next event starts from an empty table, as after a restart.
 */
export const NODE_STATES_MAX = 64;

/**
 * What the event stream of one node builds up: pids and shim pids are only unique within a node, so in
 * a replay of several nodes' records interleaved (auditd's `node=` prefix) each node has its own, and a
 * pid of node A is never taken for the same pid of node B. The live agent sees one node (no prefix):
 * the default state.
 */
class NodeState {
  /** shim pid -> container its last `runc exec` child worked on (replay has no cgroups). */
  readonly shimIndex = new Map<number, CgroupIdentity>();
  readonly ctx: ViewContext;

  constructor(
    readonly table: ProcessTable,
    shared: Omit<ViewContext, 'table' | 'shimContainer'>,
  ) {
    this.ctx = { ...shared, table, shimContainer: (pid: number) => this.shimIndex.get(pid) ?? null };
  }
}

export class Enricher {
  /** The default node's process table (events without a node: the live agent's only one). */
  readonly processTable: ProcessTable;
  /** Which object a watch hit touched; register installed `-w` rules here (applyRules). */
  readonly objects: WatchedObjects;
  /** Node states forgotten to stay within NODE_STATES_MAX (each one's table started again empty). */
  nodeStatesForgotten = 0;
  private readonly shared: Omit<ViewContext, 'table' | 'shimContainer'>;
  private readonly defaultState: NodeState;
  /** Named nodes' states, least recently seen first. */
  private readonly byNode = new Map<string, NodeState>();
  /** The last state looked up and its node: a log is one node's, or a few nodes' in runs. */
  private lastNode: string | null = null;
  private last: NodeState;

  constructor(opts: EnricherOptions = {}) {
    this.processTable = opts.processTable ?? new ProcessTable();
    this.objects = opts.objects ?? new WatchedObjects();
    const users = opts.users === undefined ? new UserDb() : opts.users;
    this.shared = {
      podUidOf: opts.podUidOf,
      containerMeta: opts.containerMeta,
      readers: new ReaderBaseline(),
      objects: this.objects,
      tokenClaims: opts.tokenClaims,
      userName: users ? (uid) => users.userName(uid) : undefined,
    };
    this.defaultState = new NodeState(this.processTable, this.shared);
    this.last = this.defaultState;
  }

  /** The process table of `node` (null: the default node's), created on first sight. */
  tableOf(node: string | null): ProcessTable {
    return this.state(node).table;
  }

  /** Named nodes holding a state now. */
  get nodeStates(): number {
    return this.byNode.size;
  }

  /** Folds the event into its node's process table and returns the detector's view of it. */
  enrich(ev: AuditEvent): EventView {
    const s = this.state(ev.node);
    s.table.observe(ev);
    const v = new EventView(ev, s.ctx);
    if (ev.syscall && v.kind === 'exec') this.noteRuntimeExec(v, s.shimIndex);
    return v;
  }

  /** An event the native triage summarized: only its process facts are kept (parent chains, joins). */
  noteProcess(note: ProcessNote, node: string | null = null): void {
    this.state(node).table.observeProcess(note);
  }

  /** A process note equal to the last one but for its stamp (see ProcessTable.observedAgain). */
  noteProcessAgain(pid: number, node: string | null = null): boolean {
    return this.state(node).table.observedAgain(pid);
  }

  private state(node: string | null): NodeState {
    if (node === this.lastNode) return this.last;
    let s: NodeState;
    if (node === null) s = this.defaultState;
    else {
      const known = this.byNode.get(node);
      if (known !== undefined) {
        // Seen again: to the end of the map, so the first entry is the least recently seen node.
        this.byNode.delete(node);
        s = known;
      } else {
        s = new NodeState(new ProcessTable(), this.shared);
        if (this.byNode.size >= NODE_STATES_MAX) {
          this.byNode.delete(this.byNode.keys().next().value as string);
          this.nodeStatesForgotten++;
        }
      }
      this.byNode.set(node, s);
    }
    this.lastNode = node;
    this.last = s;
    return s;
  }

  private noteRuntimeExec(v: EventView, shimIndex: Map<number, CgroupIdentity>): void {
    const ppid = v.ev.process?.ppid;
    const prog = v.exeBase;
    const argv = v.argv;
    if (!ppid || !argv || (prog !== 'runc' && prog !== 'crun')) return;
    const target = runtimeTarget(prog, argv, v.cwd);
    if (!target) return;
    shimIndex.delete(ppid);
    shimIndex.set(ppid, target);
    if (shimIndex.size > SHIM_MAX) {
      const oldest = shimIndex.keys().next();
      if (!oldest.done) shimIndex.delete(oldest.value);
    }
  }
}
