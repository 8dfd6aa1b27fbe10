/**
 * Fleet queries against a credwatch collector: `credwatch findings --collector URL` calls this.
 * The wire protocol is `GET /v1/findings?since=&until=&min_severity=&rule=&container=&host=&limit=&cursor=`
 * (since/until in epoch milliseconds) with a bearer token and/or a client certificate; the answer is
 * NDJSON, one Finding per line, newest first. When more rows match than one page holds, the answer
 * carries `X-Credwatch-Next-Cursor`; the client passes it back as `cursor` until it is absent, so a
 * query reads to the end (or to the caller's limit) and never stops at a silent cap.
 *
 * Pages are read as a stream, line by line: memory is one line at a time, not one answer. Each line
 * is checked against the ingest schema, because a collector's database may hold rows from before it
 * validated them: an invalid one is counted and reported, never crashes the reader.
 */
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Finding } from '../model/finding';
import type { FindingsQuery } from '../store/types';
import { pemOrFile } from '../ship/tls';
import { isFinding } from './finding-validator';

export interface CollectorClientTls {
  /** CA bundle to trust: a PEM string or a file path. Without it the system roots are used. */
  ca?: string;
  /** Client certificate (mTLS): a PEM string or a file path. */
  cert?: string;
  /** Client key (mTLS): a PEM string or a file path. */
  key?: string;
  /** Bearer token of an agent (or reader) known to the collector. */
  token?: string;
  /** Timeout per page while nothing arrives; default 30 s. */
  timeoutMs?: number;
  /** Rows asked for per page (the collector caps it at 10,000 and by bytes); default 1000. */
  pageRows?: number;
}

/** Builds the query string the collector understands. Exported for the server's tests. */
export function findingsQueryString(q: FindingsQuery, cursor?: string): string {
  const p = new URLSearchParams();
  if (q.sinceMs !== undefined) p.set('since', String(q.sinceMs));
  if (q.untilMs !== undefined) p.set('until', String(q.untilMs));
  if (q.minSeverity !== undefined) p.set('min_severity', q.minSeverity);
  if (q.rule !== undefined) p.set('rule', q.rule);
  if (q.container !== undefined) p.set('container', q.container);
  if (q.host !== undefined) p.set('host', q.host);
  if (q.limit !== undefined) p.set('limit', String(q.limit));
  if (cursor !== undefined) p.set('cursor', cursor);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export class CollectorQueryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface StreamResult {
  /** Findings handed to the callback. */
  delivered: number;
  /** Lines the collector sent that were not valid findings (not handed on). */
  invalid: number;
  pages: number;
}

const MAX_PAGE_ROWS = 10_000;

/**
 * Calls `onFinding` for every matching finding, newest first, following the cursor until the end or
 * until `q.limit` findings were delivered (`q.limit` undefined = all). Awaits `onFinding` (backpressure).
 */
export async function streamCollector(url: string, q: FindingsQuery, tls: CollectorClientTls, onFinding: (f: Finding) => void | Promise<void>): Promise<StreamResult> {
  const base = new URL(url);
  if (base.protocol !== 'https:') throw new CollectorQueryError(`collector URL must be https:// (got ${base.protocol})`);
  const options: RequestOptions = {
    rejectUnauthorized: true,
    ...(tls.ca !== undefined ? { ca: pemOrFile(tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: pemOrFile(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: pemOrFile(tls.key) } : {}),
  };
  const headers: Record<string, string> = { accept: 'application/x-ndjson' };
  if (tls.token !== undefined) headers.authorization = `Bearer ${tls.token}`;
  const result: StreamResult = { delivered: 0, invalid: 0, pages: 0 };
  const pageRows = Math.min(MAX_PAGE_ROWS, tls.pageRows ?? 1000);
  let cursor: string | undefined;
  for (;;) {
    const want = q.limit === undefined ? pageRows : Math.min(pageRows, q.limit - result.delivered);
    if (want <= 0) return result;
    const target = new URL(`/v1/findings${findingsQueryString({ ...q, limit: want }, cursor)}`, base);
    const res = await get(target, { ...options, headers }, tls.timeoutMs ?? 30_000);
    result.pages++;
    if (res.statusCode !== 200) throw new CollectorQueryError(`collector answered ${res.statusCode}: ${await errorReason(res)}`, res.statusCode);
    const next = res.headers['x-credwatch-next-cursor'];
    for await (const line of lines(res)) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        result.invalid++;
        continue;
      }
      if (!isFinding(value)) {
        result.invalid++;
        continue;
      }
      await onFinding(value as Finding);
      result.delivered++;
    }
    if (!res.complete) throw new CollectorQueryError('the collector closed the connection before the end of a page');
    if (typeof next !== 'string' || next === '') return result;
    cursor = next;
  }
}

/** Collects a whole query into memory (tests, small queries). */
export async function queryCollector(url: string, q: FindingsQuery, tls: CollectorClientTls = {}): Promise<Finding[]> {
  const out: Finding[] = [];
  await streamCollector(url, q, tls, (f) => {
    out.push(f);
  });
  return out;
}

function get(url: URL, options: RequestOptions, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...options, method: 'GET' }, (res) => {
      res.setTimeout(timeoutMs, () => res.destroy(new CollectorQueryError(`no data from the collector for ${timeoutMs} ms`)));
      resolve(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new CollectorQueryError(`no answer from the collector in ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof CollectorQueryError ? err : new CollectorQueryError(err.message)));
    req.end();
  });
}

async function errorReason(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) {
    if (text.length < 4096) text += (chunk as Buffer).toString('utf8');
  }
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    /* not JSON: keep the text */
  }
  return text.slice(0, 300);
}

/** Splits a byte stream into UTF-8 lines without holding more than the current line. */
async function* lines(stream: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  for await (const chunk of stream) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      yield Buffer.concat(pending).toString('utf8');
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) yield Buffer.concat(pending).toString('utf8');
}
