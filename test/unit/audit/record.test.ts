import { describe, expect, it } from 'vitest';
import { FieldCursor, enrichedFields, parseRecord, recordFields, type ParsedRecord } from '../../../src/audit/record';
import { recordTypeName, recordTypeNumber } from '../../../src/audit/record-types';

function ok(text: string, type = 0): ParsedRecord {
  const r = parseRecord({ type, text });
  if (r.failed) throw new Error(r.reason);
  return r;
}

describe('parseRecord', () => {
  it('parses the netlink payload form with the type given separately', () => {
    const r = ok('audit(1700000000.123:4567): arch=c000003e syscall=59 success=yes', 1300);
    expect(r).toMatchObject({ type: 1300, typeName: 'SYSCALL', sec: 1700000000, ms: 123, serial: 4567, id: '1700000000.123:4567', node: null });
    expect(r.text.slice(r.bodyStart, r.bodyStart + 4)).toBe('arch');
  });

  it('parses the auditd log form with node=', () => {
    const r = ok('node=web-1 type=EXECVE msg=audit(1700000000.005:9): argc=1 a0="ls"');
    expect(r).toMatchObject({ type: 1309, typeName: 'EXECVE', node: 'web-1', ms: 5, serial: 9 });
  });

  it('lets an explicit node override the prefix', () => {
    expect(parseRecord({ type: 0, text: 'node=a type=EOE msg=audit(1.000:1): ' }, 'b')).toMatchObject({ node: 'b' });
  });

  it('maps UNKNOWN[n] to the known name and keeps an unknown name with type 0', () => {
    expect(ok('type=UNKNOWN[1327] msg=audit(1.000:1): proctitle=6C73')).toMatchObject({ type: 1327, typeName: 'PROCTITLE' });
    expect(ok('type=UNKNOWN[4242] msg=audit(1.000:1): x=1')).toMatchObject({ type: 4242, typeName: 'UNKNOWN[4242]' });
    expect(ok('type=BRAND_NEW msg=audit(1.000:1): x=1')).toMatchObject({ type: 0, typeName: 'BRAND_NEW' });
  });

  it('returns failures instead of throwing', () => {
    for (const text of ['', 'garbage', 'type=SYSCALL msg=?', 'type=SYSCALL msg=audit(12:34): x', 'type=SYSCALL msg=audit(1.2:x): y', 'node=only']) {
      const r = parseRecord({ type: 0, text });
      expect(r.failed, text).toBe(true);
    }
    expect(parseRecord({ type: 0, text: 'audit(1.000:1): x=1' }).failed).toBe(true); // no type at all
  });

  it('separates ENRICHED interpreted fields after 0x1d', () => {
    const r = ok('type=SYSCALL msg=audit(1.000:1): arch=c000003e uid=0 key=(null)\x1dARCH=x86_64 UID="root" AUID="unset"');
    expect(recordFields(r)).toEqual({ arch: 'c000003e', uid: '0', key: '(null)' });
    expect(enrichedFields(r)).toEqual({ ARCH: 'x86_64', UID: 'root', AUID: 'unset' });
  });
});

describe('FieldCursor', () => {
  it('walks quoted, bare, hex and absent values', () => {
    const r = ok('type=SYSCALL msg=audit(1.000:1): comm="a b" exe=2F62696E2F6C73 key=(null) tty=? exit=-115');
    const c = new FieldCursor().resetRecord(r);
    const seen: Record<string, unknown> = {};
    while (c.next()) {
      const k = c.key();
      seen[k] = k === 'exit' ? c.int() : c.untrusted();
    }
    expect(seen).toEqual({ comm: 'a b', exe: '/bin/ls', key: null, tty: null, exit: -115 });
  });

  it('skips tokens without = (AVC prose) and descends into msg=\'...\'', () => {
    const r = ok("type=AVC msg=audit(1.000:1): avc:  denied  { read } for  pid=5 comm=\"x\" name=\"token\"");
    expect(recordFields(r)).toEqual({ pid: '5', comm: 'x', name: 'token' });
    const u = ok("type=USER_LOGIN msg=audit(1.000:2): pid=1 uid=0 msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" res=success'");
    expect(recordFields(u)).toEqual({ pid: '1', uid: '0', op: 'login', acct: 'root', exe: '/usr/sbin/sshd', res: 'success' });
  });

  it('does not run past an unterminated quote', () => {
    const r = ok('type=PATH msg=audit(1.000:1): name="unterminated inode=5');
    const c = new FieldCursor().resetRecord(r);
    expect(c.next()).toBe(true);
    expect(c.raw()).toBe('unterminated inode=5');
    expect(c.next()).toBe(false);
  });
});

describe('record types', () => {
  it('has both directions for common types', () => {
    for (const [n, name] of [
      [1300, 'SYSCALL'],
      [1302, 'PATH'],
      [1305, 'CONFIG_CHANGE'],
      [1306, 'SOCKADDR'],
      [1307, 'CWD'],
      [1309, 'EXECVE'],
      [1320, 'EOE'],
      [1326, 'SECCOMP'],
      [1327, 'PROCTITLE'],
      [1400, 'AVC'],
      [1006, 'LOGIN'],
      [1112, 'USER_LOGIN'],
      [1123, 'USER_CMD'],
      [1701, 'ANOM_ABEND'],
      [2100, 'ANOM_LOGIN_FAILURES'],
    ] as const) {
      expect(recordTypeName(n)).toBe(name);
      expect(recordTypeNumber(name)).toBe(n);
    }
    expect(recordTypeName(9999)).toBe('UNKNOWN[9999]');
  });
});
