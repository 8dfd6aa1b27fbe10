/**
 * Container id -> pod uid through the cgroup file system, for processes whose own /proc/<pid>/cgroup
 * could not be read (they exited first) but whose container is known from runtime ancestry.
 * Walks only the kubepods subtree of one hierarchy, bounded in depth; results are cached.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCgroupPath } from './cgroup';

export interface PodLookupOptions {
  /** cgroup mount root; the first existing of these hierarchies is searched. */
  root?: string;
  hierarchies?: string[];
  cacheMs?: number;
  /**
   * How long a miss is remembered. Short: the first lookups of a container come from the runtime's
   * own events (runc create), before its cgroup exists, and a miss remembered as long as a hit
   * would hide the pod uid of the container's processes for that long.
   */
  missCacheMs?: number;
  now?: () => number;
}

const DESCEND = /^(kubepods.*|burstable|besteffort|guaranteed|.*pod[0-9a-f_-]{36}.*)$/;
const HIERARCHIES = ['unified', 'memory', 'pids', 'systemd', ''];

/**
 * The first cgroup directory under the kubepods subtree (of the first hierarchy that has one) whose
 * name `match`es: a walk bounded in depth that descends only into kubepods, QoS and pod directories.
 * Returns its path, absolute and relative to the hierarchy.
 */
export function findKubepodsEntry(root: string, match: (name: string) => boolean, hierarchies = HIERARCHIES): { abs: string; rel: string } | null {
  const search = (dir: string, rel: string, depth: number): { abs: string; rel: string } | null => {
    if (depth > 6) return null;
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return null;
    }
    for (const n of names) {
      if (match(n)) return { abs: path.join(dir, n), rel: `${rel}/${n}` };
    }
    for (const n of names) {
      if (!DESCEND.test(n)) continue;
      const found = search(path.join(dir, n), `${rel}/${n}`, depth + 1);
      if (found) return found;
    }
    return null;
  };
  for (const h of hierarchies) {
    const base = path.join(root, h);
    if (!fs.existsSync(path.join(base, 'kubepods')) && !fs.existsSync(path.join(base, 'kubepods.slice'))) continue;
    const found = search(base, '', 0);
    if (found) return found;
  }
  return null;
}

export function createCgroupPodLookup(opts: PodLookupOptions = {}): (containerId: string) => string | null {
  const root = opts.root ?? '/sys/fs/cgroup';
  const hierarchies = opts.hierarchies ?? HIERARCHIES;
  const cacheMs = opts.cacheMs ?? 30_000;
  const missCacheMs = opts.missCacheMs ?? 1_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { uid: string | null; at: number }>();

  return (containerId) => {
    const hit = cache.get(containerId);
    if (hit && now() - hit.at < (hit.uid === null ? missCacheMs : cacheMs)) return hit.uid;
    const found = findKubepodsEntry(root, (n) => n.includes(containerId), hierarchies);
    const uid = found ? (parseCgroupPath(found.rel)?.podUid ?? null) : null;
    cache.set(containerId, { uid, at: now() });
    if (cache.size > 4096) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    return uid;
  };
}
