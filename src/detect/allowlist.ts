/**
 * Operator allowlist (from the agent config): known-good readers of credentials on this node, e.g.
 * a backup agent, a CSI node plugin, the CI runner's auid. An entry matches when ALL its given
 * fields match; it applies to the listed rules, or to every rule when `rules` is absent.
 */
import { exclusionSpec, type ExclusionSpec } from './rule-schema';
import { compileMatch, type Predicate } from './match';
import type { EventView } from '../enrich/event-view';

export interface AllowEntry {
  rules?: string[];
  exe?: string[];
  program?: string[];
  uid?: number[];
  auid?: number[];
  container_id?: string[];
  container_image?: string[];
  namespace?: string[];
  argv?: string;
  reason?: string;
}

export type AllowConfig = AllowEntry[];

interface CompiledAllow {
  rules: Set<string> | null;
  pred: Predicate;
}

export class Allowlist {
  private readonly entries: CompiledAllow[];

  constructor(config: AllowConfig = []) {
    this.entries = config.map((e, i) => {
      const { rules, ...rest } = e;
      const parsed = exclusionSpec.safeParse(rest);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`allowlist entry ${i}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
      }
      const spec: ExclusionSpec = parsed.data;
      return { rules: rules ? new Set(rules) : null, pred: compileMatch(spec) };
    });
  }

  allows(ruleId: string, v: EventView): boolean {
    for (const e of this.entries) {
      if (e.rules && !e.rules.has(ruleId)) continue;
      if (e.pred(v)) return true;
    }
    return false;
  }
}
