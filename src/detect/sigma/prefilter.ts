/**
 * Which Sigma rules an event could match at all, found per field rather than per rule. With the
 * SigmaHQ corpus loaded (180 rules) every event was tried against every rule, and the benign workload
 * cost 4.2x the pack alone. Nearly every rule needs some literal in some field (`Image|endswith:
 * /curl`, `CommandLine|contains: secret`, `type: EXECVE` with `a0: base64`): the index groups those
 * literals by field, so an event costs one lower-cased text per field it has and one substring test
 * per literal of that field, and only the rules whose literal is there are evaluated in full.
 *
 * Never narrower than the rule: a rule's needs (compile.ts conditionNeeds) are a necessary condition
 * proven from its condition, the literals of each regex are the ones every match contains
 * (regex-literals.ts), and they are looked for in the same bounded, lower-cased text the regex runs
 * on (linear-regex.ts literalHaystack). A rule with no provable need is always a candidate.
 */
import { literalHaystack } from '../linear-regex';
import { ruleFields, type FieldGetter, type SigmaRule } from './compile';

interface LiteralRules {
  literal: string;
  /** Indexes into the rule list of the rules this literal makes candidates. */
  rules: number[];
}

export class SigmaIndex<R extends Pick<SigmaRule, 'needs' | 'selections'> = SigmaRule> {
  /** Every field the index's rules read (what a record getter must fill). */
  readonly fields: ReadonlySet<string>;
  /** Rules that are always tried (no provable need). */
  private readonly always: number[] = [];
  private readonly byField = new Map<string, LiteralRules[]>();
  private readonly mark: Uint32Array;
  private epoch = 0;

  constructor(readonly rules: readonly R[]) {
    this.mark = new Uint32Array(rules.length);
    this.fields = new Set(rules.flatMap(ruleFields));
    const byLiteral = new Map<string, Map<string, LiteralRules>>();
    rules.forEach((r, i) => {
      if (r.needs === null) {
        this.always.push(i);
        return;
      }
      for (const n of r.needs) {
        let lits = byLiteral.get(n.field);
        if (!lits) byLiteral.set(n.field, (lits = new Map()));
        for (const l of n.literals) {
          const e = lits.get(l) ?? { literal: l, rules: [] };
          if (e.rules[e.rules.length - 1] !== i) e.rules.push(i);
          lits.set(l, e);
        }
      }
    });
    for (const [field, lits] of byLiteral) this.byField.set(field, [...lits.values()]);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The rules the event could match, in load order (so findings come out in the same order). */
  candidates(get: FieldGetter): R[] {
    if (this.rules.length === 0) return [];
    if (++this.epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
    const e = this.epoch;
    let n = 0;
    for (const i of this.always) {
      this.mark[i] = e;
      n++;
    }
    for (const [field, lits] of this.byField) {
      const vals = get(field);
      if (vals === null) continue;
      for (let v = 0; v < vals.length; v++) {
        const hay = literalHaystack(vals[v] as string);
        for (let k = 0; k < lits.length; k++) {
          const l = lits[k] as LiteralRules;
          if (!hay.includes(l.literal)) continue;
          for (const i of l.rules) {
            if (this.mark[i] === e) continue;
            this.mark[i] = e;
            n++;
          }
        }
      }
    }
    if (n === 0) return [];
    const out: R[] = [];
    for (let i = 0; i < this.rules.length; i++) if (this.mark[i] === e) out.push(this.rules[i] as R);
    return out;
  }
}
