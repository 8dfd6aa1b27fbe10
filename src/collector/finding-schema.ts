/**
 * What the collector accepts as a finding: every field typed and bounded. The body comes from an agent,
 * but an agent can be compromised (or a token stolen), so each line is treated as attacker-written.
 * Only the parsed value is stored: unknown keys are dropped, so nothing unchecked (deep nesting, a
 * string where an object is expected) can reach the database or a reader such as
 * `credwatch findings --collector`.
 *
 * Sizes are generous for honest findings (the agent caps a finding's encoded size itself) and the whole
 * line is also bounded by max_body_bytes; they exist so that no single field can be unbounded.
 */
import { z } from 'zod';
import { SEVERITIES } from '../model/finding';

/** ISO 8601 with a time zone, as the agent writes it (Date#toISOString or an RFC 3339 offset). */
const isoTime = z.string().max(40).regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/, 'an ISO 8601 time with a zone').refine((s) => !Number.isNaN(Date.parse(s)), 'a valid date');
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
  kube: kubeSchema.nullable().default(null),
  token: tokenSchema.optional(),
  evidence: z.array(evidenceSchema).max(64).default([]),
  // Incidents (a finding re-sent as it grows): optional; a higher revision replaces the stored one.
  revision: z.number().int().min(0).max(2 ** 31).optional(),
  count: z.number().int().min(0).max(2 ** 53).optional(),
  first_seen: isoTime.optional(),
  last_seen: isoTime.optional(),
  // The agent cut the finding to its size cap (src/detect/finding-cap.ts): which fields, from what size.
  truncated: z.object({ fields: z.array(str(128)).max(64), original_bytes: int.min(0) }).optional(),
});

export type IngestedFinding = z.output<typeof ingestedFindingSchema>;

/** The first problem, as "field "container.id": expected string" (short, no input echoed). */
export function describeSchemaProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid finding';
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `field "${path.slice(0, 120)}": ${issue.message.slice(0, 200)}`;
}
