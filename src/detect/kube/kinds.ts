/**
 * The logic behind each rule `kind`: a pure function of one final audit event (the stateful burst
 * kinds live in ./bursts.ts). Each returns a Hit, or null when the rule does not apply or an exclusion
 * covers the request (the reason is handed to `excluded` so it is counted, not lost).
 */
import type { Confidence, Severity } from '../../model/finding';
import { severityRank } from '../../model/finding';
import { effectiveUser, kubeRequestPod, type KubeAuditEvent } from '../../kube/event';
import { CompiledExclude, isAnonymous } from './exclusions';
import type { KubeRule, KubeRuleOf } from './rules';
import { compileRegex, type TextRegex } from '../linear-regex';
import { redactBoundedArgv } from '../bound';

/** The exec command shown in a description: at most this many arguments of this many characters. */
const DESCRIPTION_ARGS = 64;
const DESCRIPTION_ARG_CHARS = 512;

export interface Hit {
  severity: Severity;
  confidence: Confidence;
  indicators: string[];
  description: string;
}

export type Excluded = (ruleId: string, reason: string) => void;

export interface CompiledRule {
  rule: KubeRule;
  exclude: CompiledExclude;
  scripting: TextRegex[];
  credentialPaths: TextRegex[];
  suspicious: TextRegex[];
  socketSuffix: TextRegex | null;
}

export function compileRule(rule: KubeRule): CompiledRule {
  const re = (xs: string[] | undefined) => (xs ?? []).map((s) => compileRegex(s));
  return {
    rule,
    exclude: new CompiledExclude(rule.exclude),
    scripting: 'scripting_user_agents' in rule ? re(rule.scripting_user_agents) : [],
    credentialPaths: rule.kind === 'pod_exec' ? re(rule.credential_paths) : [],
    suspicious: rule.kind === 'pod_exec' ? re(rule.suspicious_commands) : [],
    socketSuffix: rule.kind === 'sensitive_hostpath' && rule.socket_suffix ? compileRegex(rule.socket_suffix) : null,
  };
}

function succeeded(ev: KubeAuditEvent): boolean {
  return ev.responseCode === null || ev.responseCode < 400;
}

function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank(a) >= severityRank(b) ? a : b;
}

/** "alice (as bob)" */
export function describePrincipal(ev: KubeAuditEvent): string {
  const real = ev.user.username ?? '<unknown>';
  const pod = kubeRequestPod(ev);
  const who = pod ? `${real} (token of pod ${pod.podName}${pod.nodeName ? ` on ${pod.nodeName}` : ''})` : real;
  return ev.impersonatedUser ? `${who} (impersonating ${ev.impersonatedUser.username ?? '<unknown>'})` : who;
}

function describeTarget(ev: KubeAuditEvent): string {
  const o = ev.objectRef;
  if (o === null) return ev.requestURI;
  const res = o.subresource ? `${o.resource}/${o.subresource}` : (o.resource ?? '?');
  const where = o.namespace ? `namespace ${o.namespace}` : 'all namespaces';
  return o.name ? `${res} ${o.namespace ? `${o.namespace}/` : ''}${o.name}` : `${res} in ${where}`;
}

function describeSource(ev: KubeAuditEvent): string {
  return `from ${ev.sourceIPs.join(', ') || 'unknown address'}${ev.userAgent ? ` (${ev.userAgent})` : ''}`;
}

function common(ev: KubeAuditEvent, c: CompiledRule, indicators: string[]): Confidence {
  let confidence = c.rule.confidence;
  if (ev.userAgent !== null && c.scripting.some((r) => r.test(ev.userAgent!))) {
    indicators.push('scripting_user_agent');
    confidence = 'high';
  }
  if (ev.impersonatedUser !== null) indicators.push('impersonation');
  return confidence;
}

function excludedBy(c: CompiledRule, ev: KubeAuditEvent, excluded: Excluded): boolean {
  const reason = c.exclude.requestReason(ev) ?? c.exclude.reason(ev);
  if (reason === null) return false;
  excluded(c.rule.id, reason);
  return true;
}

function secretAccess(c: CompiledRule, r: KubeRuleOf<'secret_access'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource === null || o.subresource !== null) return null;
  const sev = r.resources[o.resource];
  if (sev === undefined || !r.verbs.includes(ev.verb)) return null;
  const ok = succeeded(ev);
  if ((r.response === 'success') !== ok) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = [`${o.resource}_${ev.verb}`];
  const confidence = common(ev, c, indicators);
  let severity = sev;
  if (!ok) {
    const denied = ev.responseCode === 401 || ev.responseCode === 403;
    indicators.push(denied ? 'denied' : 'failed');
    if (!denied && r.non_denied_failure_severity) severity = r.non_denied_failure_severity;
  }
  const outcome = ok ? '' : ` (HTTP ${ev.responseCode})`;
  return {
    severity,
    confidence,
    indicators,
    description: `${describePrincipal(ev)} ${ok ? '' : 'tried to '}${ev.verb} ${describeTarget(ev)} ${describeSource(ev)}${outcome}`,
  };
}

function secretListWide(c: CompiledRule, r: KubeRuleOf<'secret_list_wide'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource !== 'secrets' || o.subresource !== null || o.name !== null) return null;
  if (!r.verbs.includes(ev.verb) || !succeeded(ev)) return null;
  const clusterWide = !o.namespace && !ev.requestURI.includes('/namespaces/');
  const severity = clusterWide ? r.cluster_wide_severity : o.namespace ? r.namespaces[o.namespace] : undefined;
  if (severity === undefined) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = [clusterWide ? 'cluster_wide_secret_list' : 'sensitive_namespace_secret_list'];
  const confidence = common(ev, c, indicators);
  return { severity, confidence, indicators, description: `${describePrincipal(ev)} ${ev.verb} ${describeTarget(ev)} ${describeSource(ev)}` };
}

function tokenRequest(c: CompiledRule, r: KubeRuleOf<'token_request'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || ev.verb !== 'create' || !succeeded(ev)) return null;
  let indicator: string;
  if (o.resource === 'serviceaccounts' && o.subresource === 'token') indicator = 'token_request';
  else if (o.resource === 'secrets' && o.subresource === null && r.secret_types.includes(requestObjectField(ev, 'type') ?? '')) {
    indicator = 'service_account_token_secret';
  } else return null;
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = [indicator];
  const confidence = common(ev, c, indicators);
  return {
    severity: r.severity,
    confidence,
    indicators,
    description:
      indicator === 'token_request'
        ? `${describePrincipal(ev)} requested a token for service account ${o.namespace ?? '?'}/${o.name ?? '?'} ${describeSource(ev)}`
        : `${describePrincipal(ev)} created service-account token secret ${o.namespace ?? '?'}/${o.name ?? requestObjectName(ev.requestObject) ?? '?'} ${describeSource(ev)}`,
  };
}

function requestObjectField(ev: KubeAuditEvent, key: string): string | null {
  const ro = ev.requestObject;
  if (typeof ro !== 'object' || ro === null) return null;
  const v = (ro as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : null;
}

/** The command of an exec request: `command=` query parameters (URL-decoded), else requestObject.command. */
export function execCommand(ev: KubeAuditEvent): string[] {
  const q = ev.requestURI.indexOf('?');
  if (q >= 0) {
    const cmd = new URLSearchParams(ev.requestURI.slice(q + 1)).getAll('command');
    if (cmd.length > 0) return cmd;
  }
  const ro = ev.requestObject;
  if (typeof ro === 'object' && ro !== null) {
    const cmd = (ro as Record<string, unknown>).command;
    if (Array.isArray(cmd)) return cmd.filter((x): x is string => typeof x === 'string');
  }
  return [];
}

function podExec(c: CompiledRule, r: KubeRuleOf<'pod_exec'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource !== 'pods' || o.subresource === null || !r.subresources.includes(o.subresource)) return null;
  if (!r.verbs.includes(ev.verb)) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const argv = execCommand(ev);
  const cmdline = argv.join(' ');
  const indicators = [`pod_${o.subresource}`];
  let severity: Severity = r.severity;
  let confidence = common(ev, c, indicators);
  if (argv.length > 0 && c.credentialPaths.some((re) => re.test(cmdline))) {
    indicators.push('credential_path');
    severity = r.credential_path_severity;
    confidence = 'high';
  } else if (argv.length > 0 && c.suspicious.some((re) => re.test(cmdline))) {
    indicators.push('suspicious_command');
    severity = maxSeverity(severity, 'high');
  }
  if (ev.verb === 'get') indicators.push('websocket_exec');
  const ok = succeeded(ev);
  if (!ok) {
    indicators.push('denied');
    severity = 'low';
    confidence = 'low';
  }
  // The command as a finding carries argv: redacted and bounded by construction (a 1 MB exec URI
  // would otherwise be redacted in full, then cut), the detector's text pass is a second net.
  const shown = argv.length ? (redactBoundedArgv(argv, undefined, DESCRIPTION_ARG_CHARS, DESCRIPTION_ARGS) as string[]).join(' ') : '';
  const what = argv.length ? `ran ${JSON.stringify(shown)} in` : `${o.subresource === 'attach' ? 'attached to' : 'opened a shell in'}`;
  return {
    severity,
    confidence,
    indicators,
    description: `${describePrincipal(ev)} ${ok ? '' : 'was refused: '}${what} pod ${o.namespace ?? '?'}/${o.name ?? '?'} ${describeSource(ev)}`,
  };
}

const KUBELET_ACTION = /\/proxy\/(run|exec|attach|portForward|pods|runningpods|containerLogs|logs|cri|debug)(\/|\?|$)/;

function nodeProxy(c: CompiledRule, r: KubeRuleOf<'node_proxy'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource !== 'nodes' || o.subresource !== 'proxy' || !succeeded(ev)) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = ['nodes_proxy'];
  let severity = r.severity;
  if (KUBELET_ACTION.test(ev.requestURI)) {
    indicators.push('kubelet_exec_or_pods');
    severity = r.kubelet_exec_severity;
  }
  const confidence = common(ev, c, indicators);
  return { severity, confidence, indicators, description: `${describePrincipal(ev)} ${ev.verb} via node proxy ${ev.requestURI} ${describeSource(ev)}` };
}

interface PodSpecLike {
  volumes: { name: string; hostPath: string }[];
  images: string[];
}

function asObj(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** The pod spec of a Pod, a workload's template, or a CronJob's job template. */
export function podSpecOf(obj: unknown): PodSpecLike | null {
  const o = asObj(obj);
  const spec = asObj(o?.spec);
  if (spec === null) return null;
  const template = asObj(asObj(spec.template)?.spec) ?? asObj(asObj(asObj(asObj(spec.jobTemplate)?.spec)?.template)?.spec);
  const podSpec = template ?? spec;
  const volumes: { name: string; hostPath: string }[] = [];
  if (Array.isArray(podSpec.volumes)) {
    for (const v of podSpec.volumes) {
      const vo = asObj(v);
      const hp = asObj(vo?.hostPath);
      if (hp && typeof hp.path === 'string') volumes.push({ name: typeof vo?.name === 'string' ? vo.name : '?', hostPath: hp.path });
    }
  }
  const images: string[] = [];
  for (const key of ['containers', 'initContainers', 'ephemeralContainers']) {
    const list = podSpec[key];
    if (!Array.isArray(list)) continue;
    for (const ct of list) {
      const img = asObj(ct)?.image;
      if (typeof img === 'string') images.push(img);
    }
  }
  return { volumes, images };
}

function normalisePath(p: string): string {
  const collapsed = p.replace(/\/+/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed;
}

function sensitiveHostPath(c: CompiledRule, r: KubeRuleOf<'sensitive_hostpath'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource === null || o.subresource !== null || !r.resources.includes(o.resource)) return null;
  if (!r.verbs.includes(ev.verb) || !succeeded(ev)) return null;
  const spec = podSpecOf(ev.requestObject);
  if (spec === null || spec.volumes.length === 0) return null;
  let severity: Severity | null = null;
  const hits: string[] = [];
  for (const v of spec.volumes) {
    const hp = normalisePath(v.hostPath);
    let sev: Severity | null = null;
    for (const s of r.paths) {
      const p = normalisePath(s.path);
      const exposes = hp === p || (hp === '/' ? p !== '/' : p.startsWith(`${hp}/`)) || (s.subtree && p !== '/' && hp.startsWith(`${p}/`));
      if (exposes) sev = sev === null ? s.severity : maxSeverity(sev, s.severity);
    }
    if (c.socketSuffix?.test(hp)) sev = 'critical';
    if (sev !== null) {
      hits.push(hp);
      severity = severity === null ? sev : maxSeverity(severity, sev);
    }
  }
  if (severity === null) return null;
  if (spec.images.length > 0 && spec.images.every((img) => c.exclude.images.some((re) => re.test(img)))) {
    excluded(r.id, 'image');
    return null;
  }
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = ['sensitive_hostpath'];
  if (hits.some((h) => c.socketSuffix?.test(h))) indicators.push('runtime_socket');
  const confidence = common(ev, c, indicators);
  const name = o.name ?? requestObjectName(ev.requestObject) ?? '?';
  return {
    severity,
    confidence,
    indicators,
    description: `${describePrincipal(ev)} ${ev.verb} ${o.resource} ${o.namespace ?? '?'}/${name} mounting host path ${hits.join(', ')} ${describeSource(ev)}`,
  };
}

function requestObjectName(obj: unknown): string | null {
  const md = asObj(asObj(obj)?.metadata);
  if (md === null) return null;
  if (typeof md.name === 'string') return md.name;
  return typeof md.generateName === 'string' ? `${md.generateName}*` : null;
}

function admissionWebhook(c: CompiledRule, r: KubeRuleOf<'admission_webhook'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const o = ev.objectRef;
  if (o === null || o.resource === null || !r.resources.includes(o.resource) || !r.verbs.includes(ev.verb) || !succeeded(ev)) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const indicators = [`${o.resource}_${ev.verb}`];
  const confidence = common(ev, c, indicators);
  return { severity: r.severity, confidence, indicators, description: `${describePrincipal(ev)} ${ev.verb} ${describeTarget(ev)} ${describeSource(ev)}` };
}

function anonymousAllowed(c: CompiledRule, r: KubeRuleOf<'anonymous_allowed'>, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  if (!isAnonymous(effectiveUser(ev))) return null;
  const decision = ev.annotations['authorization.k8s.io/decision'];
  const allowed = decision !== undefined ? decision === 'allow' && succeeded(ev) : ev.responseCode !== null && ev.responseCode < 400;
  if (!allowed) return null;
  if (excludedBy(c, ev, excluded)) return null;
  const resource = ev.objectRef?.resource ?? null;
  const sensitive = resource !== null && r.sensitive_resources.includes(resource);
  const indicators = ['anonymous_allowed'];
  if (sensitive) indicators.push('sensitive_resource');
  const confidence = common(ev, c, indicators);
  return {
    severity: sensitive ? r.sensitive_resource_severity : r.severity,
    confidence,
    indicators,
    description: `anonymous ${ev.verb} ${ev.requestURI} allowed ${describeSource(ev)}`,
  };
}

/** Evaluate one stateless rule against one final event. */
export function evaluateRule(c: CompiledRule, ev: KubeAuditEvent, excluded: Excluded): Hit | null {
  const r = c.rule;
  if (!r.enabled) return null;
  switch (r.kind) {
    case 'secret_access':
      return secretAccess(c, r, ev, excluded);
    case 'secret_list_wide':
      return secretListWide(c, r, ev, excluded);
    case 'token_request':
      return tokenRequest(c, r, ev, excluded);
    case 'pod_exec':
      return podExec(c, r, ev, excluded);
    case 'node_proxy':
      return nodeProxy(c, r, ev, excluded);
    case 'sensitive_hostpath':
      return sensitiveHostPath(c, r, ev, excluded);
    case 'admission_webhook':
      return admissionWebhook(c, r, ev, excluded);
    case 'anonymous_allowed':
      return anonymousAllowed(c, r, ev, excluded);
    case 'secret_burst':
    case 'auth_failure_burst':
      return null; // stateful: ./bursts.ts
  }
}
