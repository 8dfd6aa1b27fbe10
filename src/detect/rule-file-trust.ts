/**
 * Rule files decide what a root daemon reports and what it ignores: whoever can write them can blind
 * it. Like the configuration, a user rules directory and every file in it must belong to root (or to
 * the user running credwatch, for unprivileged `rules check` and replay) and must not be group- or
 * world-writable; an entry that is a symlink must resolve inside the directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class RuleTrustError extends Error {
  /** A rule problem is a configuration error: exit 2 wherever it is met (run, rules check, config check). */
  readonly exitCode = 2;
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'RuleTrustError';
  }
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === (process.geteuid?.() ?? 0);
}

/** Throws RuleTrustError when a stat says someone other than root (or us) could change the file. */
export function assertTrusted(file: string, st: fs.Stats, what: string): void {
  if (!trustedOwner(st.uid)) {
    throw new RuleTrustError(file, `refusing a ${what} owned by uid ${st.uid} (must be root-owned); run: chown root ${file}`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new RuleTrustError(file, `refusing a group- or world-writable ${what} (mode ${octal(st.mode)}); run: chmod go-w ${file}`);
  }
}

/** The rules directory itself: exists, is a directory, trusted. */
export function assertTrustedDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new RuleTrustError(dir, code === 'ENOENT' ? 'rules directory does not exist' : `cannot read rules directory: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) throw new RuleTrustError(dir, 'rules_dir is not a directory');
  assertTrusted(dir, st, 'rules directory');
}

/**
 * Reads one rule file of a trusted directory. A symlink is followed only when its target stays
 * inside the directory; the mode and owner are checked on the opened descriptor (no swap between
 * check and read).
 */
export function readTrustedRuleFile(file: string, dir: string): string {
  const lst = fs.lstatSync(file);
  if (lst.isSymbolicLink()) {
    const real = fs.realpathSync(file);
    const realDir = fs.realpathSync(dir);
    if (path.relative(realDir, real).startsWith('..') || path.isAbsolute(path.relative(realDir, real))) {
      throw new RuleTrustError(file, `refusing a symlink out of the rules directory (to ${real})`);
    }
  }
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOCTTY);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new RuleTrustError(file, 'not a regular file');
    assertTrusted(file, st, 'rule file');
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}
