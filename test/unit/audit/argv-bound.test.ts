import { describe, expect, it } from 'vitest';
import { ARG_HEAD_CHARS, ARG_MIN_CHARS, ARG_TAIL_CHARS, ARGV_KEEP_CHARS, PieceReader, headUnits, safePrefixEnd, safeSuffixStart, tailUnits } from '../../../src/audit/argv-bound';
import { decodeSurrogateEscaped, encodeSurrogateEscaped, escapedByteLength } from '../../../src/audit/bytes';
import type { AuditEvent } from '../../../src/audit/event';
import { Reassembler, REPLAY_REASSEMBLY } from '../../../src/audit/reassembler';
import { ruleCommandLine } from '../../../src/enrich/event-view';
import { ProcessTable } from '../../../src/enrich/process-table';
import { redactBoundedArgv } from '../../../src/detect/bound';
import { literalHaystack } from '../../../src/detect/linear-regex';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hostileExecLines } = require('../../../bench/hostile-exec.js') as { hostileExecLines: (e: { serial: number; argv: (string | Buffer)[]; exe?: string }) => string };

/** One exec built both ways (records as the kernel writes them: long arguments hex-chunked). */
function buildBoth(argv: (string | Buffer)[]): { exact: AuditEvent; bounded: AuditEvent; reassembler: Reassembler } {
  const lines = hostileExecLines({ serial: 7, argv, exe: '/usr/bin/python3' }).trimEnd().split('\n');
  const run = (mode: 'exact' | 'bounded'): { ev: AuditEvent; r: Reassembler } => {
    let ev: AuditEvent | null = null;
    const r = new Reassembler({ ...REPLAY_REASSEMBLY, argv: mode, onEvent: (e) => (ev = e) });
    for (const text of lines) r.push({ type: 0, text }, null);
    r.flush();
    return { ev: ev as unknown as AuditEvent, r };
  };
  const b = run('bounded');
  return { exact: run('exact').ev, bounded: b.ev, reassembler: b.r };
}

function bytesOf(n: number, f: (k: number) => number): Buffer {
  const b = Buffer.alloc(n);
  for (let k = 0; k < n; k++) b[k] = f(k);
  return b;
}

const SHAPES: Record<string, (i: number) => Buffer> = {
  ascii: (i) => bytesOf(120_000, (k) => 0x61 + ((k * 7 + i) % 26)),
  'not UTF-8': (i) => bytesOf(120_000, (k) => 0x80 + ((k * 31 + i) % 128)),
  'three-byte UTF-8 (a character straddles every chunk cut)': (i) => Buffer.from('€'.repeat(40_000 + i)),
  'four-byte UTF-8 (surrogate pairs)': (i) => Buffer.from('😀'.repeat(30_000 + i)),
  'random bytes': (i) => bytesOf(120_000, (k) => (Math.imul(k + 1, 2654435761 + i) >>> 13) & 0xff),
};

describe('bounded argv (src/audit/argv-bound.ts)', () => {
  for (const [name, make] of Object.entries(SHAPES)) {
    it(`${name}: each long argument keeps its exact head and tail, the exact byte count in the marker and in lengths`, () => {
      const big = Array.from({ length: 4 }, (_, i) => make(i));
      const { exact, bounded } = buildBoth(['/usr/bin/python3', '-c', ...big]);
      const ex = exact.process?.argv as string[];
      const bd = bounded.process?.argv as string[];
      expect(ex.map((a) => encodeSurrogateEscaped(a))).toEqual([Buffer.from('/usr/bin/python3'), Buffer.from('-c'), ...big]);
      expect(bd).toHaveLength(ex.length);
      const cut = bounded.process?.argvCut;
      expect(cut?.lengths).toEqual(ex.map((a) => encodeSurrogateEscaped(a).length));
      expect(cut?.args).toBe(4);
      let dropped = 0;
      for (let i = 2; i < ex.length; i++) {
        const head = headUnits(ex[i] as string, ARG_HEAD_CHARS);
        const tail = tailUnits(ex[i] as string, ARG_TAIL_CHARS);
        const n = (cut?.lengths[i] as number) - escapedByteLength(head) - escapedByteLength(tail);
        expect(bd[i]).toBe(`${head}…[+${n} bytes]…${tail}`);
        dropped += n;
      }
      expect(cut?.bytes).toBe(dropped);
      expect(bd.slice(0, 2)).toEqual(ex.slice(0, 2));
      expect(exact.process?.argvCut).toBeUndefined();
    });
  }

  it('what matching, the finding and the process table read is the same as from the exact argv', () => {
    for (const make of Object.values(SHAPES)) {
      const argv = ['sh', '-c', ...Array.from({ length: 12 }, (_, i) => make(i)), 'tail-arg'];
      const { exact, bounded } = buildBoth(argv);
      const ex = exact.process?.argv as string[];
      const bd = bounded.process?.argv as string[];
      const lengths = bounded.process?.argvCut?.lengths;
      // Matching sees the first and last MAX_MATCH_TEXT/2 characters of the command line.
      expect(literalHaystack(ruleCommandLine(bd) as string)).toBe(literalHaystack(ruleCommandLine(ex) as string));
      expect(redactBoundedArgv(bd, lengths)).toEqual(redactBoundedArgv(ex));
      const table = (argv: string[], cut?: AuditEvent['process']): readonly string[] | null => {
        const t = new ProcessTable();
        return t.observeProcess({ pid: 9, ppid: 1, exe: '/bin/sh', comm: 'sh', uid: 0, auid: null, tty: null, argv, cwd: '/', ...(cut?.argvCut ? { argvCut: cut.argvCut } : {}) })?.argv ?? null;
      };
      expect(table(bd, bounded.process)).toEqual(table(ex));
    }
  });

  it('never decodes what it does not keep: hex that is not hex in a middle chunk goes unread (the exact build reports it)', () => {
    const arg = Buffer.alloc(60_000, 0x61);
    const lines = hostileExecLines({ serial: 3, argv: ['x', arg] }).trimEnd().split('\n');
    // Chunk 4 (bytes 30,000..37,500) is in neither the head nor the tail: spoil its hex, length kept.
    const spoiled = lines.map((l) => (/ a1\[4\]=/.test(l) ? l.replace(/=6161/, '=ZZ61') : l));
    expect(spoiled).not.toEqual(lines);
    const run = (argvMode: 'exact' | 'bounded'): AuditEvent => {
      let ev: AuditEvent | null = null;
      const r = new Reassembler({ ...REPLAY_REASSEMBLY, argv: argvMode, onEvent: (e) => (ev = e) });
      for (const text of spoiled) r.push({ type: 0, text }, null);
      r.flush();
      return ev as unknown as AuditEvent;
    };
    expect(run('exact').problems?.join('\n')).toMatch(/a1\[4\] is not valid hex/);
    const b = run('bounded');
    expect(b.problems).toBeUndefined();
    expect(b.process?.argvCut?.lengths[1]).toBe(60_000);
    expect(b.process?.argv?.[1]).toBe(`${'a'.repeat(ARG_HEAD_CHARS)}…[+${60_000 - ARG_HEAD_CHARS - ARG_TAIL_CHARS} bytes]…${'a'.repeat(ARG_TAIL_CHARS)}`);
  });

  it('counts events, arguments and bytes cut in the reassembler stats', () => {
    const { reassembler } = buildBoth(['x', Buffer.alloc(20_000, 0x62), Buffer.alloc(30_000, 0x63), 'short']);
    expect(reassembler.stats.argvCutEvents).toBe(1);
    expect(reassembler.stats.argvCutArgs).toBe(2);
    expect(reassembler.stats.argvCutBytes).toBe(20_000 + 30_000 - 2 * (ARG_HEAD_CHARS + ARG_TAIL_CHARS));
    const whole = buildBoth(['x', Buffer.alloc(ARG_HEAD_CHARS + ARG_TAIL_CHARS, 0x62)]);
    expect(whole.reassembler.stats.argvCutEvents).toBe(0);
    expect(whole.bounded.process?.argvCut).toBeUndefined();
    expect(whole.bounded.process?.argv).toEqual(whole.exact.process?.argv);
  });

  it('past the whole-argv budget an argument keeps a short head; the arguments ending the command line keep their bound', () => {
    const n = Math.ceil(ARGV_KEEP_CHARS / (ARG_HEAD_CHARS + ARG_TAIL_CHARS)) + 4;
    const argv = ['x', ...Array.from({ length: n }, (_, i) => Buffer.alloc(12_000, 0x61 + (i % 26))), 'last'];
    const { exact, bounded } = buildBoth(argv);
    const bd = bounded.process?.argv as string[];
    const ex = exact.process?.argv as string[];
    const min = bd.filter((a) => a.endsWith(' bytes]') && a.length < ARG_MIN_CHARS + 30);
    expect(min.length).toBeGreaterThan(0);
    for (const a of min) expect(a).toMatch(new RegExp(`^(.)\\1{${ARG_MIN_CHARS - 1}}…\\[\\+${12_000 - ARG_MIN_CHARS} bytes\\]$`));
    // The last long argument and the short one after it: full bound.
    expect(bd[bd.length - 2]).toContain('…[+');
    expect((bd[bd.length - 2] as string).endsWith((ex[ex.length - 2] as string).slice(-ARG_TAIL_CHARS))).toBe(true);
    expect(bd[bd.length - 1]).toBe('last');
    expect(literalHaystack(ruleCommandLine(bd) as string)).toBe(literalHaystack(ruleCommandLine(ex) as string));
  });
});

describe('cutting decoded bytes without changing them (argv-bound.ts helpers)', () => {
  const samples = [Buffer.from('a€😀b'), Buffer.from([0xe2, 0x82]), Buffer.from([0xf0, 0x9f, 0x98, 0x80, 0x80, 0xff, 0xc3]), Buffer.from('ü'.repeat(5)), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x41])];
  it('a prefix cut at safePrefixEnd and a suffix from safeSuffixStart decode to a prefix / suffix of the whole', () => {
    for (const b of samples) {
      const whole = decodeSurrogateEscaped(b);
      for (let cut = 0; cut <= b.length; cut++) {
        expect(whole.startsWith(decodeSurrogateEscaped(b, 0, safePrefixEnd(b, cut)))).toBe(true);
        expect(whole.endsWith(decodeSurrogateEscaped(b, safeSuffixStart(b, cut)))).toBe(true);
      }
    }
  });

  it('reads a range across pieces of both encodings', () => {
    const text = `x="abc" y=${Buffer.from('défg').toString('hex')}`;
    const r = new PieceReader([
      { text, start: 3, end: 6, hex: false },
      { text, start: 10, end: text.length, hex: true },
    ]);
    expect(r.total).toBe(8);
    expect(r.bytes(2, 6)?.toString('utf8')).toBe('cdé');
    expect(r.head(4)).toBe('abcd');
    expect(r.tail(3)).toBe('éfg');
  });

  it('escapedByteLength is the length encodeSurrogateEscaped gives', () => {
    for (const s of ['', 'abc', 'é€😀', '\udc80\udcff', '\ud800x', 'x\udc00', '\ud83d\udc80', 'a\udcc3\udca9']) expect(escapedByteLength(s)).toBe(encodeSurrogateEscaped(s).length);
  });
});
