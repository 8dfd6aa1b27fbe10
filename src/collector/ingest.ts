/**
 * Turns a request body into findings, all or nothing: one bad line rejects the whole batch with the
 * line number, and nothing of it is stored. The agent keeps the batch in its outbox and a fixed agent
 * resends it, so partial storage would only create gaps in the order per agent.
 */
import { gunzip as gunzipCb, inflate as inflateCb } from 'node:zlib';
import { promisify } from 'node:util';
import type { Finding } from '../detect/finding';
import { SEVERITIES } from '../detect/finding';

const gunzip = promisify(gunzipCb);
const inflate = promisify(inflateCb);

export class IngestError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/** Decompresses with the same size limit as the raw body (a 1 MB gzip bomb must not become 1 GB). */
export async function decodeBody(raw: Buffer, encoding: string | undefined, maxBytes: number): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return raw;
  if (enc !== 'gzip' && enc !== 'deflate') throw new IngestError(415, `unsupported Content-Encoding ${JSON.stringify(enc.slice(0, 40))}: use gzip or none`);
  try {
    return enc === 'gzip' ? await gunzip(raw, { maxOutputLength: maxBytes }) : await inflate(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new IngestError(413, `decompressed body is over the limit of ${maxBytes} bytes`);
    throw new IngestError(400, `body is not valid ${enc}: ${(err as Error).message}`);
  }
}

const SEVERITY_SET = new Set<string>(SEVERITIES);

/** Checks what the collector relies on (id, time, severity...); the rest is kept as the agent sent it. */
function checkFinding(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const f = v as Record<string, unknown>;
  if (typeof f.id !== 'string' || f.id.length === 0 || f.id.length > 200) return 'field "id" must be a non-empty string';
  if (typeof f.rule !== 'string' || f.rule.length === 0) return 'field "rule" must be a non-empty string';
  if (typeof f.severity !== 'string' || !SEVERITY_SET.has(f.severity)) return `field "severity" must be one of ${SEVERITIES.join(', ')}`;
  if (typeof f.time !== 'string' || Number.isNaN(Date.parse(f.time))) return 'field "time" must be an ISO 8601 time';
  if (typeof f.host !== 'string' || f.host.length === 0) return 'field "host" must be a non-empty string';
  if (typeof f.title !== 'string') return 'field "title" must be a string';
  if (f.source !== 'audit' && f.source !== 'kube-audit') return 'field "source" must be "audit" or "kube-audit"';
  return null;
}

export function parseNdjsonFindings(body: Buffer): Finding[] {
  const text = body.toString('utf8');
  const out: Finding[] = [];
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNo++;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new IngestError(400, `line ${lineNo}: not valid JSON (${(err as Error).message.slice(0, 120)}); nothing from this batch was stored`);
    }
    const problem = checkFinding(value);
    if (problem) throw new IngestError(400, `line ${lineNo}: ${problem}; nothing from this batch was stored`);
    out.push(value as Finding);
  }
  if (out.length === 0) throw new IngestError(400, 'body holds no findings');
  return out;
}
