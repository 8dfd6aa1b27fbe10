/**
 * The syscall, errno and message type tables are generated from the kernel and libaudit headers and
 * libaudit's own name lists (scripts/gen-audit-tables.js). Regenerating them here must change
 * nothing, so no table can drift from its source or from another table. Needs linux-libc-dev,
 * libaudit-dev and auditd (ausyscall, ausearch), which scripts/install-test-deps.sh installs.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordTypeName, recordTypeNumber } from '../../../src/audit/record-types';
import { MSG_TYPE_NAMES } from '../../../src/audit/rule-fields';

const ROOT = path.join(__dirname, '../../..');
const SCRIPT = path.join(ROOT, 'scripts/gen-audit-tables.js');

function missingSources(): string | null {
  const files = ['/usr/include/linux/audit.h', '/usr/include/libaudit.h', '/usr/include/x86_64-linux-gnu/asm/unistd_64.h'];
  for (const f of files) if (!existsSync(f)) return `${f} missing (apt packages linux-libc-dev, libaudit-dev)`;
  for (const tool of ['ausyscall', 'ausearch']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} missing (apt package auditd)`;
  }
  return null;
}
const skip = missingSources();
if (skip) console.warn(`[generated tables] regeneration check skipped: ${skip}`);

describe('generated audit tables', () => {
  it.skipIf(skip !== null)('regenerating them from the headers and libaudit changes nothing', () => {
    const run = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it.skipIf(skip !== null)('every type name libaudit knows (ausearch -m help) is in the record type table', () => {
    const r = spawnSync('ausearch', ['-m', 'help'], { encoding: 'utf8' });
    const names = `${r.stdout}${r.stderr}`.replace(/^.*Valid message types are:/s, '').split(/\s+/).filter((n) => n && n !== 'ALL');
    expect(names.length).toBeGreaterThan(150);
    expect(names.filter((n) => recordTypeNumber(n) === undefined)).toEqual([]);
  });

  it('the record parser and the rule encoder read the same table', () => {
    for (const [nr, name] of MSG_TYPE_NAMES) expect(recordTypeName(nr)).toBe(name);
    expect(recordTypeName(1500)).toBe('APPARMOR'); // libaudit's name for AUDIT_AA
    expect(recordTypeName(1301)).toBe('UNKNOWN[1301]'); // AUDIT_FS_WATCH: deprecated, commented out in the header
    expect(MSG_TYPE_NAMES.has(1899)).toBe(false); // AUDIT_INTEGRITY_LAST_MSG marks a range, it is no type
  });

  it.skipIf(skip !== null)('the check notices a table edited by hand', () => {
    const copy = mkdtempSync(path.join(tmpdir(), 'credwatch-tables-'));
    try {
      mkdirSync(path.join(copy, 'src/audit'), { recursive: true });
      for (const f of ['syscalls-x86_64.ts', 'syscalls-i386.ts', 'errno-table.ts', 'record-type-table.ts']) {
        copyFileSync(path.join(ROOT, 'src/audit', f), path.join(copy, 'src/audit', f));
      }
      const check = () => spawnSync(process.execPath, [SCRIPT, '--check', '--root', copy], { encoding: 'utf8' });
      expect(check().status).toBe(0);
      const edited = path.join(copy, 'src/audit/errno-table.ts');
      writeFileSync(edited, readFileSync(edited, 'utf8').replace("[13, 'EACCES']", "[13, 'EACCESS']"));
      const run = check();
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('src/audit/errno-table.ts');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
