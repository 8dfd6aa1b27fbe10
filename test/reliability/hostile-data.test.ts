/**
 * Hostile data in events must not break the CLI table, the JSON output or the daemon's logs, and
 * must not make a finding carry megabytes.
 *  - boundArgv (unit): each argument at most 4096 characters + `…[+N bytes]`, at most 256 arguments.
 *  - live, through the real daemon: curl run via a symlink whose name holds ESC[31m and a newline
 *    (so comm is hostile), with a 64 KiB URL argument that is also the trigger (a Docker API call over
 *    TCP). Then: `credwatch findings` prints one table row per finding and no raw control
 *    characters; `--json` lines parse and carry the bounded argument; `credwatch show` has no raw
 *    control characters; every line the daemon logged is valid JSON.
 *  - live, the size cap: the same call with a 64 KiB argument of two-byte characters under `storage.max_finding_kb: 8` gives a finding
 *    cut under 8 KiB and marked `truncated`, counted on the `status` size-bounds line and in /metrics.
 * Run the live part under the lab lock: flock /tmp/credwatch-lab.lock npx vitest run test/reliability/hostile-data.test.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boundArgv, MAX_ARG_CHARS, MAX_ARGS } from '../../src/detect/bound';
import type { Finding } from '../../src/model/finding';
import { cli, freeLoopbackPort, kernelSkipReason, kernelSnapshot, restoreKernel, startDaemon, waitUntil } from './daemon';

// Any C0 control character other than the newline ending a line, or DEL / CSI: must never be printed raw.
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f\x9b]/;

describe('boundArgv', () => {
  it('leaves ordinary argv untouched (same array)', () => {
    const argv = ['curl', '-s', 'http://x'];
    expect(boundArgv(argv)).toBe(argv);
    expect(boundArgv(null)).toBeNull();
  });

  it('cuts a long argument with a marker giving the bytes cut', () => {
    const long = 'a'.repeat(MAX_ARG_CHARS) + 'é'.repeat(10); // 10 two-byte characters past the cut
    const [out] = boundArgv([long]) as [string];
    expect(out).toBe(`${'a'.repeat(MAX_ARG_CHARS)}…[+20 bytes]`);
  });

  it('never splits a surrogate pair and counts escaped bytes exactly', () => {
    const arg = 'b'.repeat(MAX_ARG_CHARS - 1) + '😀' + '\udcff'.repeat(3);
    const [out] = boundArgv([arg]) as [string];
    expect(out.startsWith('b'.repeat(MAX_ARG_CHARS - 1) + '…')).toBe(true);
    expect(out).toMatch(/…\[\+7 bytes\]$/); // 4 for the emoji + 3 raw bytes
  });

  it('keeps at most MAX_ARGS arguments and says how many were left out', () => {
    const argv = Array.from({ length: MAX_ARGS + 10 }, (_, i) => `x${i}`);
    const out = boundArgv(argv) as string[];
    expect(out.length).toBe(MAX_ARGS + 1);
    expect(out[MAX_ARGS]).toBe('…[+10 args]');
  });
});

const skip = kernelSkipReason() ?? (spawnSync('sh', ['-c', 'command -v curl']).status !== 0 ? 'curl missing' : null);
if (skip) console.log(`skipping the live hostile-data test: ${skip}`);

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A daemon on a fresh database (storage keys added from `storage`), stopped and the kernel restored afterwards. */
async function liveDaemon(storage = ''): Promise<{ before: ReturnType<typeof kernelSnapshot>; dir: string; db: string; port: number; d: Awaited<ReturnType<typeof startDaemon>> }> {
  const before = kernelSnapshot();
  cleanup.push(() => restoreKernel(before));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-hostile-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'findings.db');
  const cfg = path.join(dir, 'config.yaml');
  const port = await freeLoopbackPort();
  fs.writeFileSync(cfg, `storage:\n  path: ${db}\n${storage}metrics:\n  listen: 127.0.0.1:${port}\n`, { mode: 0o600 });
  const d = await startDaemon(cfg);
  cleanup.push(async () => {
    if (!d.hasExited()) await d.stop('SIGTERM');
  });
  return { before, dir, db, port, d };
}

describe('hostile process name and 64 KiB argument, live', () => {
  it.skipIf(skip !== null)('CLI table, --json, show and the daemon log stay intact; argv is bounded', async () => {
    const { before, dir, db, d } = await liveDaemon();
    const evilName = '\x1b[31mred\nline';
    const evil = path.join(dir, evilName);
    fs.symlinkSync('/usr/bin/curl', evil);
    const url = `http://127.0.0.1:2375/version?pad=${'A'.repeat(64 * 1024)}`;
    spawnSync(evil, ['-s', '--max-time', '3', '-o', '/dev/null', url], { stdio: 'ignore' });
    let findings: Finding[] = [];
    await waitUntil('the hostile finding', () => {
      const r = cli(['findings', '--db', db, '--json']);
      findings = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Finding);
      return findings.some((f) => f.process?.argv?.some((a) => a.startsWith('http://127.0.0.1:2375/version')));
    }, 20_000, 300);
    const stop = await d.stop('SIGTERM');
    expect(stop.code).toBe(0);

    // The finding: hostile comm kept (escaped only on output), argument bounded with its marker.
    const f = findings.find((x) => x.process?.argv?.some((a) => a.startsWith('http://127.0.0.1:2375/version'))) as Finding;
    expect(f.process?.comm).toBe(evilName.slice(0, 15));
    const arg = f.process?.argv?.find((a) => a.startsWith('http://')) as string;
    expect(arg.length).toBeLessThan(MAX_ARG_CHARS + 40);
    expect(arg).toMatch(/…\[\+\d+ bytes\]$/);
    const cut = Number(/\+(\d+) bytes/.exec(arg)?.[1]);
    // What is kept plus what the marker counts is the whole URL (the process table keeps a connect's
    // argv within its own 4 KiB budget, shared with the other arguments, so the head may be shorter).
    const keptChars = arg.length - (/…\[\+\d+ bytes\]$/.exec(arg)?.[0].length ?? 0);
    expect(keptChars).toBeLessThanOrEqual(MAX_ARG_CHARS);
    expect(cut + keptChars).toBe(url.length);
    // The evidence does not carry the 64 KiB either (split EXECVE records are re-rendered bounded).
    expect(JSON.stringify(f.evidence).length).toBeLessThan(40_000);

    // CLI table: one line per finding plus the header, no raw control characters.
    const table = cli(['findings', '--db', db]);
    expect(table.status).toBe(0);
    expect(RAW_CONTROL.test(table.stdout)).toBe(false);
    expect(table.stdout.trimEnd().split('\n').length).toBe(findings.length + 1);
    // show: escaped, no raw control characters.
    const show = cli(['show', f.id.slice(0, 12), '--db', db]);
    expect(show.status, show.stderr).toBe(0);
    expect(RAW_CONTROL.test(show.stdout)).toBe(false);
    expect(show.stdout).toContain('curl');
    // --json: every line is one valid JSON object (checked above by parsing), no raw control chars.
    expect(RAW_CONTROL.test(cli(['findings', '--db', db, '--json']).stdout)).toBe(false);
    // The daemon's log: every stdout line is JSON; the hostile name appears only escaped.
    expect(d.rawLines.length).toBeGreaterThan(3);
    for (const line of d.rawLines) {
      expect(() => JSON.parse(line), line.slice(0, 200)).not.toThrow();
      expect(RAW_CONTROL.test(line)).toBe(false);
    }
    expect(kernelSnapshot()).toEqual(before);
  }, 90_000);
});

describe('the finding size cap in the daemon, live', () => {
  it.skipIf(skip !== null)('a finding over storage.max_finding_kb is stored cut and marked, and counted in status and /metrics', async () => {
    const { before, db, port, d } = await liveDaemon('  max_finding_kb: 8\n');
    // Two-byte characters: the argument (4096 kept) and its re-rendered EXECVE record (hex) pass 8 KiB.
    const url = `http://127.0.0.1:2375/version?pad=${'é'.repeat(32 * 1024)}`;
    spawnSync('curl', ['-s', '--max-time', '3', '-o', '/dev/null', url], { stdio: 'ignore' });
    let f: Finding | undefined;
    await waitUntil('the cut finding', () => {
      const r = cli(['findings', '--db', db, '--json']);
      f = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Finding).find((x) => x.process?.argv?.some((a) => a.startsWith('http://127.0.0.1:2375/version')));
      return f !== undefined;
    }, 20_000, 300);
    const found = f as Finding;
    expect(Buffer.byteLength(JSON.stringify(found))).toBeLessThanOrEqual(8 * 1024);
    expect(found.truncated?.original_bytes).toBeGreaterThan(8 * 1024);
    expect(found.truncated?.fields).toContain('process.argv');
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/^credwatch_findings_bounded_total\{kind="cut"\} [1-9]/m);
    await waitUntil('the status snapshot', () => /^size bounds: +[1-9]\d* findings cut/m.test(cli(['status', '--db', db]).stdout), 10_000, 500);
    const stop = await d.stop('SIGTERM');
    expect(stop.code).toBe(0);
    expect(kernelSnapshot()).toEqual(before);
  }, 90_000);
});
