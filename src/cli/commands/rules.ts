/**
 * `credwatch rules [list] [--json] [--rules-dir DIR]` and `credwatch rules check FILE|DIR...`.
 *
 * list: every rule the agent would run — the built-in pack, then --rules-dir (host rules, Kubernetes
 * audit rules and Sigma rules alike) — sorted by id, each with the file it came from; `--json` prints
 * one JSON object per line (with MITRE ids, confidence, overrides and, for host rules, the audit rules
 * they need).
 * check: validates the given files and directories as one set on top of the pack, exactly as the agent
 * loads them (src/detect/rule-set.ts); exit 0 when valid, exit 2 with `file:line:col: key: problem`.
 * A file's kind comes from its content.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { RuleFileError } from '../../detect/rule-loader';
import { KubeRuleError } from '../../detect/kube';
import { RuleTrustError } from '../../detect/rule-file-trust';
import { loadRuleSet, type RuleSet } from '../../detect/rule-set';

export interface RuleSummary {
  id: string;
  source: 'audit' | 'kube-audit' | 'sigma';
  severity: string;
  confidence: string;
  covers: string[];
  mitre: string[];
  title: string;
  enabled: boolean;
  /** The file that defined the rule. */
  file: string;
  /** Later files that changed it (override: / enabled:). */
  overridden_by: string[];
  audit_rules?: string[];
}

/** Rule errors become usage errors (exit 2) with their file:line:col text; anything else is a bug. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof RuleFileError || err instanceof KubeRuleError || err instanceof RuleTrustError) throw new UsageError(err.message);
    throw err;
  }
}

export function summarize(set: RuleSet): RuleSummary[] {
  const host: RuleSummary[] = set.host.map((r) => ({
    id: r.id,
    source: 'audit',
    severity: r.severity,
    confidence: r.confidence,
    covers: r.covers,
    mitre: r.mitre,
    title: r.title,
    enabled: r.enabled,
    file: r.file,
    overridden_by: r.overridden_by ?? [],
    audit_rules: r.audit_rules,
  }));
  const kube: RuleSummary[] = set.kube.map((r) => ({
    id: r.id,
    source: 'kube-audit',
    severity: r.severity,
    confidence: r.confidence,
    covers: r.covers,
    mitre: r.mitre,
    title: r.title,
    enabled: r.enabled,
    file: r.file,
    overridden_by: r.overridden_by ?? [],
  }));
  const sigma: RuleSummary[] = set.sigma.map((r) => ({
    id: r.id,
    source: 'sigma',
    severity: r.severity,
    confidence: 'medium',
    covers: [],
    mitre: r.mitre,
    title: r.title,
    enabled: r.enabled !== false,
    file: r.file,
    overridden_by: r.overridden_by ?? [],
  }));
  return [...host, ...kube, ...sigma].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The rules the agent runs with `rulesDir` (none: the pack alone), sorted by id. */
export function listRules(rulesDir?: string): RuleSummary[] {
  return asUsage(() => summarize(loadRuleSet(rulesDir ? [rulesDir] : [])));
}

/** Checks files and directories as one set over the pack; returns the report lines, throws UsageError. */
export function checkRules(paths: readonly string[]): string[] {
  for (const p of paths) if (!fs.existsSync(p)) throw new UsageError(`${p}: no such file or directory`);
  const set = asUsage(() => loadRuleSet(paths));
  const mine = (file: string): boolean => paths.some((p) => path.resolve(file) === path.resolve(p) || path.resolve(file).startsWith(path.resolve(p) + path.sep));
  const counts = new Map<string, { host: number; kube: number; sigma: number }>();
  const bump = (file: string, k: 'host' | 'kube' | 'sigma'): void => {
    if (!mine(file)) return;
    const c = counts.get(file) ?? { host: 0, kube: 0, sigma: 0 };
    c[k]++;
    counts.set(file, c);
  };
  for (const r of set.host) for (const f of [r.file, ...(r.overridden_by ?? [])]) bump(f, 'host');
  for (const r of set.kube) for (const f of [r.file, ...(r.overridden_by ?? [])]) bump(f, 'kube');
  for (const r of set.sigma) bump(r.file, 'sigma');
  const lines: string[] = [];
  for (const f of set.files.filter(mine)) {
    const c = counts.get(f) ?? { host: 0, kube: 0, sigma: 0 };
    const parts = [c.host ? `${c.host} host rules` : '', c.kube ? `${c.kube} Kubernetes audit rules` : '', c.sigma ? `${c.sigma} Sigma rules` : ''].filter(Boolean);
    lines.push(`${f}: ${parts.join(', ') || 'no rules'}, valid`);
  }
  lines.push(`ok: ${set.host.length} host, ${set.kube.length} Kubernetes audit and ${set.sigma.length} Sigma rules with the built-in pack`);
  return lines;
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
    .option('--rules-dir <dir>', 'operator rule directory loaded after the built-in pack')
    .action((opts: { json?: boolean; rulesDir?: string }) => {
      if (opts.rulesDir !== undefined && !fs.existsSync(opts.rulesDir)) throw new UsageError(`${opts.rulesDir}: no such rules directory`);
      const list = listRules(opts.rulesDir);
      if (opts.json) {
        for (const r of list) process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const ids = list.map((r) => (r.enabled ? r.id : `${r.id} (disabled)`));
      const files = list.map((r) => path.basename(r.file) + (r.overridden_by.length ? ` +${r.overridden_by.map((f) => path.basename(f)).join(',')}` : ''));
      const w = Math.max(...ids.map((s) => s.length), 2);
      const fw = Math.max(...files.map((s) => s.length), 4);
      process.stdout.write(`${pad('ID', w)}  ${pad('SOURCE', 10)}  ${pad('SEVERITY', 8)}  ${pad('COVERS', 10)}  ${pad('FILE', fw)}  TITLE\n`);
      list.forEach((r, i) => {
        process.stdout.write(`${pad(ids[i]!, w)}  ${pad(r.source, 10)}  ${pad(r.severity, 8)}  ${pad(r.covers.join(','), 10)}  ${pad(files[i]!, fw)}  ${r.title}\n`);
      });
    });

  rules
    .command('check <paths...>')
    .description('Validate rule files and directories as one set over the built-in pack (exit 2 with file:line:col)')
    .action((paths: string[]) => {
      for (const line of checkRules(paths)) process.stdout.write(line + '\n');
    });
}
