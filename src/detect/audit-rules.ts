/**
 * The kernel audit rules the agent installs, derived from the enabled detection rules.
 *
 * Designed for a busy node: no rule audits every open(). Execs and connects are audited whole
 * (they are rare compared to opens, and argv/sockaddr are where most indicators live); file reads
 * are caught by `-w` watches on credential files that exist on this node, and — added at run time
 * by PodVolumeWatcher — one watch per pod token volume. `-w` lines for paths that do not exist are
 * dropped (auditctl refuses a watch whose parent directory is missing), and `*` in a watch path is
 * expanded against the file system (e.g. /home/* /.kube/config).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uringWatchRule } from '../audit/rules';
import type { LoadedRule } from './rule-loader';

export interface AuditRuleOptions {
  pathExists?: (p: string) => boolean;
  listDir?: (dir: string) => string[];
  isDirectory?: (p: string) => boolean;
  /** Also audit io_uring opens of each watched path (the io_uring filter list). Default true. */
  uring?: boolean;
}

function defaultIsDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function defaultListDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Expands `*` segments of an absolute path against the file system. */
export function expandWatchPath(p: string, listDir: (dir: string) => string[]): string[] {
  const segs = p.split('/').filter((s) => s.length > 0);
  let bases = ['/'];
  for (const seg of segs) {
    const next: string[] = [];
    if (!seg.includes('*')) {
      for (const b of bases) next.push(path.posix.join(b, seg));
    } else {
      const re = new RegExp('^' + seg.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
      for (const b of bases) for (const n of listDir(b).sort()) if (re.test(n)) next.push(path.posix.join(b, n));
    }
    bases = next;
  }
  return bases;
}

export function buildAuditRules(rules: readonly Pick<LoadedRule, 'enabled' | 'audit_rules'>[], opts: AuditRuleOptions = {}): string[] {
  const exists = opts.pathExists ?? ((p: string) => fs.existsSync(p));
  const listDir = opts.listDir ?? defaultListDir;
  const isDir = opts.isDirectory ?? defaultIsDirectory;
  const uring = opts.uring ?? true;
  const syscalls: string[] = [];
  const watches: string[] = [];
  const seen = new Set<string>();
  const add = (list: string[], line: string): void => {
    const norm = line.trim().replace(/\s+/g, ' ');
    if (seen.has(norm)) return;
    seen.add(norm);
    list.push(norm);
  };
  for (const r of rules) {
    if (!r.enabled) continue;
    for (const line of r.audit_rules) {
      const m = /^-w\s+(\S+)\s+(.*)$/.exec(line.trim());
      if (!m) {
        if (uring || !/^-a\s+\S*io_uring/.test(line.trim())) add(syscalls, line);
        continue;
      }
      const target = m[1] as string;
      const key = /-k\s+(\S+)\s*$/.exec(m[2] as string)?.[1];
      const reads = /-p\s+\S*r/.test(m[2] as string);
      const paths = target.includes('*') ? expandWatchPath(target, listDir) : [target];
      for (const p of paths) {
        if (!exists(p)) continue;
        add(watches, `-w ${p} ${m[2] as string}`);
        if (uring && reads && key) add(watches, uringWatchRule(p, key, isDir(p)));
      }
    }
  }
  return [...syscalls, ...watches];
}
