/**
 * openStore(): the one object the daemon, the shippers, the collector and the CLI use to reach the
 * findings database. A writer (the daemon) opens read-write; queries open read-only so that they can
 * never block or disturb the daemon's writes (WAL lets readers and the writer work concurrently).
 */
import type { Finding } from '../model/finding';
import type { FindingsQuery } from './types';
import { mapSqliteError, openDatabase, type Db } from './db';
import { FindingsTable } from './findings';
import { Outbox } from './outbox';
import { State } from './state';
import { enforceRetention, enforceRetentionAsync, liveBytes, type RetentionPolicy, type RetentionResult } from './retention';

export interface OpenStoreOptions {
  /** Query-only connection (fileMustExist; never creates, migrates or writes). Default false. */
  readonly?: boolean;
  /** Create the directory (0700) and file (0600) when missing. Default: !readonly. */
  create?: boolean;
  busyTimeoutMs?: number;
  /** PRAGMA quick_check at open; a damaged file fails with StoreOpenError kind 'corrupt'. */
  quickCheck?: boolean;
}

export interface FindingStore {
  readonly path: string;
  readonly readonly: boolean;
  /** The underlying connection, for tests and diagnostics (integrity_check). */
  readonly db: Db;
  readonly outbox: Outbox;
  readonly state: State;
  /** One transaction; findings whose id is already stored are skipped. Returns how many were new. */
  insertFindings(findings: Finding[]): number;
  /** Newest first. */
  queryFindings(q: FindingsQuery): Finding[];
  /** By id or unique id prefix, with evidence; throws AmbiguousIdError for a prefix matching several. */
  getFinding(idOrPrefix: string): Finding | null;
  countFindingsSince(ms: number): number;
  enforceRetention(policy: RetentionPolicy, nowMs: number): RetentionResult;
  enforceRetentionAsync(policy: RetentionPolicy, nowMs: number): Promise<RetentionResult>;
  /** Bytes held by live pages of the database file. */
  sizeBytes(): number;
  close(): void;
}

export function openStore(path: string, options: OpenStoreOptions = {}): FindingStore {
  const readonly = options.readonly ?? false;
  const db = openDatabase(path, { readonly, create: options.create ?? !readonly, busyTimeoutMs: options.busyTimeoutMs, quickCheck: options.quickCheck });
  const findings = new FindingsTable(db);
  const outbox = new Outbox(db, findings);
  const state = new State(db);
  return {
    path: db.name,
    readonly,
    db,
    outbox,
    state,
    insertFindings: (fs) => findings.insert(fs),
    queryFindings: (q) => findings.query(q),
    getFinding: (id) => findings.get(id),
    countFindingsSince: (ms) => findings.countSince(ms),
    enforceRetention: (policy, nowMs) => enforceRetention(db, policy, nowMs),
    enforceRetentionAsync: (policy, nowMs) => enforceRetentionAsync(db, policy, nowMs),
    sizeBytes: () => liveBytes(db),
    close: () => {
      if (db.open) db.close();
    },
  };
}

/**
 * Opens read-only, runs `fn`, closes. SQLite errors met while reading (a page found corrupt only when
 * the query reaches it) become StoreOpenErrors with an actionable message; other errors pass through.
 */
export function withReadOnlyStore<T>(path: string, fn: (store: FindingStore) => T): T {
  const store = openStore(path, { readonly: true });
  try {
    return fn(store);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw typeof code === 'string' && code.startsWith('SQLITE_') ? mapSqliteError(err, store.path) : err;
  } finally {
    store.close();
  }
}
