/**
 * `credwatch rules [list] [--json] [--rules-dir DIR]` and `credwatch rules check FILE...`.
 *
 * list: every rule of the pack — host rules (kernel audit) and Kubernetes audit rules — with id,
 * source, severity, covers and title; `--json` prints one JSON object per line (with MITRE ids,
 * confidence and, for host rules, the audit rules they need).
 * check: validates rule files; exit 0 when valid, exit 2 with `file:line: key: problem` lines.
 * A file named kube-*.yaml is checked as a Kubernetes audit rule file, any other as host rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { RuleFileError, checkRuleSet, defaultRulesDir, loadRuleDir, parseRuleFile } from '../../detect/rule-loader';
import { KubeRuleError, loadKubeRules, parseKubeRules } from '../../detect/kube';

export interface RuleSummary {
  id: string;
  source: 'audit' | 'kube-audit';
  severity: string;
  confidence: string;
  covers: string[];
  mitre: string[];
  title: string;
  enabled: boolean;
  audit_rules?: string[];
}

export function listRules(rulesDir = defaultRulesDir()): RuleSummary[] {
  const host: RuleSummary[] = loadRuleDir(rulesDir).map((r) => ({
    id: r.id,
    source: 'audit',
    severity: r.severity,
    confidence: r.confidence,
    covers: r.covers,
    mitre: r.mitre,
    title: r.title,
    enabled: r.enabled,
    audit_rules: r.audit_rules,
  }));
  const kubeFiles = fs
    .readdirSync(rulesDir)
    .filter((n) => n.startsWith('kube-') && (n.endsWith('.yaml') || n.endsWith('.yml')))
    .sort()
    .map((n) => path.join(rulesDir, n));
  const kube: RuleSummary[] = (kubeFiles.length > 0 ? loadKubeRules(kubeFiles) : []).map((r) => ({
    id: r.id,
    source: 'kube-audit',
    severity: r.severity,
    confidence: r.confidence,
    covers: r.covers,
    mitre: r.mitre,
    title: r.title,
    enabled: r.enabled,
  }));
  return [...host, ...kube];
}

/** Validates one rule file; returns nothing when valid, throws UsageError (exit 2) otherwise. */
export function checkRuleFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    if (path.basename(file).startsWith('kube-')) {
      return `${file}: ${parseKubeRules(text, file).length} Kubernetes audit rules, valid`;
    }
    const rules = parseRuleFile(text, file);
    checkRuleSet(rules);
    return `${file}: ${rules.length} host rules, valid`;
  } catch (err) {
    if (err instanceof RuleFileError || err instanceof KubeRuleError) throw new UsageError(err.message);
    throw err;
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function register(program: Command): void {
  const rules = program.command('rules').description('List the detection rules, or check rule files');

  rules
    .command('list', { isDefault: true })
    .description('List every rule: id, source, severity, covers, title')
    .option('--json', 'one JSON object per line')
    .option('--rules-dir <dir>', 'rule directory (default: the shipped pack)')
    .action((opts: { json?: boolean; rulesDir?: string }) => {
      let list: RuleSummary[];
      try {
        list = listRules(opts.rulesDir ?? defaultRulesDir());
      } catch (err) {
        if (err instanceof RuleFileError || err instanceof KubeRuleError) throw new UsageError(err.message);
        throw err;
      }
      if (opts.json) {
        for (const r of list) process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const w = Math.max(...list.map((r) => r.id.length), 2);
      process.stdout.write(`${pad('ID', w)}  ${pad('SOURCE', 10)}  ${pad('SEVERITY', 8)}  ${pad('COVERS', 10)}  TITLE\n`);
      for (const r of list) {
        const id = r.enabled ? r.id : `${r.id} (disabled)`;
        process.stdout.write(`${pad(id, w)}  ${pad(r.source, 10)}  ${pad(r.severity, 8)}  ${pad(r.covers.join(','), 10)}  ${r.title}\n`);
      }
    });

  rules
    .command('check <files...>')
    .description('Validate rule files (exit 2 with file:line on the first invalid one)')
    .action((files: string[]) => {
      for (const f of files) process.stdout.write(checkRuleFile(f) + '\n');
    });
}
