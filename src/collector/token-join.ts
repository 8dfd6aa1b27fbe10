/**
 * The token trail across a fleet. Reads happen on workers, requests are logged on the control plane:
 * a worker's agent ships a token-read finding carrying the token's claims (token.jti, from the file),
 * the control-plane agent ships kube-audit findings carrying the request's credential (token.jti, from
 * the API server's record: a K rule, or "used away from its node"). The collector joins the two by jti
 * and stores one linked finding per stolen token read.
 *
 * The join's state is in the store, not in a process: every ingested batch records its sightings (reads
 * and requests, keyed by jti, agent and finding id) in the same transaction as the findings, so with any
 * number of stateless replicas a read ingested by one and a request ingested by another are joined.
 * After the commit the replica reads the trail of each jti the batch touched and builds the linked
 * findings from it. Their id is fixed by the read (agent, finding id, jti) and their revision is the
 * number of requests joined, so two replicas that build the same link store it once (an equal revision
 * is a duplicate) and a link that grew replaces the smaller one. Why no lock is needed: both sightings
 * are committed before either replica reads the trail, so whichever reads last sees both.
 *
 * Only across agents: a read and requests seen by one agent are joined by that agent (seq-stolen-token-used).
 * Bounded: the store keeps sightings for the retention window and returns at most TRAIL_READS reads and
 * TRAIL_REQUESTS requests per jti (with the total count); a link lists MAX_LISTED requests, the rest counted.
 */
import { findingId } from '../detect/engine';
import { awayFromHome, homeSet } from '../kube/home-addresses';
import type { Evidence, Finding } from '../model/finding';
import { ingestedFindingSchema, type EncodedFinding, type IngestedFinding } from './finding-schema';

export const FLEET_TOKEN_RULE = 'fleet-stolen-token-used';
/** The store's agent name for findings the collector itself makes. */
export const COLLECTOR_AGENT = 'credwatch-collector';

const TOKEN_READ_COVERS = new Set(['H1', 'H2', 'H3']);
/** A request counts for a read made at most this long before it (a token's lifetime bound). */
export const JOIN_WINDOW_MS = 86_400_000;
/** Reads (newest) and requests (oldest) of one jti a store returns for the join. */
export const TRAIL_READS = 50;
export const TRAIL_REQUESTS = 200;
/** Requests named in one linked finding; the rest are counted in it. */
const MAX_LISTED = 50;

export type SightingKind = 'read' | 'request';

/** One finding as the join sees it; stored per (kind, jti, agent, id). */
export interface TokenSighting {
  kind: SightingKind;
  jti: string;
  agent: string;
  id: string;
  timeMs: number;
  /** The finding's JSON (as stored). */
  json: string;
}

/** What the store knows of one jti. */
export interface TokenTrail {
  jti: string;
  /** Newest first, at most TRAIL_READS. */
  reads: TokenSighting[];
  /** Oldest first, at most TRAIL_REQUESTS. */
  requests: TokenSighting[];
  /** Requests stored for the jti (also those not returned). */
  requestsTotal: number;
}

function isRead(f: IngestedFinding): boolean {
  return f.source === 'audit' && f.token?.from === 'file' && f.token.jti !== null && f.covers.some((c) => TOKEN_READ_COVERS.has(c));
}

function isRequest(f: IngestedFinding): boolean {
  return f.source === 'kube-audit' && f.token?.from === 'api-request' && f.token.jti !== null && f.rule !== FLEET_TOKEN_RULE;
}

function sightingKind(f: IngestedFinding): SightingKind | null {
  if (!f.token?.jti) return null;
  return isRead(f) ? 'read' : isRequest(f) ? 'request' : null;
}

/** The sightings of one agent's batch (none for the collector's own findings), with the findings' stored text. */
export function tokenSightings(agent: string, findings: readonly EncodedFinding[]): TokenSighting[] {
  if (agent === COLLECTOR_AGENT) return [];
  const out: TokenSighting[] = [];
  for (const { finding: f, json } of findings) {
    const kind = sightingKind(f);
    if (kind !== null) out.push({ kind, jti: f.token!.jti!, agent, id: f.id, timeMs: Date.parse(f.time), json });
  }
  return out;
}

/** The jtis whose trails a batch touched: the ones to join after it is stored. */
export function touchedJtis(agent: string, findings: readonly EncodedFinding[]): string[] {
  return [...new Set(tokenSightings(agent, findings).map((s) => s.jti))];
}

interface Seen {
  agent: string;
  finding: IngestedFinding;
}

const seen = (s: TokenSighting): Seen => ({ agent: s.agent, finding: JSON.parse(s.json) as IngestedFinding });

/**
 * The linked findings of these trails: one per read that requests of other agents followed within the
 * window. Deterministic for a given trail (requests in time order), so every replica builds the same.
 */
export function linkedFindings(trails: readonly TokenTrail[]): IngestedFinding[] {
  const out: IngestedFinding[] = [];
  for (const t of trails) {
    if (t.requests.length === 0) continue;
    const requests = t.requests.map(seen);
    // Requests the store did not return are counted for every read of the jti that some returned one matched.
    const unreturned = t.requestsTotal - t.requests.length;
    for (const r of t.reads) {
      const read = seen(r);
      const matching = requests.filter((q) => {
        if (q.agent === read.agent) return false; // that agent's own trail joined them
        const dt = Date.parse(q.finding.time) - r.timeMs;
        return dt >= 0 && dt <= JOIN_WINDOW_MS;
      });
      if (matching.length > 0) out.push(linkFinding(read, matching.slice(0, MAX_LISTED), matching.length - Math.min(MAX_LISTED, matching.length) + Math.max(0, unreturned)));
    }
  }
  return out;
}

/** The peer a request finding names: the connection's own address, the last of sourceIPs. */
const peerOf = (r: Seen): string | null => r.finding.kube?.source_ips.at(-1) ?? null;

function linkFinding(l: Seen, requests: Seen[], more: number): IngestedFinding {
  const read = l.finding;
  const first = requests[0]!.finding;
  // The read's agent saw where the pod lives (token.home): a request from none of those addresses was
  // made away from home, whatever the requests' agent knew of that node.
  const home = read.token?.home ? homeSet(read.token.home) : null;
  const away = requests.map((r) => awayFromHome(home, peerOf(r)) === true);
  const awayCount = away.filter(Boolean).length;
  const evidence: Evidence[] = [
    ...read.evidence.slice(0, 8).map((e) => ({ ...e, role: `fleet:read:${l.agent}:${read.rule}` })),
    ...requests.slice(0, 55 - Math.min(8, read.evidence.length)).flatMap((r, i) =>
      r.finding.evidence.slice(0, 1).map((e) => ({ ...e, role: `fleet:api-request:${r.agent}:${r.finding.rule}${away[i] ? ':away-from-home' : ''}` })),
    ),
  ];
  const n = requests.length + more;
  const linked: Finding = {
    id: findingId(FLEET_TOKEN_RULE, read.host, [l.agent, read.id, read.token!.jti!]),
    rule: FLEET_TOKEN_RULE,
    title: 'Stolen service-account token used against the API server (read on one node, used as seen by another)',
    description:
      `The token with jti ${read.token!.jti} of pod ${read.token!.pod ?? '?'} (${read.token!.pod_uid ?? '?'}) was read by ` +
      `${read.process?.exe ?? 'a process'} on ${read.host} (agent ${l.agent}); ${n} API request finding${n === 1 ? '' : 's'} ` +
      `from ${[...new Set(requests.map((r) => r.finding.host))].join(', ')} used it: ` +
      requests
        .slice(0, 5)
        .map((r, i) => `${r.finding.kube?.verb ?? '?'} ${r.finding.kube?.resource ?? '?'} from ${peerOf(r) ?? '?'}${away[i] ? ' (away from the pod\'s home)' : ''} (${r.finding.rule})`)
        .join(', ') +
      `${n > 5 ? ` and ${n - 5} more` : ''}.` +
      (awayCount > 0 ? ` ${awayCount} of the listed requests came from none of the addresses of the pod or its node as ${l.agent} saw them.` : ''),
    severity: 'critical',
    score: read.score + 1,
    confidence: 'high',
    covers: [...new Set([...read.covers, ...requests.flatMap((r) => r.finding.covers)])],
    mitre: [...new Set([...read.mitre, 'T1552.007'])],
    time: first.time,
    host: read.host,
    source: 'kube-audit',
    indicators: ['token-read', 'api-request-same-jti', 'across-agents', ...(awayCount > 0 ? ['used-away-from-home'] : [])],
    process: read.process,
    container: read.container,
    kube: first.kube,
    token: read.token!,
    evidence,
  };
  // Through the ingest schema like any agent's finding: bounded, and in the stored shape.
  return ingestedFindingSchema.parse({ ...linked, revision: n, count: n, first_seen: first.time, last_seen: requests[requests.length - 1]!.finding.time });
}
