/**
 * The command line the rules read is built bounded (event-view.ts boundedRuleCommandLine): past
 * 16 KiB it is its first and last 4 KiB around a cut marker. That must change cost only: every rule
 * reads the same text as from the whole line (linear-regex.ts matches a long text's first and last
 * MAX_MATCH_TEXT / 2 characters; argv_cut asks for its length; the incident key reads its first KiB).
 */
import { describe, expect, it } from 'vitest';
import { CMDLINE_END_CHARS, EventView, boundedRuleCommandLine, ruleCommandLine } from '../../../src/enrich/event-view';
import type { ProcessTable } from '../../../src/enrich/process-table';
import { makeEvent } from './helpers';
import { MAX_MATCH_TEXT, literalHaystack } from '../../../src/detect/linear-regex';

/** Deterministic PRNG (mulberry32), so a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'Z', ' ', '/proc/42/root', '/proc/self/root/', '/proc/7/task/8/root/x', '=', '"', '/proc/', '\ud83d\ude00', '\udc80', '\u2026', '/proc/3/environ', 'secrets'];

function randomArg(r: () => number, max: number): string {
  const len = Math.floor(r() ** 3 * max);
  let s = '';
  while (s.length < len) s += r() < 0.7 ? 'x'.repeat(1 + Math.floor(r() * 300)) : (PIECES[Math.floor(r() * PIECES.length)] as string);
  return s;
}

function randomArgv(seed: number): string[] {
  const r = rng(seed);
  const n = 1 + Math.floor(r() * 40);
  const argv = [r() < 0.5 ? '/usr/bin/curl' : '/proc/1/root/usr/bin/kubectl'];
  for (let i = 1; i < n; i++) argv.push(randomArg(r, r() < 0.2 ? 30_000 : 3000));
  return argv;
}

describe('the bounded command line the rules read', () => {
  it('has the ends the match bound keeps: CMDLINE_END_CHARS is MAX_MATCH_TEXT / 2', () => {
    expect(2 * CMDLINE_END_CHARS).toBe(MAX_MATCH_TEXT);
  });

  it('property: for 400 generated argvs (up to ~1 MB, /proc roots, surrogates, spaces) every rule reads the same text as from the whole line', () => {
    let bounded = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const argv = randomArgv(seed);
      const whole = ruleCommandLine(argv) as string;
      const b = boundedRuleCommandLine(argv) as string;
      if (b !== whole) bounded++;
      const at = `seed ${seed}`;
      expect(literalHaystack(b), at).toBe(literalHaystack(whole));
      expect(b.length > MAX_MATCH_TEXT, at).toBe(whole.length > MAX_MATCH_TEXT);
      expect(b.slice(0, 2048), at).toBe(whole.slice(0, 2048));
      expect(b.length, at).toBeLessThanOrEqual(4 * CMDLINE_END_CHARS);
    }
    // The generator must reach the bounded form often, or the property proves nothing about it.
    expect(bounded).toBeGreaterThan(50);
  });

  it('a long line says how much was left out: its ends and ` …[cut N chars] `', () => {
    const argv = ['/usr/bin/curl', 'h'.repeat(10_000), 'm'.repeat(10_000), 't'.repeat(10_000)];
    const b = boundedRuleCommandLine(argv) as string;
    const whole = ruleCommandLine(argv) as string;
    const cut = whole.length - 2 * CMDLINE_END_CHARS;
    expect(b).toBe(`${whole.slice(0, CMDLINE_END_CHARS)} …[cut ${cut} chars] ${whole.slice(-CMDLINE_END_CHARS)}`);
  });

  it('a /proc root prefix in an argument is stripped as in the whole line, also at an argument start', () => {
    const argv = ['/usr/bin/cat', '/proc/4242/root/run/secrets/token', 'x'.repeat(20_000), '--f=/proc/self/root/etc/shadow'];
    const b = boundedRuleCommandLine(argv) as string;
    expect(b.startsWith('cat /run/secrets/token ')).toBe(true);
    expect(b.endsWith(' --f=/etc/shadow')).toBe(true);
  });

  it('a short line is the whole line', () => {
    const argv = ['/usr/bin/cat', '/proc/1/root/var/run/secrets/kubernetes.io/serviceaccount/token'];
    expect(boundedRuleCommandLine(argv)).toBe(ruleCommandLine(argv));
    expect(boundedRuleCommandLine([])).toBeNull();
    expect(boundedRuleCommandLine(null)).toBeNull();
  });

  it('a /proc/<pid>/environ in the middle of a long argv (past what the bounded line keeps) still names its target', () => {
    const inContainer = { containerId: 'c'.repeat(64), runtime: 'containerd', podUid: null };
    // A table that knows one process, 77, in a container; the reader (pid 500) is on the node.
    const table = { get: () => undefined, parents: () => [], containerOf: () => null, containerOfTarget: (pid: number) => (pid === 77 ? inContainer : null) } as unknown as ProcessTable;
    const view = (argv: string[]): EventView =>
      new EventView(makeEvent({ syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 }, process: { pid: 500, ppid: 1, argv, exe: '/usr/bin/cat' } }), { table });
    const pad = 'p'.repeat(20_000);
    const middle = view(['/usr/bin/cat', pad, '/proc/77/environ', pad]);
    expect(middle.cmdline).not.toContain('/proc/77/environ');
    expect(middle.environOfOtherContainer).toBe(true);
    expect(view(['/usr/bin/cat', pad, '/proc/78/environ', pad]).environOfOtherContainer).toBe(false);
  });
});
