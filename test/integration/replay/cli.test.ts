/**
 * `credwatch replay` as a user runs it (child process; needs a build: npx tsc -p tsconfig.build.json).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR, goldenPath } from '../../unit/audit/fixtures';

const ROOT = path.join(__dirname, '../../..');
const built = existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
if (!built) console.warn('[skip] replay CLI tests: no build (run npx tsc -p tsconfig.build.json && node scripts/copy-assets.js)');

function credwatch(args: string[], input?: string | Buffer) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const fixture = (rel: string): string => path.join(FIXTURE_DIR, rel);

describe.skipIf(!built)('credwatch replay --events', () => {
  it('prints the golden events for a real log, one JSON object per line, exit 0', () => {
    const rel = 'OMS-Auditd-Plugin/TestEventData.raw_test_events.log';
    const r = credwatch(['replay', '--events', fixture(rel)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(goldenPath(rel), 'utf8'));
  });

  it('reads stdin for -, and several files in order as one stream', () => {
    const a = 'go-libaudit/testdata/normal.log';
    const viaStdin = credwatch(['replay', '--events', '-'], readFileSync(fixture(a)));
    expect(viaStdin.code).toBe(0);
    expect(viaStdin.stdout).toBe(readFileSync(goldenPath(a), 'utf8'));
    const two = credwatch(['replay', '--events', fixture(a), fixture('hub/auditd-logs.log')]);
    expect(two.stdout.split('\n').filter(Boolean)).toHaveLength(5 + 4);
  });

  it('includes raw records only with --records', () => {
    const r = credwatch(['replay', '--events', '--records', fixture('go-libaudit/auparse/testdata/audit-ubuntu17.log')]);
    const ev = JSON.parse(r.stdout.split('\n')[0]!) as { records: { type: string; text: string }[] };
    expect(ev.records[0]!.type).toBe('SYSCALL');
    expect(ev.records[0]!.text.startsWith('type=SYSCALL msg=audit(')).toBe(true);
    const without = JSON.parse(credwatch(['replay', '--events', fixture('go-libaudit/auparse/testdata/audit-ubuntu17.log')]).stdout.split('\n')[0]!) as object;
    expect('records' in without).toBe(false);
  });

  it('summarises parse errors on stderr and still prints every other event', () => {
    const r = credwatch(['replay', '--events', fixture('go-libaudit/auparse/testdata/audit-rhel7.log')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 parse error\b/);
    expect(r.stderr).toContain('type=UNKNOWN[1329] msg=?');
    expect(r.stdout).toBe(readFileSync(goldenPath('go-libaudit/auparse/testdata/audit-rhel7.log'), 'utf8'));
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(46); // 49 good lines, 3 events of several records
  });

  it('prints all counters with --stats', () => {
    const r = credwatch(['replay', '--events', '--stats', fixture('hub/auditd-logs.log')]);
    expect(r.stderr).toMatch(/4 records, 4 events, 0 incomplete, 0 parse errors/);
  });

  it('exits 1 with a clear message for an unreadable file, before printing anything', () => {
    const r = credwatch(['replay', '--events', fixture('hub/auditd-logs.log'), '/nonexistent/audit.log']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('cannot read /nonexistent/audit.log: no such file');
  });

  it('exits 2 on bad usage', () => {
    expect(credwatch(['replay', '--events']).code).toBe(2);
    expect(credwatch(['replay', '--events', '--bogus', fixture('hub/auditd-logs.log')]).code).toBe(2);
    const k8s = credwatch(['replay', '--events', path.join(ROOT, 'test/fixtures/kube/audit2rbac-demo.log')]);
    if (existsSync(path.join(ROOT, 'test/fixtures/kube/audit2rbac-demo.log'))) {
      expect(k8s.code).toBe(2);
      expect(k8s.stderr).toContain('Kubernetes audit JSON');
    }
  });
});
