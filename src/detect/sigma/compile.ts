/**
 * Sigma rules (SigmaHQ format) compiled into predicates over an event's fields. Supported logsources
 * and the fields each may use (src/detect/sigma/fields.ts); anything else — another logsource, a
 * field we cannot fill, an unknown modifier, keyword searches, aggregations — is refused with
 * file:line:col and the reason, never loaded as something else.
 */
import { RuleFileError } from '../rule-loader';
import type { Severity } from '../../model/finding';
import { parseCondition, type Cond } from './condition';
import { fieldTest, type FieldTest } from './value-match';
import { sigmaTarget, fieldAllowed, impossibleValue, type SigmaTarget } from './fields';

/** Field name -> its values in one event (null: the event has no such field). */
export type FieldGetter = (field: string) => readonly string[] | null;

/** A Sigma rule's credwatch id is this prefix and its lower-cased Sigma id. */
export const SIGMA_ID_PREFIX = 'sigma-';

export interface SigmaRule {
  id: string;
  /** false: switched off by an `enabled: false` entry in a rules file (loaded, listed, not run). */
  enabled?: boolean;
  /** Rules files whose `enabled:` entries changed it, in load order. */
  overridden_by?: string[];
  sigma_id: string;
  title: string;
  description: string;
  file: string;
  severity: Severity;
  mitre: string[];
  target: SigmaTarget;
  /** Selection name -> any-of groups of all-of field tests. */
  selections: Map<string, FieldTest[][]>;
  condition: Cond;
  matches(get: FieldGetter): boolean;
  /**
   * What the event must hold for the rule to match: one of these fields with one of its literals, or
   * null when nothing narrower than "any event" can be proven (prefilter.ts).
   */
  needs: readonly FieldNeed[] | null;
  /** The selections the condition names positively that hold for this event (a finding's indicators). */
  explain(get: FieldGetter): string[];
}

/** A field value holding one of `literals` (lower-cased), as FieldTest.literals. */
export interface FieldNeed {
  field: string;
  literals: readonly string[];
}

export type PositionOf = (p: readonly PropertyKey[]) => { line: number | null; col: number | null };

const LEVELS: Record<string, Severity> = { informational: 'info', low: 'low', medium: 'medium', high: 'high', critical: 'critical' };

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function compileSigmaDocument(doc: Record<string, unknown>, file: string, pos: PositionOf): SigmaRule {
  const refuse = (p: PropertyKey[], message: string): never => {
    throw new RuleFileError(file, [{ ...pos(p), key: p.map(String).join('.'), message }]);
  };
  const title = typeof doc.title === 'string' ? doc.title : refuse(['title'], 'a Sigma rule needs a title');
  const sigmaId = typeof doc.id === 'string' ? doc.id : refuse(['id'], 'a Sigma rule needs an id');
  const target = isMap(doc.logsource) ? sigmaTarget(doc.logsource) : null;
  if (!target) refuse(['logsource'], 'unsupported logsource: credwatch reads product: linux + service: auditd, category: process_creation + product: linux, and product: kubernetes + service: audit');
  const level = typeof doc.level === 'string' ? LEVELS[doc.level] : undefined;
  const severity = level ?? refuse(['level'], 'level must be informational, low, medium, high or critical');
  const tags = Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === 'string') : [];
  const mitre = tags.filter((t) => /^attack\.t\d{4}(\.\d{3})?$/.test(t)).map((t) => t.slice(7).toUpperCase());
  const det = isMap(doc.detection) ? doc.detection : refuse(['detection'], 'detection must be a map');
  const selections = new Map<string, FieldTest[][]>();
  for (const [name, body] of Object.entries(det)) {
    if (name === 'timeframe') refuse(['detection', name], 'timeframe (correlation) is not supported');
    if (name === 'condition') continue;
    const groups = Array.isArray(body) ? body : [body];
    selections.set(
      name,
      groups.map((g, gi) => {
        const at: PropertyKey[] = Array.isArray(body) ? ['detection', name, gi] : ['detection', name];
        if (!isMap(g)) return refuse(at, 'keyword searches (a list of bare values) are not supported: name a field');
        return Object.entries(g).map(([key, value]) => {
          const [field = '', ...mods] = key.split('|');
          if (field === '') refuse([...at, key], 'keyword searches (values without a field name) are not supported: name a field');
          if (!fieldAllowed(target!, field)) refuse([...at, key], `field "${field}" cannot be mapped for this logsource`);
          const never = impossibleValue(field, mods, Array.isArray(value) ? value : [value]);
          if (never) refuse([...at, key], never);
          try {
            return fieldTest(field, mods, value);
          } catch (err) {
            return refuse([...at, key], (err as Error).message);
          }
        });
      }),
    );
  }
  const condText = Array.isArray(det.condition) ? refuse(['detection', 'condition'], 'a list of conditions is not supported') : det.condition;
  if (typeof condText !== 'string') refuse(['detection', 'condition'], 'detection needs a condition');
  let condition: Cond;
  try {
    condition = parseCondition(condText as string, [...selections.keys()]);
  } catch (err) {
    return refuse(['detection', 'condition'], (err as Error).message);
  }
  const holds = (get: FieldGetter, name: string): boolean => selectionTest(selections.get(name) ?? [])(get);
  const matches = compileCondition(condition, selections);
  const positive = [...new Set(positiveSelections(condition))];
  const explain = (get: FieldGetter): string[] => positive.filter((name) => holds(get, name));
  const description = typeof doc.description === 'string' ? doc.description : title;
  const needs = conditionNeeds(condition, selections);
  return { id: `${SIGMA_ID_PREFIX}${sigmaId.toLowerCase()}`, sigma_id: sigmaId, title, description, file, severity, mitre, target: target!, selections, condition, matches, explain, needs };
}

type Pred = (get: FieldGetter) => boolean;

/** A selection as one predicate: any group whose every field test holds. */
function selectionTest(groups: readonly FieldTest[][]): Pred {
  return (get) => {
    for (const g of groups) {
      let ok = true;
      for (const t of g) {
        if (!t.test(get(t.field))) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  };
}

/** The condition tree as nested closures, built once per rule (it runs for every event). */
function compileCondition(c: Cond, selections: ReadonlyMap<string, FieldTest[][]>): Pred {
  switch (c.op) {
    case 'sel':
      return selectionTest(selections.get(c.name) ?? []);
    case 'not': {
      const a = compileCondition(c.a, selections);
      return (get) => !a(get);
    }
    case 'and': {
      const a = compileCondition(c.a, selections);
      const b = compileCondition(c.b, selections);
      return (get) => a(get) && b(get);
    }
    case 'or': {
      const a = compileCondition(c.a, selections);
      const b = compileCondition(c.b, selections);
      return (get) => a(get) || b(get);
    }
  }
}

/**
 * A necessary condition of the rule as field literals (see SigmaRule.needs): a selection needs one of
 * its groups, a group any one of its tests (all must hold: the one with the fewest literals is kept);
 * `and` needs either side (the narrower), `or` both sides' needs together, `not` proves nothing.
 */
export function conditionNeeds(c: Cond, selections: ReadonlyMap<string, FieldTest[][]>): FieldNeed[] | null {
  switch (c.op) {
    case 'sel': {
      const out: FieldNeed[] = [];
      for (const g of selections.get(c.name) ?? []) {
        let best: FieldNeed | null = null;
        for (const t of g) {
          const n = t.literals ? { field: t.field, literals: t.literals } : null;
          if (n && (best === null || narrower([n], [best]))) best = n;
        }
        if (best === null) return null;
        out.push(best);
      }
      return out.length > 0 ? out : null;
    }
    case 'not':
      return null;
    case 'and': {
      const a = conditionNeeds(c.a, selections);
      const b = conditionNeeds(c.b, selections);
      if (a === null || b === null) return a ?? b;
      return narrower(a, b) ? a : b;
    }
    case 'or': {
      const a = conditionNeeds(c.a, selections);
      const b = conditionNeeds(c.b, selections);
      return a && b ? [...a, ...b] : null;
    }
  }
}

/**
 * Whether need `a` lets fewer events through than `b`: its shortest literal is longer (`-f` is in
 * half of all command lines, `/etc/shadow` in almost none), then it has fewer literals.
 */
function narrower(a: readonly FieldNeed[], b: readonly FieldNeed[]): boolean {
  const shortest = (n: readonly FieldNeed[]): number => n.reduce((m, x) => x.literals.reduce((k, l) => Math.min(k, l.length), m), Infinity);
  const count = (n: readonly FieldNeed[]): number => n.reduce((k, x) => k + x.literals.length, 0);
  const sa = shortest(a);
  const sb = shortest(b);
  return sa !== sb ? sa > sb : count(a) < count(b);
}

/** Every field a rule's selections read. */
export function ruleFields(r: Pick<SigmaRule, 'selections'>): string[] {
  return [...r.selections.values()].flatMap((groups) => groups.flatMap((g) => g.map((t) => t.field)));
}

/** Selection names that appear under an even number of `not`s. */
export function positiveSelections(c: Cond, neg = false, out: string[] = []): string[] {
  if (c.op === 'sel') {
    if (!neg) out.push(c.name);
  } else if (c.op === 'not') positiveSelections(c.a, !neg, out);
  else {
    positiveSelections(c.a, neg, out);
    positiveSelections(c.b, neg, out);
  }
  return out;
}
