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
 * One finding per stolen token and burst of use, shown at once and revised as it grows: the first
 * joined request opens a trail and its critical finding is emitted then (revision 1), naming the read
 * (process, container, pod, node) and the request (verb, resource, namespace, name, sourceIPs,
 * userAgent, auditID). Each later request of that token joins the same finding (same id, revision + 1),
 * like an incident (incidents.ts; receivers keep the highest revision, docs/shipping.md): sent at once
 * when the trail was last sent more than `updateEveryMs` before, else marked dirty and sent by tick(),
 * so a storm of requests costs about one update a second per trail. A trail takes requests until
 * `windowMs` after its last one; a request after that opens the next trail (a new finding).
 *
 * Away from home: when the read carries its pod's home addresses (token.home: the node's interfaces and
 * the pod's network namespace as the reading agent saw them, src/enrich/netns-addresses.ts), each
 * request whose peer is none of them is marked away (its evidence role, the finding's indicators and
 * description). A pod that can add addresses to its own namespace widens only its own home (see there).
 *
 * Everything is bounded: reads remembered, trails open (`maxOpen`, least recently used closed first,
 * its pending update sent), requests named per trail (the rest counted in the finding and in stats).
 */
import { kubeContext } from './kube/detector';
import { kubeEvidenceText } from './redact/kube-event';
import type { KubeAuditEvent } from '../kube/event';
import { requestPeer } from '../kube/credential';
import { awayFromHome, homeSet, type AddressSet } from '../kube/home-addresses';
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
  /** A trail takes requests into its finding until this long (wall clock) after its last one. Default 10 minutes. */
  windowMs?: number;
  /** One more request is sent at once only this long after the trail was last sent; else by tick(). Default 1 s. */
  updateEveryMs?: number;
  /** Requests named per finding (the rest are counted). Default 50. */
  maxRequests?: number;
  /** Reads remembered at most, per key kind. Default 10 000. */
  maxReads?: number;
  /** Trails open at most; beyond it the least recently used is closed. Default 4096. */
  maxOpen?: number;
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
  /** Trails opened (a finding's first revision). */
  trails: number;
  /** Later revisions of a trail's finding sent. */
  updates: number;
  /** Tied requests made from none of the read's home addresses. */
  away: number;
  /** Requests not named in a finding because it already named maxRequests (counted in it). */
  requestsCut: number;
  /** Reads forgotten to stay within maxReads. */
  readsEvicted: number;
  /** Trails closed early to stay within maxOpen (a later request opens a new finding). */
  trailsEvicted: number;
}

interface Trail {
  read: Finding;
  kind: JoinKind;
  /** The finding's id: fixed by the read and the trail's first request. */
  id: string;
  /** Wall time of the last request joined and of the last emission. */
  lastMs: number;
  /** Event time of the latest request joined (listed or only counted): the finding's last_seen. */
  lastEventMs: number;
  emittedMs: number;
  revision: number;
  dirty: boolean;
  requests: KubeAuditEvent[];
  /** Whether each listed request came from away (null: no home to compare). */
  away: (boolean | null)[];
  awayCount: number;
  /** Requests joined but not listed. */
  more: number;
  /** The read's home addresses, built once per trail. */
  home: AddressSet | null;
  /** The last peer checked and its answer: a burst of requests comes from one address. */
  lastPeer: string | null;
  lastAway: boolean | null;
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
    updates: 0,
    away: 0,
    requestsCut: 0,
    readsEvicted: 0,
    trailsEvicted: 0,
  };
  private readonly host: string;
  private readonly fallbackWindowMs: number;
  private readonly jtiWindowMs: number;
  private readonly windowMs: number;
  private readonly updateEveryMs: number;
  private readonly maxRequests: number;
  private readonly maxOpen: number;
  private readonly now: () => number;
  private readonly byJti: BoundedMap<Finding>;
  private readonly byPod: BoundedMap<Finding>;
  private readonly byLegacy: BoundedMap<Finding>;
  /** Open trails by read finding id + the read token's jti + join kind; Map order is recency. */
  private readonly open = new Map<string, Trail>();
  /** Updates of trails closed early (maxOpen), sent by the next tick. */
  private pending: Finding[] = [];
  /** Requests already tied (an audit log replayed twice, a webhook batch re-sent). */
  private readonly seen = new Set<string>();

  constructor(opts: TokenTrailOptions) {
    this.host = opts.host;
    this.fallbackWindowMs = opts.fallbackWindowMs ?? 10 * 60_000;
    this.jtiWindowMs = opts.jtiWindowMs ?? DAY_MS;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.updateEveryMs = opts.updateEveryMs ?? 1000;
    this.maxRequests = opts.maxRequests ?? 50;
    this.maxOpen = Math.max(1, opts.maxOpen ?? 4096);
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
      if (!isTokenRead(f)) continue;
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

  /**
   * Ties an API request to a read. Returns the trail's finding when it is to be sent now: the first
   * request of a trail always, a later one when the trail was last sent `updateEveryMs` ago or more.
   */
  onKubeEvent(ev: KubeAuditEvent): Finding[] {
    if (!isComplete(ev)) return [];
    const c = ev.credential;
    if (c.malformed) {
      this.stats.malformedCredential++;
      return [];
    }
    const hit = this.match(ev);
    if (!hit) return [];
    if (this.seen.has(ev.auditID)) return [];
    this.seen.add(ev.auditID);
    if (this.seen.size > 200_000) this.seen.clear();
    this.stats.joined[hit.kind]++;
    const nowMs = this.now();
    // An incident's revisions share its id, and one incident can hold reads of several tokens (a
    // kubelet rotation between two reads): a trail is per read *token*, so each jti names its own requests.
    const key = `${hit.read.id}\0${hit.read.token?.jti ?? ''}\0${hit.kind}`;
    let trail = this.open.get(key);
    if (trail && nowMs - trail.lastMs > this.windowMs) {
      this.close(key, trail);
      trail = undefined;
    }
    if (!trail) return [this.start(key, hit.read, hit.kind, ev, nowMs)];
    this.open.delete(key);
    this.open.set(key, trail);
    trail.lastMs = nowMs;
    if (ev.timeMs > trail.lastEventMs) trail.lastEventMs = ev.timeMs;
    // The read the trail shows is the newest revision of its incident (more evidence, a higher severity).
    trail.read = hit.read;
    const away = this.isAway(trail, requestPeer(ev));
    if (away === true) {
      trail.awayCount++;
      this.stats.away++;
    }
    if (trail.requests.length < this.maxRequests) {
      trail.requests.push(ev);
      trail.away.push(away);
    } else {
      trail.more++;
      this.stats.requestsCut++;
    }
    trail.dirty = true;
    return nowMs - trail.emittedMs >= this.updateEveryMs ? [this.emit(trail, nowMs)] : [];
  }

  private isAway(t: Trail, peer: string | null): boolean | null {
    if (peer !== t.lastPeer) {
      t.lastPeer = peer;
      t.lastAway = awayFromHome(t.home, peer);
    }
    return t.lastAway;
  }

  private start(key: string, read: Finding, kind: JoinKind, ev: KubeAuditEvent, nowMs: number): Finding {
    const home = read.token?.home ? homeSet(read.token.home) : null;
    const peer = requestPeer(ev);
    const away = awayFromHome(home, peer);
    const trail: Trail = {
      read,
      kind,
      id: findingId(TOKEN_TRAIL_RULE, this.host, [...read.evidence.map((e) => e.event_id), ev.auditID]),
      lastMs: nowMs,
      lastEventMs: ev.timeMs,
      emittedMs: nowMs,
      revision: 0,
      dirty: false,
      requests: [ev],
      away: [away],
      awayCount: away === true ? 1 : 0,
      more: 0,
      home,
      lastPeer: peer,
      lastAway: away,
    };
    if (away === true) this.stats.away++;
    this.stats.trails++;
    this.open.set(key, trail);
    if (this.open.size > this.maxOpen) {
      const [oldKey, oldest] = this.open.entries().next().value as [string, Trail];
      this.close(oldKey, oldest);
      this.stats.trailsEvicted++;
    }
    return this.emit(trail, nowMs);
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

  /** Sends the updates held back by the throttle and closes trails whose window passed. Call about once a second. */
  tick(nowMs = this.now()): Finding[] {
    const out = this.pending;
    this.pending = [];
    for (const [key, t] of this.open) {
      if (t.dirty) out.push(this.emit(t, nowMs));
      if (nowMs - t.lastMs > this.windowMs) this.open.delete(key);
    }
    return out;
  }

  /** Every pending update, and every trail closed (shutdown, end of a replay). */
  flush(): Finding[] {
    return this.tick(Number.POSITIVE_INFINITY);
  }

  get openTrails(): number {
    return this.open.size;
  }

  private close(key: string, t: Trail): void {
    this.open.delete(key);
    if (t.dirty) this.pending.push(this.emit(t, t.lastMs));
  }

  private emit(t: Trail, nowMs: number): Finding {
    t.revision++;
    if (t.revision > 1) this.stats.updates++;
    t.dirty = false;
    if (Number.isFinite(nowMs)) t.emittedMs = nowMs;
    return this.finding(t);
  }

  /** Built fresh at each emission (at most one a second per trail): nothing later changes a sent finding. */
  private finding(t: Trail): Finding {
    const { read } = t;
    const first = t.requests[0]!;
    const kube = kubeContext(first);
    const requests: Evidence[] = t.requests.map((ev, i) => ({
      event_id: ev.auditID,
      time: new Date(ev.timeMs).toISOString(),
      role: `sequence:api-request:${t.kind}${t.away[i] === true ? ':away-from-home' : ''}`,
      records: [{ type: 'k8s', text: kubeEvidenceText(ev) }],
    }));
    const pod = read.token?.pod_uid ?? read.object?.pod_uid ?? read.container?.pod_uid ?? '?';
    const what = t.requests
      .slice(0, 5)
      .map((ev, i) => `${ev.verb} ${ev.objectRef?.resource ?? ev.requestURI}${ev.objectRef?.namespace ? ` in ${ev.objectRef.namespace}` : ''}${t.away[i] === true ? ` from ${requestPeer(ev)} (away from the pod's home)` : ''}`)
      .join(', ');
    const n = t.requests.length + t.more;
    const by = t.kind === 'jti' ? `token jti ${read.token?.jti}` : t.kind === 'pod-uid' ? `a token bound to pod ${pod} (the requests carry no credential-id: joined by pod uid)` : `the legacy token of service account ${read.token?.namespace}/${read.token?.service_account}`;
    const awayText = t.awayCount > 0 ? ` ${t.awayCount} of them came from none of the addresses of the pod or its node.` : '';
    const readAt = Date.parse(read.time);
    return {
      id: t.id,
      rule: TOKEN_TRAIL_RULE,
      title: 'Stolen service-account token used against the API server',
      description:
        `The service-account token of pod ${pod} was read by ${read.process?.exe ?? 'a process'}` +
        `${read.container ? ` in container ${read.container.id.slice(0, 12)}` : ' on the node'} on ${read.host}; ` +
        `${Math.round((first.timeMs - readAt) / 1000)} s later ${n} API request${n === 1 ? '' : 's'} used ${by}: ${what}` +
        `${n > 5 ? ` and ${n - 5} more` : ''}${t.more > 0 ? ` (${t.more} not listed in the evidence)` : ''}.${awayText}`,
      severity: 'critical',
      score: read.score + 1,
      confidence: CONFIDENCE[t.kind],
      covers: [...new Set([...read.covers, 'K1'])],
      mitre: [...new Set([...read.mitre, 'T1552.007'])],
      time: new Date(first.timeMs).toISOString(),
      host: this.host,
      source: 'kube-audit',
      indicators: ['token-read', `api-request-same-${t.kind}`, ...(t.awayCount > 0 ? ['used-away-from-home'] : [])],
      process: read.process,
      container: read.container,
      ...(read.object ? { object: read.object } : {}),
      ...(read.token ? { token: read.token } : {}),
      kube,
      evidence: [...read.evidence.map((e) => ({ ...e, role: `sequence:${read.rule}` })), ...requests],
      count: n,
      first_seen: new Date(first.timeMs).toISOString(),
      last_seen: new Date(Number.isFinite(t.lastEventMs) ? t.lastEventMs : first.timeMs).toISOString(),
      revision: t.revision,
    };
  }
}

/** A host finding that means "this pod's token was read" (the anchor of a trail). */
export function isTokenRead(f: Finding): boolean {
  // Sequence findings (read then connect) repeat a read already noted: the read itself is the anchor.
  return f.source === 'audit' && !f.rule.startsWith('seq-') && f.covers.some((c) => TOKEN_READ_COVERS.has(c));
}

function legacyKey(namespace: string, sa: string): string {
  return `${namespace}/${sa}`;
}
