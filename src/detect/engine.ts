/**
 * The host detection engine: AuditEvent in, redacted Findings out.
 *
 * Per event: fold it into the process table, then evaluate each enabled rule whose indicators can
 * match this event kind (score, threshold, exclusions, operator allowlist), suppress repeats of the
 * same rule by the same process for a short while, remember credential-read findings for sequence
 * joins, and check sequence rules. Everything that leaves is redacted (src/detect/redact.ts).
 */
import { createHash } from 'node:crypto';
import type { AuditEvent } from '../audit/event';
import { ProcessTable } from '../enrich/process-table';
import { UserDb } from '../enrich/users';
import { Allowlist, type AllowConfig } from './allowlist';
import { buildAuditRules, type AuditRuleOptions } from './audit-rules';
import { EventView, runtimeTarget, type ContainerMeta } from './event-view';
import type { CgroupIdentity } from '../enrich/cgroup';
import { SEVERITIES, severityRank, type Evidence, type Finding, type FindingObject, type FindingToken, type FindingProcess, type Severity } from '../model/finding';
import { redactRecords, redactText } from './redact';
import type { LoadedRule } from './rule-loader';
import { loadRunnableRuleSet } from './rule-set';
import type { FieldGetter, SigmaRule } from './sigma/compile';
import { SigmaIndex } from './sigma/prefilter';
import { auditdFields, processCreationFields, requiredRecordTypes } from './sigma/host-fields';
import { compileRule, isExcluded, scoreRule, type CompiledRule } from './score';
import { SequenceTracker } from './sequences';
import { ReaderBaseline } from './reader-baseline';
import { redactBoundedArgv } from './bound';
import type { ProcessNote } from '../native/process-note';
import { WatchedObjects, type ObjectHit } from '../enrich/watched-objects';
import { behaviourKey, HostActors, type BehaviourKey } from './behaviour-key';
import { IncidentGrouper, type IncidentOptions, type IncidentStats } from './incidents';

export interface DetectorOptions {
  host: string;
  /** The operator's rules directory, loaded after the built-in pack (src/detect/rule-set.ts). */
  rulesDir?: string;
  /** Rules given directly (tests, or a set the agent already loaded); wins over rulesDir. */
  rules?: LoadedRule[];
  /** Sigma rules given with `rules` (only their host logsources run here; kube_audit ones are ignored). */
  sigma?: SigmaRule[];
  allow?: AllowConfig;
  processTable?: ProcessTable;
  now?: () => number;
  /** uid -> user name; null disables lookups (replay of another host's log). */
  users?: UserDb | null;
  /** Container id -> pod uid when the cgroup did not say. */
  podUidOf?: (containerId: string) => string | null;
  containerMeta?: (containerId: string) => ContainerMeta | null;
  /** Repeats of a rule by the same process within this window are counted, not emitted. */
  suppressMs?: number;
  auditRules?: AuditRuleOptions;
  /** The watched objects (by inode); the agent registers each watch it installs. Default: empty. */
  objects?: WatchedObjects;
  /** Claims of a pod token a finding's event read (src/enrich/token-claims.ts); absent in replay. */
  tokenClaims?: { claimsFor(hit: ObjectHit): FindingToken | null };
  /**
   * Grouping of rule hits into one finding per behaviour (src/detect/incidents.ts). `false` emits one
   * finding per rule hit, as rule tests want to see them; the daemon and replay always group.
   */
  incidents?: IncidentOptions | false;
}

export interface DetectorStats {
  events: number;
  findings: number;
  sequenceFindings: number;
  excluded: number;
  allowlisted: number;
  suppressed: number;
  /** Events whose evaluation took longer than EVENT_BUDGET_MS (rules still ran to the end). */
  overBudget: number;
  /** The slowest evaluation seen, in ms. */
  slowestEventMs: number;
  /** Incidents opened, by the rule that opened them (updates of an incident are not counted again). */
  byRule: Record<string, number>;
  incidents: IncidentStats;
}

/**
 * One event's evaluation by every rule should take microseconds; linear-time regexes over bounded
 * text (linear-regex.ts) keep the worst case to a few milliseconds. An event over this budget is
 * counted (status, /metrics) so that a rule or input that gets near it is seen before it hurts.
 */
export const EVENT_BUDGET_MS = 5;

export interface Detector {
  onAuditEvent(ev: AuditEvent): Finding[];
  /**
   * An exec/connect event the native triage found no rule could fire on (src/native/process-note.ts):
   * only its process facts are kept, for the parent chains and sequence joins of later events.
   */
  onProcessNote(note: ProcessNote): void;
  tick(nowMs: number): Finding[];
  /** Reloads the pack plus rulesDir; on failure throws a clear error and keeps the old rules. */
  reload(rulesDir?: string): void;
  /** Installs an already-validated host rule set (SIGHUP, where host and kube rules load together). */
  setRules(rules: LoadedRule[], rulesDir?: string, sigma?: readonly SigmaRule[]): void;
  /** Replaces the operator allowlist (SIGHUP). */
  setAllowlist(allow: AllowConfig): void;
  requiredAuditRules(): string[];
  rules(): readonly LoadedRule[];
  /** The Sigma rules this engine runs (logsources linux/auditd and linux/process_creation). */
  sigmaRules(): readonly SigmaRule[];
  readonly processTable: ProcessTable;
  /** Which object a watch hit touched; register installed `-w` rules here (applyRules). */
  readonly objects: WatchedObjects;
  readonly stats: DetectorStats;
}

/** Stable finding id: the same rule on the same host over the same events always gives the same id. */
export function findingId(rule: string, host: string, eventIds: readonly string[]): string {
  return createHash('sha256').update(`${rule}\0${host}\0${eventIds.join('\0')}`).digest('hex').slice(0, 32);
}

/** Several rules on one event update the same incident: the event emits only its last revision. */
/** One event's rule hits share its behaviour key, computed at most once and only when a hit is kept. */
interface HitContext {
  v: EventView;
  key: BehaviourKey | null;
}

function latestInto(out: Finding[] | null, f: Finding): Finding[] {
  if (!out) return [f];
  const at = out.findIndex((x) => x.id === f.id);
  if (at >= 0) out[at] = f;
  else out.push(f);
  return out;
}

/**
 * Processes remembered for repeat suppression (rule, pid, start time, exe, command line). A repeat that
 * slips past an evicted key is not a new finding: the incident grouper merges it and counts it. In a
 * storm of new processes every key is new and none repeats, so the bound is what keeps the map (and the
 * tick's sweep of it, once a second) small; it was 65,536 keys, each with a full command line.
 */
const RECENT_MAX = 8192;

function raise(s: Severity, steps: number): Severity {
  return SEVERITIES[Math.min(SEVERITIES.length - 1, severityRank(s) + steps)] as Severity;
}

function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank(a) >= severityRank(b) ? a : b;
}

class Engine implements Detector {
  readonly processTable: ProcessTable;
  readonly objects: WatchedObjects;
  private loaded: LoadedRule[] = [];
  private sigma: SigmaRule[] = [];
  private sigmaExec = new SigmaIndex<SigmaRule>([]);
  private sigmaAuditd: SigmaRule[] = [];
  /**
   * auditd Sigma rules by the record types they can match (requiredRecordTypes; each index also holds
   * the rules that can match any type), and the index for the other types (only those rules).
   */
  private sigmaByType = new Map<string, SigmaIndex>();
  private sigmaAnyType = new SigmaIndex<SigmaRule>([]);
  private compiled: CompiledRule[] = [];
  private sequenceRules: CompiledRule[] = [];
  private sequenceStarters = new Set<string>();
  private rulesDir: string | undefined;
  private allow: Allowlist;
  private readonly users: UserDb | null;
  private readonly suppressMs: number;
  private readonly recent = new Map<string, number>();
  private sequences = new SequenceTracker();
  /** shim pid -> container its last `runc exec` child worked on (replay has no cgroups). */
  private readonly shimIndex = new Map<number, CgroupIdentity>();
  private readonly viewCtx;
  private readonly incidents: IncidentGrouper | null;
  /** Host actors by parent process, so one tree stays one actor while the table's view of it changes. */
  private readonly hostActors = new HostActors();
  readonly stats: DetectorStats;

  constructor(private readonly opts: DetectorOptions) {
    this.incidents = opts.incidents === false ? null : new IncidentGrouper(opts.host, opts.incidents);
    const incidents = this.incidents?.stats ?? { open: 0, opened: 0, merged: 0, updates: 0, closed: 0, evicted: 0, evidenceCut: 0 };
    this.stats = { events: 0, findings: 0, sequenceFindings: 0, excluded: 0, allowlisted: 0, suppressed: 0, overBudget: 0, slowestEventMs: 0, byRule: {}, incidents };
    this.processTable = opts.processTable ?? new ProcessTable();
    this.objects = opts.objects ?? new WatchedObjects();
    this.allow = new Allowlist(opts.allow ?? []);
    this.users = opts.users === undefined ? new UserDb() : opts.users;
    this.suppressMs = opts.suppressMs ?? 30_000;
    this.rulesDir = opts.rulesDir;
    if (opts.rules) this.install(opts.rules, opts.sigma ?? []);
    else {
      const set = loadRunnableRuleSet(this.rulesDir ? [this.rulesDir] : []);
      this.install(set.host, set.sigma);
    }
    this.viewCtx = {
      table: this.processTable,
      podUidOf: opts.podUidOf,
      containerMeta: opts.containerMeta,
      shimContainer: (pid: number) => this.shimIndex.get(pid) ?? null,
      readers: new ReaderBaseline(),
      objects: this.objects,
    };
  }

  rules(): readonly LoadedRule[] {
    return this.loaded;
  }

  sigmaRules(): readonly SigmaRule[] {
    return this.sigma;
  }

  setAllowlist(allow: AllowConfig): void {
    this.allow = new Allowlist(allow);
  }

  reload(rulesDir?: string): void {
    const dir = rulesDir ?? this.rulesDir;
    const set = loadRunnableRuleSet(dir ? [dir] : []); // throws RuleFileError; the old rules stay in place
    this.setRules(set.host, dir, set.sigma);
  }

  setRules(rules: LoadedRule[], rulesDir?: string, sigma: readonly SigmaRule[] = []): void {
    this.install(rules, sigma);
    this.rulesDir = rulesDir;
  }

  requiredAuditRules(): string[] {
    // A Sigma host rule reads exec events (process_creation, and auditd's EXECVE records) whether or
    // not an enabled pack rule already asks the kernel for them.
    const sigmaExec = this.sigma.length > 0 ? [SIGMA_EXEC_AUDIT] : [];
    return buildAuditRules([...this.loaded, ...sigmaExec], this.opts.auditRules);
  }

  private install(rules: LoadedRule[], sigma: readonly SigmaRule[]): void {
    this.sigma = sigma.filter((r) => r.enabled !== false && (r.target === 'process_creation' || r.target === 'auditd'));
    this.sigmaExec = new SigmaIndex(this.sigma.filter((r) => r.target === 'process_creation'));
    this.sigmaAuditd = this.sigma.filter((r) => r.target === 'auditd');
    const byType = new Map<string, SigmaRule[]>();
    const anyType: SigmaRule[] = [];
    for (const r of this.sigmaAuditd) {
      const types = requiredRecordTypes(r);
      if (types === null) anyType.push(r);
      else for (const t of types) byType.set(t, [...(byType.get(t) ?? []), r]);
    }
    this.sigmaByType = new Map([...byType].map(([t, rs]) => [t, new SigmaIndex([...rs, ...anyType])]));
    this.sigmaAnyType = new SigmaIndex(anyType);
    const enabled = rules.filter((r) => r.enabled);
    const compiled = enabled.map(compileRule);
    this.loaded = rules;
    this.compiled = compiled.filter((r) => !r.spec.sequence);
    this.sequenceRules = compiled.filter((r) => r.spec.sequence);
    this.sequenceStarters = new Set(this.sequenceRules.flatMap((r) => r.spec.sequence?.after ?? []));
    const maxWindow = Math.max(60, ...this.sequenceRules.map((r) => r.spec.sequence?.window_s ?? 0));
    this.sequences = new SequenceTracker(4096, maxWindow * 1000);
  }

  onAuditEvent(ev: AuditEvent): Finding[] {
    const t0 = performance.now();
    const out = this.evaluate(ev);
    const ms = performance.now() - t0;
    if (ms > EVENT_BUDGET_MS) {
      this.stats.overBudget++;
      if (ms > this.stats.slowestEventMs) this.stats.slowestEventMs = Math.round(ms * 10) / 10;
    }
    return out;
  }

  private evaluate(ev: AuditEvent): Finding[] {
    this.stats.events++;
    this.processTable.observe(ev);
    if (!ev.syscall) return this.countFindings(this.sigmaAuditd.length > 0 ? this.evaluateSigma({ v: new EventView(ev, this.viewCtx), key: null }) : null);
    const v = new EventView(ev, this.viewCtx);
    if (v.kind === 'exec') this.noteRuntimeExec(v);
    const hitCtx: HitContext = { v, key: null };
    let out: Finding[] | null = this.sigma.length > 0 ? this.evaluateSigma(hitCtx) : null;
    let jti: string | null | undefined;
    // The token read (its jti) is part of what makes a hit new: a read after a rotation is never a repeat.
    const jtiOf = (): string | null => (jti ??= v.object ? (this.tokenField(v).token?.jti ?? null) : null);
    for (const rule of this.compiled) {
      const hit = scoreRule(rule, v);
      if (!hit) continue;
      const id = rule.spec.id;
      if (isExcluded(rule, v)) {
        this.stats.excluded++;
        continue;
      }
      if (this.allow.allows(id, v)) {
        this.stats.allowlisted++;
        continue;
      }
      // Built at most once, and only when kept: a flood of repeated reads builds (hashes, redacts) nothing.
      let f: Finding | null = null;
      const build = (): Finding => (f ??= this.finding(rule.spec, v, hit.score, hit.indicators, hit.severity));
      if (this.sequenceStarters.has(id)) this.sequences.note(id, hit.score, hit.indicators, v, build);
      if (this.isRepeat(id, v, jtiOf())) {
        this.stats.suppressed++;
        continue;
      }
      out = this.keep(out, hitCtx, id, hit.severity, build, jtiOf());
    }
    for (const rule of this.sequenceRules) {
      const marks = this.sequences.match(rule, v);
      if (marks.length === 0 || this.allow.allows(rule.spec.id, v) || isExcluded(rule, v)) continue;
      // One hit per follow-up event, carrying every credential read it completes.
      const seq = this.sequenceFinding(rule.spec, marks.map((m) => m.finding), v);
      out = this.keep(out, hitCtx, seq.rule, seq.severity, () => seq);
    }
    return this.countFindings(out);
  }

  /**
   * A rule hit that passed the allowlist and repeat suppression: out at once, or (incidents on) into
   * its behaviour's incident, which builds the finding only when it emits. Pack, sequence and Sigma
   * rules alike: one incident per behaviour whichever rules say so.
   */
  private keep(out: Finding[] | null, ctx: HitContext, rule: string, severity: Severity, build: () => Finding, jti?: string | null): Finding[] | null {
    if (!this.incidents) {
      (out ??= []).push(build());
      return out;
    }
    const v = ctx.v;
    ctx.key ??= behaviourKey(v, this.hostActors);
    const touches = v.kind === 'open' || v.kind === 'connect';
    const emitted = this.incidents.hit(ctx.key, { rule, severity, eventId: v.ev.id, timeMs: v.ev.timeMs, time: v.ev.time, touches, ...(jti !== undefined ? { jti } : {}) }, build);
    return emitted ? latestInto(out, emitted) : out;
  }

  private countFindings(out: Finding[] | null): Finding[] {
    if (!out) return [];
    this.count(out);
    return out;
  }

  private count(out: readonly Finding[]): void {
    for (const f of out) {
      if ((f.revision ?? 1) > 1) continue;
      this.stats.findings++;
      this.stats.byRule[f.rule] = (this.stats.byRule[f.rule] ?? 0) + 1;
    }
  }

  /**
   * Sigma host rules: process_creation on exec events, auditd on each record. Their text tests are
   * rule regexes (sigma/value-match.ts) and they run inside onAuditEvent, so under the same budget.
   * The operator allowlist and repeat suppression apply to them as to any rule.
   */
  private evaluateSigma(ctx: HitContext): Finding[] | null {
    const v = ctx.v;
    let out: Finding[] | null = null;
    const fire = (r: SigmaRule, get: FieldGetter): void => {
      if (this.allow.allows(r.id, v)) {
        this.stats.allowlisted++;
        return;
      }
      if (this.isRepeat(r.id, v, null)) {
        this.stats.suppressed++;
        return;
      }
      let f: Finding | null = null;
      const build = (): Finding => {
        if (f) return f;
        const indicators = r.explain(get).map((s) => `sigma:${s}`);
        return (f = this.finding(sigmaInfo(r), v, indicators.length, indicators.length ? indicators : ['sigma'], r.severity));
      };
      out = this.keep(out, ctx, r.id, r.severity, build);
    };
    if (this.sigmaExec.size > 0) {
      const get = processCreationFields(v, (uid) => (this.users ? this.users.userName(uid) : null));
      if (get) for (const r of this.sigmaExec.candidates(get)) if (r.matches(get)) fire(r, get);
    }
    if (this.sigmaAuditd.length > 0) {
      // Record by record (the few texts of one record stay prepared for every rule), each rule at most
      // once per event, only on the record types it can match (records of no such type are not even
      // parsed), and only when the record holds the literals it needs (prefilter.ts).
      let fired: Set<SigmaRule> | null = null;
      const anyType = this.sigmaAnyType.size > 0 ? this.sigmaAnyType.fields : null;
      for (const rec of auditdFields(v.ev, (type) => this.sigmaByType.get(type)?.fields ?? anyType)) {
        for (const r of (this.sigmaByType.get(rec.type) ?? this.sigmaAnyType).candidates(rec.get)) {
          if (fired?.has(r) || !r.matches(rec.get)) continue;
          (fired ??= new Set()).add(r);
          fire(r, rec.get);
        }
      }
    }
    return out;
  }

  onProcessNote(note: ProcessNote): void {
    this.stats.events++;
    this.processTable.observeProcess(note, note.timeMs);
  }

  tick(nowMs: number): Finding[] {
    this.sequences.expire(nowMs);
    for (const [k, t] of this.recent) if (nowMs - t > this.suppressMs) this.recent.delete(k);
    if (!this.incidents) return [];
    const updates = this.incidents.tick(nowMs);
    this.count(updates);
    return updates;
  }

  private noteRuntimeExec(v: EventView): void {
    const ppid = v.ev.process?.ppid;
    const prog = v.exeBase;
    const argv = v.argv;
    if (!ppid || !argv || (prog !== 'runc' && prog !== 'crun')) return;
    const target = runtimeTarget(prog, argv, v.cwd);
    if (!target) return;
    this.shimIndex.delete(ppid);
    this.shimIndex.set(ppid, target);
    if (this.shimIndex.size > 4096) {
      const oldest = this.shimIndex.keys().next();
      if (!oldest.done) this.shimIndex.delete(oldest.value);
    }
  }

  private isRepeat(ruleId: string, v: EventView, jti: string | null): boolean {
    // The start time tells a reused pid apart: at 2,000 new processes a second pids wrap (pid_max
    // 32768) well within the suppression window, and another process is never a repeat.
    const started = v.pid !== null ? (this.processTable.get(v.pid)?.startTime ?? '') : '';
    const key = `${ruleId}\0${v.pid ?? ''}\0${started}\0${v.exe ?? ''}\0${v.cmdline ?? ''}\0${jti ?? ''}`;
    const last = this.recent.get(key);
    const t = v.ev.timeMs;
    if (last !== undefined && t - last >= 0 && t - last < this.suppressMs) return true;
    this.recent.set(key, t);
    if (this.recent.size > RECENT_MAX) {
      const first = this.recent.keys().next();
      if (!first.done) this.recent.delete(first.value);
    }
    return false;
  }

  private evidence(v: EventView, role: string): Evidence {
    return { event_id: v.ev.id, time: v.ev.time, role, records: redactRecords(v.ev.records, redactBoundedArgv(v.ev.process?.argv ?? null)) };
  }

  private process(v: EventView): FindingProcess | null {
    const p = v.ev.process;
    if (!p) return null;
    const entry = p.pid !== null ? this.processTable.get(p.pid) : undefined;
    return {
      pid: p.pid,
      ppid: p.ppid,
      exe: v.exe,
      comm: p.comm,
      argv: redactBoundedArgv(v.argv),
      cwd: p.cwd ?? entry?.cwd ?? null,
      uid: p.uid,
      user: this.users ? this.users.userName(p.uid) : null,
      auid: v.auid,
      tty: p.tty,
      interactive: v.interactive,
      parents: v.parents.map((e) => ({ pid: e.pid, exe: e.exe, argv: redactBoundedArgv(e.argv) })),
    };
  }

  private finding(rule: FindingRule, v: EventView, score: number, indicators: string[], severity: Severity): Finding {
    const c = v.container;
    return {
      id: findingId(rule.id, hostOf(v, this.opts.host), [v.ev.id]),
      rule: rule.id,
      title: redactText(rule.title),
      description: redactText(rule.description),
      severity,
      score,
      confidence: rule.confidence,
      covers: [...rule.covers],
      mitre: [...rule.mitre],
      time: v.ev.time,
      host: hostOf(v, this.opts.host),
      source: 'audit',
      indicators,
      process: this.process(v),
      container: c ? { id: c.containerId, runtime: c.runtime, pod_uid: c.podUid } : null,
      ...objectField(v),
      ...this.tokenField(v),
      kube: null,
      evidence: [this.evidence(v, indicators.join(','))],
    };
  }

  /** The claims of the token the event read, when it read one of our pod credential files. */
  private tokenField(v: EventView): { token?: FindingToken } {
    const o = v.object;
    const token = o && this.opts.tokenClaims ? this.opts.tokenClaims.claimsFor(o) : null;
    return token ? { token } : {};
  }

  private sequenceFinding(rule: LoadedRule, firsts: Finding[], v: EventView): Finding {
    this.stats.sequenceFindings++;
    const c = v.container;
    const evidence: Evidence[] = [];
    const seen = new Set<string>();
    let first = firsts[0] as Finding;
    for (const f of firsts) {
      if (severityRank(f.severity) > severityRank(first.severity) || (f.severity === first.severity && f.score > first.score)) first = f;
      for (const e of f.evidence) {
        if (seen.has(e.event_id)) continue;
        seen.add(e.event_id);
        evidence.push({ ...e, role: `sequence:${rule.id}:first:${f.rule}:${e.role}` });
      }
    }
    const severity = maxSeverity(rule.severity, raise(first.severity, 1));
    return {
      id: findingId(rule.id, hostOf(v, this.opts.host), [...seen, v.ev.id]),
      rule: rule.id,
      title: redactText(rule.title),
      description: redactText(`${rule.description} First: ${[...new Set(firsts.map((f) => f.rule))].join(', ')}.`),
      severity,
      score: first.score + 1,
      confidence: rule.confidence,
      covers: [...new Set([...firsts.flatMap((f) => f.covers), ...rule.covers])],
      mitre: [...new Set([...firsts.flatMap((f) => f.mitre), ...rule.mitre])],
      time: v.ev.time,
      host: hostOf(v, this.opts.host),
      source: 'audit',
      indicators: [...new Set([...firsts.flatMap((f) => f.indicators), 'then'])],
      process: this.process(v),
      container: c ? { id: c.containerId, runtime: c.runtime, pod_uid: c.podUid } : first.container,
      ...(first.token ? { token: first.token } : {}),
      kube: null,
      evidence: [...evidence, this.evidence(v, `sequence:${rule.id}:then`)],
    };
  }
}

/**
 * The host an event happened on: the `node=` auditd wrote into the records (a log replayed from
 * another machine, or a central auditd collecting several), else this detector's host (netlink
 * records carry no node).
 */
function hostOf(v: EventView, host: string): string {
  return v.ev.node !== null && v.ev.node !== '' ? v.ev.node : host;
}

/** What a finding copies from its rule (a pack rule, or a Sigma rule through sigmaInfo). */
type FindingRule = Pick<LoadedRule, 'id' | 'title' | 'description' | 'confidence' | 'covers' | 'mitre'>;

function sigmaInfo(r: SigmaRule): FindingRule {
  return { id: r.id, title: r.title, description: r.description, confidence: 'medium', covers: [], mitre: r.mitre };
}

/** The exec audit rules a Sigma host rule needs (as the pack's exec rules write them). */
const SIGMA_EXEC_AUDIT: Pick<LoadedRule, 'enabled' | 'audit_rules'> = {
  enabled: true,
  audit_rules: ['-a always,exit -F arch=b64 -S execve,execveat -k credwatch:exec', '-a always,exit -F arch=b32 -S execve,execveat -k credwatch:exec'],
};

/** The watched object the event touched, as a finding field (absent when it touched none). */
function objectField(v: EventView): { object?: FindingObject } {
  const o = v.object;
  if (!o) return {};
  return { object: { class: o.class, pod_uid: o.podUid, container_id: o.containerId, via: o.via, foreign: v.objectForeign } };
}

export function createDetector(opts: DetectorOptions): Detector {
  return new Engine(opts);
}
