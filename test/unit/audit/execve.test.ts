import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { encodeSurrogateEscaped } from '../../../src/audit/bytes';
import { reassembleLines } from './fixtures';

const H = (b: Buffer | string): string => Buffer.from(b as Buffer).toString('hex').toUpperCase();
const SYSCALL = (serial: number): string =>
  `type=SYSCALL msg=audit(1700000000.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=2 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="t" exe="/t" key="credwatch:exec"`;
const EXECVE = (serial: number, body: string): string => `type=EXECVE msg=audit(1700000000.000:${serial}): ${body}`;
const EOE = (serial: number): string => `type=EOE msg=audit(1700000000.000:${serial}): `;

function one(lines: string[]): AuditEvent {
  const { events, stats } = reassembleLines(lines);
  expect(stats.parseErrors).toBe(0);
  expect(events).toHaveLength(1);
  return events[0]!;
}

describe('argv reconstruction', () => {
  it('quoted and hex-encoded arguments (spaces, quotes, newline, tab, UTF-8, invalid UTF-8, empty)', () => {
    const args = [Buffer.from('/bin/echo'), Buffer.from('a b'), Buffer.from('say "hi"'), Buffer.from('l1\nl2\t'), Buffer.from('grüße'), Buffer.from([0x41, 0xff, 0x42]), Buffer.alloc(0)];
    const body = `argc=${args.length} ` + args.map((a, i) => (i === 0 ? `a0="${a.toString()}"` : i === 6 ? `a6=""` : `a${i}=${H(a)}`)).join(' ');
    const ev = one([SYSCALL(1), EXECVE(1, body), EOE(1)]);
    const argv = ev.process!.argv!;
    expect(argv.map((a) => encodeSurrogateEscaped(a))).toEqual(args);
    expect(argv[5]).toBe('A\udcffB');
    expect(ev.problems).toBeUndefined();
  });

  it('joins aN[k] chunks across records in numeric order even when records arrive shuffled', () => {
    const big = Buffer.from('€'.repeat(5000)); // 15000 bytes; a 3-byte character straddles the chunk cut
    const hex = H(big);
    // Cut at 3750-byte boundaries: 3750 is not a multiple of 3, so a character is split.
    const cuts = [0, 7500, 15000, 22500, hex.length];
    const c = cuts.slice(0, -1).map((s, i) => hex.slice(s, cuts[i + 1]));
    const recs = [
      EXECVE(2, `argc=3 a0="x" a1_len=${hex.length} a1[0]=${c[0]}`),
      EXECVE(2, `a1[1]=${c[1]}`),
      EXECVE(2, `a1[2]=${c[2]}`),
      EXECVE(2, `a1[3]=${c[3]} a2="end"`),
    ];
    const ordered = one([SYSCALL(2), ...recs, EOE(2)]);
    const shuffled = one([recs[2]!, SYSCALL(2), recs[3]!, recs[0]!, recs[1]!, EOE(2)]);
    expect(ordered.process!.argv).toEqual(['x', '€'.repeat(5000), 'end']);
    expect(shuffled.process!.argv).toEqual(ordered.process!.argv);
    expect(ordered.problems).toBeUndefined();
  });

  it('accepts quoted chunks and a byte-count aN_len (older kernels)', () => {
    const ev = one([SYSCALL(3), EXECVE(3, 'argc=2 a0="x" a1_len=6 a1[0]="abc"'), EXECVE(3, 'a1[1]="def"'), EOE(3)]);
    expect(ev.process!.argv).toEqual(['x', 'abcdef']);
    expect(ev.problems).toBeUndefined();
  });

  it('flags a length mismatch, a missing chunk and a missing argument without throwing', () => {
    const ev = one([SYSCALL(4), EXECVE(4, 'argc=4 a0="x" a1_len=10 a1[0]=4142 a3="z"'), EXECVE(4, 'a2_len=4 a2[1]=4344'), EOE(4)]);
    expect(ev.process!.argv).toEqual(['x', 'AB', 'CD', 'z']);
    // a2_len=4 matches the 4 hex digits that did arrive, so only the missing chunk 0 is reported.
    expect(ev.problems).toEqual(['argv: a1 has 2 bytes (4 as written) but a1_len=10', 'argv: a2 has missing chunks']);
  });

  it('reports a missing first EXECVE record (no argc)', () => {
    const ev = one([SYSCALL(5), EXECVE(5, 'a1="b"'), EOE(5)]);
    expect(ev.process!.argv).toEqual(['', 'b']);
    expect(ev.problems).toEqual(expect.arrayContaining(['argv: no argc (first EXECVE record missing)', 'argv: a0 missing']));
  });
});
