/**
 * Wire format against HTTPS stubs that check each request the way the products document it.
 * No real Splunk or Elasticsearch/OpenSearch is installable here: `apt-cache policy elasticsearch
 * opensearch splunk` finds no candidate in Debian, and npm carries only clients and mocks of them.
 *
 * Splunk HEC (docs: "Format events for HTTP Event Collector"): POST /services/collector/event,
 * `Authorization: Splunk <token>`, body = JSON event objects one after another, each with `event` and
 * optional time (epoch seconds, may carry ms), host, source, sourcetype, index, fields; answer
 * {"text":"Success","code":0}; gzip accepted with Content-Encoding: gzip.
 * Elasticsearch _bulk (docs: "Bulk API"): POST /_bulk, Content-Type application/x-ndjson, action line
 * then source line for create, final newline required; data streams accept only `create`; the answer
 * has `errors` and one item per action in order, with status 201 created or 409 for an existing _id.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { createShipper, type OutputConfig, type Shipper } from '../../../src/ship/shipper';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { captureLogger, json, makeFinding, makeFindings, MemoryOutbox, startStub, waitFor, type RecordedRequest, type Stub } from '../../unit/ship/support';

let pki: TestPki;
const open: { shippers: Shipper[]; stubs: Stub[] } = { shippers: [], stubs: [] };
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await Promise.all(open.shippers.splice(0).map((s) => s.stop()));
  await Promise.all(open.stubs.splice(0).map((s) => s.close()));
});

function run(outbox: MemoryOutbox, output: OutputConfig) {
  const { logger, lines } = captureLogger();
  const s = createShipper({ outputs: [output], outbox, host: 'node-a', agentId: 'agent-1', logger, backoff: { baseMs: 20, capMs: 300, fastRetries: 3 } });
  open.shippers.push(s);
  s.start();
  return { shipper: s, lines };
}

/** Splits concatenated JSON objects (whitespace between them allowed, as HEC accepts). */
function concatenatedObjects(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let inStr = false;
  let esc = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
    } else if (depth === 0 && !/\s/.test(c!)) throw new Error(`junk between events at ${i}`);
  }
  if (depth !== 0) throw new Error('unterminated event');
  return out;
}

const HEC_TOKEN = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';

/** Answers like HEC: checks auth, path, encoding and every event; returns HEC's JSON status. */
function hecReceiver(events: Record<string, unknown>[], problems: string[]) {
  return (req: RecordedRequest, res: ServerResponse) => {
    if (req.method !== 'POST' || req.path !== '/services/collector/event') return json(res, 404, { text: 'The requested URL was not found on this server.', code: 404 });
    if (req.headers.authorization === undefined) return json(res, 401, { text: 'Token is required', code: 2 });
    if (req.headers.authorization !== `Splunk ${HEC_TOKEN}`) return json(res, 403, { text: 'Invalid token', code: 4 });
    if (req.headers['content-encoding'] !== 'gzip') problems.push('not gzipped');
    let objs: unknown[];
    try {
      objs = concatenatedObjects(req.body);
    } catch {
      return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 });
    }
    if (objs.length === 0) return json(res, 400, { text: 'No data', code: 5 });
    const allowed = new Set(['time', 'host', 'source', 'sourcetype', 'index', 'event', 'fields']);
    for (const [i, o] of objs.entries()) {
      const ev = o as Record<string, unknown>;
      const extra = Object.keys(ev).filter((k) => !allowed.has(k));
      if (extra.length || typeof ev.event !== 'object' || ev.event === null) {
        return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': i });
      }
      if (typeof ev.time !== 'number' || !/^\d{10}(\.\d{1,3})?$/.test(String(ev.time))) problems.push(`time ${String(ev.time)} is not epoch seconds with ms`);
      events.push(ev);
    }
    json(res, 200, { text: 'Success', code: 0 });
  };
}

describe('Splunk HEC wire format', () => {
  const hec = (url: string, over: Partial<OutputConfig> = {}): OutputConfig => ({
    name: 'splunk',
    type: 'splunk-hec',
    url,
    token: HEC_TOKEN,
    index: 'security',
    tls: { ca_file: pki.caFile },
    flush_interval_ms: 20,
    ...over,
  });

  it('posts gzipped HEC events with Authorization: Splunk, sourcetype credwatch:finding and the index', async () => {
    const events: Record<string, unknown>[] = [];
    const problems: string[] = [];
    const stub = await startStub(pki.server, hecReceiver(events, problems));
    open.stubs.push(stub);
    const outbox = new MemoryOutbox();
    const fs = [makeFinding({ time: '2026-11-22T12:00:00.123Z' }), ...makeFindings(4)];
    outbox.add(fs);
    run(outbox, hec(stub.url));
    await waitFor(() => outbox.depth('splunk') === 0, 5000);
    expect(problems).toEqual([]);
    expect(stub.requests[0]!.headers['content-type']).toBe('application/json');
    expect(events.map((e) => (e.event as { id: string }).id)).toEqual(fs.map((f) => f.id));
    expect(events[0]).toEqual({ time: 1795348800.123, host: 'node-a', source: 'credwatch', sourcetype: 'credwatch:finding', index: 'security', fields: { finding_id: fs[0]!.id, revision: 1 }, event: fs[0] }); // fields: how a search keeps an incident's latest revision
  });

  it('an invalid token (HEC code 4) is one clear line; the events wait and go once the token is right', async () => {
    const events: Record<string, unknown>[] = [];
    const stub = await startStub(pki.server, hecReceiver(events, []));
    open.stubs.push(stub);
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(3));
    const { shipper, lines } = run(outbox, hec(stub.url, { token: 'ffffffff-0000-0000-0000-000000000000' }));
    await waitFor(() => stub.requests.length >= 3, 5000);
    const errs = lines.filter((l) => l.level >= 50);
    expect(errs).toHaveLength(1);
    expect(errs[0]!.msg).toContain('token rejected by splunk: Splunk HEC code 4 "Invalid token" (HTTP 403)');
    expect(outbox.depth('splunk')).toBe(3);
    await shipper.stop();
    run(outbox, hec(stub.url));
    await waitFor(() => outbox.depth('splunk') === 0, 5000);
    expect(events).toHaveLength(3);
  });

  it('a busy HEC (503, code 9) is retried with backoff', async () => {
    const events: Record<string, unknown>[] = [];
    let busy = 2;
    const ok = hecReceiver(events, []);
    const stub = await startStub(pki.server, (req, res) => (busy-- > 0 ? json(res, 503, { text: 'Server is busy', code: 9 }) : ok(req, res)));
    open.stubs.push(stub);
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(2));
    const { shipper } = run(outbox, hec(stub.url));
    await waitFor(() => outbox.depth('splunk') === 0, 5000);
    expect(events).toHaveLength(2);
    expect(shipper.stats().splunk!.failures).toBe(2);
  });
});

const API_KEY = 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==';

/** Answers like Elasticsearch _bulk into a data stream: create-only, 409 for an existing _id. */
function bulkReceiver(docs: Map<string, Record<string, unknown>>, problems: string[], failOnce = new Set<string>()) {
  return (req: RecordedRequest, res: ServerResponse) => {
    if (req.method !== 'POST' || req.path !== '/_bulk') return json(res, 404, { error: 'no handler' });
    if (req.headers.authorization !== `ApiKey ${API_KEY}`) return json(res, 401, { error: { type: 'security_exception', reason: 'unable to authenticate' }, status: 401 });
    if (req.headers['content-type'] !== 'application/x-ndjson') return json(res, 406, { error: 'Content-Type header is not supported', status: 406 });
    if (req.headers['content-encoding'] !== 'gzip') problems.push('not gzipped');
    if (!req.body.endsWith('\n')) return json(res, 400, { error: { type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' }, status: 400 });
    const lines = req.body.slice(0, -1).split('\n');
    const items: unknown[] = [];
    let errors = false;
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i]!) as Record<string, { _index?: string; _id?: string }>;
      const op = Object.keys(action)[0]!;
      const meta = action[op]!;
      const doc = JSON.parse(lines[i + 1] ?? 'null') as Record<string, unknown>;
      if (op !== 'create') {
        errors = true;
        items.push({ [op]: { _index: meta._index, status: 400, error: { type: 'illegal_argument_exception', reason: 'only write ops with an op_type of create are allowed in data streams' } } });
        continue;
      }
      if (!meta._index?.startsWith('logs-') || !meta._id) problems.push(`bad action line ${lines[i]}`);
      if (typeof doc['@timestamp'] !== 'string') problems.push('data stream document without @timestamp');
      if (failOnce.delete(meta._id!)) {
        errors = true;
        items.push({ create: { _index: meta._index, _id: meta._id, status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected execution' } } });
        continue;
      }
      if (docs.has(meta._id!)) {
        errors = true;
        items.push({ create: { _index: meta._index, _id: meta._id, status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${meta._id}]: version conflict, document already exists` } } });
        continue;
      }
      docs.set(meta._id!, doc);
      items.push({ create: { _index: `.ds-${meta._index}-2026.11.22-000001`, _id: meta._id, _version: 1, result: 'created', status: 201, _seq_no: docs.size - 1, _primary_term: 1 } });
    }
    json(res, 200, { took: 3, errors, items });
  };
}

describe('Elasticsearch _bulk wire format', () => {
  const es = (url: string, over: Partial<OutputConfig> = {}): OutputConfig => ({
    name: 'elastic',
    type: 'elasticsearch',
    url,
    token: API_KEY,
    tls: { ca_file: pki.caFile },
    flush_interval_ms: 20,
    ...over,
  });

  it('sends create actions with the finding id and ECS documents into the data stream', async () => {
    const docs = new Map<string, Record<string, unknown>>();
    const problems: string[] = [];
    const stub = await startStub(pki.server, bulkReceiver(docs, problems));
    open.stubs.push(stub);
    const outbox = new MemoryOutbox();
    const fs = makeFindings(6);
    outbox.add(fs);
    run(outbox, es(stub.url));
    await waitFor(() => outbox.depth('elastic') === 0, 5000);
    expect(problems).toEqual([]);
    expect([...docs.keys()]).toEqual(fs.map((f) => f.id));
    const d = docs.get(fs[0]!.id)! as Record<string, Record<string, unknown>>;
    expect(d.event).toMatchObject({ kind: 'alert', id: fs[0]!.id, module: 'credwatch' });
    expect(d.threat).toMatchObject({ framework: 'MITRE ATT&CK', technique: { id: ['T1552'] } });
  });

  it('counts 409 for an already stored id as delivered (a resend after a lost ack)', async () => {
    const docs = new Map<string, Record<string, unknown>>();
    const stub = await startStub(pki.server, bulkReceiver(docs, []));
    open.stubs.push(stub);
    const fs = makeFindings(4);
    const first = new MemoryOutbox();
    first.add(fs);
    const a = run(first, es(stub.url));
    await waitFor(() => first.depth('elastic') === 0, 5000);
    await a.shipper.stop();
    // Same findings, cursor never advanced: as if the agent died between the answer and the ack.
    const again = new MemoryOutbox();
    again.add(fs);
    const b = run(again, es(stub.url));
    await waitFor(() => again.depth('elastic') === 0, 5000);
    expect(docs.size).toBe(4);
    expect(b.shipper.stats().elastic).toMatchObject({ delivered: 4, failures: 0 });
  });

  it('with errors:true acks only up to the first failed item and resends from there', async () => {
    const docs = new Map<string, Record<string, unknown>>();
    const fs = makeFindings(5);
    const stub = await startStub(pki.server, bulkReceiver(docs, [], new Set([fs[2]!.id])));
    open.stubs.push(stub);
    const outbox = new MemoryOutbox();
    outbox.add(fs);
    const { shipper } = run(outbox, es(stub.url));
    await waitFor(() => outbox.depth('elastic') === 0, 5000);
    expect(outbox.acks.map((a) => a.seq)).toEqual([2, 5]);
    expect([...docs.keys()].sort()).toEqual(fs.map((f) => f.id).sort());
    expect(stub.requests).toHaveLength(2);
    expect(stub.requests[1]!.body.split('\n').filter(Boolean)).toHaveLength(6); // items 3..5 again
    expect(shipper.stats().elastic).toMatchObject({ delivered: 5, failures: 1 });
  });
});
