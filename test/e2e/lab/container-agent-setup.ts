/**
 * Imported first by attack-lab-in-container.test.ts, while vitest collects (no hook timeout, no
 * dockerd yet): builds the .deb if needed, the image's root tarball from it, and makes
 * /var/lib/kubelet/pods a shared mount so that pod token tmpfs mounted later propagate into the
 * container (HostToContainer), as the kubelet does on a node (it makes its root dir rshared).
 * Sets CREDWATCH_E2E_AGENT_IMAGE_TAR for lab/daemon.ts, or CREDWATCH_E2E_CONTAINER_SKIP with the
 * reason. undoContainerSetup() puts the mount back.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../helpers/daemon';
import { ensureDeb, packagingSkipReason } from '../../helpers/package-build';
import { AGENT_IMAGE_TAR_ENV } from './agent-container';
import { labSkipReason } from './attack-lab';

const PODS_DIR = '/var/lib/kubelet/pods';
const undo: (() => void)[] = [];

function prepare(): void {
  // When the lab itself will skip, set nothing up: its afterAll (which undoes this) would not run.
  const reason = packagingSkipReason() ?? labSkipReason();
  if (reason) {
    process.env.CREDWATCH_E2E_CONTAINER_SKIP = reason;
    return;
  }
  const deb = ensureDeb();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-image-'));
  undo.push(() => fs.rmSync(work, { recursive: true, force: true }));
  const tar = path.join(work, 'image-root.tar');
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/build-image-offline.sh'), '--save-tar', tar, deb], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`building the image root: ${r.stderr}`);

  const created: string[] = [];
  for (let d = PODS_DIR; !fs.existsSync(d); d = path.dirname(d)) created.unshift(d);
  fs.mkdirSync(PODS_DIR, { recursive: true });
  undo.push(() => {
    for (const d of created.reverse()) fs.rmdirSync(d);
  });
  const bind = spawnSync('mount', ['--rbind', PODS_DIR, PODS_DIR], { encoding: 'utf8' });
  if (bind.status !== 0) throw new Error(`mount --rbind ${PODS_DIR}: ${bind.stderr}`);
  undo.push(() => spawnSync('umount', ['-R', PODS_DIR]));
  const shared = spawnSync('mount', ['--make-rshared', PODS_DIR], { encoding: 'utf8' });
  if (shared.status !== 0) throw new Error(`mount --make-rshared ${PODS_DIR}: ${shared.stderr}`);
  process.env[AGENT_IMAGE_TAR_ENV] = tar;
}

export function undoContainerSetup(): void {
  for (const fn of undo.splice(0).reverse()) fn();
}

try {
  prepare();
} catch (err) {
  undoContainerSetup();
  throw err;
}
