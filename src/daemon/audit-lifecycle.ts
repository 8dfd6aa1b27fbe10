/**
 * The agent's side of the kernel audit configuration: which mode to read in, which rules to install,
 * and how to leave the kernel exactly as it was found.
 *
 * Policy (docs/architecture.md, "Touch only what is ours"):
 * - `auto` reads as the audit daemon (unicast) when no live process holds the audit pid; otherwise it
 *   joins the read-only multicast group beside that daemon (auditd keeps working, its rules untouched).
 * - `enabled=2` (immutable) cannot be changed without a reboot: run with the rules already loaded,
 *   install nothing, and say so.
 * - The first rule is `-a never,exit -S all -F pid=<own pid> -k credwatch:self`, put at the head of the exit
 *   list, so that the agent's own connects and file opens never feed back into its input.
 * - Every rule we add carries a key starting with "credwatch"; we remember the exact payloads and remove
 *   exactly those on shutdown. On start, leftovers with our key from a run that was SIGKILLed are
 *   removed (only rules with our key, never anyone else's).
 * - Status fields we change (enabled, backlog_limit, backlog_wait_time) are remembered with their old
 *   values and restored on shutdown unless someone else changed them after us.
 *
 * This is the one owner of kernel audit changes (rules, enabled, backlog_limit, backlog_wait_time, and
 * releasing the audit pid). The single exception is claiming the pid: the kernel sends unicast records
 * to the netlink port that sent AUDIT_SET pid, so the registration has to come from the socket that
 * reads (src/sources/netlink.ts), not from our control socket. Letting it go is ours (switchedMode,
 * shutdown, and a dead holder's in cleanupStale), so every restore is decided in one place. Call
 * `decide()`, open the reader in `plan.mode`, then `install()`; on the way out `shutdown()`, then close.
 */
import * as fs from 'node:fs';
import { encodeRule, ruleKey, rulePidField, toKernelForm, withPrepend } from '../audit/rules';
import { AUDIT_CONFIG_CHANGE } from '../audit/record-types';
import type { AuditStatus, AuditStatusChange } from '../native/types';
import type { StateStore } from '../store/types';
import { isProcessAlive } from '../native/process-alive';
import type { Logger } from './logger';
import { RateLimitedLog } from '../log/rate-limit';

export type { AuditStatus, AuditStatusChange };

/**
 * The synchronous audit control calls the lifecycle needs: a subset of src/native/binding.ts's
 * AuditControl (createAuditControl() satisfies it); tests use a fake. Calls throw an error with `code`
 * ("EEXIST", "EPERM", "ENOENT"...) when the kernel refuses.
 */
export interface AuditControl {
  getStatus(): AuditStatus;
  setStatus(update: AuditStatusChange): void;
  addRule(payload: Buffer): void;
  deleteRule(payload: Buffer): void;
  /** Raw audit_rule_data payloads, in kernel order. */
  listRules(): Buffer[];
}

/** Text rule ⇄ audit_rule_data. */
export interface RuleCodec {
  /** The payload to send to AUDIT_ADD_RULE. */
  encode(text: string): Buffer;
  /** The same rule as the kernel lists it back (what AUDIT_DEL_RULE and comparisons use). */
  kernelForm(payload: Buffer): Buffer;
  /** The rule's keys; empty when it has none. Must not throw on a payload it does not understand. */
  keys(payload: Buffer): string[];
}

/** src/audit/rules/ (wire.ts). */
export const auditRuleCodec: RuleCodec = {
  encode: (text) => encodeRule(text),
  kernelForm: (payload) => toKernelForm(payload),
  keys: (payload) => ruleKey(payload),
};

export type AuditMode = 'auto' | 'unicast' | 'multicast';
export type ReadMode = 'unicast' | 'multicast';

export const OUR_KEY_PREFIX = 'credwatch';
export const SELF_RULE_KEY = 'credwatch:self';

export function isOurRule(keys: readonly string[]): boolean {
  return keys.some((k) => k.startsWith(OUR_KEY_PREFIX));
}

/**
 * Verified on this kernel with auditctl: the exit filter accepts `-F pid=` (it matches the thread group
 * id, so every thread of the agent). `-S all` is needed because auditctl refuses a key without a
 * syscall; with no arch field the rule covers both ABIs.
 */
export function selfExclusionRule(pid: number): string {
  return `-a never,exit -S all -F pid=${pid} -k ${SELF_RULE_KEY}`;
}

/** Thrown when the requested mode cannot be had, or the self-exclusion cannot be installed. */
export class AuditLifecycleError extends Error {
  readonly exitCode = 1;
}

export interface AuditPlan {
  mode: ReadMode;
  immutable: boolean;
  /** The live process holding the audit pid when we started (auditd), or null. */
  holderPid: number | null;
  /** Why this mode, in words for the log and `credwatch status`. */
  reason: string;
  before: AuditStatus;
}

export interface FieldChange {
  field: 'enabled' | 'backlogLimit' | 'backlogWaitTime';
  before: number;
  after: number;
}

export interface InstallReport {
  installed: number;
  /** Rules the kernel refused, with why; the agent keeps running without them. */
  failed: { rule: string; error: string }[];
  /** Rules already present (identical rule, our key): left alone, not removed on shutdown. */
  alreadyPresent: number;
  staleRemoved: number;
  changes: FieldChange[];
}

export interface ShutdownReport {
  removed: number;
  /** Ours, but already gone (someone ran auditctl -D, or -d on it). */
  missing: number;
  restored: FieldChange[];
  /** Changed by someone else after us: left as they are. */
  leftAlone: FieldChange[];
  releasedPid: boolean;
  errors: string[];
}

export interface KernelStats {
  lost: number;
  /** Records the kernel lost since the previous poll (u32 wrap handled). */
  lostDelta: number;
  /** Likely cause of that loss (kernel_backlog_full, kernel_rate_limit, kernel_lost); null when none. */
  lostCause: string | null;
  backlog: number;
  backlogLimit: number;
  /** The audit pid now (it changes when auditd starts or stops beside us). */
  pid: number;
  enabled: number;
}

export const LIFECYCLE_STATE_KEY = 'audit_lifecycle';

interface SavedLifecycle {
  pid: number;
  changes: FieldChange[];
}

export interface AuditLifecycleOptions {
  control: AuditControl;
  /** Default: src/audit/rules/ (wire.ts). */
  codec?: RuleCodec;
  mode: AuditMode;
  /** Our rules in auditctl syntax; each must carry a key starting with "credwatch". */
  rules: readonly string[];
  backlogLimit?: number;
  backlogWaitTime?: number;
  logger: Logger;
  /** Where the changes we made are remembered across a SIGKILL (the findings db's agent_state). */
  state?: StateStore;
  selfPid?: number;
  /** Seams for tests. */
  isProcessAlive?: (pid: number) => boolean;
  looksLikeCredwatch?: (pid: number) => boolean;
  now?: () => number;
}

function cmdlineMentionsCredwatch(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('credwatch');
  } catch {
    return false;
  }
}

/** How long a yielded audit pid is left free for the daemon that wanted it (systemd restarts it in ms). */
export const YIELD_GRACE_MS = 15_000;

function errText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class AuditLifecycle {
  private readonly control: AuditControl;
  private readonly codec: RuleCodec;
  private readonly logger: Logger;
  private readonly selfPid: number;
  private readonly isAlive: (pid: number) => boolean;
  private readonly looksLikeCredwatch: (pid: number) => boolean;
  private readonly drops: RateLimitedLog;
  /** Rules removed by this lifecycle's stale cleanup; null until it ran. */
  private staleRemoved: number | null = null;
  private currentPlan: AuditPlan | null = null;
  /** Payloads we added, in the order added (self-exclusion first), as the kernel lists them. */
  private readonly added: { text: string; payload: Buffer }[] = [];
  private readonly changes: FieldChange[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private lastLost: number | null = null;
  private shutDown = false;
  /** After yielding the audit pid to a starting daemon, do not take it back before this time. */
  private yieldUntil = 0;

  constructor(private readonly opts: AuditLifecycleOptions) {
    this.control = opts.control;
    this.codec = opts.codec ?? auditRuleCodec;
    this.logger = opts.logger;
    this.selfPid = opts.selfPid ?? process.pid;
    this.isAlive = opts.isProcessAlive ?? isProcessAlive;
    this.looksLikeCredwatch = opts.looksLikeCredwatch ?? ((pid) => this.isAlive(pid) && cmdlineMentionsCredwatch(pid));
    this.drops = new RateLimitedLog(opts.logger, 10_000, opts.now);
  }

  get plan(): AuditPlan | null {
    return this.currentPlan;
  }

  /** The kernel's audit status now (for `credwatch status`). */
  kernelStatus(): AuditStatus {
    return this.control.getStatus();
  }

  /** Payloads we installed and will remove (copies). */
  installedPayloads(): Buffer[] {
    return this.added.map((a) => Buffer.from(a.payload));
  }

  /** Reads the kernel status and decides the mode. Changes nothing. */
  decide(): AuditPlan {
    const before = this.control.getStatus();
    const immutable = before.enabled === 2;
    const holder = before.pid !== 0 && before.pid !== this.selfPid && this.isAlive(before.pid) ? before.pid : null;
    let mode: ReadMode;
    let reason: string;
    switch (this.opts.mode) {
      case 'unicast':
        if (holder !== null) {
          throw new AuditLifecycleError(
            `audit.mode is unicast but pid ${holder} already holds the audit socket (auditd?); use audit.mode auto or multicast to read beside it`,
          );
        }
        mode = 'unicast';
        reason = 'configured unicast';
        break;
      case 'multicast':
        mode = 'multicast';
        reason = 'configured multicast';
        break;
      default:
        if (holder !== null) {
          mode = 'multicast';
          reason = `pid ${holder} holds the audit socket; reading the multicast group beside it`;
        } else {
          mode = 'unicast';
          reason = before.pid === 0 ? 'no audit daemon; reading as the audit daemon' : `audit pid ${before.pid} is dead; taking it over`;
        }
    }
    this.currentPlan = { mode, immutable, holderPid: holder, reason, before };
    this.logger.info({ mode, reason, immutable, status: before }, 'audit mode chosen');
    if (immutable) {
      this.logger.warn(
        { enabled: 2 },
        'kernel audit configuration is immutable (enabled=2): running with the rules already loaded and installing none; detections that need other rules see nothing until the next reboot',
      );
    }
    return this.currentPlan;
  }

  /**
   * Removes rules with our key left by a previous run that ended without cleanup, and lets the kernel
   * drop a dead audit pid. Refuses when another live credwatch agent owns those rules.
   */
  cleanupStale(): number {
    this.staleRemoved = this.removeStale();
    return this.staleRemoved;
  }

  private removeStale(): number {
    const status = this.control.getStatus();
    if (status.enabled === 2) return 0;
    if (status.pid !== 0 && status.pid !== this.selfPid && !this.isAlive(status.pid)) {
      // Any AUDIT_SET of the pid makes the kernel probe the registered port and reset a dead one.
      try {
        this.control.setStatus({ pid: 0 });
        this.logger.info({ deadPid: status.pid }, 'released the audit pid of a process that no longer exists');
      } catch (err) {
        this.logger.warn({ deadPid: status.pid, error: errText(err) }, 'could not release a dead audit pid; the kernel releases it on its next send');
      }
    }
    const stale = this.control.listRules().filter((p) => isOurRule(this.codec.keys(p)));
    for (const p of stale) {
      const owner = this.codec.keys(p).includes(SELF_RULE_KEY) ? rulePidField(p) : null;
      if (owner !== null && owner !== this.selfPid && this.looksLikeCredwatch(owner)) {
        throw new AuditLifecycleError(`another credwatch agent (pid ${owner}) is running and owns the credwatch audit rules; stop it first`);
      }
    }
    let removed = 0;
    for (const p of stale) {
      try {
        this.control.deleteRule(p);
        removed++;
      } catch (err) {
        if (errCode(err) !== 'ENOENT') this.logger.warn({ keys: this.codec.keys(p), error: errText(err) }, 'could not remove a stale credwatch rule');
      }
    }
    if (removed > 0) this.logger.info({ removed }, 'removed credwatch audit rules left by a previous run');
    return removed;
  }

  /**
   * Applies the plan: stale cleanup, backlog settings, self-exclusion then our rules, enable. Call
   * after the reader socket is open so that the first records have somewhere to go.
   */
  install(): InstallReport {
    const plan = this.currentPlan ?? this.decide();
    const report: InstallReport = { installed: 0, failed: [], alreadyPresent: 0, staleRemoved: 0, changes: [] };
    if (plan.immutable) return report;
    // The agent cleans up before it opens the reader (so a live agent's rules are refused before
    // anything is touched); install() does it only when nobody did, instead of a second pass.
    report.staleRemoved = this.staleRemoved ?? this.cleanupStale();

    const inherited = this.inheritedChanges();
    const now = this.control.getStatus();
    const want = (field: FieldChange['field'], desired: number | undefined): void => {
      const current = now[field];
      const prev = inherited.get(field);
      if (prev && prev.after === current) {
        // A predecessor that was killed changed this and never put it back: the value to restore on
        // our way out is the one it found, not the one it left.
        if (desired !== undefined && desired !== current) this.control.setStatus({ [field]: desired } as AuditStatusChange);
        this.changes.push({ field, before: prev.before, after: desired ?? current });
        this.saveState();
      } else if (desired !== undefined && desired !== current) {
        this.change(field, current, desired);
      }
    };
    want('backlogLimit', this.opts.backlogLimit);
    want('backlogWaitTime', this.opts.backlogWaitTime);

    const selfText = selfExclusionRule(this.selfPid);
    try {
      this.addOurs(selfText, true);
    } catch (err) {
      this.rollback();
      throw new AuditLifecycleError(`cannot install the self-exclusion rule "${selfText}": ${errText(err)}`);
    }
    report.installed++;

    for (const text of this.opts.rules) {
      try {
        if (this.addOurs(text, false)) report.installed++;
        else report.alreadyPresent++;
      } catch (err) {
        report.failed.push({ rule: text, error: errText(err) });
        this.logger.error({ rule: text, error: errText(err) }, 'audit rule refused; running without it');
      }
    }

    want('enabled', now.enabled === 0 ? 1 : undefined);
    this.saveState();
    report.changes = [...this.changes];
    this.logger.info(
      { installed: report.installed, failed: report.failed.length, alreadyPresent: report.alreadyPresent, staleRemoved: report.staleRemoved, changes: report.changes },
      'audit rules installed',
    );
    return report;
  }

  /** Returns true when added, false when an identical rule was already there (EEXIST). */
  private addOurs(text: string, prepend: boolean): boolean {
    const payload = this.codec.encode(text);
    if (!isOurRule(this.codec.keys(payload))) {
      throw new AuditLifecycleError(`rule has no key starting with "${OUR_KEY_PREFIX}" (add -k ${OUR_KEY_PREFIX}:<name>): ${text}`);
    }
    // The kernel clears the prepend flag when it stores the rule and compares flags on delete, so the
    // payload we remember (for removal, and to compare with listRules) is the stored form, which
    // toKernelForm gives without it.
    const stored = this.codec.kernelForm(payload);
    const toSend = prepend ? withPrepend(payload) : payload;
    try {
      this.control.addRule(toSend);
    } catch (err) {
      if (errCode(err) === 'EEXIST') {
        this.logger.warn({ rule: text }, 'an identical audit rule is already loaded; leaving it to its owner');
        return false;
      }
      throw err;
    }
    this.added.push({ text, payload: stored });
    return true;
  }

  private change(field: FieldChange['field'], before: number, after: number): void {
    this.control.setStatus({ [field]: after } as AuditStatusChange);
    this.changes.push({ field, before, after });
    this.saveState();
  }

  /**
   * Remembers what we changed in the agent's state store, so that after a SIGKILL the next start
   * restores the values this run found rather than the ones it left behind.
   */
  private saveState(): void {
    if (!this.opts.state) return;
    const saved: SavedLifecycle = { pid: this.selfPid, changes: this.changes };
    try {
      this.opts.state.set(LIFECYCLE_STATE_KEY, JSON.stringify(saved));
    } catch (err) {
      this.logger.warn({ error: errText(err) }, 'could not save the audit changes to the state store');
    }
  }

  /** Changes a previous run (now dead) saved and did not undo, by field. */
  private inheritedChanges(): Map<FieldChange['field'], FieldChange> {
    const out = new Map<FieldChange['field'], FieldChange>();
    const raw = this.opts.state?.get(LIFECYCLE_STATE_KEY);
    if (!raw) return out;
    try {
      const saved = JSON.parse(raw) as Partial<SavedLifecycle> | null;
      if (!saved || typeof saved.pid !== 'number' || saved.pid === this.selfPid || this.isAlive(saved.pid)) return out;
      for (const c of saved.changes ?? []) {
        if ((c.field === 'enabled' || c.field === 'backlogLimit' || c.field === 'backlogWaitTime') && typeof c.before === 'number' && typeof c.after === 'number') {
          out.set(c.field, c);
        }
      }
    } catch {
      // Unreadable state: behave as on a first start.
    }
    if (out.size > 0) this.logger.info({ changes: [...out.values()] }, 'a previous run was killed before restoring these audit settings; they will be restored on exit');
    return out;
  }

  /** Undo after a failed install: remove what we added, restore what we changed. */
  private rollback(): void {
    this.removeOurs([]);
    this.restoreFields({ restored: [], leftAlone: [], errors: [] });
  }

  /**
   * Adds rules after install() (per-pod token watches appear and go while the agent runs). Each is
   * remembered like the initial rules, so shutdown() removes it; refused rules are logged and skipped.
   */
  addRules(texts: readonly string[]): number {
    if (this.shutDown || !this.currentPlan || this.currentPlan.immutable) return 0;
    let added = 0;
    for (const text of texts) {
      try {
        if (this.addOurs(text, false)) added++;
      } catch (err) {
        this.logger.error({ rule: text, error: errText(err) }, 'audit rule refused; running without it');
      }
    }
    return added;
  }

  /** Removes rules this lifecycle added (by their text); rules it did not add are left alone. */
  removeRules(texts: readonly string[]): number {
    let removed = 0;
    for (const text of texts) {
      const i = this.added.findIndex((a) => a.text === text);
      if (i < 0) continue;
      const [a] = this.added.splice(i, 1);
      try {
        this.control.deleteRule(a!.payload);
        removed++;
      } catch (err) {
        if (errCode(err) !== 'ENOENT') this.logger.warn({ rule: text, error: errText(err) }, 'could not remove an audit rule');
      }
    }
    return removed;
  }

  private removeOurs(errors: string[]): { removed: number; missing: number } {
    let removed = 0;
    let missing = 0;
    // Reverse order: our rules first, the self-exclusion last, so the agent stays unaudited to the end.
    while (this.added.length > 0) {
      const a = this.added.pop() as { text: string; payload: Buffer };
      try {
        this.control.deleteRule(a.payload);
        removed++;
      } catch (err) {
        if (errCode(err) === 'ENOENT') missing++;
        else errors.push(`delete "${a.text}": ${errText(err)}`);
      }
    }
    return { removed, missing };
  }

  private restoreFields(out: { restored: FieldChange[]; leftAlone: FieldChange[]; errors: string[] }): void {
    let status: AuditStatus;
    try {
      status = this.control.getStatus();
    } catch (err) {
      out.errors.push(`get status: ${errText(err)}`);
      return;
    }
    while (this.changes.length > 0) {
      const c = this.changes.pop() as FieldChange;
      if (status[c.field] !== c.after) {
        out.leftAlone.push(c);
        continue;
      }
      try {
        this.control.setStatus({ [c.field]: c.before } as AuditStatusChange);
        out.restored.push(c);
      } catch (err) {
        out.errors.push(`restore ${c.field}=${c.before}: ${errText(err)}`);
      }
    }
  }

  /**
   * Whether the read mode should change, given the latest poll (auto mode only; null: stay).
   * - multicast, and the daemon we read beside is gone (pid 0 or dead): take unicast, otherwise the
   *   kernel has no reader to deliver to and counts everything as lost (and floods the kernel log).
   * - unicast, and a live process other than us holds the pid: we lost it; read beside it.
   * Our rules stay installed across a switch: they do not depend on the mode.
   */
  modeAdvice(s: Pick<KernelStats, 'pid'>): { mode: ReadMode; reason: string } | null {
    const plan = this.currentPlan;
    if (!plan || this.opts.mode !== 'auto' || this.shutDown) return null;
    // Just yielded to a daemon that is starting (its first registration was refused while we held
    // the pid; systemd restarts it a moment later): taking the pid back now would refuse it again,
    // and again, so wait a while for it.
    if (plan.mode === 'multicast' && s.pid === 0 && (this.opts.now ?? Date.now)() < this.yieldUntil) return null;
    if (plan.mode === 'multicast' && (s.pid === 0 || (s.pid !== this.selfPid && !this.isAlive(s.pid)))) {
      return { mode: 'unicast', reason: s.pid === 0 ? 'the audit daemon went away' : `audit daemon pid ${s.pid} died` };
    }
    if (plan.mode === 'unicast' && s.pid !== 0 && s.pid !== this.selfPid && this.isAlive(s.pid)) {
      return { mode: 'multicast', reason: `pid ${s.pid} now holds the audit socket` };
    }
    return null;
  }

  /**
   * The pid of a process that just tried and failed to become the audit daemon while we hold the
   * socket (auditd starting beside us), from the CONFIG_CHANGE record the kernel logs for the refusal
   * ("op=set audit_pid=NEW old=OURS ... res=0"); null for any other record. In auto mode the agent
   * should then yield (switch to multicast, which releases the pid) so the next start of auditd works.
   */
  daemonTakeoverAttempt(recordType: number, text: string): number | null {
    if (recordType !== AUDIT_CONFIG_CHANGE || this.currentPlan?.mode !== 'unicast') return null;
    const m = /\bop=set audit_pid=(\d+) old=(\d+)\b.*\bres=0\b/.exec(text);
    if (!m || Number(m[2]) !== this.selfPid || Number(m[1]) === 0) return null;
    return Number(m[1]);
  }

  /**
   * Call after the reader was reopened in `mode`. Going to multicast releases the audit pid if it is
   * still ours (so auditd can register); going to unicast the new reader has claimed it.
   */
  switchedMode(mode: ReadMode, reason: string): void {
    const plan = this.currentPlan;
    if (!plan || plan.mode === mode) return;
    if (mode === 'multicast') {
      this.yieldUntil = (this.opts.now ?? Date.now)() + YIELD_GRACE_MS;
      try {
        if (this.control.getStatus().pid === this.selfPid) this.control.setStatus({ pid: 0 });
      } catch (err) {
        this.logger.warn({ error: errText(err) }, 'could not release the audit pid after switching to multicast');
      }
    }
    this.currentPlan = { ...plan, mode, reason };
    this.logger.warn({ from: plan.mode, to: mode, reason }, 'audit read mode switched');
  }

  /** Removes exactly our rules and restores what we changed. Safe to call twice. */
  shutdown(): ShutdownReport {
    this.stopPolling();
    const report: ShutdownReport = { removed: 0, missing: 0, restored: [], leftAlone: [], releasedPid: false, errors: [] };
    if (this.shutDown) return report;
    this.shutDown = true;
    const r = this.removeOurs(report.errors);
    report.removed = r.removed;
    report.missing = r.missing;
    this.restoreFields(report);
    this.saveState();
    if (this.currentPlan?.mode === 'unicast') {
      try {
        if (this.control.getStatus().pid === this.selfPid) {
          this.control.setStatus({ pid: 0 });
          report.releasedPid = true;
        }
      } catch (err) {
        report.errors.push(`release audit pid: ${errText(err)}`);
      }
    }
    this.drops.flush('kernel dropped audit records (final count)');
    const level = report.errors.length > 0 ? 'error' : 'info';
    this.logger[level](report, 'audit configuration restored');
    return report;
  }

  /**
   * Polls the kernel's lost counter, backlog and audit pid every `intervalMs` and reports deltas.
   * Loss is logged with its cause at most once per 10 s per cause.
   */
  startPolling(intervalMs: number, onStats: (s: KernelStats) => void): void {
    this.stopPolling();
    const tick = (): void => {
      let s: AuditStatus;
      try {
        s = this.control.getStatus();
      } catch (err) {
        this.drops.report('status_poll_failed', 1, 'could not read kernel audit status', { error: errText(err) });
        return;
      }
      onStats(this.observe(s));
    };
    this.pollTimer = setInterval(tick, intervalMs);
    this.pollTimer.unref();
  }

  stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** One poll's worth of bookkeeping (exposed so tests need no timers). */
  observe(s: AuditStatus): KernelStats {
    const lostDelta = this.lastLost === null ? 0 : (s.lost - this.lastLost) >>> 0;
    this.lastLost = s.lost;
    let cause: string | null = null;
    if (lostDelta > 0) {
      // The kernel does not say why it lost a record; a full backlog at poll time is the likely cause,
      // else the rate limit if one is set, else (no reader, hold queue full) plain "kernel_lost".
      cause = s.backlog >= s.backlogLimit * 0.9 ? 'kernel_backlog_full' : s.rateLimit > 0 ? 'kernel_rate_limit' : 'kernel_lost';
      this.drops.report(cause, lostDelta, 'kernel dropped audit records', {
        backlog: s.backlog,
        backlogLimit: s.backlogLimit,
        rateLimit: s.rateLimit,
        backlogWaitTime: s.backlogWaitTime,
      });
    }
    return { lost: s.lost, lostDelta, lostCause: cause, backlog: s.backlog, backlogLimit: s.backlogLimit, pid: s.pid, enabled: s.enabled };
  }
}

/**
 * The rule texts to install for `audit.rules`: "default" asks the detection rules what they need;
 * an explicit list is used as written. Duplicates are dropped (the kernel would refuse them).
 */
export function resolveAuditRules(configured: 'default' | readonly string[], defaults: () => readonly string[]): string[] {
  const list = configured === 'default' ? defaults() : configured;
  return [...new Set(list.map((r) => r.trim()).filter((r) => r.length > 0))];
}
