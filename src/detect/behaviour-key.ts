/**
 * The key of a behaviour: who did it (the actor) and what it touched (the object). Findings of several
 * rules, and repeats, with the same key inside one incident window are one incident (incidents.ts).
 *
 * Actor: the container (its 12-hex short id, the form `docker exec` takes and prints), or on the host
 * the login session (audit `ses`), for daemons the root of the process tree as far as we know it (so
 * 1,000 children of one loop are one actor). A
 * `docker|nerdctl|podman exec <id> ...` on the host acts on that container, so its actor is the
 * container: the CLI call and what it runs inside are one behaviour.
 * Object: for a hit on one of our watches, the watched object's identity (watched-objects.ts: found by
 * the PATH record's dev/inode, named by our own walk of the watch, never by the reader's path), so
 * `/proc/<pid>/root/...`, the kubelet volume path, `..data/`, a hard link, a bind mount or an io_uring
 * openat of one token are one object, before and after the kubelet rotates it. Without a watch hit:
 * for open the path, for connect the socket address, for exec the first URL or absolute path in the
 * arguments, else the command line (bounded). Those paths are normalised so that the same token read as
 * /var/run/secrets/... or through the projected volume's ..data link is the same object.
 * Everything in a key is redacted: the key is stored and shipped with the incident.
 */
import { LRUCache } from 'lru-cache';
import type { Sockaddr } from '../audit/event';
import { boundedRuleCommandLine, type EventView } from '../enrich/event-view';
import type { ProcessEntry } from '../enrich/process-table';
import type { ObjectHit } from '../enrich/watched-objects';
import { WINDOW_MARGIN } from './bound';
import { findingArgv } from './event-redaction';
import { redactText } from './redact';
import { redactCutText } from './redact/text';

export interface BehaviourKey {
  actor: string;
  object: string;
  /**
   * Other keys of the same behaviour: a `docker exec <ctr> cat token` run by `bash -c` is the wrapper's
   * host behaviour too (same pid, before and after the exec), so the CLI's key links to the host one.
   */
  links?: BehaviourKey[];
  /** Keys this hit's incident is also known under (looked up by later links). */
  publishes?: BehaviourKey[];
  /** As a link: valid only this long after the incident's last event (default: the incident window). */
  withinMs?: number;
}

/**
 * `docker exec <name> cat token` names the container, not its id, and the process it starts inside is
 * not its descendant (runc is started by the shim): the CLI publishes the object under this actor, and
 * a container process touching the same object within RUNTIME_EXEC_LINK_MS joins the CLI's incident.
 * A heuristic: a second container reading the same object in those seconds would join too.
 */
const RUNTIME_EXEC = 'runtime-exec';
export const RUNTIME_EXEC_LINK_MS = 5000;

/** Objects are at most this long (a hostile argv must not make a key large). */
export const MAX_OBJECT_CHARS = 256;
/** Characters of the arguments looked at for a named object (a path, a socket, a URL). */
const MAX_OBJECT_SCAN = 8192;

const SHORT_ID = 12;
const HEX_ID = /^[0-9a-f]{12,64}$/;
const RUNTIME_CLIS = new Set(['docker', 'nerdctl', 'podman']);
/** `exec` options that take a value as the next argument. */
const EXEC_VALUE_OPTS = new Set(['-e', '--env', '--env-file', '-u', '--user', '-w', '--workdir', '--detach-keys']);
/**
 * Services at the top of many trees: never a useful actor. Below them the topmost process is the
 * actor (a login shell, a cron job, a service), so two SSH sessions are two actors.
 */
const TREE_TOPS = new Set(['systemd', 'init', 'sshd', 'sshd-session', 'login', 'cron', 'crond', 'containerd', 'dockerd', 'kubelet', 'tmux', 'screen']);
const URL_IN_ARGS = /\b([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^\s'"/?#:@]+)(?::(\d+))?/i;
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443 };
const PATH_IN_ARGS = /(?:^|[\s='"<>(])(\/[^\s'";|&<>()$`]+)/;

function shortId(id: string): string {
  return id.slice(0, SHORT_ID);
}

/** The container a `docker|nerdctl|podman [container] exec [opts] TARGET cmd...` acts on, else null. */
export function runtimeExecTarget(argv: readonly string[] | null): string | null {
  if (!argv || argv.length < 3) return null;
  const prog = argv[0]?.slice(argv[0].lastIndexOf('/') + 1) ?? '';
  if (!RUNTIME_CLIS.has(prog)) return null;
  let i = argv.indexOf('exec', 1);
  if (i < 0 || i > 4) return null;
  for (i++; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') continue;
    if (!a.startsWith('-')) return a;
    if (EXEC_VALUE_OPTS.has(a)) i++;
  }
  return null;
}

/**
 * Host actors by parent process (pid and start time). What the process table knows above a process
 * changes: a storm's 1,000 children a second push the tree's upper ancestors out of its LRU, and a
 * later /proc read brings them back, so "the topmost known ancestor" of two children of one loop could
 * differ and split one behaviour into several incidents. The first answer for a parent holds for all
 * its children: siblings share every ancestor from their parent up, so an actor that is one of those
 * (not the child itself) is theirs too. Bounded; a parent without a start time (replay) is not kept
 * (a reused pid must not inherit another tree's actor).
 */
export class HostActors {
  // Bounded LRU maps (lru-cache): a Map evicting its oldest key per insert scans the holes its own
  // deletions left at the front, which in a storm of new processes cost microseconds per event.
  private readonly byParent: LRUCache<string, string>;
  /**
   * The actor of each process (pid and start time) when first seen. A parent that dies reparents its
   * children to init or a subreaper: their ancestry then ends at a service manager and they would
   * become actors of their own, splitting a storm in two. A process never leaves the tree it was
   * started in, so its first actor holds for its life.
   */
  private readonly byPid: LRUCache<string, string>;

  constructor(max = 4096) {
    this.byParent = new LRUCache({ max });
    this.byPid = new LRUCache({ max });
  }

  get(parent: string): string | undefined {
    return this.byParent.get(parent);
  }

  set(parent: string, actor: string): void {
    this.byParent.set(parent, actor);
  }

  /** The actor a process got when first seen. */
  ofProcess(proc: string): string | undefined {
    return this.byPid.get(proc);
  }

  setProcess(proc: string, actor: string): void {
    this.byPid.set(proc, actor);
  }

  /** Parents remembered (processes are bounded alike: `processes`). */
  get size(): number {
    return this.byParent.size;
  }

  get processes(): number {
    return this.byPid.size;
  }
}

/**
 * The login session when there is one (the kernel's audit `ses`: every process of one SSH or console
 * login, whatever the process table knows of its ancestors; a process cannot leave it), else the
 * topmost known ancestor below the service managers (the same for every child of one parent, see
 * HostActors), else the process itself.
 */
function hostActor(v: EventView, actors?: HostActors): string {
  const ses = v.ev.process?.ses;
  if (ses !== null && ses !== undefined) return `host-session:${ses}`;
  if (!actors) return treeActor(v);
  const self = v.pid !== null && v.startTime !== null ? `${v.pid}:${v.startTime}` : null;
  const first = self === null ? undefined : actors.ofProcess(self);
  if (first !== undefined) return first;
  const actor = ancestryActor(v, actors);
  if (self !== null) actors.setProcess(self, actor);
  return actor;
}

function ancestryActor(v: EventView, actors: HostActors): string {
  const parents = v.parents;
  const keyOf = (p: ProcessEntry | undefined): string | null => (p && p.startTime !== null ? `${p.pid}:${p.startTime}` : null);
  const parentKey = keyOf(parents[0]);
  // The nearest ancestor already answered for: its answer is at or above it, so an ancestor of ours too
  // (a storm whose children fork again stays one actor).
  for (const p of parents) {
    const k = keyOf(p);
    // An ancestor's own actor is its descendants' too (the tree above it is theirs): a child of a
    // reparented process stays in the tree its parent was first seen in.
    const known = k === null ? undefined : (actors.get(k) ?? actors.ofProcess(k));
    if (known === undefined) continue;
    if (parentKey !== null && k !== parentKey) actors.set(parentKey, known);
    return known;
  }
  const actor = treeActor(v);
  // Only an ancestor is shared by the siblings: a process that is its own actor (its parent is a
  // service manager) gives nothing to its parent's other children.
  if (parentKey !== null && actor !== `host:${v.pid ?? ''}:`) actors.set(parentKey, actor);
  return actor;
}

function treeActor(v: EventView): string {
  const parents = v.parents;
  for (let i = parents.length - 1; i >= 0; i--) {
    const p = parents[i]!;
    const prog = p.exe ? p.exe.slice(p.exe.lastIndexOf('/') + 1) : null;
    if (p.pid === 1 || (prog !== null && (TREE_TOPS.has(prog) || prog.startsWith('containerd-shim')))) continue;
    return `host:${p.pid}:${p.startTime ?? ''}`;
  }
  // No known ancestor (its parent's exec not seen yet): the parent stands for the tree, so the children of
  // one unknown parent are one actor. Without a parent, the process itself (not its exe: a shell that
  // exec's a tool stays one actor).
  const ppid = v.ev.process?.ppid;
  if (parents.length === 0 && ppid !== null && ppid !== undefined && ppid > 1) return `host:${ppid}:`;
  return `host:${v.pid ?? ''}:`;
}

/**
 * The kubelet's atomic writer: `..data` links to the current `..2026_12_02_07_00_00.123456789` dir (Go's
 * `..2006_01_02_15_04_05.` plus a random suffix). Only these: `/.../` is an ordinary directory name.
 */
const ATOMIC_WRITER_DIR = /\/\.\.(?:data|\d{4}(?:_\d{2}){5}\.[^/]+)(?=\/)/g;

/** /var/run is /run; the projected volume's `..data` / `..2024_...` indirections name the same file. */
export function normalisePath(p: string): string {
  let out = p.startsWith('/var/run/') ? p.slice(4) : p;
  if (out.includes('/..')) out = out.replace(ATOMIC_WRITER_DIR, '');
  return out;
}

/**
 * The identity of the watched object an event hit: its class and the name our own walk of the watch
 * found its inode under (normalised: a rotation into a new `..<timestamp>` dir keeps the identity, so
 * reads across a kubelet rotation stay one behaviour). Not indexed (replay of another node's log, a file
 * newer than the last index): the inode the kernel printed. Neither: null (the path text is used).
 */
export function watchedObjectId(o: ObjectHit | null): string | null {
  if (!o) return null;
  if (o.via === 'inode' && o.file !== null) return `object:${o.class}:${normalisePath(o.file)}`;
  if (o.inode !== null) return `object:${o.class}:${o.watch !== '' ? `${o.watch}:` : ''}inode:${o.inode}`;
  return null;
}

/** A connect's endpoint: a unix socket by its (normalised) path, else `net:<addr>:<port>`. */
export function sockaddrObject(s: Sockaddr): string {
  if (s.path !== null && s.path !== '') return `unix:${normalisePath(s.path)}`;
  return netObject(s.addr ?? '', s.port);
}

/** An endpoint: a URL in argv and the connect() to it are the same object. */
function netObject(host: string, port: number | null): string {
  return `net:${host.toLowerCase()}:${port ?? ''}`;
}

function objectOf(v: EventView): string {
  if (v.kind === 'open') {
    const p = v.paths.find((x) => x.startsWith('/')) ?? v.paths[0];
    if (p !== undefined) return `file:${normalisePath(p)}`;
  }
  if (v.kind === 'connect' && v.sockaddr) return sockaddrObject(v.sockaddr);
  const argv = v.argv;
  if (argv && argv.length > 1) {
    // The object is named in the first kilobytes of any real command line; an attacker's megabyte of
    // padding must not make every event scan (and redact) all of it.
    const args = joinedUpTo(argv, 1, ' ', MAX_OBJECT_SCAN);
    const path = PATH_IN_ARGS.exec(args);
    // A socket named in the arguments is the endpoint (curl --unix-socket /run/docker.sock http://x/...).
    if (path?.[1]?.endsWith('.sock')) return `unix:${normalisePath(path[1])}`;
    const url = URL_IN_ARGS.exec(args);
    if (url) {
      const scheme = (url[1] ?? '').toLowerCase();
      const port = url[3] !== undefined ? Number(url[3]) : (DEFAULT_PORTS[scheme] ?? null);
      return netObject((url[2] ?? '').replace(/^\[|\]$/g, ''), port);
    }
    if (path?.[1]) return `file:${normalisePath(path[1])}`;
  }
  // Only a window is kept: redactedObject redacts the window's text (a cut secret's start included)
  // and then shortens it further, so the key never holds more than MAX_OBJECT_CHARS.
  return `cmd:${windowOf(v.cmdline ?? v.exeBase ?? '?')}`;
}

const windowOf = (cmd: string): string => (cmd.length > MAX_OBJECT_CHARS + WINDOW_MARGIN ? cmd.slice(0, MAX_OBJECT_CHARS + WINDOW_MARGIN) : cmd);

/** argv[from..] joined with `sep`, at most `max` characters (the rest is not looked at). */
function joinedUpTo(argv: readonly string[], from: number, sep: string, max: number): string {
  let out = '';
  for (let i = from; i < argv.length && out.length < max; i++) {
    const a = argv[i] as string;
    out += (i > from ? sep : '') + (a.length > max ? a.slice(0, max) : a);
  }
  return out.length > max ? out.slice(0, max) : out;
}

/** The longest key redactedObjects keeps (an argv key is the arguments joined: see redactedObject). */
const CACHED_KEY_CHARS = 4 * MAX_OBJECT_CHARS;

/** Redacted objects by raw object: in a storm the same socket or file comes back on every event. */
const redactedObjects = new Map<string, string>();

/**
 * The object as stored and shipped (the incident key is in every finding). A command line is redacted
 * as an argv first, as the finding's own argv is: text rules alone do not know that `-p` after
 * `docker login` is a password, and a key built from the joined text kept it in clear.
 */
function redactedObject(raw: string, v: EventView): string {
  const argv = raw.startsWith('cmd:') ? v.argv : null;
  // Keyed by the arguments, not their joined text: ['login -p X'] and ['login', '-p', 'X'] join alike
  // but redact differently as an argv, so one must not be served the other's result.
  // Only short keys are kept, so a long argv is joined no further than that (not its 128 KiB).
  const key = argv ? `argv\0${joinedUpTo(argv, 0, '\0', CACHED_KEY_CHARS + 1)}` : raw;
  const cacheable = key.length <= CACHED_KEY_CHARS;
  let out = cacheable ? redactedObjects.get(key) : undefined;
  if (out === undefined) {
    // The finding's own redacted argv (computed once per event: event-redaction.ts), joined bounded:
    // the window is the line's first characters, which the bounded line keeps as they are.
    const text = argv ? `cmd:${windowOf(boundedRuleCommandLine(findingArgv(v)) ?? '?')}` : raw;
    out = (text.length > MAX_OBJECT_CHARS ? redactCutText(text) : redactText(text)).slice(0, MAX_OBJECT_CHARS);
    if (redactedObjects.size >= 1024) redactedObjects.clear();
    if (cacheable) redactedObjects.set(key, out);
  }
  return out;
}

export function behaviourKey(v: EventView, actors?: HostActors): BehaviourKey {
  const named = redactedObject(objectOf(v), v);
  const id = watchedObjectId(v.object);
  const c = v.container;
  if (id !== null) {
    // A command line naming the file (H2: `cat /proc/<pid>/root/.../token`, or a `docker exec` CLI) has
    // no watch hit and was keyed by that name: the open that follows joins it through the name, and the
    // incident is known by the identity from then on.
    const actor = c ? `container:${shortId(c.containerId)}` : hostActor(v, actors);
    const links: BehaviourKey[] = [{ actor, object: named }];
    if (c) links.push({ actor: RUNTIME_EXEC, object: named, withinMs: RUNTIME_EXEC_LINK_MS });
    return { actor, object: id, links, publishes: [{ actor, object: named }] };
  }
  const object = named;
  if (c) return { actor: `container:${shortId(c.containerId)}`, object, links: [{ actor: RUNTIME_EXEC, object, withinMs: RUNTIME_EXEC_LINK_MS }] };
  const target = runtimeExecTarget(v.argv);
  if (target === null) return { actor: hostActor(v, actors), object };
  const links = [{ actor: hostActor(v, actors), object }];
  if (HEX_ID.test(target)) return { actor: `container:${shortId(target)}`, object, links };
  return { actor: `container-name:${redactText(target).slice(0, 128)}`, object, links, publishes: [{ actor: RUNTIME_EXEC, object }] };
}

/**
 * The key of a hit on another node (records with `node=`: a log replayed from elsewhere, or a central
 * auditd writing several): every actor is scoped to that node. Host session ids, pids and container
 * names repeat from node to node, and two nodes' behaviours must never become one incident.
 */
export function onNode(key: BehaviourKey, node: string): BehaviourKey {
  const scope = (k: BehaviourKey): BehaviourKey => ({
    ...k,
    actor: `node:${node}/${k.actor}`,
    ...(k.links ? { links: k.links.map(scope) } : {}),
    ...(k.publishes ? { publishes: k.publishes.map(scope) } : {}),
  });
  return scope(key);
}
