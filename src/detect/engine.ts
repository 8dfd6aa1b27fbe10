/**
 * The host detection engine: an enriched event (src/enrich/enricher.ts) in, redacted Findings out.
 * It only scores: the process table, containers, users, watched objects and token claims are the
 * enrich stage's, which the pipeline runs first (src/pipeline/host-stages.ts).
 *
 * Per event: evaluate each enabled rule whose indicators can match this event kind (score,
 * threshold, exclusions, operator allowlist), suppress repeats of the same rule by the same process
 * for a short while, remember credential-read findings for sequence joins, and check sequence rules. Everything that leaves is redacted (src/detect/redact.ts).
 */
import { createHash } from 'node:crypto';
import { RecentHits } from './recent-hits';
import type { AuditEvent } from '../audit/event';
import { isoTime } from '../audit/event-builder';
import { REPEAT_TEMPLATES_KEPT, type RepeatNote } from '../native/repeat-note';
import { differs, entryPrint, RepeatOutcomes, type RepeatOutcome, type TemplateHit } from './repeat-outcomes';
import { Allowlist, type AllowConfig } from './allowlist';
import { buildAuditRules, type AuditRuleOptions } from './audit-rules';
import type { EventView } from '../enrich/event-view';
import { SEVERITIES, severityRank, type Evidence, type Finding, type FindingObject, type FindingToken, type FindingProcess, type Severity } from '../model/finding';
import { redactText } from './redact';
import type { LoadedRule } from './rule-loader';
import { loadRunnableRuleSet } from './rule-set';
import type { FieldGetter, SigmaRule } from './sigma/compile';
import { SigmaIndex } from './sigma/prefilter';
import { auditdFields, processCreationFields, requiredRecordTypes } from './sigma/host-fields';
import { compileRule, isExcluded, scoreRule, type CompiledRule } from './score';
import { SequenceTracker } from './sequences';
import { redactBoundedArgv } from './bound';
import { evidenceRecords, findingArgv } from './event-redaction';
import { behaviourKey, HostActors, onNode, sockaddrObject, type BehaviourKey } from './behaviour-key';
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
  now?: () => number;
  /** Repeats of a rule by the same process within this window are counted, not emitted. */
  suppressMs?: number;
  auditRules?: AuditRuleOptions;
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
  repeats: RepeatStats;
}

/** Repeat notes of the native reader (src/native/repeat-note.ts, detect/repeat-outcomes.ts). */
export interface RepeatStats {
  /** Repeats decided from their template's outcome: counted into incidents without a full evaluation. */
  collapsed: number;
  /** Repeats sent back to the full path, by why: the template's outcome was unknown or not reusable, or the repeat's view differed. */
  expanded: Record<string, number>;
  /** Findings a collapsed repeat still had to build (an incident kept its evidence): from the rebuilt event. */
  built: number;
}

/**
 * One event's evaluation by every rule should take microseconds; linear-time regexes over bounded
 * text (linear-regex.ts) keep the worst case to a few milliseconds. An event over this budget is
 * counted (status, /metrics) so that a rule or input that gets near it is seen before it hurts.
 */
export const EVENT_BUDGET_MS = 5;

export interface Detector {
  /** One event, as the enrich stage sees it. */
  /**
   * `template`: the native reader announced this event as a repeat template (src/native/repeat-note.ts);
   * its outcome is remembered for onRepeat().
   */
  onEvent(v: EventView, template?: number): Finding[];
  /**
   * A repeat note: decided from its template's outcome when everything that outcome depended on is the
   * same for the repeat (detect/repeat-outcomes.ts), else null and the caller sends the rebuilt records
   * through the full path. `enrich` is the enrich stage (the repeat's view); `rebuild` the full event's
   * view, for a finding that must be built.
   */
  onRepeat(note: RepeatNote, enrich: (ev: AuditEvent) => EventView, rebuild: () => EventView): Finding[] | null;
  /**
   * How long one event took through enrich and detect (host-stages.ts times both, as the budget
   * covers the process table's fold of hostile input too): counted when over EVENT_BUDGET_MS.
   */
  countEventMs(ms: number): void;
  /**
   * An exec/connect event the native triage found no rule could fire on (src/native/process-note.ts):
   * counted as an event; its process facts went to the enrich stage.
   */
  onProcessNote(): void;
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

/**
 * What an open or connect touched, for the repeat key: the inode the kernel printed for a watched object
 * (one file under any name), else the first name; the endpoint as a behaviour key names it; nothing for an exec (its command
 * line is in the key already).
 */
function touched(v: EventView): string {
  if (v.kind === 'open') return `open:${v.object?.inode ?? v.paths[0] ?? ''}`;
  if (v.kind === 'connect') return `connect:${v.sockaddr ? sockaddrObject(v.sockaddr) : ''}`;
  return v.kind;
}

/** The jti of the pod token the event read (null: no watched object, no claims, or a token without one). */
function tokenJti(v: EventView): string | null {
  return v.object ? (v.tokenClaims()?.jti ?? null) : null;
}

function raise(s: Severity, steps: number): Severity {
  return SEVERITIES[Math.min(SEVERITIES.length - 1, severityRank(s) + steps)] as Severity;
}

function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank(a) >= severityRank(b) ? a : b;
}

class Engine implements Detector {
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
  private readonly suppressMs: number;
  /** Repeat suppression keys -> event time (bounded, forgotten after suppressMs: recent-hits.ts). */
  private readonly recent: RecentHits;
  /** Outcomes of repeat templates; `epoch` changes with the rules and the allowlist, forgetting them all. */
  private readonly outcomes = new RepeatOutcomes(REPEAT_TEMPLATES_KEPT);
  private epoch = 0;
  private sequences = new SequenceTracker();
  private readonly incidents: IncidentGrouper | null;
  /** Host actors by parent process, so one tree stays one actor while the table's view of it changes. */
  private readonly hostActors = new HostActors();
  /** Redacted rule titles and descriptions (ruleText), for the rules installed. */
  private readonly ruleTexts = new Map<string, string>();
  readonly stats: DetectorStats;

  constructor(private readonly opts: DetectorOptions) {
    this.incidents = opts.incidents === false ? null : new IncidentGrouper(opts.host, opts.incidents);
    const incidents = this.incidents?.stats ?? { open: 0, opened: 0, merged: 0, updates: 0, closed: 0, evicted: 0, evidenceCut: 0, folded: 0 };
    const repeats: RepeatStats = { collapsed: 0, expanded: {}, built: 0 };
    this.stats = { events: 0, findings: 0, sequenceFindings: 0, excluded: 0, allowlisted: 0, suppressed: 0, overBudget: 0, slowestEventMs: 0, byRule: {}, incidents, repeats };
    this.allow = new Allowlist(opts.allow ?? []);
    this.suppressMs = opts.suppressMs ?? 30_000;
    this.recent = new RecentHits(RECENT_MAX, this.suppressMs);
    this.rulesDir = opts.rulesDir;
    if (opts.rules) this.install(opts.rules, opts.sigma ?? []);
    else {
      const set = loadRunnableRuleSet(this.rulesDir ? [this.rulesDir] : []);
      this.install(set.host, set.sigma);
    }
  }

  rules(): readonly LoadedRule[] {
    return this.loaded;
  }

  sigmaRules(): readonly SigmaRule[] {
    return this.sigma;
  }

  setAllowlist(allow: AllowConfig): void {
    this.allow = new Allowlist(allow);
    this.forgetOutcomes();
  }

  private forgetOutcomes(): void {
    this.epoch++;
    this.outcomes.clear();
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
    this.forgetOutcomes();
    this.ruleTexts.clear();
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

  countEventMs(ms: number): void {
    if (ms > EVENT_BUDGET_MS) {
      this.stats.overBudget++;
      if (ms > this.stats.slowestEventMs) this.stats.slowestEventMs = Math.round(ms * 10) / 10;
    }
  }

  onEvent(v: EventView, template?: number): Finding[] {
    const found = this.evaluate(v, template);
    return this.incidents?.holding ? this.withReleased(found, v.ev.timeMs) : found;
  }

  /**
   * Incidents the grouper held (a name that may be an alias) whose hold passed by this event's time go
   * out before this event's own findings: they were opened first.
   */
  private withReleased(found: Finding[], nowMs: number): Finding[] {
    const released = this.incidents!.releaseHeld(nowMs);
    if (released.length === 0) return found;
    this.count(released);
    return [...released, ...found];
  }

  private evaluate(v: EventView, template?: number): Finding[] {
    this.stats.events++;
    if (!v.ev.syscall) return this.countFindings(this.sigmaAuditd.length > 0 ? this.evaluateSigma({ v, key: null }) : null);
    // A repeat template's trace: what onRepeat() needs to decide its repeats the same way.
    const trace: RepeatOutcome | null = template !== undefined ? this.outcomeOf(v) : null;
    const hitCtx: HitContext = { v, key: null };
    let out: Finding[] | null = this.sigma.length > 0 ? this.evaluateSigma(hitCtx) : null;
    let jti: string | null | undefined;
    // The token read (its jti) is part of what makes a hit new: a read after a rotation is never a repeat.
    const jtiOf = (): string | null => (jti ??= tokenJti(v));
    for (const rule of this.compiled) {
      const hit = scoreRule(rule, v);
      if (!hit) continue;
      const id = rule.spec.id;
      if (isExcluded(rule, v)) {
        this.stats.excluded++;
        if (trace) trace.excluded++;
        continue;
      }
      if (this.allow.allows(id, v)) {
        this.stats.allowlisted++;
        if (trace) trace.allowlisted++;
        continue;
      }
      if (trace) trace.hits.push({ rule, score: hit.score, indicators: hit.indicators, severity: hit.severity });
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
      if (trace && rule.thenPred?.(v)) trace.thenRules.push(rule);
      const marks = this.sequences.match(rule, v);
      if (marks.length === 0 || this.allow.allows(rule.spec.id, v) || isExcluded(rule, v)) continue;
      // One hit per follow-up event, carrying every credential read it completes.
      const seq = this.sequenceFinding(rule.spec, marks.map((m) => m.finding), v);
      out = this.keep(out, hitCtx, seq.rule, seq.severity, () => seq);
    }
    if (trace && template !== undefined) {
      if (v.contextual) trace.unusable ??= 'context';
      // A read that starts a sequence and is itself a use of one: the repeat would have to note its
      // mark before asking couldJoin(), in the full path's order. Rare; such repeats take the full path.
      if (trace.thenRules.length > 0 && trace.hits.some((h) => this.sequenceStarters.has(h.rule.spec.id))) trace.unusable ??= 'sequence-start';
      trace.jti = jtiOf();
      this.outcomes.set(template, trace);
    }
    return this.countFindings(out);
  }

  /** The start of a template's outcome: what its view read, and whether it can stand for repeats at all. */
  private outcomeOf(v: EventView): RepeatOutcome {
    const ev = v.ev;
    const entry = v.entry;
    let unusable: string | null = null;
    if (this.sigma.length > 0) unusable = 'sigma';
    else if (!this.incidents) unusable = 'ungrouped';
    else if (ev.incomplete || ev.problems || !ev.process || ev.process.pid === null) unusable = 'shape';
    else if (v.kind === 'exec' && (v.exeBase === 'runc' || v.exeBase === 'crun')) unusable = 'runtime-exec';
    return {
      epoch: this.epoch,
      unusable,
      ev,
      entry: entry ? entryPrint(entry) : null,
      parents: v.parents.map(entryPrint),
      container: v.container,
      meta: v.containerMeta,
      object: v.object,
      hits: [],
      excluded: 0,
      allowlisted: 0,
      thenRules: [],
      jti: null,
    };
  }

  onRepeat(note: RepeatNote, enrich: (ev: AuditEvent) => EventView, rebuild: () => EventView): Finding[] | null {
    const variants = this.outcomes.get(note.template);
    const usable = variants?.find((x) => x.epoch === this.epoch && x.unusable === null);
    if (variants === undefined || usable === undefined) {
      const first = variants?.[0];
      return this.expand(first === undefined ? 'unknown' : first.epoch !== this.epoch ? 'rules' : (first.unusable ?? 'unknown'));
    }
    // The repeat as the full path would build it: the template's event but for stamp, pid and syscall
    // arguments (the reader proved the records equal elsewhere; no rule reads the arguments). Its records
    // are the template's: never shown, a finding that must be built is built from the rebuilt event. One
    // scratch copy per template, rewritten for each repeat: nothing keeps it past this call (findings,
    // marks and keys take strings, not events).
    const ev = (usable.scratch ??= { ...usable.ev, process: { ...usable.ev.process! } });
    ev.id = note.id;
    ev.time = isoTime(note.sec, note.ms);
    ev.timeMs = note.timeMs;
    ev.serial = note.serial;
    ev.process!.pid = note.pid;
    // The enrich stage folds it in first, as for any event; a repeat sent back to the full path folds
    // the same facts in again, which changes nothing.
    const v = enrich(ev);
    // The variant whose view is this repeat's (a storm mixes children the reader still found in /proc
    // with children already gone: two views of one template).
    const own = v.entry;
    let t: RepeatOutcome | undefined;
    let changed: string | null = null;
    for (const x of variants) {
      if (x.epoch !== this.epoch || x.unusable !== null) continue;
      const d = differs(x, v, own);
      if (d === null) {
        t = x;
        break;
      }
      changed ??= d;
    }
    if (t === undefined) return this.expand(changed ?? 'unknown');
    if (t.thenRules.some((r) => this.sequences.couldJoin(r, v))) return this.expand('sequence');
    // The token this read served (its claims are the inode's: records equal to the template's name the
    // same file). A different jti is a rotation the template never saw: a new hit, the full path's call.
    const jti = tokenJti(v);
    if (jti !== t.jti) return this.expand('token');
    this.stats.events++;
    this.stats.repeats.collapsed++;
    this.stats.excluded += t.excluded;
    this.stats.allowlisted += t.allowlisted;
    let out: Finding[] | null = null;
    const hitCtx: HitContext = { v, key: null };
    let full: EventView | null = null;
    for (const h of t.hits) {
      const id = h.rule.spec.id;
      let f: Finding | null = null;
      const build = (): Finding => (f ??= this.builtFor(h, (full ??= rebuild())));
      // As evaluate() does: the read refreshes this process's mark (built only for a new or stronger one).
      if (this.sequenceStarters.has(id)) this.sequences.note(id, h.score, h.indicators, v, build);
      if (this.isRepeat(id, v, jti)) {
        this.stats.suppressed++;
        continue;
      }
      out = this.keep(out, hitCtx, id, h.severity, build, jti);
    }
    const found = this.countFindings(out);
    return this.incidents?.holding ? this.withReleased(found, v.ev.timeMs) : found;
  }

  private builtFor(h: TemplateHit, v: EventView): Finding {
    this.stats.repeats.built++;
    return this.finding(h.rule.spec, v, h.score, h.indicators, h.severity);
  }

  private expand(why: string): null {
    const e = this.stats.repeats.expanded;
    e[why] = (e[why] ?? 0) + 1;
    return null;
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
    if (ctx.key === null) {
      const key = behaviourKey(v, this.hostActors);
      const node = hostOf(v, this.opts.host);
      ctx.key = node !== this.opts.host ? onNode(key, node) : key;
    }
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
      const get = processCreationFields(v, (uid) => v.userName(uid));
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

  onProcessNote(): void {
    this.stats.events++;
  }

  tick(nowMs: number): Finding[] {
    this.sequences.expire(nowMs);
    this.recent.expire(nowMs);
    if (!this.incidents) return [];
    const updates = this.incidents.tick(nowMs);
    this.count(updates);
    return updates;
  }

  private isRepeat(ruleId: string, v: EventView, jti: string | null): boolean {
    // The start time tells a reused pid apart: at 2,000 new processes a second pids wrap (pid_max
    // 32768) well within the suppression window, and another process is never a repeat.
    const started = v.startTime ?? '';
    // The node: pids and start times repeat from node to node in a log of several (node=).
    // The command line is the bounded one the rules read (event-view.ts: at most ~8 KiB). Whole, a
    // builder-bounded argv joins to ~128 KiB, and V8 hashes a string past 16,383 characters by its
    // length alone: every such key collided, and a lookup compared them all (0.6 ms an event).
    // What the event touched is part of the hit: a process's exec naming a file and its open of it are
    // two hits (the open shows which object it is, and may end an alias hold: incidents.ts), and so are
    // `cat A B`'s two opens (two objects, two incidents; a secret has no jti to tell them apart).
    const key = `${ruleId}\0${v.ev.node ?? ''}\0${v.pid ?? ''}\0${started}\0${v.exe ?? ''}\0${v.cmdline ?? ''}\0${jti ?? ''}\0${touched(v)}`;
    return this.recent.seen(key, v.ev.timeMs);
  }

  private evidence(v: EventView, role: string): Evidence {
    return { event_id: v.ev.id, time: v.ev.time, role, records: evidenceRecords(v) };
  }

  private process(v: EventView): FindingProcess | null {
    const p = v.ev.process;
    if (!p) return null;
    return {
      pid: p.pid,
      ppid: p.ppid,
      exe: v.exe,
      comm: p.comm,
      argv: findingArgv(v),
      cwd: v.processCwd,
      uid: p.uid,
      user: v.userName(p.uid),
      auid: v.auid,
      tty: p.tty,
      interactive: v.interactive,
      parents: v.parents.map((e) => ({ pid: e.pid, exe: e.exe, argv: redactBoundedArgv(e.argv) })),
    };
  }

  /**
   * A rule's title or description, redacted (a rule file is operator text, and everything that leaves
   * is redacted): the same few texts for every finding, redacted once per rule set (a description
   * naming curl or login is walked as command text: 0.1 ms a finding).
   */
  private ruleText(s: string): string {
    let red = this.ruleTexts.get(s);
    if (red === undefined) {
      red = redactText(s);
      this.ruleTexts.set(s, red);
    }
    return red;
  }

  private finding(rule: FindingRule, v: EventView, score: number, indicators: string[], severity: Severity): Finding {
    const c = v.container;
    return {
      id: findingId(rule.id, hostOf(v, this.opts.host), [v.ev.id]),
      rule: rule.id,
      title: this.ruleText(rule.title),
      description: this.ruleText(rule.description),
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
      ...tokenField(v),
      kube: null,
      evidence: [this.evidence(v, indicators.join(','))],
    };
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

/** The claims of the token the event read, as a finding field (absent when it read none). */
function tokenField(v: EventView): { token?: FindingToken } {
  const token = v.tokenClaims();
  return token ? { token } : {};
}

/** The watched object the event touched, as a finding field (absent when it touched none). */
function objectField(v: EventView): { object?: FindingObject } {
  const o = v.object;
  if (!o) return {};
  return { object: { class: o.class, pod_uid: o.podUid, container_id: o.containerId, via: o.via, foreign: v.objectForeign } };
}

export function createDetector(opts: DetectorOptions): Detector {
  return new Engine(opts);
}
