/**
 * credwatch's own collector protocol: `POST /v1/findings`, one Finding JSON per line, the agent named in
 * `X-Credwatch-Agent`, a bearer token (and/or a client certificate). The collector answers
 * `{"accepted": n, "duplicates": m}`; it stores a batch all-or-nothing, so any 2xx means all delivered.
 */
import type { Finding } from '../../model/finding';
import type { EncodeContext, EncodedRequest, OutputFormat } from './format';
import { outcomeFromStatus } from './format';
import type { HttpResponse } from '../transport';

export const COLLECTOR_PATH = '/v1/findings';

export function encodeNdjson(findings: readonly Finding[]): string {
  let out = '';
  for (const f of findings) out += `${JSON.stringify(f)}\n`;
  return out;
}

export const ndjsonFormat: OutputFormat = {
  encode(findings: readonly Finding[], ctx: EncodeContext): EncodedRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/x-ndjson',
      'x-credwatch-agent': ctx.agentId,
    };
    if (ctx.token !== undefined) headers.authorization = `Bearer ${ctx.token}`;
    return { path: COLLECTOR_PATH, headers, body: encodeNdjson(findings) };
  },
  interpret(res: HttpResponse) {
    return outcomeFromStatus(res, 'collector') ?? { kind: 'ok' };
  },
};
