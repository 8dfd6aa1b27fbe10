/**
 * The token trail's counters (claims reader, join, away-from-home) as /metrics and `credwatch status`
 * entries. Anything lost on the way is a drop: a token file not decoded (claims lost for its
 * findings), a credential-id not used as a join key, a request left out of a finding's evidence.
 * The rest are signals, among them the watch index's (WatchedObjects, which feeds the claims reader):
 * its re-indexes, and watch hits whose inode it did not hold, so the object was named from the watch
 * key and the path text only. Each call publishes what changed since the last.
 */
import type { TokenClaimsStats } from '../enrich/token-claims';
import type { TokenTrailStats } from '../detect/token-trail';
import type { TokenHomeStats } from '../detect/kube/token-home';
import type { NetnsHomesStats } from '../enrich/netns-addresses';
import type { WatchedObjectsStats } from '../enrich/watched-objects';
import type { Metrics } from './metrics';

export interface TokenStatsSources {
  claims: TokenClaimsStats;
  trail: TokenTrailStats;
  home: TokenHomeStats;
  /** Absent where no pod namespaces are read (replay). */
  netns?: NetnsHomesStats;
  /** The watch index; its stats are read at each publish. */
  objects?: { readonly stats: WatchedObjectsStats };
}

type Read = (s: TokenStatsSources) => number;

/** Counters that mean something was lost on the way: /metrics drops. */
const DROPS: Readonly<Record<string, Read>> = {
  token_claims_unknown_inode: (s) => s.claims.unknownInode,
  token_claims_inode_changed: (s) => s.claims.inodeChanged,
  token_claims_not_regular: (s) => s.claims.notRegular,
  token_claims_file_too_large: (s) => s.claims.fileTooLarge,
  token_claims_unreadable: (s) => s.claims.unreadable,
  token_claims_not_jwt: (s) => s.claims.refused['not-jwt'],
  token_claims_payload_too_large: (s) => s.claims.refused['too-large'],
  token_claims_bad_base64: (s) => s.claims.refused['bad-base64'],
  token_claims_bad_json: (s) => s.claims.refused['bad-json'],
  kube_credential_malformed: (s) => s.trail.malformedCredential,
  token_trail_requests_cut: (s) => s.trail.requestsCut,
  token_trail_reads_evicted: (s) => s.trail.readsEvicted,
  // A read whose pod's namespace could not be read carries no pod addresses: away-detection is weaker.
  token_home_pod_not_found: (s) => s.netns?.podNotFound ?? 0,
  token_home_netns_file_truncated: (s) => s.netns?.fileTruncated ?? 0,
  token_home_addresses_cut: (s) => s.netns?.addressesCut ?? 0,
};

/** Everything else the trail counts: /metrics signals. */
const SIGNALS: Readonly<Record<string, Read>> = {
  token_claims_decoded: (s) => s.claims.decoded,
  token_claims_served: (s) => s.claims.served,
  token_trail_reads: (s) => s.trail.tokenReads,
  token_trail_reads_with_jti: (s) => s.trail.readsWithJti,
  token_trail_joined_jti: (s) => s.trail.joined.jti,
  token_trail_joined_pod_uid: (s) => s.trail.joined['pod-uid'],
  token_trail_joined_legacy: (s) => s.trail.joined.legacy,
  token_trail_other_jti: (s) => s.trail.otherJti,
  token_trail_read_jti_unknown: (s) => s.trail.readJtiUnknown,
  token_trail_findings: (s) => s.trail.trails,
  token_trail_updates: (s) => s.trail.updates,
  token_trail_away: (s) => s.trail.away,
  token_trail_evicted: (s) => s.trail.trailsEvicted,
  token_home_nodes_learnt: (s) => s.home.nodesLearnt,
  token_home_unknown: (s) => s.home.homeUnknown,
  token_home_away_findings: (s) => s.home.awayFindings,
  token_home_learnt_from_reads: (s) => s.home.learntFromReads,
  token_home_pod_netns_read: (s) => s.netns?.podNetnsRead ?? 0,
  watch_reindexes: (s) => s.objects?.stats.reindexes ?? 0,
  watch_key_only_hits: (s) => s.objects?.stats.keyOnlyHits ?? 0,
};

export class TokenMetrics {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly metrics: Pick<Metrics, 'countDrop' | 'countSignal'>,
    private readonly sources: TokenStatsSources,
  ) {}

  publish(): void {
    for (const name in DROPS) {
      const delta = this.delta(name, DROPS[name]!);
      if (delta > 0) this.metrics.countDrop(name, delta);
    }
    for (const name in SIGNALS) {
      const delta = this.delta(name, SIGNALS[name]!);
      if (delta > 0) this.metrics.countSignal(name, delta);
    }
  }

  /** The increase since the last publish (the stats are cumulative). */
  private delta(name: string, read: Read): number {
    const value = read(this.sources);
    const delta = value - (this.last.get(name) ?? 0);
    this.last.set(name, value);
    return delta;
  }
}
