/**
 * The audit webhook receiver over real HTTPS on loopback: EventList batches in, auth enforced (bearer
 * token, client certificates), oversize and malformed bodies refused and counted.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubeAuditWebhook } from '../../../src/sources/kube-webhook';
import type { KubeAuditEvent } from '../../../src/kube/event';

const TOKEN = 'webhook-token-0123456789abcdef';
let dir: string;
const pki: Record<string, Buffer> = {};
const hooks: KubeAuditWebhook[] = [];

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-kube-wh-'));
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca');
  for (const name of ['server', 'client']) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', 'san.cnf');
  }
  for (const f of ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key']) pki[f] = fs.readFileSync(path.join(dir, f));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const h of hooks.splice(0)) await h.stop();
});

function event(id: string) {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: id,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/secrets',
    verb: 'list',
    user: { username: 'alice' },
    objectRef: { resource: 'secrets' },
    responseStatus: { code: 200 },
  };
}

function post(port: number, body: string, opts: { token?: string; clientCert?: boolean; method?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'POST',
        path: '/',
        ca: pki['ca.crt'],
        cert: opts.clientCert ? pki['client.crt'] : undefined,
        key: opts.clientCert ? pki['client.key'] : undefined,
        headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function start(extra: Partial<ConstructorParameters<typeof KubeAuditWebhook>[0]>, seen: KubeAuditEvent[]) {
  const h = new KubeAuditWebhook({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: pki['server.crt']!, key: pki['server.key']! },
    onEvent: (ev) => seen.push(ev),
    ...extra,
  });
  hooks.push(h);
  return { h, port: await h.start() };
}

describe('KubeAuditWebhook', () => {
  it('accepts an EventList batch with the bearer token and delivers every event', async () => {
    const seen: KubeAuditEvent[] = [];
    const { h, port } = await start({ bearerToken: TOKEN }, seen);
    const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [event('w1'), event('w2'), { bogus: true }] });
    expect(await post(port, body, { token: TOKEN })).toBe(200);
    expect(seen.map((e) => e.auditID)).toEqual(['w1', 'w2']);
    expect(h.stats).toMatchObject({ requests: 1, events: 2, badItems: 1 });
  });

  it('refuses a missing or wrong token, other methods, and malformed bodies', async () => {
    const seen: KubeAuditEvent[] = [];
    const { h, port } = await start({ bearerToken: TOKEN }, seen);
    const body = JSON.stringify(event('w3'));
    expect(await post(port, body)).toBe(401);
    expect(await post(port, body, { token: `${TOKEN}x` })).toBe(401);
    expect(await post(port, '', { token: TOKEN, method: 'GET' })).toBe(405);
    expect(await post(port, '{"kind":"EventList"', { token: TOKEN })).toBe(400);
    expect(seen).toEqual([]);
    expect(h.stats).toMatchObject({ unauthorized: 2, badItems: 1 });
  });

  it('writes at most one warning per interval for a flood of bad payloads, and the next line carries the count', async () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = { warn: (obj: object, msg: string) => lines.push({ obj: obj as Record<string, unknown>, msg }) };
    let clock = 1_000_000;
    const { h, port } = await start({ bearerToken: TOKEN, logger, now: () => clock }, []);
    for (let i = 0; i < 50; i++) expect(await post(port, '{"kind":', { token: TOKEN })).toBe(400);
    expect(h.stats.badItems).toBe(50);
    expect(lines).toHaveLength(1);
    clock += 10_000;
    expect(await post(port, '[', { token: TOKEN })).toBe(400);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.obj).toMatchObject({ cause: 'bad-payload', count: 50, total: 51 });
    await h.stop();
    expect(lines).toHaveLength(2); // nothing held back after that line
  });

  it('refuses a body over the cap', async () => {
    const seen: KubeAuditEvent[] = [];
    const { h, port } = await start({ bearerToken: TOKEN, maxBodyBytes: 1024 }, seen);
    expect(await post(port, JSON.stringify({ kind: 'EventList', items: Array.from({ length: 50 }, (_, i) => event(`big-${i}`)) }), { token: TOKEN })).toBe(413);
    expect(h.stats.tooLarge).toBe(1);
    expect(seen).toEqual([]);
  });

  it('with client certificates required, rejects a client without one at the TLS layer', async () => {
    const seen: KubeAuditEvent[] = [];
    const { port } = await start({ tls: { cert: pki['server.crt']!, key: pki['server.key']!, ca: pki['ca.crt']!, requireClientCert: true } }, seen);
    expect(await post(port, JSON.stringify(event('m1')), { clientCert: true })).toBe(200);
    await expect(post(port, JSON.stringify(event('m2')))).rejects.toThrow();
    expect(seen.map((e) => e.auditID)).toEqual(['m1']);
  });

  it('refuses unsafe configurations', () => {
    const onEvent = () => undefined;
    expect(() => new KubeAuditWebhook({ host: '127.0.0.1', port: 0, onEvent })).toThrow(/bearer token or client certificates/);
    expect(() => new KubeAuditWebhook({ host: '0.0.0.0', port: 0, bearerToken: TOKEN, onEvent })).toThrow(/only allowed on loopback/);
    expect(() => new KubeAuditWebhook({ host: '127.0.0.1', port: 0, bearerToken: 'short', onEvent })).toThrow(/at least 16/);
  });

  it('serves plain HTTP on loopback when asked (local sidecar)', async () => {
    const seen: KubeAuditEvent[] = [];
    const h = new KubeAuditWebhook({ host: '127.0.0.1', port: 0, bearerToken: TOKEN, onEvent: (ev) => seen.push(ev) });
    hooks.push(h);
    const port = await h.start();
    const code = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify(event('p1')));
    });
    expect(code).toBe(200);
    expect(seen.map((e) => e.auditID)).toEqual(['p1']);
  });
});
