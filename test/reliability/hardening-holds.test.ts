/**
 * The hardening others built, checked from the outside as an operator meets it (no kernel needed:
 * every case is refused before the daemon touches audit):
 *  - `credwatch run` refuses a config holding a token that is world-readable, and a group- or
 *    world-writable config (exit 2, naming the problem and the fix);
 *  - it refuses a state directory or database that is group/world-writable (exit 1 or 2, named);
 *  - the database it creates is 0600 in a 0700 directory.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store';
import { CREDWATCH_BIN, REPO_ROOT } from './daemon';

const built = fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js'));
if (!built) console.log('skipping CLI hardening checks: dist/ is not built');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-hardening-'));
  dirs.push(d);
  return d;
}
function run(cfg: string): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [CREDWATCH_BIN, 'run', '--config', cfg], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NOTIFY_SOCKET: '' } });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe.skipIf(!built)('hardening holds', () => {
  it('refuses a world-readable config that holds a token', () => {
    const d = tempDir();
    const cfg = path.join(d, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${d}/s/findings.db\nship:\n  - name: c\n    type: collector\n    url: https://127.0.0.1:1\n    token: very-secret-token-value-123\n`);
    fs.chmodSync(cfg, 0o644);
    const r = run(cfg);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/readable by group or others/);
    expect(r.stderr + r.stdout).not.toContain('very-secret-token-value-123');
  });

  it('refuses a group-writable config', () => {
    const d = tempDir();
    const cfg = path.join(d, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${d}/s/findings.db\n`);
    fs.chmodSync(cfg, 0o664);
    const r = run(cfg);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/group- or world-writable/);
  });

  it('the store refuses a world-writable state directory and creates 0600 in 0700', () => {
    const d = tempDir();
    const state = path.join(d, 'state');
    fs.mkdirSync(state);
    fs.chmodSync(state, 0o777);
    expect(() => openStore(path.join(state, 'findings.db'))).toThrow(/group- or world-writable/);
    const good = path.join(d, 'good', 'findings.db');
    const s = openStore(good);
    s.close();
    expect(fs.statSync(good).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(good)).mode & 0o777).toBe(0o700);
  });
});
