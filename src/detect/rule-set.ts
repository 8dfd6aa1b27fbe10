/**
 * The rule set the agent runs: the built-in pack first, then the operator's `rules_dir` files in name
 * order (Falco's model). A file's kind comes from its content, never its name:
 *   `rules:` at the top            host rules (kernel audit)            src/detect/rule-schema.ts
 *   `kind: KubeRulePack`           Kubernetes API-server audit rules    src/detect/kube/rules.ts
 *   `logsource:` + `detection:`    a Sigma rule                         src/detect/sigma/
 *
 * In a host or kube file, an entry whose id is already loaded is refused unless it says what it
 * changes:
 *   - id: x                                  - id: x
 *     enabled: false                           override: { exclusions: append, severity: replace }
 *                                              exclusions: [...]
 *                                              severity: low
 * `append` adds to a list (or merges into a map of lists, such as a kube rule's `exclude`); `replace`
 * sets the field. The changed rule is validated again, so an override cannot make a rule invalid.
 * Every error names file:line:col.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { z } from 'zod';
import { RuleFileError, defaultRulesDir, keyPath, positionOf, problemsOf, type LoadedRule, type RuleProblem } from './rule-loader';
import { ruleSpec } from './rule-schema';
import { kubeRuleSchema, type KubeRule } from './kube/rules';
import { assertTrustedDir, readTrustedRuleFile } from './rule-file-trust';
import { compileSigmaDocument, SIGMA_ID_PREFIX, type SigmaRule } from './sigma/compile';

export type LoadedKubeRule = KubeRule & { file: string; overridden_by?: string[] };

export interface RuleSet {
  host: LoadedRule[];
  kube: LoadedKubeRule[];
  sigma: SigmaRule[];
  /** Every file read, in load order. */
  files: string[];
}

export type RuleFileKind = 'host' | 'kube' | 'sigma';

const HOST_TOP = new Set(['rules']);
const KUBE_TOP = new Set(['kind', 'version', 'lists', 'rules']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A rule file's kind from its top-level keys; null when it is none of the three. */
export function ruleFileKind(top: unknown): RuleFileKind | null {
  if (!isPlainObject(top)) return null;
  if (top.kind === 'KubeRulePack') return 'kube';
  if ('logsource' in top || 'detection' in top) return 'sigma';
  if ('rules' in top) return 'host';
  return null;
}

/** YAML files of a directory in name order (the load order operators rely on). */
export function ruleFilesIn(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

interface Builder {
  host: Map<string, LoadedRule>;
  kube: Map<string, LoadedKubeRule>;
  sigma: Map<string, SigmaRule>;
  /**
   * `enabled:` entries naming Sigma ids, applied once every file is read: a Sigma rule is a file of
   * its own, often named after the toggles file that switches it (`00-local.yaml` < `lnx_...yml`).
   */
  sigmaToggles: { id: string; enabled: unknown; file: string; at: (p: PropertyKey[], m: string) => never }[];
  files: string[];
}

function fail(file: string, doc: Document, lc: LineCounter, p: readonly PropertyKey[], message: string): never {
  throw new RuleFileError(file, [{ ...positionOf(doc, lc, p), key: keyPath(p), message }]);
}

/** Appends lists, merges maps of lists; anything else cannot be appended to. */
function appendValue(base: unknown, add: unknown, where: string): unknown {
  if (Array.isArray(base) && Array.isArray(add)) return [...(base as unknown[]), ...(add as unknown[])];
  if (isPlainObject(base) && isPlainObject(add)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(add)) out[k] = k in base ? appendValue(base[k], v, `${where}.${k}`) : v;
    return out;
  }
  if (base === undefined) return add;
  throw new Error(`${where}: only lists and maps can be appended to; say "replace"`);
}

type Entry = Record<string, unknown>;

function isToggle(e: Entry): boolean {
  const keys = Object.keys(e);
  return keys.includes('enabled') && keys.every((k) => k === 'id' || k === 'enabled');
}

/** Applies one `override:`/`enabled:` entry to a loaded rule; returns the fields to validate again. */
function patched(prev: Record<string, unknown>, e: Entry, at: (p: PropertyKey[], m: string) => never): Record<string, unknown> {
  const next: Record<string, unknown> = { ...prev };
  delete next.file;
  delete next.overridden_by;
  if (isToggle(e)) return { ...next, enabled: e.enabled };
  const how = isPlainObject(e.override) ? e.override : at(['override'], 'override must map field names to "replace" or "append"');
  for (const [field, mode] of Object.entries(how)) {
    if (mode !== 'replace' && mode !== 'append') at(['override', field], `must be "replace" or "append", not ${JSON.stringify(mode)}`);
    if (field === 'id' || field === 'override') at(['override', field], `${field} cannot be overridden`);
    if (!(field in e)) at(['override', field], `override names ${field} but the entry does not give it`);
    try {
      next[field] = mode === 'replace' ? e[field] : appendValue(next[field], e[field], field);
    } catch (err) {
      at([field], (err as Error).message);
    }
  }
  for (const k of Object.keys(e)) {
    if (k !== 'id' && k !== 'override' && !(k in how)) at([k], `${k} is given but not named in override: (say ${k}: replace or append)`);
  }
  return next;
}

function addEntries<R extends { id: string; file: string; overridden_by?: string[] }>(
  kind: 'host' | 'kube',
  schema: z.ZodType<unknown>,
  into: Map<string, R>,
  other: Map<string, { file: string }>,
  file: string,
  doc: Document,
  lc: LineCounter,
  entries: unknown[],
  sigmaToggles: Builder['sigmaToggles'],
): void {
  const seenHere = new Set<string>();
  entries.forEach((item, i) => {
    const base: PropertyKey[] = ['rules', i];
    const at = (p: PropertyKey[], m: string): never => fail(file, doc, lc, [...base, ...p], m);
    const raw: Entry = isPlainObject(item) ? item : at([], 'a rule is a map');
    const id = typeof raw.id === 'string' ? raw.id : at(['id'], 'every rule needs an id');
    const prev = into.get(id);
    const changes = 'override' in raw || isToggle(raw);
    if (changes && !prev && id.startsWith(SIGMA_ID_PREFIX)) {
      if (!isToggle(raw)) at(['override'], `rule "${id}" is a Sigma rule: it can be switched with enabled: true or false; to change anything else, edit a copy of its file`);
      sigmaToggles.push({ id, enabled: raw.enabled, file, at });
      return;
    }
    if (changes && !prev) {
      const elsewhere = other.get(id);
      at(['id'], elsewhere ? `rule "${id}" is a ${kind === 'host' ? 'Kubernetes' : 'host'} rule (${elsewhere.file}); change it from a file of that kind` : `override of unknown rule "${id}"`);
    }
    if (!changes && (prev || seenHere.has(id))) {
      at(['id'], `rule id "${id}" is already defined in ${prev?.file ?? file}; to change it, say override: (fields replaced or lists appended) or enabled: false`);
    }
    if (!changes && other.has(id)) at(['id'], `rule id "${id}" is already defined in ${other.get(id)!.file}`);
    const value = changes ? patched(prev as unknown as Record<string, unknown>, raw, at) : raw;
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new RuleFileError(file, problemsOf(doc, lc, parsed.error.issues, base));
    seenHere.add(id);
    const rule = parsed.data as R;
    if (changes && prev) into.set(id, { ...rule, file: prev.file, overridden_by: [...(prev.overridden_by ?? []), file] });
    else into.set(id, { ...rule, file });
  });
}

function checkTop(file: string, doc: Document, lc: LineCounter, top: Record<string, unknown>, allowed: Set<string>): unknown[] {
  for (const k of Object.keys(top)) if (!allowed.has(k)) fail(file, doc, lc, [k], `unknown top-level key (allowed: ${[...allowed].join(', ')})`);
  if (!Array.isArray(top.rules) || top.rules.length === 0) fail(file, doc, lc, ['rules'], 'rules must be a non-empty list');
  return top.rules as unknown[];
}

/** Adds one file's rules to the set being built. Throws RuleFileError (file:line:col). */
function addFile(b: Builder, file: string, text: string): void {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];
  const problems: RuleProblem[] = [];
  for (const d of list) for (const e of d.errors) problems.push({ ...lc.linePos(e.pos[0]), key: '', message: e.message.split('\n')[0] ?? e.message });
  if (problems.length > 0) throw new RuleFileError(file, problems);
  if (list.length === 0) throw new RuleFileError(file, [{ line: 1, col: 1, key: '', message: 'empty rule file' }]);
  b.files.push(file);
  for (const doc of list) {
    const top = doc.toJS({ maxAliasCount: 1000 }) as unknown;
    const kind = ruleFileKind(top);
    if (kind === null) {
      fail(file, doc, lc, [], 'cannot tell the kind of this rule file: expected rules: (host rules), kind: KubeRulePack (Kubernetes audit rules), or a Sigma rule (logsource: and detection:)');
    }
    if (kind !== 'sigma' && list.length > 1) fail(file, doc, lc, [], 'several YAML documents in one file are only read for Sigma rules');
    const obj = top as Record<string, unknown>;
    if (kind === 'host') {
      addEntries('host', ruleSpec, b.host, b.kube, file, doc, lc, checkTop(file, doc, lc, obj, HOST_TOP), b.sigmaToggles);
    } else if (kind === 'kube') {
      if (obj.version !== 1) fail(file, doc, lc, ['version'], 'version must be 1');
      addEntries('kube', kubeRuleSchema, b.kube, b.host, file, doc, lc, checkTop(file, doc, lc, obj, KUBE_TOP), b.sigmaToggles);
    } else {
      const rule = compileSigmaDocument(obj, file, (p) => positionOf(doc, lc, p));
      const prev = b.sigma.get(rule.id) ?? b.host.get(rule.id) ?? b.kube.get(rule.id);
      if (prev) fail(file, doc, lc, ['id'], `rule id "${rule.id}" is already defined in ${prev.file}`);
      b.sigma.set(rule.id, rule);
    }
  }
}

function applySigmaToggles(b: Builder): void {
  for (const t of b.sigmaToggles) {
    const r = b.sigma.get(t.id) ?? t.at(['id'], `enabled: names unknown Sigma rule "${t.id}" (no file in the pack or rules_dir defines it)`);
    if (typeof t.enabled !== 'boolean') t.at(['enabled'], 'enabled must be true or false');
    b.sigma.set(t.id, { ...r, enabled: t.enabled, overridden_by: [...(r.overridden_by ?? []), t.file] });
  }
}

function checkSequences(host: LoadedRule[]): void {
  const ids = new Set(host.map((r) => r.id));
  for (const r of host) {
    for (const a of r.sequence?.after ?? []) {
      if (!ids.has(a)) throw new RuleFileError(r.file, [{ line: null, key: `${r.id}.sequence.after`, message: `unknown rule "${a}"` }]);
    }
  }
}

/**
 * True when `file` is one of the pack's own files (`rules check src/detect/rules/*.yaml`), or a
 * byte-identical copy of one (src/ beside the dist/ pack the CLI runs from).
 */
function inPack(file: string, packDir: string): boolean {
  try {
    if (path.dirname(fs.realpathSync(file)) === fs.realpathSync(packDir)) return true;
    const twin = path.join(packDir, path.basename(file));
    return fs.existsSync(twin) && fs.readFileSync(twin).equals(fs.readFileSync(file));
  } catch {
    return false;
  }
}

function sameDir(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The pack plus the operator's rules. `user` holds directories (every YAML file in name order, each
 * checked for owner, mode and symlinks) and single files (`rules check FILE`), in the order given.
 */
export function loadRuleSet(user: readonly string[] = [], packDir: string = defaultRulesDir()): RuleSet {
  const b: Builder = { host: new Map(), kube: new Map(), sigma: new Map(), sigmaToggles: [], files: [] };
  for (const f of ruleFilesIn(packDir)) addFile(b, f, fs.readFileSync(f, 'utf8'));
  for (const u of user) {
    if (sameDir(u, packDir)) continue; // rules_dir pointed at the pack itself: nothing to add
    let isDir = false;
    try {
      isDir = fs.statSync(u).isDirectory();
    } catch {
      /* assertTrustedDir / readTrustedRuleFile say what is wrong */
    }
    if (isDir || !fs.existsSync(u)) {
      assertTrustedDir(u);
      for (const f of ruleFilesIn(u)) if (!inPack(f, packDir)) addFile(b, f, readTrustedRuleFile(f, u));
    } else if (!inPack(u, packDir)) {
      addFile(b, u, readTrustedRuleFile(u, path.dirname(u)));
    }
  }
  applySigmaToggles(b);
  const host = [...b.host.values()];
  checkSequences(host);
  return { host, kube: [...b.kube.values()], sigma: [...b.sigma.values()], files: b.files };
}

/**
 * The set the agent runs: the same set `rules check` validates, Sigma rules included (the host engine
 * runs the linux/auditd and linux/process_creation ones, the Kubernetes detector the kubernetes/audit
 * ones). Kept as its own name so the call sites say which use they make of the set.
 */
export function loadRunnableRuleSet(user: readonly string[] = [], packDir: string = defaultRulesDir()): RuleSet {
  return loadRuleSet(user, packDir);
}
