import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/daemon/metrics';
import { TokenMetrics } from '../../../src/daemon/token-metrics';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { TokenTrail } from '../../../src/detect/token-trail';
import { TokenHome } from '../../../src/detect/kube/token-home';
import { request } from '../../helpers/kube-requests';

describe('token trail counters in /metrics and credwatch status', () => {
  it('publishes what changed: refusals and malformed credential-ids as drops, joins as signals', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const claims = new TokenClaimsReader();
    const trail = new TokenTrail({ host: 'h' });
    const home = new TokenHome({ host: 'h' });
    const tm = new TokenMetrics(metrics, { claims: claims.stats, trail: trail.stats, home: home.stats });
    claims.stats.refused['not-jwt'] += 2;
    claims.stats.fileTooLarge += 1;
    trail.onKubeEvent(request({ auditID: 'bad', atMs: 0, credentialId: 'JTI=<x>' }));
    tm.publish();
    tm.publish(); // nothing new: nothing added
    expect(metrics.snapshotDrops()).toMatchObject({ token_claims_not_jwt: 2, token_claims_file_too_large: 1, kube_credential_malformed: 1 });
    home.onKubeEvent(request({ auditID: 'r', atMs: 0, jti: 'j-1', podUid: '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d', node: 'worker-1' }));
    tm.publish();
    expect(metrics.snapshotCounters()).toMatchObject({ 'credwatch_stream_signals_total{kind="token_home_unknown"}': 1 });
    const text = await metrics.registry.metrics();
    expect(text).toContain('credwatch_drops_total{cause="kube_credential_malformed"} 1');
  });
});
