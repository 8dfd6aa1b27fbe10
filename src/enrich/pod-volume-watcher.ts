/**
 * Keeps one audit watch per pod credential volume:
 *   /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/<name>/   (kube-api-access-*, IRSA...)
 *   /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~secret/<name>/
 *
 * Why per volume and dynamic: each volume is a tmpfs the kubelet mounts when the pod starts, after
 * our rules were loaded. `auditctl -w <dir>` on a directory is a tree watch that tags the inodes of
 * the mount present at that moment; a read through the container's bind mount
 * (/run/secrets/kubernetes.io/serviceaccount/token) reaches the same inodes and matches, whatever
 * path the container uses. A watch on /var/lib/kubelet/pods itself would not see tmpfs mounted later.
 *
 * Discovery (src/enrich/watch-set.ts): fs.watch on the pods dir (new pod dirs), a short delayed
 * rescan after each change (the volumes are mounted a moment after the dir appears) and a periodic
 * full rescan as a backstop. The watcher only yields rule text; installing it is the daemon's job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WatchSet, listDir, readWatchRule, type WatchRuleChange } from './watch-set';

export type { WatchRuleChange } from './watch-set';

export const POD_TOKEN_KEY = 'credwatch:pod-token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VOLUME_PLUGINS = ['kubernetes.io~projected', 'kubernetes.io~secret'];

export function podTokenWatchRule(dir: string, key = POD_TOKEN_KEY): string {
  return readWatchRule(dir, key);
}

/** Every pod credential volume directory under `podsDir`, sorted. */
export function listPodCredentialDirs(podsDir: string): string[] {
  const out: string[] = [];
  for (const uid of listDir(podsDir)) {
    if (!UUID.test(uid)) continue;
    for (const plugin of VOLUME_PLUGINS) {
      const base = path.join(podsDir, uid, 'volumes', plugin);
      for (const vol of listDir(base)) {
        const dir = path.join(base, vol);
        try {
          if (fs.statSync(dir).isDirectory()) out.push(dir);
        } catch {
          // Vanished between readdir and stat: the pod is going away.
        }
      }
    }
  }
  return out.sort();
}

export interface PodVolumeWatcherOptions {
  podsDir?: string;
  rescanMs?: number;
  settleMs?: number;
  key?: string;
  /** Also yield io_uring filter-list rules (when the kernel has that list). */
  uring?: boolean;
  onChange: (change: WatchRuleChange) => void;
}

export class PodVolumeWatcher extends WatchSet {
  constructor(opts: PodVolumeWatcherOptions) {
    const podsDir = opts.podsDir ?? '/var/lib/kubelet/pods';
    super({
      key: opts.key ?? POD_TOKEN_KEY,
      list: () => listPodCredentialDirs(podsDir),
      parents: () => [podsDir],
      rescanMs: opts.rescanMs,
      settleMs: opts.settleMs,
      uring: opts.uring,
      onChange: opts.onChange,
    });
  }
}
