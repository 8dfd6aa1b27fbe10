/**
 * The shipper against HTTPS stub receivers on loopback with real certificates: delivery and acks,
 * severity filtering, 5xx bursts, 413 splitting, hung receivers, and the three operator mistakes
 * (wrong token, unknown CA, certificate for another name) which must each give one clear log line,
 * keep everything in the outbox, and deliver once fixed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createShipper, ShipConfigError, type OutputConfig, type Shipper } from '../../../src/ship/shipper';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { captureLogger, json, makeFinding, makeFindings, MemoryOutbox, startStub, waitFor, type Stub } from '../../unit/ship/support';

let pki: TestPki;
const open: { shippers: Shipper[]; stubs: Stub[] } = { shippers: [], stubs: [] };
const FAST = { baseMs: 20, capMs: 300, fastRetries: 4 };

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await Promise.all(open.shippers.splice(0).map((s) => s.stop()));
  await Promise.all(open.stubs.splice(0).map((s) => s.close()));
});

async function stub(...args: Parameters<typeof startStub>): Promise<Stub> {
  const s = await startStub(...args);
  open.stubs.push(s);
  return s;
}

function collectorOutput(url: string, over: Partial<OutputConfig> = {}): OutputConfig {
  return { name: 'central', type: 'collector', url, token: 'right-token-0123456789', tls: { ca_file: pki.caFile }, timeout_ms: 2000, flush_interval_ms: 20, ...over };
}

function ship(outbox: MemoryOutbox, outputs: OutputConfig[], extra: Partial<Parameters<typeof createShipper>[0]> = {}) {
  const { logger, lines } = captureLogger();
  const s = createShipper({ outputs, outbox, host: 'node-a', agentId: 'agent-1', logger, backoff: FAST, logEveryMs: 60_000, ...extra });
  open.shippers.push(s);
  s.start();
  return { shipper: s, lines };
}

/** Stub that stores findings by id the way the collector does (duplicates dropped). */
function storingHandler(store: Map<string, number>, token = 'right-token-0123456789') {
  return (req: { headers: Record<string, unknown>; body: string }, res: Parameters<Parameters<typeof startStub>[1]>[1]) => {
    if (req.headers.authorization !== `Bearer ${token}`) return json(res, 401, { error: 'unknown token' });
    for (const line of req.body.split('\n').filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      store.set(id, (store.get(id) ?? 0) + 1);
    }
    json(res, 200, { accepted: 1, duplicates: 0 });
  };
}

describe('shipper over HTTPS', () => {
  it('delivers every finding once, in order, gzipped, and acks the outbox', async () => {
    const outbox = new MemoryOutbox();
    const fs = makeFindings(25);
    outbox.add(fs);
    const seen: string[] = [];
    const s = await stub(pki.server, (req, res) => {
      for (const l of req.body.split('\n').filter(Boolean)) seen.push((JSON.parse(l) as { id: string }).id);
      json(res, 200, { accepted: 10, duplicates: 0 });
    });
    const delivered: number[] = [];
    const { shipper } = ship(outbox, [collectorOutput(s.url, { batch_size: 10 })], { onDelivered: (_o, n) => delivered.push(n) });
    await waitFor(() => outbox.depth('central') === 0, 5000, 'outbox drained');
    expect(seen).toEqual(fs.map((f) => f.id));
    expect(s.requests).toHaveLength(3);
    expect(s.requests[0]!.headers['content-encoding']).toBe('gzip');
    expect(s.requests[0]!.headers['x-credwatch-agent']).toBe('agent-1');
    expect(delivered).toEqual([10, 10, 5]);
    expect(shipper.stats().central).toMatchObject({ delivered: 25, failures: 0, depth: 0 });
  });

  it('wakes at once on wake() instead of waiting for the flush interval', async () => {
    const outbox = new MemoryOutbox();
    const s = await stub(pki.server, (_req, res) => json(res, 200, {}));
    const { shipper } = ship(outbox, [collectorOutput(s.url, { flush_interval_ms: 60_000 })]);
    await new Promise((r) => setTimeout(r, 50));
    outbox.add(makeFindings(2));
    shipper.wake();
    await waitFor(() => outbox.depth('central') === 0, 2000, 'delivery after wake');
  });

  it('acks findings under min_severity as skipped without sending them', async () => {
    const outbox = new MemoryOutbox();
    outbox.add([makeFinding({ severity: 'low' }), makeFinding({ severity: 'critical' }), makeFinding({ severity: 'info' })]);
    const s = await stub(pki.server, (_req, res) => json(res, 200, {}));
    const { shipper } = ship(outbox, [collectorOutput(s.url, { min_severity: 'high' })]);
    await waitFor(() => outbox.depth('central') === 0, 5000);
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]!.body.trim().split('\n')).toHaveLength(1);
    expect(shipper.stats().central).toMatchObject({ delivered: 1, skipped: 2 });
  });

  it('rides out a 5xx burst with backoff, logs it once, and loses nothing', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(7));
    const stored = new Map<string, number>();
    let failuresLeft = 5;
    const ok = storingHandler(stored);
    const s = await stub(pki.server, (req, res) => {
      if (failuresLeft-- > 0) return json(res, 503, { error: 'overloaded' });
      ok(req, res);
    });
    const { shipper, lines } = ship(outbox, [collectorOutput(s.url)]);
    await waitFor(() => outbox.depth('central') === 0, 10_000);
    expect(stored.size).toBe(7);
    const warn = lines.filter((l) => l.msg.includes('delivery to central failed'));
    expect(warn).toHaveLength(1);
    expect(warn[0]!.msg).toContain('HTTP 503');
    expect(lines.some((l) => l.msg.includes('delivery to central resumed after 5 failed attempts'))).toBe(true);
    expect(shipper.stats().central).toMatchObject({ failures: 5, retries: 5, delivered: 7 });
  });

  it('splits a batch the receiver refuses as too large (413), keeping order', async () => {
    const outbox = new MemoryOutbox();
    const fs = makeFindings(9);
    outbox.add(fs);
    const seen: string[] = [];
    const s = await stub(pki.server, (req, res) => {
      const lines = req.body.split('\n').filter(Boolean);
      if (lines.length > 2) return json(res, 413, { error: 'too big' });
      for (const l of lines) seen.push((JSON.parse(l) as { id: string }).id);
      json(res, 200, {});
    });
    ship(outbox, [collectorOutput(s.url, { batch_size: 8 })]);
    await waitFor(() => outbox.depth('central') === 0, 10_000);
    expect(seen).toEqual(fs.map((f) => f.id));
  });

  it('sets aside a single finding the receiver still refuses as too large (413) and delivers the rest behind it', async () => {
    // On main the shipper retried the lone finding with backoff forever and nothing behind it moved.
    const outbox = new MemoryOutbox();
    const fs = makeFindings(6);
    const huge = fs[2]!;
    huge.process!.argv = ['kubectl', 'exec', 'x'.repeat(200_000)];
    outbox.add(fs);
    const seen: string[] = [];
    const s = await stub(pki.server, (req, res) => {
      if (req.body.length > 100_000) return json(res, 413, { error: 'too big' });
      for (const l of req.body.split('\n').filter(Boolean)) seen.push((JSON.parse(l) as { id: string }).id);
      json(res, 200, {});
    });
    const setAside: string[] = [];
    const { shipper, lines } = ship(outbox, [collectorOutput(s.url, { batch_size: 8 })], { onSetAside: (_o, id) => setAside.push(id) });
    await waitFor(() => outbox.depth('central') === 0, 10_000);
    expect(seen).toEqual(fs.filter((f) => f !== huge).map((f) => f.id));
    expect(setAside).toEqual([huge.id]);
    expect(shipper.stats().central).toMatchObject({ setAside: 1, delivered: 5 });
    expect(lines.some((l) => l.msg.includes(`refused finding ${huge.id} on its own as too large`))).toBe(true);
  });

  it('abandons a hung request at timeout_ms and resends; the receiver dedups by id', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(3));
    const stored = new Map<string, number>();
    const ok = storingHandler(stored);
    let hang = true;
    const s = await stub(pki.server, (req, res) => {
      if (hang) {
        hang = false;
        ok(req, { writeHead: () => undefined, end: () => undefined } as never); // stored, but never answered
        return;
      }
      ok(req, res);
    });
    const { lines } = ship(outbox, [collectorOutput(s.url, { timeout_ms: 300 })]);
    await waitFor(() => outbox.depth('central') === 0, 10_000);
    expect(s.requests.length).toBe(2);
    expect([...stored.values()].every((n) => n === 2)).toBe(true); // sent twice: at least once holds
    expect(stored.size).toBe(3);
    expect(lines.some((l) => l.msg.includes('did not answer within 300 ms'))).toBe(true);
  });

  it('abandons a receiver that hangs mid-response (headers sent, body never finished)', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(2));
    let calls = 0;
    const s = await stub(pki.server, (_req, res) => {
      if (++calls === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"accepted":'); // and nothing more
        return;
      }
      json(res, 200, {});
    });
    const { shipper } = ship(outbox, [collectorOutput(s.url, { timeout_ms: 300 })]);
    await waitFor(() => outbox.depth('central') === 0, 10_000);
    expect(calls).toBe(2);
    expect(shipper.stats().central).toMatchObject({ failures: 1, delivered: 2 });
  });

  it('wrong token: one "token rejected" line, retries at the cap, delivers once the receiver accepts it', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(4));
    const stored = new Map<string, number>();
    const s = await stub(pki.server, storingHandler(stored, 'the-other-token-0123'));
    const { shipper, lines } = ship(outbox, [collectorOutput(s.url)]);
    await waitFor(() => s.requests.length >= 3, 5000, 'three attempts');
    const errs = lines.filter((l) => l.level >= 50);
    expect(errs).toHaveLength(1);
    expect(errs[0]!.msg).toMatch(/^token rejected by central: .*HTTP 401/);
    expect(JSON.stringify(lines)).not.toContain('right-token-0123456789');
    expect(outbox.depth('central')).toBe(4);
    expect(shipper.stats().central!.nextAttemptMs).not.toBeNull();
    s.setHandler(storingHandler(stored)); // the operator fixes the receiver's token list
    await waitFor(() => outbox.depth('central') === 0, 5000);
    expect(stored.size).toBe(4);
  });

  it.each([
    ['unknown CA', 'untrusted', /^TLS error talking to central: server certificate not trusted \(unknown CA/],
    ['certificate for another host name', 'wrongName', /^TLS error talking to central: server certificate does not match the host name/],
  ] as const)('%s: one clear TLS line, nothing lost, delivers after the certificate is fixed', async (_what, which, pattern) => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(5));
    const stored = new Map<string, number>();
    const bad = await startStub(pki[which], storingHandler(stored));
    const { lines } = ship(outbox, [collectorOutput(bad.url)]);
    await waitFor(() => lines.filter((l) => l.level >= 50).length >= 1, 5000, 'the TLS error line');
    await new Promise((r) => setTimeout(r, 800)); // several attempts at the 300 ms cap
    const errs = lines.filter((l) => l.level >= 50);
    expect(errs).toHaveLength(1);
    expect(errs[0]!.msg).toMatch(pattern);
    expect(outbox.depth('central')).toBe(5);
    expect(stored.size).toBe(0);
    const port = bad.port;
    await bad.close();
    await stub(pki.server, storingHandler(stored), port); // same address, now a correct certificate
    await waitFor(() => outbox.depth('central') === 0, 5000, 'delivery after the fix');
    expect(stored.size).toBe(5);
  });

  it('keeps findings when the receiver is down (connection refused) and delivers when it comes up', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(3));
    const probe = await startStub(pki.server, () => undefined);
    const port = probe.port;
    await probe.close();
    const { lines } = ship(outbox, [collectorOutput(`https://127.0.0.1:${port}`)]);
    await waitFor(() => lines.some((l) => String(l.msg).includes('connection refused')), 5000);
    expect(outbox.depth('central')).toBe(3);
    const stored = new Map<string, number>();
    await stub(pki.server, storingHandler(stored), port);
    await waitFor(() => outbox.depth('central') === 0, 5000);
    expect(stored.size).toBe(3);
  });

  it('stop() abandons a request that does not finish within the grace period; the batch stays pending', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(2));
    const s = await stub(pki.server, () => undefined); // never answers
    const { shipper } = ship(outbox, [collectorOutput(s.url, { timeout_ms: 30_000 })], { stopGraceMs: 100 });
    await waitFor(() => s.requests.length === 1, 5000);
    const t0 = Date.now();
    await shipper.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(outbox.depth('central')).toBe(2);
    expect(outbox.acks).toHaveLength(0);
  });

  it('uses a client certificate (mTLS) when one is configured', async () => {
    const { createServer } = await import('node:https');
    const client = pki.client('agent-1');
    let cn: unknown = null;
    const server = createServer({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      cn = (req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN;
      req.resume();
      req.on('end', () => json(res, 200, {}));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const outbox = new MemoryOutbox();
    outbox.add(makeFindings(1));
    ship(outbox, [collectorOutput(`https://127.0.0.1:${port}`, { token: undefined, tls: { ca_file: pki.caFile, cert_file: client.certFile, key_file: client.keyFile } })]);
    await waitFor(() => outbox.depth('central') === 0, 5000);
    expect(cn).toBe('agent-1');
    server.closeAllConnections();
    server.close();
  });
});

describe('shipper configuration', () => {
  const outbox = new MemoryOutbox();
  const base = { name: 'x', type: 'collector' as const, url: 'https://127.0.0.1:1' };
  it('refuses plain http:// URLs', () => {
    expect(() => createShipper({ outputs: [{ ...base, url: 'http://127.0.0.1:1' }], outbox, host: 'h', agentId: 'a' })).toThrow(/https:\/\//);
  });
  it('refuses insecure_skip_verify unless explicitly allowed, and warns when allowed', () => {
    const outputs = [{ ...base, tls: { insecure_skip_verify: true } }];
    expect(() => createShipper({ outputs, outbox, host: 'h', agentId: 'a', env: {} })).toThrow(ShipConfigError);
    const { logger, lines } = captureLogger();
    createShipper({ outputs, outbox, host: 'h', agentId: 'a', env: {}, allowInsecureTls: true, logger });
    expect(lines.some((l) => l.level === 40 && l.msg.includes('verification is OFF'))).toBe(true);
  });
  it('reads the token from token_env and says which variable is missing', () => {
    expect(() => createShipper({ outputs: [{ ...base, token_env: 'CW_TEST_TOKEN' }], outbox, host: 'h', agentId: 'a', env: {} })).toThrow(/CW_TEST_TOKEN/);
    expect(() => createShipper({ outputs: [{ ...base, token_env: 'CW_TEST_TOKEN' }], outbox, host: 'h', agentId: 'a', env: { CW_TEST_TOKEN: 'x' } })).not.toThrow();
  });
  it('requires a token for splunk-hec, rejects token with token_env, unknown keys and duplicate names', () => {
    const mk = (outputs: OutputConfig[]) => () => createShipper({ outputs, outbox, host: 'h', agentId: 'a', env: {} });
    expect(mk([{ ...base, type: 'splunk-hec' }])).toThrow(/token/);
    expect(mk([{ ...base, token: 't', token_env: 'T' }])).toThrow(/not both/);
    expect(mk([{ ...base, colour: 'red' } as OutputConfig])).toThrow(ShipConfigError);
    expect(mk([base, base])).toThrow(/used twice/);
  });
  it('names an unreadable CA file', () => {
    expect(() => createShipper({ outputs: [{ ...base, tls: { ca_file: '/nonexistent/ca.pem' } }], outbox, host: 'h', agentId: 'a' })).toThrow(/\/nonexistent\/ca.pem: ENOENT/);
  });
});
