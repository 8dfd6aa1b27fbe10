/**
 * What every output format provides: how to turn a batch into one HTTP request, and how to read the
 * receiver's answer into a delivery outcome the shipper acts on. Formats do no I/O.
 */
import type { Finding } from '../../model/finding';
import type { HttpResponse } from '../transport';

export interface EncodeContext {
  agentId: string;
  host: string;
  token?: string | undefined;
  index?: string | undefined;
  sourcetype: string;
}

export interface EncodedRequest {
  /** Path (with query) appended to the output's base URL. */
  path: string;
  headers: Record<string, string>;
  /** Uncompressed body; the shipper gzips it when the output asks for it. */
  body: string;
}

/**
 * - ok: every finding of the batch is stored (or was already: duplicates count as delivered).
 * - partial: the first `delivered` findings are stored; the rest must be sent again.
 * - auth: the receiver refused our credentials; waiting is all we can do.
 * - too-large: the receiver refused the body size; split the batch.
 * - rejected: the receiver refused the content (a 4xx that resending will not fix); keep it, retry slowly.
 * - transient: 5xx, 429, busy; back off and retry.
 */
export type DeliveryOutcome =
  | { kind: 'ok' }
  | { kind: 'partial'; delivered: number; message: string }
  | { kind: 'auth'; message: string }
  | { kind: 'too-large'; message: string }
  | { kind: 'rejected'; message: string }
  | { kind: 'transient'; message: string; retryAfterMs?: number };

export interface OutputFormat {
  encode(findings: readonly Finding[], ctx: EncodeContext): EncodedRequest;
  interpret(res: HttpResponse, findings: readonly Finding[]): DeliveryOutcome;
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(res: HttpResponse, now = Date.now()): number | undefined {
  const raw = res.headers['retry-after'];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Short, single-line excerpt of a response body for a log line (bodies may be HTML error pages). */
export function excerpt(body: string, max = 200): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** The status-code part shared by all formats; returns null for 2xx so the format reads the body. */
export function outcomeFromStatus(res: HttpResponse, receiver: string): DeliveryOutcome | null {
  const s = res.status;
  if (s >= 200 && s < 300) return null;
  const detail = excerpt(res.body);
  if (s === 401 || s === 403) return { kind: 'auth', message: `${receiver} refused our credentials (HTTP ${s}${detail ? `: ${detail}` : ''})` };
  if (s === 413) return { kind: 'too-large', message: `${receiver} refused the body size (HTTP 413)` };
  if (s === 429 || s >= 500 || s === 408) {
    const ra = retryAfterMs(res);
    return { kind: 'transient', message: `${receiver} answered HTTP ${s}${detail ? `: ${detail}` : ''}`, ...(ra !== undefined ? { retryAfterMs: ra } : {}) };
  }
  return { kind: 'rejected', message: `${receiver} rejected the batch (HTTP ${s}${detail ? `: ${detail}` : ''})` };
}
