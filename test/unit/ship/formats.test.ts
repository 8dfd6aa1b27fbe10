import { describe, expect, it } from 'vitest';
import { encodeHec, hecTime, splunkHecFormat } from '../../../src/ship/formats/splunk-hec';
import { DEFAULT_ELASTIC_INDEX, elasticBulkFormat, interpretBulk, toEcs } from '../../../src/ship/formats/elastic-bulk';
import { ndjsonFormat } from '../../../src/ship/formats/ndjson';
import type { HttpResponse } from '../../../src/ship/transport';
import { makeFinding } from './support';

const ctx = { agentId: 'agent-1', host: 'node-a', token: 'tok-123', sourcetype: 'credwatch:finding' };
const res = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('collector NDJSON', () => {
  it('sends one finding per line with the agent header and a bearer token', () => {
    const fs = [makeFinding(), makeFinding()];
    const req = ndjsonFormat.encode(fs, ctx);
    expect(req.path).toBe('/v1/findings');
    expect(req.headers).toMatchObject({ authorization: 'Bearer tok-123', 'x-credwatch-agent': 'agent-1', 'content-type': 'application/x-ndjson' });
    expect(req.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string }).map((f) => f.id)).toEqual(fs.map((f) => f.id));
  });
  it('reads 401 as auth, 413 as too large, 503 as transient with Retry-After', () => {
    expect(ndjsonFormat.interpret(res(401, { error: 'unknown token' }), []).kind).toBe('auth');
    expect(ndjsonFormat.interpret(res(413, {}), []).kind).toBe('too-large');
    expect(ndjsonFormat.interpret(res(503, 'busy', { 'retry-after': '7' }), [])).toMatchObject({ kind: 'transient', retryAfterMs: 7000 });
    expect(ndjsonFormat.interpret(res(400, { error: 'line 2: bad' }), []).kind).toBe('rejected');
    expect(ndjsonFormat.interpret(res(200, { accepted: 1, duplicates: 0 }), []).kind).toBe('ok');
  });
});

describe('Splunk HEC', () => {
  it('wraps each finding in a HEC event envelope with epoch seconds carrying milliseconds', () => {
    const f = makeFinding({ time: '2026-11-22T12:00:00.123Z' });
    const lines = encodeHec([f], { ...ctx, index: 'security' }).trim().split('\n');
    expect(lines).toHaveLength(1);
    const ev = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(ev).toEqual({ time: 1795348800.123, host: 'node-a', source: 'credwatch', sourcetype: 'credwatch:finding', index: 'security', event: f });
    expect(hecTime('2026-11-22T12:00:00.123Z')).toBe(1795348800.123);
  });
  it('omits index when none is configured and uses Authorization: Splunk', () => {
    const req = splunkHecFormat.encode([makeFinding()], ctx);
    expect(req.path).toBe('/services/collector/event');
    expect(req.headers.authorization).toBe('Splunk tok-123');
    expect(JSON.parse(req.body.trim()) as object).not.toHaveProperty('index');
  });
  it('maps HEC answer codes', () => {
    expect(splunkHecFormat.interpret(res(200, { text: 'Success', code: 0 }), []).kind).toBe('ok');
    expect(splunkHecFormat.interpret(res(403, { text: 'Invalid token', code: 4 }), []).kind).toBe('auth');
    expect(splunkHecFormat.interpret(res(401, { text: 'Token is required', code: 2 }), []).kind).toBe('auth');
    expect(splunkHecFormat.interpret(res(400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 }), []).kind).toBe('rejected');
    expect(splunkHecFormat.interpret(res(503, { text: 'Server is busy', code: 9 }), []).kind).toBe('transient');
    expect(splunkHecFormat.interpret(res(200, '<html>login</html>'), []).kind).toBe('rejected');
  });
});

describe('Elasticsearch bulk', () => {
  it('writes a create action with the finding id, then the ECS document', () => {
    const f = makeFinding();
    const req = elasticBulkFormat.encode([f], { ...ctx, index: undefined });
    expect(req.path).toBe('/_bulk');
    expect(req.headers['content-type']).toBe('application/x-ndjson');
    expect(req.headers.authorization).toBe('ApiKey tok-123');
    const lines = req.body.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual({ create: { _index: DEFAULT_ELASTIC_INDEX, _id: f.id } });
  });

  it('maps an audit finding to ECS field names', () => {
    const f = makeFinding({ severity: 'critical', score: 91 });
    const d = toEcs(f) as Record<string, Record<string, unknown>>;
    expect(d['@timestamp']).toBe(f.time);
    expect(d.event).toMatchObject({ kind: 'alert', id: f.id, severity: 5, risk_score: 91, module: 'credwatch', dataset: 'credwatch.finding' });
    expect(d.event!.category).toContain('intrusion_detection');
    expect(d.rule).toMatchObject({ id: f.rule, name: f.title, description: f.description });
    expect(d.threat).toMatchObject({
      framework: 'MITRE ATT&CK',
      technique: { id: ['T1552'], name: ['Unsecured Credentials'], subtechnique: { id: ['T1552.007'], name: ['Container API'] } },
      tactic: { id: ['TA0006'], name: ['Credential Access'] },
    });
    expect(d.process).toMatchObject({
      pid: 4242,
      executable: '/usr/bin/curl',
      name: 'curl',
      args: f.process!.argv,
      command_line: f.process!.argv!.join(' '),
      working_directory: '/tmp',
      interactive: true,
      parent: { pid: 4200, executable: '/bin/sh' },
      user: { id: '0', name: 'root' },
    });
    expect(d.container).toEqual({ id: 'a'.repeat(64), runtime: 'docker' });
    expect(d.host).toEqual({ name: 'node-a', hostname: 'node-a' });
    expect(d.credwatch).toMatchObject({ severity: 'critical', confidence: 'high', covers: ['H1'], evidence: f.evidence });
    expect(d).not.toHaveProperty('orchestrator');
  });

  it('maps a Kubernetes audit finding to orchestrator, user, source and user_agent', () => {
    const f = makeFinding({
      source: 'kube-audit',
      process: null,
      container: null,
      kube: {
        user: 'system:serviceaccount:default:web',
        groups: ['system:serviceaccounts'],
        impersonated_user: null,
        verb: 'list',
        resource: 'secrets',
        subresource: null,
        namespace: 'kube-system',
        name: null,
        source_ips: ['10.0.0.7'],
        user_agent: 'kubectl/v1.30.0',
        response_code: 200,
        audit_id: 'abc-123',
      },
    });
    const d = toEcs(f) as Record<string, Record<string, unknown>>;
    expect(d.orchestrator).toEqual({ type: 'kubernetes', namespace: 'kube-system', resource: { type: 'secrets' } });
    expect(d.user).toEqual({ name: 'system:serviceaccount:default:web' });
    expect(d.source).toEqual({ ip: '10.0.0.7' });
    expect(d.user_agent).toEqual({ original: 'kubectl/v1.30.0' });
    expect(d.http).toEqual({ response: { status_code: 200 } });
    expect(d.event).toMatchObject({ action: 'list', provider: 'kube-audit' });
    expect(d.credwatch).toMatchObject({ kube: { groups: ['system:serviceaccounts'], audit_id: 'abc-123' } });
    expect(d).not.toHaveProperty('process');
  });

  it('reads per-item results: 409 counts as stored, the first failure bounds what is acked', () => {
    const item = (status: number, type?: string) => ({ create: { _index: 'x', _id: 'i', status, ...(type ? { error: { type, reason: 'why' } } : {}) } });
    expect(interpretBulk(res(200, { errors: false, items: [item(201), item(201)] }), 2).kind).toBe('ok');
    expect(interpretBulk(res(200, { errors: true, items: [item(201), item(409, 'version_conflict_engine_exception')] }), 2).kind).toBe('ok');
    expect(interpretBulk(res(200, { errors: true, items: [item(201), item(429, 'es_rejected_execution_exception'), item(201)] }), 3)).toMatchObject({ kind: 'partial', delivered: 1 });
    expect(interpretBulk(res(200, { errors: true, items: [item(400, 'mapper_parsing_exception'), item(201)] }), 2).kind).toBe('rejected');
    expect(interpretBulk(res(200, { errors: true, items: [item(503, 'unavailable_shards_exception')] }), 1).kind).toBe('transient');
    expect(interpretBulk(res(200, { errors: false, items: [item(201)] }), 2).kind).toBe('rejected');
    expect(interpretBulk(res(401, { error: 'unauthorized' }), 1).kind).toBe('auth');
  });
});

describe('token claims in the shipped formats', () => {
  const token = { jti: '5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d', service_account: 'app', namespace: 'shop', pod: 'app-0', pod_uid: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a', node: 'worker-1', issued: '2026-12-02T10:00:00.000Z', expires: '2026-12-02T11:00:07.000Z', kind: 'bound' as const, from: 'file' as const };
  it('ECS carries credwatch.token.* and HEC the finding’s token.*, so a SIEM can join on the jti', () => {
    const f = makeFinding({ token });
    expect((toEcs(f).credwatch as Record<string, unknown>).token).toEqual(token);
    const hec = JSON.parse(encodeHec([f], ctx).trim()) as { event: { token: unknown } };
    expect(hec.event.token).toEqual(token);
  });
  it('a finding without a token ships no token field', () => {
    expect(toEcs(makeFinding()).credwatch).not.toHaveProperty('token');
  });
});
