/**
 * `replay --jobs N` (replay-parallel.ts): what the parent makes of its workers' summaries, and the
 * input size the default --jobs decides on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inputBytes, parallelMinBytes, sumSummaries } from '../../../src/cli/commands/replay-parallel';
import { sumNativeCounts, type NativeFindingsCounts } from '../../../src/cli/commands/replay-findings';
import type { EventsSummary } from '../../../src/cli/commands/replay';
import type { ReassemblerStats } from '../../../src/audit/reassembler';

/** A summary whose every counter is `n` (so a sum shows which were added). */
function summary(n: number, over: Partial<EventsSummary> = {}): EventsSummary {
  const keys: (keyof ReassemblerStats)[] = ['records', 'events', 'incomplete', 'evicted', 'parseErrors', 'serialGaps', 'lateRecords', 'decodeErrors', 'uringEvents', 'uringUnknownOps', 'argvCutEvents', 'argvCutArgs', 'argvCutBytes'];
  const stats = Object.fromEntries(keys.map((k) => [k, n])) as unknown as ReassemblerStats;
  return { stats, src: { overlong: n, lines: n }, failures: [], unusable: [], native: { native: n, fallback: 10 * n }, ...over };
}

describe('replay --jobs: the workers\' --events summaries summed', () => {
  it('adds every counter and the native scanner\'s counts', () => {
    const s = sumSummaries([summary(1), summary(2), summary(4)], ['a', 'b', 'c']);
    for (const v of Object.values(s.stats)) expect(v).toBe(7);
    expect(s.src).toEqual({ overlong: 7, lines: 7 });
    expect(s.native).toEqual({ native: 7, fallback: 70 });
  });

  it('has no native line when a worker ran on the TypeScript path (its counts are not the scanner\'s)', () => {
    expect(sumSummaries([summary(1), summary(2, { native: null })], ['a', 'b']).native).toBeNull();
  });

  it('lists the unreadable files in command-line order (stdin as given), and keeps the first 5 parse failures in stream order', () => {
    const s = sumSummaries(
      [
        summary(1, { unusable: [{ file: '/c', what: 'x' }], failures: ['f1', 'f2', 'f3'] }),
        summary(1, { unusable: [{ file: 'stdin', what: 'y' }, { file: '/a', what: 'z' }], failures: ['g1', 'g2', 'g3'] }),
      ],
      ['/a', '-', '/b', '/c'],
    );
    expect(s.unusable.map((u) => u.file)).toEqual(['/a', 'stdin', '/c']);
    expect(s.failures).toEqual(['f1', 'f2', 'f3', 'g1', 'g2']);
  });
});

describe('replay --jobs: the workers\' native findings counts summed', () => {
  const keys: (keyof NativeFindingsCounts)[] = ['fallback', 'triagePassed', 'triageUnsure', 'noted', 'native', 'notesAgain', 'badNotes', 'repeats', 'repeatTemplates', 'repeatEvictions', 'repeatSkipped', 'repeatsCollapsed', 'repeatsExpanded', 'repeatsLost'];
  const counts = (n: number): NativeFindingsCounts => Object.fromEntries(keys.map((k) => [k, n])) as unknown as NativeFindingsCounts;
  it('adds every count, and is null when any worker had no scanner (or there were none)', () => {
    expect(sumNativeCounts([counts(1), counts(2)])).toEqual(counts(3));
    expect(sumNativeCounts([counts(1), null])).toBeNull();
    expect(sumNativeCounts([])).toBeNull();
  });
});

describe('replay --jobs: the input size the default decides on', () => {
  it('is a plain file\'s size, a gzip\'s uncompressed size (from its trailer), and unknown (infinite) with stdin', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-size-'));
    const text = 'type=SYSCALL msg=audit(1.000:1): x\n'.repeat(2000);
    const plain = path.join(dir, 'audit.log');
    const gz = path.join(dir, 'audit.log.1.gz');
    writeFileSync(plain, text);
    writeFileSync(gz, gzipSync(text));
    expect(inputBytes([plain])).toBe(text.length);
    expect(inputBytes([plain, gz])).toBe(2 * text.length);
    expect(inputBytes([plain, '-'])).toBe(Number.POSITIVE_INFINITY);
  });

  it('does not open, let alone read, what is not a regular file (a FIFO: its open would wait for a writer, a read would take its bytes)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-size-'));
    const fifo = path.join(dir, 'audit.fifo');
    execFileSync('mkfifo', [fifo]);
    // An open of a FIFO with no writer blocks this process: the test would hang rather than pass.
    expect(inputBytes([fifo])).toBe(Number.POSITIVE_INFINITY);
    expect(inputBytes([dir])).toBe(Number.POSITIVE_INFINITY);
  });

  it('a gzip whose trailer says less than its own size (over 4 GiB, wrapped) counts its compressed size', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-jobs-size-'));
    const gz = gzipSync(Buffer.from('x'.repeat(100)));
    gz.writeUInt32LE(1, gz.length - 4); // ISIZE mod 2^32 come round to 1
    const file = path.join(dir, 'big.gz');
    writeFileSync(file, gz);
    expect(inputBytes([file])).toBe(gz.length);
  });

  it('the threshold is 256 MiB unless CREDWATCH_REPLAY_JOBS_MIN_BYTES says otherwise (a non-negative integer)', () => {
    expect(parallelMinBytes({})).toBe(256 * 2 ** 20);
    expect(parallelMinBytes({ CREDWATCH_REPLAY_JOBS_MIN_BYTES: '0' })).toBe(0);
    expect(parallelMinBytes({ CREDWATCH_REPLAY_JOBS_MIN_BYTES: '-1' })).toBe(256 * 2 ** 20);
    expect(parallelMinBytes({ CREDWATCH_REPLAY_JOBS_MIN_BYTES: 'x' })).toBe(256 * 2 ** 20);
  });
});
