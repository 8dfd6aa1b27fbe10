import { describe, expect, it } from 'vitest';
import { decodeSockaddr, formatIPv6 } from '../../../src/audit/sockaddr';
import { archByteOrder } from '../../../src/audit/syscall-names';
import { buildEvent } from '../../../src/audit/event-builder';
import { parseRecord, type ParsedRecord } from '../../../src/audit/record';

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex').toUpperCase();

describe('decodeSockaddr', () => {
  it('big-endian hosts (s390x, ppc64): family and netlink fields in host order, from arch= or from the bytes', () => {
    const inet = '0002 1F90 7F000001 0000000000000000'.replace(/ /g, '');
    for (const order of ['be', null] as const) {
      expect(decodeSockaddr(inet, 0, inet.length, order).sockaddr).toEqual({ family: 'inet', path: null, addr: '127.0.0.1', port: 8080 });
      const unix = '0001' + hex('/run/docker.sock') + '00';
      expect(decodeSockaddr(unix, 0, unix.length, order).sockaddr).toMatchObject({ family: 'unix', path: '/run/docker.sock' });
    }
    expect(decodeSockaddr('0010' + '0000' + '00003039' + '00000001', 0, 24, 'be').sockaddr).toEqual({ family: 'netlink', path: null, addr: null, port: null, pid: 12345, groups: 1 });
    expect(archByteOrder('s390x')).toBe('be');
    expect(archByteOrder('ppc64')).toBe('be');
    expect(archByteOrder('ppc64le')).toBe('le');
    expect(archByteOrder('x86_64')).toBe('le');
    expect(archByteOrder('80000016')).toBe('be');
    expect(archByteOrder('io_uring')).toBeNull();
  });

  it('a recorded s390x connect event decodes its family and port through the event builder', () => {
    const text = [
      'type=SYSCALL msg=audit(1700000000.000:77): arch=80000016 syscall=362 success=no exit=-115 a0=3 a1=3ffd a2=10 a3=0 items=0 ppid=1 pid=900 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="curl" exe="/usr/bin/curl" key="credwatch:connect"',
      'type=SOCKADDR msg=audit(1700000000.000:77): saddr=000228F27F0000010000000000000000',
      'type=EOE msg=audit(1700000000.000:77): ',
    ];
    const recs = text.map((t) => parseRecord({ type: 0, text: t })).filter((r): r is ParsedRecord => !r.failed);
    expect(buildEvent(recs, false).sockaddr).toEqual({ family: 'inet', path: null, addr: '127.0.0.1', port: 10482 });
  });

  it('AF_INET: family little-endian, port and address network order', () => {
    expect(decodeSockaddr('0200 1F90 7F000001 0000000000000000'.replace(/ /g, ''))).toEqual({
      sockaddr: { family: 'inet', path: null, addr: '127.0.0.1', port: 8080 },
      malformed: false,
    });
  });

  it('AF_INET6 with flowinfo, compressed address, IPv4-mapped form', () => {
    const v6 = '0A00' + '01BB' + '00000000' + '20010DB8000000000000000000000001' + '00000000';
    expect(decodeSockaddr(v6).sockaddr).toEqual({ family: 'inet6', path: null, addr: '2001:db8::1', port: 443 });
    const mapped = '0A00' + '1A0A' + '00000000' + '00000000000000000000FFFF0A000001' + '00000000';
    expect(decodeSockaddr(mapped).sockaddr).toEqual({ family: 'inet6', path: null, addr: '::ffff:10.0.0.1', port: 6666 });
    const loop = '0A00' + '0050' + '00000000' + '00000000000000000000000000000001';
    expect(decodeSockaddr(loop).sockaddr.addr).toBe('::1');
  });

  it('AF_UNIX path, abstract name and unnamed socket', () => {
    expect(decodeSockaddr('0100' + hex('/var/run/docker.sock') + '00').sockaddr).toEqual({ family: 'unix', path: '/var/run/docker.sock', addr: null, port: null });
    expect(decodeSockaddr('0100' + '00' + hex('containerd-shim')).sockaddr.path).toBe('@containerd-shim');
    expect(decodeSockaddr('0100').sockaddr).toEqual({ family: 'unix', path: null, addr: null, port: null });
  });

  it('AF_NETLINK pid and groups, host order', () => {
    expect(decodeSockaddr('1000' + '0000' + '39300000' + '01000000').sockaddr).toEqual({ family: 'netlink', path: null, addr: null, port: null, pid: 12345, groups: 1 });
  });

  it('unknown family as its number', () => {
    expect(decodeSockaddr('2800' + '00000000').sockaddr.family).toBe(40); // AF_VSOCK
  });

  it('truncated or bad hex: null fields, flagged, no throw', () => {
    expect(decodeSockaddr('0200')).toEqual({ sockaddr: { family: 'inet', path: null, addr: null, port: null }, malformed: true });
    expect(decodeSockaddr('0A0001BB')).toMatchObject({ malformed: true, sockaddr: { family: 'inet6', addr: null } });
    expect(decodeSockaddr('zz')).toMatchObject({ malformed: true });
    expect(decodeSockaddr('0')).toMatchObject({ malformed: true });
    expect(decodeSockaddr('02001F907F0000010')).toMatchObject({ malformed: true, sockaddr: { addr: '127.0.0.1' } });
  });
});

describe('formatIPv6', () => {
  it('follows RFC 5952 (longest zero run, first on ties, no single-group compression)', () => {
    const b = (s: string): Buffer => Buffer.from(s, 'hex');
    expect(formatIPv6(b('00000000000000000000000000000000'), 0)).toBe('::');
    expect(formatIPv6(b('20010db8000000010000000000000001'), 0)).toBe('2001:db8:0:1::1');
    expect(formatIPv6(b('20010db8000100000001000100010001'), 0)).toBe('2001:db8:1:0:1:1:1:1');
    expect(formatIPv6(b('20010000000000010000000000000001'), 0)).toBe('2001:0:0:1::1');
  });
});
