/**
 * `npm pack` carries both native parts prebuilt (scripts/npm-pack-natives.sh), so the tarball
 * installs with `npm install -g` on a PATH with no compiler: no g++, gcc, cc, make. The registry is
 * used for the pure-JavaScript dependencies only; the test skips, saying so, when it does not answer.
 * No kernel audit is touched (no lab lock needed).
 *   npx vitest run test/packaging/npm-pack.test.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding';
import { REPO_ROOT } from '../helpers/daemon';
import { PACKAGE_VERSION } from '../helpers/package-build';

const COMPILERS = /^(g\+\+|gcc|cc|c\+\+|cpp|make|gmake|clang|c89|c99|x86_64-linux-gnu-(gcc|g\+\+|cpp)).*$/;

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'Linux only';
  if (!fs.existsSync(path.join(REPO_ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))) return 'better-sqlite3 is not built (npm ci)';
  const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 20_000 });
  if (ping.status !== 0) return `the npm registry does not answer (npm ping): ${(ping.stderr ?? '').trim().split('\n').pop()}`;
  return null;
}

const reason = skipReason();
if (reason) console.warn(`[skip] npm pack + npm install -g without a compiler: ${reason}`);

describe.skipIf(reason !== null)('npm pack installs with npm install -g and no compiler on PATH', () => {
  let work = '';
  let prefix = '';
  let noCompilerPath = '';
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: noCompilerPath, npm_config_nodedir: '' });

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-pack-'));
    // A PATH holding everything this machine has except compilers and make.
    noCompilerPath = path.join(work, 'bin');
    fs.mkdirSync(noCompilerPath);
    for (const dir of (process.env.PATH ?? '').split(':').filter((d) => d !== '' && fs.existsSync(d))) {
      for (const name of fs.readdirSync(dir)) {
        const link = path.join(noCompilerPath, name);
        if (!COMPILERS.test(name) && !fs.existsSync(link)) fs.symlinkSync(path.join(dir, name), link);
      }
    }
    const pack = spawnSync('npm', ['pack', '--pack-destination', work], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000 });
    if (pack.status !== 0) throw new Error(`npm pack: ${pack.stderr}`);
    prefix = path.join(work, 'prefix');
    const tgz = path.join(work, `credwatch-${PACKAGE_VERSION}.tgz`);
    console.log(`npm tarball: ${(fs.statSync(tgz).size / 1e6).toFixed(1)} MB`);
    const inst = spawnSync('npm', ['install', '-g', '--prefix', prefix, tgz], { cwd: work, encoding: 'utf8', env: env(), timeout: 300_000 });
    if (inst.status !== 0) throw new Error(`npm install -g: ${inst.stderr.slice(-3000)}`);
  }, 900_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('the PATH used really has no compiler', () => {
    const r = spawnSync('sh', ['-c', 'command -v g++ || command -v gcc || command -v cc || command -v make || echo none'], { encoding: 'utf8', env: env() });
    expect(r.stdout.trim()).toBe('none');
  });

  it('the tarball left the source checkout as it was (postpack restored better-sqlite3)', () => {
    const orig = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { scripts: { install: string } };
    expect(orig.scripts.install).not.toContain('bindings');
    expect(fs.existsSync(path.join(REPO_ROOT, 'node_modules/better-sqlite3/package.json.credwatch-orig'))).toBe(false);
  });

  it('installed the prebuilt addon and better-sqlite3 binary, compiled nothing', () => {
    const root = path.join(prefix, 'lib/node_modules/credwatch');
    expect(fs.existsSync(path.join(root, `prebuilds/${process.platform}-${process.arch}/credwatch.node`))).toBe(true);
    expect(fs.existsSync(path.join(root, 'build'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'node_modules/better-sqlite3/build'))).toBe(false);
  });

  it('credwatch --version and a replay with findings run from the global install', () => {
    const bin = path.join(prefix, 'bin/credwatch');
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8', env: env() });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(PACKAGE_VERSION);
    const r = spawnSync(bin, ['replay', '--json', path.join(REPO_ROOT, 'test/fixtures/behaviours/kubectl-get-secrets.log')], { encoding: 'utf8', env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Finding).rule)).toContain('h5-kubectl-secret-access');
  });

  it('both native modules load from the global install', () => {
    const root = path.join(prefix, 'lib/node_modules/credwatch');
    const script =
      `const b = require(${JSON.stringify(path.join(root, 'dist/src/native/binding.js'))}); b.loadNative();` +
      `const D = require(${JSON.stringify(path.join(root, 'node_modules/better-sqlite3'))});` +
      `console.log(new D(':memory:').prepare('select 41 + 1 as v').get().v);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: env() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('42');
  });
});
