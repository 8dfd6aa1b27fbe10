/**
 * `credwatch collector` as an operator runs it (a child process of bin/credwatch; needs a build):
 * refuses to start without TLS (exit 2, clear message), serves HTTPS, stops cleanly on SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/collector/auth';
import { makeTestPki, type TestPki } from '../../helpers/tls';
import { makeFinding, waitFor } from '../../unit/ship/support';

const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'bin/credwatch');
const built = existsSync(join(ROOT, 'dist/src/cli/commands/collector.js'));
if (!built) console.warn('collector CLI tests skipped: dist/ is not built (run npx tsc -p tsconfig.build.json first)');

let pki: TestPki;
let dir: string;
beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'credwatch-collector-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

function writeConfig(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

describe.skipIf(!built)('credwatch collector (CLI)', () => {
  it('exits 2 with a clear message when TLS is not configured', () => {
    const cfg = writeConfig('no-tls.yaml', `listen: 127.0.0.1:18443\nagents:\n  - agent: a\n    token_sha256: '${'0'.repeat(64)}'\n`);
    const r = spawnSync(process.execPath, [BIN, 'collector', '--config', cfg], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/TLS is required/);
  });

  it('exits 2 naming the key file when it cannot be read', () => {
    const cfg = writeConfig('bad-key.yaml', `tls:\n  cert_file: ${pki.server.certFile}\n  key_file: /nonexistent/collector.key\nagents:\n  - agent: a\n    token_sha256: '${'0'.repeat(64)}'\n`);
    const r = spawnSync(process.execPath, [BIN, 'collector', '--config', cfg], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('/nonexistent/collector.key');
  });

  it('serves HTTPS, ingests, and exits 0 on SIGTERM', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const token = 'cli-test-token-0123456789abcdef';
    const cfg = writeConfig(
      'ok.yaml',
      `listen: 127.0.0.1:${port}\ntls:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\nagents:\n  - agent: a\n    token_sha256: ${sha256Hex(token)}\nstorage:\n  path: ${join(dir, 'state', 'collector.db')}\n`,
    );
    const proc = spawn(process.execPath, [BIN, 'collector', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    try {
      await waitFor(() => out.includes('collector listening'), 15_000, 'collector listening');
      const agent = new Agent({ connect: { ca: pki.ca } });
      const res = await request(`https://127.0.0.1:${port}/v1/findings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        body: `${JSON.stringify(makeFinding())}\n`,
        dispatcher: agent,
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ accepted: 1, replaced: 0, duplicates: 0 });
      await agent.close();
      expect(out).not.toContain(token);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('collector stopped');
    // Log lines name their level (journalctl, grep and log shippers read "info", not 30).
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: unknown; msg: string });
    expect(lines.find((l) => l.msg === 'collector stopped')?.level).toBe('info');
    expect(lines.every((l) => typeof l.level === 'string')).toBe(true);
  });
});
