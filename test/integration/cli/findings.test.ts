import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/store';
import type { Finding } from '../../../src/model/finding';
import { makeFinding } from '../../unit/store/fixtures';
import { displayWidth } from '../../../src/cli/render/escape';
import { BIN, builtCliExists, cleanupTempDbs, cli, cliAsync, jsonLines, tempDb } from './helpers';

const built = builtCliExists();
afterAll(cleanupTempDbs);
if (!built) console.log('skipping CLI tests: dist/ is missing; run `npx tsc -p tsconfig.build.json && node scripts/copy-assets.js` first');

const NOW = Date.now();
const MIN = 60_000;
const HOST = os.hostname();

describe.skipIf(!built)('credwatch findings', () => {
  let t: ReturnType<typeof tempDb>;
  let seeded: Finding[];

  beforeAll(() => {
    t = tempDb();
    seeded = [
      makeFinding({ id: 'aaa-low-old', time: NOW - 5 * 60 * MIN, severity: 'low', rule: 'r.read', host: HOST }),
      makeFinding({ id: 'bbb-med', time: NOW - 90 * MIN, severity: 'medium', rule: 'r.connect', container: '0123456789abcdef'.repeat(4), host: HOST }),
      makeFinding({ id: 'ccc-high', time: NOW - 20 * MIN, severity: 'high', rule: 'r.read', container: 'fedcba9876543210'.repeat(4), host: HOST }),
      makeFinding({ id: 'ddd-crit', time: NOW - 5 * MIN, severity: 'critical', rule: 'r.seq', container: '0123456789abcdef'.repeat(4), host: HOST, evidence: 2 }),
    ];
    const s = openStore(t.db);
    s.insertFindings(seeded);
    s.close();
  });
  afterAll(() => t.cleanup());

  const ids = (...args: string[]) => {
    const r = cli(['findings', '--json', '--db', t.db, ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return jsonLines(r.stdout).map((f) => (f as Finding).id);
  };

  it('lists newest first and filters by since/until, severity, rule, container and limit', () => {
    expect(ids()).toEqual(['ddd-crit', 'ccc-high', 'bbb-med', 'aaa-low-old']);
    expect(ids('--since', '1h')).toEqual(['ddd-crit', 'ccc-high']);
    expect(ids('--since', '30m')).toEqual(['ddd-crit', 'ccc-high']);
    expect(ids('--since', '2h', '--until', '10m')).toEqual(['ccc-high', 'bbb-med']);
    expect(ids('--until', new Date(NOW - 60 * MIN).toISOString())).toEqual(['bbb-med', 'aaa-low-old']);
    expect(ids('--since', new Date(NOW - 1 * 86_400_000).toISOString().slice(0, 10))).toHaveLength(4);
    expect(ids('--min-severity', 'high')).toEqual(['ddd-crit', 'ccc-high']);
    expect(ids('--min-severity', 'critical')).toEqual(['ddd-crit']);
    expect(ids('--min-severity', 'info')).toEqual(['ddd-crit', 'ccc-high', 'bbb-med', 'aaa-low-old']);
    expect(ids('--rule', 'r.read')).toEqual(['ccc-high', 'aaa-low-old']);
    expect(ids('--container', '0123456789ab')).toEqual(['ddd-crit', 'bbb-med']);
    expect(ids('--container', 'FEDCBA')).toEqual(['ccc-high']);
    expect(ids('--limit', '2')).toEqual(['ddd-crit', 'ccc-high']);
    expect(ids('--rule', 'r.read', '--min-severity', 'medium')).toEqual(['ccc-high']);
    expect(ids('--rule', 'nope')).toEqual([]);
  });

  it('--json prints one complete Finding per line, evidence included', () => {
    const r = cli(['findings', '--format', 'json', '--db', t.db]);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    const byId = new Map(seeded.map((f) => [f.id, f]));
    for (const line of lines) {
      const f = JSON.parse(line) as Finding;
      expect(f).toEqual(byId.get(f.id));
    }
  });

  it('prints a table with one row per finding and short container ids; no HOST column when all are local', () => {
    const r = cli(['findings', '--db', t.db]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^ID\s+TIME\s+SEVERITY\s+RULE\s+CONTAINER\s+PROCESS$/);
    expect(lines[1]).toMatch(/^ddd-crit\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+critical\s+r\.seq\s+0123456789ab\s+\/usr\/bin\/curl -s https/);
    expect(lines[4]).toMatch(/low\s+r\.read\s+-\s+\/usr\/bin\/curl/);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  if (!hasScript) console.log('skipping the pseudo-terminal table test: util-linux `script` is not installed');
  it.skipIf(!hasScript)('on a real terminal (pseudo-TTY of 100 columns) rows are narrowed to the width', () => {
    const r = spawnSync('script', ['-qec', `stty cols 100; ${process.execPath} ${BIN} findings --db ${t.db}`, '/dev/null'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stdout.replace(/\r/g, '').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TIME\s+SEVERITY\s+RULE\s+CONTAINER\s+PROCESS$/);
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(lines[1]).toMatch(/0123456789ab {2}\/usr\/bin\/curl -s.*…\[\+\d+ bytes\]$/);
  });

  it.skipIf(!hasScript)('on an 80-column terminal rows with wide characters (CJK, emoji) fit in 80 columns, not 80 UTF-16 units', () => {
    const w = tempDb();
    const st = openStore(w.db);
    st.insertFindings([
      makeFinding({ id: 'wide-1', time: NOW - MIN, rule: 'r.读取令牌', exe: '/opt/工具/密钥读取器-🔑-' + '漢'.repeat(40), host: HOST }),
      makeFinding({ id: 'narrow-1', time: NOW - 2 * MIN, rule: 'r.read', host: HOST }),
    ]);
    st.close();
    const r = spawnSync('script', ['-qec', `stty cols 80; ${process.execPath} ${BIN} findings --db ${w.db}`, '/dev/null'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stdout.replace(/\r/g, '').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(displayWidth(l), l).toBeLessThanOrEqual(80);
    const wide = lines.find((l) => l.startsWith('wide-1'))!;
    expect(wide).toContain('r.读取令牌');
    expect(wide).toMatch(/…\[\+\d+ bytes\]$/);
    // The columns line up in terminal columns: PROCESS starts at the same column in every row.
    const col = (l: string, needle: string): number => displayWidth(l.slice(0, l.indexOf(needle)));
    expect(col(wide, '/opt/')).toBe(col(lines.find((l) => l.startsWith('narrow-1'))!, '/usr/bin/curl'));
  });

  it('tells a table reader (on stderr) when --limit cut the list, and not otherwise', () => {
    const cut = cli(['findings', '--db', t.db, '--limit', '3']);
    expect(cut.stdout.trimEnd().split('\n')).toHaveLength(4);
    expect(cut.stderr).toContain('showing the newest 3; more match');
    expect(cli(['findings', '--db', t.db, '--limit', '4']).stderr).toBe('');
    expect(cli(['findings', '--db', t.db, '--limit', '3', '--json']).stderr).toBe('');
  });

  it('says "No findings." in table mode when nothing matches', () => {
    const r = cli(['findings', '--db', t.db, '--rule', 'nope']);
    expect(r.stdout).toBe('No findings.\n');
  });

  it('rejects bad flags with exit 2 and a message naming the flag', () => {
    for (const [args, flag] of [
      [['--since', 'yesterday'], '--since'],
      [['--until', '2026-13-45'], '--until'],
      [['--limit', 'ten'], '--limit'],
      [['--min-severity', 'extreme'], '--min-severity'],
      [['--format', 'xml'], '--format'],
      [['--since', '1h', '--until', '2h'], '--since'],
    ] as const) {
      const r = cli(['findings', '--db', t.db, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(flag);
    }
  });

  it('--help works for each command', () => {
    for (const c of ['findings', 'show', 'status']) {
      const r = cli([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: credwatch ${c}`);
    }
  });
});

describe.skipIf(!built)('hostile process data', () => {
  let t: ReturnType<typeof tempDb>;
  const bigArg = 'A'.repeat(64 * 1024);
  const hostileExe = '/tmp/\u001b[2J\u001b[31mevil\nFAKE ROW\r\u009b1m\u202eexe';
  let hostile: Finding;

  beforeAll(() => {
    t = tempDb();
    hostile = makeFinding({
      id: 'hostile1',
      rule: 'r.\u001b]0;title\u0007x',
      exe: hostileExe,
      argv: [hostileExe, bigArg, 'tab\there', 'bell\u0007', '\u007f\ud800'],
      container: 'c'.repeat(64),
      host: 'other\nhost',
    });
    hostile.evidence[0]!.records.push({ type: 'EXECVE', text: `a0="${bigArg}" \u001b[1m` });
    const s = openStore(t.db);
    s.insertFindings([hostile, makeFinding({ id: 'plain', host: HOST })]);
    s.close();
  });
  afterAll(() => t.cleanup());

  const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

  it('the table escapes control characters, truncates with a marker and keeps one line per row', () => {
    const r = cli(['findings', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('HOST'); // one finding is from another host
    const row = lines.find((l) => l.startsWith('hostile1'))!;
    expect(row).toContain('\\x1b[2J');
    expect(row).toContain('other\\nhost');
    expect(row).toMatch(/…\[\+\d+ bytes\]/);
    for (const l of lines) expect(l.length).toBeLessThan(300);
  });

  it('JSON output stays valid, one object per line, values complete and terminal-safe', () => {
    const r = cli(['findings', '--json', '--db', t.db]);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const all = jsonLines(r.stdout) as Finding[];
    expect(all).toHaveLength(2);
    const f = all.find((x) => x.id === 'hostile1')!;
    expect(f.process!.argv![1]).toBe(bigArg);
    expect(f.process!.exe).toBe(hostileExe);
    expect(f.rule).toBe(hostile.rule);
  });

  it('show escapes everything in the detail view and bounds long values', () => {
    const r = cli(['show', 'hostile', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout.length).toBeLessThan(40_000);
    expect(r.stdout).toContain('\\x1b[2J');
    const j = cli(['show', 'hostile1', '--json', '--db', t.db]);
    expect(JSON.parse(j.stdout)).toEqual(hostile);
  });
});

describe.skipIf(!built)('credwatch show', () => {
  let t: ReturnType<typeof tempDb>;
  let f: Finding;
  beforeAll(() => {
    t = tempDb();
    f = makeFinding({ id: 'abc123def456', container: '9'.repeat(64), evidence: 2 });
    f.container!.pod_uid = '11111111-2222-3333-4444-555555555555';
    const s = openStore(t.db);
    s.insertFindings([f, makeFinding({ id: 'abd999' })]);
    s.close();
  });
  afterAll(() => t.cleanup());

  it('shows one finding by unique prefix with process chain, container/pod and redacted records', () => {
    const r = cli(['show', 'abc1', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Finding     abc123def456');
    expect(r.stdout).toContain('Process chain');
    expect(r.stdout).toMatch(/└─ 1 {2}\/bin\/sh {2}sh -c curl/);
    expect(r.stdout).toContain('9'.repeat(64));
    expect(r.stdout).toContain('11111111-2222-3333-4444-555555555555');
    expect(r.stdout).toContain('Evidence (2 events, redacted)');
    expect(r.stdout).toContain('/var/run/secrets/kubernetes.io/serviceaccount/token');
  });

  it('--json gives exactly the stored finding', () => {
    const r = cli(['show', 'abc123def456', '--json', '--db', t.db]);
    expect(JSON.parse(r.stdout)).toEqual(f);
  });

  it('unknown id exits 1; ambiguous prefix exits 2 listing candidates', () => {
    const u = cli(['show', 'zzz', '--db', t.db]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain('no finding with id or id prefix "zzz"');
    const a = cli(['show', 'ab', '--db', t.db]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('ambiguous');
    expect(a.stderr).toContain('abc123def456');
  });
});

describe.skipIf(!built)('missing, corrupt and unsafe database files', () => {
  it('a missing file: exit 1, says where it looked and who creates it, creates nothing', () => {
    const t = tempDb();
    for (const cmd of [['findings'], ['show', 'x'], ['status']]) {
      const r = cli([...cmd, '--db', t.db]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no findings database at ${t.db}`);
      expect(r.stderr).toContain('credwatch run');
      expect(fs.existsSync(t.db)).toBe(false);
    }
    t.cleanup();
  });

  it('status without a database says the agent has not run (text and --json), exit 1', () => {
    const t = tempDb();
    const r = cli(['status', '--db', t.db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the agent has not run here yet: no findings database at ${t.db}`);
    const j = cli(['status', '--json', '--db', t.db]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ db: t.db, running: false, reason: expect.stringContaining('has not run') });
    expect(fs.existsSync(t.db)).toBe(false);
    t.cleanup();
  });

  it('$CREDWATCH_DB is used when --db is absent', () => {
    const t = tempDb();
    const r = cli(['findings'], { CREDWATCH_DB: t.db });
    expect(r.stderr).toContain(`no findings database at ${t.db}`);
    t.cleanup();
  });

  it('storage.path of --config is used when neither --db nor $CREDWATCH_DB is given, in that order', () => {
    const t = tempDb();
    const other = `${t.dir}/other.db`;
    const cfg = `${t.dir}/config.yaml`;
    fs.writeFileSync(cfg, `storage:\n  path: ${t.db}\n`, { mode: 0o600 });
    for (const cmd of [['findings'], ['show', 'x'], ['status']]) {
      expect(cli([...cmd, '--config', cfg]).stderr).toContain(`no findings database at ${t.db}`);
      expect(cli([...cmd, '--config', cfg], { CREDWATCH_DB: other }).stderr).toContain(`no findings database at ${other}`);
      expect(cli([...cmd, '--config', cfg, '--db', other]).stderr).toContain(`no findings database at ${other}`);
    }
    t.cleanup();
  });

  it('a broken --config: exit 2, naming the file and the key', () => {
    const t = tempDb();
    const cfg = `${t.dir}/config.yaml`;
    fs.writeFileSync(cfg, 'storage:\n  path: relative/findings.db\n', { mode: 0o600 });
    const r = cli(['findings', '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(cfg);
    expect(r.stderr).toContain('storage.path');
    t.cleanup();
  });

  it('a corrupt or foreign file: exit 1, "not a credwatch database", bytes untouched', () => {
    const t = tempDb();
    const variants: Buffer[] = [
      Buffer.from('garbage that is not sqlite\n'.repeat(500)),
      // SQLite's magic followed by garbage
      Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(8192, 0xab)]),
      Buffer.alloc(0),
    ];
    for (const bytes of variants) {
      fs.writeFileSync(t.db, bytes, { mode: 0o600 });
      for (const cmd of [['findings'], ['show', 'x'], ['status']]) {
        const r = cli([...cmd, '--db', t.db]);
        expect(r.code, `${cmd[0]} on ${bytes.length} bytes`).toBe(1);
        expect(r.stderr).toMatch(/not a credwatch database|is corrupt/);
        expect(fs.readFileSync(t.db).equals(bytes)).toBe(true);
        expect(fs.readdirSync(t.dir)).toEqual(['findings.db']);
      }
    }
    t.cleanup();
  });

  it('a database whose pages are damaged: exit 1 with "is corrupt", file untouched', () => {
    const t = tempDb();
    const s = openStore(t.db);
    const big = 'q'.repeat(3000);
    s.insertFindings(Array.from({ length: 300 }, () => {
      const f = makeFinding();
      f.evidence[0]!.records.push({ type: 'EXECVE', text: big });
      return f;
    }));
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    s.close();
    const bytes = fs.readFileSync(t.db);
    for (let i = 8192; i < bytes.length - 4096; i++) bytes[i] = (bytes[i]! * 7 + 13) & 0xff;
    fs.writeFileSync(t.db, bytes);
    for (const cmd of [['findings'], ['status']]) {
      const r = cli([...cmd, '--db', t.db]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the findings database .* is corrupt/);
    }
    expect(fs.readFileSync(t.db).equals(bytes)).toBe(true);
    t.cleanup();
  });

  it('a group/world-writable database is refused (0666), and so is its directory (0777)', () => {
    const t = tempDb();
    openStore(t.db).close();
    fs.chmodSync(t.db, 0o666);
    const r = cli(['findings', '--db', t.db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to open .* group- or world-writable \(mode 0666\)/);
    fs.chmodSync(t.db, 0o600);
    fs.chmodSync(t.dir, 0o777);
    expect(cli(['findings', '--db', t.db]).code).toBe(1);
    fs.chmodSync(t.dir, 0o700);
    expect(cli(['findings', '--db', t.db]).code).toBe(0);
    t.cleanup();
  });
});

describe.skipIf(!built)('queries while another process writes', () => {
  it('never wait for the writer (busy_timeout 0 never fails) and see a growing table while a writer commits every few ms', async () => {
    const t = tempDb();
    openStore(t.db).close();
    const writer = spawn(process.execPath, [`${__dirname}/writer-child.js`, t.db], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.once('data', () => resolve());
        writer.once('exit', (c) => reject(new Error(`writer exited ${c}`)));
      });
      // In this process: a reader that may not wait at all (busy_timeout 0) never meets SQLITE_BUSY.
      const reader = openStore(t.db, { readonly: true, busyTimeoutMs: 0 });
      let queries = 0;
      try {
        const end = Date.now() + 1500;
        while (Date.now() < end) {
          expect(reader.queryFindings({ limit: 50 }).length).toBeGreaterThanOrEqual(20);
          reader.countFindingsSince(0);
          reader.outbox.depth('x');
          queries++;
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        reader.close();
      }
      const counts: number[] = [];
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const [a, b] = await Promise.all([
          cliAsync(['findings', '--json', '--db', t.db]),
          cliAsync(['status', '--json', '--db', t.db]),
        ]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        expect(jsonLines(a.stdout)).toHaveLength(100);
        counts.push((JSON.parse(b.stdout) as { findingsToday: number }).findingsToday);
        times.push(a.ms, b.ms);
      }
      console.log(`concurrent queries: ${queries} in-process queries with busy_timeout 0, ${counts.length * 2} CLI runs, rows seen ${counts[0]}..${counts.at(-1)}, slowest ${Math.max(...times)} ms`);
      for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
      expect(counts.at(-1)!).toBeGreaterThan(counts[0]!);
      // A whole CLI run (node start-up included) stays short: the query never waits for the writer.
      expect(Math.max(...times)).toBeLessThan(5000);
    } finally {
      writer.kill('SIGTERM');
      await new Promise((r) => writer.once('exit', r));
      t.cleanup();
    }
  });
});

describe.skipIf(!built)('a writer killed with SIGKILL mid-stream', () => {
  it('leaves a database that opens cleanly (quick_check ok) with every commit it reported', async () => {
    const t = tempDb();
    openStore(t.db).close();
    const writer = spawn(process.execPath, [`${__dirname}/writer-child.js`, t.db], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, CW_WRITER_REPORT: '1' },
    });
    let out = '';
    writer.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 400));
      writer.kill('SIGKILL');
      await new Promise((r) => writer.once('exit', r));
      const reported = [...out.matchAll(/committed (\d+)/g)].map((m) => Number(m[1]));
      const last = reported.at(-1) ?? 0;
      expect(last).toBeGreaterThan(100);
      const s = openStore(t.db, { quickCheck: true });
      try {
        const ids = new Set((s.db.prepare('SELECT id FROM findings').pluck().all() as string[]));
        for (let i = 1; i <= last; i++) expect(ids.has(`w${writer.pid}-${i}`)).toBe(true);
        expect(s.db.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        s.close();
      }
    } finally {
      if (writer.exitCode === null && writer.signalCode === null) writer.kill('SIGKILL');
      t.cleanup();
    }
  });
});
