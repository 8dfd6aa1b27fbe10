/**
 * Prometheus metrics, and the same numbers for `credwatch status`.
 *
 * The hot path only adds to plain numbers in Maps (one lookup per call, no label hashing, no
 * allocation once a label value has been seen). prom-client reads those Maps when scraped, through
 * each metric's collect(). snapshotCounters() reads the very same Maps, keyed by the series name as
 * it appears on /metrics, so the status command and the endpoint cannot disagree.
 */
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Severity } from '../model/finding';
import type { ListenAddress } from './config-schema';
import type { Logger } from './logger';

type Kind = 'counter' | 'gauge';

/** Values of one metric family, by label values (joined with \x00). */
class Family {
  readonly values = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly kind: Kind,
    readonly labelNames: readonly string[],
  ) {}

  add(labelValues: string, n: number): void {
    this.values.set(labelValues, (this.values.get(labelValues) ?? 0) + n);
  }

  set(labelValues: string, v: number): void {
    this.values.set(labelValues, v);
  }

  labelsOf(joined: string): Record<string, string> {
    const vals = this.labelNames.length === 0 ? [] : joined.split('\x00');
    const out: Record<string, string> = {};
    this.labelNames.forEach((l, i) => (out[l] = vals[i] ?? ''));
    return out;
  }

  /** Series name exactly as the text exposition format writes it. */
  seriesName(joined: string): string {
    if (this.labelNames.length === 0) return this.name;
    const labels = this.labelsOf(joined);
    const parts = this.labelNames.map((l) => `${l}="${escapeLabelValue(labels[l] ?? '')}"`);
    return `${this.name}{${parts.join(',')}}`;
  }
}

function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export interface KernelGauges {
  lost: number;
  backlog: number;
  backlogLimit: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** Raw records received, by record type name (SYSCALL, EXECVE, ...). */
  countRecords(type: string, n?: number): void;
  /** Reassembled events, by the type of their first record. */
  countEvent(type: string, n?: number): void;
  countFinding(rule: string, severity: Severity): void;
  /** Anything lost or refused, by cause (kernel_lost, enobufs, queue_overflow, serial_gap, parse_error, store_full, ...). */
  countDrop(cause: string, n?: number): void;
  /** Stream conditions worth watching that lose nothing by themselves (serial_gap, reader_pause, incomplete_event). */
  countSignal(kind: string, n?: number): void;
  /** Reader-thread triage verdicts on exec/connect events (summarized, passed, unsure, expired). */
  countTriage(verdict: string, n?: number): void;
  /**
   * Repeat collapse (native/repeat_cache.h, detect/repeat-outcomes.ts), by outcome: reader side
   * `noted` (sent as a repeat note), `template`, `template_evicted`, `skipped`; detector side
   * `collapsed`, `expanded_<why>`, `built`.
   */
  countRepeat(outcome: string, n?: number): void;
  /**
   * Findings changed to stay within bounds, by kind: `cut` (over storage.max_finding_kb: cut and
   * marked, nothing lost), `set_aside` (an output refused one alone as too large: kept locally, acked
   * for that output).
   */
  countBounded(kind: 'cut' | 'set_aside', n?: number): void;
  setKernel(k: KernelGauges): void;
  /** One kernel status poll (AuditLifecycle.startPolling's callback): gauges, plus loss as drops by cause. */
  observeKernel(k: KernelGauges & { lostDelta: number; lostCause: string | null }): void;
  setOutboxDepth(output: string, depth: number): void;
  /** One delivery attempt to an output; `findings` delivered when it succeeded. */
  countShip(output: string, ok: boolean, findings?: number): void;
  setInfo(version: string, mode: string): void;
  /** Every credwatch_* series (counters and gauges), keyed as on /metrics. */
  snapshotCounters(): Record<string, number>;
  /** Drops by cause (for the status snapshot's `drops`). */
  snapshotDrops(): Record<string, number>;
  /** Outbox depth by output (for the status snapshot's `outbox`). */
  snapshotOutbox(): Record<string, number>;
  /** Findings cut / set aside (for the status snapshot's `bounded`). */
  snapshotBounded(): Record<string, number>;
}

export interface MetricsOptions {
  /** Process CPU, memory, event loop lag, GC (prom-client's default collectors). Default true. */
  processMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const families: Family[] = [];

  const family = (name: string, help: string, kind: Kind, labelNames: string[]): Family => {
    const f = new Family(name, kind, labelNames);
    families.push(f);
    const collect = function (this: Counter | Gauge): void {
      this.reset();
      for (const [joined, v] of f.values) {
        const labels = f.labelsOf(joined);
        if (kind === 'counter') (this as Counter).inc(labels, v);
        else (this as Gauge).set(labels, v);
      }
    };
    if (kind === 'counter') new Counter({ name, help, labelNames, registers: [registry], collect });
    else new Gauge({ name, help, labelNames, registers: [registry], collect });
    return f;
  };

  const records = family('credwatch_records_total', 'Audit records received, by record type.', 'counter', ['type']);
  const events = family('credwatch_events_total', 'Audit events reassembled, by type of their first record.', 'counter', ['type']);
  const findings = family('credwatch_findings_total', 'Findings raised, by rule and severity.', 'counter', ['rule', 'severity']);
  const drops = family('credwatch_drops_total', 'Records, events or findings lost, by cause.', 'counter', ['cause']);
  const signals = family(
    'credwatch_stream_signals_total',
    'Stream conditions that are not losses by themselves (serial gaps, reader pauses for backpressure, incomplete events), by kind.',
    'counter',
    ['kind'],
  );
  const triage = family(
    'credwatch_triage_events_total',
    'Exec/connect events by reader-thread triage verdict: summarized (replaced by a process note: no rule could fire), passed (a rule might: full path), unsure or expired (full path: shape not understood, or no EOE in time).',
    'counter',
    ['verdict'],
  );
  const repeats = family(
    'credwatch_repeats_total',
    'Repeat collapse of passed exec/connect events. Reader: noted (sent as a repeat note of an earlier event), template (announced as one), template_evicted, skipped (a shape never collapsed). Detector: collapsed (counted into its incidents from the template\'s outcome), expanded_<why> (rebuilt and sent the full path: unknown, rules, process, parents, container, object, sequence, or why the template cannot stand for repeats), built (a finding a collapsed repeat built from its rebuilt event).',
    'counter',
    ['outcome'],
  );
  const bounded = family(
    'credwatch_findings_bounded_total',
    'Findings changed to stay within size bounds, by kind: cut (over storage.max_finding_kb, cut and marked truncated), set_aside (refused alone as too large by an output, kept locally).',
    'counter',
    ['kind'],
  );
  const shipOk = family('credwatch_ship_success_total', 'Successful deliveries (batches), by output.', 'counter', ['output']);
  const shipFail = family('credwatch_ship_failures_total', 'Failed delivery attempts, by output.', 'counter', ['output']);
  const shipped = family('credwatch_shipped_findings_total', 'Findings delivered, by output.', 'counter', ['output']);
  const outbox = family('credwatch_outbox_depth', 'Findings waiting to be shipped, by output.', 'gauge', ['output']);
  const kernelLost = family('credwatch_kernel_lost', "The kernel audit 'lost' counter as last polled.", 'gauge', []);
  const kernelBacklog = family('credwatch_kernel_backlog', 'Kernel audit backlog (records queued) as last polled.', 'gauge', []);
  const kernelBacklogLimit = family('credwatch_kernel_backlog_limit', 'Kernel audit backlog_limit as last polled.', 'gauge', []);
  const info = family('credwatch_info', 'Agent version and audit read mode (value is always 1).', 'gauge', ['version', 'mode']);

  // The event-loop lag histogram samples with a timer: prom-client's default 10 ms woke the idle agent
  // 100 times a second (most of its main-thread wake-ups under a benign load); 50 ms still sees any
  // stall worth a signal (a stalled loop makes the kernel wait on every audited syscall).
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 50 });

  const snapshotOf = (f: Family): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of f.values) out[k] = v;
    return out;
  };

  return {
    registry,
    countRecords: (type, n = 1) => records.add(type, n),
    countEvent: (type, n = 1) => events.add(type, n),
    countFinding: (rule, severity) => findings.add(`${rule}\x00${severity}`, 1),
    countDrop: (cause, n = 1) => {
      if (n > 0) drops.add(cause, n);
    },
    countSignal: (kind, n = 1) => {
      if (n > 0) signals.add(kind, n);
    },
    countTriage: (verdict, n = 1) => {
      if (n > 0) triage.add(verdict, n);
    },
    countRepeat: (outcome, n = 1) => {
      if (n > 0) repeats.add(outcome, n);
    },
    countBounded: (kind, n = 1) => {
      if (n > 0) bounded.add(kind, n);
    },
    setKernel: (k) => {
      kernelLost.set('', k.lost);
      kernelBacklog.set('', k.backlog);
      kernelBacklogLimit.set('', k.backlogLimit);
    },
    observeKernel: (k) => {
      kernelLost.set('', k.lost);
      kernelBacklog.set('', k.backlog);
      kernelBacklogLimit.set('', k.backlogLimit);
      if (k.lostDelta > 0) drops.add(k.lostCause ?? 'kernel_lost', k.lostDelta);
    },
    setOutboxDepth: (output, depth) => outbox.set(output, depth),
    countShip: (output, ok, n = 0) => {
      if (ok) {
        shipOk.add(output, 1);
        if (n > 0) shipped.add(output, n);
      } else shipFail.add(output, 1);
    },
    setInfo: (version, mode) => {
      info.values.clear();
      info.set(`${version}\x00${mode}`, 1);
    },
    snapshotCounters: () => {
      const out: Record<string, number> = {};
      for (const f of families) for (const [k, v] of f.values) out[f.seriesName(k)] = v;
      return out;
    },
    snapshotDrops: () => snapshotOf(drops),
    snapshotOutbox: () => snapshotOf(outbox),
    snapshotBounded: () => snapshotOf(bounded),
  };
}

export interface MetricsServer {
  readonly address: ListenAddress;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Serves GET /metrics on `listen`. Anything else gets 404/405; nothing here reads a request body. */
export async function startMetricsServer(metrics: Metrics, listen: ListenAddress, logger: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (err: unknown) => {
        logger.error({ error: String(err) }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  if (!isLoopback(listen.host)) logger.warn({ listen: address }, 'metrics endpoint listens beyond loopback; it has no authentication');
  logger.info({ listen: address }, 'metrics endpoint ready');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
