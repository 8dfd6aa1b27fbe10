/**
 * Reads host rule files and validates them. Errors name the file, the line and the key, because an
 * operator fixing a rule file by hand needs exactly that: `rules/x.yaml:12: rules[0].severity: ...`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import { ruleFileSpec, type RuleSpec } from './rule-schema';

export class RuleFileError extends Error {
  /** A rule problem is a configuration error: exit 2 wherever it is met (run, rules check, config check). */
  readonly exitCode = 2;
  constructor(
    readonly file: string,
    readonly problems: RuleProblem[],
  ) {
    super(problems.map((p) => `${file}:${p.line ?? '?'}${p.col ? `:${p.col}` : ''}: ${p.key ? p.key + ': ' : ''}${p.message}`).join('\n'));
    this.name = 'RuleFileError';
  }
}

/** One problem in a rule file; line and col are 1-based, null when no node could be found. */
export interface RuleProblem {
  line: number | null;
  col?: number | null;
  key: string;
  message: string;
}

export interface LoadedRule extends RuleSpec {
  /** File the rule came from (for messages). */
  file: string;
  /** Later files that changed this rule with `override:` or `enabled:`, in load order. */
  overridden_by?: string[];
}

/** Host rule files in a directory (kube-*.yaml belongs to the Kubernetes audit detector). */
export function hostRuleFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => (n.endsWith('.yaml') || n.endsWith('.yml')) && !n.startsWith('kube-'))
    .sort()
    .map((n) => path.join(dir, n));
}

export function keyPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

/** Line and column of the deepest node that exists along a zod issue path. */
export function positionOf(doc: Document, lc: LineCounter, p: readonly PropertyKey[]): { line: number | null; col: number | null } {
  for (let n = p.length; n >= 0; n--) {
    const node = doc.getIn(p.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]);
  }
  return { line: null, col: null };
}

/** A zod issue list as rule problems, each placed at its node (`prefix` is the path of the validated value). */
export function problemsOf(doc: Document, lc: LineCounter, issues: readonly { path: readonly PropertyKey[]; message: string }[], prefix: readonly PropertyKey[] = []): RuleProblem[] {
  return issues.map((i) => {
    const full = [...prefix, ...i.path];
    return { ...positionOf(doc, lc, full), key: keyPath(full), message: i.message };
  });
}

/** Parses and validates one rule file's text. Throws RuleFileError. */
export function parseRuleFile(text: string, file: string): LoadedRule[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new RuleFileError(
      file,
      doc.errors.map((e) => ({ line: e.linePos?.[0]?.line ?? null, col: e.linePos?.[0]?.col ?? null, key: '', message: e.message.split('\n')[0] ?? e.message })),
    );
  }
  const parsed = ruleFileSpec.safeParse(doc.toJS());
  if (!parsed.success) {
    throw new RuleFileError(file, problemsOf(doc, lc, parsed.error.issues));
  }
  return parsed.data.rules.map((r) => ({ ...r, file }));
}

/** Loads and cross-checks every host rule file of a directory (unique ids, sequence references). */
export function loadRuleDir(dir: string): LoadedRule[] {
  const rules: LoadedRule[] = [];
  for (const file of hostRuleFiles(dir)) rules.push(...parseRuleFile(fs.readFileSync(file, 'utf8'), file));
  checkRuleSet(rules);
  return rules;
}

export function checkRuleSet(rules: LoadedRule[]): void {
  const byId = new Map<string, LoadedRule>();
  for (const r of rules) {
    const prev = byId.get(r.id);
    if (prev) throw new RuleFileError(r.file, [{ line: null, key: 'id', message: `rule id "${r.id}" also defined in ${prev.file}` }]);
    byId.set(r.id, r);
  }
  for (const r of rules) {
    for (const a of r.sequence?.after ?? []) {
      if (!byId.has(a)) throw new RuleFileError(r.file, [{ line: null, key: `${r.id}.sequence.after`, message: `unknown rule "${a}"` }]);
    }
  }
}

/** The rule pack shipped with credwatch: beside the compiled engine (dist) or in src when run from source. */
export function defaultRulesDir(): string {
  return path.join(__dirname, 'rules');
}
