/**
 * Delivers findings from the outbox to each configured output, at least once and in order per output.
 *
 * One loop per output: read the oldest pending findings, drop (ack as skipped) those under the output's
 * minimum severity, POST the rest, and move the output's cursor only after the receiver confirmed them.
 * A crash between the receiver's answer and the ack resends the batch; receivers drop duplicates by the
 * finding's stable id. Failures are classified (auth, TLS, too large, refused, transient) because each
 * needs a different wait, and they are logged when their cause changes or at most once per
 * `logEveryMs`, never once per retry. Nothing here ever removes a finding: only retention does.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import pino from 'pino';
import type { Logger } from 'pino';
import { LogWindow } from '../log/rate-limit';
import { z } from 'zod';
import { SEVERITIES, severityRank } from '../model/finding';
import type { Finding } from '../model/finding';
import type { OutboxReader } from '../store/types';
import type { BackoffPolicy } from './backoff';
import { DEFAULT_BACKOFF, backoffDelay } from './backoff';
import type { DeliveryOutcome, OutputFormat } from './formats/format';
import { elasticBulkFormat } from './formats/elastic-bulk';
import { ndjsonFormat } from './formats/ndjson';
import { DEFAULT_SOURCETYPE, splunkHecFormat } from './formats/splunk-hec';
import { describeTlsError, loadTlsMaterial, type TlsMaterial } from './tls';
import { RequestTimeout, Transport } from './transport';

const gzip = promisify(gzipCb);

const tlsSchema = z
  .object({
    ca_file: z.string().min(1).optional(),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    /** Turns certificate verification off. Refused unless the operator also opted in (see createShipper). */
    insecure_skip_verify: z.boolean().optional(),
    server_name: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    message: 'cert_file and key_file must be given together',
  });

/** One entry of the `ship:` list in the agent's YAML config. */
export const shipOutputSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (at most 64)'),
    type: z.enum(['collector', 'splunk-hec', 'elasticsearch']),
    url: z
      .string()
      .refine((u) => URL.canParse(u), 'must be a URL')
      .refine((u) => u.startsWith('https://'), 'must be an https:// URL (findings are not sent in clear text)'),
    min_severity: z.enum(SEVERITIES).optional(),
    batch_size: z.number().int().min(1).max(10_000).default(500),
    flush_interval_ms: z.number().int().min(10).max(3_600_000).default(1000),
    gzip: z.boolean().default(true),
    timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
    tls: tlsSchema.optional(),
    token: z.string().min(1).optional(),
    token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
    index: z.string().min(1).optional(),
    sourcetype: z.string().min(1).default(DEFAULT_SOURCETYPE),
  })
  .strict()
  .refine((o) => !(o.token !== undefined && o.token_env !== undefined), { message: 'give token or token_env, not both', path: ['token_env'] })
  .refine((o) => o.type !== 'splunk-hec' || o.token !== undefined || o.token_env !== undefined, {
    message: 'splunk-hec needs token or token_env',
    path: ['token'],
  });

/** As written in the config (defaults not yet applied). */
export type OutputConfig = z.input<typeof shipOutputSchema>;
/** With defaults applied. */
export type ResolvedOutputConfig = z.output<typeof shipOutputSchema>;

export class ShipConfigError extends Error {
  readonly exitCode = 2;
}

export interface OutputStats {
  delivered: number;
  /** Acked without sending because they are under the output's min_severity. */
  skipped: number;
  /**
   * Findings set aside because the receiver refused them alone as too large: acked for this output so
   * the queue moves on, kept in the local store (`credwatch show ID`), counted and logged.
   */
  setAside: number;
  failures: number;
  /** Attempts that resent something already attempted. */
  retries: number;
  lastSuccessMs: number | null;
  lastError: string | null;
  inFlight: number;
  depth: number;
  consecutiveFailures: number;
  /** When the next attempt is due after a failure (epoch ms), null when not waiting. */
  nextAttemptMs: number | null;
}

export interface Shipper {
  start(): void;
  /** Lets the current request finish within the grace period, else aborts it; unacked stays in the outbox. */
  stop(): Promise<void>;
  /** Wakes idle outputs now (call after committing findings) instead of at the next flush interval. */
  wake(): void;
  stats(): Record<string, OutputStats>;
}

export interface ShipperOptions {
  outputs: OutputConfig[];
  outbox: OutboxReader;
  host: string;
  agentId: string;
  logger?: Logger;
  now?: () => number;
  onDelivered?: (output: string, n: number) => void;
  /** A finding the receiver refused on its own as too large was set aside (see OutputStats.setAside). */
  onSetAside?: (output: string, findingId: string) => void;
  /** Retry timing; production uses the defaults (1 s base, 5 min cap). */
  backoff?: Partial<BackoffPolicy>;
  /** Minimum time between two log lines about the same ongoing failure; default 5 min. */
  logEveryMs?: number;
  /** How long stop() lets an in-flight request finish before aborting it; default 3 s. */
  stopGraceMs?: number;
  /** Must be true (or CREDWATCH_ALLOW_INSECURE_TLS=1) for `tls.insecure_skip_verify: true` to be accepted. */
  allowInsecureTls?: boolean;
  env?: NodeJS.ProcessEnv;
  random?: () => number;
}

const FORMATS: Record<ResolvedOutputConfig['type'], OutputFormat> = {
  collector: ndjsonFormat,
  'splunk-hec': splunkHecFormat,
  elasticsearch: elasticBulkFormat,
};

type Failure = { kind: 'auth' | 'tls' | 'rejected' | 'transient' | 'too-large'; message: string; retryAfterMs?: number };

class OutputWorker {
  readonly stats: Omit<OutputStats, 'depth'> = {
    delivered: 0,
    skipped: 0,
    setAside: 0,
    failures: 0,
    retries: 0,
    lastSuccessMs: null,
    lastError: null,
    inFlight: 0,
    consecutiveFailures: 0,
    nextAttemptMs: null,
  };
  private readonly format: OutputFormat;
  private readonly transport: Transport;
  private readonly minRank: number;
  private readonly token: string | undefined;
  private readonly baseUrl: string;
  private batchLimit: number;
  private stopping = false;
  private readonly abort = new AbortController();
  private wakeSleep: (() => void) | null = null;
  private sleepTimer: NodeJS.Timeout | null = null;
  private sleepIsIdle = false;
  /** Failure lines: a new cause is written at once, a repeat at most once per logEveryMs. */
  private failureLog: LogWindow;
  private lastLogKey = '';
  private attemptedUpTo = 0;
  private loop: Promise<void> | null = null;
  private inFlightDone: Promise<unknown> | null = null;

  constructor(
    private readonly cfg: ResolvedOutputConfig,
    private readonly o: Required<Pick<ShipperOptions, 'outbox' | 'host' | 'agentId' | 'now' | 'random'>> &
      Pick<ShipperOptions, 'onDelivered' | 'onSetAside'> & { logger: Logger; backoff: BackoffPolicy; logEveryMs: number; env: NodeJS.ProcessEnv; allowInsecure: boolean },
  ) {
    this.format = FORMATS[cfg.type];
    this.minRank = cfg.min_severity ? severityRank(cfg.min_severity) : 0;
    this.batchLimit = cfg.batch_size;
    this.baseUrl = cfg.url.replace(/\/+$/, '');
    const { token, material } = resolveOutputSecurity(cfg, o.env, o.allowInsecure);
    this.token = token;
    if (cfg.tls?.insecure_skip_verify === true) {
      o.logger.warn({ output: cfg.name }, `TLS certificate verification is OFF for output ${cfg.name}: anyone on the path can read and forge findings`);
    }
    this.transport = new Transport(material, cfg.timeout_ms);
    this.failureLog = new LogWindow(o.logEveryMs, o.now);
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.o.logger.error({ output: this.cfg.name, err }, `shipper loop for ${this.cfg.name} stopped unexpectedly`);
    });
  }

  wake(): void {
    if (this.sleepIsIdle) this.wakeSleep?.();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wakeSleep?.();
    if (this.inFlightDone) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.inFlightDone, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      this.abort.abort();
    }
    await this.loop;
    await this.transport.close();
  }

  private sleep(ms: number, idle: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      this.sleepIsIdle = idle;
      const done = (): void => {
        if (this.sleepTimer) clearTimeout(this.sleepTimer);
        this.sleepTimer = null;
        this.wakeSleep = null;
        this.sleepIsIdle = false;
        resolve();
      };
      this.wakeSleep = done;
      this.sleepTimer = setTimeout(done, ms);
    });
  }

  private async run(): Promise<void> {
    const name = this.cfg.name;
    while (!this.stopping) {
      let entries;
      try {
        entries = this.o.outbox.pending(name, this.batchLimit);
      } catch (err) {
        // A busy or failing store is not a reason to die: log (rate-bounded) and try again.
        this.report({ kind: 'transient', message: `reading the outbox failed: ${(err as Error).message}` });
        await this.sleep(this.cfg.flush_interval_ms, false);
        continue;
      }
      if (entries.length === 0) {
        await this.sleep(this.cfg.flush_interval_ms, true);
        continue;
      }
      const toShip = entries.filter((e) => severityRank(e.finding.severity) >= this.minRank);
      const last = entries[entries.length - 1]!;
      if (toShip.length === 0) {
        this.o.outbox.ack(name, last.seq);
        this.stats.skipped += entries.length;
        // A long run of filtered findings must not hold the event loop (the pipeline shares it).
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (toShip[0]!.seq <= this.attemptedUpTo) this.stats.retries++;
      this.attemptedUpTo = Math.max(this.attemptedUpTo, toShip[toShip.length - 1]!.seq);

      const outcome = await this.send(toShip.map((e) => e.finding));
      if (outcome === 'stopped') break;
      if (outcome.kind === 'ok') {
        this.o.outbox.ack(name, last.seq);
        this.delivered(toShip.length, entries.length - toShip.length);
        if (this.batchLimit < this.cfg.batch_size) this.batchLimit = Math.min(this.cfg.batch_size, this.batchLimit * 2);
        continue;
      }
      if (outcome.kind === 'partial') {
        // Ack up to just before the first finding the receiver did not store; skipped ones before it go too.
        const firstUnstored = toShip[outcome.delivered]!.seq;
        let ackTo = -1;
        let acked = 0;
        for (const e of entries) {
          if (e.seq >= firstUnstored) break;
          ackTo = e.seq;
          acked++;
        }
        if (ackTo >= 0) {
          this.o.outbox.ack(name, ackTo);
          this.delivered(outcome.delivered, acked - outcome.delivered);
        }
        await this.fail({ kind: 'transient', message: outcome.message });
        continue;
      }
      if (outcome.kind === 'too-large' && entries.length > 1) {
        this.batchLimit = Math.max(1, Math.floor(entries.length / 2));
        this.o.logger.info({ output: name, batch: this.batchLimit }, `${name} refused a ${entries.length}-finding batch as too large; sending ${this.batchLimit} at a time`);
        continue;
      }
      if (outcome.kind === 'too-large') {
        // One finding over the receiver's limit: resending it can never succeed, and retrying it would
        // hold every finding behind it. Set it aside (it stays in the local store) and move on.
        this.setAside(toShip[0]!, last.seq, outcome.message);
        continue;
      }
      await this.fail(outcome);
    }
  }

  private setAside(entry: { seq: number; finding: Finding }, ackTo: number, why: string): void {
    const name = this.cfg.name;
    this.o.outbox.ack(name, ackTo);
    this.stats.setAside++;
    this.o.logger.warn(
      { output: name, finding: entry.finding.id, seq: entry.seq, setAside: this.stats.setAside },
      `${name} refused finding ${entry.finding.id} on its own as too large (${why}); set aside: kept locally, not sent to ${name}`,
    );
    this.o.onSetAside?.(name, entry.finding.id);
  }

  private delivered(n: number, skipped: number): void {
    const s = this.stats;
    if (s.consecutiveFailures > 0) {
      this.o.logger.info({ output: this.cfg.name, failures: s.consecutiveFailures }, `delivery to ${this.cfg.name} resumed after ${s.consecutiveFailures} failed attempts`);
      // The trouble is over: the next failure is written at once, counting only what is held back after it.
      this.failureLog = new LogWindow(this.o.logEveryMs, this.o.now);
    }
    s.delivered += n;
    s.skipped += skipped;
    s.lastSuccessMs = this.o.now();
    s.consecutiveFailures = 0;
    s.nextAttemptMs = null;
    this.lastLogKey = '';
    if (n > 0) this.o.onDelivered?.(this.cfg.name, n);
  }

  /** One HTTP attempt; any throw is turned into an outcome. */
  private async send(findings: readonly Finding[]): Promise<DeliveryOutcome | Failure | 'stopped'> {
    const req = this.format.encode(findings, {
      agentId: this.o.agentId,
      host: this.o.host,
      token: this.token,
      index: this.cfg.index,
      sourcetype: this.cfg.sourcetype,
    });
    const headers: Record<string, string> = { ...req.headers, 'user-agent': 'credwatch-agent' };
    let body = Buffer.from(req.body, 'utf8');
    if (this.cfg.gzip) {
      body = await gzip(body);
      headers['content-encoding'] = 'gzip';
    }
    this.stats.inFlight = findings.length;
    const pending = this.transport.send('POST', this.baseUrl + req.path, headers, body, this.abort.signal);
    this.inFlightDone = pending.catch(() => undefined);
    try {
      const res = await pending;
      return this.format.interpret(res, findings);
    } catch (err) {
      if (this.abort.signal.aborted) return 'stopped';
      if (err instanceof RequestTimeout) return { kind: 'transient', message: `${this.cfg.name} did not answer within ${this.cfg.timeout_ms} ms` };
      const tls = describeTlsError(err);
      if (tls) return { kind: 'tls', message: tls };
      return { kind: 'transient', message: networkMessage(err) };
    } finally {
      this.stats.inFlight = 0;
      this.inFlightDone = null;
    }
  }

  private async fail(f: Failure | DeliveryOutcome): Promise<void> {
    const failure = f as Failure;
    const s = this.stats;
    s.failures++;
    s.consecutiveFailures++;
    s.lastError = failure.message;
    this.report(failure);
    // Auth, TLS and refused content will not fix themselves in a second: wait the cap.
    let wait =
      failure.kind === 'transient'
        ? backoffDelay(this.o.backoff, s.consecutiveFailures, this.o.random)
        : this.o.backoff.capMs;
    if (failure.retryAfterMs !== undefined) wait = Math.min(this.o.backoff.capMs, Math.max(wait, failure.retryAfterMs));
    s.nextAttemptMs = this.o.now() + wait;
    await this.sleep(wait, false);
  }

  /** Logs a failure when its cause changes, else at most once per logEveryMs with a count. */
  private report(f: Failure): void {
    const key = `${f.kind}|${f.message}`;
    if (key !== this.lastLogKey) this.failureLog.reopen();
    const suppressed = this.failureLog.take();
    if (suppressed === null) return;
    this.lastLogKey = key;
    const name = this.cfg.name;
    const line =
      f.kind === 'auth'
        ? `token rejected by ${name}: ${f.message}; will retry in ${Math.round(this.o.backoff.capMs / 1000)} s`
        : f.kind === 'tls'
          ? `TLS error talking to ${name}: ${f.message}; will retry in ${Math.round(this.o.backoff.capMs / 1000)} s`
          : f.kind === 'rejected'
            ? `${name} refused findings: ${f.message}; keeping them and retrying in ${Math.round(this.o.backoff.capMs / 1000)} s`
            : `delivery to ${name} failed: ${f.message}; retrying with backoff`;
    const fields = { output: name, kind: f.kind, depth: safeDepth(this.o.outbox, name), failures: this.stats.consecutiveFailures, suppressed };
    if (f.kind === 'transient') this.o.logger.warn(fields, line);
    else this.o.logger.error(fields, line);
  }
}

function safeDepth(outbox: OutboxReader, name: string): number | undefined {
  try {
    return outbox.depth(name);
  } catch {
    return undefined;
  }
}

function networkMessage(err: unknown): string {
  for (let e: unknown = err, i = 0; e && typeof e === 'object' && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ECONNREFUSED') return 'connection refused';
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset by the receiver';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'receiver host name does not resolve';
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'receiver unreachable';
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timed out';
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'receiver stopped answering (timeout)';
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * What an output needs before it may start, checked without touching the network: its token (from
 * token_env), insecure TLS only when explicitly allowed, and TLS files that exist and hold what they
 * should (tls.ts). `credwatch config check`, `credwatch run` (before the kernel is touched) and the
 * worker itself all go through here, so all three say the same thing. Throws ShipConfigError.
 */
export function resolveOutputSecurity(cfg: ResolvedOutputConfig, env: NodeJS.ProcessEnv, allowInsecure: boolean): { token: string | undefined; material: TlsMaterial } {
  let token = cfg.token;
  if (cfg.token_env !== undefined) {
    const v = env[cfg.token_env];
    if (v === undefined || v === '') throw new ShipConfigError(`ship output ${cfg.name}: environment variable ${cfg.token_env} (token_env) is not set`);
    token = v;
  }
  if (cfg.tls?.insecure_skip_verify === true && !allowInsecure) {
    throw new ShipConfigError(`ship output ${cfg.name}: tls.insecure_skip_verify is refused unless insecure TLS is explicitly allowed (CREDWATCH_ALLOW_INSECURE_TLS=1)`);
  }
  try {
    return { token, material: loadTlsMaterial(cfg.tls) };
  } catch (err) {
    throw new ShipConfigError(`ship output ${cfg.name}: ${(err as Error).message}`);
  }
}

function allowsInsecure(opts: Pick<ShipperOptions, 'allowInsecureTls'>, env: NodeJS.ProcessEnv): boolean {
  return opts.allowInsecureTls === true || env.CREDWATCH_ALLOW_INSECURE_TLS === '1';
}

/** Every output's schema, name and security checks (resolveOutputSecurity), as createShipper makes them. */
export function checkShipOutputs(outputs: readonly unknown[], env: NodeJS.ProcessEnv, opts: { allowInsecureTls?: boolean } = {}): void {
  for (const cfg of resolveOutputs(outputs)) resolveOutputSecurity(cfg, env, allowsInsecure(opts, env));
}

function resolveOutputs(outputs: readonly unknown[]): ResolvedOutputConfig[] {
  const names = new Set<string>();
  return outputs.map((raw, i) => {
    const parsed = shipOutputSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ShipConfigError(`ship[${i}]${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`);
    }
    if (names.has(parsed.data.name)) throw new ShipConfigError(`ship[${i}].name: output name ${parsed.data.name} is used twice`);
    names.add(parsed.data.name);
    return parsed.data;
  });
}

export function createShipper(opts: ShipperOptions): Shipper {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? pino({ level: 'silent' });
  const resolved = resolveOutputs(opts.outputs);
  const shared = {
    outbox: opts.outbox,
    host: opts.host,
    agentId: opts.agentId,
    now: opts.now ?? Date.now,
    random: opts.random ?? Math.random,
    onDelivered: opts.onDelivered,
    onSetAside: opts.onSetAside,
    logger,
    backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
    logEveryMs: opts.logEveryMs ?? 5 * 60_000,
    env,
    allowInsecure: allowsInsecure(opts, env),
  };
  const workers = resolved.map((cfg) => ({ cfg, worker: new OutputWorker(cfg, shared) }));
  const stopGrace = opts.stopGraceMs ?? 3000;
  return {
    start() {
      for (const w of workers) w.worker.start();
    },
    async stop() {
      await Promise.all(workers.map((w) => w.worker.stop(stopGrace)));
    },
    wake() {
      for (const w of workers) w.worker.wake();
    },
    stats() {
      const out: Record<string, OutputStats> = {};
      for (const { cfg, worker } of workers) out[cfg.name] = { ...worker.stats, depth: safeDepth(opts.outbox, cfg.name) ?? -1 };
      return out;
    },
  };
}
