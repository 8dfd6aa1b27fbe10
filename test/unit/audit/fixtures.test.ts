/**
 * Hand-checked values from the real fixtures (each one verified against the raw line, noted
 * beside it), so that the goldens are not the only thing standing behind the decoders.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { FieldCursor, parseRecord, recordFields } from '../../../src/audit/record';
import { encodeSurrogateEscaped } from '../../../src/audit/bytes';
import { fixtureLines, reassembleFixture, reassembleLines, recordedArgv } from './fixtures';

function byId(events: AuditEvent[], id: string): AuditEvent {
  const ev = events.find((e) => e.id === id);
  if (!ev) throw new Error(`no event ${id}`);
  return ev;
}

describe('OMS oversized execve event (307 KB, 46 records)', () => {
  const { events, stats } = reassembleLines(fixtureLines('OMS-Auditd-Plugin/TestEventData.oversized_event.log'));

  it('is one event with 41 EXECVE records and no parse or decode errors', () => {
    expect(stats.parseErrors).toBe(0);
    expect(stats.decodeErrors).toBe(0);
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    expect(ev.id).toBe('1605628440.428:603432');
    expect(ev.types.filter((t) => t === 'EXECVE')).toHaveLength(41);
    expect(ev.problems).toBeUndefined();
  });

  it('rebuilds all 23 arguments exactly', () => {
    const argv = events[0]!.process!.argv!;
    expect(argv).toHaveLength(23); // argc=23
    expect(argv.slice(0, 3)).toEqual(['/bin/echo', 'aueventgen', '2020-11-17T07:54:00.429207603']);
    // a3..a21 each carry a<N>_len=16000: 16000 hex digits as written (the kernel counts the encoded
    // length, and forces hex for arguments spanning buffers), i.e. 8000 bytes of "0" (0x30).
    for (let i = 3; i <= 21; i++) {
      expect(argv[i]!.length, `a${i}`).toBe(8000);
      expect(argv[i]).toBe('0'.repeat(8000));
    }
    expect(argv[22]).toBe(''); // a22="" — an empty argument is kept, not dropped
  });

  it('decodes the 128-byte proctitle, cwd and paths', () => {
    const p = events[0]!.process!;
    expect(p.title!.startsWith('/bin/echo aueventgen 2020-11-17T07:54:00.429207603 000')).toBe(true);
    expect(Buffer.byteLength(p.title!)).toBe(128);
    expect(p.cwd).toBe('/');
    expect(events[0]!.paths.map((x) => x.name)).toEqual(['/bin/echo', '/lib64/ld-linux-x86-64.so.2']);
  });
});

describe('OMS raw_test_events', () => {
  const { events } = reassembleLines(fixtureLines('OMS-Auditd-Plugin/TestEventData.raw_test_events.log'));

  it('decodes a hex argument with spaces, node=, and a multi-key hex key', () => {
    const ev = byId(events, '1521757638.392:262332');
    expect(ev.node).toBe('test');
    // a5=7A667320...3A20 is "zfs incremental backup of rpool/lxd failed: " (note the trailing space)
    expect(ev.process!.argv).toEqual(['logger', '-t', 'zfs-backup', '-p', 'daemon.err', 'zfs incremental backup of rpool/lxd failed: ']);
    // key=61756F6D7301657865637665 is "auoms\x01execve": two rule keys
    expect(ev.key).toBe('auoms');
    expect(ev.keys).toEqual(['auoms', 'execve']);
    expect(ev.process!.tty).toBeNull(); // tty=(none)
    expect(ev.incomplete).toBe(false);
  });

  it('maps type=UNKNOWN[1327] to PROCTITLE and decodes it', () => {
    const ev = byId(events, '1563470055.872:7605215');
    expect(ev.types).toEqual(['SYSCALL', 'EXECVE', 'CWD', 'PATH', 'PATH', 'PROCTITLE', 'EOE']);
    expect(ev.process!.title).toBe('/bin/sh -c iptables -w -t security --flush');
    expect(ev.process!.cwd).toBe('/var/lib/waagent');
    expect(ev.process!.auid).toBeNull(); // 4294967295
    expect(ev.process!.ses).toBeNull();
  });

  it('reads a line without msg= (`type=SYSCALL audit(...)`) and an aarch64 arch', () => {
    const ev = byId(events, '1572298453.690:5717');
    expect(ev.syscall).toEqual({ arch: 'aarch64', nr: 222, name: null, success: true, exit: 281129964019712 });
    expect(ev.types).toEqual(['SYSCALL', 'INTEGRITY_POLICY_RULE']);
  });

  it('keeps USER_CMD msg=\'...\' fields reachable', () => {
    const line = fixtureLines('OMS-Auditd-Plugin/TestEventData.raw_test_events.log').find((l) => l.includes('1623701789.269:26455408'))!;
    const rec = parseRecord({ type: 0, text: line });
    if (rec.failed) throw new Error(rec.reason);
    const f = recordFields(rec);
    expect(f.cwd).toBe('/home/user');
    expect(f.terminal).toBe('pts/2');
    expect(f.res).toBe('success');
    const cur = new FieldCursor().resetRecord(rec);
    let cmd: string | null = null;
    while (cur.next()) if (cur.keyIs('cmd')) cmd = cur.untrusted();
    expect(cmd).toBe('echo test user_cmd --redactme stuff');
  });
});

describe('go-libaudit audit-rhel7.log', () => {
  const [run] = reassembleFixture('go-libaudit/auparse/testdata/audit-rhel7.log');
  const events = run!.events;

  it('decodes every sockaddr family in the file', () => {
    // 02000050A9FEA9FE...: AF_INET, port 0x0050, 169.254.169.254
    expect(byId(events, '1481078424.953:688').sockaddr).toEqual({ family: 'inet', path: null, addr: '169.254.169.254', port: 80 });
    // 1000 0000 00000000 00000000: AF_NETLINK pid 0 groups 0
    expect(byId(events, '1490816924.990:517643').sockaddr).toEqual({ family: 'netlink', path: null, addr: null, port: null, pid: 0, groups: 0 });
    // 0A00 0016 00000000 0*16: AF_INET6 [::]:22
    expect(byId(events, '1490816924.990:517644').sockaddr).toEqual({ family: 'inet6', path: null, addr: '::', port: 22 });
    // 0000...: AF_UNSPEC, reported as the number
    expect(byId(events, '1490816924.990:517645').sockaddr!.family).toBe(0);
    // 0100 2F7661722F72756E2F6E7363642F736F636B6574 00 (garbage after the NUL is ignored)
    expect(byId(events, '1490816924.990:517647').sockaddr).toEqual({ family: 'unix', path: '/var/run/nscd/socket', addr: null, port: null });
  });

  it('treats connect() exit=-115 (EINPROGRESS) as a normal failed syscall', () => {
    const ev = byId(events, '1490801406.273:512226');
    expect(ev.syscall).toEqual({ arch: 'x86_64', nr: 42, name: 'connect', success: false, exit: -115 });
  });

  it('decodes a hex cwd (CWD record cwd=2F746D702F6120622063 is "/tmp/a b c")', () => {
    const line = fixtureLines('go-libaudit/auparse/testdata/audit-rhel7.log').find((l) => l.includes('1500661699.656:1208725'))!;
    const rec = parseRecord({ type: 0, text: line });
    if (rec.failed) throw new Error(rec.reason);
    const cur = new FieldCursor().resetRecord(rec);
    expect(cur.next()).toBe(true);
    expect(cur.key()).toBe('cwd');
    expect(cur.untrusted()).toBe('/tmp/a b c');
  });

  it('makes single-record user messages whole events at once', () => {
    const ev = byId(events, '1481077231.363:475');
    expect(ev.types).toEqual(['USER_CMD']);
    expect(ev.incomplete).toBe(false);
    expect(ev.process).toBeNull();
  });
});

describe('go-libaudit aucoalesce captures', () => {
  it('ubuntu-16.10: accept() sockaddr 0200E31C4853E664 is 72.83.230.100:58140', () => {
    const events = reassembleFixture('go-libaudit/aucoalesce/testdata/ubuntu-16.10-linux-4.8.0.yaml').flatMap((r) => r.events);
    const ev = byId(events, '1492752520.441:8832');
    expect(ev.sockaddr).toEqual({ family: 'inet', path: null, addr: '72.83.230.100', port: 58140 });
    expect(ev.syscall!.name).toBe('accept');
    expect(ev.process!.title).toBe('(sshd)'); // proctitle="(sshd)" — quoted, not hex
    expect(ev.key).toBe('key=net');
    expect(ev.incomplete).toBe(false);
  });

  it('ubuntu-17.04: execve argv, cwd, key pair exec/64bit', () => {
    const events = reassembleFixture('go-libaudit/aucoalesce/testdata/ubuntu-17.04-linux-4.10.0.yaml').flatMap((r) => r.events);
    const ev = byId(events, '1515708162.888:124507');
    expect(ev.process!.argv).toEqual(['docker', 'inspect', '721df12151a7']);
    expect(ev.process!.cwd).toBe('/home/andrew_kroh');
    expect(ev.keys).toEqual(['exec', '64bit']);
    expect(ev.paths[0]).toEqual({ name: '/usr/bin/docker', nametype: 'NORMAL', inode: 16571, mode: '0100755', dev: '08:01' });
  });
});

describe('recorded on this machine: Debian auditd 3.0.9, ENRICHED format', () => {
  const { events, stats } = reassembleLines(fixtureLines('recorded/debian-auditd-3.0.9-enriched.log'));

  it('parses cleanly; the log has no EOE and events are still complete', () => {
    expect(stats).toMatchObject({ parseErrors: 0, decodeErrors: 0, lateRecords: 0, evicted: 0, incomplete: 0 });
    expect(events.flatMap((e) => e.types)).not.toContain('EOE');
  });

  it('rebuilds the exact argv bytes: hex chunks (a4_len=40000), quoted chunks (a12_len=5000), UTF-8 across chunk cuts', () => {
    const ev = events.find((e) => e.process?.argv?.[1] === 'credwatch-live-manual')!;
    expect(ev.problems).toBeUndefined();
    expect(ev.process!.argv!.map((a) => encodeSurrogateEscaped(a))).toEqual(recordedArgv('credwatch-live-manual'));
    expect(ev.key).toBe('credwatch:ctest');
    expect(ev.process).toMatchObject({ comm: 'true', exe: '/usr/bin/true', cwd: '/tmp/cw-c/live', uid: 0, auid: null });
  });

  it('keeps ENRICHED interpreted fields out of the raw ones (SADDR={ ... } after 0x1d)', () => {
    const ev = events.find((e) => e.id === '1795355553.772:240352')!;
    expect(ev.sockaddr).toEqual({ family: 'netlink', path: null, addr: null, port: null, pid: 0, groups: 0 });
    expect(ev.process!.title).toBe('auditctl -e 1');
  });
});
