/**
 * The Kubernetes audit detector: turns normalised audit events into findings for rules K1-K8.
 *
 * One request, one finding: the API server logs up to four stages per auditID. Only the final one
 * (ResponseComplete or Panic) is evaluated; an earlier stage is held, and evaluated by tick() when no
 * final stage arrives within `stageTimeoutMs` (a long exec session or watch), or by flush() at the end
 * of a replay. An auditID is evaluated once; later stages of it are counted as duplicates.
 */
import { createHash } from 'node:crypto';
import type { Evidence, Finding, FindingToken, KubeContext } from '../../model/finding';
import { requestToken } from '../../kube/credential';
import type { KubeAuditEvent } from '../../kube/event';
import { kubeEvidenceText, redactText } from '../redact/kube-event';
import { BurstTracker, type BurstHit } from './bursts';
import { compileRule, evaluateRule, describePrincipal, type CompiledRule, type Hit } from './kinds';
import { loadKubeRules, type KubeRule } from './rules';
import type { SigmaRule } from '../sigma/compile';
import { kubeAuditFields } from '../sigma/kube-fields';
import { EVENT_BUDGET_MS } from '../engine';

export interface KubeDetectorOptions {
  host: string;
  /** Rule files (default: the shipped kube-*.yaml). */
  rulesFiles?: string[];
  /** Already-parsed rules (tests); takes precedence over rulesFiles. */
  rules?: KubeRule[];
  /** Sigma rules; the kubernetes/audit ones run here, the others are ignored. */
  sigma?: readonly SigmaRule[];
  /** Wall clock, used only to age held stages (default Date.now). */
  now?: () => number;
  /** How long a non-final stage waits for its ResponseComplete (default 10 s). */
  stageTimeoutMs?: number;
  /** Held stages beyond this are evaluated early, oldest first (default 10 000). */
  maxPending?: number;
  /** auditIDs remembered for dedup (default 200 000). */
  maxRemembered?: number;
}

export interface KubeDetectorStats {
  events: number;
  /** Events evaluated against the rules (one per auditID). */
  evaluated: number;
  /** Later stages (or repeats) of an auditID already evaluated. */
  duplicates: number;
  /** Non-final stages evaluated because their final stage did not arrive in time. */
  stageTimeouts: number;
  /** Non-final stages evaluated early because too many were held. */
  pendingOverflow: number;
  pending: number;
  findings: number;
  findingsByRule: Record<string, number>;
  /** "ruleId:reason" -> count of requests a rule matched but an exclusion covered. */
  excluded: Record<string, number>;
  burstEvictions: number;
  /** Findings not reported because an identical request was reported within suppress_repeats_seconds. */
  suppressedRepeats: number;
  /** Evaluations that took longer than EVENT_BUDGET_MS (the host engine's budget; rules ran to the end). */
  overBudget: number;
  slowestEventMs: number;
}

export interface KubeDetector {
  onKubeEvent(ev: KubeAuditEvent): Finding[];
  /** Evaluate held stages older than the timeout; call periodically (e.g. every second). */
  tick(nowMs: number): Finding[];
  /** Evaluate every held stage now (end of a replay, shutdown). */
  flush(): Finding[];
  readonly stats: KubeDetectorStats;
  readonly rules: readonly KubeRule[];
  /**
   * Replaces the rules (SIGHUP). Held stages and repeat suppression carry over; burst windows start
   * afresh, because a changed threshold or window cannot be applied to counts kept under the old one.
   */
  setRules(next: readonly KubeRule[], sigma?: readonly SigmaRule[]): void;
  /** The Sigma rules this detector runs (logsource kubernetes/audit). */
  readonly sigmaRules: readonly SigmaRule[];
}

const FINAL_STAGES = new Set(['ResponseComplete', 'Panic']);
const STAGE_ORDER: Record<string, number> = { RequestReceived: 0, ResponseStarted: 1, ResponseComplete: 2, Panic: 2 };

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** A kube finding's `token` (the request's credential), absent when it was not a service-account token. */
export function tokenField(ev: KubeAuditEvent): { token?: FindingToken } {
  const token = requestToken(ev);
  return token === undefined ? {} : { token };
}

export function kubeContext(ev: KubeAuditEvent): KubeContext {
  const o = ev.objectRef;
  return {
    user: ev.user.username,
    groups: ev.user.groups,
    impersonated_user: ev.impersonatedUser?.username ?? null,
    verb: ev.verb,
    // The object names come from the request path, which the client writes: a token can be put there.
    resource: o?.resource == null ? null : redactText(o.resource),
    subresource: o?.subresource == null ? null : redactText(o.subresource),
    namespace: o?.namespace == null ? null : redactText(o.namespace),
    name: o?.name == null ? null : redactText(o.name),
    source_ips: ev.sourceIPs,
    user_agent: ev.userAgent === null ? null : redactText(ev.userAgent),
    response_code: ev.responseCode,
    audit_id: ev.auditID,
  };
}

export function createKubeDetector(opts: KubeDetectorOptions): KubeDetector {
  let rules: readonly KubeRule[] = opts.rules ?? loadKubeRules(opts.rulesFiles);
  const now = opts.now ?? Date.now;
  const stageTimeoutMs = opts.stageTimeoutMs ?? 10_000;
  const maxPending = opts.maxPending ?? 10_000;
  const maxRemembered = opts.maxRemembered ?? 200_000;

  const isBurst = (c: CompiledRule): boolean => c.rule.kind === 'secret_burst' || c.rule.kind === 'auth_failure_burst';
  let compiled = rules.map(compileRule);
  let stateless = compiled.filter((c) => !isBurst(c));
  let bursts = compiled.filter(isBurst).map((c) => ({ c, tracker: new BurstTracker(c) }));

  const kubeSigma = (list: readonly SigmaRule[]): SigmaRule[] => list.filter((r) => r.enabled !== false && r.target === 'kube_audit');
  let sigma = kubeSigma(opts.sigma ?? []);

  const pending = new Map<string, { ev: KubeAuditEvent; arrivedMs: number }>();
  const evaluatedIds = new Set<string>();

  const stats: KubeDetectorStats = {
    events: 0,
    evaluated: 0,
    duplicates: 0,
    stageTimeouts: 0,
    pendingOverflow: 0,
    pending: 0,
    findings: 0,
    findingsByRule: {},
    excluded: {},
    burstEvictions: 0,
    suppressedRepeats: 0,
    overBudget: 0,
    slowestEventMs: 0,
  };
  /** repeat key -> event time until which identical findings are suppressed (insertion = age order). */
  const lastReported = new Map<string, number>();
  const MAX_REPEAT_KEYS = 50_000;

  function isRepeat(c: CompiledRule, ev: KubeAuditEvent): boolean {
    const windowMs = c.rule.suppress_repeats_seconds * 1000;
    if (windowMs <= 0) return false;
    const o = ev.objectRef;
    const u = ev.impersonatedUser?.username ?? ev.user.username ?? '';
    const key = [c.rule.id, u, ev.sourceIPs[0] ?? '', ev.userAgent ?? '', ev.verb, o?.resource ?? '', o?.subresource ?? '', o?.namespace ?? '', o?.name ?? '', ev.responseCode ?? ''].join('\u0000');
    const t = Number.isNaN(ev.timeMs) ? now() : ev.timeMs;
    const until = lastReported.get(key);
    if (until !== undefined && t < until) {
      stats.suppressedRepeats++;
      return true;
    }
    lastReported.delete(key);
    lastReported.set(key, t + windowMs);
    if (lastReported.size > MAX_REPEAT_KEYS) {
      const oldest = lastReported.keys().next().value;
      if (oldest !== undefined) lastReported.delete(oldest);
    }
    return false;
  }
  const excluded = (ruleId: string, reason: string): void => {
    const k = `${ruleId}:${reason}`;
    stats.excluded[k] = (stats.excluded[k] ?? 0) + 1;
  };

  function timeOf(ev: KubeAuditEvent): string {
    return new Date(Number.isNaN(ev.timeMs) ? now() : ev.timeMs).toISOString();
  }

  function evidenceFor(ev: KubeAuditEvent, role: string): Evidence {
    return { event_id: ev.auditID, time: timeOf(ev), role, records: [{ type: 'k8s', text: kubeEvidenceText(ev) }] };
  }

  function build(c: CompiledRule, hit: Hit, ev: KubeAuditEvent, id: string, evidence: Evidence[]): Finding {
    const r = c.rule;
    stats.findings++;
    stats.findingsByRule[r.id] = (stats.findingsByRule[r.id] ?? 0) + 1;
    return {
      id,
      rule: r.id,
      title: r.title,
      description: redactText(hit.description),
      severity: hit.severity,
      score: hit.indicators.length,
      confidence: hit.confidence,
      covers: [...r.covers],
      mitre: [...r.mitre],
      time: timeOf(ev),
      host: opts.host,
      source: 'kube-audit',
      indicators: hit.indicators,
      process: null,
      container: null,
      kube: kubeContext(ev),
      ...tokenField(ev),
      evidence,
    };
  }

  function burstFinding(c: CompiledRule, b: BurstHit, ev: KubeAuditEvent): Finding {
    const r = c.rule;
    const first = b.events[0] ?? ev;
    const isSecrets = r.kind === 'secret_burst';
    const hit: Hit = {
      severity: r.severity,
      confidence: r.confidence,
      indicators: [isSecrets ? 'distinct_secrets_burst' : 'denied_requests_burst'],
      description: isSecrets
        ? `${describePrincipal(ev)} read ${b.items.length} distinct secrets within ${(r as { window_seconds: number }).window_seconds} s from ${ev.sourceIPs.join(', ') || 'unknown address'}: ${b.items.join(', ')}`
        : `${describePrincipal(ev)} had ${b.items.length} requests denied within ${(r as { window_seconds: number }).window_seconds} s from ${ev.sourceIPs.join(', ') || 'unknown address'}`,
    };
    const evidence = b.events.map((e) => evidenceFor(e, hit.indicators[0]!));
    return build(c, hit, ev, sha256(`${r.id}\0${b.key}\0${first.auditID}`), evidence);
  }

  function evaluate(ev: KubeAuditEvent): Finding[] {
    const t0 = performance.now();
    const out = evaluateRules(ev);
    const ms = performance.now() - t0;
    if (ms > EVENT_BUDGET_MS) {
      stats.overBudget++;
      if (ms > stats.slowestEventMs) stats.slowestEventMs = Math.round(ms * 10) / 10;
    }
    return out;
  }

  /** Sigma kubernetes/audit rules: one finding per matching request, ids stable per rule and auditID. */
  function sigmaFindings(ev: KubeAuditEvent, out: Finding[]): void {
    if (sigma.length === 0) return;
    const get = kubeAuditFields(ev);
    for (const r of sigma) {
      if (!r.matches(get)) continue;
      const names = r.explain(get).map((n) => `sigma:${n}`);
      const indicators = names.length ? names : ['sigma'];
      stats.findings++;
      stats.findingsByRule[r.id] = (stats.findingsByRule[r.id] ?? 0) + 1;
      out.push({
        id: sha256(`${r.id}\0${ev.auditID}`),
        rule: r.id,
        title: r.title,
        description: redactText(r.description),
        severity: r.severity,
        score: indicators.length,
        confidence: 'medium',
        covers: [],
        mitre: [...r.mitre],
        time: timeOf(ev),
        host: opts.host,
        source: 'kube-audit',
        indicators,
        process: null,
        container: null,
        kube: kubeContext(ev),
        evidence: [evidenceFor(ev, indicators.join(','))],
      });
    }
  }

  function evaluateRules(ev: KubeAuditEvent): Finding[] {
    evaluatedIds.add(ev.auditID);
    if (evaluatedIds.size > maxRemembered) {
      const oldest = evaluatedIds.values().next().value;
      if (oldest !== undefined) evaluatedIds.delete(oldest);
    }
    stats.evaluated++;
    const hits: { c: CompiledRule; hit: Hit }[] = [];
    for (const c of stateless) {
      const hit = evaluateRule(c, ev, excluded);
      if (hit !== null) hits.push({ c, hit });
    }
    // A cluster-wide list already is a secret access (its finding covers K1 and K2): one finding.
    const wide = hits.some((h) => h.c.rule.kind === 'secret_list_wide');
    const out: Finding[] = [];
    for (const { c, hit } of hits) {
      if (wide && c.rule.kind === 'secret_access') continue;
      if (isRepeat(c, ev)) continue;
      out.push(build(c, hit, ev, sha256(`${c.rule.id}\0${ev.auditID}`), [evidenceFor(ev, hit.indicators.join(','))]));
    }
    for (const { c, tracker } of bursts) {
      const b = tracker.observe(ev, excluded);
      if (b !== null) out.push(burstFinding(c, b, ev));
    }
    if (bursts.length) stats.burstEvictions = bursts.reduce((n, x) => n + x.tracker.evictions, 0);
    sigmaFindings(ev, out);
    return out;
  }

  function releasePending(id: string): Finding[] {
    const p = pending.get(id);
    if (p === undefined) return [];
    pending.delete(id);
    stats.pending = pending.size;
    return evaluate(p.ev);
  }

  return {
    get rules() {
      return rules;
    },
    get sigmaRules() {
      return sigma;
    },
    setRules(next: readonly KubeRule[], nextSigma: readonly SigmaRule[] = []): void {
      const nextCompiled = next.map(compileRule); // compile first: a throw keeps the old rules
      rules = next;
      sigma = kubeSigma(nextSigma);
      compiled = nextCompiled;
      stateless = compiled.filter((c) => !isBurst(c));
      bursts = compiled.filter(isBurst).map((c) => ({ c, tracker: new BurstTracker(c) }));
    },
    stats,
    onKubeEvent(ev: KubeAuditEvent): Finding[] {
      stats.events++;
      if (evaluatedIds.has(ev.auditID)) {
        stats.duplicates++;
        return [];
      }
      if (FINAL_STAGES.has(ev.stage)) {
        pending.delete(ev.auditID);
        stats.pending = pending.size;
        return evaluate(ev);
      }
      const held = pending.get(ev.auditID);
      if (held === undefined) {
        pending.set(ev.auditID, { ev, arrivedMs: now() });
      } else if ((STAGE_ORDER[ev.stage] ?? 0) >= (STAGE_ORDER[held.ev.stage] ?? 0)) {
        held.ev = ev; // keep the most advanced stage (ResponseStarted has the response code)
      }
      const out: Finding[] = [];
      while (pending.size > maxPending) {
        const oldest = pending.keys().next().value;
        if (oldest === undefined) break;
        stats.pendingOverflow++;
        out.push(...releasePending(oldest));
      }
      stats.pending = pending.size;
      return out;
    },
    tick(nowMs: number): Finding[] {
      const out: Finding[] = [];
      for (const [id, p] of pending) {
        if (nowMs - p.arrivedMs < stageTimeoutMs) break; // insertion order = arrival order
        stats.stageTimeouts++;
        out.push(...releasePending(id));
      }
      return out;
    },
    flush(): Finding[] {
      const out: Finding[] = [];
      for (const id of [...pending.keys()]) {
        stats.stageTimeouts++;
        out.push(...releasePending(id));
      }
      return out;
    },
  };
}
