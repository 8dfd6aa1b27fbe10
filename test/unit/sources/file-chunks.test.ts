import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isPlainRegularFile, readAuditLog, readAuditLogStream, readFileChunks, type LogRecord } from '../../../src/sources/auditlog';
import { FIXTURE_DIR } from '../../unit/audit/fixtures';

async function collect(it: AsyncIterable<LogRecord[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of it) for (const r of batch) out.push(r.text);
  return out;
}

const dir = mkdtempSync(path.join(tmpdir(), 'credwatch-chunks-'));
const fixture = path.join(FIXTURE_DIR, 'recorded/debian-auditd-3.0.9-enriched.log');

describe('readFileChunks (one reused read buffer)', () => {
  it('gives the same records as whole-file reading, whatever the chunk size (lines cut across reads)', async () => {
    const want = readFileSync(fixture, 'utf8').split('\n').filter((l) => l !== '');
    for (const size of [1, 7, 100, 4096, 1 << 20]) {
      expect(await collect(readAuditLogStream(readFileChunks(fixture, size)))).toEqual(want);
    }
  });

  it('keeps invalid UTF-8 cut across reads exact (surrogate-escaped, as the stream path does)', async () => {
    const bytes = Buffer.concat([Buffer.from('type=USER msg=audit(1.000:1): a="'), Buffer.from([0xff, 0xc3]), Buffer.from('"\ntype=USER msg=audit(1.000:2): b=1\n')]);
    const p = path.join(dir, 'bad-utf8.log');
    writeFileSync(p, bytes);
    const viaStream = await collect(readAuditLogStream((async function* () { yield Buffer.from(bytes); })()));
    for (const size of [1, 3, 33, 34, 35]) expect(await collect(readAuditLogStream(readFileChunks(p, size)))).toEqual(viaStream);
  });
});

describe('readAuditLog input kinds', () => {
  it('reads plain files with readFileChunks, and gzip and named pipes through their stream', async () => {
    const plain = path.join(dir, 'plain.log');
    const gz = path.join(dir, 'log.gz');
    const fifo = path.join(dir, 'fifo');
    const text = readFileSync(fixture);
    writeFileSync(plain, text);
    writeFileSync(gz, gzipSync(text));
    execFileSync('mkfifo', [fifo]);
    expect(isPlainRegularFile(plain)).toBe(true);
    expect(isPlainRegularFile(gz)).toBe(false);
    expect(isPlainRegularFile(fifo)).toBe(false); // and sniffing it consumed nothing
    const want = await collect(readAuditLog(plain));
    expect(await collect(readAuditLog(gz))).toEqual(want);
    const writer = import('node:fs').then((fs) => fs.promises.writeFile(fifo, text));
    expect(await collect(readAuditLog(fifo))).toEqual(want);
    await writer;
  });
});
