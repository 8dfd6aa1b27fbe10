/**
 * Opening the findings database: file-system safety checks, pragmas and schema migrations.
 * Everything that can go wrong before the first query is reported here as a StoreOpenError carrying
 * exit code 1 (the CLI maps it like any runtime failure) and a message that says what to do.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from './migrations';

export type Db = Database.Database;

export const DEFAULT_DB_PATH = '/var/lib/credwatch/findings.db';

/** The database the CLI reads when no --db is given: $CREDWATCH_DB, else the default path. */
export function defaultDbPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CREDWATCH_DB && env.CREDWATCH_DB !== '' ? env.CREDWATCH_DB : DEFAULT_DB_PATH;
}

/** PRAGMA application_id of a credwatch findings database ("CWFD"); lets us tell our file from others. */
export const APPLICATION_ID = 0x43574644;

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

export interface OpenDatabaseOptions {
  /** Query-only connection: never writes, never creates, never migrates. */
  readonly?: boolean;
  /** Create the directory (0700) and the file (0600) when missing. Defaults to !readonly. */
  create?: boolean;
  /** How long a statement waits for a lock before failing with SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /**
   * Run PRAGMA quick_check before use (O(database size): seconds for hundreds of MB). The daemon uses
   * it at start so that a damaged file is reported once, clearly, instead of failing every write.
   */
  quickCheck?: boolean;
}

export type StoreOpenErrorKind = 'missing' | 'permissions' | 'not-credwatch' | 'corrupt' | 'schema' | 'io';

export class StoreOpenError extends Error {
  /** Matches src/cli/errors.ts: a runtime failure, exit code 1. */
  readonly exitCode = 1;
  constructor(
    readonly kind: StoreOpenErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StoreOpenError';
  }
}

export function openDatabase(file: string, options: OpenDatabaseOptions = {}): Db {
  const readonly = options.readonly ?? false;
  const create = options.create ?? !readonly;
  if (readonly && create) throw new Error('openDatabase: readonly and create are exclusive');
  const abs = path.resolve(file);

  ensureDirectory(path.dirname(abs), abs, create);
  const size = ensureFile(abs, create);
  if (size > 0) checkHeader(abs);
  else if (readonly) {
    throw new StoreOpenError('not-credwatch', `not a credwatch database: ${abs} (the file is empty)`);
  }

  let db: Db;
  try {
    db = new Database(abs, { readonly, fileMustExist: true, timeout: options.busyTimeoutMs ?? (readonly ? 2000 : 5000) });
  } catch (err) {
    throw mapSqliteError(err, abs);
  }
  try {
    // Identity first: nothing may be written to a file that turns out not to be ours.
    const empty = checkIdentity(db, abs, readonly);
    if (!readonly) {
      configureWriter(db, empty);
      migrate(db);
    }
    // Prepared statements elsewhere assume the schema exists; check once, cheaply, here.
    db.prepare('SELECT 1 FROM findings LIMIT 0').all();
    if (options.quickCheck) {
      const problems = db.pragma('quick_check(5)', { simple: false }) as { quick_check: string }[];
      if (problems.length !== 1 || problems[0]?.quick_check !== 'ok') {
        throw new StoreOpenError(
          'corrupt',
          `the findings database ${abs} is corrupt (${problems.map((p) => p.quick_check).join('; ')}); move it aside and restart the daemon`,
        );
      }
    }
  } catch (err) {
    db.close();
    throw err instanceof StoreOpenError ? err : mapSqliteError(err, abs);
  }
  return db;
}

function ensureDirectory(dir: string, file: string, create: boolean): void {
  let st = statOrNull(dir);
  if (!st) {
    if (!create) throw missingError(file);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o700); // umask could only have removed bits, but say exactly what we want
    st = fs.statSync(dir);
  }
  if (!st.isDirectory()) throw new StoreOpenError('io', `${dir} is not a directory (holding ${file})`);
  refuseIfWritableByOthers(dir, st, 'directory');
}

/** Returns the file size; creates an empty 0600 file when allowed. */
function ensureFile(file: string, create: boolean): number {
  const st = statOrNull(file);
  if (!st) {
    if (!create) throw missingError(file);
    // 'wx' fails if someone raced us to it: we never truncate an existing file.
    fs.closeSync(fs.openSync(file, 'wx', 0o600));
    fs.chmodSync(file, 0o600);
    return 0;
  }
  if (!st.isFile()) throw new StoreOpenError('not-credwatch', `not a credwatch database: ${file} (not a regular file)`);
  refuseIfWritableByOthers(file, st, 'file');
  restrictToOwner(file, st);
  return st.size;
}

/**
 * Findings hold command lines, pod names and evidence: a database (or its -wal/-shm, which SQLite
 * creates with the database's mode) that group or others can read is narrowed to 0600, and said so on
 * stderr as a process warning (the daemon's logger is not up yet when the store opens). A file this
 * user cannot chmod is refused.
 */
function restrictToOwner(file: string, st: fs.Stats): void {
  for (const [p, s] of [[file, st] as const, ...['-wal', '-shm'].map((x) => [file + x, statOrNull(file + x)] as const)]) {
    if (!s || (s.mode & 0o077) === 0) continue;
    const mode = (s.mode & 0o777).toString(8).padStart(4, '0');
    try {
      fs.chmodSync(p, 0o600);
    } catch (err) {
      throw new StoreOpenError(
        'permissions',
        `refusing to open the findings database: ${p} is readable by group or others (mode ${mode}) and cannot be changed (${(err as Error).message}); run: chmod 600 ${p}`,
      );
    }
    process.emitWarning(`findings database ${p} was readable by group or others (mode ${mode}); changed to 0600`, 'CredwatchWarning');
  }
}

function refuseIfWritableByOthers(p: string, st: fs.Stats, what: 'file' | 'directory'): void {
  // Anyone who can write the database (or swap it through its directory) can erase or forge findings:
  // that includes its owner, so the owner must be us or root (as ssh does for its key files).
  const euid = process.geteuid?.();
  if (euid !== undefined && st.uid !== euid && st.uid !== 0) {
    throw new StoreOpenError(
      'permissions',
      `refusing to open the findings database: ${what} ${p} is owned by uid ${st.uid}, neither root nor this user (uid ${euid})`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    const want = what === 'file' ? '0600' : '0700';
    throw new StoreOpenError(
      'permissions',
      `refusing to open the findings database: ${what} ${p} is group- or world-writable (mode ${mode}); run: chmod ${want} ${p}`,
    );
  }
}

function checkHeader(file: string): void {
  const head = Buffer.alloc(SQLITE_HEADER.length);
  let n = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new StoreOpenError('io', `cannot read ${file}: ${(err as Error).message}`);
  }
  if (n < head.length || !head.equals(SQLITE_HEADER)) {
    throw new StoreOpenError('not-credwatch', `not a credwatch database: ${file} (not an SQLite file; left untouched)`);
  }
}

function configureWriter(db: Db, empty: boolean): void {
  if (empty) {
    // auto_vacuum can only be chosen before the first table exists; INCREMENTAL lets retention give
    // space back to the file system in small steps instead of a blocking full VACUUM.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma(`application_id = ${APPLICATION_ID}`);
  }
  // WAL: readers (the CLI) never block the daemon's writes and vice versa.
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode syncs only at checkpoints: a crash or SIGKILL of the agent loses nothing that
  // was committed; only a power loss or kernel crash can roll back the last few transactions. That
  // trade keeps a commit cheap (no fsync per batch) on a node busy with other work.
  db.pragma('synchronous = NORMAL');
  // Keep the WAL file from staying large after a burst.
  db.pragma('journal_size_limit = 8388608');
}

/** Returns true for an empty database (no tables yet) that the writer may initialise. */
function checkIdentity(db: Db, file: string, readonly: boolean): boolean {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID) {
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
    // An SQLite file with no tables at all holds nothing to lose: the writer may adopt it.
    if (tables === 0 && !readonly) return true;
    const why = tables === 0 ? 'an empty SQLite file' : 'an SQLite file of another application';
    throw new StoreOpenError('not-credwatch', `not a credwatch database: ${file} (${why}; left untouched)`);
  }
  if (version > LATEST_SCHEMA_VERSION) {
    throw new StoreOpenError(
      'schema',
      `${file} has schema version ${version}, newer than this credwatch understands (${LATEST_SCHEMA_VERSION}); upgrade credwatch`,
    );
  }
  if (readonly && version < LATEST_SCHEMA_VERSION) {
    throw new StoreOpenError(
      'schema',
      `${file} has schema version ${version}, older than this credwatch (${LATEST_SCHEMA_VERSION}); start the daemon once to upgrade it`,
    );
  }
  return false;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreOpenError('io', `cannot stat ${p}: ${(err as Error).message}`);
  }
}

function missingError(file: string): StoreOpenError {
  return new StoreOpenError(
    'missing',
    `no findings database at ${file}; the daemon (credwatch run) creates it when it starts; use --db FILE to read another one`,
  );
}

/** Turns better-sqlite3 errors met while opening into messages an operator can act on. */
export function mapSqliteError(err: unknown, file: string): Error {
  const code = (err as { code?: unknown }).code;
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB') return new StoreOpenError('not-credwatch', `not a credwatch database: ${file} (${msg}; left untouched)`);
  if (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT')) {
    return new StoreOpenError('corrupt', `the findings database ${file} is corrupt (${msg}); move it aside and restart the daemon`);
  }
  if (typeof code === 'string' && (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_READONLY'))) {
    return new StoreOpenError('io', `cannot open the findings database ${file}: ${msg} (are you root?)`);
  }
  return new StoreOpenError('io', `cannot open the findings database ${file}: ${msg}`);
}
