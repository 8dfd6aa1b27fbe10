/**
 * One-stream replay of several nodes' records interleaved (a central auditd / audisp-remote log, or
 * --jobs 1): pids are only unique within a node, so each node has its own process state (process
 * table, shim index; src/enrich/enricher.ts), on the full TypeScript path and on the native fast path
 * (whose process notes are of the node the scanner last named in an `N` item).
 *
 * The log: pod-cat-token.log as node-a (a `runc exec` under pid 11146 starts pid 11155 `cat` in a
 * container, which reads the pod's token), and interleaved with it node-b, where pid 11146 is a host
 * `sleep` (a boring exec: a process note on the fast path) and pid 11155, its child, is a host `head`
 * reading a file of the same name. Before per-node state, node-b's head was attributed to node-a's
 * container with node-a's runc as its parent.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '../../..');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'));

interface Seen {
  host: string;
  pid: number;
  exe: string;
  container: string | null;
  parents: string[];
}

function replay(file: string, native: boolean): { findings: Seen[]; stderr: string } {
  const env = { ...process.env, CREDWATCH_REPLAY_NATIVE: native ? '1' : '0' };
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', '--json', '--stats', '--jobs', '1', file], { encoding: 'utf8', env });
  expect(r.status, r.stderr).toBe(0);
  const findings = r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = JSON.parse(l) as { host: string; container: { id: string } | null; process: { pid: number; exe: string; parents: { pid: number; exe: string }[] } };
      return { host: f.host, pid: f.process.pid, exe: f.process.exe, container: f.container?.id ?? null, parents: f.process.parents.map((p) => `${p.pid} ${p.exe}`) };
    });
  return { findings, stderr: r.stderr };
}

const CONTAINER = 'af54a767e6019c818daec3e1a8ed2787511f6aaf3b24cadbf5397fc6f761edf3';

function twoNodeLog(): string {
  const a = fs
    .readFileSync(path.join(ROOT, 'test/fixtures/behaviours/pod-cat-token.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^node=lab-node /, 'node=node-a '));
  const of = (serial: number): string[] => a.filter((l) => l.includes(`:${serial}): `));
  const onB = (lines: string[], ...edits: [RegExp, string][]): string[] =>
    lines.map((l) => edits.reduce((t, [re, to]) => t.replace(re, to), l.replace(/^node=node-a /, 'node=node-b ')));
  // node-b's pid 11146: a host sleep (parent 5000), then its child 11155, a host head reading the token.
  const sleep = onB(of(1444187), [/ ppid=10690 pid=11126 /, ' ppid=5000 pid=11146 ']);
  const head = onB([...of(1444223), ...of(1444224)], [/comm="cat" exe="\/usr\/bin\/cat"/, 'comm="head" exe="/usr/bin/head"'], [/a0="cat"/, 'a0="head"'], [/ uid=0 gid=0 /, ' uid=1000 gid=0 ']);
  // node-a up to its cat's open, then all of node-b, then the rest of node-a (its cat's open among it).
  const at = a.indexOf(of(1444224)[0]!);
  const lines = [...a.slice(0, at), ...sleep, ...head, ...a.slice(at)];
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cw-two-nodes-')), 'two-nodes.log');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe.skipIf(!built)('replay of two nodes interleaved in one stream', () => {
  const file = twoNodeLog();

  it('attributes a pid to its own node: node-a in its container under runc, node-b on the host under its sleep', () => {
    const { findings } = replay(file, false);
    const a = findings.filter((f) => f.host === 'node-a' && f.pid === 11155);
    const b = findings.filter((f) => f.host === 'node-b' && f.pid === 11155);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    for (const f of a) expect(f).toMatchObject({ exe: '/usr/bin/cat', container: CONTAINER, parents: ['11146 /usr/sbin/runc'] });
    for (const f of b) expect(f).toMatchObject({ exe: '/usr/bin/head', container: null, parents: ['11146 /usr/bin/sleep'] });
  });

  it('gives the same findings on the native path, where node-b sleep is a process note of node-b', () => {
    const fast = replay(file, true);
    const m = /native scanner: .* (\d+) triaged out as process notes/.exec(fast.stderr);
    expect(m, fast.stderr).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(fast.findings).toEqual(replay(file, false).findings);
  });
});
