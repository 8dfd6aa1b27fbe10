/**
 * The collector: an HTTPS-only server that takes findings from many agents and answers fleet queries.
 *
 *   POST /v1/findings   NDJSON batch (gzip or plain), auth = bearer token or client certificate, role ingest
 *                       200 {"accepted": n, "duplicates": m}; all-or-nothing (see ingest.ts)
 *   GET  /v1/findings   ?since=&until=&min_severity=&rule=&container=&host=&limit=&cursor=, role query; NDJSON,
 *                       newest first, one page; X-Credwatch-Next-Cursor when more match
 *   GET  /metrics       Prometheus text, role query (see metrics.ts)
 *   GET  /healthz       200 "ok" without auth (for load balancers; reveals nothing)
 *
 * Errors are JSON `{"error": "..."}` with 400 (malformed), 401 (no/unknown credentials), 403 (not allowed),
 * 404, 405, 413 (body over max_body_bytes, before or after decompression), 415, 429 (rate limit, with
 * Retry-After), 503 (bodies in flight at their limit, or the database unavailable; with Retry-After, and
 * nothing of the batch acknowledged: the 200 comes only after the commit). A bad request costs that request only: the server keeps serving. Secrets (tokens) are
 * never logged or echoed: responses name what was wrong, not what was sent.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { SEVERITIES, type Severity } from '../model/finding';
import { RateLimitedLog } from '../log/rate-limit';
import type { FindingsQuery } from '../store/types';
import { Authenticator, RateLimiter, type Principal } from './auth';
import type { CollectorConfig } from './config';
import { encodeFinding } from './finding-schema';
import { compiledValidator } from './finding-validator';
import { IngestError, decodeBody, parseNdjsonFindings } from './ingest';
import { createCollectorMetrics } from './metrics';
import { StoreUnavailableError, decodeCursor, encodeCursor, type CollectorStore, type PageRow } from './store';
import { COLLECTOR_AGENT, linkedFindings, touchedJtis } from './token-join';
import { LinkThrottle } from './link-throttle';
import { parseListenAddress } from '../daemon/config-schema';

export interface CollectorServerOptions {
  config: CollectorConfig;
  store: CollectorStore;
  logger?: Logger;
  now?: () => number;
  /** Override `config.listen` (tests use port 0). */
  listen?: { host: string; port: number };
  /** A token's fleet link is re-joined at most this often per replica (its first join is at once). Default 1 s. */
  tokenLinkEveryMs?: number;
}

export interface CollectorCounters {
  requests: number;
  batches: number;
  accepted: number;
  replaced: number;
  duplicates: number;
  /** Requests refused with 503 because bodies in flight were at max_inflight_bytes, or database connections all taken. */
  busy: number;
  /** Requests answered 503 because the database could not take them. */
  dbUnavailable: number;
  /** Findings removed by retention. */
  retained: number;
  /** Linked "stolen token used" findings the fleet join stored (new or revised), and its failures. */
  tokenLinks: number;
  tokenLinkErrors: number;
  /** Re-joins of a link put off to the next second (a storm of requests for one token), never dropped. */
  tokenLinksHeld: number;
  rejected: Record<string, number>;
}

export interface CollectorServer {
  readonly host: string;
  readonly port: number;
  /** https://HOST:PORT */
  readonly url: string;
  counters(): CollectorCounters;
  /** Counts findings that retention removed (in /metrics and the counters). */
  countRetained(n: number): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const MAX_QUERY_LIMIT = 10_000;
/** JSON read from the store per write while streaming a page. */
const STREAM_CHUNK_BYTES = 1024 * 1024;
const DEFAULT_QUERY_LIMIT = 1000;
/** Batches waiting per pooled database connection above which new ones are answered 503 unparsed. */
const SHED_WAITING_PER_CONNECTION = 2;

function parseTime(name: string, v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  if (/^\d{1,16}$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new HttpError(400, `${name} must be epoch milliseconds or an ISO 8601 time`);
  return ms;
}

export function parseFindingsQuery(params: URLSearchParams): FindingsQuery {
  const q: FindingsQuery = {};
  const since = parseTime('since', params.get('since'));
  const until = parseTime('until', params.get('until'));
  if (since !== undefined) q.sinceMs = since;
  if (until !== undefined) q.untilMs = until;
  const sev = params.get('min_severity');
  if (sev !== null && sev !== '') {
    if (!(SEVERITIES as readonly string[]).includes(sev)) throw new HttpError(400, `min_severity must be one of ${SEVERITIES.join(', ')}`);
    q.minSeverity = sev as Severity;
  }
  for (const key of ['rule', 'container', 'host'] as const) {
    const v = params.get(key);
    if (v !== null && v !== '') {
      if (v.length > 256) throw new HttpError(400, `${key} is too long`);
      q[key] = v;
    }
  }
  const limit = params.get('limit');
  if (limit !== null && limit !== '') {
    if (!/^\d{1,6}$/.test(limit) || Number(limit) < 1) throw new HttpError(400, `limit must be an integer from 1 to ${MAX_QUERY_LIMIT}`);
    q.limit = Math.min(MAX_QUERY_LIMIT, Number(limit));
  } else q.limit = DEFAULT_QUERY_LIMIT;
  return q;
}

/** Reads the body up to `max` bytes; over that, throws 413 without buffering the rest. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        chunks.length = 0;
        reject(new HttpError(413, `body is over the limit of ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks, size));
      }
    });
    req.on('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
  });
}

export async function startCollectorServer(opts: CollectorServerOptions): Promise<CollectorServer> {
  const { config, store } = opts;
  // Compiled before listening: the first batch does not wait for it.
  compiledValidator();
  const logger = opts.logger ?? pino({ level: 'silent' });
  const now = opts.now ?? Date.now;
  const auth = new Authenticator(config.agents);
  const agentLimiter = new RateLimiter(config.rate_limit.requests_per_second, config.rate_limit.burst, now);
  // Failed authentications are limited per address, so guessing tokens is slow and cannot flood logs.
  const failLimiter = new RateLimiter(Math.max(1, config.rate_limit.requests_per_second / 4), Math.max(5, Math.floor(config.rate_limit.burst / 4)), now);
  const rejectLog = new RateLimitedLog(logger, 10_000, now);
  const counters: CollectorCounters = { requests: 0, batches: 0, accepted: 0, replaced: 0, duplicates: 0, busy: 0, dbUnavailable: 0, retained: 0, tokenLinks: 0, tokenLinkErrors: 0, tokenLinksHeld: 0, rejected: {} };
  const maxBody = config.max_body_bytes;
  let inFlightBytes = 0;
  let server: Server | null = null;
  const metrics = createCollectorMetrics({
    connections: () => new Promise((resolve) => (server ? server.getConnections((_e, n) => resolve(n ?? 0)) : resolve(0))),
    inFlightBytes: () => inFlightBytes,
    pool: () => store.poolStats?.(),
  });
  const linkThrottle = new LinkThrottle({ everyMs: opts.tokenLinkEveryMs ?? 1000, now });
  /** Joins these trails and stores their links; a failure is logged and counted (the batch stands). */
  const joinTrails = async (jtis: readonly string[]): Promise<void> => {
    if (jtis.length === 0) return;
    try {
      const links = linkedFindings(await store.tokenTrails(jtis));
      if (links.length > 0) {
        // Another replica may have stored the same link: an equal revision is a duplicate.
        const stored = await store.ingest(COLLECTOR_AGENT, links.map(encodeFinding), now());
        counters.tokenLinks += stored.accepted + stored.replaced;
        linkThrottle.noteLinked(links.map((l) => l.token!.jti!));
      }
    } catch (err) {
      counters.tokenLinkErrors++;
      metrics.dbErrors.inc();
      logger.error({ error: (err as Error).message }, 'could not store a fleet token link');
    }
  };
  const linkTimer = setInterval(() => void joinTrails(linkThrottle.due()), opts.tokenLinkEveryMs ?? 1000);
  linkTimer.unref();
  /** Every failed storage call is counted (database errors), whatever the answer becomes. */
  const fromStore = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      metrics.dbErrors.inc();
      throw err;
    }
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string>): void => {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', ...headers });
    res.end(body);
  };
  const sendError = (req: IncomingMessage, res: ServerResponse, err: HttpError, who: string | null): void => {
    counters.rejected[err.status] = (counters.rejected[err.status] ?? 0) + 1;
    metrics.rejects.inc({ status: String(err.status) });
    const headers: Record<string, string> = { 'content-type': 'application/json', ...err.headers };
    // If the request body was not read to the end, the connection cannot carry another request.
    if (!req.complete) headers.connection = 'close';
    send(res, err.status, `${JSON.stringify({ error: err.message })}\n`, headers);
    if (err.status !== 429) {
      rejectLog.report(`${err.status}:${who ?? req.socket.remoteAddress ?? '?'}`, 1, `collector rejected a request: ${err.message}`, {
        status: err.status,
        agent: who,
        remote: req.socket.remoteAddress,
        path: req.url?.split('?')[0],
      });
    }
  };

  const authenticate = (req: IncomingMessage): Principal => {
    const result = auth.authenticate(req);
    if (result.ok) return result.principal;
    const wait = failLimiter.take(`ip:${req.socket.remoteAddress ?? '?'}`);
    if (wait > 0) throw new HttpError(429, 'too many failed authentications from this address', { 'retry-after': String(Math.ceil(wait / 1000)) });
    throw new HttpError(result.status, result.error, result.status === 401 ? { 'www-authenticate': 'Bearer realm="credwatch"' } : {});
  };

  const limit = (p: Principal): void => {
    const wait = agentLimiter.take(`agent:${p.agent}`);
    if (wait > 0) throw new HttpError(429, `rate limit for agent ${p.agent} exceeded`, { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) });
  };

  const ingest = async (req: IncomingMessage, res: ServerResponse, p: Principal): Promise<void> => {
    if (!p.roles.includes('ingest')) throw new HttpError(403, `agent ${p.agent} may not send findings (role ingest)`);
    const named = req.headers['x-credwatch-agent'];
    if (typeof named === 'string' && named !== p.agent) throw new HttpError(403, 'X-Credwatch-Agent names a different agent than the credentials');
    limit(p);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) throw new HttpError(413, `body is over the limit of ${maxBody} bytes`);
    // Bodies in flight are bounded across all requests: reserve the most this one can hold in memory
    // (raw body, plus its decompressed copy) before reading it; over the budget, 503 and retry later.
    const encoded = req.headers['content-encoding'] !== undefined && req.headers['content-encoding'] !== 'identity';
    const reserve = (Number.isFinite(declared) && declared >= 0 ? declared : maxBody) + (encoded ? maxBody : 0);
    if (inFlightBytes + reserve > config.limits.max_inflight_bytes) {
      counters.busy++;
      throw new HttpError(503, 'collector is busy (bodies in flight at their limit); retry later', { 'retry-after': '1' });
    }
    inFlightBytes += reserve;
    let findings;
    try {
      const raw = await readBody(req, maxBody);
      // Shed load before the costly part (gunzip, schema, JSON): when requests already queue for
      // database connections, parsing more only makes every batch later. The agent backs off.
      const pool = store.poolStats?.();
      if (pool && pool.waiting >= SHED_WAITING_PER_CONNECTION * pool.max) {
        counters.busy++;
        throw new HttpError(503, 'collector is busy (database connections all in use); retry later', { 'retry-after': '1' });
      }
      const body = await decodeBody(raw, req.headers['content-encoding'], maxBody);
      findings = parseNdjsonFindings(body, { nowMs: now(), maxFutureMs: config.max_clock_skew_seconds * 1000, maxPastMs: config.storage.retention_days * 86_400_000 });
    } finally {
      inFlightBytes -= reserve;
    }
    if (p.hosts) {
      const foreign = findings.find((e) => !p.hosts!.includes(e.finding.host));
      if (foreign) throw new HttpError(403, `line ${foreign.line}: agent ${p.agent} may not report findings for host ${JSON.stringify(foreign.finding.host.slice(0, 100))}; nothing from this batch was stored`);
    }
    // Resolves only after the commit (synchronous=FULL): the 200 below is the durable acknowledgement.
    const endTimer = metrics.batchSeconds.startTimer();
    const result = await fromStore(store.ingest(p.agent, findings, now()));
    endTimer();
    const { accepted, replaced, duplicates } = result;
    metrics.batches.inc();
    metrics.findings.inc({ result: 'accepted' }, accepted);
    metrics.findings.inc({ result: 'replaced' }, replaced);
    metrics.findings.inc({ result: 'duplicate' }, duplicates);
    counters.batches++;
    counters.accepted += accepted;
    counters.replaced += replaced;
    counters.duplicates += duplicates;
    logger.debug({ agent: p.agent, accepted, replaced, duplicates }, 'batch ingested');
    // Reads from one agent, requests from another, joined by token jti (token-join.ts) on the state in
    // the store, so whichever replica ingested either side. The batch and its sightings are already
    // committed: a failure here is logged and counted, the agent's 200 stands.
    // A link only grows after its first join: re-joined at most once a second per jti (link-throttle.ts).
    const jtis = p.agent === COLLECTOR_AGENT ? [] : touchedJtis(p.agent, findings);
    if (jtis.length > 0) await joinTrails(linkThrottle.take(jtis));
    counters.tokenLinksHeld = linkThrottle.stats.held;
    send(res, 200, `${JSON.stringify({ accepted, replaced, duplicates })}\n`, { 'content-type': 'application/json' });
  };

  /**
   * One page, newest first, streamed: the rows are chosen first (small columns only, bounded by `limit`
   * and query_page_bytes) so the next cursor can go in a header, then their JSON is written in chunks
   * of about 1 MB, waiting for the socket to drain, so memory stays bounded whatever the findings' size.
   */
  const query = async (req: IncomingMessage, res: ServerResponse, p: Principal, params: URLSearchParams): Promise<void> => {
    if (!p.roles.includes('query')) throw new HttpError(403, `${p.agent} may not query findings (role query)`);
    limit(p);
    const q = parseFindingsQuery(params);
    const cursorText = params.get('cursor');
    const cursor = cursorText === null || cursorText === '' ? null : decodeCursor(cursorText);
    if (cursorText !== null && cursorText !== '' && cursor === null) throw new HttpError(400, 'cursor is malformed (pass back the X-Credwatch-Next-Cursor value unchanged)');
    const plan = await fromStore(store.planPage(q, cursor, q.limit ?? DEFAULT_QUERY_LIMIT, config.query_page_bytes));
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' };
    if (plan.next !== null) headers['x-credwatch-next-cursor'] = encodeCursor(plan.next);
    res.writeHead(200, headers);
    let i = 0;
    while (i < plan.rows.length) {
      if (req.destroyed || res.destroyed) return;
      let bytes = 0;
      const chunk: PageRow[] = [];
      while (i < plan.rows.length && (chunk.length === 0 || bytes + plan.rows[i]!.bytes <= STREAM_CHUNK_BYTES)) {
        bytes += plan.rows[i]!.bytes;
        chunk.push(plan.rows[i]!);
        i++;
      }
      const texts = await fromStore(store.readRows(chunk));
      if (!res.write(texts.length ? `${texts.join('\n')}\n` : '')) await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counters.requests++;
    let who: string | null = null;
    try {
      const url = new URL(req.url ?? '/', 'https://collector');
      if (url.pathname === '/healthz') {
        if (req.method !== 'GET') throw new HttpError(405, 'use GET', { allow: 'GET' });
        send(res, 200, 'ok\n', { 'content-type': 'text/plain' });
        return;
      }
      if (url.pathname === '/metrics') {
        if (req.method !== 'GET') throw new HttpError(405, 'use GET', { allow: 'GET' });
        const p = authenticate(req);
        who = p.agent;
        if (!p.roles.includes('query')) throw new HttpError(403, `${p.agent} may not read metrics (role query)`);
        send(res, 200, await metrics.registry.metrics(), { 'content-type': metrics.registry.contentType });
        return;
      }
      if (url.pathname !== '/v1/findings') throw new HttpError(404, 'no such endpoint; use /v1/findings');
      if (req.method !== 'POST' && req.method !== 'GET') throw new HttpError(405, 'use POST to send findings, GET to query them', { allow: 'GET, POST' });
      const p = authenticate(req);
      who = p.agent;
      if (req.method === 'POST') await ingest(req, res, p);
      else await query(req, res, p, url.searchParams);
    } catch (err) {
      if (res.headersSent) {
        // A streamed answer failed midway: cut the connection so the client sees an incomplete page.
        logger.warn({ agent: who, error: (err as Error).message }, 'collector failed while streaming a query');
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendError(req, res, err, who);
      else if (err instanceof IngestError) sendError(req, res, new HttpError(err.status, err.message), who);
      else if (err instanceof StoreUnavailableError) {
        // Agents back off and resend: nothing of a batch answered 503 was acknowledged.
        counters.dbUnavailable++;
        sendError(req, res, new HttpError(503, `the database is unavailable (${err.message}); nothing was stored, retry later`, { 'retry-after': String(err.retryAfterSeconds) }), who);
      }
      else {
        logger.error({ err, agent: who }, 'collector failed to handle a request');
        sendError(req, res, new HttpError(500, 'internal error; the batch was not stored, send it again'), who);
      }
    }
  };

  const tlsOptions = {
    cert: readFileSync(config.tls.cert_file),
    key: readFileSync(config.tls.key_file),
    ...(config.tls.client_ca_file ? { ca: readFileSync(config.tls.client_ca_file), requestCert: true } : {}),
    // With a client CA, a certificate is asked for; whether it is required is the operator's choice.
    // Unverified certificates are never trusted: auth.ts reads the CN only when socket.authorized.
    rejectUnauthorized: config.tls.require_client_cert,
    minVersion: 'TLSv1.2' as const,
    // A socket that never completes the handshake is dropped after this (Node's default is 120 s).
    handshakeTimeout: config.limits.tls_handshake_timeout_ms,
  };
  server = createServer(tlsOptions, (req, res) => {
    void handle(req, res);
  });
  // Connections beyond this are closed at accept, before any TLS work.
  server.maxConnections = config.limits.max_connections;
  server.headersTimeout = 20_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 10_000;
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    rejectLog.report(`tls:${err.code ?? 'ERR'}`, 1, 'TLS handshake with a client failed (plain HTTP, unknown client certificate, or a scanner)', {
      code: err.code,
      remote: socket.remoteAddress,
    });
  });

  const listen = opts.listen ?? parseListenAddress(config.listen);
  if (!listen) throw new Error('collector listen address is "off"');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  logger.info({ listen: `${hostForUrl}:${addr.port}`, agents: config.agents.length, mtls: Boolean(config.tls.client_ca_file) }, 'collector listening (HTTPS only)');
  return {
    host: addr.address,
    port: addr.port,
    url: `https://${hostForUrl}:${addr.port}`,
    counters: () => ({ ...counters, rejected: { ...counters.rejected } }),
    countRetained: (n) => {
      counters.retained += n;
      metrics.retentionRemoved.inc(n);
    },
    close: async () => {
      clearInterval(linkTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rejectLog.flush('collector rejected requests (final count)');
      });
      // Links held back by the throttle are joined before the store closes (it is still open here).
      await joinTrails(linkThrottle.drain());
    },
  };
}
