/**
 * Differential test for findings mode's native path (issue 23): `credwatch replay --json` with the
 * native scanner and triage (boring events handed up as process notes, src/cli/commands/replay-native.ts)
 * against the same CLI with CREDWATCH_REPLAY_NATIVE=0 (every event built in TypeScript). Findings must
 * be byte-identical on every audit fixture, on the bench sample when one was recorded, on names an
 * attacker shapes to dodge a literal search (hex, relative, `//`, `/./`, `..`, several keys), and with
 * the Sigma corpus rules loaded. The --stats line must show that the native path was taken.
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

  it('names and keys shaped to dodge a literal search give the same findings', { timeout: 120_000 }, () => {
    const logs = hostileLogs();
    const found = new Map(logs.map((f) => [path.basename(f, '.log'), same([f]).lines.length]));
    // The hex name and the watch key are what the engine reads: the triage must let those through.
    expect(found.get('hex')).toBeGreaterThan(0);
    expect(found.get('keys')).toBeGreaterThan(0);
  });
});
