/**
 * The state directory on a tiny tmpfs that fills up while the real daemon runs (issue 11, fault 2):
 *  - the agent keeps running and keeps detecting;
 *  - it says what it could not store: `store_write_failed` in its log and in /metrics
 *    (credwatch_stream_signals_total{kind="store_write_failed"}), and afterwards in `status --json`;
 *  - when space returns it recovers by itself: every finding raised during the full period that it
 *    kept buffered is committed (none dropped unless counted as store_full).
 * The tmpfs is unmounted afterwards. Run under the lab lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/reliability/disk-full.test.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, freeLoopbackPort, kernelSkipReason, kernelSnapshot, restoreKernel, sleep, startDaemon, triggerDockerTcp, waitUntil, type Daemon } from './daemon';

const skip = kernelSkipReason() ?? (spawnSync('sh', ['-c', 'command -v curl && command -v mount']).status !== 0 ? 'curl or mount missing' : null);
if (skip) console.log(`skipping the disk-full test: ${skip}`);

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function findingIds(db: string): string[] {
  const r = cli(['findings', '--db', db, '--json', '--limit', '100000']);
  if (r.status !== 0) return [];
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: string }).id);
}

async function metric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Fills the file system with a file until ENOSPC. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  // Whatever is left below one chunk too.
  const fd2 = fs.openSync(`${file}.tail`, 'w');
  try {
    for (;;) fs.writeSync(fd2, Buffer.alloc(512));
  } catch {
    // ENOSPC
  } finally {
    fs.closeSync(fd2);
  }
}

describe('state directory on a tmpfs that fills up', () => {
  it.skipIf(skip !== null)('keeps running, counts and logs what it could not store, recovers when space returns', async () => {
    const before = kernelSnapshot();
    cleanup.push(() => restoreKernel(before));
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-diskfull-'));
    cleanup.push(() => fs.rmSync(base, { recursive: true, force: true }));
    const mnt = path.join(base, 'state');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
    expect(m.status, m.stderr).toBe(0);
    cleanup.push(() => {
      spawnSync('umount', [mnt]);
    });
    const db = path.join(mnt, 'findings.db');
    const port = await freeLoopbackPort();
    const cfg = path.join(base, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: 127.0.0.1:${port}\n`, { mode: 0o600 });

    const d: Daemon = await startDaemon(cfg);
    cleanup.push(async () => {
      if (!d.hasExited()) await d.stop('SIGTERM');
    });
    triggerDockerTcp();
    await waitUntil('a first finding', () => findingIds(db).length >= 1, 15_000, 200);

    // Fill the disk, then keep raising findings until the store refuses one.
    const filler = path.join(mnt, 'filler');
    fill(filler);
    let raised = 0;
    for (let i = 0; i < 200 && (await metric(port, 'credwatch_stream_signals_total{kind="store_write_failed"}')) === 0; i++) {
      triggerDockerTcp();
      raised++;
      await sleep(100);
    }
    expect(await metric(port, 'credwatch_stream_signals_total{kind="store_write_failed"}')).toBeGreaterThan(0);
    await d.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('could not write findings'), 5_000, 'the store_write_failed log line');
    // Still running and still detecting while full.
    for (let i = 0; i < 5; i++) triggerDockerTcp();
    raised += 5;
    await sleep(1000);
    expect(d.hasExited()).toBe(false);
    const findingsMetric = await metric(port, 'credwatch_findings_total');
    expect(findingsMetric).toBeGreaterThanOrEqual(raised);

    // Space returns: the buffered findings are committed by the retry, without any help.
    fs.rmSync(filler);
    fs.rmSync(`${filler}.tail`);
    const dropped = await metric(port, 'credwatch_drops_total{cause="store_full"}');
    await waitUntil('every raised finding committed', () => findingIds(db).length + dropped >= findingsMetric, 30_000, 500);
    expect(findingIds(db).length + dropped).toBe(findingsMetric);
    console.log(`disk full: ${raised} findings raised while full; store_full drops ${dropped}; committed ${findingIds(db).length} of ${findingsMetric}`);

    // status --json now shows the write failures too (its snapshot lives in the db, written again).
    await waitUntil('status shows store_write_failed', () => {
      const s = cli(['status', '--db', db, '--json']);
      return s.status === 0 && /store_write_failed/.test(s.stdout);
    }, 15_000, 500);

    const r = await d.stop('SIGTERM');
    expect(r.code).toBe(0);
    expect(kernelSnapshot()).toEqual(before);
  }, 120_000);
});
