/**
 * What the collector tests send and how they tear down: a batch of findings posted to
 * /v1/findings (its answer parsed when it is JSON) and the afterAll that closes clients, servers and
 * stores in order and removes the temp dir.
 */
import { rmSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';

export const ndjson = (fs: readonly object[]): string => fs.map((f) => JSON.stringify(f)).join('\n') + '\n';
export const bearer = (t: string): { authorization: string } => ({ authorization: `Bearer ${t}` });

export interface CollectorAnswer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  text: string;
  /** The body as JSON, or {} when it is not JSON. */
  json: Record<string, unknown>;
}

/** POSTs a body to `<baseUrl>/v1/findings` (NDJSON unless the headers say otherwise). */
export async function postFindings(baseUrl: string, body: Buffer | string, headers: Record<string, string>, dispatcher: Dispatcher): Promise<CollectorAnswer> {
  const res = await request(`${baseUrl}/v1/findings`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', ...headers }, dispatcher });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** Findings as one NDJSON batch with a bearer token; the status, with the body warned when it is not 200. */
export async function shipFindings(baseUrl: string, token: string, findings: readonly object[], dispatcher: Dispatcher): Promise<number> {
  const r = await postFindings(baseUrl, ndjson(findings), bearer(token), dispatcher);
  if (r.status !== 200) console.warn(`collector answered ${r.status}: ${r.text}`);
  return r.status;
}

interface Closable {
  close(): unknown;
}

/** Closes each part in order (a missing one is skipped), then removes `dir` and runs `after`. */
export async function closeAll(parts: readonly (Closable | null | undefined)[], dir?: string | null, after?: () => unknown): Promise<void> {
  for (const p of parts) await p?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await after?.();
}
