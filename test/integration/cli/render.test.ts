// Pure rendering and parsing helpers of the CLI (no child process needed).
import { describe, expect, it } from 'vitest';
import { escapeControl, fitCell, toJsonLine } from '../../../src/cli/render/escape';
import { renderTable } from '../../../src/cli/render/table';
import { renderFindingDetail } from '../../../src/cli/render/findings';
import { makeFinding } from '../../unit/store/fixtures';
import { parseTimeSpec } from '../../../src/cli/commands/findings';

describe('escapeControl', () => {
  it('escapes C0, DEL, C1, backslash, bidi and lone surrogates visibly; leaves other text alone', () => {
    expect(escapeControl('plain /usr/bin/curl é 日本 😀')).toBe('plain /usr/bin/curl é 日本 😀');
    expect(escapeControl('a\u001b[31mb')).toBe('a\\x1b[31mb');
    expect(escapeControl('l1\nl2\r\t')).toBe('l1\\nl2\\r\\t');
    expect(escapeControl('\u0000\u007f\u009b')).toBe('\\x00\\x7f\\u009b');
    expect(escapeControl('back\\slash')).toBe('back\\\\slash');
    expect(escapeControl('\u202eevil\u2066')).toBe('\\u202eevil\\u2066');
    expect(escapeControl('x\ud800y\udc00')).toBe('x\\ud800y\\udc00');
  });
});

describe('fitCell', () => {
  it('keeps short values and cuts long ones with the number of bytes left out', () => {
    expect(fitCell('short', 10)).toBe('short');
    const cut = fitCell('A'.repeat(65536), 40);
    expect(cut).toBe('A'.repeat(25) + '…[+65511 bytes]');
    expect(cut.length).toBeLessThanOrEqual(40);
  });

  it('never cuts inside an escape sequence', () => {
    // Budget 38 - 13 (marker) = 25 characters: the 4-character "\x1b" starting at 23 does not fit whole.
    const cut = fitCell('abcdefghijklmnopqrstuvw\u001bxyz'.repeat(10), 38);
    expect(cut).toBe('abcdefghijklmnopqrstuvw…[+247 bytes]');
    expect(fitCell('abcdefghijklmnopqrstuvw\u001bxyz'.repeat(10), 40)).toBe('abcdefghijklmnopqrstuvw\\x1b…[+246 bytes]');
  });
});

describe('toJsonLine', () => {
  it('is valid JSON with the same value and no raw terminal controls', () => {
    const v = { s: 'a\u001b[2J\u009b\u202e\n\ud800' };
    const line = toJsonLine(v);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(line)).toEqual(v);
  });
});

describe('renderTable', () => {
  it('aligns columns and never lets a cell add a line', () => {
    const out = renderTable(
      [
        { header: 'A', max: 5 },
        { header: 'B', max: 20 },
      ],
      [
        ['x\ny', 'one'],
        ['long value here', 'two'],
      ],
    );
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^x\\ny\s+one$/);
  });

  it('narrows the last column to the terminal width, but not below its minimum', () => {
    const cols = [
      { header: 'ID', max: 10 },
      { header: 'PROCESS', max: 80 },
    ];
    const rows = [['abc', 'p'.repeat(200)]];
    const narrow = renderTable(cols, rows, { width: 60 }).trimEnd().split('\n');
    for (const l of narrow) expect(l.length).toBeLessThanOrEqual(60);
    expect(narrow[1]).toMatch(/…\[\+\d+ bytes\]$/);
    const tiny = renderTable(cols, rows, { width: 10, minLastWidth: 24 }).trimEnd().split('\n');
    expect(tiny[1]!.length).toBeLessThanOrEqual(3 + 2 + 24);
    expect(tiny[1]).toMatch(/^abc {2}p{11}…\[\+189 bytes\]$/);
  });
});

describe('parseTimeSpec', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  it('understands durations, dates (UTC) and ISO times', () => {
    expect(parseTimeSpec('--since', '30m', now)).toBe(now - 30 * 60_000);
    expect(parseTimeSpec('--since', '1h', now)).toBe(now - 3_600_000);
    expect(parseTimeSpec('--since', '2d', now)).toBe(now - 2 * 86_400_000);
    expect(parseTimeSpec('--since', '2026-11-01', now)).toBe(Date.parse('2026-11-01T00:00:00Z'));
    expect(parseTimeSpec('--since', '2026-11-01T10:00:00Z', now)).toBe(Date.parse('2026-11-01T10:00:00Z'));
    expect(parseTimeSpec('--since', '2026-11-01T10:00', now)).toBe(Date.parse('2026-11-01T10:00:00Z'));
    expect(parseTimeSpec('--since', '2026-11-01T10:00:00+02:00', now)).toBe(Date.parse('2026-11-01T08:00:00Z'));
  });
  it('rejects anything else naming the flag', () => {
    for (const bad of ['', 'yesterday', '1y', '2026-02-30', '2026-11-01Tbad', '-1h']) {
      expect(() => parseTimeSpec('--until', bad, now)).toThrow(/^--until: cannot understand/);
    }
  });
});

describe('renderFindingDetail', () => {
  it('quotes arguments with spaces or quotes, escaping each exactly once', () => {
    const f = makeFinding({ argv: ['sh', '-c', 'echo "hi" \u001b', 'a\\b', ''] });
    const argvLine = renderFindingDetail(f).split('\n').find((l) => l.startsWith('  argv'))!;
    expect(argvLine).toBe('  argv      sh -c "echo \\"hi\\" \\x1b" a\\\\b ""');
  });
});
