import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CMDLINE_KEEP_BYTES, createLiveProcReader } from '../../../src/enrich/proc-reader';

/** A fake /proc tree (the live reader takes its root): pid -> cmdline bytes. */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-proc-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let nextPid = 100;
function cmdline(bytes: string): string[] | null {
  const pid = nextPid++;
  fs.mkdirSync(path.join(root, String(pid)));
  fs.writeFileSync(path.join(root, String(pid), 'cmdline'), Buffer.from(bytes, 'latin1'));
  return createLiveProcReader(root).readCmdline(pid);
}

describe('the live /proc reader: cmdline read with bounded memory', () => {
  it('a cmdline within the bound comes back whole (with or without its final NUL)', () => {
    expect(cmdline('cat\0/run/secrets/token\0')).toEqual(['cat', '/run/secrets/token']);
    expect(cmdline('nginx: worker process')).toEqual(['nginx: worker process']);
    expect(cmdline('x'.repeat(CMDLINE_KEEP_BYTES - 1) + '\0')).toEqual(['x'.repeat(CMDLINE_KEEP_BYTES - 1)]);
    expect(cmdline('')).toBeNull();
  });

  it('an argument across the bound keeps its head and counts its bytes and the arguments after it exactly', () => {
    const head = 'a'.repeat(CMDLINE_KEEP_BYTES - 7);
    // 'curl\0' (5) + head and its NUL (4090) + 1 byte of 'B...' fit; the big argument has 3 MiB, then two more.
    const big = 'B'.repeat(3 * 2 ** 20);
    const got = cmdline(`curl\0${head}\0${big}\0-H\0x\0`)!;
    expect(got).toEqual(['curl', head, `B…[+${big.length - 1} bytes]`, '…[+2 args]']);
  });

  it('a cut that falls right after a NUL counts the arguments that follow, a last one without NUL too', () => {
    const first = 'p'.repeat(CMDLINE_KEEP_BYTES - 1);
    expect(cmdline(`${first}\0one\0two\0`)).toEqual([first, '…[+2 args]']);
    expect(cmdline(`${first}\0one\0tw`)).toEqual([first, '…[+2 args]']);
    expect(cmdline(`${first}\0${'z'.repeat(20000)}`)).toEqual([first, '…[+1 args]']);
  });

  it('a single argument longer than the bound, without NUL (setproctitle), is one cut argument', () => {
    const got = cmdline('t'.repeat(100_000))!;
    expect(got).toEqual([`${'t'.repeat(CMDLINE_KEEP_BYTES)}…[+${100_000 - CMDLINE_KEEP_BYTES} bytes]`]);
  });

  it('a missing process is null', () => {
    expect(createLiveProcReader(root).readCmdline(99_999)).toBeNull();
  });
});
