/**
 * SIGKILL during an exec storm, then restart (issue 11, fault 1), with the real daemon on the real
 * kernel, shipping to a real collector over TLS:
 *  1. start `credwatch run` (unicast, default rules, a `collector` ship output); a few findings are
 *     shipped while the collector is up; then the collector goes away and more findings pile up in
 *     the outbox;
 *  2. bench/loadgen at its maximum rate (exec storm) plus more findings; note which findings are
 *     committed (db read-only), SIGKILL the daemon mid-storm;
 *  3. the db passes integrity_check and holds every finding noted before the kill;
 *  4. restart: the new run takes over (exactly one set of credwatch rules in the kernel), the
 *     collector comes back, the outbox resumes: every finding in the db arrives, each stored once;
 *  5. SIGTERM: kernel status and rules equal the snapshot taken before the first start.
 * Run under the lab lock: flock /tmp/credwatch-lab.lock npx vitest run test/reliability/sigkill-storm.test.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { collectorLab, type CollectorLab } from './collector-lab';
import { credwatchRules, freeLoopbackPort, kernelSkipReason, kernelSnapshot, REPO_ROOT, restoreKernel, sleep, startDaemon, triggerDockerTcp, waitUntil, type Daemon } from './daemon';

const skip = kernelSkipReason() ?? (spawnSync('sh', ['-c', 'command -v gcc && command -v curl']).status !== 0 ? 'gcc or curl missing' : null);
if (skip) console.log(`skipping the SIGKILL storm test: ${skip}`);

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Finding ids committed to the db, read through a separate read-only connection. */
function committedIds(db: string): Set<string> {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return new Set((conn.prepare('SELECT id FROM findings').all() as { id: string }[]).map((r) => r.id));
  } finally {
    conn.close();
  }
}

/** Findings not yet shipped to the `central` output (past its ship cursor). */
function outboxDepth(db: string): number {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const cursor = conn.prepare("SELECT seq FROM ship_cursor WHERE output = 'central'").get() as { seq: number } | undefined;
    return (conn.prepare('SELECT count(*) AS n FROM findings WHERE seq > ?').get(cursor?.seq ?? 0) as { n: number }).n;
  } finally {
    conn.close();
  }
}

describe('SIGKILL during an exec storm', () => {
  it.skipIf(skip !== null)('loses no committed finding, leaves a sound db, and the next run takes over and ships everything once', async () => {
    const before = kernelSnapshot();
    cleanup.push(() => restoreKernel(before));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-sigkill-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const loadgen = path.join(dir, 'loadgen');
    const cc = spawnSync('gcc', ['-O2', '-o', loadgen, path.join(REPO_ROOT, 'bench/loadgen.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);

    const lab: CollectorLab = await collectorLab(dir);
    cleanup.push(() => lab.close());
    await lab.start();
    const db = path.join(dir, 'state', 'findings.db');
    const cfg = path.join(dir, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: 127.0.0.1:${await freeLoopbackPort()}\n${lab.shipYaml()}`, { mode: 0o600 });

    let d: Daemon | null = await startDaemon(cfg);
    cleanup.push(async () => {
      if (d && !d.hasExited()) await d.stop('SIGTERM');
    });
    const ourRules = credwatchRules();
    expect(ourRules.length).toBeGreaterThan(0);

    // Phase 1: findings shipped while the collector is up.
    for (let i = 0; i < 3; i++) triggerDockerTcp();
    await waitUntil('3 findings at the collector', () => lab.ids().size >= 3, 20_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; daemon warnings: ${JSON.stringify(d?.logs.filter((l) => (l.level ?? 0) >= 40).slice(-5))}`);
    });
    // Phase 2: the collector goes away; findings pile up in the outbox.
    await lab.stop();
    for (let i = 0; i < 3; i++) triggerDockerTcp();
    await waitUntil('6 findings committed', () => committedIds(db).size >= 6, 20_000);

    // Phase 3: exec storm at the generator's maximum rate, more findings, then SIGKILL mid-storm.
    const storm = spawn(loadgen, ['--rate', '0', '--seconds', '8', '--workers', '2'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stormOut = '';
    storm.stdout.on('data', (c: Buffer) => (stormOut += c.toString()));
    const stormDone = new Promise<void>((r) => storm.on('exit', () => r()));
    cleanup.push(() => {
      if (storm.exitCode === null) storm.kill('SIGKILL');
    });
    await sleep(1500);
    for (let i = 0; i < 3; i++) triggerDockerTcp();
    await sleep(1500);
    const committedBeforeKill = committedIds(db);
    expect(committedBeforeKill.size).toBeGreaterThanOrEqual(6);
    d.proc.kill('SIGKILL');
    const killed = await d.exited;
    expect(killed.signal).toBe('SIGKILL');
    await stormDone;
    expect(stormOut).toMatch(/exec/);
    console.log(`loadgen during the kill: ${stormOut.trim()}; findings committed before the kill: ${committedBeforeKill.size}`);

    // The db after the kill: sound, and nothing committed is missing.
    {
      const conn = new Database(db, { fileMustExist: true });
      expect((conn.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check).toBe('ok');
      conn.close();
    }
    const afterKill = committedIds(db);
    for (const id of committedBeforeKill) expect(afterKill.has(id)).toBe(true);
    expect(outboxDepth(db)).toBeGreaterThan(0);

    // Phase 4: the collector is back, the daemon restarts and takes over.
    await lab.start();
    d = await startDaemon(cfg);
    // Exactly one set of our rules: the dead run's were replaced, not doubled (the self-exclusion
    // rule names the new pid).
    const norm = (rules: string[]): string[] => rules.map((r) => r.replace(/pid=\d+/, 'pid=SELF')).sort();
    expect(norm(credwatchRules())).toEqual(norm(ourRules));
    triggerDockerTcp();
    await waitUntil('every finding in the db at the collector', () => {
      const want = committedIds(db);
      const got = lab.ids();
      return want.size > afterKill.size && [...want].every((id) => got.has(id));
    }, 30_000, 250);
    expect(lab.rows()).toBe(lab.ids().size); // each stored exactly once
    await waitUntil('outbox drained', () => outboxDepth(db) === 0, 10_000, 200);

    // Phase 5: a clean stop leaves the kernel exactly as before the first start.
    const r = await d.stop('SIGTERM');
    expect(r.code).toBe(0);
    expect(kernelSnapshot()).toEqual(before);
  }, 180_000);
});
