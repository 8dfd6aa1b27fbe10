import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import pino from 'pino';
import { createMetrics, startMetricsServer, type Metrics, type MetricsServer } from '../../../src/daemon/metrics';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sample lines of the text exposition format, by series name. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('metrics', () => {
  let metrics: Metrics;
  let server: MetricsServer;
  beforeAll(async () => {
    metrics = createMetrics();
    server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 }, pino({ level: 'silent' }));
  });
  afterAll(() => server.close());

  it('serves every family on /metrics, including process CPU and memory', async () => {
    metrics.countRecords('SYSCALL', 3);
    metrics.countRecords('EXECVE');
    metrics.countEvent('SYSCALL', 2);
    metrics.countFinding('H2', 'high');
    metrics.countDrop('kernel_backlog_full', 7);
    metrics.countDrop('enobufs', 0); // zero adds nothing, creates no series
    metrics.setKernel({ lost: 12, backlog: 5, backlogLimit: 8192 });
    metrics.setOutboxDepth('hec', 4);
    metrics.countShip('hec', true, 10);
    metrics.countShip('hec', false);
    metrics.setInfo('0.1.0', 'unicast');
    metrics.countBounded('cut', 2);
    metrics.countBounded('set_aside');
    const r = await get(server.address.port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    const s = parseExposition(r.body);
    expect(s.get('credwatch_records_total{type="SYSCALL"}')).toBe(3);
    expect(s.get('credwatch_records_total{type="EXECVE"}')).toBe(1);
    expect(s.get('credwatch_events_total{type="SYSCALL"}')).toBe(2);
    expect(s.get('credwatch_findings_total{rule="H2",severity="high"}')).toBe(1);
    expect(s.get('credwatch_drops_total{cause="kernel_backlog_full"}')).toBe(7);
    expect(s.has('credwatch_drops_total{cause="enobufs"}')).toBe(false);
    expect(s.get('credwatch_kernel_lost')).toBe(12);
    expect(s.get('credwatch_kernel_backlog')).toBe(5);
    expect(s.get('credwatch_kernel_backlog_limit')).toBe(8192);
    expect(s.get('credwatch_outbox_depth{output="hec"}')).toBe(4);
    expect(s.get('credwatch_ship_success_total{output="hec"}')).toBe(1);
    expect(s.get('credwatch_shipped_findings_total{output="hec"}')).toBe(10);
    expect(s.get('credwatch_ship_failures_total{output="hec"}')).toBe(1);
    expect(s.get('credwatch_info{version="0.1.0",mode="unicast"}')).toBe(1);
    expect(s.get('credwatch_findings_bounded_total{kind="cut"}')).toBe(2);
    expect(s.get('credwatch_findings_bounded_total{kind="set_aside"}')).toBe(1);
    expect(s.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('snapshotCounters reports exactly what /metrics reports', async () => {
    metrics.countRecords('PATH', 5);
    metrics.countRecords('weird "type"\\x\n'); // label escaping must agree too
    const snap = metrics.snapshotCounters();
    const s = parseExposition((await get(server.address.port, '/metrics')).body);
    expect(Object.keys(snap).length).toBeGreaterThan(10);
    for (const [series, value] of Object.entries(snap)) expect([series, s.get(series)]).toEqual([series, value]);
    const ours = [...s.keys()].filter((k) => k.startsWith('credwatch_'));
    expect(ours.sort()).toEqual(Object.keys(snap).sort());
    expect(metrics.snapshotDrops()).toEqual({ kernel_backlog_full: 7 });
    expect(metrics.snapshotOutbox()).toEqual({ hec: 4 });
    expect(metrics.snapshotBounded()).toEqual({ cut: 2, set_aside: 1 });
  });

  it('a kernel poll sets the gauges and counts loss as drops by cause', () => {
    const m = createMetrics({ processMetrics: false });
    m.observeKernel({ lost: 100, lostDelta: 0, lostCause: null, backlog: 3, backlogLimit: 8192 });
    m.observeKernel({ lost: 130, lostDelta: 30, lostCause: 'kernel_backlog_full', backlog: 8190, backlogLimit: 8192 });
    expect(m.snapshotCounters()).toEqual({
      credwatch_kernel_lost: 130,
      credwatch_kernel_backlog: 8190,
      credwatch_kernel_backlog_limit: 8192,
      'credwatch_drops_total{cause="kernel_backlog_full"}': 30,
    });
  });

  it('answers 404 elsewhere and 405 to other methods', async () => {
    expect((await get(server.address.port, '/')).status).toBe(404);
    expect((await get(server.address.port, '/metrics', 'POST')).status).toBe(405);
  });
});
