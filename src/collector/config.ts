/**
 * The collector's YAML configuration (`credwatch collector --config FILE`, default
 * /etc/credwatch/collector.yaml). Validated with zod; errors name FILE:LINE, the key and what was
 * expected (the daemon config's error helpers, reused), exit 2. TLS is not optional: without a
 * certificate and key the collector refuses to start.
 *
 *   listen: 127.0.0.1:8443            # loopback by default: exposing it is a decision, not an accident
 *   tls: { cert_file: ..., key_file: ..., client_ca_file: ..., require_client_cert: false }
 *   agents:                           # who may talk to it
 *     - agent: node-a                 # also the CN of node-a's client certificate, if it uses one
 *       token_sha256: 5e88...         # or token_env: VAR (or token: literal, in a file only root reads)
 *       roles: [ingest]               # ingest (default) and/or query
 *       hosts: [node-a]               # optional: the only `host` its findings may name
 *   storage: { path: /var/lib/credwatch-collector/collector.db, retention_days: 90 }
 *   # or PostgreSQL (any number of replicas):
 *   # storage: { url: postgres://credwatch@db:5432/credwatch, password_env: PGPASSWORD_VAR, sslmode: verify-full, ca_file: ... }
 *   max_body_bytes: 8388608
 *   rate_limit: { requests_per_second: 20, burst: 40 }
 *   log: { level: info }
 */
import * as fs from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError, locate, yamlSyntaxProblems, zodProblems, type ConfigProblem } from '../daemon/config-errors';
import { parseListenAddress } from '../daemon/config-schema';
import type { PrincipalConfig } from './auth';
import { resolvePgStorage, type PgStorageSettings } from './pg-config';

export const DEFAULT_COLLECTOR_CONFIG_PATH = '/etc/credwatch/collector.yaml';
/**
 * Its own state directory, not the agent's /var/lib/credwatch: the collector runs as an unprivileged
 * (systemd dynamic) user that must own its directory, and must not own the root agent's state.
 */
export const DEFAULT_COLLECTOR_DB_PATH = '/var/lib/credwatch-collector/collector.db';
export const DEFAULT_COLLECTOR_LISTEN = '127.0.0.1:8443';

const absolutePath = z.string().startsWith('/', 'expected an absolute path');

const listenSchema = z.string().refine(
  (s) => {
    try {
      return parseListenAddress(s) !== null;
    } catch {
      return false;
    }
  },
  { message: 'expected "HOST:PORT", e.g. 127.0.0.1:8443 or [::]:8443' },
);

const principalSchema = z
  .strictObject({
    agent: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'letters, digits and _ . : @ - (at most 128)')
      // The collector stores its own (fleet token join) findings under this name.
      .refine((a) => a !== 'credwatch-collector', 'credwatch-collector is the collector\'s own name'),
    token: z.string().min(16, 'a token must be at least 16 characters').optional(),
    token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
    token_sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits (sha256sum of the token)').optional(),
    roles: z.array(z.enum(['ingest', 'query'])).min(1).default(['ingest']),
    /** Host names this agent may report findings for; absent = any (one agent per node: set it). */
    hosts: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine((p) => [p.token, p.token_env, p.token_sha256].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of token, token_env, token_sha256',
  });

export const collectorConfigSchema = z.strictObject({
  listen: listenSchema.default(DEFAULT_COLLECTOR_LISTEN),
  tls: z.strictObject(
    {
      cert_file: absolutePath,
      key_file: absolutePath,
      /** CA that signs agents' client certificates; enables certificate (mTLS) authentication. */
      client_ca_file: absolutePath.optional(),
      /** Refuse the TLS handshake without a valid client certificate (tokens alone are then not enough). */
      require_client_cert: z.boolean().default(false),
    },
    { error: 'TLS is required: set tls.cert_file and tls.key_file' },
  ),
  agents: z.array(principalSchema).min(1, 'at least one agent must be allowed in'),
  storage: z
    .strictObject({
      /** Embedded SQLite file (the default; one collector process). */
      path: absolutePath.default(DEFAULT_COLLECTOR_DB_PATH),
      /** postgres://user@host:port/db: PostgreSQL instead of SQLite (any number of replicas). */
      url: z.string().min(1).optional(),
      retention_days: z.number().int().min(1).max(3650).default(90),
      /** libpq's sslmode values that make sense without a fallback to plain text (no "prefer"/"allow"). */
      sslmode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('verify-full'),
      /** CA that signs the server's certificate (verify-ca / verify-full); else the system roots. */
      ca_file: absolutePath.optional(),
      /** Client certificate and key, for PostgreSQL `cert` authentication. */
      cert_file: absolutePath.optional(),
      key_file: absolutePath.optional(),
      /** The password: an environment variable's name, or a file (systemd LoadCredential=); never inline. */
      password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
      password_file: absolutePath.optional(),
      /** Connections per collector process (PostgreSQL's max_connections bounds replicas x pool_max). */
      pool_max: z.number().int().min(1).max(1000).default(10),
      /** Waiting longer than this for a connection answers 503 (database down or saturated). */
      connect_timeout_ms: z.number().int().min(100).max(120_000).default(5_000),
      /** Server-side statement_timeout for every query. */
      statement_timeout_ms: z.number().int().min(100).max(3_600_000).default(30_000),
      /** Daily partitions created ahead of today (findings up to max_clock_skew_seconds ahead land in them). */
      partitions_ahead_days: z.number().int().min(1).max(366).default(3),
    })
    .prefault({}),
  max_body_bytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
  /** Findings timed further ahead of the collector's clock are refused (400 naming the line). */
  max_clock_skew_seconds: z.number().int().min(1).max(7 * 86_400).default(900),
  /** Bytes of NDJSON per query page (at least one finding per page, whatever its size). */
  query_page_bytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024).default(16 * 1024 * 1024),
  limits: z
    .strictObject({
      /** Open connections at once; more are closed at accept. */
      max_connections: z.number().int().min(1).max(1_000_000).default(1024),
      /** A TLS handshake not finished in this time is dropped (sockets that never say hello). */
      tls_handshake_timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
      /** Request bodies held in memory at once (raw + decompressed); over it, 503 with Retry-After. */
      max_inflight_bytes: z.number().int().min(1024 * 1024).max(16 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
    })
    .prefault({}),
  rate_limit: z
    .strictObject({
      requests_per_second: z.number().positive().max(100_000).default(20),
      burst: z.number().int().min(1).max(100_000).default(40),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
});

export type CollectorConfigFile = z.output<typeof collectorConfigSchema>;

export interface CollectorConfig extends Omit<CollectorConfigFile, 'agents'> {
  agents: PrincipalConfig[];
  /** Set when storage.url names a PostgreSQL database (then storage.path is unused). */
  pg?: PgStorageSettings;
  source: string;
}

type Env = Record<string, string | undefined>;

/** Parses and validates collector config text; tokens from `token_env` are resolved from `env`. */
export function parseCollectorConfig(text: string, source: string, env: Env = process.env, fileMode?: number): CollectorConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(source, yamlSyntaxProblems(doc));
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: '', ...locate(doc, lc, []), message: 'expected a mapping of keys at the top level' }]);
  }
  // Say plainly why the collector will not start without TLS (zod would only say "expected object").
  const tls = (raw as Record<string, unknown>).tls as Record<string, unknown> | undefined;
  if (typeof tls !== 'object' || tls === null || tls.cert_file === undefined || tls.key_file === undefined) {
    throw new ConfigError(source, [
      {
        path: tls ? 'tls' : '',
        ...locate(doc, lc, tls ? ['tls'] : []),
        message: 'TLS is required: set tls.cert_file and tls.key_file (the collector never serves plain HTTP)',
      },
    ]);
  }
  const result = collectorConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(source, zodProblems(result.error.issues, doc, lc, collectorConfigSchema));
  const cfg = result.data;
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  const agents: PrincipalConfig[] = cfg.agents.map((a, i) => {
    if (seen.has(a.agent)) problems.push({ path: `agents[${i}].agent`, ...locate(doc, lc, ['agents', i, 'agent']), message: `agent "${a.agent}" is listed twice` });
    seen.add(a.agent);
    let token = a.token;
    if (a.token !== undefined && fileMode !== undefined && (fileMode & 0o004) !== 0) {
      problems.push({
        path: `agents[${i}].token`,
        ...locate(doc, lc, ['agents', i, 'token']),
        message: `this file holds a token and is world-readable; run chmod 600 ${source}, or use token_sha256 / token_env`,
      });
    }
    if (a.token_env !== undefined) {
      token = env[a.token_env];
      if (token === undefined || token === '') {
        problems.push({ path: `agents[${i}].token_env`, ...locate(doc, lc, ['agents', i, 'token_env']), message: `environment variable ${a.token_env} is not set` });
      }
    }
    if (token === undefined && a.token_sha256 === undefined && cfg.tls.client_ca_file === undefined) {
      problems.push({
        path: `agents[${i}]`,
        ...locate(doc, lc, ['agents', i]),
        message: 'this agent has no token and tls.client_ca_file is not set, so it could never authenticate',
      });
    }
    return { agent: a.agent, token, token_sha256: a.token_sha256, roles: a.roles, hosts: a.hosts };
  });
  if (cfg.tls.require_client_cert && cfg.tls.client_ca_file === undefined) {
    problems.push({ path: 'tls.require_client_cert', ...locate(doc, lc, ['tls', 'require_client_cert']), message: 'needs tls.client_ca_file' });
  }
  const rawStorage = (raw as Record<string, unknown>).storage;
  const rawKeys = typeof rawStorage === 'object' && rawStorage !== null ? Object.keys(rawStorage) : [];
  const pg = resolvePgStorage(cfg.storage, rawKeys, env, fileMode);
  for (const p of pg.problems) problems.push({ path: p.path, ...locate(doc, lc, p.key), message: p.message });
  if (problems.length) throw new ConfigError(source, problems);
  // The URL is kept without its password (pg.settings.url), so the config can be logged whole.
  const storage = pg.settings ? { ...cfg.storage, url: pg.settings.url } : cfg.storage;
  return { ...cfg, storage, agents, ...(pg.settings ? { pg: pg.settings } : {}), source };
}

export function loadCollectorConfig(path: string = DEFAULT_COLLECTOR_CONFIG_PATH, env: Env = process.env): CollectorConfig {
  let text: string;
  let mode: number;
  try {
    mode = fs.statSync(path).mode;
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(path, [{ path: '', message: `cannot read collector configuration: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}` }]);
  }
  if ((mode & 0o022) !== 0) {
    throw new ConfigError(path, [{ path: '', message: `refusing a group- or world-writable configuration file; run: chmod go-w ${path}` }]);
  }
  return parseCollectorConfig(text, path, env, mode);
}
