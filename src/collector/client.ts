/**
 * Fleet queries against a credwatch collector: `credwatch findings --collector URL` calls this.
 * The wire protocol is `GET /v1/findings?since=&until=&min_severity=&rule=&container=&host=&limit=`
 * (since/until in epoch milliseconds) with a bearer token and/or a client certificate; the answer is
 * NDJSON, one Finding per line, newest first (as `credwatch findings --db` lists them).
 */
import type { Finding } from '../detect/finding';
import type { FindingsQuery } from '../store/types';
import { pemOrFile } from '../ship/tls';
import { Transport } from '../ship/transport';

export interface CollectorClientTls {
  /** CA bundle to trust: a PEM string or a file path. Without it the system roots are used. */
  ca?: string;
  /** Client certificate (mTLS): a PEM string or a file path. */
  cert?: string;
  /** Client key (mTLS): a PEM string or a file path. */
  key?: string;
  /** Bearer token of an agent (or reader) known to the collector. */
  token?: string;
  /** Overall timeout; default 30 s. */
  timeoutMs?: number;
}

/** Builds the query string the collector understands. Exported for the server's tests. */
export function findingsQueryString(q: FindingsQuery): string {
  const p = new URLSearchParams();
  if (q.sinceMs !== undefined) p.set('since', String(q.sinceMs));
  if (q.untilMs !== undefined) p.set('until', String(q.untilMs));
  if (q.minSeverity !== undefined) p.set('min_severity', q.minSeverity);
  if (q.rule !== undefined) p.set('rule', q.rule);
  if (q.container !== undefined) p.set('container', q.container);
  if (q.host !== undefined) p.set('host', q.host);
  if (q.limit !== undefined) p.set('limit', String(q.limit));
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

export async function queryCollector(url: string, q: FindingsQuery, tls: CollectorClientTls = {}): Promise<Finding[]> {
  const base = new URL(url);
  if (base.protocol !== 'https:') throw new CollectorQueryError(`collector URL must be https:// (got ${base.protocol})`);
  const target = new URL(`/v1/findings${findingsQueryString(q)}`, base).toString();
  const material = {
    rejectUnauthorized: true,
    ...(tls.ca !== undefined ? { ca: pemOrFile(tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: pemOrFile(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: pemOrFile(tls.key) } : {}),
  };
  const transport = new Transport(material, tls.timeoutMs ?? 30_000);
  try {
    const headers: Record<string, string> = { accept: 'application/x-ndjson' };
    if (tls.token !== undefined) headers.authorization = `Bearer ${tls.token}`;
    const res = await transport.send('GET', target, headers);
    if (res.status !== 200) {
      let reason = res.body.slice(0, 300);
      try {
        const parsed = JSON.parse(res.body) as { error?: unknown };
        if (typeof parsed.error === 'string') reason = parsed.error;
      } catch {
        /* not JSON: keep the text */
      }
      throw new CollectorQueryError(`collector answered ${res.status}: ${reason}`, res.status);
    }
    const out: Finding[] = [];
    for (const line of res.body.split('\n')) {
      if (line.trim() === '') continue;
      out.push(JSON.parse(line) as Finding);
    }
    return out;
  } finally {
    await transport.close();
  }
}
