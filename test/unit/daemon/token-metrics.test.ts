import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/daemon/metrics';
import { TokenMetrics } from '../../../src/daemon/token-metrics';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { WatchedObjects, kernelDevString } from '../../../src/enrich/watched-objects';
import type { AuditEvent } from '../../../src/audit/event';
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

  it('publishes the watch index\'s re-indexes and the hits it could name by watch key only, as signals', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-watch-metrics-'));
    try {
      const vol = path.join(dir, 'pods', '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d', 'volumes', 'kubernetes.io~projected', 'kube-api-access-x');
      fs.mkdirSync(vol, { recursive: true });
      const metrics = createMetrics({ processMetrics: false });
      const objects = new WatchedObjects({ reindexMs: 0 });
      objects.add(vol, 'pod-token');
      const tm = new TokenMetrics(metrics, { claims: new TokenClaimsReader().stats, trail: new TokenTrail({ host: 'h' }).stats, home: new TokenHome({ host: 'h' }).stats, objects });
      // A file made after the index, under a dev/inode the index never saw: a re-index, then a key-only hit.
      const late = path.join(vol, 'token');
      fs.writeFileSync(late, 'x');
      const st = fs.statSync(late, { bigint: true });
      const hit = (inode: number): AuditEvent =>
        ({ key: 'credwatch:pod-token', paths: [{ name: late, nametype: 'NORMAL', inode, mode: '0100644', dev: kernelDevString(st.dev) }] }) as unknown as AuditEvent;
      expect(objects.objectOf(hit(Number(st.ino)))?.via).toBe('inode'); // found by the re-index
      expect(objects.objectOf(hit(Number(st.ino) + 1_000_000))?.via).toBe('key');
      tm.publish();
      const counters = metrics.snapshotCounters();
      expect(counters['credwatch_stream_signals_total{kind="watch_reindexes"}']).toBe(objects.stats.reindexes);
      expect(objects.stats.reindexes).toBeGreaterThanOrEqual(2);
      expect(counters['credwatch_stream_signals_total{kind="watch_key_only_hits"}']).toBe(1);
      expect(metrics.snapshotDrops()).not.toHaveProperty('watch_key_only_hits');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
