/**
 * The Kubernetes rule pack: YAML data validated with zod. Errors name the file, the line and the key,
 * because an operator editing a rule file needs to know where the mistake is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { SEVERITIES } from '../../model/finding';
import { regexSource } from '../rule-schema';

const severity = z.enum(SEVERITIES);
const confidence = z.enum(['low', 'medium', 'high']);

/** Kube rules match request fields an attacker writes (user agents, names): linear-time regexes only. */
const regex = regexSource;

export const kubeExcludeSchema = z
  .object({
    system_principals: z.boolean().default(false),
    users: z.array(z.string()).default([]),
    groups: z.array(z.string()).default([]),
    sa_namespaces: z.array(z.string()).default([]),
    user_agents: z.array(regex).default([]),
    loopback_controllers: z.boolean().default(false),
    names: z.array(z.string()).default([]),
    request_uris: z.array(z.string()).default([]),
    images: z.array(regex).default([]),
  })
  .strict();

const base = {
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'rule ids are lowercase words joined by dashes'),
  title: z.string().min(1),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  covers: z.array(z.string().regex(/^K[1-8]$/)).min(1),
  mitre: z.array(z.string().regex(/^T\d{4}(\.\d{3})?$/)).min(1),
  severity,
  confidence,
  exclude: kubeExcludeSchema.default(() => kubeExcludeSchema.parse({})),
  /**
   * Identical requests (same rule, principal, source, user agent, verb and object) within this many
   * seconds of a finding are counted, not reported again: a controller polling its own secret must
   * not produce thousands of findings a day. 0 reports every request.
   */
  suppress_repeats_seconds: z.number().min(0).default(0),
};

const secretAccess = z
  .object({
    ...base,
    kind: z.literal('secret_access'),
    verbs: z.array(z.string()).min(1),
    resources: z.record(z.string(), severity),
    response: z.enum(['success', 'failed']),
    non_denied_failure_severity: severity.optional(),
    scripting_user_agents: z.array(regex).default([]),
  })
  .strict();

const secretBurst = z
  .object({
    ...base,
    kind: z.literal('secret_burst'),
    verbs: z.array(z.string()).min(1),
    resources: z.array(z.string()).min(1),
    threshold: z.number().int().min(2),
    window_seconds: z.number().positive(),
  })
  .strict();

const secretListWide = z
  .object({
    ...base,
    kind: z.literal('secret_list_wide'),
    verbs: z.array(z.string()).min(1),
    cluster_wide_severity: severity,
    namespaces: z.record(z.string(), severity),
    scripting_user_agents: z.array(regex).default([]),
  })
  .strict();

const tokenRequest = z
  .object({ ...base, kind: z.literal('token_request'), secret_types: z.array(z.string()).default([]) })
  .strict();

const podExec = z
  .object({
    ...base,
    kind: z.literal('pod_exec'),
    verbs: z.array(z.string()).min(1),
    subresources: z.array(z.string()).min(1),
    credential_path_severity: severity,
    credential_paths: z.array(regex).min(1),
    suspicious_commands: z.array(regex).default([]),
  })
  .strict();

const nodeProxy = z
  .object({ ...base, kind: z.literal('node_proxy'), kubelet_exec_severity: severity })
  .strict();

const sensitiveHostPath = z
  .object({
    ...base,
    kind: z.literal('sensitive_hostpath'),
    resources: z.array(z.string()).min(1),
    verbs: z.array(z.string()).min(1),
    paths: z
      .array(z.object({ path: z.string().startsWith('/'), severity, subtree: z.boolean() }).strict())
      .min(1),
    socket_suffix: regex.optional(),
  })
  .strict();

const admissionWebhook = z
  .object({
    ...base,
    kind: z.literal('admission_webhook'),
    verbs: z.array(z.string()).min(1),
    resources: z.array(z.string()).min(1),
  })
  .strict();

const anonymousAllowed = z
  .object({
    ...base,
    kind: z.literal('anonymous_allowed'),
    sensitive_resource_severity: severity,
    sensitive_resources: z.array(z.string()).default([]),
  })
  .strict();

const authFailureBurst = z
  .object({
    ...base,
    kind: z.literal('auth_failure_burst'),
    codes: z.array(z.number().int()).min(1),
    threshold: z.number().int().min(2),
    window_seconds: z.number().positive(),
  })
  .strict();

export const kubeRuleSchema = z.discriminatedUnion('kind', [
  secretAccess,
  secretBurst,
  secretListWide,
  tokenRequest,
  podExec,
  nodeProxy,
  sensitiveHostPath,
  admissionWebhook,
  anonymousAllowed,
  authFailureBurst,
]);

export const kubeRulePackSchema = z
  .object({
    kind: z.literal('KubeRulePack'),
    version: z.literal(1),
    /** Anchored lists reused by the rules; not interpreted by the engine. */
    lists: z.record(z.string(), z.unknown()).optional(),
    rules: z.array(kubeRuleSchema),
  })
  .strict();

export type KubeRule = z.infer<typeof kubeRuleSchema>;
export type KubeExclude = z.infer<typeof kubeExcludeSchema>;
export type KubeRuleOf<K extends KubeRule['kind']> = Extract<KubeRule, { kind: K }>;

export class KubeRuleError extends Error {
  /** A rule problem is a configuration error: exit 2 wherever it is met (run, rules check, config check). */
  readonly exitCode = 2;
  constructor(
    readonly file: string,
    readonly line: number | null,
    message: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${message}`);
    this.name = 'KubeRuleError';
  }
}

/** The nearest YAML node to a zod issue path, for its line number. */
function nodeAt(doc: ReturnType<typeof parseDocument>, p: readonly PropertyKey[]): YamlNode | null {
  let node: unknown = doc.contents;
  let best: YamlNode | null = (node as YamlNode) ?? null;
  for (const key of p) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      node = pair.value ?? pair.key;
      best = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      if (node === undefined) break;
      best = node as YamlNode;
    } else break;
  }
  return best;
}

/** Parse and validate one rule file's text. */
export function parseKubeRules(text: string, file = '<rules>'): KubeRule[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new KubeRuleError(file, lc.linePos(e.pos[0]).line, e.message.split('\n')[0] ?? e.message);
  }
  const result = kubeRulePackSchema.safeParse(doc.toJS({ maxAliasCount: 1000 }));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const node = nodeAt(doc, issue.path);
    const line = node?.range ? lc.linePos(node.range[0]).line : null;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new KubeRuleError(file, line, `${where}: ${issue.message}`);
  }
  const ids = new Set<string>();
  for (const [i, r] of result.data.rules.entries()) {
    if (ids.has(r.id)) {
      const node = nodeAt(doc, ['rules', i, 'id']);
      throw new KubeRuleError(file, node?.range ? lc.linePos(node.range[0]).line : null, `duplicate rule id ${r.id}`);
    }
    ids.add(r.id);
  }
  return result.data.rules;
}

/** The shipped pack: kube-*.yaml beside the compiled module (copied by scripts/copy-assets.js). */
export function defaultKubeRuleFiles(): string[] {
  const dir = path.join(__dirname, '..', 'rules');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => /^kube-.*\.ya?ml$/.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

/** Load rule files; ids must be unique across files. */
export function loadKubeRules(files: string[] = defaultKubeRuleFiles()): KubeRule[] {
  const rules: KubeRule[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new KubeRuleError(f, null, `cannot read rule file: ${(e as Error).message}`);
    }
    for (const r of parseKubeRules(text, f)) {
      const prev = seen.get(r.id);
      if (prev !== undefined) throw new KubeRuleError(f, null, `rule id ${r.id} already defined in ${prev}`);
      seen.set(r.id, f);
      rules.push(r);
    }
  }
  return rules;
}
