/**
 * `credwatch run`: the agent that nodes run all day. This module only wires the parts together and
 * owns their order of start and stop; each part lives in its own module:
 *
 *   AuditLifecycle (mode, rules, kernel status) ─ NetlinkSource (reader thread) ─► AuditPipeline
 *   KubeAuditFollower(s) ─► kube detector ─┐                                          │
 *                                          ▼                                          ▼
 *                          findings ─► BatchWriter ─► SQLite ─► Shipper ─► HTTPS outputs
 *   Metrics (/metrics) and the status snapshot (credwatch status) read the same counters.
 *
 * Stop order matters: rules come out of the kernel first (nothing new is produced), then the reader
 * drains, the pipeline flushes what is in flight, the writer commits, and only then the store closes.
 */
import { FindingLog } from './finding-log';
import * as os from 'node:os';
import { AUDIT_CONFIG_CHANGE, recordTypeName } from '../audit/record-types';
import { PROCESS_NOTE_TYPE } from '../native/process-note';
import { KubeAllowlist } from '../detect/kube/allowlist';
import { nativeTriageFor } from './native-triage';
import type { NativeTriageSpec } from '../native/types';
import type { RawRecord } from '../audit/event';
import type { Detector } from '../detect/engine';
import type { AllowConfig } from '../detect/allowlist';
import type { Finding } from '../model/finding';
import { createKubeDetector } from '../detect/kube';
import { loadRunnableRuleSet } from '../detect/rule-set';
import type { SigmaRule } from '../detect/sigma/compile';
import type { LoadedRule } from '../detect/rule-loader';
import { FindingCap } from '../detect/finding-cap';
import { TokenTrail } from '../detect/token-trail';
import { TokenHome } from '../detect/kube/token-home';
import { TokenClaimsReader } from '../enrich/token-claims';
import { NetnsHomes } from '../enrich/netns-addresses';
import { WatchedObjects, parseWatchRule } from '../enrich/watched-objects';
import { TokenMetrics } from './token-metrics';
import { ProcessTable } from '../enrich/process-table';
import { createLiveProcReader } from '../enrich/proc-reader';
import { PodVolumeWatcher } from '../enrich/pod-volume-watcher';
import { RuntimeStateWatcher } from '../enrich/runtime-state-watcher';
import type { WatchRuleChange } from '../enrich/watch-set';
import { createCgroupPodLookup } from '../enrich/container-pods';
import { UserDb } from '../enrich/users';
import { createAuditControl } from '../native/binding';
import { AuditPipeline } from '../pipeline/audit-pipeline';
import { createHostStages, type HostStages } from '../pipeline/host-stages';
import { checkShipOutputs, createShipper, type Shipper } from '../ship/shipper';
import { KubeAuditFollower } from '../sources/kube-audit';
import { KubeAuditWebhook } from '../sources/kube-webhook';
import type { KubeAuditEvent } from '../kube/event';
import * as fs from 'node:fs';
import { BatchWriter, openStore, type FindingStore } from '../store';
import { AuditLifecycle, resolveAuditRules, type KernelStats } from './audit-lifecycle';
import { AgentStats } from './agent-stats';
import { AuditReader } from './audit-reader';
import { loadConfig, parseListenAddress, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { RateLimitedLog } from '../log/rate-limit';
import { createMetrics, startMetricsServer, type Metrics, type MetricsServer } from './metrics';
import { createSdNotifier, type SdNotifier } from './sd-notify';
import { writeStatusSnapshot, type StatusSnapshot } from './status-snapshot';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

const TICK_MS = 1_000;
const STATUS_MS = 2_000;
const RETENTION_MS = 60 * 60_000;

export interface AgentOptions {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Where logs go (tests capture them); default stdout. */
  logDestination?: Parameters<typeof createLogger>[1];
}

/** detections.allow for API-server audit findings: user names and namespaces. */
export function kubeAllowFromConfig(config: Config): KubeAllowlist {
  return new KubeAllowlist({ users: config.detections.allow.k8s_users, namespaces: config.detections.allow.namespaces });
}

/** The operator allowlist in the config is lists by kind; each non-empty list is one allow entry. */
export function allowFromConfig(allow: Config['detections']['allow']): AllowConfig {
  const out: AllowConfig = [];
  if (allow.exes.length > 0) out.push({ exe: allow.exes, reason: 'config detections.allow.exes' });
  if (allow.uids.length > 0) out.push({ uid: allow.uids, reason: 'config detections.allow.uids' });
  if (allow.auids.length > 0) out.push({ auid: allow.auids, reason: 'config detections.allow.auids' });
  if (allow.container_images.length > 0) out.push({ container_image: allow.container_images, reason: 'config detections.allow.container_images' });
  if (allow.container_ids.length > 0) out.push({ container_id: allow.container_ids, reason: 'config detections.allow.container_ids' });
  if (allow.namespaces.length > 0) out.push({ namespace: allow.namespaces, reason: 'config detections.allow.namespaces' });
  return out;
}

/**
 * The running agent. `Agent.start()` builds every part in the constructor (each field is assigned
 * there, so the type checker proves none is used before it exists), then starts what talks to the
 * kernel and the network; parts that start later or are optional are null until then.
 */
export class Agent {
  private config: Config;
  private readonly configSource: string;
  private readonly logger: Logger;
  /** One line per new finding or escalation; plain incident updates are not logged (finding-log.ts). */
  private readonly findingLog: FindingLog;
  private readonly store: FindingStore;
  private readonly metrics: Metrics;
  private metricsServer: MetricsServer | null = null;
  /** Enrich then detect: the enricher owns the process table and the watched objects. */
  private readonly stages: HostStages;
  private readonly kubeDetector: ReturnType<typeof createKubeDetector>;
  private readonly cap: FindingCap;
  private readonly trail: TokenTrail;
  private readonly tokenHome: TokenHome;
  private readonly tokenClaims = new TokenClaimsReader();
  // Pod token files are decoded (claims only) while the index sees them: see token-claims.ts.
  private readonly watchedObjects = new WatchedObjects({ onIndexFile: (inode, file, obj) => this.tokenClaims.noteFile(inode, file, obj) });
  /** The home addresses of a pod whose token was read (token.home), from this node's namespaces. */
  private readonly netnsHomes = new NetnsHomes();
  private readonly tokenMetrics: TokenMetrics;
  private kubeAllow: KubeAllowlist;
  private readonly pipeline: AuditPipeline;
  private readonly writer: BatchWriter;
  private lifecycle: AuditLifecycle | null = null;
  private reader: AuditReader | null = null;
  private podWatcher: PodVolumeWatcher | null = null;
  private runtimeStateWatcher: RuntimeStateWatcher | null = null;
  private followers: KubeAuditFollower[] = [];
  private webhooks: KubeAuditWebhook[] = [];
  private lastWebhook = { unauthorized: 0, tooLarge: 0, handlerErrors: 0, events: 0 };
  private lastFollowerHandlerErrors = 0;
  private shipper: Shipper | null = null;
  private readonly notifier: SdNotifier;
  private timers: NodeJS.Timeout[] = [];
  private readonly dropLog: RateLimitedLog;
  private readonly host = os.hostname();
  private readonly startedMs = Date.now();
  private readonly stats = new AgentStats(this.startedMs);
  private immutable = false;
  private stopping: Promise<void> | null = null;

  /** Builds and starts the agent; a start that fails half-way is stopped (kernel restored) before it throws. */
  static async start(opts: AgentOptions = {}): Promise<Agent> {
    const agent = new Agent(opts);
    try {
      await agent.startParts();
    } catch (err) {
      await agent.stop('start failed');
      throw err;
    }
    return agent;
  }

  /**
   * Every part, built in dependency order. Nothing here touches the kernel or the network; what can
   * fail on operator input (config, outputs, rules) fails before the database is opened, and the
   * database is opened last.
   */
  private constructor(private readonly opts: AgentOptions) {
    const loaded = loadConfig(this.opts.configPath, this.opts.env ?? process.env);
    this.config = loaded.config;
    this.configSource = loaded.source;
    // Everything `config check` checks, before the database, the kernel or the network is touched.
    checkShipOutputs(this.config.ship, this.opts.env ?? process.env);
    this.logger = createLogger(this.config.log.level, this.opts.logDestination);
    this.findingLog = new FindingLog(this.logger);
    this.logger.info({ version, config: this.configSource, pid: process.pid }, 'credwatch starting');
    this.dropLog = new RateLimitedLog(this.logger);
    this.notifier = createSdNotifier({ logger: this.logger, healthy: () => this.healthy() });
    // Host and Kubernetes rules come from one load of the pack plus rules_dir, so both see the same files.
    const ruleSet = loadRunnableRuleSet(this.config.detections.rules_dir ? [this.config.detections.rules_dir] : []);

    this.metrics = createMetrics();
    this.stages = this.buildStages(this.config, ruleSet.host, ruleSet.sigma);
    this.kubeDetector = createKubeDetector({ host: this.host, rules: ruleSet.kube, sigma: ruleSet.sigma });
    this.cap = new FindingCap(this.config.storage.max_finding_kb * 1024);
    // The trail's finding is sent at its first request and revised as more arrive: the window only
    // says how long it keeps growing (read at start; a reload does not change open trails).
    this.trail = new TokenTrail({ host: this.host, windowMs: this.config.detections.token_trail.window_seconds * 1000 });
    this.tokenHome = new TokenHome({ host: this.host });
    this.tokenMetrics = new TokenMetrics(this.metrics, { claims: this.tokenClaims.stats, trail: this.trail.stats, home: this.tokenHome.stats, netns: this.netnsHomes.stats, objects: this.watchedObjects });
    this.kubeAllow = kubeAllowFromConfig(this.config);
    this.pipeline = new AuditPipeline({
      stages: this.stages,
      live: true,
      // The netlink reader reads /proc on its own thread (openReader: procSnapshots).
      nativeProcSnapshots: true,
      onFindings: (f) => this.onFindings(f),
      onEvent: (ev) => {
        this.stats.events++;
        this.metrics.countEvent(ev.types[0] ?? 'UNKNOWN');
      },
      // A note stands for a whole event: count its records by type, as if they had come through.
      onProcessNote: (note) => {
        this.stats.records += note.recordTypes.length;
        for (const t of note.recordTypes) this.metrics.countRecords(recordTypeName(t));
        this.stats.events++;
        this.metrics.countEvent('SYSCALL');
      },
      onBadNativeRecord: () => this.metrics.countDrop('native_record_unparsed'),
      // A repeat note stands for a whole event too; an expanded one is counted as an event by onEvent.
      onRepeatNote: (note, outcome) => {
        this.stats.records += note.recordTypes.length;
        for (const t of note.recordTypes) this.metrics.countRecords(recordTypeName(t));
        if (outcome === 'lost') this.metrics.countDrop('repeat_template_unknown', note.recordTypes.length);
        if (outcome !== 'collapsed') return;
        this.stats.events++;
        this.metrics.countEvent('SYSCALL');
      },
    });

    // Last, so that nothing after it can fail and leave the database open.
    this.store = openStore(this.config.storage.path, { quickCheck: true });
    try {
      this.stats.loadFindingsToday((ms) => this.store.countFindingsSince(ms));
    } catch (err) {
      this.store.close();
      throw err;
    }
    this.writer = new BatchWriter(this.store, {
      // Findings are rare next to events, so a short interval costs a few small transactions a second
      // at most and keeps syscall-to-committed latency well under 250 ms (bench/latency.js).
      flushIntervalMs: 50,
      onError: (err) => {
        // Nothing is lost yet (the findings stay buffered), but an operator must see it in /metrics.
        this.metrics.countSignal('store_write_failed');
        this.dropLog.report('store_write_failed', 1, 'could not write findings; keeping them in memory and retrying', { error: err.message });
      },
      onDrop: (n) => {
        this.metrics.countDrop('store_full', n);
        this.dropLog.report('store_full', n, 'findings dropped: the database refused writes for too long and the memory bound was reached');
      },
    });
  }

  /** The detector (the scoring stage). */
  private get detector(): Detector {
    return this.stages.detector;
  }

  /** Starts what talks to the kernel and the network, in order; the parts already exist. */
  private async startParts(): Promise<void> {
    await this.startMetrics();
    await this.startAudit();
    await this.startKubeAudit();
    this.startShipper();
    this.startTimers();
    this.publishStatus();
    this.notifier.ready(`mode=${this.mode()}`);
    this.notifier.startWatchdog();
    this.logger.info({ mode: this.mode(), immutable: this.immutable, metrics: this.config.metrics.listen }, 'credwatch running');
  }

  /** SIGHUP: a new config and rule pack, or the old ones kept with a log line saying why. */
  reload(): void {
    let next: Config;
    try {
      next = loadConfig(this.opts.configPath, this.opts.env ?? process.env).config;
      const ruleSet = loadRunnableRuleSet(next.detections.rules_dir ? [next.detections.rules_dir] : []);
      this.detector.setRules(ruleSet.host, next.detections.rules_dir, ruleSet.sigma);
      this.kubeDetector.setRules(ruleSet.kube, ruleSet.sigma);
      // The allowlists come with the rules: an operator silencing a noisy source expects SIGHUP to do it.
      this.detector.setAllowlist(allowFromConfig(next.detections.allow));
      this.kubeAllow = kubeAllowFromConfig(next);
    } catch (err) {
      this.logger.error({ error: err instanceof Error ? err.message : String(err) }, 'reload refused: keeping the running configuration');
      return;
    }
    const auditChanged = JSON.stringify(next.audit) !== JSON.stringify(this.config.audit);
    this.reader?.setTriage(this.triageSpec());
    this.logger.level = next.log.level;
    this.config = { ...this.config, detections: next.detections, log: next.log };
    this.logger.info({ auditChanged }, auditChanged ? 'configuration reloaded; audit.* changes take effect on restart' : 'configuration reloaded');
  }

  /** Idempotent; resolves when everything is flushed and the kernel is as we found it. */
  stop(reason = 'signal'): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(reason);
    return this.stopping;
  }

  /** The reader's triage for the current rules, or null when audit.triage is off. */
  private triageSpec(): NativeTriageSpec | null {
    if (!this.config.audit.triage) return null;
    const { spec, reasons } = nativeTriageFor(this.detector);
    if (reasons.length > 0) this.logger.info({ reasons }, 'triage: some events always take the full path');
    // Repeats of a passed event go up as notes (native/repeat_cache.h); the detector proves each one
    // decides as its template did, or sends it the full path (detect/repeat-outcomes.ts). Sigma rules
    // read the records themselves (syscall arguments included): with any loaded, no repeat could be
    // decided from its template, and rebuilding every one would only add work.
    return { ...spec, repeats: this.detector.sigmaRules().length === 0 };
  }

  private buildStages(config: Config, rules: LoadedRule[], sigma: readonly SigmaRule[]): HostStages {
    return createHostStages({
      host: this.host,
      rulesDir: config.detections.rules_dir,
      rules,
      sigma: [...sigma],
      allow: allowFromConfig(config.detections.allow),
      processTable: new ProcessTable({ reader: createLiveProcReader() }),
      users: new UserDb(),
      podUidOf: createCgroupPodLookup(),
      objects: this.watchedObjects,
      tokenClaims: this.tokenClaims,
    });
  }

  private async startMetrics(): Promise<void> {
    const listen = parseListenAddress(this.config.metrics.listen);
    if (!listen) return;
    this.metricsServer = await startMetricsServer(this.metrics, listen, this.logger);
  }

  private async startAudit(): Promise<void> {
    const control = createAuditControl();
    const rules = resolveAuditRules(this.config.audit.rules, () => this.detector.requiredAuditRules());
    this.lifecycle = new AuditLifecycle({
      control,
      mode: this.config.audit.mode,
      rules,
      logger: this.logger,
      backlogLimit: this.config.audit.backlog_limit,
      backlogWaitTime: this.config.audit.backlog_wait_time,
      state: this.store.state,
    });
    this.lifecycle.cleanupStale();
    const plan = this.lifecycle.decide();
    this.immutable = plan.immutable;
    this.reader = new AuditReader({
      lifecycle: this.lifecycle,
      logger: this.logger,
      onBatch: (batch) => this.onBatch(batch),
      triage: () => this.triageSpec(),
      stopping: () => this.stopping !== null,
      onSwitched: (mode) => this.metrics.setInfo(version, mode),
    });
    await this.reader.open(plan.mode);
    const installed = this.lifecycle.install();
    const uring = this.reportUring(rules, installed.failed);
    // Static watches (node credentials): a hit is identified by inode whatever the name used.
    this.stages.enricher.objects.applyRules(rules);
    this.metrics.setInfo(version, this.mode());
    this.lifecycle.startPolling(TICK_MS, (s) => this.onKernelStats(s));
    if (this.config.audit.rules === 'default' && !plan.immutable) {
      const lifecycle = this.lifecycle;
      const follow = (what: string) => (change: WatchRuleChange) => {
        lifecycle.removeRules(change.remove);
        for (const line of change.remove) {
          const w = parseWatchRule(line);
          if (w) this.tokenClaims.forgetVolume(w.path);
        }
        this.stages.enricher.objects.applyRules([], change.remove);
        const added = lifecycle.addRules(change.add);
        this.stages.enricher.objects.applyRules(change.add);
        this.logger.info({ added, removed: change.remove.length }, `${what} watches updated`);
      };
      this.podWatcher = new PodVolumeWatcher({ uring, onChange: follow('pod token') });
      this.podWatcher.start();
      if (this.detector.rules().some((r) => r.enabled && r.covers.includes('H15'))) {
        this.runtimeStateWatcher = new RuntimeStateWatcher({ uring, onChange: follow('runtime state') });
        this.runtimeStateWatcher.start();
      }
    }
  }

  /**
   * Whether the kernel took our io_uring filter-list rules (Linux >= 5.16). When it refused them all,
   * io_uring opens and connects are invisible to the agent: say so in the log and in `credwatch
   * status` / /metrics (signal io_uring_audit_unavailable), and add no more such rules.
   */
  private reportUring(rules: readonly string[], failed: readonly { rule: string; error: string }[]): boolean {
    const uringRules = rules.filter((r) => /^-a\s+\S*io_uring/.test(r));
    if (uringRules.length === 0) return false;
    const refused = failed.filter((f) => uringRules.includes(f.rule));
    if (refused.length < uringRules.length) {
      this.metrics.countSignal('io_uring_audited', 1);
      this.logger.info({ rules: uringRules.length - refused.length }, 'io_uring operations audited (io_uring filter list)');
      return true;
    }
    this.metrics.countSignal('io_uring_audit_unavailable', 1);
    this.logger.warn(
      { refused: refused.length, error: refused[0]?.error },
      'the kernel has no io_uring audit filter list (Linux >= 5.16): io_uring opens and connects are NOT audited',
    );
    return false;
  }

  private onBatch(batch: RawRecord[]): void {
    for (let i = 0; i < batch.length; i++) {
      const rec = batch[i]!;
      if (rec.type >= PROCESS_NOTE_TYPE) continue; // the reader's own: counted by the pipeline hooks
      this.stats.records++;
      this.metrics.countRecords(recordTypeName(rec.type));
      if (rec.type === AUDIT_CONFIG_CHANGE && this.lifecycle) {
        const pid = this.lifecycle.daemonTakeoverAttempt(rec.type, rec.text);
        if (pid !== null) void this.reader?.switchTo('multicast', `audit daemon pid ${pid} is starting`);
      }
    }
    this.pipeline.pushBatch(batch);
  }

  private onKernelStats(s: KernelStats): void {
    this.metrics.observeKernel({ lost: s.lost, backlog: s.backlog, backlogLimit: s.backlogLimit, lostDelta: s.lostDelta, lostCause: s.lostCause });
    const advice = this.lifecycle?.modeAdvice(s);
    if (advice && advice.mode !== this.reader?.mode) void this.reader?.switchTo(advice.mode, advice.reason);
  }

  /** One API-server audit event, from a log file or the webhook: the K rules and the token trail. */
  private onKubeEvent(ev: KubeAuditEvent): void {
    // A stolen-token finding is not silenced by detections.allow (see startTimers).
    const linked = this.trail.onKubeEvent(ev);
    const f = [...linked, ...[...this.kubeDetector.onKubeEvent(ev), ...this.tokenHome.onKubeEvent(ev)].filter((x) => !this.kubeAllow.allows(x))];
    if (f.length > 0) this.onFindings(f);
  }

  private async startKubeAudit(): Promise<void> {
    for (const src of this.config.kube_audit) {
      if (src.webhook) {
        await this.startKubeWebhook(src.webhook);
        continue;
      }
      const path = src.path!;
      const follower = new KubeAuditFollower({
        path,
        state: this.store.state,
        logger: this.logger,
        onEvent: (ev) => this.onKubeEvent(ev),
        onBadLine: () => this.metrics.countDrop('kube_audit_bad_line'),
      });
      this.followers.push(follower);
      follower.start().catch((err: unknown) => this.logger.error({ path, error: String(err) }, 'kube audit source failed to start'));
    }
  }

  /** The webhook source: its TLS files must be readable, or the agent does not start (a config error). */
  private async startKubeWebhook(w: NonNullable<Config['kube_audit'][number]['webhook']>): Promise<void> {
    const read = (key: string, file: string): string => {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`kube_audit webhook tls.${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    };
    const listen = parseListenAddress(w.listen)!;
    const hook = new KubeAuditWebhook({
      host: listen.host,
      port: listen.port,
      path: w.path,
      tls: { cert: read('cert_file', w.tls.cert_file), key: read('key_file', w.tls.key_file), ca: read('client_ca_file', w.tls.client_ca_file), requireClientCert: true },
      maxBodyBytes: w.max_body_bytes,
      logger: this.logger,
      onEvent: (ev) => this.onKubeEvent(ev),
      onBadLine: () => this.metrics.countDrop('kube_webhook_bad_item'),
    });
    const port = await hook.start();
    this.webhooks.push(hook);
    this.logger.info({ listen: `${listen.host}:${port}`, path: w.path }, 'kube audit webhook listening');
  }

  /**
   * Webhook refusals as drops (a body we could not take is events lost), by cause; and events of either
   * kube source whose detection threw: each is an event no rule finished with, so a drop too.
   */
  private countKubeSourceDrops(): void {
    let followerErrors = 0;
    for (const f of this.followers) followerErrors += f.stats.handlerErrors;
    this.metrics.countDrop('kube_audit_handler_error', followerErrors - this.lastFollowerHandlerErrors);
    this.lastFollowerHandlerErrors = followerErrors;
    const sum = { unauthorized: 0, tooLarge: 0, handlerErrors: 0, events: 0 };
    for (const h of this.webhooks) {
      sum.unauthorized += h.stats.unauthorized;
      sum.tooLarge += h.stats.tooLarge;
      sum.handlerErrors += h.stats.handlerErrors;
      sum.events += h.stats.events;
    }
    this.metrics.countSignal('kube_webhook_unauthorized', sum.unauthorized - this.lastWebhook.unauthorized);
    this.metrics.countDrop('kube_webhook_too_large', sum.tooLarge - this.lastWebhook.tooLarge);
    this.metrics.countDrop('kube_webhook_handler_error', sum.handlerErrors - this.lastWebhook.handlerErrors);
    this.metrics.countSignal('kube_webhook_events', sum.events - this.lastWebhook.events);
    this.lastWebhook = sum;
  }

  private startShipper(): void {
    if (this.config.ship.length === 0) return;
    this.shipper = createShipper({
      outputs: this.config.ship,
      outbox: this.store.outbox,
      host: this.host,
      agentId: this.host,
      logger: this.logger,
      onDelivered: (output, n) => this.metrics.countShip(output, true, n),
      // Not lost (still in the local store) but not delivered to that output: visible as a drop.
      onSetAside: () => {
        this.metrics.countDrop('ship_set_aside_too_large');
        this.metrics.countBounded('set_aside');
      },
    });
    this.shipper.start();
  }

  private onFindings(raw: Finding[]): void {
    // The size cap comes first: what is correlated, logged, stored and shipped is the same finding.
    const cutBefore = this.cap.stats.cut;
    // A token read carries its pod's home addresses before anything sees it (bounded: cap them too).
    const findings = this.cap.applyAll(this.netnsHomes.attach(raw));
    if (this.cap.stats.cut > cutBefore) {
      this.metrics.countBounded('cut', this.cap.stats.cut - cutBefore);
      this.dropLog.report('finding_cut', this.cap.stats.cut - cutBefore, `findings over storage.max_finding_kb (${this.cap.maxBytes} bytes) cut and marked truncated`);
    }
    this.trail.noteHostFindings(findings);
    this.tokenHome.noteHostFindings(findings);
    for (const f of findings) {
      // An incident's later revisions update the stored finding: counted once, when it opens.
      const revision = f.revision ?? 1;
      if (revision <= 1) {
        this.metrics.countFinding(f.rule, f.severity);
        this.stats.countNewFinding();
      }
      this.findingLog.log(f);
    }
    for (const f of findings) this.writer.add(f);
    this.shipper?.wake();
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(() => {
        try {
          fn();
        } catch (err) {
          this.logger.error({ error: err instanceof Error ? err.message : String(err) }, 'periodic task failed');
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(TICK_MS, () => {
      this.pipeline.tick();
      // A stolen-token finding is not silenced by detections.allow: the read already passed the host
      // allowlist, and allowing the token's service account would hide exactly its theft.
      const late = [...this.kubeDetector.tick(Date.now()).filter((x) => !this.kubeAllow.allows(x)), ...this.trail.tick()];
      if (late.length > 0) this.onFindings(late);
      this.tokenClaims.refresh();
      this.tokenMetrics.publish();
      this.countKubeSourceDrops();
      this.stats.publishDeltas(
        { reader: this.reader?.counters() ?? null, detector: this.detector, kube: this.kubeDetector, writer: this.writer, pipeline: this.pipeline },
        { metrics: this.metrics, dropLog: this.dropLog },
      );
    });
    every(STATUS_MS, () => this.publishStatus());
    every(RETENTION_MS, () => void this.enforceRetention());
  }

  private async enforceRetention(): Promise<void> {
    const r = await this.store.enforceRetentionAsync(
      {
        maxAgeDays: this.config.storage.retention_days,
        maxBytes: this.config.storage.max_mb * 1024 * 1024,
        outputs: this.config.ship.map((o) => o.name),
      },
      Date.now(),
    );
    if (r.deletedUndelivered > 0) {
      this.metrics.countDrop('retention_undelivered', r.deletedUndelivered);
      this.logger.warn(r, `storage.max_mb forced retention to delete ${r.deletedUndelivered} findings an output had not delivered`);
    }
    if (r.deleted > 0) this.logger.info(r, 'retention removed old findings');
  }

  /** The read mode for status and logs ("starting" until the reader is open). */
  private mode(): string {
    return this.reader?.mode ?? 'starting';
  }

  private healthy(): boolean {
    return !this.stopping && (this.reader?.reading ?? false);
  }

  private snapshot(now: number): StatusSnapshot {
    const outbox: Record<string, number> = {};
    const lastShip: Record<string, number | null> = {};
    for (const [name, s] of Object.entries(this.shipper?.stats() ?? {})) {
      outbox[name] = s.depth;
      lastShip[name] = s.lastSuccessMs;
      this.metrics.setOutboxDepth(name, s.depth);
    }
    let kernel: StatusSnapshot['kernel'] = null;
    try {
      const k = this.reader?.reading ? this.lifecycle?.kernelStatus() : undefined;
      if (k) {
        kernel = { enabled: k.enabled, pid: k.pid, backlog: k.backlog, backlogLimit: k.backlogLimit, lost: k.lost, failure: k.failure, rateLimit: k.rateLimit, backlogWaitTime: k.backlogWaitTime };
      }
    } catch {
      kernel = null;
    }
    const view = { pid: process.pid, startedMs: this.startedMs, version, mode: this.mode(), immutable: this.immutable, kernel, outbox, lastShip };
    return this.stats.snapshot(now, view, this.metrics, (ms) => this.store.countFindingsSince(ms));
  }

  private publishStatus(): void {
    const s = this.snapshot(Date.now());
    try {
      writeStatusSnapshot(this.store.state, s);
    } catch (err) {
      this.dropLog.report('status_write_failed', 1, 'could not write the status snapshot', { error: err instanceof Error ? err.message : String(err) });
    }
    this.notifier.status(`mode=${s.mode} events/s=${s.rates.eventsPerSec} findings_today=${s.findingsToday}`);
  }

  private async doStop(reason: string): Promise<void> {
    // Every step runs even when an earlier one fails (or start() failed half-way and left the later parts null):
    // the kernel must be restored and committed findings flushed whatever else went wrong.
    const step = async (name: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.logger.error({ step: name, error: err instanceof Error ? err.message : String(err) }, 'shutdown step failed');
      }
    };
    this.logger.info({ reason }, 'credwatch stopping');
    await step('notify', () => this.notifier.stopping('stopping'));
    for (const t of this.timers) clearInterval(t);
    await step('pod watcher', () => this.podWatcher?.stop());
    await step('runtime state watcher', () => this.runtimeStateWatcher?.stop());
    // Rules out first: nothing new is produced, and the kernel is restored even if a later step fails.
    let report: ReturnType<AuditLifecycle['shutdown']> | undefined;
    await step('audit rules', () => {
      report = this.lifecycle?.shutdown();
    });
    await step('audit reader', () => this.reader?.close());
    // Final reader counters (records, queue drops, queue waits, ENOBUFS) for the operator's log: the
    // queue waits (time the reader blocked on a full queue in unicast) are not a drop but show pressure.
    const c = this.reader?.counters();
    if (c) {
      const reader = { received: c.received, delivered: c.delivered, queueDrops: c.queueDrops, queueWaits: c.queueWaits, enobufs: c.enobufs, truncated: c.truncated, sourceDrops: c.sourceDrops };
      const triage = { summarized: c.summarized, summarizedRecords: c.summarizedRecords, passed: c.triagePassed, unsure: c.triageUnsure, expired: c.triageExpired, procSnapshots: c.procSnapshots };
      this.logger.info({ reader, triage, serialGaps: this.pipeline.stats.serialGaps }, 'audit reader stopped');
    }
    await step('pipeline', () => {
      this.pipeline.flush();
      this.pipeline.tick();
    });
    // No more webhook posts once the trail and the kube detector are flushed.
    for (const h of this.webhooks) await step('kube webhook', () => h.stop());
    await step('kube detector', () => {
      const late = [...this.kubeDetector.flush(), ...this.trail.flush()];
      if (late.length > 0) this.onFindings(late);
      this.tokenMetrics.publish();
    });
    for (const f of this.followers) await step('kube follower', () => f.stop());
    await step('writer', () => this.writer.close());
    await step('shipper', () => this.shipper?.stop());
    await step('status', () => this.publishStatus());
    await step('store', () => this.store.close());
    await step('metrics', () => this.metricsServer?.close());
    await step('notify close', () => this.notifier.close());
    this.logger.info({ removedRules: report?.removed ?? 0, restored: report?.restored ?? [] }, 'credwatch stopped');
  }
}
