import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineSplitter, logLineHeader, readAuditLogStream, type LogRecord } from '../../../src/sources/auditlog';

async function collect(chunks: Buffer[]): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const batch of readAuditLogStream(Readable.from(chunks))) out.push(...batch);
  return out;
}

describe('auditd log source', () => {
  it('reads type, node and text per line, across arbitrary chunk boundaries, without a final newline', async () => {
    const text =
      'node=h1 type=SYSCALL msg=audit(1.000:1): syscall=59\n' + 'type=UNKNOWN[1327] msg=audit(1.000:1): proctitle=6C73\n\n' + 'type=EOE msg=audit(1.000:1): ';
    const whole = Buffer.from(text);
    for (let cut = 1; cut < whole.length; cut += 7) {
      const recs = await collect([whole.subarray(0, cut), whole.subarray(cut)]);
      expect(recs.map((r) => [r.type, r.node])).toEqual([
        [1300, 'h1'],
        [1327, null],
        [1320, null],
      ]);
      expect(recs[2]!.text).toBe('type=EOE msg=audit(1.000:1): ');
    }
  });

  it('keeps invalid UTF-8 bytes as surrogate escapes', async () => {
    const recs = await collect([Buffer.concat([Buffer.from('type=USER msg=audit(1.000:1): x='), Buffer.from([0xff]), Buffer.from('\n')])]);
    expect(recs[0]!.text.endsWith('x=\udcff')).toBe(true);
  });

  it('skips and counts lines longer than the limit, without losing the next line', () => {
    const s = new LineSplitter(100);
    const out: string[] = [];
    s.push(Buffer.from('a'.repeat(60)), out);
    s.push(Buffer.from('b'.repeat(60)), out);
    s.push(Buffer.from('c\nnext\n'), out);
    s.end(out);
    expect(out).toEqual(['next']);
    expect(s.stats.overlongLines).toBe(1);
  });

  it('handles a 300 KB line-heavy input in 1-byte-aligned odd chunks', async () => {
    const line = 'type=EXECVE msg=audit(1.000:1): a1[0]=' + '30'.repeat(3750) + '\n';
    const whole = Buffer.from(line.repeat(40));
    const chunks: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 4093) chunks.push(whole.subarray(i, i + 4093));
    const recs = await collect(chunks);
    expect(recs).toHaveLength(40);
    expect(recs.every((r) => r.text === line.slice(0, -1))).toBe(true);
  });

  it('parses the header of odd lines without throwing', () => {
    expect(logLineHeader('garbage')).toEqual({ type: 0, node: null });
    expect(logLineHeader('node=x')).toEqual({ type: 0, node: null });
    expect(logLineHeader('type=NOT_A_TYPE msg=audit(1.000:1):')).toEqual({ type: 0, node: null });
  });
});
