/**
 * The native `replay --events` scanner (native/replay_events.cc) against the TypeScript path it stands
 * in for (LineSplitter, Reassembler with REPLAY_REASSEMBLY, buildEvent, redactAuditEvent,
 * JSON.stringify): the same bytes out and the same counters, on every fixture, whatever the chunk
 * boundaries, and on hostile shapes (every issue-15 secret form, overlong and unterminated lines, each
 * parse failure, late records, reused serials, many nodes, bytes that are not UTF-8, numbers past what
 * a double holds). Also the plain-text predicate against redactText itself. No root, no socket.
 */
import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

import type { AuditEvent } from '../../../src/audit/event';
import { REPLAY_REASSEMBLY, Reassembler, type ReassemblerStats } from '../../../src/audit/reassembler';
import { NativeEventReplay, type NativeReplayResult } from '../../../src/cli/commands/replay-native';
import { eventLine as cliEventLine } from '../../../src/cli/commands/replay';
import { redactAuditEvent } from '../../../src/detect/redact/event';
import { PLAIN_TEXT_SPEC } from '../../../src/detect/redact/plain-spec';
import { redactText } from '../../../src/detect/redact';
import { readAuditLogStream, type LineSplitter } from '../../../src/sources/auditlog';
import { fixtureFiles } from '../../helpers/fixture-events';
import { fixtureFiles as auditFixtureFiles, fixtureStreams } from '../audit/fixtures';
import { tryLoadNative } from '../../helpers/native';
import { execLines, hostCaseLines, hostCases } from '../../helpers/secret-forms';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] native replay: ${reason}`);

/** What `replay --events` prints for an event TypeScript builds (Buffer for a huge non-UTF-8 argv). */
const eventLine = (ev: AuditEvent): string | Buffer => cliEventLine(ev, false);

/** The plain definition, to hold the CLI's line against. */
function plainEventLine(ev: AuditEvent): string {
  const red = redactAuditEvent(ev, { records: false });
  return JSON.stringify({ ...red, records: undefined }) + '\n';
}

interface Run {
  out: string;
  stats: ReassemblerStats;
  lines: number;
  overlong: number;
  failures: string[];
}

/** The TypeScript path over files given as lists of chunks. */
async function viaTypeScript(files: Buffer[][]): Promise<Run> {
  async function* each(chunks: Buffer[]): AsyncGenerator<Buffer> {
    yield* chunks;
  }
  let out = '';
  const failures: string[] = [];
  const r = new Reassembler({ ...REPLAY_REASSEMBLY, onEvent: (ev) => (out += plainEventLine(ev)), onParseError: (f) => failures.push(`${f.reason}: ${f.text}`) });
  let lines = 0;
  let overlong = 0;
  for (const chunks of files) {
    const holder: { splitter?: LineSplitter } = {};
    for await (const batch of readAuditLogStream(each(chunks), {}, holder)) for (const rec of batch) r.push(rec, rec.node);
    lines += holder.splitter?.stats.lines ?? 0;
    overlong += holder.splitter?.stats.overlongLines ?? 0;
  }
  r.flush();
  return { out, stats: { ...r.stats }, lines, overlong, failures: failures.slice(0, 5) };
}

async function viaNative(files: Buffer[][]): Promise<Run & { result: NativeReplayResult }> {
  const parts: Buffer[] = [];
  // Copies what it is given: the replay reuses its output buffers once a write's callback has run.
  const sink = {
    write: (b: Buffer | string, cb?: (err?: Error | null) => void): boolean => {
      parts.push(Buffer.from(b));
      if (cb) setImmediate(cb);
      return true;
    },
    cork: () => {},
    uncork: () => {},
  };
  const failures: string[] = [];
  const run = new NativeEventReplay(native!, sink as unknown as NodeJS.WriteStream, eventLine, (why, text) => failures.push(`${why}: ${text}`));
  // Each chunk is handed over in a buffer that is overwritten afterwards, as readFileChunks reuses one.
  for (const chunks of files) {
    await run.chunks(
      (function* () {
        for (const c of chunks) {
          const reused = Buffer.from(c);
          yield reused;
          reused.fill(0x41);
        }
      })(),
    );
  }
  const result = await run.finish();
  return { out: Buffer.concat(parts).toString('utf8'), stats: result.stats, lines: result.lines, overlong: result.overlong, failures, result };
}

async function expectSame(files: Buffer[][]): Promise<NativeReplayResult> {
  const want = await viaTypeScript(files);
  const got = await viaNative(files);
  const wl = want.out.split('\n');
  const gl = got.out.split('\n');
  for (let i = 0; i < Math.min(wl.length, gl.length); i++) if (gl[i] !== wl[i]) expect(`line ${i + 1}: ${gl[i]}`).toBe(`line ${i + 1}: ${wl[i]}`);
  expect(gl.length).toBe(wl.length);
  expect(got.stats).toEqual(want.stats);
  expect({ lines: got.lines, overlong: got.overlong }).toEqual({ lines: want.lines, overlong: want.overlong });
  expect(got.failures).toEqual(want.failures);
  return got.result;
}

/** Deterministic pseudo-random cut points (xorshift), so a failure reproduces. */
function cuts(buf: Buffer, seed: number, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  let x = seed >>> 0 || 1;
  for (let at = 0; at < buf.length; ) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const n = 1 + ((x >>> 0) % maxPiece);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

const stamp = (sec: number, ms: number, serial: number | string): string => `msg=audit(${sec}.${String(ms).padStart(3, '0')}:${serial}):`;

function sys(s: string, extra = ''): string {
  return `type=SYSCALL ${s} arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=0 a3=0 items=1 ppid=1 pid=2 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4 comm="cat" exe="/usr/bin/cat" key="k"${extra}`;
}

describe.skipIf(native === null)('native replay --events = the TypeScript path', () => {
  /** Every recorded log (gzip ones unpacked) and every go-libaudit YAML capture, as files in order. */
  function allFixtures(): Buffer[][] {
    const files = fixtureFiles(/\.log(\.gz)?$/).map((f) => [f.endsWith('.gz') ? gunzipSync(fs.readFileSync(f)) : fs.readFileSync(f)]);
    for (const rel of auditFixtureFiles().filter((f) => f.endsWith('.yaml'))) {
      files.push([Buffer.from(fixtureStreams(rel).map((lines) => lines.join('\n') + '\n').join(''), 'utf8')]);
    }
    return files;
  }

  it('on every recorded fixture as one stream, most events printed by C++', async () => {
    const files = allFixtures();
    const r = await expectSame(files);
    if (process.env.CREDWATCH_TEST_VERBOSE) console.log(`fixtures: ${r.stats.events} events, ${r.native} printed by C++, ${r.fallback} by TypeScript`);
    expect(r.stats.events).toBeGreaterThan(1000);
    expect(r.native / r.stats.events).toBeGreaterThan(0.5);
    expect(r.fallback).toBeGreaterThan(0);
  });

  it('whatever the chunk boundaries (pieces of 1 byte to 64 KiB)', async () => {
    const data = allFixtures()
      .map((f) => f[0]!)
      .filter((_, i) => i % 7 === 0);
    for (const [seed, max] of [
      [1, 7],
      [2, 300],
      [3, 65536],
    ] as const) {
      await expectSame(data.map((d, i) => cuts(d, seed * 1000 + i, max)));
    }
  });

  it('on every issue-15 secret form as an exec (argv, title and records), each redacted as TypeScript does', async () => {
    const lines: string[] = [];
    hostCases((i) => `S3cr3tValue${i}x9`).forEach((c, i) => lines.push(...hostCaseLines(i, c.argv)));
    const r = await expectSame([[Buffer.from(lines.join('\n') + '\n')]]);
    expect(r.stats.events).toBe(hostCases(() => 'x').length * 2);
  });

  it('on arguments of bytes that are not UTF-8, long enough for the linear JSON escaper', async () => {
    const L: string[] = [];
    for (const [n, len] of [
      [1, 1500],
      [2, 7000],
      [3, 100],
    ] as const) {
      const s = stamp(1700000100, n, 1000 + n);
      const bytes = Buffer.from(Array.from({ length: len }, (_, k) => 0x80 + ((k * 31 + n) % 128)));
      L.push(sys(s).replace('syscall=257', 'syscall=59'), `type=EXECVE ${s} argc=3 a0="sh" a1=${bytes.toString('hex').toUpperCase()} a2=C3A9E282AC`, `type=EOE ${s}`);
    }
    await expectSame([[Buffer.from(L.join('\n') + '\n')]]);
  });

  it('on hostile shapes: bad lines, late and reused serials, many nodes, non-UTF-8, huge numbers, no final newline', async () => {
    const L: string[] = [];
    // Every parse failure reason, and lines that are not records at all.
    L.push('node=only', 'type=SYSCALL', 'type=SYSCALL msg=nothing', 'type=PATH msg=audit(x.1:2):', 'type=PATH msg=audit(1.x:2):', 'type=PATH msg=audit(1.1:x):');
    L.push('type=PATH msg=audit(99999999999999.000:1): item=0', 'msg=audit(1.000:1): no type', '', '   ', 'garbage');
    // A plain open event, then a late record of it, then its serial reused with another time.
    const a = stamp(1700000000, 5, 10);
    L.push(sys(a), `type=CWD ${a} cwd="/root"`, `type=PATH ${a} item=0 name="/etc/hostname" inode=5 dev=fe:00 mode=0100644 nametype=NORMAL`, `type=EOE ${a}`);
    L.push(`type=PATH ${a} item=1 name="/etc/late" inode=6 dev=fe:00 mode=0100644 nametype=NORMAL`);
    L.push(sys(stamp(1700000001, 5, 10)), `type=EOE ${stamp(1700000001, 5, 10)}`);
    // User messages, alone and inside a syscall event's stamp.
    L.push(`type=USER_START ${stamp(1700000002, 0, 11)} pid=1 uid=0 auid=0 ses=1 msg='op=PAM:session_open acct="root" exe="/usr/sbin/sshd" res=success'`);
    const b = stamp(1700000002, 1, 12);
    L.push(sys(b), `type=USER_CMD ${b} pid=1 msg='cmd=6C73'`, `type=EOE ${b}`);
    // Many nodes, interleaved; an event with no EOE (auditd 3.x) and one whose SOCKADDR comes first.
    for (let n = 0; n < 50; n++) L.push(`node=n${n} ` + sys(stamp(1700000003, n, 100 + n)), `node=n${n} type=PROCTITLE ${stamp(1700000003, n, 100 + n)} proctitle=636174002F6574632F686F73746E616D65`);
    const c = stamp(1700000004, 0, 200);
    L.push(`type=SOCKADDR ${c} saddr=0200003F7F0000010000000000000000`, sys(c), `type=EOE ${c}`);
    // Sockaddr families: unix path, abstract, inet6, netlink, unknown, malformed, odd length.
    ['01002F72756E2F646F636B65722E736F636B00', '0100006162737472616374', '0A00003F000000000000000000000000000000000000000100000000', '100000000000000001000000', '2A00', '0200', '0200003']
      .forEach((saddr, i) => {
        const s = stamp(1700000005, i, 300 + i);
        L.push(sys(s), `type=SOCKADDR ${s} saddr=${saddr}`, `type=EOE ${s}`);
      });
    // Non-UTF-8 bytes: in a hex comm, in a quoted path (raw in the line) and in a node name.
    const d = stamp(1700000006, 0, 400);
    L.push(sys(d).replace('comm="cat"', 'comm=FF6361'), `type=PATH ${d} item=0 name="/tmp/\udcff" inode=1 nametype=NORMAL`, `type=EOE ${d}`);
    // Numbers past 2^53, a year past 9999, -0, a long item number, unset ids.
    L.push(sys(stamp(1700000007, 0, '9007199254740993')), `type=EOE ${stamp(1700000007, 0, '9007199254740993')}`);
    L.push(sys(stamp(253402300800, 0, 500)), `type=EOE ${stamp(253402300800, 0, 500)}`);
    L.push(sys(stamp(1700000008, 0, 501)).replace('exit=3', 'exit=-0').replace('auid=1000', 'auid=4294967295').replace('pid=2', 'pid=12345678901234567'), `type=EOE ${stamp(1700000008, 0, 501)}`);
    // Chunked and hex arguments, a missing argument, argc mismatch, several keys, other arches.
    L.push(...execLines(600, { pid: 7, ppid: 1, argv: ['sh', '-c', 'x'.repeat(9000)] }));
    L.push(...execLines(601, { pid: 8, ppid: 1, argv: ['printf', 'a b', '\u00e9t\u00e9'] }));
    const e = stamp(1700000009, 0, 602);
    L.push(sys(e), `type=EXECVE ${e} argc=3 a0="ls" a2="x"`, `type=EOE ${e}`);
    const f = stamp(1700000009, 1, 603);
    L.push(sys(f).replace('key="k"', 'key=6B31016B32'), `type=EOE ${f}`);
    const g = stamp(1700000009, 2, 604);
    L.push(sys(g).replace('arch=c000003e', 'arch=40000003'), `type=EOE ${g}`);
    L.push(sys(stamp(1700000009, 3, 605)).replace(' key="k"', ''), `type=CONFIG_CHANGE ${stamp(1700000009, 3, 605)} op=add_rule key="other" list=4 res=1`);
    // A newer auditd's type name, and a record of an unknown number.
    L.push(`type=UNKNOWN[1336] ${stamp(1700000010, 0, 700)} uring_op=18 success=yes exit=0`, `type=FUTURE_TYPE ${stamp(1700000010, 1, 701)} x=1`);
    // ENRICHED fields after 0x1d, and a title that names a secret-flag program.
    L.push(sys(stamp(1700000011, 0, 800)) + '\x1dARCH=x86_64 UID="root"', `type=PROCTITLE ${stamp(1700000011, 0, 800)} proctitle=6D7973716C002D7068756E746572`, `type=EOE ${stamp(1700000011, 0, 800)}`);
    const text = Buffer.from(L.join('\n'), 'utf8');
    // A raw 0xFF byte (not UTF-8) in a line, a line over 1 MiB, and no newline at the very end.
    const raw = Buffer.concat([text, Buffer.from('\n'), Buffer.from(sys(stamp(1700000012, 0, 900)).replace('"/usr/bin/cat"', '"/usr/bin/\xff"'), 'latin1'), Buffer.from('\n')]);
    const overlong = Buffer.from(`type=PATH ${stamp(1700000013, 0, 901)} name="${'y'.repeat((1 << 20) + 10)}"\n`);
    const last = Buffer.from(sys(stamp(1700000014, 0, 902)));
    await expectSame([[raw, overlong, last]]);
    await expectSame([cuts(Buffer.concat([raw, overlong, last]), 9, 4096)]);
    // Two files: the first ends without a newline, the second starts a new line.
    await expectSame([[Buffer.from(sys(stamp(1700000015, 0, 903)))], [Buffer.from(`type=EOE ${stamp(1700000015, 0, 903)}\n`)]]);
  });
});

describe.skipIf(native === null)('the plain-text predicate never claims a string redaction would change', () => {
  const plain = (s: string): boolean => native!.replayPlainText!(PLAIN_TEXT_SPEC, Buffer.from(s, 'utf8'));

  it('holds against redactText on generated text (words of every rule, separators, spaces)', () => {
    const words = [
      ...PLAIN_TEXT_SPEC.shapeWords,
      ...PLAIN_TEXT_SPEC.secretWords,
      ...PLAIN_TEXT_SPEC.programHints,
      ...PLAIN_TEXT_SPEC.programs,
      'eyJhbGciOiJIUzI1NiJ9.eyJ4Ijo',
      'AKIAQX7RZB2M4PLKD9WE',
      'hvs.CAESIJ0abcdefghijklmnopqrstuvwxyz',
      '-----BEGIN RSA PRIVATE KEY-----',
      'Bearer abcdefghijk',
      '--password',
      '--token',
      '-p',
      '-a',
      'login',
      '/etc/passwd',
      'head',
      'x',
      '{',
      '[',
      '%41',
      '@',
      ':',
      '=',
      '"',
      '\\',
      'https://u:p@h',
    ];
    const seps = [' ', '', '/', '-', '_', '.', ' ', ';', '|', '&&', '(', "'"];
    let x = 12345;
    const rnd = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let claimedPlain = 0;
    for (let i = 0; i < 20000; i++) {
      let s = '';
      const n = 1 + rnd(5);
      for (let k = 0; k < n; k++) s += words[rnd(words.length)]! + seps[rnd(seps.length)]!;
      if (rnd(3) === 0) s = s.toUpperCase();
      if (plain(s)) {
        claimedPlain++;
        expect(redactText(s), s).toBe(s);
      }
    }
    expect(claimedPlain).toBeGreaterThan(1000);
  });

  it('refuses each issue-15 form as text, and accepts everyday paths and command lines', () => {
    for (const c of hostCases((i) => `S3cr3tValue${i}x9`)) {
      const joined = c.argv.join(' ');
      if (redactText(joined) !== joined) expect(plain(joined), joined).toBe(false);
    }
    for (const s of ['/etc/passwd', 'head -c 10 /etc/passwd', '/usr/bin/cat', 'cat /etc/hostname /etc/os-release', '/work/wt/replay-speed', 'bench-1']) {
      expect(plain(s), s).toBe(true);
    }
    for (const s of ['caf\u00e9', 'a\tb', '{"a":1}', '  [1]', 'x=1', 'a:b', 'tok%41']) expect(plain(s), s).toBe(false);
  });
});
