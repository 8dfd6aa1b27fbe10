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
  containerd: string;
  crio: string;
}

export const DEFAULT_RUNTIME_STATE_ROOTS: RuntimeStateRoots = {
  docker: '/var/lib/docker/containers',
  containerd: '/run/containerd/io.containerd.runtime.v2.task',
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

/** Every runtime state file of the containers present now, sorted. */
export function listRuntimeStateFiles(roots: RuntimeStateRoots = DEFAULT_RUNTIME_STATE_ROOTS): string[] {
  const out: string[] = [];
  for (const id of listDir(roots.docker)) {
    if (!CONTAINER_ID.test(id)) continue;
    out.push(...existing([path.join(roots.docker, id, 'config.v2.json'), path.join(roots.docker, id, 'hostconfig.json')]));
  }
  for (const ns of listDir(roots.containerd)) {
    for (const id of listDir(path.join(roots.containerd, ns))) {
      if (CONTAINER_ID.test(id)) out.push(...existing([path.join(roots.containerd, ns, id, 'config.json')]));
    }
  }
  for (const id of listDir(roots.crio)) {
    if (CONTAINER_ID.test(id)) out.push(...existing([path.join(roots.crio, id, 'userdata', 'config.json')]));
  }
  return out.sort();
}

/** The dirs whose entries change when containers come and go. */
export function runtimeStateParents(roots: RuntimeStateRoots = DEFAULT_RUNTIME_STATE_ROOTS): string[] {
  return [roots.docker, roots.containerd, ...listDir(roots.containerd).map((ns) => path.join(roots.containerd, ns)), roots.crio];
}

export interface RuntimeStateWatcherOptions {
  roots?: RuntimeStateRoots;
  rescanMs?: number;
  settleMs?: number;
  onChange: (change: WatchRuleChange) => void;
}

export class RuntimeStateWatcher extends WatchSet {
  constructor(opts: RuntimeStateWatcherOptions) {
    const roots = opts.roots ?? DEFAULT_RUNTIME_STATE_ROOTS;
    super({
      key: RUNTIME_STATE_KEY,
      list: () => listRuntimeStateFiles(roots),
      parents: () => runtimeStateParents(roots),
      rescanMs: opts.rescanMs,
      settleMs: opts.settleMs,
      onChange: opts.onChange,
    });
  }
}
