/**
 * `credwatch replay` as a user runs it (child process; needs a build: npx tsc -p tsconfig.build.json).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR, goldenPath } from '../../unit/audit/fixtures';

const ROOT = path.join(__dirname, '../../..');
const built = existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
if (!built) console.warn('[skip] replay CLI tests: no build (run npx tsc -p tsconfig.build.json && node scripts/copy-assets.js)');

function credwatch(args: string[], input?: string | Buffer, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } });
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
    const two = credwatch(['replay', '--events', '--jobs', '1', fixture(a), fixture('hub/auditd-logs.log')]);
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

  it('exits 2 (usage) with a clear message for a file that does not exist, before printing anything, in both modes', () => {
    for (const mode of [['--events'], []]) {
      const r = credwatch(['replay', ...mode, fixture('hub/auditd-logs.log'), '/nonexistent/audit.log']);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('cannot read /nonexistent/audit.log: no such file');
    }
    // An unknown rules directory is a usage error too.
    const d = credwatch(['replay', '--rules-dir', '/nonexistent/rules.d', fixture('hub/auditd-logs.log')]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('/nonexistent/rules.d: no such rules directory');
  });

  it('a blank line in a Kubernetes audit file is not a bad line', () => {
    const kube = readFileSync(path.join(ROOT, 'test/fixtures/kube/audit2rbac-demo.log'), 'utf8').split('\n').filter(Boolean);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'cw-blank-')), 'blank.log');
    writeFileSync(file, `${kube[0]}\n\n${kube[1]}\n   \n\n`);
    const r = credwatch(['replay', '--stats', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ 0 bad kube audit lines/);
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

describe.skipIf(!built)('credwatch replay: progress line in findings mode', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  const behaviour = path.join(ROOT, 'test/fixtures/behaviours/node-harvest-tokens.log');
  it.skipIf(!hasScript)('draws a progress line on a terminal for a large input (threshold lowered for the test), and erases it', () => {
    const r = spawnSync('script', ['-qec', `${process.execPath} ${path.join(ROOT, 'bin/credwatch')} replay ${behaviour}`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, CREDWATCH_PROGRESS_MIN_BYTES: '1' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[Kreplay: \d+\.\d\/\d+\.\d MiB \(\d+\.\d%\), \d+ events, \d+ events\/s/);
    expect(r.stdout).toMatch(/\r\x1b\[K(\r?\n)?ID\s+TIME/); // erased before the table
    // Not a terminal: no progress line, whatever the size.
    const piped = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', behaviour], { encoding: 'utf8', env: { ...process.env, CREDWATCH_PROGRESS_MIN_BYTES: '1' } });
    expect(piped.stderr).not.toContain('MiB');
  });
});

describe.skipIf(!built)('credwatch replay: host from node=, several files in time order', () => {
  const behaviour = path.join(ROOT, 'test/fixtures/behaviours/node-harvest-tokens.log');
  const json = (args: string[]): { host: string; time: string; rule: string; id: string }[] => {
    const r = credwatch(['replay', '--json', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { host: string; time: string; rule: string; id: string });
  };

  it('a finding names the host auditd wrote in node=, and this host when the records have none', () => {
    const nodes = new Set([...readFileSync(behaviour, 'utf8').matchAll(/^node=(\S+) /gm)].map((m) => m[1]));
    expect([...nodes]).toEqual(['lab-node']);
    const found = json([behaviour]);
    expect(found.length).toBeGreaterThan(0);
    expect(new Set(found.map((f) => f.host))).toEqual(new Set(['lab-node']));
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-node-'));
    const bare = path.join(dir, 'bare.log');
    writeFileSync(bare, readFileSync(behaviour, 'utf8').replace(/^node=\S+ /gm, ''));
    expect(new Set(json([bare]).map((f) => f.host))).toEqual(new Set([hostname()]));
  });

  it('two nodes doing the same thing in one stream are two incidents, each with its node (sessions and pids repeat across nodes)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-two-nodes-'));
    const text = readFileSync(behaviour, 'utf8');
    const a = path.join(dir, 'a.log');
    const b = path.join(dir, 'b.log');
    writeFileSync(a, text.replace(/^node=\S+ /gm, 'node=node-a '));
    writeFileSync(b, text.replace(/^node=\S+ /gm, 'node=node-b '));
    const alone = json([a]);
    expect(alone.length).toBeGreaterThan(0);
    const together = json(['--jobs', '1', a, b]);
    expect(together).toHaveLength(2 * alone.length);
    expect(together.filter((f) => f.host === 'node-a')).toHaveLength(alone.length);
    expect(together.filter((f) => f.host === 'node-b')).toHaveLength(alone.length);
  });

  it('rotated files named newest first are read oldest first: the same findings as the whole log', () => {
    const lines = readFileSync(behaviour, 'utf8').split('\n').filter(Boolean);
    // Cut between two events (before a SYSCALL record: each event starts with one here), near the middle.
    const cut = lines.findIndex((l, i) => i >= lines.length / 2 && /^(node=\S+ )?type=SYSCALL /.test(l));
    expect(cut).toBeGreaterThan(0);
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-rotated-'));
    const older = path.join(dir, 'audit.log.1');
    const newer = path.join(dir, 'audit.log');
    writeFileSync(older, lines.slice(0, cut).join('\n') + '\n');
    writeFileSync(newer, lines.slice(cut).join('\n') + '\n');
    const whole = json([behaviour]);
    expect(json([newer, older])).toEqual(whole);
    const times = whole.map((f) => Date.parse(f.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});

describe.skipIf(!built)('credwatch replay: compressed and unreadable input (issue 15 item 6)', () => {
  const behaviour = path.join(ROOT, 'test/fixtures/behaviours/api-bearer-curl.log');
  const kubeLog = path.join(ROOT, 'test/fixtures/kube/audit2rbac-demo.log');
  const tmp = (name: string, data: Buffer | string): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-replay-'));
    const p = path.join(dir, name);
    writeFileSync(p, data);
    return p;
  };

  it('reads gzip by its magic bytes, whatever the name: same findings as the plain file', () => {
    // On main: "N unparsable records", 0 findings, exit 0.
    const plain = credwatch(['replay', '--json', behaviour]);
    expect(plain.code).toBe(0);
    const n = plain.stdout.split('\n').filter(Boolean).length;
    expect(n).toBeGreaterThan(0);
    for (const name of ['audit.log', 'audit.log.gz']) {
      const gz = credwatch(['replay', '--json', tmp(name, gzipSync(readFileSync(behaviour)))]);
      expect(gz.code).toBe(0);
      expect(gz.stderr).not.toMatch(/unparsable/);
      expect(gz.stdout.split('\n').filter(Boolean)).toHaveLength(n);
    }
    const viaStdin = credwatch(['replay', '--json', '-'], gzipSync(readFileSync(behaviour)));
    expect(viaStdin.stdout.split('\n').filter(Boolean)).toHaveLength(n);
    const events = credwatch(['replay', '--events', tmp('x', gzipSync(readFileSync(behaviour)))]);
    expect(events.stdout).toBe(credwatch(['replay', '--events', behaviour]).stdout);
  }, 90_000); // six CLI start-ups

  it('reads a gzipped Kubernetes audit log too', () => {
    const plain = credwatch(['replay', '--json', kubeLog]);
    const gz = credwatch(['replay', '--json', tmp('k8s.log', gzipSync(readFileSync(kubeLog)))]);
    expect(gz.code).toBe(0);
    expect(gz.stdout.split('\n').filter(Boolean).length).toBe(plain.stdout.split('\n').filter(Boolean).length);
  });

  it('a truncated gzip file is an error (exit 1), not an empty report', () => {
    const whole = gzipSync(readFileSync(behaviour));
    const r = credwatch(['replay', '--json', tmp('cut.gz', whole.subarray(0, whole.length - 20))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unexpected end of file/);
  });

  it('a file that is all unparsable is exit 1 with the count; one bad line among good ones is not', () => {
    const junk = Array.from({ length: 40 }, (_, i) => `garbage line ${i} \u0001\u0002`).join('\n') + '\n';
    const r = credwatch(['replay', '--json', tmp('junk.log', junk)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/junk\.log: nothing could be read \(40 unparsable records, 0 parsed\)/);
    const mixed = credwatch(['replay', '--json', tmp('mixed.log', readFileSync(behaviour, 'utf8') + 'garbage\n')]);
    expect(mixed.code).toBe(0);
  });

  it('--events too: a file of garbage is exit 1 with the count, on the C++ and the TypeScript path', () => {
    const junk = tmp('junk-events.log', Array.from({ length: 30 }, (_, i) => `garbage ${i}`).join('\n') + '\n');
    for (const env of [{}, { CREDWATCH_REPLAY_NATIVE: '0' }]) {
      const r = credwatch(['replay', '--events', junk], undefined, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/junk-events\.log: nothing could be read \(30 unparsable records, 0 parsed\)/);
    }
  });

  it('a file that is one line over the length limit is exit 1 in both modes; such a line among good ones is counted', () => {
    const huge = tmp('one-huge-line.log', 'a'.repeat(2 * 1024 * 1024) + '\n');
    for (const mode of [['--json'], ['--events']]) {
      const r = credwatch(['replay', ...mode, huge]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/one-huge-line\.log: nothing could be read \(1 overlong line skipped, 0 parsed\)/);
    }
    const mixed = credwatch(['replay', '--json', tmp('huge-among-good.log', readFileSync(behaviour, 'utf8') + 'a'.repeat(2 * 1024 * 1024) + '\n')]);
    expect(mixed.code).toBe(0);
    expect(mixed.stderr).toMatch(/1 overlong lines skipped/);
  });

  it('a kube audit file whose every line is bad is exit 1 with the count', () => {
    const bad = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":\n'.repeat(5);
    const r = credwatch(['replay', '--json', tmp('kube-bad.log', bad)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/kube-bad\.log: nothing could be read \(5 bad kube audit lines, 0 parsed\)/);
  });
});
