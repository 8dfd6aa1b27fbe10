/**
 * The image run without one of the DaemonSet's settings says which one is missing (item 5 of the
 * packaging issue): no host PID namespace and no AUDIT_CONTROL stop it with the setting named; no
 * kubelet pods mount and no SYS_PTRACE leave it running with a warning naming each.
 *
 * Live (kernel audit, dockerd): under the lab lock.
 *   flock /tmp/credwatch-lab.lock npx vitest run test/packaging/image-missing-settings.test.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forceKernelBack, kernelSnapshot, labSkipReason, type KernelSnapshot } from '../e2e/lab/attack-lab';
import { REPO_ROOT } from '../helpers/daemon';
import { dockerRunArgs, loadManifest } from '../helpers/daemonset';
import { ensureDocker, type DockerLab } from '../helpers/docker-lab';
import { ensureDeb, packagingSkipReason } from '../helpers/package-build';

const reason = packagingSkipReason() ?? labSkipReason();
if (reason) console.warn(`[skip] image without the DaemonSet's settings: ${reason}`);
const IMAGE = 'credwatch:missing-settings';

describe.skipIf(reason !== null)("the image without one of the DaemonSet's settings names what is missing", () => {
  let work = '';
  let docker: DockerLab | null = null;
  let kernelBefore: KernelSnapshot | null = null;
  let base: string[] = [];

  /** docker run with the DaemonSet's flags, `drop` removed; stopped after `runMs` when it keeps running. */
  let runs = 0;
  function runWithout(drop: (arg: string) => boolean, runMs: number): { status: number; stoppedByUs: boolean; out: string } {
    const kept: string[] = [];
    for (let i = 0; i < base.length; i++) {
      const a = base[i]!;
      if (a === '--mount' || a === '-e') {
        const v = base[++i]!;
        if (!drop(v)) kept.push(a, v);
      } else if (!drop(a)) {
        kept.push(a);
      }
    }
    const name = `credwatch-missing-${process.pid}-${++runs}`;
    const started = spawnSync('docker', ['run', '-d', '--name', name, ...kept, IMAGE, 'run', '--config', '/etc/credwatch/config.yaml'], { encoding: 'utf8', timeout: 60_000 });
    if (started.status !== 0) throw new Error(`docker run: ${started.stderr}`);
    const running = (): boolean => spawnSync('docker', ['inspect', '-f', '{{.State.Running}}', name], { encoding: 'utf8' }).stdout.trim() === 'true';
    const until = Date.now() + runMs;
    while (Date.now() < until && running()) spawnSync('sleep', ['0.25']);
    const stoppedByUs = running();
    // docker stop: SIGTERM, the agent's clean shutdown (30 s grace as in the DaemonSet).
    if (stoppedByUs) spawnSync('docker', ['stop', '-t', '30', name], { encoding: 'utf8', timeout: 60_000 });
    const status = Number(spawnSync('docker', ['inspect', '-f', '{{.State.ExitCode}}', name], { encoding: 'utf8' }).stdout.trim());
    const logs = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
    spawnSync('docker', ['rm', '-f', name], { encoding: 'utf8' });
    return { status, stoppedByUs, out: `${logs.stdout}\n${logs.stderr}` };
  }

  beforeAll(async () => {
    const deb = ensureDeb();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-missing-'));
    const tar = path.join(work, 'image.tar');
    const script = path.join(REPO_ROOT, 'scripts/build-image-offline.sh');
    const b = spawnSync('bash', [script, '--save-tar', tar, deb], { encoding: 'utf8', timeout: 600_000 });
    if (b.status !== 0) throw new Error(`image root: ${b.stderr}`);
    kernelBefore = kernelSnapshot();
    docker = await ensureDocker();
    const i = spawnSync('bash', [script, '--from-tar', tar, IMAGE], { encoding: 'utf8', timeout: 120_000 });
    if (i.status !== 0) throw new Error(`docker import: ${i.stderr}`);
    const m = loadManifest();
    const configDir = path.join(work, 'etc');
    const stateDir = path.join(work, 'state');
    fs.mkdirSync(configDir);
    fs.mkdirSync(stateDir);
    fs.writeFileSync(path.join(configDir, 'config.yaml'), 'storage:\n  path: /var/lib/credwatch/findings.db\nmetrics:\n  listen: "off"\n');
    // No kubelet on this machine: the pods mount is what the tests below leave out.
    base = dockerRunArgs(m, { configDir, stateDir });
  }, 900_000);

  afterAll(async () => {
    spawnSync('docker', ['rmi', '-f', IMAGE], { encoding: 'utf8' });
    await docker?.stop();
    if (kernelBefore) {
      const forced = forceKernelBack(kernelBefore);
      if (forced.length > 0) console.warn(`kernel state had to be restored: ${forced.join('; ')}`);
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }, 120_000);

  const podsMount = (a: string): boolean => a.includes('dst=/var/lib/kubelet/pods');

  it('without --pid=host it exits, naming hostPID / --pid=host', () => {
    const r = runWithout((a) => a === '--pid=host' || podsMount(a), 20_000);
    expect(r.stoppedByUs, r.out).toBe(false); // it exited by itself
    expect(r.status, r.out).not.toBe(0);
    expect(r.out).toContain('kernel audit cannot work here');
    expect(r.out).toMatch(/hostPID: true; docker: --pid=host/);
  });

  it('without AUDIT_CONTROL it exits, naming the capability', () => {
    const r = runWithout((a) => a === '--cap-add=AUDIT_CONTROL' || podsMount(a), 20_000);
    expect(r.stoppedByUs, r.out).toBe(false);
    expect(r.status, r.out).not.toBe(0);
    expect(r.out).toMatch(/CAP_AUDIT_CONTROL is not in the effective set/);
    expect(r.out).not.toMatch(/hostPID: true/);
  });

  it('without SYS_PTRACE and the kubelet pods mount it runs, warning about both, and stops cleanly', () => {
    const r = runWithout((a) => a === '--cap-add=SYS_PTRACE' || podsMount(a), 8_000);
    expect(r.out).toContain('credwatch running');
    expect(r.out).toMatch(/CAP_SYS_PTRACE is missing/);
    expect(r.out).toMatch(/\/var\/lib\/kubelet\/pods does not exist in this container/);
    expect(r.out).toContain('credwatch stopped');
    expect(r.status, r.out).toBe(0);
    expect(kernelSnapshot()).toEqual(kernelBefore);
  });
});
