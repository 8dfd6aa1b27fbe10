/**
 * Receiver for the API server's audit webhook backend (--audit-webhook-config-file): the apiserver
 * POSTs an audit.k8s.io EventList per batch. The receiver authenticates every request (bearer token
 * and/or a client certificate signed by a configured CA), caps the body size, and hands each event to
 * the same callback as the file follower.
 *
 * Plain HTTP is accepted only on a loopback address (tests, a local sidecar); anything else needs TLS,
 * and some form of authentication is always required.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseKubeAuditLine, type KubeAuditEvent } from '../kube/event';
import type { KubeBadLine, KubeSourceLogger } from './kube-audit';
import { RateLimitedLog } from '../log/rate-limit';

export interface KubeWebhookOptions {
  host: string;
  port: number;
  /** URL path the apiserver posts to (default "/"). */
  path?: string;
  tls?: {
    cert: string | Buffer;
    key: string | Buffer;
    /** CA for client certificates; with `requireClientCert`, only clients it signed get in. */
    ca?: string | Buffer;
    requireClientCert?: boolean;
  };
  /** Expected `Authorization: Bearer <token>` (the apiserver's kubeconfig `token:`). */
  bearerToken?: string;
  /** Largest accepted body (default 32 MiB: the apiserver's default batch is 400 events). */
  maxBodyBytes?: number;
  onEvent: (ev: KubeAuditEvent) => void;
  onBadLine?: (err: KubeBadLine) => void;
  logger?: KubeSourceLogger;
  /** Clock of the log's rate limit (tests). */
  now?: () => number;
}

export interface KubeWebhookStats {
  requests: number;
  events: number;
  /** Bodies or EventList items that could not be used. */
  badItems: number;
  unauthorized: number;
  tooLarge: number;
  handlerErrors: number;
}

const DEFAULT_MAX_BODY = 32 * 1024 * 1024;
const WARN_INTERVAL_MS = 10_000;

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class KubeAuditWebhook {
  readonly stats: KubeWebhookStats = { requests: 0, events: 0, badItems: 0, unauthorized: 0, tooLarge: 0, handlerErrors: 0 };
  private server: http.Server | https.Server | null = null;
  private readonly expectedToken: Buffer | null;
  /** Whoever can reach the port can send bad payloads as fast as they like: at most a line per cause per interval. */
  private readonly warnings: RateLimitedLog | null;

  constructor(private readonly opts: KubeWebhookOptions) {
    this.warnings = opts.logger ? new RateLimitedLog(opts.logger, WARN_INTERVAL_MS, opts.now) : null;
    const mtls = opts.tls?.requireClientCert === true && opts.tls.ca !== undefined;
    if (opts.bearerToken === undefined && !mtls) {
      throw new Error('kube audit webhook: configure a bearer token or client certificates (tls.ca + requireClientCert)');
    }
    if (opts.tls === undefined && !isLoopback(opts.host)) {
      throw new Error(`kube audit webhook: plain HTTP is only allowed on loopback, not ${opts.host}; configure tls`);
    }
    if (opts.bearerToken !== undefined && opts.bearerToken.length < 16) {
      throw new Error('kube audit webhook: bearer token must be at least 16 characters');
    }
    this.expectedToken = opts.bearerToken === undefined ? null : digest(opts.bearerToken);
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  start(): Promise<number> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const t = this.opts.tls;
    this.server = t
      ? https.createServer({ cert: t.cert, key: t.key, ca: t.ca, requestCert: t.requireClientCert === true, rejectUnauthorized: t.requireClientCert === true }, handler)
      : http.createServer(handler);
    this.server.requestTimeout = 60_000;
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  stop(): Promise<void> {
    this.warnings?.flush('kube audit webhook warnings held back (final count)');
    const s = this.server;
    this.server = null;
    if (s === null) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private authorized(req: http.IncomingMessage): boolean {
    const t = this.opts.tls;
    if (t?.requireClientCert === true && !(req.socket as TLSSocket).authorized) return false;
    if (this.expectedToken === null) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    // Compare digests: constant time and independent of the presented token's length.
    return m !== null && timingSafeEqual(digest(m[1]!), this.expectedToken);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.stats.requests++;
    const reply = (code: number, msg: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(msg);
    };
    if (!this.authorized(req)) {
      this.stats.unauthorized++;
      req.resume();
      reply(401, 'unauthorized\n');
      return;
    }
    const urlPath = (req.url ?? '/').split('?')[0];
    if (urlPath !== (this.opts.path ?? '/')) {
      req.resume();
      reply(404, 'not found\n');
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      reply(405, 'POST only\n');
      return;
    }
    const max = this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > max) {
      this.stats.tooLarge++;
      req.resume();
      reply(413, 'body too large\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      if (aborted) return;
      size += c.length;
      if (size > max) {
        aborted = true;
        this.stats.tooLarge++;
        chunks.length = 0;
        reply(413, 'body too large\n');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (aborted) return;
      const r = parseKubeAuditLine(Buffer.concat(chunks).toString('utf8'));
      if (!r.ok) {
        this.bad(r.error);
        reply(400, `bad audit payload: ${r.error.slice(0, 200)}\n`);
        return;
      }
      for (const e of r.itemErrors) this.bad(e);
      for (const ev of r.events) {
        this.stats.events++;
        try {
          this.opts.onEvent(ev);
        } catch (e) {
          this.stats.handlerErrors++;
          this.warnings?.report('handler-failed', 1, 'kube audit event handler failed', { auditID: ev.auditID, err: (e as Error).message.slice(0, 300) });
        }
      }
      reply(200, 'ok\n');
    });
  }

  private bad(error: string): void {
    this.stats.badItems++;
    this.opts.onBadLine?.({ path: 'webhook', endOffset: 0, error });
    this.warnings?.report('bad-payload', 1, 'bad kube audit webhook payload', { error: error.slice(0, 300), badItems: this.stats.badItems });
  }
}
