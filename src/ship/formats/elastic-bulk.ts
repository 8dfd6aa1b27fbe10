/**
 * Elasticsearch / OpenSearch `_bulk`: `POST /_bulk`, `Content-Type: application/x-ndjson`, a `create`
 * action per finding (`create` is the only op data streams accept, and with `_id` = the finding id a
 * resend of an already stored finding is a 409 version conflict, which we count as delivered), then the
 * document in Elastic Common Schema field names. A 200 answer can still carry per-item failures
 * (`errors: true`): the items are read one by one, and only the leading run of stored items is acked, so
 * a failed finding is never acked and the order per output holds (later items that did get stored come
 * back as 409 on the resend).
 *
 * Incidents are sent again as they grow (a higher `revision`). `create` cannot overwrite, and data streams
 * refuse `index`, so each revision is its own document: `_id` is the finding id for the first revision
 * and `<id>-r<revision>` for later ones (a resend of one revision is still a 409). Every document
 * carries `credwatch.finding_id` and `credwatch.revision`; a receiver keeps the latest by collapsing
 * on `credwatch.finding_id` sorted by `credwatch.revision` descending (docs/shipping.md).
 */
import type { Finding } from '../../model/finding';
import { severityRank } from '../../model/finding';
import type { DeliveryOutcome, EncodeContext, EncodedRequest, OutputFormat } from './format';
import { excerpt, outcomeFromStatus } from './format';
import type { HttpResponse } from '../transport';

/** Data stream naming scheme `<type>-<dataset>-<namespace>`; works as a plain index name too. */
export const DEFAULT_ELASTIC_INDEX = 'logs-credwatch.finding-default';

/** ECS `event.severity` is a number whose meaning the source defines: ours is 1 (info) .. 5 (critical). */
export function ecsSeverity(f: Finding): number {
  return severityRank(f.severity) + 1;
}

const TECHNIQUE_NAMES: Record<string, string> = {
  T1552: 'Unsecured Credentials',
  'T1552.001': 'Credentials In Files',
  'T1552.007': 'Container API',
  T1613: 'Container and Resource Discovery',
  T1609: 'Container Administration Command',
  T1610: 'Deploy Container',
  T1611: 'Escape to Host',
  T1528: 'Steal Application Access Token',
};

const TACTIC_OF_TECHNIQUE: Record<string, { id: string; name: string }> = {
  T1552: { id: 'TA0006', name: 'Credential Access' },
  T1528: { id: 'TA0006', name: 'Credential Access' },
  T1613: { id: 'TA0007', name: 'Discovery' },
  T1609: { id: 'TA0002', name: 'Execution' },
  T1610: { id: 'TA0002', name: 'Execution' },
  T1611: { id: 'TA0004', name: 'Privilege Escalation' },
};

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function threatOf(mitre: readonly string[]): Record<string, unknown> | undefined {
  if (mitre.length === 0) return undefined;
  const techniques = uniq(mitre.map((m) => m.split('.')[0] ?? m));
  const subs = uniq(mitre.filter((m) => m.includes('.')));
  const tactics = uniq(techniques.map((t) => TACTIC_OF_TECHNIQUE[t]).filter((t): t is { id: string; name: string } => t !== undefined).map((t) => `${t.id}|${t.name}`));
  const threat: Record<string, unknown> = {
    framework: 'MITRE ATT&CK',
    technique: {
      id: techniques,
      name: techniques.map((t) => TECHNIQUE_NAMES[t] ?? t),
      reference: techniques.map((t) => `https://attack.mitre.org/techniques/${t}/`),
      ...(subs.length
        ? {
            subtechnique: {
              id: subs,
              name: subs.map((s) => TECHNIQUE_NAMES[s] ?? s),
              reference: subs.map((s) => `https://attack.mitre.org/techniques/${s.replace('.', '/')}/`),
            },
          }
        : {}),
    },
  };
  if (tactics.length) threat.tactic = { id: tactics.map((t) => t.split('|')[0]), name: tactics.map((t) => t.split('|')[1]) };
  return threat;
}

/** Drops undefined and null leaves so documents do not carry empty ECS fields. */
function compact(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'object' && !Array.isArray(v)) {
      const inner = compact(v as Record<string, unknown>);
      if (Object.keys(inner).length) out[k] = inner;
    } else out[k] = v;
  }
  return out;
}

/** Maps a finding to an ECS document. Fields ECS has no place for go under `credwatch.*`. */
export function toEcs(f: Finding): Record<string, unknown> {
  const p = f.process;
  const k = f.kube;
  const c = f.container;
  const parent = p?.parents[0];
  const doc: Record<string, unknown> = {
    '@timestamp': f.time,
    message: f.title,
    ecs: { version: '8.11.0' },
    event: {
      kind: 'alert',
      category: ['intrusion_detection', f.source === 'kube-audit' ? 'web' : 'process'],
      type: ['info'],
      id: f.id,
      severity: ecsSeverity(f),
      risk_score: f.score,
      module: 'credwatch',
      dataset: 'credwatch.finding',
      provider: f.source,
      action: k?.verb ?? undefined,
      // An incident spans first_seen .. last_seen; `count` events were merged into it.
      start: f.first_seen,
      end: f.last_seen,
    },
    rule: { id: f.rule, name: f.title, description: f.description, ruleset: 'credwatch' },
    threat: threatOf(f.mitre),
    host: { name: f.host, hostname: f.host },
    process: p
      ? {
          pid: p.pid,
          name: p.comm,
          executable: p.exe,
          args: p.argv,
          args_count: p.argv ? p.argv.length : undefined,
          command_line: p.argv ? p.argv.join(' ') : undefined,
          working_directory: p.cwd,
          interactive: p.interactive,
          parent: { pid: p.ppid ?? parent?.pid, executable: parent?.exe, args: parent?.argv ?? undefined },
          user: { id: p.uid !== null ? String(p.uid) : undefined, name: p.user },
        }
      : undefined,
    container: c ? { id: c.id, runtime: c.runtime } : undefined,
    orchestrator:
      k || c?.pod_uid
        ? {
            type: 'kubernetes',
            namespace: k?.namespace,
            resource: {
              type: k?.resource ?? (c?.pod_uid ? 'pod' : undefined),
              name: k?.name,
              id: k ? undefined : c?.pod_uid,
            },
          }
        : undefined,
    user: k?.user ? { name: k.user } : p?.user ? { name: p.user, id: p.uid !== null ? String(p.uid) : undefined } : undefined,
    source: k?.source_ips[0] ? { ip: k.source_ips[0] } : undefined,
    related: k?.source_ips.length ? { ip: k.source_ips } : undefined,
    user_agent: k?.user_agent ? { original: k.user_agent } : undefined,
    http: k?.response_code != null ? { response: { status_code: k.response_code } } : undefined,
    credwatch: {
      finding_id: f.id,
      revision: f.revision ?? 1,
      rules: f.rules ?? [f.rule],
      count: f.count,
      incident: f.incident,
      severity: f.severity,
      score: f.score,
      confidence: f.confidence,
      covers: f.covers,
      mitre: f.mitre,
      indicators: f.indicators,
      source: f.source,
      process: p ? { auid: p.auid, tty: p.tty, parents: p.parents } : undefined,
      container: c?.pod_uid ? { pod_uid: c.pod_uid } : undefined,
      // Claims of the service-account token (never the token): a SIEM joins reads and requests on jti.
      token: f.token,
      kube: k
        ? {
            groups: k.groups,
            impersonated_user: k.impersonated_user,
            subresource: k.subresource,
            audit_id: k.audit_id,
          }
        : undefined,
      evidence: f.evidence,
    },
  };
  return compact(doc);
}

/** The document id of one revision of a finding (see the header). */
export function bulkDocId(f: Pick<Finding, 'id' | 'revision'>): string {
  return f.revision !== undefined && f.revision > 1 ? `${f.id}-r${f.revision}` : f.id;
}

export function encodeBulk(findings: readonly Finding[], index: string): string {
  let out = '';
  for (const f of findings) {
    out += `${JSON.stringify({ create: { _index: index, _id: bulkDocId(f) } })}\n${JSON.stringify(toEcs(f))}\n`;
  }
  return out;
}

interface BulkItemResult {
  status?: number;
  error?: { type?: string; reason?: string };
}

/** Reads a `_bulk` answer: how many leading items are stored (201/200, or 409 = already there). */
export function interpretBulk(res: HttpResponse, sent: number): DeliveryOutcome {
  const byStatus = outcomeFromStatus(res, 'Elasticsearch');
  if (byStatus) return byStatus;
  let parsed: { errors?: unknown; items?: unknown };
  try {
    parsed = JSON.parse(res.body) as typeof parsed;
  } catch {
    return { kind: 'rejected', message: `Elasticsearch answered HTTP ${res.status} with a body that is not a _bulk answer: ${excerpt(res.body)}` };
  }
  if (!Array.isArray(parsed.items) || parsed.items.length !== sent) {
    return { kind: 'rejected', message: `Elasticsearch _bulk answer has ${Array.isArray(parsed.items) ? parsed.items.length : 'no'} items for ${sent} sent` };
  }
  if (parsed.errors === false) return { kind: 'ok' };
  for (let i = 0; i < parsed.items.length; i++) {
    const entry = parsed.items[i] as Record<string, BulkItemResult>;
    const item = entry.create ?? Object.values(entry)[0] ?? {};
    const status = item.status ?? 0;
    if ((status >= 200 && status < 300) || status === 409) continue;
    const why = `${item.error?.type ?? 'error'}: ${item.error?.reason ?? `status ${status}`}`;
    const message = `Elasticsearch refused item ${i + 1} of ${sent} (HTTP ${status}, ${why})`;
    if (i > 0) return { kind: 'partial', delivered: i, message };
    if (status === 429 || status >= 500) return { kind: 'transient', message };
    if (status === 401 || status === 403) return { kind: 'auth', message };
    if (status === 413) return { kind: 'too-large', message };
    return { kind: 'rejected', message };
  }
  return { kind: 'ok' };
}

export const elasticBulkFormat: OutputFormat = {
  encode(findings: readonly Finding[], ctx: EncodeContext): EncodedRequest {
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    // Elasticsearch API keys go as `ApiKey <base64 id:key>` (the "encoded" value Kibana shows).
    if (ctx.token !== undefined) headers.authorization = `ApiKey ${ctx.token}`;
    return { path: '/_bulk', headers, body: encodeBulk(findings, ctx.index ?? DEFAULT_ELASTIC_INDEX) };
  },
  interpret(res: HttpResponse, findings: readonly Finding[]): DeliveryOutcome {
    return interpretBulk(res, findings.length);
  },
};
