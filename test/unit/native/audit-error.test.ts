import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';

import { AuditError, isAuditError } from '../../../src/native/errors';

describe('AuditError', () => {
  it('keeps syscall and numeric errno and derives the symbolic code', () => {
    const err = new AuditError('AUDIT_SET (pid): File exists', 'AUDIT_SET', constants.errno.EEXIST);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AuditError');
    expect(err.syscall).toBe('AUDIT_SET');
    expect(err.errno).toBe(17);
    expect(err.code).toBe('EEXIST');
    expect(isAuditError(err, 'EEXIST')).toBe(true);
    expect(isAuditError(err, 'EPERM')).toBe(false);
    expect(isAuditError(new Error('x'))).toBe(false);
  });

  it('names an errno Node does not know as E<number>', () => {
    expect(new AuditError('x', 'recvfrom', 4095).code).toBe('E4095');
  });
});
