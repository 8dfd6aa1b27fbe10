/**
 * Sigma rules (SigmaHQ format) compiled into predicates over an event's fields. Not wired yet: a Sigma
 * file is refused with its location rather than loaded as something else.
 */
import { RuleFileError } from '../rule-loader';
import type { Severity } from '../finding';

export interface SigmaRule {
  id: string;
  title: string;
  file: string;
  severity: Severity;
  mitre: string[];
}

export type PositionOf = (p: readonly PropertyKey[]) => { line: number | null; col: number | null };

export function compileSigmaDocument(_doc: Record<string, unknown>, file: string, pos: PositionOf): SigmaRule {
  throw new RuleFileError(file, [{ ...pos(['logsource']), key: 'logsource', message: 'Sigma rules are not supported yet' }]);
}
