/**
 * The token trail across a fleet. Reads happen on workers, requests are logged on the control plane:
 * a worker's agent ships a token-read finding carrying the token's claims (token.jti, from the file),
 * the control-plane agent ships kube-audit findings carrying the request's credential (token.jti, from
 * the API server's record: a K rule, or "used away from its node"). The collector joins the two by jti
 * and stores one linked finding per stolen token read, re-sent as a higher revision when more requests
 * join it (the store replaces a finding by a higher revision), so it is stored once and grows.
 *
 * Only across agents: a read and requests seen by one agent are joined by that agent (seq-stolen-token-used).
 * Everything is bounded (jtis remembered, requests per link); the index lives in this process, so with
 * several stateless collector replicas a read and a request ingested by different replicas are not
 * joined (see README, fleet join).
 */
import { findingId } from '../detect/engine';
import type { Evidence, Finding } from '../model/finding';
import { ingestedFindingSchema, type IngestedFinding } from './finding-schema';

export const FLEET_TOKEN_RULE = 'fleet-stolen-token-used';
/** The store's agent name for findings the collector itself makes. */
export const COLLECTOR_AGENT = 'credwatch-collector';

const TOKEN_READ_COVERS = new Set(['H1', 'H2', 'H3']);
const DAY_MS = 86_400_000;

export interface FleetTokenJoinOptions {
  /** jtis remembered at most (reads and requests each). Default 50 000. */
  maxTokens?: number;
  /** Requests named in one linked finding. Default 50. */
  maxRequests?: number;
  /** A request counts for a read made at most this long before it. Default 24 h (a token's lifetime bound). */
  windowMs?: number;
}

export interface FleetTokenJoinStats {
  reads: number;
  requests: number;
  /** Linked findings stored or revised. */
  linked: number;
  /** Requests beyond maxRequests for a link (counted in it, not listed). */
  requestsCut: number;
}

interface Seen {
  agent: string;
  finding: IngestedFinding;
}

interface Link {
  read: Seen;
  requests: Seen[];
  more: number;
  revision: number;
}

function isRead(f: IngestedFinding): boolean {
  return f.source === 'audit' && f.token?.from === 'file' && f.token.jti !== null && f.covers.some((c) => TOKEN_READ_COVERS.has(c));
}

function isRequest(f: IngestedFinding): boolean {
  return f.source === 'kube-audit' && f.token?.from === 'api-request' && f.token.jti !== null && f.rule !== FLEET_TOKEN_RULE;
}

class Bounded<V> extends Map<string, V> {
  constructor(private readonly max: number) {
    super();
  }
  put(k: string, v: V): void {
    this.delete(k);
    this.set(k, v);
    if (this.size > this.max) this.delete(this.keys().next().value as string);
  }
}

export class FleetTokenJoin {
  readonly stats: FleetTokenJoinStats = { reads: 0, requests: 0, linked: 0, requestsCut: 0 };
  private readonly reads: Bounded<Seen[]>;
  private readonly requests: Bounded<Seen[]>;
  /** read finding id + agent -> its link. */
  private readonly links: Bounded<Link>;
  private readonly maxRequests: number;
  private readonly windowMs: number;

  constructor(opts: FleetTokenJoinOptions = {}) {
    const max = opts.maxTokens ?? 50_000;
    this.reads = new Bounded(max);
    this.requests = new Bounded(max);
    this.links = new Bounded(max);
    this.maxRequests = opts.maxRequests ?? 50;
    this.windowMs = opts.windowMs ?? DAY_MS;
  }

  /** Takes a stored batch of one agent; returns the linked findings to store (new or revised). */
  observe(agent: string, findings: readonly IngestedFinding[]): IngestedFinding[] {
    if (agent === COLLECTOR_AGENT) return [];
    const touched = new Set<Link>();
    for (const f of findings) {
      const jti = f.token?.jti;
      if (!jti) continue;
      const me: Seen = { agent, finding: f };
      if (isRead(f)) {
        this.stats.reads++;
        this.remember(this.reads, jti, me);
        for (const req of this.requests.get(jti) ?? []) this.join(me, req, touched);
      } else if (isRequest(f)) {
        this.stats.requests++;
        this.remember(this.requests, jti, me);
        for (const read of this.reads.get(jti) ?? []) this.join(read, me, touched);
      }
    }
    return [...touched].map((l) => this.finding(l));
  }

  private remember(index: Bounded<Seen[]>, jti: string, s: Seen): void {
    const list = index.get(jti) ?? [];
    if (list.some((x) => x.agent === s.agent && x.finding.id === s.finding.id)) return;
    list.push(s);
    if (list.length > this.maxRequests) list.shift();
    index.put(jti, list);
  }

  private join(read: Seen, req: Seen, touched: Set<Link>): void {
    if (read.agent === req.agent) return; // that agent's own trail joined them
    const dt = Date.parse(req.finding.time) - Date.parse(read.finding.time);
    if (!(dt >= 0 && dt <= this.windowMs)) return;
    const key = `${read.agent}\0${read.finding.id}`;
    let link = this.links.get(key);
    if (!link) {
      link = { read, requests: [], more: 0, revision: 0 };
      this.links.put(key, link);
    }
    if (link.requests.some((r) => r.agent === req.agent && r.finding.id === req.finding.id)) return;
    if (link.requests.length < this.maxRequests) link.requests.push(req);
    else {
      link.more++;
      this.stats.requestsCut++;
    }
    link.revision++;
    touched.add(link);
  }

  private finding(l: Link): IngestedFinding {
    this.stats.linked++;
    const read = l.read.finding;
    const first = l.requests[0]!.finding;
    const evidence: Evidence[] = [
      ...read.evidence.slice(0, 8).map((e) => ({ ...e, role: `fleet:read:${l.read.agent}:${read.rule}` })),
      ...l.requests.slice(0, 55 - Math.min(8, read.evidence.length)).flatMap((r) =>
        r.finding.evidence.slice(0, 1).map((e) => ({ ...e, role: `fleet:api-request:${r.agent}:${r.finding.rule}` })),
      ),
    ];
    const n = l.requests.length + l.more;
    const linked: Finding = {
      id: findingId(FLEET_TOKEN_RULE, read.host, [l.read.agent, read.id, read.token!.jti!]),
      rule: FLEET_TOKEN_RULE,
      title: 'Stolen service-account token used against the API server (read on one node, used as seen by another)',
      description:
        `The token with jti ${read.token!.jti} of pod ${read.token!.pod ?? '?'} (${read.token!.pod_uid ?? '?'}) was read by ` +
        `${read.process?.exe ?? 'a process'} on ${read.host} (agent ${l.read.agent}); ${n} API request finding${n === 1 ? '' : 's'} ` +
        `from ${[...new Set(l.requests.map((r) => r.finding.host))].join(', ')} used it: ` +
        l.requests
          .slice(0, 5)
          .map((r) => `${r.finding.kube?.verb ?? '?'} ${r.finding.kube?.resource ?? '?'} from ${r.finding.kube?.source_ips.at(-1) ?? '?'} (${r.finding.rule})`)
          .join(', ') +
        `${n > 5 ? ` and ${n - 5} more` : ''}.`,
      severity: 'critical',
      score: read.score + 1,
      confidence: 'high',
      covers: [...new Set([...read.covers, ...l.requests.flatMap((r) => r.finding.covers)])],
      mitre: [...new Set([...read.mitre, 'T1552.007'])],
      time: first.time,
      host: read.host,
      source: 'kube-audit',
      indicators: ['token-read', 'api-request-same-jti', 'across-agents'],
      process: read.process,
      container: read.container,
      kube: first.kube,
      token: read.token!,
      evidence,
    };
    // Through the ingest schema like any agent's finding: bounded, and in the stored shape.
    return ingestedFindingSchema.parse({ ...linked, revision: l.revision, count: n, first_seen: first.time, last_seen: l.requests[l.requests.length - 1]!.finding.time });
  }
}
