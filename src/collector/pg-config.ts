/**
 * `storage.url` (PostgreSQL) in the collector config: checked at load time, turned into node-postgres
 * pool options at open time. The password is a secret from start to end: it may come from
 * `password_env`, `password_file` (read when the pool opens, so systemd credentials work) or the URL
 * (only in a file no group or other can read); it is moved out of the URL at once, kept in a `Secret`
 * that prints as [redacted], and no problem message ever quotes the URL.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { PoolConfig } from 'pg';
import type { ConfigProblem } from '../daemon/config-errors';

/** A string that never shows itself in logs, JSON or inspection; `reveal()` is the only way out. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface PgStorageSettings {
  /** postgres://user@host:port/db, without the password: safe to log. */
  url: string;
  password?: Secret;
  passwordFile?: string;
  sslmode: SslMode;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  partitionsAheadDays: number;
}

/** What the zod schema gives for `storage` (see config.ts). */
export interface StorageInput {
  url?: string;
  sslmode: SslMode;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  password_env?: string;
  password_file?: string;
  pool_max: number;
  connect_timeout_ms: number;
  statement_timeout_ms: number;
  partitions_ahead_days: number;
}

const PG_ONLY_KEYS = ['sslmode', 'ca_file', 'cert_file', 'key_file', 'password_env', 'password_file', 'pool_max', 'connect_timeout_ms', 'statement_timeout_ms', 'partitions_ahead_days'];

type Problem = Omit<ConfigProblem, 'line' | 'col'> & { key: string[] };

/**
 * Checks the PostgreSQL part of `storage`. `rawKeys` are the keys the file set (defaults aside);
 * `fileMode` the config file's mode, when it is a file.
 */
export function resolvePgStorage(s: StorageInput, rawKeys: string[], env: Record<string, string | undefined>, fileMode?: number): { settings?: PgStorageSettings; problems: Problem[] } {
  const problems: Problem[] = [];
  const at = (key: string, message: string): void => {
    problems.push({ path: `storage.${key}`, key: ['storage', key], message });
  };
  if (s.url === undefined) {
    for (const k of PG_ONLY_KEYS) if (rawKeys.includes(k)) at(k, 'applies to PostgreSQL only: set storage.url, or remove it');
    return { problems };
  }
  if (rawKeys.includes('path')) at('path', 'give storage.path (SQLite) or storage.url (PostgreSQL), not both');
  let u: URL;
  try {
    u = new URL(s.url);
  } catch {
    // Never quote the value: it may hold a password.
    at('url', 'expected postgres://USER@HOST:PORT/DATABASE (the value is not a URL; it is not shown, it may hold a password)');
    return { problems };
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') at('url', 'expected a postgres:// or postgresql:// URL');
  if (u.hostname === '' && !u.searchParams.has('host')) at('url', 'names no host');
  for (const key of u.searchParams.keys()) {
    if (key !== 'host' && key !== 'application_name') at('url', `the URL's "?${key.slice(0, 40)}=" is not read here; use the storage.* keys (sslmode, ca_file, password_env, ...)`);
  }
  let password: Secret | undefined;
  const sources = [u.password !== '', s.password_env !== undefined, s.password_file !== undefined].filter(Boolean).length;
  if (sources > 1) at('url', 'give the password one way only: in the URL, storage.password_env or storage.password_file');
  if (u.password !== '') {
    password = new Secret(decodeURIComponent(u.password));
    u.password = '';
    if (fileMode !== undefined && (fileMode & 0o044) !== 0) {
      at('url', 'this URL holds a password and the file is readable by group or others; chmod 600 the file, or use storage.password_env / password_file');
    }
  }
  if (s.password_env !== undefined) {
    const v = env[s.password_env];
    if (v === undefined || v === '') at('password_env', `environment variable ${s.password_env} is not set`);
    else password = new Secret(v);
  }
  if ((s.cert_file === undefined) !== (s.key_file === undefined)) at(s.cert_file === undefined ? 'key_file' : 'cert_file', 'cert_file and key_file go together');
  if (s.sslmode === 'disable' && (s.ca_file !== undefined || s.cert_file !== undefined)) at('sslmode', 'is "disable" but TLS files are set; use verify-full');
  const settings: PgStorageSettings = {
    url: u.toString(),
    ...(password ? { password } : {}),
    ...(s.password_file !== undefined ? { passwordFile: s.password_file } : {}),
    sslmode: s.sslmode,
    ...(s.ca_file !== undefined ? { caFile: s.ca_file } : {}),
    ...(s.cert_file !== undefined ? { certFile: s.cert_file } : {}),
    ...(s.key_file !== undefined ? { keyFile: s.key_file } : {}),
    poolMax: s.pool_max,
    connectTimeoutMs: s.connect_timeout_ms,
    statementTimeoutMs: s.statement_timeout_ms,
    partitionsAheadDays: s.partitions_ahead_days,
  };
  return { settings, problems };
}

function readOrThrow(what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read storage.${what} ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** node-postgres pool options; reads password_file and the TLS files now. */
export function pgPoolConfig(s: PgStorageSettings): PoolConfig {
  const u = new URL(s.url);
  const host = u.searchParams.get('host') ?? decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1');
  let password = s.password?.reveal();
  if (s.passwordFile !== undefined) password = readOrThrow('password_file', s.passwordFile).replace(/\r?\n$/, '');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username);
  let ssl: PoolConfig['ssl'] = false;
  if (s.sslmode !== 'disable') {
    ssl = {
      // require: encrypted, not verified (libpq's meaning); verify-ca: the chain; verify-full: chain and name.
      rejectUnauthorized: s.sslmode !== 'require',
      ...(s.caFile !== undefined ? { ca: readOrThrow('ca_file', s.caFile) } : {}),
      ...(s.certFile !== undefined ? { cert: readOrThrow('cert_file', s.certFile) } : {}),
      ...(s.keyFile !== undefined ? { key: readOrThrow('key_file', s.keyFile) } : {}),
      ...(s.sslmode === 'verify-ca' || s.sslmode === 'require' ? { checkServerIdentity: () => undefined } : {}),
    };
  }
  return {
    host,
    port: u.port === '' ? 5432 : Number(u.port),
    ...(database !== '' ? { database } : {}),
    ...(user !== '' ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ssl,
    max: s.poolMax,
    connectionTimeoutMillis: s.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: s.statementTimeoutMs,
    application_name: u.searchParams.get('application_name') ?? 'credwatch-collector',
    keepAlive: true,
  };
}
