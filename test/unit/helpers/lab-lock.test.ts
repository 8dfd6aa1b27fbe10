import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLabLock, heldByCaller } from '../../helpers/lab-lock.cjs';

/** Whether another process could take the lock right now (`flock -n` exits 1 when it is held). */
function freeForOthers(lockPath: string): boolean {
  return spawnSync('flock', ['-n', lockPath, 'true']).status === 0;
}

async function waitUntil(cond: () => boolean, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('the lab lock', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const lockFile = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-lock-'));
    dirs.push(d);
    return path.join(d, 'lock');
  };

  it('is held against other processes until released, then free again', async () => {
    const lock = lockFile();
    const release = await acquireLabLock({}, lock);
    expect(freeForOthers(lock)).toBe(false);
    release();
    expect(await waitUntil(() => freeForOthers(lock))).toBe(true);
  });

  it('waits while another process holds it', async () => {
    const lock = lockFile();
    const first = await acquireLabLock({}, lock);
    let secondTaken = false;
    const second = acquireLabLock({}, lock).then((r) => {
      secondTaken = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(secondTaken).toBe(false);
    first();
    (await second)();
    expect(secondTaken).toBe(true);
  });

  it('is not taken again when the caller says it holds it (a child would wait for ever)', async () => {
    const lock = lockFile();
    expect(heldByCaller({ CREDWATCH_LAB_LOCKED: '1' })).toBe(true);
    expect(heldByCaller({ CREDWATCH_BENCH_LOCKED: '1' })).toBe(true);
    expect(heldByCaller({})).toBe(false);
    const release = await acquireLabLock({ CREDWATCH_LAB_LOCKED: '1' }, lock);
    expect(freeForOthers(lock)).toBe(true);
    release();
  });

  it('is seen as held by the caller when an ancestor holds it (`flock LOCK npx vitest ...`)', () => {
    const lock = lockFile();
    const probe = `const { heldByCaller } = require(${JSON.stringify(require.resolve('../../helpers/lab-lock.cjs'))}); process.stdout.write(String(heldByCaller({}, ${JSON.stringify(lock)})))`;
    // Under flock the probe's grandparent (flock, via sh) holds the lock; without it nobody does.
    const under = spawnSync('flock', [lock, 'sh', '-c', `"${process.execPath}" -e '${probe}'`], { encoding: 'utf8' });
    expect(under.stdout).toBe('true');
    const alone = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(alone.stdout).toBe('false');
    // Held by an unrelated process: not ours, so acquireLabLock would wait for it.
    const other = spawnSync('sh', ['-c', `flock ${lock} sleep 1 & sleep 0.3; "${process.execPath}" -e '${probe}'`], { encoding: 'utf8' });
    expect(other.stdout).toBe('false');
  });
});
