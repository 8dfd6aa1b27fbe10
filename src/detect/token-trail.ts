/**
 * Follows a stolen service-account token from the read to every API request made with it.
 *
 * The join key is the token's own identity: the `jti` the agent decoded from the token file the
 * flagged process read (finding.token, src/enrich/token-claims.ts), against the `JTI=<jti>` the API
 * server records on each request (src/kube/credential.ts). A request made with the pod's own newer
 * token (the kubelet rotated it: another jti) is therefore not tied to the thief; it is counted as
 * `otherJti`. Only when a request carries no credential-id at all (a cluster before 1.29/1.32, or the
 * feature off) does the join fall back to the pod uid, with confidence lowered to medium; a legacy
 * secret-based token (no jti, no pod) joins by service account and Secret name, confidence low.
 *
 * One finding per stolen token and burst of use: the first joined request opens a trail, the requests
 * that follow within `lingerMs` (wall clock) join it, then tick() emits one critical finding naming
 * the read (process, container, pod, node) and each request (verb, resource, namespace, name,
 * sourceIPs, userAgent, auditID) as evidence. Requests after that open the next trail. Everything is
 * bounded: reads remembered, trails open, requests kept per trail (the rest counted in the finding).
 */
import { kubeContext } from './kube/detector';
import { kubeEvidenceText } from './redact/kube-event';
import type { KubeAuditEvent } from '../kube/event';
import { findingId } from './engine';
import type { Confidence, Evidence, Finding } from '../model/finding';

export const TOKEN_TRAIL_RULE = 'seq-stolen-token-used';

/** Host rules whose findings mean "this pod's token was read". */
// H3: read from the node (nsenter, /proc/<pid>/root, the kubelet dir): the token's pod is the object's owner.
const TOKEN_READ_COVERS = new Set(['H1', 'H2', 'H3']);
const DAY_MS = 86_400_000;

export type JoinKind = 'jti' | 'pod-uid' | 'legacy';

export interface TokenTrailOptions {
  host: string;
  /** Pod-uid and legacy fallbacks: how long after a read a request still counts. Default 10 minutes. */
  fallbackWindowMs?: number;
  /** jti joins: the token's own expiry bounds them; without one, this. Default 24 h. */
  jtiWindowMs?: number;
  /** How long a trail gathers requests before its finding is emitted. Default 10 s. */
  lingerMs?: number;
  /** Requests named per finding (the rest are counted). Default 50. */
  maxRequests?: number;
  /** Reads remembered at most, per key kind. Default 10 000. */
  maxReads?: number;
  now?: () => number;
}

export interface TokenTrailStats {
  tokenReads: number;
  /** Reads whose claims carried a jti (exact joins possible). */
  readsWithJti: number;
  /** Requests tied to a read, by join kind. */
  joined: Record<JoinKind, number>;
  /** Requests with a jti whose pod had a read of another token: not tied (the pod's own newer token). */
  otherJti: number;
  /** Requests with a jti from a pod whose read we could not decode (no jti to compare): not tied, counted. */
  readJtiUnknown: number;
  /** Requests whose credential-id has a wrong shape: never a join key. */
  malformedCredential: number;
  /** Findings emitted. */
  trails: number;
  /** Requests not named in a finding because it already named maxRequests (counted in it). */
  requestsCut: number;
  /** Reads forgotten to stay within maxReads. */
  readsEvicted: number;
}

interface Trail {
  read: Finding;
  kind: JoinKind;
  openedMs: number;
  requests: KubeAuditEvent[];
  more: number;
}

const CONFIDENCE: Record<JoinKind, Confidence> = { jti: 'high', 'pod-uid': 'medium', legacy: 'low' };

function isComplete(ev: KubeAuditEvent): boolean {
  return ev.stage === 'ResponseComplete' || ev.stage === 'Panic';
}

class BoundedMap<V> extends Map<string, V> {
  constructor(
    private readonly max: number,
    private readonly onEvict: () => void,
  ) {
    super();
  }
  put(k: string, v: V): void {
    this.delete(k);
    this.set(k, v);
    if (this.size > this.max) {
      this.delete(this.keys().next().value as string);
      this.onEvict();
    }
  }
}

export class TokenTrail {
  readonly stats: TokenTrailStats = {
    tokenReads: 0,
    readsWithJti: 0,
    joined: { jti: 0, 'pod-uid': 0, legacy: 0 },
    otherJti: 0,
    readJtiUnknown: 0,
    malformedCredential: 0,
    trails: 0,
    requestsCut: 0,
    readsEvicted: 0,
  };
  private readonly host: string;
  private readonly fallbackWindowMs: number;
  private readonly jtiWindowMs: number;
  private readonly lingerMs: number;
  private readonly maxRequests: number;
  private readonly now: () => number;
  private readonly byJti: BoundedMap<Finding>;
  private readonly byPod: BoundedMap<Finding>;
  private readonly byLegacy: BoundedMap<Finding>;
  /** Open trails by read finding id + the read token's jti + join kind. */
  private readonly open = new Map<string, Trail>();
  /** Requests already tied (an audit log replayed twice, a webhook batch re-sent). */
  private readonly seen = new Set<string>();

  constructor(opts: TokenTrailOptions) {
    this.host = opts.host;
    this.fallbackWindowMs = opts.fallbackWindowMs ?? 10 * 60_000;
    this.jtiWindowMs = opts.jtiWindowMs ?? DAY_MS;
    this.lingerMs = opts.lingerMs ?? 10_000;
    this.maxRequests = opts.maxRequests ?? 50;
    this.now = opts.now ?? Date.now;
    const max = opts.maxReads ?? 10_000;
    const evicted = () => this.stats.readsEvicted++;
    this.byJti = new BoundedMap(max, evicted);
    this.byPod = new BoundedMap(max, evicted);
    this.byLegacy = new BoundedMap(max, evicted);
  }

  /** Remembers token reads among host findings (call with every batch of findings). */
  noteHostFindings(findings: readonly Finding[]): void {
    for (const f of findings) {
      // Sequence findings (read then connect) repeat a read already noted: the read itself is the anchor.
      if (f.source !== 'audit' || f.rule.startsWith('seq-') || !f.covers.some((c) => TOKEN_READ_COVERS.has(c))) continue;
      this.stats.tokenReads++;
      const t = f.token;
      if (t?.jti) {
        this.stats.readsWithJti++;
        this.byJti.put(t.jti, f);
      }
      const pod = t?.pod_uid ?? f.object?.pod_uid ?? f.container?.pod_uid ?? null;
      if (pod) this.byPod.put(pod, f);
      if (t?.kind === 'legacy' && t.namespace && t.service_account) this.byLegacy.put(legacyKey(t.namespace, t.service_account), f);
    }
  }

  /** Ties an API request to a read; findings come from tick() once the trail's linger is over. */
  onKubeEvent(ev: KubeAuditEvent): void {
    if (!isComplete(ev)) return;
    const c = ev.credential;
    if (c.malformed) {
      this.stats.malformedCredential++;
      return;
    }
    const hit = this.match(ev);
    if (!hit) return;
    if (this.seen.has(ev.auditID)) return;
    this.seen.add(ev.auditID);
    if (this.seen.size > 200_000) this.seen.clear();
    this.stats.joined[hit.kind]++;
    // An incident's revisions share its id, and one incident can hold reads of several tokens (a
    // kubelet rotation between two reads): a trail is per read *token*, so each jti names its own requests.
    const key = `${hit.read.id}\0${hit.read.token?.jti ?? ''}\0${hit.kind}`;
    let trail = this.open.get(key);
    if (!trail) {
      trail = { read: hit.read, kind: hit.kind, openedMs: this.now(), requests: [], more: 0 };
      this.open.set(key, trail);
    }
    if (trail.requests.length < this.maxRequests) trail.requests.push(ev);
    else {
      trail.more++;
      this.stats.requestsCut++;
    }
  }

  private match(ev: KubeAuditEvent): { read: Finding; kind: JoinKind } | null {
    const c = ev.credential;
    const after = (read: Finding, windowMs: number): boolean => {
      const readMs = Date.parse(read.time);
      return ev.timeMs >= readMs && ev.timeMs - readMs <= windowMs;
    };
    if (c.jti !== null) {
      const read = this.byJti.get(c.jti);
      if (read) {
        const exp = read.token?.expires ? Date.parse(read.token.expires) : NaN;
        // A token is usable until it expires (plus the API server's clock skew leeway, 60 s).
        const windowMs = Number.isFinite(exp) ? Math.min(this.jtiWindowMs, exp + 60_000 - Date.parse(read.time)) : this.jtiWindowMs;
        return after(read, windowMs) ? { read, kind: 'jti' } : null;
      }
      const podRead = c.podUid === null ? undefined : this.byPod.get(c.podUid);
      if (podRead?.token?.jti) this.stats.otherJti++;
      else if (podRead) this.stats.readJtiUnknown++;
      return null;
    }
    if (c.kind !== null) return null; // a credential-id of another kind (x509...): not a token of a pod
    if (c.podUid !== null) {
      const read = this.byPod.get(c.podUid);
      return read && after(read, this.fallbackWindowMs) ? { read, kind: 'pod-uid' } : null;
    }
    if (c.serviceAccount !== null) {
      const read = this.byLegacy.get(legacyKey(c.serviceAccount.namespace, c.serviceAccount.name));
      if (!read || !after(read, this.fallbackWindowMs)) return null;
      // With LegacyServiceAccountTokenTracking the API server names the Secret: it must be the one read.
      const secret = ev.annotations['authentication.k8s.io/legacy-token'];
      if (secret !== undefined && read.token?.secret_name && secret !== read.token.secret_name) return null;
      return { read, kind: 'legacy' };
    }
    return null;
  }

  /** Findings of trails whose linger is over. */
  tick(nowMs = this.now()): Finding[] {
    const out: Finding[] = [];
    for (const [key, t] of this.open) {
      if (nowMs - t.openedMs < this.lingerMs) continue;
      this.open.delete(key);
      out.push(this.finding(t));
    }
    return out;
  }

  /** Every open trail's finding (shutdown, end of a replay). */
  flush(): Finding[] {
    return this.tick(Number.POSITIVE_INFINITY);
  }

  get openTrails(): number {
    return this.open.size;
  }

  private finding(t: Trail): Finding {
    this.stats.trails++;
    const { read } = t;
    const first = t.requests[0]!;
    const kube = kubeContext(first);
    const eventIds = [...read.evidence.map((e) => e.event_id), first.auditID];
    const requests: Evidence[] = t.requests.map((ev) => ({
      event_id: ev.auditID,
      time: new Date(ev.timeMs).toISOString(),
      role: `sequence:api-request:${t.kind}`,
      records: [{ type: 'k8s', text: kubeEvidenceText(ev) }],
    }));
    const pod = read.token?.pod_uid ?? read.object?.pod_uid ?? read.container?.pod_uid ?? '?';
    const what = t.requests
      .slice(0, 5)
      .map((ev) => `${ev.verb} ${ev.objectRef?.resource ?? ev.requestURI}${ev.objectRef?.namespace ? ` in ${ev.objectRef.namespace}` : ''}`)
      .join(', ');
    const n = t.requests.length + t.more;
    const by = t.kind === 'jti' ? `token jti ${read.token?.jti}` : t.kind === 'pod-uid' ? `a token bound to pod ${pod} (the requests carry no credential-id: joined by pod uid)` : `the legacy token of service account ${read.token?.namespace}/${read.token?.service_account}`;
    const readAt = Date.parse(read.time);
    return {
      id: findingId(TOKEN_TRAIL_RULE, this.host, eventIds),
      rule: TOKEN_TRAIL_RULE,
      title: 'Stolen service-account token used against the API server',
      description:
        `The service-account token of pod ${pod} was read by ${read.process?.exe ?? 'a process'}` +
        `${read.container ? ` in container ${read.container.id.slice(0, 12)}` : ' on the node'} on ${read.host}; ` +
        `${Math.round((first.timeMs - readAt) / 1000)} s later ${n} API request${n === 1 ? '' : 's'} used ${by}: ${what}` +
        `${n > 5 ? ` and ${n - 5} more` : ''}${t.more > 0 ? ` (${t.more} not listed in the evidence)` : ''}.`,
      severity: 'critical',
      score: read.score + 1,
      confidence: CONFIDENCE[t.kind],
      covers: [...new Set([...read.covers, 'K1'])],
      mitre: [...new Set([...read.mitre, 'T1552.007'])],
      time: new Date(first.timeMs).toISOString(),
      host: this.host,
      source: 'kube-audit',
      indicators: ['token-read', `api-request-same-${t.kind}`],
      process: read.process,
      container: read.container,
      ...(read.object ? { object: read.object } : {}),
      ...(read.token ? { token: read.token } : {}),
      kube,
      evidence: [...read.evidence.map((e) => ({ ...e, role: `sequence:${read.rule}` })), ...requests],
    };
  }
}

function legacyKey(namespace: string, sa: string): string {
  return `${namespace}/${sa}`;
}
