/**
 * `credwatch replay` of io_uring events recorded on the lab (test/fixtures/audit/recorded/
 * credwatch-lab-io_uring.log): URINGOP opens and connects feed the same rules as open/connect, and
 * an op number we do not know is reported on stderr, not dropped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/model/finding';
import { FIXTURE_DIR } from '../../unit/audit/fixtures';

const ROOT = path.resolve(__dirname, '../../..');
const LOG = path.join(FIXTURE_DIR, 'recorded/credwatch-lab-io_uring.log');

function replay(args: string[]) {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', ...args], { encoding: 'utf8' });
}

const built = existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
if (!built) console.warn('[skip] replay io_uring tests: no build (npm run build:ts)');

describe.skipIf(!built)('credwatch replay: io_uring', () => {
  it('io_uring openat of a pod token, of a node credential, and a connect to docker.sock give H3, H4, H7', () => {
    const r = replay(['--json', LOG]);
    expect(r.status, r.stderr).toBe(0);
    const fs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Finding);
    const by = (serial: string) => fs.find((f) => f.evidence[0]?.event_id.endsWith(`:${serial}`));
    expect(by('4077')?.rule).toBe('h3-kubelet-pod-volume-harvest');
    expect(by('4077')?.object).toMatchObject({ class: 'pod-token', pod_uid: '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35', via: 'key' });
    expect(by('4078')?.rule).toBe('h7-runtime-socket-connect');
    // a worker op (no SYSCALL, no exe): the exe comes from the process table (same pid, earlier event)
    expect(by('4079')?.rule).toBe('h4-node-credential-read');
    expect(by('4079')?.process?.exe).toBe('/tmp/uring-read');
    expect(fs).toHaveLength(3);
    // the unknown op is summarised on stderr even without --stats
    expect(r.stderr).toContain('4 io_uring ops (1 of unknown op numbers)');
  });

  it('--events keeps the unknown op as an event with its problem', () => {
    const r = replay(['--events', LOG]);
    expect(r.status, r.stderr).toBe(0);
    const evs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { serial: number; problems?: string[]; uring?: { op: number } });
    expect(evs).toHaveLength(4);
    expect(evs.find((e) => e.serial === 4080)).toMatchObject({ uring: { op: 250 }, problems: ['uringop: unknown io_uring op 250'] });
    expect(r.stderr).toContain('1 io_uring op of unknown op number');
  });
});
