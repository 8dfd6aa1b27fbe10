/**
 * What the matchers look at for one event: the AuditEvent plus what enrichment knows (container,
 * ancestors, interactive). Derived fields are computed once per event and only when a rule asks.
 */
import * as path from 'node:path';
import type { AuditEvent, Sockaddr } from '../audit/event';
import type { FindingToken } from '../model/finding';
import type { CgroupIdentity } from './cgroup';
import type { ProcessEntry, ProcessTable } from './process-table';
import { isInteractive, normaliseAuid } from './users';
import { stripProcRoot, stripProcRootsInText, type ObjectHit } from './watched-objects';

export type EventKind = 'exec' | 'open' | 'connect' | 'other';

const EXEC = new Set(['execve', 'execveat']);
export const OPEN_SYSCALLS: ReadonlySet<string> = new Set(['open', 'openat', 'openat2', 'creat', 'open_by_handle_at']);
// x86_64 numbers as a fallback when the parser could not name the syscall.
const NR_KIND = new Map<number, EventKind>([
  [59, 'exec'],
  [322, 'exec'],
  [2, 'open'],
  [257, 'open'],
  [437, 'open'],
  [85, 'open'],
  [42, 'connect'],
]);

/** io_uring ops that the open/connect rules must see as opens and connects. */
const URING_KIND = new Map<string, EventKind>([
  ['openat', 'open'],
  ['openat2', 'open'],
  ['connect', 'connect'],
]);

export function eventKind(ev: AuditEvent): EventKind {
  // An io_uring op is what happened, whatever syscall (io_uring_enter, or none) carried it.
  if (ev.uring) return (ev.uring.name !== null ? URING_KIND.get(ev.uring.name) : undefined) ?? 'other';
  const name = ev.syscall?.name ?? null;
  if (name !== null) {
    if (EXEC.has(name)) return 'exec';
    if (OPEN_SYSCALLS.has(name)) return 'open';
    if (name === 'connect') return 'connect';
    return 'other';
  }
  const nr = ev.syscall?.nr;
  if (nr !== null && nr !== undefined && (ev.syscall?.arch ?? 'x86_64') === 'x86_64') return NR_KIND.get(nr) ?? 'other';
  return 'other';
}

export function baseName(p: string | null): string | null {
  if (p === null) return null;
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/** Command line as the rules see it: argv joined by spaces, argv[0] reduced to its basename. */
export function commandLine(argv: readonly string[] | null): string | null {
  if (!argv || argv.length === 0) return null;
  const first = baseName(argv[0] ?? '') ?? '';
  return argv.length === 1 ? first : first + ' ' + argv.slice(1).join(' ');
}

/**
 * The command line the argv indicators match: as commandLine(), with `/proc/<pid>/root` and
 * `/proc/self/root` prefixes removed (`cat /proc/4242/root/run/secrets/...` names the token as
 * surely as `cat /run/secrets/...`).
 */
export function ruleCommandLine(argv: readonly string[] | null): string | null {
  const c = commandLine(argv);
  return c === null ? null : stripProcRootsInText(c);
}

export interface ContainerMeta {
  image?: string | null;
  namespace?: string | null;
}

export interface ViewContext {
  table: ProcessTable;
  /** Container last started by `runc exec`/`runc create` under this shim pid (see ShimIndex). */
  shimContainer?: (shimPid: number) => CgroupIdentity | null;
  /** Credential readers per container (see ReaderBaseline). */
  readers?: { observe(containerId: string, program: string): boolean };
  /** Container id -> pod uid when the cgroup did not say (e.g. runtime ancestry in replay). */
  podUidOf?: (containerId: string) => string | null;
  containerMeta?: (containerId: string) => ContainerMeta | null;
  /** Which watched object a watch hit touched (src/enrich/watched-objects.ts). */
  objects?: { objectOf(ev: AuditEvent): ObjectHit | null };
  /** Claims of the pod token a watch hit read (src/enrich/token-claims.ts); absent in replay. */
  tokenClaims?: { claimsFor(hit: ObjectHit): FindingToken | null };
  /** uid -> user name; absent when names are not looked up (replay of another host's log). */
  userName?: (uid: number | null) => string | null;
}

// runc/crun are started with the task directory (docker: .../moby/<id>, CRI: .../k8s.io/<id>).
const TASK_DIR = /io\.containerd\.runtime\.v[12]\.task\/([^/\s]+)\/([0-9a-f]{64})/;
const CONMON_ID = /(?:^|\s)-c\s+([0-9a-f]{64})(?:\s|$)/;
const SHIM_ID = /(?:^|\s)-id\s+([0-9a-f]{64})(?:\s|$)/;
const SHIM_NS = /(?:^|\s)-namespace\s+(\S+)/;

/** The container a runtime process (runc/crun/conmon/containerd-shim) works on, from its argv. */
export function runtimeTarget(program: string, argv: readonly string[], cwd: string | null): CgroupIdentity | null {
  if (program === 'runc' || program === 'crun' || program === 'runsc') {
    const m = TASK_DIR.exec(argv.join(' ')) ?? (cwd ? TASK_DIR.exec(cwd) : null);
    if (m?.[2]) return { containerId: m[2], runtime: m[1] === 'moby' ? 'docker' : 'containerd', podUid: null };
  } else if (program === 'conmon') {
    const m = CONMON_ID.exec(argv.join(' '));
    if (m?.[1]) return { containerId: m[1], runtime: 'cri-o', podUid: null };
  } else if (program.startsWith('containerd-shim')) {
    const line = argv.join(' ');
    const m = SHIM_ID.exec(line);
    // Under Kubernetes a shim serves a whole pod and its -id is the sandbox; docker runs one per container.
    if (m?.[1] && SHIM_NS.exec(line)?.[1] === 'moby') return { containerId: m[1], runtime: 'docker', podUid: null };
  }
  return null;
}

const ENVIRON = /\/proc\/(\d+)\/environ\b/g;

export class EventView {
  readonly kind: EventKind;
  readonly pid: number | null;
  readonly exe: string | null;
  readonly exeBase: string | null;
  readonly argv0Base: string | null;
  private cmdlineCache: string | null | undefined;
  private pathsCache: string[] | undefined;
  private parentsCache: ProcessEntry[] | undefined;
  private containerCache: CgroupIdentity | null | undefined;
  private novelCache: boolean | undefined;
  private objectCache: ObjectHit | null | undefined;
  /**
   * Set when a rule read state beyond the event, its process table entries and its container: a reader
   * baseline, or another process's container. Such an evaluation cannot stand for a repeat's
   * (detect/repeat-outcomes.ts).
   */
  contextual = false;

  constructor(
    readonly ev: AuditEvent,
    private readonly ctx: ViewContext,
  ) {
    this.kind = eventKind(ev);
    const p = ev.process;
    this.pid = p?.pid ?? null;
    const entry = this.pid !== null ? ctx.table.get(this.pid) : undefined;
    this.exe = p?.exe ?? entry?.exe ?? null;
    this.exeBase = baseName(this.exe);
    const argv = this.argv;
    this.argv0Base = argv && argv.length > 0 ? baseName(argv[0] ?? null) : null;
  }

  /** The process's start time (/proc stat, clock ticks), telling a reused pid apart; null when never read. */
  /** The process table's entry of the event's pid (a repeat's view is compared with its template's: detect/repeat-outcomes.ts). */
  get entry(): ProcessEntry | undefined {
    return this.pid !== null ? this.ctx.table.get(this.pid) : undefined;
  }

  get startTime(): number | null {
    return this.pid !== null ? (this.ctx.table.get(this.pid)?.startTime ?? null) : null;
  }

  /** argv of this exec, or (for other events) of the process's last exec, when known. */
  get argv(): string[] | null {
    const p = this.ev.process;
    if (p?.argv) return p.argv;
    return this.pid !== null ? (this.ctx.table.get(this.pid)?.argv ?? null) : null;
  }

  /**
   * Exact byte length of each argument of `argv` when the builder cut it (src/audit/argv-bound.ts);
   * undefined when `argv` is whole or is the process table's copy (whose markers carry their own count).
   */
  get argvLengths(): readonly number[] | undefined {
    const p = this.ev.process;
    return p?.argv ? p.argvCut?.lengths : undefined;
  }

  get cmdline(): string | null {
    if (this.cmdlineCache === undefined) this.cmdlineCache = ruleCommandLine(this.argv);
    return this.cmdlineCache;
  }

  get cwd(): string | null {
    return this.ev.process?.cwd ?? null;
  }

  /** The event's cwd, else the one the process table last saw for this pid (what a finding shows). */
  get processCwd(): string | null {
    return this.ev.process?.cwd ?? (this.pid !== null ? (this.ctx.table.get(this.pid)?.cwd ?? null) : null);
  }

  /** The user name of a uid on this host, or null (unknown, or names not looked up). */
  userName(uid: number | null): string | null {
    return this.ctx.userName ? this.ctx.userName(uid) : null;
  }

  /**
   * PATH names (not PARENT items), for relative names their CWD-resolved form, and for names under
   * `/proc/<pid>/root/` the name inside that root. Text only: which object was touched is `object`.
   */
  get paths(): string[] {
    if (this.pathsCache) return this.pathsCache;
    const out: string[] = [];
    const cwd = this.cwd;
    const add = (name: string): void => {
      out.push(name);
      const inRoot = stripProcRoot(name);
      if (inRoot !== name) out.push(inRoot);
    };
    for (const p of this.ev.paths) {
      if (p.name === null || p.name === '' || p.nametype === 'PARENT') continue;
      add(p.name);
      if (!p.name.startsWith('/') && cwd) add(path.posix.join(cwd, p.name));
    }
    this.pathsCache = out;
    return out;
  }

  /**
   * Whether a `/proc/<pid>/environ` this event opens or names belongs to a process in a container
   * other than the reader's own (the reader on the node, or in another container).
   */
  get environOfOtherContainer(): boolean {
    const pids = new Set<number>();
    for (const p of this.paths) for (const m of p.matchAll(ENVIRON)) pids.add(Number(m[1]));
    if (this.kind === 'exec' && this.cmdline) for (const m of this.cmdline.matchAll(ENVIRON)) pids.add(Number(m[1]));
    if (pids.size > 0) this.contextual = true;
    const mine = this.container?.containerId ?? null;
    for (const pid of pids) {
      const c = this.ctx.table.containerOfTarget(pid);
      if (c !== null && c.containerId !== mine) return true;
    }
    return false;
  }

  /** The watched object this event touched (a hit on one of our watches), whatever the name used. */
  get object(): ObjectHit | null {
    if (this.objectCache === undefined) this.objectCache = this.ctx.objects ? this.ctx.objects.objectOf(this.ev) : null;
    return this.objectCache;
  }

  /**
   * The claims of the token the event read, when it read one of our pod credential files. Not cached:
   * each call is a fresh copy the caller may keep (a finding), and the reader counts what it served.
   */
  tokenClaims(): FindingToken | null {
    const o = this.object;
    return o && this.ctx.tokenClaims ? this.ctx.tokenClaims.claimsFor(o) : null;
  }

  /**
   * Whether the reader is outside the object's owner: not in the pod whose token it is, not in the
   * container whose state it is. null when the object or its owner is unknown.
   */
  get objectForeign(): boolean | null {
    const o = this.object;
    if (!o) return null;
    const c = this.container;
    if (o.podUid !== null) return c?.podUid !== o.podUid;
    if (o.containerId !== null) return c?.containerId !== o.containerId;
    return null;
  }

  get sockaddr(): Sockaddr | null {
    return this.ev.sockaddr;
  }

  get uid(): number | null {
    return this.ev.process?.uid ?? null;
  }

  get auid(): number | null {
    return normaliseAuid(this.ev.process?.auid ?? null);
  }

  get tty(): string | null {
    return this.ev.process?.tty ?? null;
  }

  get interactive(): boolean {
    return isInteractive(this.tty, this.auid);
  }

  get parents(): ProcessEntry[] {
    if (!this.parentsCache) this.parentsCache = this.pid !== null ? this.ctx.table.parents(this.pid) : [];
    return this.parentsCache;
  }

  /** From the cgroup (live) or, failing that, from the container runtime in the ancestry. */
  get container(): CgroupIdentity | null {
    if (this.containerCache !== undefined) return this.containerCache;
    let c = this.pid !== null ? this.ctx.table.containerOf(this.pid) : null;
    c ??= this.containerFromAncestry();
    if (c && c.podUid === null && this.ctx.podUidOf) {
      const uid = this.ctx.podUidOf(c.containerId);
      if (uid) c = { ...c, podUid: uid };
    }
    this.containerCache = c;
    return c;
  }

  /** See ReaderBaseline.observe; answered once per event so several rules see the same answer. */
  novelReader(containerId: string, program: string): boolean {
    this.contextual = true;
    if (this.novelCache === undefined) this.novelCache = this.ctx.readers ? this.ctx.readers.observe(containerId, program) : false;
    return this.novelCache;
  }

  get containerMeta(): ContainerMeta | null {
    const c = this.container;
    return c && this.ctx.containerMeta ? this.ctx.containerMeta(c.containerId) : null;
  }

  /**
   * Without /proc (replay) the cgroup is unknown, but a process started by `runc exec`/`runc run`
   * (or conmon) has the runtime as an ancestor, and its argv names the container's task directory.
   */
  private containerFromAncestry(): CgroupIdentity | null {
    for (const p of this.parents) {
      const prog = baseName(p.exe) ?? baseName(p.argv?.[0] ?? null);
      if (!prog) continue;
      const t = p.argv ? runtimeTarget(prog, p.argv, p.cwd) : null;
      if (t) return t;
      // The process outlived `runc exec` and was reparented to the shim before its own exec.
      if (prog.startsWith('containerd-shim') && this.ctx.shimContainer) {
        const c = this.ctx.shimContainer(p.pid);
        if (c) return c;
      }
    }
    // The chain ends at a pid we never saw exec (a shim started before us): ask the shim index.
    const last = this.parents.length > 0 ? this.parents[this.parents.length - 1]?.ppid : this.ev.process?.ppid;
    return last && this.ctx.shimContainer ? this.ctx.shimContainer(last) : null;
  }
}
