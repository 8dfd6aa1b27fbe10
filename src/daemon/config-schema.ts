/**
 * The agent's configuration schema (zod). Every object is strict: an unknown key is an error, because a
 * misspelt key silently falling back to a default is how an agent ends up not doing what its operator
 * thinks it does. Keys are snake_case, exactly as written in the YAML file.
 */
import { z } from 'zod';
import { shipOutputSchema } from '../ship/shipper';

export const DEFAULT_CONFIG_PATH = '/etc/credwatch/config.yaml';
export const DEFAULT_DB_PATH = '/var/lib/credwatch/findings.db';
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const AUDIT_MODES = ['auto', 'unicast', 'multicast'] as const;

/** "host:port", "[v6]:port" or "off". Parsed by parseListenAddress(). */
const LISTEN_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

export interface ListenAddress {
  host: string;
  port: number;
}

/** null means "off" (no metrics endpoint). Throws on anything else that is not host:port. */
export function parseListenAddress(text: string): ListenAddress | null {
  if (text === 'off') return null;
  const m = LISTEN_RE.exec(text);
  if (!m) throw new Error(`not host:port: ${text}`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`port out of range: ${port}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

const listenSchema = z.string().refine(
  (s) => {
    try {
      parseListenAddress(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected "HOST:PORT" (e.g. 127.0.0.1:9464, [::1]:9464) or "off"' },
);

const nonEmpty = z.string().min(1, 'expected a non-empty string');
const absolutePath = z.string().startsWith('/', 'expected an absolute path');
const id32 = z.number().int().min(0).max(4294967295);

const storageSchema = z.strictObject({
  path: absolutePath.default(DEFAULT_DB_PATH),
  retention_days: z.number().int().min(1).max(3650).default(30),
  /** Soft cap on the database size; retention trims the oldest delivered findings first (src/store/retention.ts). */
  max_mb: z.number().int().min(16).default(1024),
  /**
   * Hard cap on one finding's JSON size, in KiB: a finding over it is cut and marked `truncated`
   * before it is stored or shipped (src/detect/finding-cap.ts). Keep it under every receiver's body limit.
   */
  max_finding_kb: z.number().int().min(8).max(4096).default(64),
});

const auditSchema = z.strictObject({
  mode: z.enum(AUDIT_MODES).default('auto'),
  backlog_limit: z.number().int().min(64).max(1_048_576).default(8192),
  /**
   * Kernel's audit_backlog_wait_time, in jiffies as the kernel takes it (kernel default 60*HZ). Unset
   * means "leave the kernel's value alone". 0 means processes never wait for a full backlog; records
   * are dropped and counted in `lost` instead.
   */
  backlog_wait_time: z.number().int().min(0).max(2_147_483_647).optional(),
  /** "default" = the rules the detection pack asks for; or explicit auditctl-syntax rule lines. */
  rules: z
    .union([z.literal('default'), z.array(nonEmpty)], { error: 'expected "default" or a list of auditctl rule lines' })
    .default('default'),
  /**
   * Let the reader thread replace exec/connect events no rule can fire on by a compact process note
   * (native/triage.h; the spec is compiled from the rule pack). Off: every event takes the full path.
   */
  triage: z.boolean().default(true),
});

const allowSchema = z.strictObject({
  /** Executable paths whose activity never raises a finding (e.g. a backup agent). */
  exes: z.array(absolutePath).default([]),
  uids: z.array(id32).default([]),
  auids: z.array(id32).default([]),
  /** Image references or prefixes, e.g. "registry.k8s.io/kube-proxy". */
  container_images: z.array(nonEmpty).default([]),
  /** Full container ids or unique prefixes of at least 12 hex digits. */
  container_ids: z.array(z.string().regex(/^[0-9a-f]{12,64}$/, 'expected 12 to 64 lowercase hex digits')).default([]),
  /** Kubernetes namespaces. */
  namespaces: z.array(nonEmpty).default([]),
  /** Kubernetes user names (kube audit findings). */
  k8s_users: z.array(nonEmpty).default([]),
});

/** The token trail (src/detect/token-trail.ts): how long a stolen-token finding keeps taking requests. */
const tokenTrailSchema = z.strictObject({
  /** A trail's finding takes requests until this long after its last one (then a new finding opens). */
  window_seconds: z.number().int().min(1).max(7 * 86_400).default(600),
});

const detectionsSchema = z.strictObject({
  /** Extra rule pack directory, loaded after the built-in rules. */
  rules_dir: absolutePath.optional(),
  allow: allowSchema.prefault({}),
  token_trail: tokenTrailSchema.prefault({}),
});


/** "host:port" that must listen somewhere (not "off"). */
const listenOnSchema = listenSchema.refine((s) => s !== 'off', { message: 'expected "HOST:PORT" to listen on' });

/**
 * The API server's audit webhook backend (--audit-webhook-config-file) posting EventLists to us.
 * Always HTTPS with client certificates: the apiserver's kubeconfig for the webhook names a client
 * cert, and only certificates `client_ca_file` signed get in.
 */
const kubeWebhookSchema = z.strictObject({
  listen: listenOnSchema,
  /** URL path the apiserver posts to (the kubeconfig's server URL path). */
  path: z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, 'expected a URL path such as /audit').default('/'),
  tls: z.strictObject({
    cert_file: absolutePath,
    key_file: absolutePath,
    /** CA that signed the API server's webhook client certificate. */
    client_ca_file: absolutePath,
  }),
  /** Largest accepted POST body (the apiserver's default batch is up to 400 events). */
  max_body_bytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(32 * 1024 * 1024),
});

/** One kube-apiserver audit source: a log file to follow, or a webhook to receive. */
const kubeAuditSourceSchema = z
  .strictObject({
    path: absolutePath.optional(),
    webhook: kubeWebhookSchema.optional(),
  })
  .refine((s) => (s.path === undefined) !== (s.webhook === undefined), { message: 'give either path (an audit log file) or webhook, not both or neither' });

const metricsSchema = z.strictObject({
  listen: listenSchema.default(DEFAULT_METRICS_LISTEN),
});

const logSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
});

export const configSchema = z.strictObject({
  storage: storageSchema.prefault({}),
  audit: auditSchema.prefault({}),
  detections: detectionsSchema.prefault({}),
  ship: z.array(shipOutputSchema).default([]),
  kube_audit: z.array(kubeAuditSourceSchema).default([]),
  metrics: metricsSchema.prefault({}),
  log: logSchema.prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
