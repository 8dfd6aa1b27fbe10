/**
 * uid/gid -> names from /etc/passwd and /etc/group. Cached; the files are re-read when their mtime
 * changes, checked at most once per `recheckMs` so a hot path never stats per event.
 */
import * as fs from 'node:fs';

/** The kernel's "unset" loginuid. */
export const AUID_UNSET = 4294967295;

export interface UserDbOptions {
  passwdPath?: string;
  groupPath?: string;
  recheckMs?: number;
  now?: () => number;
}

interface NameFile {
  path: string;
  mtimeMs: number;
  names: Map<number, string>;
}

/** Parses passwd/group text: name:x:id:... — bad lines are skipped, the first name for an id wins. */
export function parseIdFile(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const parts = line.split(':');
    const name = parts[0];
    const id = Number(parts[2]);
    if (!name || !Number.isInteger(id) || names.has(id)) continue;
    names.set(id, name);
  }
  return names;
}

export class UserDb {
  private readonly users: NameFile;
  private readonly groups: NameFile;
  private readonly recheckMs: number;
  private readonly now: () => number;
  private lastCheck = -Infinity;

  constructor(opts: UserDbOptions = {}) {
    this.users = { path: opts.passwdPath ?? '/etc/passwd', mtimeMs: -1, names: new Map() };
    this.groups = { path: opts.groupPath ?? '/etc/group', mtimeMs: -1, names: new Map() };
    this.recheckMs = opts.recheckMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  userName(uid: number | null): string | null {
    if (uid === null) return null;
    this.refresh();
    return this.users.names.get(uid) ?? null;
  }

  groupName(gid: number | null): string | null {
    if (gid === null) return null;
    this.refresh();
    return this.groups.names.get(gid) ?? null;
  }

  private refresh(): void {
    const t = this.now();
    if (t - this.lastCheck < this.recheckMs) return;
    this.lastCheck = t;
    reloadIfChanged(this.users);
    reloadIfChanged(this.groups);
  }
}

function reloadIfChanged(f: NameFile): void {
  try {
    const st = fs.statSync(f.path);
    if (st.mtimeMs === f.mtimeMs) return;
    f.names = parseIdFile(fs.readFileSync(f.path, 'utf8'));
    f.mtimeMs = st.mtimeMs;
  } catch {
    // Missing file (minimal containers, tests): names stay unknown, which callers show as null.
  }
}

/** Normalises a raw auid: the unset value becomes null. */
export function normaliseAuid(auid: number | null | undefined): number | null {
  return auid === null || auid === undefined || auid === AUID_UNSET || auid === -1 ? null : auid;
}

/** A person at a terminal: a real tty and a real login uid. kubectl-exec'd commands have neither. */
export function isInteractive(tty: string | null, auid: number | null): boolean {
  return tty !== null && tty !== '(none)' && normaliseAuid(auid) !== null;
}
