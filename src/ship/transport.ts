/**
 * One HTTPS connection pool per receiver, with TLS material, a whole-request deadline and abort.
 *
 * Why undici and not node:https: undici's Agent keeps a keep-alive pool per origin with the TLS options
 * attached once (no per-request option plumbing), has separate connect/headers/body timeouts so a hung
 * receiver cannot hold a batch forever, and takes an AbortSignal so stop() can abandon an in-flight
 * request cleanly. It is already a dependency, and its errors keep the underlying TLS `code`.
 */
import type * as Undici from 'undici';
import type { TlsMaterial } from './tls';

// undici adds ~19 MB of RSS once loaded, and only an agent with `ship:` outputs (or the collector
// client) makes a Transport: load it on first use, so every other `credwatch run` never pays for it.
let undiciModule: typeof Undici | undefined;
function undici(): typeof Undici {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (undiciModule ??= require('undici') as typeof Undici);
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export class RequestTimeout extends Error {
  readonly code = 'CREDWATCH_REQUEST_TIMEOUT';
}

export class Transport {
  private readonly agent: Undici.Agent;

  constructor(
    tls: TlsMaterial,
    private readonly timeoutMs: number,
  ) {
    const connect: Record<string, unknown> = { rejectUnauthorized: tls.rejectUnauthorized };
    if (tls.ca !== undefined) connect.ca = tls.ca;
    if (tls.cert !== undefined) connect.cert = tls.cert;
    if (tls.key !== undefined) connect.key = tls.key;
    if (tls.servername !== undefined) connect.servername = tls.servername;
    this.agent = new (undici().Agent)({
      connect,
      connectTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 30_000,
      connections: 2,
    });
  }

  /** Sends one request; rejects on network/TLS errors or when the deadline passes (RequestTimeout). */
  async send(
    method: 'GET' | 'POST',
    url: string,
    headers: Record<string, string>,
    body?: Buffer,
    stop?: AbortSignal,
  ): Promise<HttpResponse> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const signal = stop ? AbortSignal.any([deadline, stop]) : deadline;
    try {
      const res = await undici().request(url, {
        method,
        headers,
        body: body ?? null,
        dispatcher: this.agent,
        signal,
      });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, body: text };
    } catch (err) {
      if (deadline.aborted && !stop?.aborted) throw new RequestTimeout(`no complete answer within ${this.timeoutMs} ms`, { cause: err });
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
