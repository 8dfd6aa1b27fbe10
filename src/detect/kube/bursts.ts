/**
 * Windowed counting for the two burst kinds: distinct secrets read by one principal (K1 burst) and
 * denied requests from one principal (K8). Windows run on event time, so replaying a recorded log gives
 * the same findings as following it live. State is bounded: at most `maxKeys` principals are tracked
 * (the least recently active one is dropped, counted) and each holds at most `threshold * 4` entries.
 */
import { effectiveUser, type KubeAuditEvent } from '../../kube/event';
import type { CompiledRule, Excluded } from './kinds';
import type { KubeRuleOf } from './rules';

export interface BurstHit {
  /** Events that make up the burst, oldest first (capped). */
  events: KubeAuditEvent[];
  /** Distinct items counted: secret "namespace/name" or denied request URIs. */
  items: string[];
  key: string;
}

interface Entry {
  item: string;
  timeMs: number;
  ev: KubeAuditEvent;
}

interface KeyState {
  entries: Entry[];
  /** No new finding for this key before this event time (one finding per window). */
  quietUntil: number;
}

const MAX_EVIDENCE_EVENTS = 10;

export class BurstTracker {
  private readonly keys = new Map<string, KeyState>();
  evictions = 0;

  constructor(
    private readonly c: CompiledRule,
    private readonly maxKeys = 10_000,
  ) {}

  private get rule(): KubeRuleOf<'secret_burst'> | KubeRuleOf<'auth_failure_burst'> {
    return this.c.rule as KubeRuleOf<'secret_burst'> | KubeRuleOf<'auth_failure_burst'>;
  }

  /** Feed one final event; returns a hit when this event completes a burst. */
  observe(ev: KubeAuditEvent, excluded: Excluded): BurstHit | null {
    const r = this.rule;
    if (!r.enabled) return null;
    const counted = r.kind === 'secret_burst' ? this.secretItem(r, ev) : this.deniedItem(r, ev);
    if (counted === null) return null;
    const reason = this.c.exclude.requestReason(ev) ?? this.c.exclude.reason(ev);
    if (reason !== null) {
      excluded(r.id, reason);
      return null;
    }
    const u = effectiveUser(ev);
    const key =
      r.kind === 'secret_burst'
        ? `${u.username ?? ''}|${ev.sourceIPs[0] ?? ''}|${ev.userAgent ?? ''}`
        : `${u.username ?? ''}|${ev.sourceIPs[0] ?? ''}`;
    const t = Number.isNaN(ev.timeMs) ? 0 : ev.timeMs;
    const windowMs = r.window_seconds * 1000;
    let st = this.keys.get(key);
    if (st === undefined) {
      if (this.keys.size >= this.maxKeys) {
        const oldest = this.keys.keys().next().value;
        if (oldest !== undefined) this.keys.delete(oldest);
        this.evictions++;
      }
      st = { entries: [], quietUntil: -Infinity };
    } else {
      this.keys.delete(key); // re-insert below: Map order = least recently active first
    }
    this.keys.set(key, st);
    st.entries = st.entries.filter((e) => t - e.timeMs < windowMs);
    if (r.kind === 'secret_burst') {
      // Distinct names: a repeated read refreshes its time instead of counting twice.
      const i = st.entries.findIndex((e) => e.item === counted);
      if (i >= 0) st.entries.splice(i, 1);
    }
    st.entries.push({ item: counted, timeMs: t, ev });
    if (st.entries.length > r.threshold * 4) st.entries.shift();
    if (st.entries.length < r.threshold || t < st.quietUntil) return null;
    st.quietUntil = t + windowMs;
    return {
      key,
      items: st.entries.map((e) => e.item),
      events: st.entries.slice(-MAX_EVIDENCE_EVENTS).map((e) => e.ev),
    };
  }

  private secretItem(r: KubeRuleOf<'secret_burst'>, ev: KubeAuditEvent): string | null {
    const o = ev.objectRef;
    if (o === null || o.resource === null || o.name === null || o.subresource !== null) return null;
    if (!r.resources.includes(o.resource) || !r.verbs.includes(ev.verb)) return null;
    if (ev.responseCode !== null && ev.responseCode >= 400) return null;
    return `${o.namespace ?? ''}/${o.name}`;
  }

  private deniedItem(r: KubeRuleOf<'auth_failure_burst'>, ev: KubeAuditEvent): string | null {
    if (ev.responseCode === null || !r.codes.includes(ev.responseCode)) return null;
    return `${ev.verb} ${ev.requestURI}`;
  }
}
