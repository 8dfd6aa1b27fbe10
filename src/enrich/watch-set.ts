/**
 * A set of audit watches that follows the file system: the paths to watch are listed by a function
 * (pod volumes, runtime state files of running containers), compared with what is watched, and the
 * difference is reported as `-w` rule text to add and remove. Installing the rules is the daemon's job.
 *
 * Discovery: fs.watch on a few parent dirs (a new pod, a new container), a short delayed rescan after
 * each change (the files appear a moment after their dir) and a periodic full rescan as a backstop.
 * The parent dirs are re-armed on every periodic rescan: when the agent starts before the kubelet or
 * the runtime created them (boot order, a fresh node), the first objects would otherwise wait for the
 * slow rescan forever, their first reads unwatched.
 */
import * as fs from 'node:fs';
import { uringWatchRule } from '../audit/rules';

export interface WatchRuleChange {
  /** Rule lines to add (`-w PATH -p r -k KEY`). */
  add: string[];
  /** Rule lines to remove (objects that went away). */
  remove: string[];
}

export function readWatchRule(target: string, key: string): string {
  return `-w ${target} -p r -k ${key}`;
}

export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

export interface WatchSetOptions {
  key: string;
  /** Also yield an io_uring filter-list rule per path (src/audit/rules/builders.ts uringWatchRule). */
  uring?: boolean;
  /** Every path that should be watched now (sorted or not). */
  list: () => string[];
  /** Directories whose changes announce new or vanished paths (re-listed on every rescan). */
  parents: () => string[];
  rescanMs?: number;
  settleMs?: number;
  onChange: (change: WatchRuleChange) => void;
}

export class WatchSet {
  private readonly watched = new Set<string>();
  private readonly dirs = new Set<string>();
  private readonly fsWatchers = new Map<string, fs.FSWatcher>();
  private timer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private readonly rescanMs: number;
  private readonly settleMs: number;

  constructor(private readonly opts: WatchSetOptions) {
    this.rescanMs = opts.rescanMs ?? 30_000;
    this.settleMs = opts.settleMs ?? 1_000;
  }

  /** The rule lines currently in force. */
  rules(): string[] {
    return [...this.watched].sort().flatMap((d) => this.rulesFor(d));
  }

  private rulesFor(target: string): string[] {
    const w = readWatchRule(target, this.opts.key);
    if (!this.opts.uring) return [w];
    let dir = false;
    try {
      dir = fs.statSync(target).isDirectory();
    } catch {
      // gone: removal rules are built from what was recorded at add time
      dir = this.dirs.has(target);
    }
    if (dir) this.dirs.add(target);
    return [w, uringWatchRule(target, this.opts.key, dir)];
  }

  /** Compares the disk with what is watched; reports and applies the difference. */
  scan(): WatchRuleChange {
    const now = new Set(this.opts.list());
    const add: string[] = [];
    const remove: string[] = [];
    for (const d of now) if (!this.watched.has(d)) add.push(d);
    for (const d of this.watched) if (!now.has(d)) remove.push(d);
    for (const d of add) this.watched.add(d);
    for (const d of remove) this.watched.delete(d);
    const change = {
      add: add.sort().flatMap((d) => this.rulesFor(d)),
      remove: remove.sort().flatMap((d) => this.rulesFor(d)),
    };
    for (const d of remove) this.dirs.delete(d);
    if (change.add.length > 0 || change.remove.length > 0) this.opts.onChange(change);
    return change;
  }

  start(): void {
    this.scan();
    this.timer = setInterval(() => {
      this.armFsWatches();
      this.scan();
    }, this.rescanMs);
    this.timer.unref();
    this.armFsWatches();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.timer = null;
    this.settleTimer = null;
    for (const w of this.fsWatchers.values()) w.close();
    this.fsWatchers.clear();
  }

  private armFsWatches(): void {
    for (const dir of this.opts.parents()) {
      if (this.fsWatchers.has(dir)) continue;
      try {
        const w = fs.watch(dir, () => this.scheduleSettledScan());
        w.on('error', () => {
          w.close();
          this.fsWatchers.delete(dir);
        });
        this.fsWatchers.set(dir, w);
      } catch {
        // Not there (yet): the periodic rescan covers it.
      }
    }
  }

  private scheduleSettledScan(): void {
    if (this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.armFsWatches();
      this.scan();
    }, this.settleMs);
    this.settleTimer.unref();
  }
}
