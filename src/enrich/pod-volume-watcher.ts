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
 * Discovery: fs.watch on the pods dir (new pod dirs), a short delayed rescan after each change (the
 * volumes are mounted a moment after the dir appears) and a periodic full rescan as a backstop.
 * The watcher only yields rule text; installing it is the daemon's job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const POD_TOKEN_KEY = 'credwatch:pod-token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VOLUME_PLUGINS = ['kubernetes.io~projected', 'kubernetes.io~secret'];

export function podTokenWatchRule(dir: string, key = POD_TOKEN_KEY): string {
  return `-w ${dir} -p r -k ${key}`;
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
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

export interface WatchRuleChange {
  /** Rule lines to add (`-w DIR -p r -k credwatch:pod-token`). */
  add: string[];
  /** Rule lines to remove (pods that went away). */
  remove: string[];
}

export interface PodVolumeWatcherOptions {
  podsDir?: string;
  rescanMs?: number;
  settleMs?: number;
  key?: string;
  onChange: (change: WatchRuleChange) => void;
}

export class PodVolumeWatcher {
  private readonly podsDir: string;
  private readonly rescanMs: number;
  private readonly settleMs: number;
  private readonly key: string;
  private readonly onChange: (change: WatchRuleChange) => void;
  private readonly watched = new Set<string>();
  private fsWatcher: fs.FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;

  constructor(opts: PodVolumeWatcherOptions) {
    this.podsDir = opts.podsDir ?? '/var/lib/kubelet/pods';
    this.rescanMs = opts.rescanMs ?? 30_000;
    this.settleMs = opts.settleMs ?? 1_000;
    this.key = opts.key ?? POD_TOKEN_KEY;
    this.onChange = opts.onChange;
  }

  /** The rule lines currently in force. */
  rules(): string[] {
    return [...this.watched].sort().map((d) => podTokenWatchRule(d, this.key));
  }

  /** Compares the disk with what is watched; reports and applies the difference. */
  scan(): WatchRuleChange {
    const now = new Set(listPodCredentialDirs(this.podsDir));
    const add: string[] = [];
    const remove: string[] = [];
    for (const d of now) if (!this.watched.has(d)) add.push(d);
    for (const d of this.watched) if (!now.has(d)) remove.push(d);
    for (const d of add) this.watched.add(d);
    for (const d of remove) this.watched.delete(d);
    const change = {
      add: add.sort().map((d) => podTokenWatchRule(d, this.key)),
      remove: remove.sort().map((d) => podTokenWatchRule(d, this.key)),
    };
    if (change.add.length > 0 || change.remove.length > 0) this.onChange(change);
    return change;
  }

  start(): void {
    this.scan();
    this.timer = setInterval(() => {
      this.armFsWatch();
      this.scan();
    }, this.rescanMs);
    this.timer.unref();
    this.armFsWatch();
  }

  /**
   * Watches the pods dir for new pods. Retried on every periodic rescan: when the agent starts
   * before the kubelet has created the dir (boot order, a fresh node), the first pods' watches would
   * otherwise wait for the slow rescan forever, leaving each new pod's first reads unwatched.
   */
  private armFsWatch(): void {
    if (this.fsWatcher) return;
    try {
      this.fsWatcher = fs.watch(this.podsDir, () => this.scheduleSettledScan());
      this.fsWatcher.on('error', () => this.closeFsWatcher());
    } catch {
      // No pods dir yet (not a node, or kubelet not started): the periodic rescan covers it.
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.timer = null;
    this.settleTimer = null;
    this.closeFsWatcher();
  }

  private scheduleSettledScan(): void {
    if (this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.scan();
    }, this.settleMs);
    this.settleTimer.unref();
  }

  private closeFsWatcher(): void {
    this.fsWatcher?.close();
    this.fsWatcher = null;
  }
}
