/**
 * Differential test for findings mode's native path (issue 23): `credwatch replay --json` with the
 * native scanner and triage (boring events handed up as process notes, src/cli/commands/replay-native.ts)
 * against the same CLI with CREDWATCH_REPLAY_NATIVE=0 (every event built in TypeScript). Findings must
 * be byte-identical on every audit fixture, on the bench sample when one was recorded, on names an
 * attacker shapes to dodge a literal search (hex, relative, `//`, `/./`, `..`, several keys), and with
 * the Sigma corpus rules loaded. The --stats line must show that the native path was taken.
 *
 * Repeat collapse (native/repeat_cache.h in the scanner): a generated storm of thousands of passed
 * execs, connects and opens equal but for stamp, pid and a0..a3, with look-alikes among them that
 * differ only in uid, exe, node, opened path or (same records) the container the process runs in,
 * must give the full path's findings too: incident counts, first/last seen, revisions.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileSigmaDocument } from '../../../src/detect/sigma/compile';
import { fixtureFiles } from '../../helpers/fixture-events';

const ROOT = path.join(__dirname, '../../..');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'));
/** A busy benign node recorded by Debian's auditd (committed, so CI has it; the bench's own sample is not). */
const BENIGN = path.join(ROOT, 'test/fixtures/behaviours/benign.log.gz');
const SIGMA = path.join(ROOT, 'test/fixtures/sigma/rules/linux');

function replay(args: string[], native: boolean): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, CREDWATCH_REPLAY_NATIVE: native ? '1' : '0' };
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/credwatch'), 'replay', '--json', '--stats', '--jobs', '1', ...args], { encoding: 'utf8', env, maxBuffer: 256 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs both paths; returns the findings lines after checking they are the same. */
function same(args: string[]): { lines: string[]; stats: string } {
  const fast = replay(args, true);
  const full = replay(args, false);
  expect(fast.code, fast.stderr).toBe(full.code);
  const a = fast.stdout.split('\n');
  const b = full.stdout.split('\n');
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) expect(`line ${i + 1}: ${a[i]}`).toBe(`line ${i + 1}: ${b[i]}`);
  expect(a.length).toBe(b.length);
  return { lines: a.filter((l) => l !== ''), stats: fast.stderr };
}

function triagedOut(stats: string): number {
  const m = /native scanner: .* (\d+) triaged out as process notes/.exec(stats);
  expect(m, `no native scanner line in: ${stats}`).not.toBeNull();
  return Number(m![1]);
}

/** The Sigma corpus rules credwatch compiles (auditd, process_creation), flat in one directory. */
function sigmaDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-findings-sigma-'));
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(d, e.name)] : []));
  let n = 0;
  for (const file of walk(SIGMA)) {
    const text = fs.readFileSync(file, 'utf8');
    try {
      compileSigmaDocument(parseDocument(text).toJS() as Record<string, unknown>, file, () => ({ line: 1, col: 1 }));
    } catch {
      continue; // a rule credwatch refuses would make the whole directory a usage error
    }
    fs.writeFileSync(path.join(dir, `${n++}-${path.basename(file)}`), text);
  }
  return dir;
}

/** pod-cat-token.log with the token's PATH name rewritten (the exec and argv stay as recorded). */
function hostileLogs(): string[] {
  const src = fs.readFileSync(path.join(ROOT, 'test/fixtures/behaviours/pod-cat-token.log'), 'utf8');
  const token = '/run/secrets/kubernetes.io/serviceaccount/token';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-findings-hostile-'));
  const names: [string, string][] = [
    ['hex', Buffer.from(token).toString('hex').toUpperCase()],
    ['upper-hex-free', `"${token.toUpperCase()}"`],
    ['double-slash', `"/run//secrets/kubernetes.io/serviceaccount/token"`],
    ['dot', `"/run/./secrets/kubernetes.io/serviceaccount/token"`],
    ['dotdot', `"/run/x/../secrets/kubernetes.io/serviceaccount/token"`],
    ['relative', `"serviceaccount/token"`],
    ['null', '(null)'],
  ];
  const out = names.map(([what, name]) => {
    const p = path.join(dir, `${what}.log`);
    fs.writeFileSync(p, src.split(`name="${token}"`).join(`name=${name}`));
    return p;
  });
  // Several keys (hex, joined by \x01) of which one is a watch key: a hit on a watched object.
  const keys = Buffer.from('other\x01credwatch:pod-token').toString('hex').toUpperCase();
  const k = path.join(dir, 'keys.log');
  fs.writeFileSync(k, src.replace(/ key=("[^"]*"|\(null\)|[0-9A-F]+)/g, ` key=${keys}`));
  out.push(k);
  return out;
}

/** One generated log: each event's lines restamped with the next serial, then edited. */
class StormLog {
  readonly lines: string[] = [];
  private serial = 3_000_000;
  private ms = 1_795_356_000_000;
  put(event: string[], ...edits: ((line: string) => string)[]): void {
    const stamp = `audit(${Math.floor(this.ms / 1000)}.${String(this.ms % 1000).padStart(3, '0')}:${this.serial})`;
    for (const l of event) this.lines.push(edits.reduce((t, e) => e(t), l.replace(/audit\(\d+\.\d{3}:\d+\)/, stamp)));
    this.serial++;
    this.ms += 3;
  }
}

/** Sets a field of the SYSCALL record (the first ` name=` in it). */
const syscallField = (name: string, value: string | number) => (l: string): string => (/ type=SYSCALL /.test(` ${l.slice(0, 40)}`) ? l.replace(new RegExp(` ${name}=[^ ]+ `), ` ${name}=${value} `) : l);
const hex = (n: number): string => n.toString(16);

/**
 * A storm built from recorded events (docker-tcp-curl.log, pod-cat-token.log): `n` curl processes
 * each exec'd and connecting to the Docker API (127.0.0.1:2375), with at the middle a connect by
 * another uid, by another exe and from another node, then a runtime exec under the storm's parent
 * (its later children, same records but for the pid, are in a container); and `n` cat processes in
 * a pod reading its token, with one reading another file of the pod's service account.
 */
function stormLog(n: number): string {
  const read = (f: string): string[] => fs.readFileSync(path.join(ROOT, 'test/fixtures/behaviours', f), 'utf8').split('\n').filter((l) => l !== '');
  const curl = read('docker-tcp-curl.log');
  const pod = read('pod-cat-token.log');
  const of = (lines: string[], serial: number): string[] => lines.filter((l) => l.includes(`:${serial}): `));
  const [exec, connect, runc, cat, open] = [of(curl, 1444995), of(curl, 1444998), of(pod, 1444220), of(pod, 1444223), of(pod, 1444224)];
  const log = new StormLog();
  const pid = syscallField.bind(null, 'pid');
  for (let i = 0; i < n; i++) {
    log.put(exec, pid(30000 + i), syscallField('a0', hex(0x55000000 + i)));
    log.put(connect, pid(30000 + i), syscallField('a1', hex(0x7ffe0000 + i)));
    if (i !== n / 2) continue;
    log.put(connect, pid(30000 + i), syscallField('uid', 1000));
    log.put(connect, pid(30000 + i), syscallField('exe', '"/usr/bin/wget"'));
    log.put(connect, (l) => l.replace(/^node=[^ ]+ /, 'node=other-node '), pid(30000 + i));
    log.put(runc, syscallField('ppid', 10690), pid(41000));
  }
  log.put(runc);
  for (let i = 0; i < n; i++) {
    log.put(cat, pid(50000 + i));
    log.put(open, pid(50000 + i), syscallField('a1', hex(0x7ffe1000 + i)));
    if (i !== n / 2) continue;
    log.put(cat, pid(60000));
    log.put(open, pid(60000), (l) => l.replace('name="/run/secrets/', 'name="/var/run/secrets/'));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-findings-storm-'));
  const file = path.join(dir, 'storm.log');
  fs.writeFileSync(file, log.lines.join('\n') + '\n');
  return file;
}

/** The repeat collapse counts of the --stats line. */
function repeatStats(stats: string): { sent: number; templates: number; decided: number; rebuilt: number; lost: number } {
  const m = /repeat collapse: (\d+) passed events sent as repeats of (\d+) templates .* (\d+) decided from their template, (\d+) rebuilt for the full path, (\d+) lost/.exec(stats);
  expect(m, `no repeat collapse line in: ${stats}`).not.toBeNull();
  return { sent: Number(m![1]), templates: Number(m![2]), decided: Number(m![3]), rebuilt: Number(m![4]), lost: Number(m![5]) };
}

describe.skipIf(!built)('replay findings: native triage path = TypeScript path', () => {
  // Every fixture in one replay (two CLI runs, not two per file: the machine is shared); the files'
  // state carries across, as it does for an operator's list of files.
  it('every audit fixture, with the pack', { timeout: 120_000 }, () => {
    const files = fixtureFiles(/\.log(\.gz)?$/);
    expect(files.length).toBeGreaterThan(20);
    const r = same(files);
    // The comparison means something only if both findings and triaged-out events occurred.
    expect(r.lines.length).toBeGreaterThan(10);
    expect(triagedOut(r.stats)).toBeGreaterThan(100);
  });

  it('every audit fixture with the Sigma corpus rules loaded', { timeout: 120_000 }, () => {
    const dir = sigmaDir();
    expect(fs.readdirSync(dir).length).toBeGreaterThan(50);
    const r = same(['--rules-dir', dir, ...fixtureFiles(/\.log(\.gz)?$/)]);
    expect(r.lines.length).toBeGreaterThan(10);
    // Sigma auditd rules read every record: nothing may be triaged out.
    expect(triagedOut(r.stats)).toBe(0);
  });

  it('a benign workload recorded by auditd (most events triaged out)', { timeout: 60_000 }, () => {
    const r = same([BENIGN]);
    const events = Number(/(\d+) events/.exec(r.stats)?.[1]);
    expect(triagedOut(r.stats)).toBeGreaterThan(events / 2);
  });

  it('a storm of repeats with look-alikes among them: collapsed, and the full path\'s incidents', { timeout: 120_000 }, () => {
    const n = 2000;
    const r = same([stormLog(n)]);
    const rs = repeatStats(r.stats);
    // Every passed event but the templates went up as a repeat (4n: n execs and n connects of curl,
    // n execs and n token opens of cat), and every repeat was decided or rebuilt, none lost.
    expect(rs.sent).toBeGreaterThan(3.9 * n);
    expect(rs.decided + rs.rebuilt).toBe(rs.sent);
    expect(rs.lost).toBe(0);
    // Each look-alike (uid, exe, node, runc's parent, path) is a template of its own, never a repeat of
    // the storm's: 2 curl shapes + 3 connect look-alikes + 2 runc + 2 cat shapes + 1 open look-alike.
    expect(rs.templates).toBe(10);
    // The curl and cat execs and the connects are decided from their templates; a token read inside
    // the pod asks the reader baseline (contextual: its outcome cannot stand for repeats), so the opens
    // are rebuilt, and so are the container's first children: same records as the host's but for the
    // pid, another process.
    expect(rs.decided).toBeGreaterThan(2.9 * n);
    expect(rs.rebuilt).toBeGreaterThan(n);
    const incidents = r.lines.map((l) => JSON.parse(l) as { rule: string; host: string; count: number; container: { id: string } | null; incident: { actor: string; object: string } });
    const docker = incidents.filter((f) => f.rule === 'h9-docker-remote-api');
    const host = docker.find((f) => f.host === 'lab-node' && f.container === null);
    const inContainer = docker.find((f) => f.container !== null);
    const other = docker.find((f) => f.host === 'other-node');
    // Each look-alike's incident is its own, with the count the full path gives it (same() compared them).
    expect(host?.count).toBeGreaterThan(n / 2);
    expect(inContainer?.count).toBeGreaterThan(n / 3);
    expect(other?.count).toBe(1);
    // The pod's incident counts every read and exec, the look-alike path's among them (its own
    // template: the engine files it under the same token object, as the full path does).
    expect(incidents.find((f) => f.rule === 'h1-sa-token-read')?.count).toBe(2 * n + 2);
  });

  it('names and keys shaped to dodge a literal search give the same findings', { timeout: 120_000 }, () => {
    const logs = hostileLogs();
    const found = new Map(logs.map((f) => [path.basename(f, '.log'), same([f]).lines.length]));
    // The hex name and the watch key are what the engine reads: the triage must let those through.
    expect(found.get('hex')).toBeGreaterThan(0);
    expect(found.get('keys')).toBeGreaterThan(0);
  });
});
