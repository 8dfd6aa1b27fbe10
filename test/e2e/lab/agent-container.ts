/**
 * The attack lab's agent inside the credwatch image instead of `node bin/credwatch`: started with
 * `docker run` and exactly the DaemonSet's settings (test/helpers/daemonset.ts: --pid=host,
 * --network=host, --cap-drop=ALL plus the three capabilities, read-only root, the kubelet pods dir
 * and the cgroup tree read-only at their host paths, the ConfigMap as /etc/credwatch, a state dir).
 *
 * Selected by CREDWATCH_E2E_AGENT_IMAGE_TAR (set by attack-lab-in-container.test.ts): the image's
 * root, built before dockerd runs, imported here once the lab's dockerd answers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dockerRunArgs, loadManifest } from '../../helpers/daemonset';
import { REPO_ROOT, type Daemon } from '../../helpers/daemon';

export const AGENT_IMAGE_TAR_ENV = 'CREDWATCH_E2E_AGENT_IMAGE_TAR';
const IMAGE = 'credwatch:e2e';

export interface ContainerAgent {
  command: string[];
  /** The host path of the findings database the container writes. */
  dbPath: string;
  configPath: string;
  containerName: string;
}

/** Imports the image and prepares config and state dirs under `dir`; returns the `docker run` command. */
export function containerAgent(dir: string, tar: string, metricsPort: number): ContainerAgent {
  const imp = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/build-image-offline.sh'), '--from-tar', tar, IMAGE], { encoding: 'utf8', timeout: 120_000 });
  if (imp.status !== 0) throw new Error(`importing the agent image: ${imp.stderr}`);
  const m = loadManifest();
  const configDir = path.join(dir, 'etc-credwatch');
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(configDir);
  fs.mkdirSync(stateDir, { mode: 0o700 });
  // The ConfigMap's configuration, with a free metrics port (the lab may run beside another agent).
  const config = m.configMap.data['config.yaml']!.replace(/listen: 127\.0\.0\.1:\d+/, `listen: 127.0.0.1:${metricsPort}`);
  const configPath = path.join(configDir, 'config.yaml');
  fs.writeFileSync(configPath, config, { mode: 0o600 });
  const containerName = `credwatch-e2e-${process.pid}`;
  const command = ['docker', 'run', '--rm', '--name', containerName, ...dockerRunArgs(m, { configDir, stateDir }), IMAGE, ...(m.agent.args ?? [])];
  return { command, dbPath: path.join(stateDir, 'findings.db'), configPath, containerName };
}

/** Stops the container if `docker run` went away without it (teardown; never throws). */
export function removeAgentContainer(name: string, d: Daemon | null): void {
  if (d && !d.hasExited()) return;
  spawnSync('docker', ['rm', '-f', name], { encoding: 'utf8', timeout: 30_000 });
}

/** What docker says the running container has: proof the agent runs confined as the DaemonSet asks. */
export function describeAgentContainer(name: string): string {
  const r = spawnSync(
    'docker',
    ['inspect', '-f', 'running={{.State.Running}} pid={{.HostConfig.PidMode}} net={{.HostConfig.NetworkMode}} cap-add={{json .HostConfig.CapAdd}} cap-drop={{json .HostConfig.CapDrop}} read-only={{.HostConfig.ReadonlyRootfs}} memory-limit={{.HostConfig.Memory}}', name],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (r.status !== 0 || !r.stdout.includes('running=true')) throw new Error(`the agent container ${name} is not running: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** The container's memory use as docker stats reports it (cgroup memory, RSS plus page cache). */
export function agentContainerMemory(name: string): string {
  const r = spawnSync('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', name], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? r.stdout.trim() : `unknown (${r.stderr.trim()})`;
}
