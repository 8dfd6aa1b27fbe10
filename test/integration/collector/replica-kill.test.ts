/**
 * Two collector replicas (real `credwatch collector` processes) on one real PostgreSQL, 20 agents
 * posting gzip batches through both; one replica is SIGKILLed mid-load. The agents resend what was
 * not acknowledged to the other replica. Afterwards every acknowledged finding is stored exactly once
 * (and every batch was acknowledged in the end). Needs dist/ (npm run build:ts).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetAgents, freePort, gzipBatch, runAgent, selfSignedCert, startReplica, writeReplicaConfig, ROOT, type Replica } from '../../helpers/collector-fleet.cjs';
import { startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';
import { makeFinding } from '../../unit/ship/support';

const built = existsSync(join(ROOT, 'dist/src/collector/pg-store.js'));
const why = unavailableReason() ?? (built ? null : 'dist/ is not built (npm run build:ts)');
if (why) console.warn(`replica-kill test skipped: ${why}`);

const AGENTS = 20;
const BATCHES = 15;
const PER_BATCH = 40;

let pg: TestPostgres;
let dir: string;
const replicas: Replica[] = [];

describe.skipIf(why !== null)('collector replicas on PostgreSQL', () => {
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
    dir = mkdtempSync(join(tmpdir(), 'credwatch-replicas-'));
  });
  afterAll(async () => {
    for (const r of replicas) await r.kill('SIGKILL');
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL of one replica mid-load: every acknowledged finding is stored exactly once', { timeout: 120_000 }, async () => {
    const pgUrl = pg.createDatabase('fleet');
    const cert = selfSignedCert(dir);
    const agents = fleetAgents(AGENTS);
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const config = writeReplicaConfig({ dir, name, port, cert, pgUrl, agents });
      replicas.push(await startReplica({ config, port, password: pg.password, maxSeconds: 300 }));
    }
    const [a, b] = replicas as [Replica, Replica];
    const http = new Agent({ connect: { ca: cert.ca }, connections: 4 });
    const post = async (url: string, body: Buffer, headers: Record<string, string>) => {
      const res = await request(url, { method: 'POST', body, headers, dispatcher: http, headersTimeout: 20_000, bodyTimeout: 20_000 });
      return { status: res.statusCode, text: await res.body.text(), retryAfter: res.headers['retry-after'] };
    };
    const sent = new Map<string, Set<string>>();
    const acked = new Map<string, Set<string>>();
    let ackedBatches = 0;
    let ackedByB = 0;
    let killed: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
    let answered = { accepted: 0, duplicates: 0, replaced: 0 };
    const now = Date.now();
    const runs = agents.map((ag, i) => {
      const batches = Array.from({ length: BATCHES }, (_, k) => {
        const fs = Array.from({ length: PER_BATCH }, (_, j) => makeFinding({ id: `${ag.agent}-${k}-${j}`, host: 'node-a', time: new Date(now - 60_000 + k * 100 + j).toISOString() }));
        return { body: gzipBatch(fs), ids: fs.map((f) => f.id) };
      });
      sent.set(ag.agent, new Set(batches.flatMap((x) => x.ids)));
      acked.set(ag.agent, new Set());
      return runAgent({
        ...ag,
        batches,
        replicas: [a.url, b.url],
        first: i,
        post,
        onAck: (k, answer, via) => {
          for (const id of batches[k]!.ids) acked.get(ag.agent)!.add(id);
          answered = { accepted: answered.accepted + answer.accepted, duplicates: answered.duplicates + answer.duplicates, replaced: answered.replaced + answer.replaced };
          ackedBatches++;
          if (via === b.url) ackedByB++;
          // A third of the way in, with batches in flight on both: kill -9 replica b.
          if (killed === null && ackedBatches >= (AGENTS * BATCHES) / 3) killed = b.kill('SIGKILL');
        },
      });
    });
    const stats = await Promise.all(runs);
    await http.close();
    expect(killed).not.toBeNull();
    expect((await killed!).signal).toBe('SIGKILL');
    expect(ackedByB).toBeGreaterThan(0);
    // Batches that were in flight on b failed and went to a.
    expect(stats.reduce((n, s) => n + s.retries, 0)).toBeGreaterThan(0);

    const total = AGENTS * BATCHES * PER_BATCH;
    const ackedCount = [...acked.values()].reduce((n, s) => n + s.size, 0);
    expect(ackedCount).toBe(total);
    // Exactly once: as many rows as distinct (agent, id), and those are exactly what was acknowledged.
    const [rows, distinct] = pg.psql('SELECT count(*), count(DISTINCT (agent, id)) FROM fleet_findings', 'fleet').trim().split('|').map(Number);
    expect(rows).toBe(total);
    expect(distinct).toBe(total);
    const stored = pg.psql("SELECT agent || ' ' || id FROM fleet_findings", 'fleet').trim().split('\n');
    const want = [...acked].flatMap(([agent, ids]) => [...ids].map((id) => `${agent} ${id}`));
    expect(stored.sort()).toEqual(want.sort());
    // A batch b committed but could not acknowledge came back as duplicates, never as a second row.
    // Each batch was acknowledged once, so the answers add up to the total; what b committed without
    // acknowledging is the duplicates part (no finding here has a revision, so nothing is replaced).
    expect(answered.accepted + answered.duplicates).toBe(total);
    expect(answered.replaced).toBe(0);

    console.info(`replica-kill: ${ackedByB} batches acked by b before the kill; ${stats.reduce((n, s) => n + s.retries, 0)} resends; answers: ${JSON.stringify(answered)}`);
    const stop = await a.kill('SIGTERM');
    expect(stop.code).toBe(0);
  });
});
