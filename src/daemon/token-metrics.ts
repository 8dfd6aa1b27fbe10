/**
 * The token trail's counters (claims reader, join, away-from-home) as /metrics and `credwatch status`
 * entries. Anything lost on the way is a drop: a token file not decoded (claims lost for its
 * findings), a credential-id not used as a join key, a request left out of a finding's evidence.
 * The rest are signals. Each call publishes what changed since the last.
 */
import type { TokenClaimsStats } from '../enrich/token-claims';
import type { TokenTrailStats } from '../detect/token-trail';
import type { TokenHomeStats } from '../detect/kube/token-home';
import type { NetnsHomesStats } from '../enrich/netns-addresses';
import type { Metrics } from './metrics';

export interface TokenStatsSources {
  claims: TokenClaimsStats;
  trail: TokenTrailStats;
  home: TokenHomeStats;
  /** Absent where no pod namespaces are read (replay). */
  netns?: NetnsHomesStats;
}

/** name -> [value, is a drop] */
export function tokenCounters(s: TokenStatsSources): Map<string, [number, boolean]> {
  const c = s.claims;
  const t = s.trail;
  const h = s.home;
  const n = s.netns ?? { podNetnsRead: 0, podNotFound: 0, fileTruncated: 0, addressesCut: 0 };
  return new Map<string, [number, boolean]>([
    ['token_claims_decoded', [c.decoded, false]],
    ['token_claims_served', [c.served, false]],
    ['token_claims_unknown_inode', [c.unknownInode, true]],
    ['token_claims_inode_changed', [c.inodeChanged, true]],
    ['token_claims_not_regular', [c.notRegular, true]],
    ['token_claims_file_too_large', [c.fileTooLarge, true]],
    ['token_claims_unreadable', [c.unreadable, true]],
    ['token_claims_not_jwt', [c.refused['not-jwt'], true]],
    ['token_claims_payload_too_large', [c.refused['too-large'], true]],
    ['token_claims_bad_base64', [c.refused['bad-base64'], true]],
    ['token_claims_bad_json', [c.refused['bad-json'], true]],
    ['token_trail_reads', [t.tokenReads, false]],
    ['token_trail_reads_with_jti', [t.readsWithJti, false]],
    ['token_trail_joined_jti', [t.joined.jti, false]],
    ['token_trail_joined_pod_uid', [t.joined['pod-uid'], false]],
    ['token_trail_joined_legacy', [t.joined.legacy, false]],
    ['token_trail_other_jti', [t.otherJti, false]],
    ['token_trail_read_jti_unknown', [t.readJtiUnknown, false]],
    ['token_trail_findings', [t.trails, false]],
    ['token_trail_updates', [t.updates, false]],
    ['token_trail_away', [t.away, false]],
    ['token_trail_evicted', [t.trailsEvicted, false]],
    ['kube_credential_malformed', [t.malformedCredential, true]],
    ['token_trail_requests_cut', [t.requestsCut, true]],
    ['token_trail_reads_evicted', [t.readsEvicted, true]],
    ['token_home_nodes_learnt', [h.nodesLearnt, false]],
    ['token_home_unknown', [h.homeUnknown, false]],
    ['token_home_away_findings', [h.awayFindings, false]],
    ['token_home_learnt_from_reads', [h.learntFromReads, false]],
    // A read whose pod's namespace could not be read carries no pod addresses: away-detection is weaker.
    ['token_home_pod_netns_read', [n.podNetnsRead, false]],
    ['token_home_pod_not_found', [n.podNotFound, true]],
    ['token_home_netns_file_truncated', [n.fileTruncated, true]],
    ['token_home_addresses_cut', [n.addressesCut, true]],
  ]);
}

export class TokenMetrics {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly metrics: Pick<Metrics, 'countDrop' | 'countSignal'>,
    private readonly sources: TokenStatsSources,
  ) {}

  publish(): void {
    for (const [name, [value, drop]] of tokenCounters(this.sources)) {
      const delta = value - (this.last.get(name) ?? 0);
      this.last.set(name, value);
      if (delta <= 0) continue;
      if (drop) this.metrics.countDrop(name, delta);
      else this.metrics.countSignal(name, delta);
    }
  }
}
