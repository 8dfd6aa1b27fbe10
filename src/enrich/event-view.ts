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

/**
 * Characters of a command line a rule regex sees at each end: detect/linear-regex.ts matches the first
 * and last MAX_MATCH_TEXT / 2 of a longer text (a unit test holds the two equal).
 */
export const CMDLINE_END_CHARS = 4096;
/** Up to this length (after stripping) the command line is built whole; past it, bounded. */
const CMDLINE_WHOLE_CHARS = 4 * CMDLINE_END_CHARS;

/** The joined length of ruleCommandLine(argv), and each argument as it joins (argv0 its basename, /proc roots stripped). */
function strippedArgs(argv: readonly string[]): { args: string[]; length: number } {
  const args = new Array<string>(argv.length);
  args[0] = baseName(argv[0] ?? '') ?? '';
  let length = args[0].length;
  for (let i = 1; i < argv.length; i++) {
    // The prefix never holds whitespace, so it never spans two arguments: stripping each argument
    // alone is stripping the joined text (an argument's start is where `^` or the space before it is).
    const a = stripProcRootsInText(argv[i] as string);
    args[i] = a;
    length += 1 + a.length;
  }
  return { args, length };
}

/**
 * ruleCommandLine(argv) as the rules read it, built in bounded work: a command line longer than
 * CMDLINE_WHOLE_CHARS is its first and last CMDLINE_END_CHARS characters around ` …[cut N chars] `
 * (N: the characters left out). Every rule sees the same text as with the whole line: a regex matches
 * the first and last MAX_MATCH_TEXT / 2 characters of a longer text, an argv_cut rule asks whether it
 * is longer than MAX_MATCH_TEXT (both are), an incident key its first kilobyte. The builder-bounded
 * argv of a 2 MiB exec joins to ~128 KiB; joining it whole, then flattening it to strip /proc roots,
 * was ~0.4 ms an event.
 */
export function boundedRuleCommandLine(argv: readonly string[] | null): string | null {
  if (!argv || argv.length === 0) return null;
  const { args, length } = strippedArgs(argv);
  if (length <= CMDLINE_WHOLE_CHARS) return args.join(' ');
  const end = CMDLINE_END_CHARS;
  let head = '';
  for (let i = 0; i < args.length && head.length < end; i++) {
    const a = args[i] as string;
    head += (i > 0 ? ' ' : '') + a.slice(0, end - head.length);
  }
  head = head.slice(0, end);
  let tail = '';
  for (let i = args.length - 1; i >= 0 && tail.length < end; i--) {
    const a = args[i] as string;
    tail = a.slice(Math.max(0, a.length - (end - tail.length))) + (i < args.length - 1 ? ' ' : '') + tail;
  }
  tail = tail.slice(-end);
  return `${head} …[cut ${length - head.length - tail.length} chars] ${tail}`;
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
  get argv(): readonly string[] | null {
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

  /** The command line the rules read: ruleCommandLine, bounded (boundedRuleCommandLine). */
  get cmdline(): string | null {
    if (this.cmdlineCache === undefined) this.cmdlineCache = boundedRuleCommandLine(this.argv);
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
    // From the arguments, not the (bounded) command line: a name in the middle of a long argv counts.
    // No name spans two arguments, and argv0 counts by its basename, as in the command line.
    const argv = this.kind === 'exec' ? this.argv : null;
    if (argv) for (let i = 1; i < argv.length; i++) for (const m of (argv[i] as string).matchAll(ENVIRON)) pids.add(Number(m[1]));
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
