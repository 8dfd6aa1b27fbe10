/**
 * A collector that hangs mid-response while the real daemon ships (issue 11, fault 3). A TLS proxy in
 * front of a real collector passes each batch on (so the collector may well have stored it), then
 * sends the response headers and half a body and never finishes. The daemon's request times out; it
 * must keep the findings in its outbox and send them again. When the proxy recovers, every finding in
 * the daemon's db is at the collector, each stored once (duplicates dropped by id), and the outbox
 * drains. Run under the lab lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/reliability/collector-hang.test.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { startStub, type RecordedRequest } from '../unit/ship/support';
import { collectorLab } from './collector-lab';
import { cli, freeLoopbackPort, kernelSkipReason, kernelSnapshot, restoreKernel, sleep, startDaemon, triggerDockerTcp, waitUntil, type Daemon } from './daemon';

const skip = kernelSkipReason();
if (skip) console.log(`skipping the hanging-collector test: ${skip}`);

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function dbIds(db: string): string[] {
  const r = cli(['findings', '--db', db, '--json', '--limit', '0']);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: string }).id);
}

describe('collector hanging mid-response', () => {
  it.skipIf(skip !== null)('loses nothing: the findings arrive once the collector recovers, each stored once', async () => {
    const before = kernelSnapshot();
    cleanup.push(() => restoreKernel(before));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-hang-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const lab = await collectorLab(dir);
    cleanup.push(() => lab.close());
    await lab.start();

    const upstream = new Agent({ connect: { ca: lab.pki.ca } });
    cleanup.push(() => upstream.close());
    let hanging = true;
    let hung = 0;
    const forward = async (req: RecordedRequest): Promise<{ status: number; text: string }> => {
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'content-type', 'content-encoding', 'x-credwatch-agent']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const up = await request(`https://127.0.0.1:${lab.port}${req.path}`, { method: 'POST', body: req.raw, headers, dispatcher: upstream });
      return { status: up.statusCode, text: await up.body.text() };
    };
    const proxy = await startStub(lab.pki.server, async (req, res) => {
      const up = await forward(req);
      if (hanging) {
        hung++;
        // Headers and half the body, then silence: the connection stays open until the client gives up.
        res.writeHead(up.status, { 'content-type': 'application/json', 'content-length': String(up.text.length) });
        res.write(up.text.slice(0, Math.floor(up.text.length / 2)));
        return;
      }
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(up.text);
    });
    cleanup.push(() => proxy.close());

    const db = path.join(dir, 'state', 'findings.db');
    const cfg = path.join(dir, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: 127.0.0.1:${await freeLoopbackPort()}\n${lab.shipYaml(200, proxy.port)}`, { mode: 0o600 });
    const d: Daemon = await startDaemon(cfg);
    cleanup.push(async () => {
      if (!d.hasExited()) await d.stop('SIGTERM');
    });

    for (let i = 0; i < 4; i++) triggerDockerTcp();
    await waitUntil('the daemon tried to ship and the proxy hung', () => hung >= 1, 20_000, 100);
    await sleep(4000); // past the 3 s request timeout: at least one attempt timed out
    for (let i = 0; i < 3; i++) triggerDockerTcp();
    await waitUntil('7 findings committed', () => dbIds(db).length >= 7, 15_000, 300);
    expect(d.hasExited()).toBe(false);

    hanging = false;
    await waitUntil('every finding at the collector', () => {
      const got = lab.ids();
      return dbIds(db).every((id) => got.has(id));
    }, 60_000, 500);
    expect(lab.rows()).toBe(lab.ids().size);
    console.log(`collector hang: ${hung} responses hung; ${lab.ids().size} findings at the collector, each once`);
    const r = await d.stop('SIGTERM');
    expect(r.code).toBe(0);
    expect(kernelSnapshot()).toEqual(before);
  }, 120_000);
});
