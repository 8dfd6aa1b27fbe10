/** Types of postgres.cjs (a throwaway PostgreSQL 15 server for tests and the fleet bench). */
export interface PgConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface TestPostgres {
  dir: string;
  port: number;
  user: string;
  password: string;
  /** postgres://USER@127.0.0.1:PORT/postgres, without the password. */
  url: string;
  urlFor(db: string): string;
  connection(database?: string): PgConnection;
  psql(sql: string, database?: string): string;
  createDatabase(name: string): string;
  running(): boolean;
  pid(): number | null;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  log(): string;
  destroy(): Promise<void>;
}

export interface StartOptions {
  user?: string;
  password?: string;
  fsync?: boolean;
  port?: number;
  settings?: Record<string, string>;
  maxSeconds?: number;
  /** Serve TLS with this certificate and key (copied into the server's directory). */
  ssl?: { certFile: string; keyFile: string };
}

export function startPostgres(opts?: StartOptions): Promise<TestPostgres>;
export function unavailableReason(): string | null;
export function freePort(): Promise<number>;
export const PG_BIN: string;
