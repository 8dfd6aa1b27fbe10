/**
 * auditd Sigma fields of an exec's EXECVE records (sigma/host-fields.ts auditdFields): a0..aN come
 * from the event's reassembled argv on every EXECVE record, so a long argv (160 records for 1.2 MB)
 * made each rule run 160 times for the same answer. Records that answer alike are given once; a record
 * holding another field a rule reads is still its own.
 */
import { describe, expect, it } from 'vitest';
import { auditdFields } from '../../../../src/detect/sigma/host-fields';
import { makeEvent } from '../../enrich/helpers';

const ARGV = ['curl', 'x'.repeat(20), 'https://example.org/'];

function execEvent(argv: string[] | null) {
  const stamp = 'audit(1795355553.876:7):';
  return makeEvent({
    syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
    process: { pid: 7, ppid: 1, argv, exe: '/usr/bin/curl' },
    records: [
      { type: 'EXECVE', text: `${stamp} argc=3 a0="curl" a1_len=20` },
      { type: 'EXECVE', text: `${stamp} a1[0]=78787878787878787878` },
      { type: 'EXECVE', text: `${stamp} a1[1]=78787878787878787878 a2="https://example.org/"` },
    ],
  });
}

describe('auditd fields of an exec with a long argv', () => {
  it('records that answer only from the argv are given once, with the whole argv', () => {
    const got = auditdFields(execEvent(ARGV), () => new Set(['type', 'a0', 'a1', 'a2']));
    expect(got).toHaveLength(1);
    expect(got[0]?.get('a1')).toEqual(['x'.repeat(20)]);
    expect(got[0]?.get('a2')).toEqual(['https://example.org/']);
  });

  it('a record holding another field a rule reads (argc) keeps its own getter; the argv-only ones are one', () => {
    const got = auditdFields(execEvent(ARGV), () => new Set(['type', 'a0', 'argc']));
    expect(got.map((g) => g.get('argc'))).toEqual([['3'], null]);
    expect(got.map((g) => g.get('a0'))).toEqual([['curl'], ['curl']]);
  });

  it('without a reassembled argv every record answers from its own text', () => {
    const got = auditdFields(execEvent(null), () => new Set(['type', 'a2']));
    expect(got).toHaveLength(3);
    expect(got.map((g) => g.get('a2'))).toEqual([null, null, ['https://example.org/']]);
  });
});
