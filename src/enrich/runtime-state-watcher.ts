/**
 * Keeps one audit read watch per runtime state file that holds a container's secrets (H15):
 *   docker      /var/lib/docker/containers/<id>/config.v2.json   (every env var, secrets included)
 *               /var/lib/docker/containers/<id>/hostconfig.json
 *   containerd  /run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/config.json   (OCI bundle: env)
 *   CRI-O       /var/lib/containers/storage/overlay-containers/<id>/userdata/config.json
 *
 * Per file, not per directory: a tree watch on /var/lib/docker/containers would also fire on every
 * log line docker writes there (`<id>-json.log`), and the kernel evaluates a watch only for the
 * inodes it tags, so a few rules per container cost nothing on unrelated opens. A file watch
 * follows the name, so docker rewriting config.v2.json by rename keeps it watched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WatchSet, listDir, type WatchRuleChange } from './watch-set';

export const RUNTIME_STATE_KEY = 'credwatch:runtime-state';
const CONTAINER_ID = /^[0-9a-f]{64}$/;

export interface RuntimeStateRoots {
  docker: string;
  /** containerd task dirs: the system containerd's, and the one dockerd runs itself when there is none. */
  containerd: string[];
  crio: string;
}

export const DEFAULT_RUNTIME_STATE_ROOTS: RuntimeStateRoots = {
  docker: '/var/lib/docker/containers',
  containerd: ['/run/containerd/io.containerd.runtime.v2.task', '/run/docker/containerd/daemon/io.containerd.runtime.v2.task'],
  crio: '/var/lib/containers/storage/overlay-containers',
};

function existing(files: string[]): string[] {
  return files.filter((f) => {
    try {
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * The state roots of this node: the defaults, plus those of every running dockerd started with
 * `--data-root` / `--exec-root` (or `-g`), and /etc/docker/daemon.json's "data-root"/"exec-root".
 * Operators move them (a bigger disk); the state files must be watched wherever they are.
 */
export function discoverRuntimeStateRoots(procRoot = '/proc', daemonJson = '/etc/docker/daemon.json'): RuntimeStateRoots[] {
  const out: RuntimeStateRoots[] = [DEFAULT_RUNTIME_STATE_ROOTS];
  const add = (dataRoot: string | undefined, execRoot: string | undefined): void => {
    if (!dataRoot && !execRoot) return;
    out.push({
      docker: path.join(dataRoot ?? '/var/lib/docker', 'containers'),
      containerd: [path.join(execRoot ?? '/var/run/docker', 'containerd', 'daemon', 'io.containerd.runtime.v2.task')],
      crio: DEFAULT_RUNTIME_STATE_ROOTS.crio,
    });
  };
  try {
    const cfg = JSON.parse(fs.readFileSync(daemonJson, 'utf8')) as Record<string, unknown>;
    add(typeof cfg['data-root'] === 'string' ? cfg['data-root'] : undefined, typeof cfg['exec-root'] === 'string' ? cfg['exec-root'] : undefined);
  } catch {
    // no daemon.json, or not JSON: the defaults and the command lines still count
  }
  for (const pid of listDir(procRoot)) {
    if (!/^\d+$/.test(pid)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(path.join(procRoot, pid, 'cmdline'), 'latin1').split('\0');
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? '') !== 'dockerd') continue;
    const flag = (names: string[]): string | undefined => {
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i] as string;
        for (const n of names) {
          if (a === n) return argv[i + 1];
          if (a.startsWith(n + '=')) return a.slice(n.length + 1);
        }
      }
      return undefined;
    };
    add(flag(['--data-root', '--graph', '-g']), flag(['--exec-root']));
  }
  return out;
}

/** Every runtime state file of the containers present now, sorted. */
export function listRuntimeStateFiles(roots: RuntimeStateRoots = DEFAULT_RUNTIME_STATE_ROOTS): string[] {
  const out: string[] = [];
  for (const id of listDir(roots.docker)) {
    if (!CONTAINER_ID.test(id)) continue;
    out.push(...existing([path.join(roots.docker, id, 'config.v2.json'), path.join(roots.docker, id, 'hostconfig.json')]));
  }
  for (const root of roots.containerd) {
    for (const ns of listDir(root)) {
      for (const id of listDir(path.join(root, ns))) {
        if (CONTAINER_ID.test(id)) out.push(...existing([path.join(root, ns, id, 'config.json')]));
      }
    }
  }
  for (const id of listDir(roots.crio)) {
    if (CONTAINER_ID.test(id)) out.push(...existing([path.join(roots.crio, id, 'userdata', 'config.json')]));
  }
  return out.sort();
}

/** The dirs whose entries change when containers come and go. */
export function runtimeStateParents(roots: RuntimeStateRoots = DEFAULT_RUNTIME_STATE_ROOTS): string[] {
  return [roots.docker, ...roots.containerd.flatMap((r) => [r, ...listDir(r).map((ns) => path.join(r, ns))]), roots.crio];
}

export interface RuntimeStateWatcherOptions {
  /** Fixed roots (tests); default: discovered on each scan (discoverRuntimeStateRoots). */
  roots?: RuntimeStateRoots[];
  rescanMs?: number;
  settleMs?: number;
  /** Also yield io_uring filter-list rules (when the kernel has that list). */
  uring?: boolean;
  onChange: (change: WatchRuleChange) => void;
}

export class RuntimeStateWatcher extends WatchSet {
  constructor(opts: RuntimeStateWatcherOptions) {
    const fixed = opts.roots;
    let cached: { at: number; roots: RuntimeStateRoots[] } | null = null;
    const roots = (): RuntimeStateRoots[] => {
      if (fixed) return fixed;
      if (!cached || Date.now() - cached.at > 5_000) cached = { at: Date.now(), roots: discoverRuntimeStateRoots() };
      return cached.roots;
    };
    super({
      key: RUNTIME_STATE_KEY,
      list: () => [...new Set(roots().flatMap((r) => listRuntimeStateFiles(r)))].sort(),
      parents: () => [...new Set(roots().flatMap((r) => runtimeStateParents(r)))],
      rescanMs: opts.rescanMs,
      settleMs: opts.settleMs,
      uring: opts.uring,
      onChange: opts.onChange,
    });
  }
}
