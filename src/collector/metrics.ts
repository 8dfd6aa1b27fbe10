/**
 * The collector's Prometheus metrics (`GET /metrics`, role `query`): ingest counts (rate = their
 * derivative), batch latency from the end of the body to the commit, duplicates and replacements,
 * rejects by HTTP status, database errors, connections, bodies in flight and database pool use.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from './store';

export interface CollectorMetrics {
  readonly registry: Registry;
  readonly findings: Counter<'result'>;
  readonly batches: Counter;
  readonly batchSeconds: Histogram;
  readonly rejects: Counter<'status'>;
  readonly dbErrors: Counter;
  readonly retentionRemoved: Counter;
}

export function createCollectorMetrics(gauges: { connections: () => Promise<number>; inFlightBytes: () => number; pool?: () => PoolStats | undefined }): CollectorMetrics {
  const registry = new Registry();
  const findings = new Counter({ name: 'credwatch_collector_findings_total', help: 'Findings received, by result (accepted, replaced, duplicate)', labelNames: ['result'] as const, registers: [registry] });
  const batches = new Counter({ name: 'credwatch_collector_batches_total', help: 'Batches committed', registers: [registry] });
  const batchSeconds = new Histogram({
    name: 'credwatch_collector_batch_seconds',
    help: 'Time from a batch body read to its commit',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const rejects = new Counter({ name: 'credwatch_collector_rejects_total', help: 'Requests answered with an error, by HTTP status', labelNames: ['status'] as const, registers: [registry] });
  const dbErrors = new Counter({ name: 'credwatch_collector_db_errors_total', help: 'Storage operations that failed', registers: [registry] });
  const retentionRemoved = new Counter({ name: 'credwatch_collector_retention_removed_total', help: 'Findings removed by retention (older than storage.retention_days)', registers: [registry] });
  new Gauge({
    name: 'credwatch_collector_connections',
    help: 'Open client connections',
    registers: [registry],
    async collect() {
      this.set(await gauges.connections());
    },
  });
  new Gauge({
    name: 'credwatch_collector_inflight_body_bytes',
    help: 'Request body bytes reserved in memory',
    registers: [registry],
    collect() {
      this.set(gauges.inFlightBytes());
    },
  });
  new Gauge({
    name: 'credwatch_collector_db_pool_connections',
    help: 'Database pool: connections open (total), idle, and requests waiting for one (PostgreSQL only)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const p = gauges.pool?.();
      if (!p) return;
      this.set({ state: 'total' }, p.total);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });
  return { registry, findings, batches, batchSeconds, rejects, dbErrors, retentionRemoved };
}
