/**
 * Splunk HTTP Event Collector, JSON event endpoint: `POST /services/collector/event` with
 * `Authorization: Splunk <token>`; the body is event objects one after another (Splunk accepts them
 * concatenated; we put a newline between them), each `{time, host, source, sourcetype, index?, event}`
 * with `time` in epoch seconds carrying milliseconds. HEC answers `{"text":"Success","code":0}`; errors
 * carry a code: 1 token disabled, 2 token required, 3 invalid authorization, 4 invalid token, 5 no data,
 * 6 invalid data format, 7 incorrect index, 8 internal error, 9 server busy.
 *
 * An incident is sent again with a higher `revision` as it grows; HEC cannot replace an event, so every
 * revision is an event, and the indexed `fields` `finding_id` and `revision` let a search keep the
 * latest (`| dedup finding_id sortby -revision`, docs/shipping.md).
 */
import type { Finding } from '../../model/finding';
import type { DeliveryOutcome, EncodeContext, EncodedRequest, OutputFormat } from './format';
import { excerpt, outcomeFromStatus, retryAfterMs } from './format';
import type { HttpResponse } from '../transport';

export const HEC_PATH = '/services/collector/event';
export const DEFAULT_SOURCETYPE = 'credwatch:finding';

/** Epoch seconds with millisecond precision, as HEC's `time` wants it. */
export function hecTime(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? Math.round(Date.now()) / 1000 : ms / 1000;
}

export function encodeHec(findings: readonly Finding[], ctx: EncodeContext): string {
  let out = '';
  for (const f of findings) {
    const ev: Record<string, unknown> = {
      time: hecTime(f.time),
      host: f.host || ctx.host,
      source: 'credwatch',
      sourcetype: ctx.sourcetype,
    };
    if (ctx.index !== undefined) ev.index = ctx.index;
    ev.fields = { finding_id: f.id, revision: f.revision ?? 1 };
    ev.event = f;
    out += `${JSON.stringify(ev)}\n`;
  }
  return out;
}

function hecCode(body: string): { code?: number; text?: string } {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; text?: unknown };
    return {
      ...(typeof parsed.code === 'number' ? { code: parsed.code } : {}),
      ...(typeof parsed.text === 'string' ? { text: parsed.text } : {}),
    };
  } catch {
    return {};
  }
}

export const splunkHecFormat: OutputFormat = {
  encode(findings: readonly Finding[], ctx: EncodeContext): EncodedRequest {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (ctx.token !== undefined) headers.authorization = `Splunk ${ctx.token}`;
    return { path: HEC_PATH, headers, body: encodeHec(findings, ctx) };
  },
  interpret(res: HttpResponse): DeliveryOutcome {
    const { code, text } = hecCode(res.body);
    const what = `Splunk HEC${code !== undefined ? ` code ${code}` : ''}${text ? ` "${text}"` : ''}`;
    // The JSON code is more precise than the status: trust it first.
    if (code !== undefined && code !== 0) {
      if (code >= 1 && code <= 4) return { kind: 'auth', message: `${what} (HTTP ${res.status})` };
      if (code === 8 || code === 9) {
        const ra = retryAfterMs(res);
        return { kind: 'transient', message: `${what} (HTTP ${res.status})`, ...(ra !== undefined ? { retryAfterMs: ra } : {}) };
      }
      if (res.status === 413) return { kind: 'too-large', message: `${what} (HTTP 413)` };
      return { kind: 'rejected', message: `${what} (HTTP ${res.status})` };
    }
    const byStatus = outcomeFromStatus(res, 'Splunk HEC');
    if (byStatus) return byStatus;
    if (code === 0) return { kind: 'ok' };
    // A 2xx without HEC's JSON answer is probably not HEC (a proxy login page?): do not count it delivered.
    return { kind: 'rejected', message: `Splunk HEC answered HTTP ${res.status} without a HEC status: ${excerpt(res.body)}` };
  },
};
