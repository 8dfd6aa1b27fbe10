/**
 * The built artefacts the packaging tests install: the .deb (`npm run package`), the cached
 * debootstrap root it is installed into, and the image made from both. Building the .deb takes ~2 min
 * (xz of the Node runtime), so it is rebuilt only when what goes into it changed: a hash of the built
 * JavaScript, the prebuild inputs, the launcher, units, maintainer scripts and package.json is kept
 * beside it (dist/packages/.build-key). Everything here is synchronous: the tests call it while
 * collecting, where no hook timeout applies.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './daemon';
import { which } from './docker-lab';

const PACKAGE_INPUTS = ['dist/src', 'native', 'binding.gyp', 'bin', 'systemd', 'packaging', 'scripts/package-deb.sh', 'scripts/lib', 'package.json', 'package-lock.json', 'README.md'];

export const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function filesUnder(p: string): string[] {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return [];
  if (!st.isDirectory()) return [p];
  return fs.readdirSync(p).sort().flatMap((n) => filesUnder(path.join(p, n)));
}

function buildKey(): string {
  const h = crypto.createHash('sha256');
  for (const rel of PACKAGE_INPUTS) {
    for (const f of filesUnder(path.join(REPO_ROOT, rel))) {
      h.update(path.relative(REPO_ROOT, f)).update('\0').update(fs.readFileSync(f)).update('\0');
    }
  }
  return h.digest('hex');
}

/** Why the packaging tests cannot run here, or null. */
export function packagingSkipReason(): string | null {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid?.() !== 0) return 'needs root (chroot, dpkg -i into a root, mounts)';
  const missing = ['dpkg-deb', 'dpkg-shlibdeps', 'chroot', 'tar'].filter((t) => !which(t));
  if (missing.length > 0) return `missing tools: ${missing.join(', ')} (apt-get install dpkg-dev)`;
  if (!which('debootstrap') && !fs.existsSync(cachedRootTar())) return 'debootstrap is not installed (apt-get install debootstrap)';
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js'))) return 'dist/ is not built (npm run build:ts)';
  return null;
}

function cacheDir(): string {
  return process.env.CREDWATCH_CACHE ?? '/var/tmp/credwatch-cache';
}

function cachedRootTar(): string {
  const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
  const suite = /^VERSION_CODENAME=(.*)$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  return path.join(cacheDir(), `debootstrap-${suite}-${arch}.tar`);
}

function runScript(script: string, args: string[] = [], timeoutMs = 900_000): string {
  const r = spawnSync('bash', [path.join(REPO_ROOT, script), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout.trim().split('\n').pop() ?? '';
}

/** The .deb for the current tree: the one in dist/packages when its build key matches, else a new build. */
export function ensureDeb(): string {
  const key = buildKey();
  const dir = path.join(REPO_ROOT, 'dist/packages');
  const keyFile = path.join(dir, '.build-key');
  const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
  const deb = path.join(dir, `credwatch_${PACKAGE_VERSION}_${arch}.deb`);
  if (fs.existsSync(deb) && fs.existsSync(keyFile) && fs.readFileSync(keyFile, 'utf8') === key) return deb;
  const built = runScript('scripts/package-deb.sh');
  // The build itself runs tsc again: the key is taken afterwards, over what went into the package.
  fs.writeFileSync(keyFile, buildKey());
  return built;
}

/** The cached pristine debootstrap root tarball (built on first use: ~1 min). */
export function ensureRootTar(): string {
  return runScript('scripts/debootstrap-root.sh');
}

/** A fresh copy of the debootstrap root in a temp dir; the caller removes it. */
export function unpackRoot(tar = ensureRootTar()): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-root-'));
  const r = spawnSync('tar', ['-C', dir, '--numeric-owner', '-xf', tar], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -xf ${tar}: ${r.stderr}`);
  return dir;
}

/** The offline image (scripts/build-image-offline.sh) for the current .deb; returns its name. */
export function ensureImage(deb = ensureDeb()): string {
  return runScript('scripts/build-image-offline.sh', [deb]);
}
