/**
 * Turns a request body into findings, all or nothing: one bad line rejects the whole batch with the
 * line number, and nothing of it is stored. The agent keeps the batch in its outbox and a fixed agent
 * resends it, so partial storage would only create gaps in the order per agent.
 */
import { gunzip as gunzipCb, inflate as inflateCb } from 'node:zlib';
import { promisify } from 'node:util';
import { encodeFinding, type EncodedFinding, type IngestedFinding } from './finding-schema';
import { findingProblem } from './finding-validator';

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

/**
 * Finding times the collector will store. A time far in the future would top every newest-first query
 * for ever (and an agent with a broken clock would do it by accident), so such findings are refused,
 * not clamped: the batch is answered 400 naming the line, and the agent's operator fixes the clock.
 * Refusing keeps the stored time what the agent saw; clamping would silently rewrite evidence.
 */
export interface TimeWindow {
  nowMs: number;
  /** How far ahead of the collector's clock a finding's time may be. */
  maxFutureMs: number;
  /** How far behind; older findings would be removed by retention at once. */
  maxPastMs: number;
}

function timeProblem(f: IngestedFinding, w: TimeWindow): string | null {
  const t = Date.parse(f.time);
  if (t > w.nowMs + w.maxFutureMs) return `field "time" is more than ${Math.round(w.maxFutureMs / 1000)} s ahead of the collector's clock (check the agent's clock)`;
  if (t < w.nowMs - w.maxPastMs) return `field "time" is older than the collector's retention (${Math.round(w.maxPastMs / 86_400_000)} days)`;
  return null;
}

/** A finding of the batch and the line of the body it came from (blank lines count), for later refusals. */
export interface BatchFinding extends EncodedFinding {
  line: number;
}

export function parseNdjsonFindings(body: Buffer, window?: TimeWindow): BatchFinding[] {
  const text = body.toString('utf8');
  const out: BatchFinding[] = [];
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
      // SyntaxError for bad JSON; RangeError ("Maximum call stack size exceeded") for absurd nesting.
      const why = err instanceof RangeError ? 'nested too deeply' : (err as Error).message.slice(0, 120);
      throw new IngestError(400, `line ${lineNo}: not valid JSON (${why}); nothing from this batch was stored`);
    }
    // The compiled schema has no recursion: a deeply nested value fails at its first wrong level.
    let problem = findingProblem(value);
    const finding = value as IngestedFinding;
    if (problem === null && window) problem = timeProblem(finding, window);
    if (problem !== null) throw new IngestError(400, `line ${lineNo}: ${problem}; nothing from this batch was stored`);
    out.push({ ...encodeFinding(finding), line: lineNo });
  }
  if (out.length === 0) throw new IngestError(400, 'body holds no findings');
  return out;
}
