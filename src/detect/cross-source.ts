/**
 * Joins the two sources on one node: a service-account token read inside a pod (kernel audit, the pod
 * known from the reader's cgroup) followed, within a window, by a Kubernetes API request authenticated
 * as a token bound to that same pod (API-server audit, the pod uid in the bound token's `user.extra`).
 * Either alone may be routine; together they are the theft and its use, so both events are linked in
 * one finding. Only ResponseComplete (or single-stage) requests count, like the kube detector's rules.
 */
import { kubeContext } from './kube/detector';
import { kubeEvidenceText } from './redact/kube-event';
import { kubeRequestPod, type KubeAuditEvent } from '../kube/event';
import { findingId } from './engine';
import type { Finding } from './finding';

export const CROSS_SOURCE_RULE = 'seq-pod-token-read-then-api-request';

/** Host rules whose findings mean "this pod's token was read". */
const TOKEN_READ_COVERS = new Set(['H1', 'H2']);

export interface CrossSourceOptions {
  host: string;
  /** How long after a token read an API request still counts as its use. Default 10 minutes. */
  windowMs?: number;
  /** Pods remembered at most (oldest forgotten first). */
  maxPods?: number;
}

export class CrossSourceCorrelator {
  private readonly host: string;
  private readonly windowMs: number;
  private readonly maxPods: number;
  /** pod uid -> the latest token-read finding in that pod. */
  private readonly reads = new Map<string, Finding>();
  /** Requests already joined (one finding per API request). */
  private readonly joined = new Set<string>();
  readonly stats = { tokenReads: 0, joined: 0 };

  constructor(opts: CrossSourceOptions) {
    this.host = opts.host;
    this.windowMs = opts.windowMs ?? 10 * 60_000;
    this.maxPods = opts.maxPods ?? 10_000;
  }

  /** Remembers token reads among host findings (call with every batch of audit findings). */
  noteHostFindings(findings: readonly Finding[]): void {
    for (const f of findings) {
      const pod = f.container?.pod_uid;
      if (f.source !== 'audit' || !pod || !f.covers.some((c) => TOKEN_READ_COVERS.has(c))) continue;
      this.stats.tokenReads++;
      this.reads.delete(pod);
      this.reads.set(pod, f);
      if (this.reads.size > this.maxPods) this.reads.delete(this.reads.keys().next().value as string);
    }
  }

  /** A finding when this API request used a token of a pod whose token was read shortly before. */
  onKubeEvent(ev: KubeAuditEvent): Finding[] {
    if (ev.stage !== null && ev.stage !== 'ResponseComplete') return [];
    const pod = kubeRequestPod(ev)?.podUid;
    if (!pod) return [];
    const read = this.reads.get(pod);
    if (!read) return [];
    const readMs = Date.parse(read.time);
    if (!(ev.timeMs >= readMs && ev.timeMs - readMs <= this.windowMs)) return [];
    const requestId = ev.auditID ?? `${ev.timeMs}:${ev.requestURI ?? ''}`;
    if (this.joined.has(requestId)) return [];
    this.joined.add(requestId);
    if (this.joined.size > 100_000) this.joined.clear();
    this.stats.joined++;
    const eventIds = [...read.evidence.map((e) => e.event_id), requestId];
    const kube = kubeContext(ev);
    return [
      {
        id: findingId(CROSS_SOURCE_RULE, this.host, eventIds),
        rule: CROSS_SOURCE_RULE,
        title: 'Pod service-account token read, then used against the API server',
        description:
          `The service-account token of pod ${pod} was read by ${read.process?.exe ?? 'a process'} and, ` +
          `${Math.round((ev.timeMs - readMs) / 1000)} s later, a request authenticated with a token bound to that pod ` +
          `(${kube.verb ?? '?'} ${kube.resource ?? ev.requestURI ?? '?'} as ${kube.user ?? '?'}) reached the API server.`,
        severity: 'critical',
        score: read.score + 1,
        confidence: 'high',
        covers: [...new Set([...read.covers, 'K1'])],
        mitre: [...new Set([...read.mitre, 'T1552.007'])],
        time: new Date(ev.timeMs).toISOString(),
        host: this.host,
        source: 'kube-audit',
        indicators: ['token-read-in-pod', 'api-request-with-pod-token'],
        process: read.process,
        container: read.container,
        kube,
        evidence: [
          ...read.evidence.map((e) => ({ ...e, role: `sequence:${read.rule}` })),
          { event_id: requestId, time: new Date(ev.timeMs).toISOString(), role: 'sequence:api-request', records: [{ type: 'k8s', text: kubeEvidenceText(ev) }] },
        ],
      },
    ];
  }
}
