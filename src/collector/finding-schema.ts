/**
 * What the collector accepts as a finding: every field typed and bounded. The body comes from an agent,
 * but an agent can be compromised (or a token stolen), so each line is treated as attacker-written.
 * Only the parsed value is stored: unknown keys are dropped, so nothing unchecked (deep nesting, a
 * string where an object is expected) can reach the database or a reader such as
 * `credwatch findings --collector`.
 *
 * Sizes are generous for honest findings (the agent caps a finding's encoded size itself) and the whole
 * line is also bounded by max_body_bytes; they exist so that no single field can be unbounded.
 *
 * This zod schema is the one source of truth: the collector's hot path runs a validator compiled from
 * it (finding-validator.ts), the rest (tests, the collector's own linked findings) parse with it.
 */
import { z } from 'zod';
import { SEVERITIES } from '../model/finding';

/** ISO 8601 with a time zone, as the agent writes it (Date#toISOString or an RFC 3339 offset). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const isValidDate = (s: string): boolean => !Number.isNaN(Date.parse(s));
/** What `isoTime` accepts, as one test (the compiled validator's format for it). */
export const isIsoTime = (s: string): boolean => ISO_TIME.test(s) && isValidDate(s);
/**
 * The schema's one refinement (JSON Schema cannot say "a date that exists"): the compiled validator
 * (finding-validator.ts) finds this schema by identity and checks it as a format of its own.
 */
export const isoTime = z.string().max(40).regex(ISO_TIME, 'an ISO 8601 time with a zone').refine(isValidDate, 'a valid date');
const isoTimeNullable = () => isoTime.nullable();

/** A bounded string; `min` defaults to 0. */
const str = (max: number, min = 0) => z.string().min(min).max(max);
const nullableStr = (max: number) => str(max).nullable();
const int = z.number().int().min(-(2 ** 53)).max(2 ** 53);
const nullableInt = int.nullable();

/** One argument may be long (the kernel allows 128 KiB per string); the list is bounded too. */
const argv = z.array(str(131_072)).max(4096).nullable();

const processSchema = z.object({
  pid: nullableInt,
  ppid: nullableInt,
  exe: nullableStr(4096),
  comm: nullableStr(256),
  argv,
  cwd: nullableStr(4096),
  uid: nullableInt,
  user: nullableStr(256),
  auid: nullableInt,
  tty: nullableStr(64),
  interactive: z.boolean(),
  parents: z.array(z.object({ pid: int, exe: nullableStr(4096), argv })).max(64),
});

const containerSchema = z.object({
  id: str(256, 1),
  runtime: str(64),
  pod_uid: nullableStr(64),
});

const kubeSchema = z.object({
  user: nullableStr(1024),
  groups: z.array(str(1024)).max(256),
  impersonated_user: nullableStr(1024),
  verb: nullableStr(64),
  resource: nullableStr(256),
  subresource: nullableStr(256),
  namespace: nullableStr(256),
  name: nullableStr(1024),
  source_ips: z.array(str(64)).max(64),
  user_agent: nullableStr(1024),
  response_code: nullableInt,
  audit_id: nullableStr(128),
});

/** Token claims (never a token): bounded names and ISO times, as src/kube/token-claims.ts writes them. */
const tokenSchema = z.object({
  jti: nullableStr(128),
  service_account: nullableStr(256),
  namespace: nullableStr(256),
  pod: nullableStr(256),
  pod_uid: nullableStr(64),
  node: nullableStr(256),
  issued: isoTimeNullable(),
  expires: isoTimeNullable(),
  kind: z.enum(['bound', 'legacy', 'other']),
  secret_name: nullableStr(256).optional(),
  from: z.enum(['file', 'api-request']),
  // Where the token's pod lives (addresses the reading agent saw): the fleet join's "away" test.
  home: z
    .object({
      node: z.array(str(64)).max(64),
      pod: z.array(str(64)).max(64).nullable(),
      cut: z.number().int().min(0).max(2 ** 31),
    })
    .optional(),
});

/** The watched object the event touched (src/enrich/watched-objects.ts): the owner, not the reader. */
const objectSchema = z.object({
  class: str(64, 1),
  pod_uid: nullableStr(64),
  container_id: nullableStr(256),
  via: z.enum(['inode', 'key']),
  foreign: z.boolean().nullable(),
});

const evidenceSchema = z.object({
  event_id: str(256),
  time: str(64),
  role: str(1024),
  records: z.array(z.object({ type: str(64), text: str(1_048_576) })).max(1024),
});


export const ingestedFindingSchema = z.object({
  id: str(200, 1),
  rule: str(128, 1),
  title: str(1024),
  description: str(16_384).default(''),
  severity: z.enum(SEVERITIES),
  score: z.number().finite().min(0).max(1_000_000).default(0),
  confidence: z.enum(['low', 'medium', 'high']).default('medium'),
  covers: z.array(str(64)).max(64).default([]),
  mitre: z.array(str(64)).max(64).default([]),
  time: isoTime,
  host: str(253, 1),
  source: z.enum(['audit', 'kube-audit']),
  indicators: z.array(str(128)).max(256).default([]),
  process: processSchema.nullable().default(null),
  container: containerSchema.nullable().default(null),
  object: objectSchema.optional(),
  kube: kubeSchema.nullable().default(null),
  token: tokenSchema.optional(),
  evidence: z.array(evidenceSchema).max(64).default([]),
  // Incidents (a finding re-sent as it grows): optional; a higher revision replaces the stored one.
  rules: z.array(str(128, 1)).max(256).optional(),
  incident: z.object({ actor: str(1024), object: str(1024) }).optional(),
  revision: z.number().int().min(0).max(2 ** 31).optional(),
  count: z.number().int().min(0).max(2 ** 53).optional(),
  first_seen: isoTime.optional(),
  last_seen: isoTime.optional(),
  // The agent cut the finding to its size cap (src/detect/finding-cap.ts): which fields, from what size.
  truncated: z.object({ fields: z.array(str(128)).max(64), original_bytes: int.min(0) }).optional(),
});

export type IngestedFinding = z.output<typeof ingestedFindingSchema>;

/**
 * A finding with the JSON text the collector stores and serves for it: encoded once, where it was
 * validated, so neither the store nor the token join encodes it again. The text is always this
 * encoding of the cleaned value, never the agent's own line: the column is plain text served as it is
 * to any reader, and a line can mean different things to different JSON parsers (a key given twice,
 * `1.0` for an integer) even when it validated.
 */
export interface EncodedFinding {
  finding: IngestedFinding;
  /** JSON.stringify(finding): one line (a newline in a string is written \n). */
  json: string;
}

export const encodeFinding = (finding: IngestedFinding): EncodedFinding => ({ finding, json: JSON.stringify(finding) });
