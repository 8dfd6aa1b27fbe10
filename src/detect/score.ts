/**
 * A rule compiled for evaluation, and its scoring: the reference SPL adds one point per indicator;
 * here each indicator has a weight, at least one anchor (the behaviour itself) must match, and the
 * sum must reach the rule's threshold. Exclusions veto.
 */
import { severityRank, type Severity } from '../model/finding';
import { compileMatch, type Predicate } from './match';
import type { EventKind, EventView } from '../enrich/event-view';
import type { LoadedRule } from './rule-loader';

export interface CompiledIndicator {
  id: string;
  weight: number;
  anchor: boolean;
  pred: Predicate;
}

export interface CompiledRule {
  spec: LoadedRule;
  indicators: CompiledIndicator[];
  exclusions: Predicate[];
  /** Event kinds any indicator can match; null = all kinds. Lets most events skip the rule cheaply. */
  kinds: Set<EventKind> | null;
  thenPred: Predicate | null;
}

export function compileRule(spec: LoadedRule): CompiledRule {
  const indicators = spec.indicators.map((i) => ({ id: i.id, weight: i.weight, anchor: i.anchor, pred: compileMatch(i.match) }));
  let kinds: Set<EventKind> | null = new Set();
  for (const i of spec.indicators) {
    if (i.match.event === 'any') kinds = null;
    else kinds?.add(i.match.event);
  }
  return {
    spec,
    indicators,
    exclusions: spec.exclusions.map(compileMatch),
    kinds,
    thenPred: spec.sequence ? anyOf(spec.sequence.then.map(compileMatch)) : null,
  };
}

function anyOf(preds: Predicate[]): Predicate {
  return (v) => preds.some((p) => p(v));
}

export interface RuleHit {
  score: number;
  indicators: string[];
  severity: Severity;
}

/** Evaluates indicators; returns the hit when anchor + threshold hold (exclusions checked separately). */
export function scoreRule(rule: CompiledRule, v: EventView): RuleHit | null {
  if (rule.kinds && !rule.kinds.has(v.kind)) return null;
  let score = 0;
  let anchored = false;
  let matched: string[] | null = null;
  for (const ind of rule.indicators) {
    if (!ind.pred(v)) continue;
    score += ind.weight;
    anchored ||= ind.anchor;
    (matched ??= []).push(ind.id);
  }
  if (!anchored || score < rule.spec.threshold || !matched) return null;
  return { score, indicators: matched, severity: escalated(rule.spec.severity, score, rule.spec.escalate) };
}

export function isExcluded(rule: CompiledRule, v: EventView): boolean {
  for (const ex of rule.exclusions) if (ex(v)) return true;
  return false;
}

export function escalated(base: Severity, score: number, steps: readonly { score: number; severity: Severity }[]): Severity {
  let s = base;
  for (const e of steps) if (score >= e.score && severityRank(e.severity) > severityRank(s)) s = e.severity;
  return s;
}
